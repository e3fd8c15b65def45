//! Persistence: opening the database, the migrations (one set for SQLite and MySQL/MariaDB),
//! the sea-orm entities, and how database errors are read.
//!
//! Entities are persistence shapes only and private to the crate: each table is written by
//! exactly one module (named in that module's documentation), which turns rows into domain
//! types.

pub mod db;
pub(crate) mod entities;
pub(crate) mod in_list;
pub(crate) mod lease;
pub mod migration;
pub(crate) mod retry;
#[cfg(test)]
pub(crate) mod testing;
pub(crate) mod turns;
