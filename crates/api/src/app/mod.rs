//! The application layer: use cases that need more than the database — WeChat, the cache,
//! work after the response. Route handlers parse the request, check the caller, call one
//! function here or in the domain, and map the result to HTTP; they hold no orchestration.
//!
//! - [`capture`]: the visitor's submission with idempotency and the phone-number code;
//! - [`outbox`]: the delivery of the outbox's events after their change commits (the owner's
//!   task message, rules' messages), at least once;
//! - [`schedule`]: the scheduler of the rules' transitions that come with time alone;
//! - [`search`]: tag-filtered lists through the cache, keyed by the tenant's data version;
//! - [`qrcode`]: a channel's mini-program code, fetched from WeChat once and cached.

pub mod capture;
pub mod outbox;
pub mod qrcode;
pub mod schedule;
pub mod search;
