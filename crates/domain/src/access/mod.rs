//! Who is acting, and over which customers. Every domain operation is given an actor: a staff
//! member (with role and tenant, from a verified session), a visitor (for the visitor's own
//! submissions), or the system acting on its own for a named task (a capture's channel tags,
//! later the rules engine and the scheduler) — never an invented id. What each may do is
//! decided in [`policy`], the one place that knows the roles; callers only report refusals.

use std::fmt;
use std::str::FromStr;

use crate::kernel::error::DomainError;
use sea_orm::{ColumnTrait, Condition};

use crate::kernel::ids::{ChannelId, StaffId, TenantId, VisitorId};
pub use crate::kernel::values::Role;
use crate::store::entities::customer;

pub mod policy;
#[cfg(test)]
mod tests;

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Manager => "manager",
            Role::Sales => "sales",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Role {
    type Err = DomainError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "admin" => Ok(Role::Admin),
            "manager" => Ok(Role::Manager),
            "sales" => Ok(Role::Sales),
            _ => Err(DomainError::Invalid {
                field: "role",
                message: "must be admin, manager or sales".into(),
            }),
        }
    }
}

/// A signed-in staff member of one tenant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StaffActor {
    pub tenant: TenantId,
    pub id: StaffId,
    pub role: Role,
}

/// A task the system performs on its own, named so that the trail says why.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SystemTask {
    /// Recording a visitor's capture through a channel: the channel's tags, the owner's task.
    Capture { channel: ChannelId },
    /// Checking a channel's default tags as tagging would.
    ChannelSetup,
}

/// Who is acting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Actor {
    Staff(StaffActor),
    Visitor(VisitorId),
    System { tenant: TenantId, task: SystemTask },
}

impl Actor {
    /// The staff member a change is attributed to, if a person made it.
    pub fn staff_id(&self) -> Option<StaffId> {
        match self {
            Actor::Staff(staff) => Some(staff.id),
            Actor::Visitor(_) | Actor::System { .. } => None,
        }
    }
}

/// Which customers an actor sees and may change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// Every customer of the tenant.
    Tenant,
    /// Only the customers this staff member owns.
    Own(StaffId),
    /// No customer at all.
    Nothing,
}

impl Scope {
    /// Whether a customer with this owner is inside the scope.
    pub fn covers(self, owner: Option<StaffId>) -> bool {
        match self {
            Scope::Tenant => true,
            Scope::Own(staff) => owner == Some(staff),
            Scope::Nothing => false,
        }
    }
}

/// Who is looking: the tenant, and which of its customers the actor sees
/// ([`policy::customer_scope`]).
#[derive(Debug, Clone, Copy)]
pub struct Viewer {
    pub tenant: TenantId,
    pub scope: Scope,
}

impl Viewer {
    pub fn of(staff: &StaffActor) -> Viewer {
        Viewer {
            tenant: staff.tenant,
            scope: policy::customer_scope(&Actor::Staff(*staff)),
        }
    }

    /// The customers of this viewer's scope, as a condition on `customers`.
    pub(crate) fn condition(&self) -> Condition {
        let tenant = Condition::all().add(customer::Column::TenantId.eq(self.tenant.0));
        match self.scope {
            Scope::Tenant => tenant,
            Scope::Own(staff) => tenant.add(customer::Column::OwnerId.eq(staff.0)),
            // Ids are positive: no customer matches.
            Scope::Nothing => tenant.add(customer::Column::Id.lt(0)),
        }
    }
}
