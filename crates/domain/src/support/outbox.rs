//! The outbox: a `domain_events` row per event the rest of the system reacts to (owners'
//! messages, rule notifications, later webhooks), written in the transaction of the change it
//! announces, so an event exists exactly when its change does.
//!
//! Delivery is at least once: a consumer claims a batch of waiting rows with a lease (a
//! conditional update, so two processes never hold one row), acts on each, and marks it
//! processed with its outcome, or puts it back for a later try. A consumer that dies mid-batch
//! loses nothing: its leases expire and another claim takes the rows again. Consumers must
//! therefore be idempotent. Nothing else writes the table.

use chrono::{DateTime, Duration, Utc};
use sea_orm::sea_query::{Expr, ExprTrait};
use sea_orm::{
    ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect, Set,
};
use serde_json::Value;

use crate::kernel::error::DomainResult;
use crate::kernel::ids::{CustomerId, TenantId};
use crate::store::entities::domain_event;
use crate::store::lease;

/// What happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventKind {
    /// A visitor was recorded through a channel (created or merged); names the owner's new
    /// task, if the capture gave one.
    CustomerCaptured,
    /// A rule that turned true asks for a WeChat message to the owner or the customer.
    RuleNotification,
}

impl EventKind {
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::CustomerCaptured => "customer.captured",
            EventKind::RuleNotification => "rule.notification",
        }
    }

    /// Every kind this build knows (and consumes).
    pub const ALL: [EventKind; 2] = [EventKind::CustomerCaptured, EventKind::RuleNotification];

    pub fn parse(kind: &str) -> Option<EventKind> {
        EventKind::ALL.into_iter().find(|k| k.as_str() == kind)
    }
}

/// Records one event about `customer`.
pub(crate) async fn record<C: ConnectionTrait>(
    conn: &C,
    tenant: TenantId,
    kind: EventKind,
    customer: Option<CustomerId>,
    payload: &Value,
    at: DateTime<Utc>,
) -> DomainResult<()> {
    record_many(conn, tenant, kind, &[(customer, payload.clone())], at).await
}

/// Records events of one kind, each about its customer, in a few multi-row statements.
pub(crate) async fn record_many<C: ConnectionTrait>(
    conn: &C,
    tenant: TenantId,
    kind: EventKind,
    events: &[(Option<CustomerId>, Value)],
    at: DateTime<Utc>,
) -> DomainResult<()> {
    for chunk in events.chunks(1_000) {
        domain_event::Entity::insert_many(chunk.iter().map(|(customer, payload)| {
            domain_event::ActiveModel {
                tenant_id: Set(tenant),
                kind: Set(kind.as_str().to_owned()),
                customer_id: Set(*customer),
                payload: Set(payload.to_string()),
                created_at: Set(at),
                processed_at: Set(None),
                lease_until: Set(None),
                lease_token: Set(None),
                attempts: Set(0),
                outcome: Set(None),
                ..Default::default()
            }
        }))
        .exec_without_returning(conn)
        .await?;
    }
    Ok(())
}

/// An event a consumer holds the lease of.
#[derive(Debug, Clone)]
pub struct Claimed {
    pub id: i64,
    pub tenant: TenantId,
    /// `None` for a kind this build does not know.
    pub kind: Option<EventKind>,
    pub customer: Option<CustomerId>,
    pub payload: Value,
    pub created_at: DateTime<Utc>,
    /// Tries so far, this one included.
    pub attempts: i32,
    token: String,
}

