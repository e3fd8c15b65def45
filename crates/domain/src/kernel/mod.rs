//! The vocabulary every other module speaks: typed ids, the domain's errors and their codes,
//! names and their keys, phone numbers, opaque secrets, and the clock. Nothing here touches the database
//! or depends on another module of the crate.

pub mod clock;
pub mod error;
pub mod ids;
pub mod names;
pub mod phone;
pub mod secret;
pub mod tagging;
pub mod values;
