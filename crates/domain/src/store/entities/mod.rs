//! sea-orm entities: persistence shapes only. Behaviour lives in the service modules, which
//! convert these rows into domain types.

pub mod activity_event;
pub mod audit_log;
pub mod auth_session;
pub mod capture;
pub mod channel;
pub mod channel_owner_turn;
pub mod custom_field_def;
pub mod customer;
pub mod customer_field_value;
pub mod customer_tag;
pub mod domain_event;
pub mod follow_up;
pub mod idempotency_key;
pub mod invite;
pub mod order;
pub mod refresh_token;
pub mod rule;
pub mod rule_due;
pub mod rule_job;
pub mod rule_owner_turn;
pub mod rule_state;
pub mod rule_version;
pub mod staff;
pub mod tag;
pub mod tag_group;
pub mod tag_history;
pub mod tag_veto;
pub mod task;
pub mod tenant;
pub mod visitor;
