//! The application layer: use cases that need more than the database — WeChat, the cache,
//! work after the response. Route handlers parse the request, check the caller, call one
//! function here or in the domain, and map the result to HTTP; they hold no orchestration.
//!
//! - [`capture`]: the visitor's submission with idempotency, the phone-number code and the
//!   owner's message;
//! - [`search`]: tag-filtered lists through the cache, keyed by the tenant's data version;
//! - [`qrcode`]: a channel's mini-program code, fetched from WeChat once and cached.

pub mod capture;
pub mod qrcode;
pub mod search;
