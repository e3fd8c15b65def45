//! The scantag domain: who may do what, the tag library, customers and their tags, tag-filtered
//! search, channels and scan-to-record, tasks, and their persistence. Nothing here knows about
//! HTTP; see docs/ARCHITECTURE.md for the rules each module keeps.
//!
//! Modules depend downwards only, with no cycle: `kernel` on nothing; `store` on `kernel`;
//! `access` on those; `support`, `identity`, `library` and `tasks` on those; `search` on the
//! library; `customers` on `search` (batches by filter); `channels` on `customers`; `capture`
//! on everything below it; `notices` (what the outbox's events send) reads the tables of all
//! of them.

pub mod access;
pub mod capture;
pub mod channels;
pub mod customers;
pub mod facts;
pub mod identity;
pub mod kernel;
pub mod library;
pub mod notices;
pub mod rulebook;
pub mod rules;
pub mod search;
pub mod store;
pub mod support;
pub mod tasks;

pub use kernel::error::{DomainError, FieldIssue};
pub use kernel::ids::{
    CaptureId, ChannelId, CustomFieldId, CustomerId, EventId, FollowUpId, OrderId, RuleId,
    SessionId, StaffId, TagGroupId, TagId, TaskId, TenantId, VisitorId,
};
pub use sea_orm::DatabaseConnection;
