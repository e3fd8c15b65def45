//! Deleting rows that have served their purpose, so that tables written on every request do
//! not grow forever:
//!
//! - idempotency keys (and the answers stored with them) once they are older than their
//!   retention: a client retries within seconds or minutes, not days;
//! - login sessions that ended (revoked, or not refreshed before they expired) longer ago than
//!   their retention, with their refresh tokens;
//! - refresh tokens, spent or not, that expired longer ago than that retention. Until then a
//!   replayed spent token still revokes its session (reuse detection); after that a replay is
//!   refused as an unknown token, and the session lives on;
//! - outbox events delivered (or given up) longer ago than their retention;
//! - rows of the search index's change feed older than its retention, measured in real time
//!   (`data_version::prune`): a process whose index is older rebuilds it.
//!
//! Every process may run the sweep at once: each round deletes by id in small batches, so
//! concurrent rounds only ever delete a row once and never hold long locks.

use chrono::{DateTime, Utc};
use sea_orm::sea_query::Query;
use sea_orm::{ColumnTrait, Condition, DatabaseConnection, EntityTrait, QueryFilter, QuerySelect};

use crate::kernel::error::DomainResult;
use crate::store::entities::{auth_session, domain_event, idempotency_key, refresh_token};
use crate::support::{data_version, idempotency};

/// Rows deleted per statement.
const BATCH: u64 = 500;

/// How long each kind of row is kept.
#[derive(Debug, Clone, Copy)]
pub struct Retention {
    pub idempotency_keys: chrono::Duration,
    pub ended_sessions: chrono::Duration,
    pub processed_events: chrono::Duration,
    pub change_feed: chrono::Duration,
}

/// What one sweep deleted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Swept {
    pub idempotency_keys: u64,
    pub sessions: u64,
    pub refresh_tokens: u64,
    pub events: u64,
    pub feed_rows: u64,
}

/// Deletes what `retention` no longer covers at `now`.
pub async fn sweep(
    db: &DatabaseConnection,
    retention: Retention,
    now: DateTime<Utc>,
) -> DomainResult<Swept> {
    let keys_before = before(now, retention.idempotency_keys);
    // A claim still unanswered may belong to a request in flight: it goes only once it would be
    // taken over as abandoned, whatever the retention.
    let settled = Condition::any()
        .add(idempotency_key::Column::Response.is_not_null())
        .add(idempotency_key::Column::CreatedAt.lt(before(now, idempotency::ABANDONED_AFTER)));
    let idempotency_keys = delete_where::<idempotency_key::Entity>(
        db,
        idempotency_key::Column::Id,
        Condition::all()
            .add(idempotency_key::Column::CreatedAt.lt(keys_before))
            .add(settled),
    )
    .await?;

    let ended_before = before(now, retention.ended_sessions);
    let ended = Condition::any()
        .add(auth_session::Column::RevokedAt.lt(ended_before))
        .add(auth_session::Column::ExpiresAt.lt(ended_before));
    // An ended session cannot be refreshed, so no token joins it between the two deletes.
    let of_ended_sessions = refresh_token::Column::SessionId.in_subquery(
        Query::select()
            .column(auth_session::Column::Id)
            .from(auth_session::Entity)
            .cond_where(ended.clone())
            .to_owned(),
    );
    let expired_tokens = Condition::any()
        .add(of_ended_sessions)
        .add(refresh_token::Column::ExpiresAt.lt(ended_before));
    let refresh_tokens =
        delete_where::<refresh_token::Entity>(db, refresh_token::Column::Id, expired_tokens)
            .await?;
    let sessions =
        delete_where::<auth_session::Entity>(db, auth_session::Column::Id, ended).await?;
    let events = delete_where::<domain_event::Entity>(
        db,
        domain_event::Column::Id,
        Condition::all()
            .add(domain_event::Column::ProcessedAt.lt(before(now, retention.processed_events))),
    )
    .await?;
    let feed_rows = data_version::prune(db, before(Utc::now(), retention.change_feed)).await?;
    Ok(Swept {
        idempotency_keys,
        sessions,
        refresh_tokens,
        events,
        feed_rows,
    })
}

/// `now - retention`, or the earliest time there is when that overflows.
fn before(now: DateTime<Utc>, retention: chrono::Duration) -> DateTime<Utc> {
    now.checked_sub_signed(retention)
        .unwrap_or(DateTime::<Utc>::MIN_UTC)
}

/// Deletes the rows of `E` matching `condition`, [`BATCH`] ids at a time.
async fn delete_where<E: EntityTrait>(
    db: &DatabaseConnection,
    id: E::Column,
    condition: Condition,
) -> DomainResult<u64> {
    let mut deleted = 0;
    loop {
        let ids: Vec<i64> = E::find()
            .select_only()
            .column(id)
            .filter(condition.clone())
            .limit(BATCH)
            .into_tuple()
            .all(db)
            .await?;
        if ids.is_empty() {
            break;
        }
        let done = E::delete_many()
            .filter(id.is_in(ids.iter().copied()))
            .exec(db)
            .await?;
        deleted += done.rows_affected;
        if (ids.len() as u64) < BATCH {
            break;
        }
    }
    Ok(deleted)
}
