//! Leases: a claim on rows that another process may take over once it runs out. A claimer
//! updates, in one conditional statement, only the rows whose lease is free, writing its own
//! expiry and a token of its own, and then reads back the rows carrying its token: those are
//! its. No row lock is held between statements, and a claimer that dies leaves nothing but a
//! lease that expires. The outbox, the scheduler of due rules and the rule jobs claim this way.

use chrono::{DateTime, Utc};
use sea_orm::IntoSimpleExpr;
use sea_orm::sea_query::{Expr, ExprTrait};

/// A new claimer's token (fits the 32-character token columns).
pub(crate) fn token() -> String {
    format!(
        "{:016x}{:016x}",
        rand::random::<u64>(),
        rand::random::<u64>()
    )
}

/// Whether the lease in column `lease_until` is free at `now`: never taken, or run out.
pub(crate) fn free<C: IntoSimpleExpr + Copy>(lease_until: C, now: DateTime<Utc>) -> Expr {
    lease_until
        .into_simple_expr()
        .is_null()
        .or(lease_until.into_simple_expr().lte(now))
}
