//! What every use case leans on: the audit trail, idempotency keys, the per-tenant data
//! version that invalidates cached lists, the outbox of domain events, and housekeeping.
//!
//! Owns `audit_log`, `idempotency_keys`, `tenant_data_versions` and `domain_events`. Each is
//! written in the caller's transaction, so it exists exactly when the change it describes does.

pub mod audit;
pub mod config_version;
pub mod data_version;
pub mod housekeeping;
pub mod idempotency;
pub mod outbox;
