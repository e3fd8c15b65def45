//! sea-orm entities: persistence shapes only. Behaviour lives in the service modules, which
//! convert these rows into domain types.

pub mod audit_log;
pub mod auth_session;
pub mod invite;
pub mod refresh_token;
pub mod staff;
pub mod tenant;
pub mod visitor;
