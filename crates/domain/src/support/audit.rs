//! The audit trail: one row for every change made to a tenant's data, naming who did it.

use crate::kernel::clock;
use sea_orm::{ConnectionTrait, EntityTrait, Set};

use crate::kernel::error::DomainResult;
use crate::kernel::ids::{StaffId, TenantId, VisitorId};
use crate::store::entities::audit_log;

/// Who made a change.
#[derive(Debug, Clone, Copy)]
pub enum Actor {
    /// The operator's command line (`scantag admin …`).
    Operator,
    Staff(StaffId),
    Visitor(VisitorId),
    /// The system on its own (a capture's follow-through, later rules and schedules).
    System,
}

impl From<crate::access::Actor> for Actor {
    fn from(actor: crate::access::Actor) -> Self {
        match actor {
            crate::access::Actor::Staff(staff) => Actor::Staff(staff.id),
            crate::access::Actor::Visitor(visitor) => Actor::Visitor(visitor),
            crate::access::Actor::System { .. } => Actor::System,
        }
    }
}

impl Actor {
    fn kind(self) -> &'static str {
        match self {
            Actor::Operator => "operator",
            Actor::Staff(_) => "staff",
            Actor::Visitor(_) => "visitor",
            Actor::System => "system",
        }
    }

    fn id(self) -> Option<i64> {
        match self {
            Actor::Operator | Actor::System => None,
            Actor::Staff(id) => Some(id.0),
            Actor::Visitor(id) => Some(id.0),
        }
    }
}

/// One audited change.
pub struct AuditEntry<'a> {
    pub tenant_id: Option<TenantId>,
    pub actor: Actor,
    pub action: &'a str,
    pub target_type: &'a str,
    pub target_id: Option<String>,
    pub details: Option<serde_json::Value>,
}

/// Writes `entry` on `conn`; pass the transaction that makes the change so both commit together.
pub async fn record<C: ConnectionTrait>(conn: &C, entry: AuditEntry<'_>) -> DomainResult<()> {
    // `Entity::insert` rather than `ActiveModel::insert`: no read-back of the row on MySQL.
    audit_log::Entity::insert(audit_log::ActiveModel {
        tenant_id: Set(entry.tenant_id),
        actor_kind: Set(entry.actor.kind().to_owned()),
        actor_id: Set(entry.actor.id()),
        action: Set(entry.action.to_owned()),
        target_type: Set(entry.target_type.to_owned()),
        target_id: Set(entry.target_id),
        details: Set(entry.details.map(|d| d.to_string())),
        created_at: Set(clock::now()),
        ..Default::default()
    })
    .exec_without_returning(conn)
    .await?;
    Ok(())
}
