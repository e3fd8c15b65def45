//! Deleting rows that have served their purpose, so that tables written on every request do
//! not grow forever:
//!
//! - idempotency keys (and the answers stored with them) once they are older than their
//!   retention: a client retries within seconds or minutes, not days;
//! - login sessions that ended (revoked, or not refreshed before they expired) longer ago than
//!   their retention, with their refresh tokens;
//! - refresh tokens, spent or not, that expired longer ago than that retention: past its expiry
//!   a token is refused anyway, so keeping it no longer helps to detect reuse.
//!
//! Every process may run the sweep at once: each round deletes by id in small batches, so
//! concurrent rounds only ever delete a row once and never hold long locks.

use chrono::{DateTime, Utc};
use sea_orm::{ColumnTrait, Condition, DatabaseConnection, EntityTrait, QueryFilter, QuerySelect};

use crate::entities::{auth_session, idempotency_key, refresh_token};
use crate::error::DomainResult;

/// Rows deleted per statement.
const BATCH: u64 = 500;

/// How long each kind of row is kept.
#[derive(Debug, Clone, Copy)]
pub struct Retention {
    pub idempotency_keys: chrono::Duration,
    pub ended_sessions: chrono::Duration,
}

/// What one sweep deleted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Swept {
    pub idempotency_keys: u64,
    pub sessions: u64,
    pub refresh_tokens: u64,
}

/// Deletes what `retention` no longer covers at `now`.
pub async fn sweep(
    db: &DatabaseConnection,
    retention: Retention,
    now: DateTime<Utc>,
) -> DomainResult<Swept> {
    let mut swept = Swept::default();
    let keys_before = now - retention.idempotency_keys;
    loop {
        let ids: Vec<i64> = idempotency_key::Entity::find()
            .select_only()
            .column(idempotency_key::Column::Id)
            .filter(idempotency_key::Column::CreatedAt.lt(keys_before))
            .limit(BATCH)
            .into_tuple()
            .all(db)
            .await?;
        if ids.is_empty() {
            break;
        }
        let done = idempotency_key::Entity::delete_many()
            .filter(idempotency_key::Column::Id.is_in(ids.iter().copied()))
            .exec(db)
            .await?;
        swept.idempotency_keys += done.rows_affected;
        if (ids.len() as u64) < BATCH {
            break;
        }
    }

    let ended_before = now - retention.ended_sessions;
    loop {
        let ids: Vec<i64> = auth_session::Entity::find()
            .select_only()
            .column(auth_session::Column::Id)
            .filter(
                Condition::any()
                    .add(auth_session::Column::RevokedAt.lt(ended_before))
                    .add(auth_session::Column::ExpiresAt.lt(ended_before)),
            )
            .limit(BATCH)
            .into_tuple()
            .all(db)
            .await?;
        if ids.is_empty() {
            break;
        }
        let tokens = refresh_token::Entity::delete_many()
            .filter(refresh_token::Column::SessionId.is_in(ids.iter().copied()))
            .exec(db)
            .await?;
        let sessions = auth_session::Entity::delete_many()
            .filter(auth_session::Column::Id.is_in(ids.iter().copied()))
            .exec(db)
            .await?;
        swept.refresh_tokens += tokens.rows_affected;
        swept.sessions += sessions.rows_affected;
        if (ids.len() as u64) < BATCH {
            break;
        }
    }

    loop {
        let ids: Vec<i64> = refresh_token::Entity::find()
            .select_only()
            .column(refresh_token::Column::Id)
            .filter(refresh_token::Column::ExpiresAt.lt(ended_before))
            .limit(BATCH)
            .into_tuple()
            .all(db)
            .await?;
        if ids.is_empty() {
            break;
        }
        let done = refresh_token::Entity::delete_many()
            .filter(refresh_token::Column::Id.is_in(ids.iter().copied()))
            .exec(db)
            .await?;
        swept.refresh_tokens += done.rows_affected;
        if (ids.len() as u64) < BATCH {
            break;
        }
    }
    Ok(swept)
}
