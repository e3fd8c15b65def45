//! The policy: which role may do what, and which customers each actor sees. The HTTP layer
//! asks it before reading a request's body (so that a refusal comes before a validation
//! error) and the domain services ask it again before acting, so that callers without HTTP
//! (the command line, later rules and imports) meet the same rules.

use std::fmt;

use super::{Actor, Role, Scope, StaffActor};
use crate::kernel::ids::StaffId;

/// Something only some roles may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Create and change tag groups and tags.
    CurateTagLibrary,
    /// Define custom customer fields.
    DefineCustomFields,
    /// Create and change capture channels.
    ManageChannels,
    /// Invite staff.
    InviteStaff,
    /// List the tenant's staff.
    ListStaff,
    /// Change a staff member's role or deactivate them.
    ManageStaff,
    /// Give a customer to another owner.
    ReassignCustomers,
    /// Create, change and delete tagging rules.
    ManageRules,
    /// Change the tenant's settings (its project stages).
    ConfigureTenant,
}

const ADMIN: &[Role] = &[Role::Admin];
const ADMIN_OR_MANAGER: &[Role] = &[Role::Admin, Role::Manager];

/// The roles that may perform `action`.
pub fn roles_for(action: Action) -> &'static [Role] {
    match action {
        Action::DefineCustomFields
        | Action::InviteStaff
        | Action::ManageStaff
        | Action::ConfigureTenant => ADMIN,
        Action::CurateTagLibrary
        | Action::ManageChannels
        | Action::ListStaff
        | Action::ReassignCustomers
        | Action::ManageRules => ADMIN_OR_MANAGER,
    }
}

/// A refused action, with the roles that would have been allowed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Refusal {
    pub action: Action,
    pub allowed: &'static [Role],
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("this action needs the role ")?;
        for (i, role) in self.allowed.iter().enumerate() {
            if i > 0 {
                f.write_str(" or ")?;
            }
            f.write_str(role.as_str())?;
        }
        Ok(())
    }
}

impl std::error::Error for Refusal {}

impl From<Refusal> for crate::kernel::error::DomainError {
    fn from(refusal: Refusal) -> Self {
        crate::kernel::error::DomainError::Forbidden(refusal.to_string())
    }
}

/// Whether the staff member may perform `action`.
pub fn permit(staff: &StaffActor, action: Action) -> Result<(), Refusal> {
    let allowed = roles_for(action);
    if allowed.contains(&staff.role) {
        Ok(())
    } else {
        Err(Refusal { action, allowed })
    }
}

/// Which customers the actor sees: admins, managers and the system the whole tenant, sales
/// reps the customers they own. A visitor sees no customer through staff operations.
pub fn customer_scope(actor: &Actor) -> Scope {
    match actor {
        Actor::Staff(staff) => match staff.role {
            Role::Admin | Role::Manager => Scope::Tenant,
            Role::Sales => Scope::Own(staff.id),
        },
        Actor::System { .. } => Scope::Tenant,
        // Captures reach customers through the visitor's own identities, never by scope.
        Actor::Visitor(_) => Scope::Nothing,
    }
}

/// Whether the actor may perform `action`: staff by role, the system always (it acts only for
/// tasks the tenant configured), a visitor never.
pub fn allows(actor: &Actor, action: Action) -> bool {
    match actor {
        Actor::Staff(staff) => permit(staff, action).is_ok(),
        Actor::System { .. } => true,
        Actor::Visitor(_) => false,
    }
}

/// The owner of a customer created by an actor of `scope`: the one `requested`, or for a
/// sales rep, who may only create customers they own, themselves. `Err` carries the refused
/// request.
pub fn owner_of_new_customer(
    scope: Scope,
    requested: Option<StaffId>,
) -> Result<Option<StaffId>, Option<StaffId>> {
    match (scope, requested) {
        (Scope::Own(staff), None) => Ok(Some(staff)),
        (Scope::Own(staff), Some(owner)) if owner != staff => Err(Some(owner)),
        (Scope::Nothing, requested) => Err(requested),
        (_, requested) => Ok(requested),
    }
}
