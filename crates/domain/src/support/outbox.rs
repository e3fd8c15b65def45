//! The outbox: a `domain_events` row per event the rest of the system reacts to (the rules
//! engine, webhooks), written in the transaction of the change it announces, so an event exists
//! exactly when its change does. Consumers mark rows processed; nothing else writes the table.

use chrono::{DateTime, Utc};
use sea_orm::{ConnectionTrait, EntityTrait, Set};
use serde_json::Value;

use crate::kernel::error::DomainResult;
use crate::kernel::ids::{CustomerId, TenantId};
use crate::store::entities::domain_event;

/// What happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventKind {
    /// A visitor was recorded through a channel (created or merged).
    CustomerCaptured,
}

impl EventKind {
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::CustomerCaptured => "customer.captured",
        }
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
    domain_event::Entity::insert(domain_event::ActiveModel {
        tenant_id: Set(tenant),
        kind: Set(kind.as_str().to_owned()),
        customer_id: Set(customer),
        payload: Set(payload.to_string()),
        created_at: Set(at),
        processed_at: Set(None),
        ..Default::default()
    })
    .exec_without_returning(conn)
    .await?;
    Ok(())
}
