//! The scantag domain: who may do what, the tag library, customers and their tags, tag-filtered
//! search, channels and scan-to-record, tasks, and their persistence. Nothing here knows about
//! HTTP; see docs/ARCHITECTURE.md for the rules each module keeps.
//!
//! Modules depend downwards only: `kernel` and `store` on nothing else here; `support` and
//! `access` on `kernel`/`store`; `identity` and `library` on those; `customers` and `search`
//! on the library; `channels`, `capture` and `tasks` on customers.

pub mod access;
pub mod capture;
pub mod channels;
pub mod customers;
pub mod identity;
pub mod kernel;
pub mod library;
pub mod search;
pub mod store;
pub mod support;
pub mod tasks;

pub use kernel::error::{DomainError, FieldIssue};
pub use kernel::ids::{
    CaptureId, ChannelId, CustomFieldId, CustomerId, SessionId, StaffId, TagGroupId, TagId, TaskId,
    TenantId, VisitorId,
};
pub use sea_orm::DatabaseConnection;