/// Claims up to `limit` waiting events of the kinds this build knows, oldest first, for
/// `lease`: until it runs out no other claim takes them. Events of a kind only a newer build
/// knows wait for it.
pub async fn claim<C: ConnectionTrait>(
    conn: &C,
    now: DateTime<Utc>,
    lease: Duration,
    limit: u64,
) -> DomainResult<Vec<Claimed>> {
    let free = || lease::free(domain_event::Column::LeaseUntil, now);
    let waiting: Vec<i64> = domain_event::Entity::find()
        .select_only()
        .column(domain_event::Column::Id)
        .filter(domain_event::Column::ProcessedAt.is_null())
        .filter(domain_event::Column::Kind.is_in(EventKind::ALL.map(EventKind::as_str)))
        .filter(free())
        .order_by_asc(domain_event::Column::Id)
        .limit(limit)
        .into_tuple()
        .all(conn)
        .await?;
    if waiting.is_empty() {
        return Ok(Vec::new());
    }
    let token = lease::token();
    // Only the rows still free when the update reaches them become ours.
    domain_event::Entity::update_many()
        .col_expr(domain_event::Column::LeaseUntil, Expr::value(now + lease))
        .col_expr(domain_event::Column::LeaseToken, Expr::value(token.clone()))
        .col_expr(
            domain_event::Column::Attempts,
            Expr::col(domain_event::Column::Attempts).add(1),
        )
        .filter(domain_event::Column::Id.is_in(waiting.clone()))
        .filter(domain_event::Column::ProcessedAt.is_null())
        .filter(free())
        .exec(conn)
        .await?;
    let rows = domain_event::Entity::find()
        .filter(domain_event::Column::Id.is_in(waiting))
        .filter(domain_event::Column::LeaseToken.eq(token.clone()))
        .order_by_asc(domain_event::Column::Id)
        .all(conn)
        .await?;
    Ok(rows
        .into_iter()
        .map(|row| Claimed {
            id: row.id,
            tenant: row.tenant_id,
            kind: EventKind::parse(&row.kind),
            customer: row.customer_id,
            payload: serde_json::from_str(&row.payload).unwrap_or(Value::Null),
            created_at: row.created_at,
            attempts: row.attempts,
            token: token.clone(),
        })
        .collect())
}

/// Marks a claimed event processed, with how it ended. Does nothing if the lease was lost
/// (another consumer took the row after it ran out), so the later outcome stands.
pub async fn finish<C: ConnectionTrait>(
    conn: &C,
    event: &Claimed,
    outcome: &str,
    now: DateTime<Utc>,
) -> DomainResult<()> {
    domain_event::Entity::update_many()
        .col_expr(domain_event::Column::ProcessedAt, Expr::value(now))
        .col_expr(domain_event::Column::Outcome, Expr::value(clip(outcome)))
        .col_expr(
            domain_event::Column::LeaseUntil,
            Expr::value(None::<DateTime<Utc>>),
        )
        .filter(domain_event::Column::Id.eq(event.id))
        .filter(domain_event::Column::LeaseToken.eq(event.token.clone()))
        .exec(conn)
        .await?;
    Ok(())
}

/// Puts a claimed event back, to be claimed again from `at`.
pub async fn retry_at<C: ConnectionTrait>(
    conn: &C,
    event: &Claimed,
    error: &str,
    at: DateTime<Utc>,
) -> DomainResult<()> {
    domain_event::Entity::update_many()
        .col_expr(domain_event::Column::Outcome, Expr::value(clip(error)))
        .col_expr(domain_event::Column::LeaseUntil, Expr::value(at))
        .filter(domain_event::Column::Id.eq(event.id))
        .filter(domain_event::Column::LeaseToken.eq(event.token.clone()))
        .exec(conn)
        .await?;
    Ok(())
}

/// Gives a claimed event back untried (its claim ran short): claimable again at once, and
/// the claim does not count as a try.
pub async fn give_back<C: ConnectionTrait>(
    conn: &C,
    event: &Claimed,
    now: DateTime<Utc>,
) -> DomainResult<()> {
    domain_event::Entity::update_many()
        .col_expr(domain_event::Column::LeaseUntil, Expr::value(now))
        .col_expr(
            domain_event::Column::Attempts,
            Expr::col(domain_event::Column::Attempts).sub(1),
        )
        .filter(domain_event::Column::Id.eq(event.id))
        .filter(domain_event::Column::LeaseToken.eq(event.token.clone()))
        .exec(conn)
        .await?;
    Ok(())
}

fn clip(text: &str) -> String {
    text.chars().take(255).collect()
}
