//! `Idempotency-Key` claims: the first request with a key runs, every later one with the same
//! key and body gets the first one's answer.
//!
//! A claim is a row inserted (and committed) before the work starts, so concurrent duplicates
//! meet the unique index at once. The answer is written into the row by [`complete`] inside the
//! transaction that makes the request's effects, so a stored answer exists exactly when the
//! effects do. A request that fails [`release`]s its claim, and a waiting duplicate then runs
//! itself. A claim left behind by a crashed process is taken over after [`ABANDONED_AFTER`].

use crate::kernel::clock;
use std::time::Duration;

use sea_orm::{ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait, QueryFilter, Set};
use sha2::{Digest, Sha256};

use crate::kernel::error::{DomainError, DomainResult};
use crate::store::entities::idempotency_key;

/// How long a duplicate waits for the first request to finish.
const WAIT: Duration = Duration::from_secs(10);
const POLL: Duration = Duration::from_millis(20);
/// An unanswered claim older than this belongs to a request that died.
pub const ABANDONED_AFTER: chrono::TimeDelta = chrono::TimeDelta::seconds(60);
/// Longest key accepted.
pub const KEY_MAX: usize = 128;

/// One key of one caller, with the digest of the request it came with.
#[derive(Debug, Clone)]
pub struct IdempotencyKey {
    pub scope: String,
    pub key: String,
    pub request_hash: String,
    /// Names this attempt's claim, so that it releases or completes only its own.
    claim: String,
}

impl IdempotencyKey {
    /// `scope` separates callers (`visitor:12`); `request` is the canonical request body.
    pub fn new(scope: String, key: String, request: &[u8]) -> IdempotencyKey {
        IdempotencyKey {
            scope,
            key,
            request_hash: hex::encode(Sha256::digest(request)),
            claim: hex::encode(rand::random::<[u8; 16]>()),
        }
    }
}

/// Whether `key` is usable: 1 to 128 visible ASCII characters.
pub fn valid_key(key: &str) -> bool {
    !key.is_empty() && key.len() <= KEY_MAX && key.bytes().all(|b| b.is_ascii_graphic())
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claim {
    /// This request holds the key and runs.
    Acquired,
    /// The key's first request finished; here is its stored answer.
    Replay(String),
    /// The key was used with another request body.
    Mismatch,
    /// The first request is still running after the wait.
    InProgress,
}

/// Claims `key`, or waits for the request holding it and returns that request's answer.
pub async fn claim(db: &DatabaseConnection, key: &IdempotencyKey) -> DomainResult<Claim> {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let inserted = idempotency_key::Entity::insert(idempotency_key::ActiveModel {
            scope: Set(key.scope.clone()),
            idem_key: Set(key.key.clone()),
            request_hash: Set(key.request_hash.clone()),
            response: Set(None),
            created_at: Set(clock::now()),
            claim_token: Set(Some(key.claim.clone())),
            ..Default::default()
        })
        .exec_without_returning(db)
        .await
        .map_err(DomainError::from);
        match inserted {
            Ok(_) => return Ok(Claim::Acquired),
            Err(DomainError::Taken { .. }) => {}
            Err(other) => return Err(other),
        }
        if let Some(row) = find(db, key).await? {
            if row.request_hash != key.request_hash {
                return Ok(Claim::Mismatch);
            }
            if let Some(response) = row.response {
                return Ok(Claim::Replay(response));
            }
            if clock::now() - row.created_at > ABANDONED_AFTER && take_over(db, key, &row).await? {
                return Ok(Claim::Acquired);
            }
        }
        if tokio::time::Instant::now() >= deadline {
            return Ok(Claim::InProgress);
        }
        tokio::time::sleep(POLL).await;
    }
}

/// Stores the answer of the request holding `key`; call inside the transaction that makes the
/// request's effects. Fails when the claim was taken over meanwhile (the request ran longer
/// than [`ABANDONED_AFTER`]), so that the transaction rolls back and only one request's
/// effects remain.
pub async fn complete<C: ConnectionTrait>(
    conn: &C,
    key: &IdempotencyKey,
    response: &str,
) -> DomainResult<()> {
    let stored = idempotency_key::Entity::update_many()
        .col_expr(
            idempotency_key::Column::Response,
            sea_orm::sea_query::Expr::value(response),
        )
        .filter(idempotency_key::Column::Scope.eq(key.scope.as_str()))
        .filter(idempotency_key::Column::IdemKey.eq(key.key.as_str()))
        .filter(idempotency_key::Column::ClaimToken.eq(key.claim.as_str()))
        .exec(conn)
        .await?;
    if stored.rows_affected == 0 {
        return Err(DomainError::Conflict(
            "another request took this Idempotency-Key over; retry to get its answer".to_owned(),
        ));
    }
    Ok(())
}

/// Gives up this attempt's claim on `key` after a failure, so that a retry can run. Safe to
/// call when the claim may never have been written: another attempt's claim is left alone.
pub async fn release(db: &DatabaseConnection, key: &IdempotencyKey) -> DomainResult<()> {
    idempotency_key::Entity::delete_many()
        .filter(idempotency_key::Column::Scope.eq(key.scope.as_str()))
        .filter(idempotency_key::Column::IdemKey.eq(key.key.as_str()))
        .filter(idempotency_key::Column::ClaimToken.eq(key.claim.as_str()))
        .filter(idempotency_key::Column::Response.is_null())
        .exec(db)
        .await?;
    Ok(())
}

async fn find(
    db: &DatabaseConnection,
    key: &IdempotencyKey,
) -> DomainResult<Option<idempotency_key::Model>> {
    Ok(idempotency_key::Entity::find()
        .filter(idempotency_key::Column::Scope.eq(key.scope.as_str()))
        .filter(idempotency_key::Column::IdemKey.eq(key.key.as_str()))
        .one(db)
        .await?)
}

/// Takes an abandoned claim over; false when another request did so first.
async fn take_over(
    db: &DatabaseConnection,
    key: &IdempotencyKey,
    row: &idempotency_key::Model,
) -> DomainResult<bool> {
    let taken = idempotency_key::Entity::update_many()
        .col_expr(
            idempotency_key::Column::CreatedAt,
            sea_orm::sea_query::Expr::value(clock::now()),
        )
        .col_expr(
            idempotency_key::Column::ClaimToken,
            sea_orm::sea_query::Expr::value(key.claim.as_str()),
        )
        .filter(idempotency_key::Column::Id.eq(row.id))
        .filter(idempotency_key::Column::CreatedAt.eq(row.created_at))
        .filter(idempotency_key::Column::Response.is_null())
        .exec(db)
        .await?;
    Ok(taken.rows_affected == 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_visible_ascii() {
        assert!(valid_key("capture-2026-11-23-0001"));
        assert!(valid_key(&"k".repeat(128)));
        assert!(!valid_key(&"k".repeat(129)));
        assert!(!valid_key(""));
        assert!(!valid_key("has space"));
        assert!(!valid_key("键"));
    }

    #[test]
    fn the_same_body_gives_the_same_hash() {
        let a = IdempotencyKey::new("visitor:1".into(), "k".into(), b"{\"a\":1}");
        let b = IdempotencyKey::new("visitor:1".into(), "k".into(), b"{\"a\":1}");
        let c = IdempotencyKey::new("visitor:1".into(), "k".into(), b"{\"a\":2}");
        assert_eq!(a.request_hash, b.request_hash);
        assert_ne!(a.request_hash, c.request_hash);
    }
}
