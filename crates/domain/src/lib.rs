//! The scantag domain: tenants, staff, visitors, login sessions and the audit trail, with their
//! persistence (sea-orm entities and migrations). Nothing here knows about HTTP.

pub mod audit;
pub mod db;
mod entities;
pub mod error;
pub mod ids;
pub mod migration;
pub mod secret;
pub mod sessions;
pub mod staff;
pub mod tenants;
pub mod visitors;

pub use error::DomainError;
pub use ids::{SessionId, StaffId, TenantId, VisitorId};
pub use sea_orm::DatabaseConnection;
