//! The scantag domain: tenants, staff, visitors, login sessions and the audit trail, with their
//! persistence (sea-orm entities and migrations). Nothing here knows about HTTP.

pub mod audit;
pub mod capture;
pub mod channels;
pub mod custom_fields;
pub mod customers;
pub mod data_version;
pub mod db;
mod entities;
pub mod error;
pub mod housekeeping;
pub mod idempotency;
pub mod ids;
pub mod migration;
pub mod names;
pub mod search;
pub mod secret;
pub mod sessions;
pub mod staff;
pub mod tags;
pub mod tasks;
pub mod tenants;
pub mod visitors;

pub use error::DomainError;
pub use error::FieldIssue;
pub use ids::{
    CaptureId, ChannelId, CustomFieldId, CustomerId, SessionId, StaffId, TagGroupId, TagId, TaskId,
    TenantId, VisitorId,
};
pub use sea_orm::DatabaseConnection;
