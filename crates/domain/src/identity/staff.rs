//! Staff accounts and the invites that create them.
//!
//! A staff account is a WeChat identity bound to one tenant with a role. The first admin of a
//! tenant is bound through an invite printed by `scantag admin create-tenant`; admins invite
//! everyone after that. Everything a handler does to staff goes through [`TenantStaff`], which
//! is scoped to one tenant by construction: another tenant's staff are simply not found.

use crate::kernel::clock;
use chrono::{DateTime, Duration, Utc};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait, QueryFilter,
    QueryOrder, Set, TransactionTrait,
};
use serde::Serialize;

pub use crate::access::Role;
use crate::access::StaffActor;
use crate::access::policy::{self, Action};
use crate::identity::sessions::{self, SubjectKind};
use crate::identity::visitors::{self, Visitor};
use crate::kernel::error::{DomainError, DomainResult};
use crate::kernel::ids::{StaffId, TenantId};
use crate::kernel::secret;
use crate::store::entities::{invite, staff, tenant};
use crate::support::audit::{self, Actor, AuditEntry};

#[derive(Debug, Clone, Serialize)]
pub struct Staff {
    pub id: StaffId,
    pub tenant_id: TenantId,
    pub display_name: String,
    pub role: Role,
    pub active: bool,
    pub last_login_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
}

impl TryFrom<staff::Model> for Staff {
    type Error = DomainError;

    fn try_from(m: staff::Model) -> Result<Self, Self::Error> {
        Ok(Staff {
            id: m.id,
            tenant_id: m.tenant_id,
            display_name: m.display_name,
            role: m.role,
            active: m.active,
            last_login_at: m.last_login_at,
            created_at: m.created_at,
        })
    }
}

/// The WeChat identity a login code resolved to.
#[derive(Debug, Clone)]
pub struct WeChatIdentity {
    pub openid: String,
    pub unionid: Option<String>,
}

/// Who a WeChat login turned out to be.
#[derive(Debug, Clone)]
pub enum LoginPrincipal {
    Staff(Staff),
    Visitor(Visitor),
}

/// A freshly created invite; `code` is shown once and only its digest is stored.
#[derive(Debug, Clone)]
pub struct IssuedInvite {
    pub code: String,
    pub tenant_id: TenantId,
    pub role: Role,
    pub display_name: Option<String>,
    pub expires_at: DateTime<Utc>,
}

/// The longest a display name may be, in characters.
pub const DISPLAY_NAME_MAX: usize = 64;
const DEFAULT_DISPLAY_NAME: &str = "微信用户";

/// Resolves a WeChat login.
///
/// With an invite the identity becomes (or becomes again, if it was deactivated) a staff member
/// of the invite's tenant with the invite's role. Without one, an active staff account with this
/// openid logs in (the one in `tenant` if given, else the most recently used), and anyone else is
/// a visitor.
pub async fn login(
    db: &DatabaseConnection,
    identity: &WeChatIdentity,
    invite_code: Option<&str>,
    tenant: Option<TenantId>,
    display_name: Option<&str>,
) -> DomainResult<LoginPrincipal> {
    if let Some(code) = invite_code {
        return accept_invite(db, identity, code, display_name)
            .await
            .map(LoginPrincipal::Staff);
    }
    let mut query = staff::Entity::find()
        .filter(staff::Column::Openid.eq(identity.openid.as_str()))
        .filter(staff::Column::Active.eq(true));
    if let Some(tenant) = tenant {
        query = query.filter(staff::Column::TenantId.eq(tenant.0));
    }
    let candidates = query
        .order_by_desc(staff::Column::LastLoginAt)
        .order_by_desc(staff::Column::Id)
        .all(db)
        .await?;
    for candidate in candidates {
        let tenant_active = tenant::Entity::find_by_id(candidate.tenant_id)
            .one(db)
            .await?
            .is_some_and(|t| t.active);
        if !tenant_active {
            continue;
        }
        let mut active: staff::ActiveModel = candidate.into();
        active.last_login_at = Set(Some(clock::now()));
        if identity.unionid.is_some() {
            active.unionid = Set(identity.unionid.clone());
        }
        let model = active.update(db).await?;
        return Ok(LoginPrincipal::Staff(model.try_into()?));
    }
    let visitor =
        visitors::upsert_on_login(db, &identity.openid, identity.unionid.as_deref()).await?;
    Ok(LoginPrincipal::Visitor(visitor))
}

/// Long because it is one transaction read top to bottom: claim the invite, bind the identity, audit.
async fn accept_invite(
    db: &DatabaseConnection,
    identity: &WeChatIdentity,
    code: &str,
    display_name: Option<&str>,
) -> DomainResult<Staff> {
    let txn = db.begin().await?;
    let invite = invite::Entity::find()
        .filter(invite::Column::CodeHash.eq(secret::digest(code)))
        .one(&txn)
        .await?
        .ok_or(DomainError::InviteInvalid)?;
    if invite.used_at.is_some() {
        return Err(DomainError::InviteUsed);
    }
    let now = clock::now();
    if invite.expires_at <= now {
        return Err(DomainError::InviteExpired);
    }
    let tenant_active = tenant::Entity::find_by_id(invite.tenant_id)
        .one(&txn)
        .await?
        .is_some_and(|t| t.active);
    if !tenant_active {
        return Err(DomainError::InviteInvalid);
    }
    let role: Role = invite.role;
    let existing = staff::Entity::find()
        .filter(staff::Column::TenantId.eq(invite.tenant_id))
        .filter(staff::Column::Openid.eq(identity.openid.as_str()))
        .one(&txn)
        .await?;
    if existing.as_ref().is_some_and(|s| s.active) {
        return Err(DomainError::AlreadyMember);
    }
    // Claim the invite first: of two concurrent logins with one invite, exactly one updates it.
    let claimed = invite::Entity::update_many()
        .col_expr(invite::Column::UsedAt, Expr::value(now))
        .filter(invite::Column::Id.eq(invite.id))
        .filter(invite::Column::UsedAt.is_null())
        .exec(&txn)
        .await?;
    if claimed.rows_affected != 1 {
        return Err(DomainError::InviteUsed);
    }
    let name = display_name
        .map(str::trim)
        .filter(|n| !n.is_empty())
        .or(invite.display_name.as_deref())
        .unwrap_or(DEFAULT_DISPLAY_NAME)
        .to_owned();
    let model = match existing {
        Some(previous) => {
            let mut active: staff::ActiveModel = previous.into();
            active.active = Set(true);
            active.role = Set(role);
            active.display_name = Set(name);
            active.last_login_at = Set(Some(now));
            active.updated_at = Set(now);
            active.update(&txn).await?
        }
        None => {
            staff::ActiveModel {
                tenant_id: Set(invite.tenant_id),
                openid: Set(identity.openid.clone()),
                unionid: Set(identity.unionid.clone()),
                display_name: Set(name),
                role: Set(role),
                active: Set(true),
                last_login_at: Set(Some(now)),
                created_at: Set(now),
                updated_at: Set(now),
                ..Default::default()
            }
            .insert(&txn)
            .await?
        }
    };
    invite::Entity::update_many()
        .col_expr(invite::Column::UsedBy, Expr::value(model.id))
        .filter(invite::Column::Id.eq(invite.id))
        .exec(&txn)
        .await?;
    audit::record(
        &txn,
        AuditEntry {
            tenant_id: Some(model.tenant_id),
            actor: Actor::Staff(model.id),
            action: "staff.joined",
            target_type: "staff",
            target_id: Some(model.id.to_string()),
            details: Some(serde_json::json!({ "role": role, "invite_id": invite.id })),
        },
    )
    .await?;
    txn.commit().await?;
    model.try_into()
}

/// Creates an invite to `tenant` for `role`, valid for `ttl`.
pub async fn create_invite(
    db: &DatabaseConnection,
    tenant: TenantId,
    actor: Actor,
    role: Role,
    display_name: Option<&str>,
    ttl: Duration,
) -> DomainResult<IssuedInvite> {
    let display_name = display_name.map(str::trim).filter(|n| !n.is_empty());
    if display_name.is_some_and(|n| n.chars().count() > DISPLAY_NAME_MAX) {
        return Err(DomainError::Invalid {
            field: "display_name",
            message: format!("must be at most {DISPLAY_NAME_MAX} characters"),
        });
    }
    let txn = db.begin().await?;
    if tenant::Entity::find_by_id(tenant)
        .one(&txn)
        .await?
        .is_none()
    {
        return Err(DomainError::NotFound("tenant"));
    }
    let code = secret::generate();
    let now = clock::now();
    let expires_at = now + ttl;
    let created_by = match actor {
        Actor::Staff(id) => Some(id.0),
        _ => None,
    };
    let model = invite::ActiveModel {
        tenant_id: Set(tenant),
        code_hash: Set(secret::digest(&code)),
        role: Set(role),
        display_name: Set(display_name.map(str::to_owned)),
        created_by: Set(created_by.map(StaffId)),
        expires_at: Set(expires_at),
        created_at: Set(now),
        ..Default::default()
    }
    .insert(&txn)
    .await?;
    audit::record(
        &txn,
        AuditEntry {
            tenant_id: Some(tenant),
            actor,
            action: "invite.created",
            target_type: "invite",
            target_id: Some(model.id.to_string()),
            details: Some(serde_json::json!({ "role": role, "expires_at": expires_at })),
        },
    )
    .await?;
    txn.commit().await?;
    Ok(IssuedInvite {
        code,
        tenant_id: tenant,
        role,
        display_name: display_name.map(str::to_owned),
        expires_at,
    })
}

/// A change an admin makes to a staff account.
#[derive(Debug, Clone, Default)]
pub struct StaffChange {
    pub active: Option<bool>,
    pub role: Option<Role>,
    pub display_name: Option<String>,
}

/// Staff operations scoped to one tenant.
pub struct TenantStaff<'a> {
    db: &'a DatabaseConnection,
    tenant: TenantId,
}

impl<'a> TenantStaff<'a> {
    pub fn new(db: &'a DatabaseConnection, tenant: TenantId) -> Self {
        TenantStaff { db, tenant }
    }

    /// The staff member `id` of this tenant.
    pub async fn get(&self, id: StaffId) -> DomainResult<Staff> {
        self.find_model(self.db, id).await?.try_into()
    }

    /// Every staff member of this tenant, active first, then by name.
    pub async fn list(&self) -> DomainResult<Vec<Staff>> {
        staff::Entity::find()
            .filter(staff::Column::TenantId.eq(self.tenant.0))
            .order_by_desc(staff::Column::Active)
            .order_by_asc(staff::Column::Id)
            .all(self.db)
            .await?
            .into_iter()
            .map(Staff::try_from)
            .collect()
    }

    /// Applies `change` to staff member `id`. Deactivating someone ends all their sessions at
    /// once. Admins cannot deactivate or demote themselves, so a tenant keeps an admin.
    #[tracing::instrument(skip_all, fields(tenant = %self.tenant, staff = %id))]
    pub async fn update(
        &self,
        by: &StaffActor,
        id: StaffId,
        change: StaffChange,
    ) -> DomainResult<Staff> {
        policy::permit(by, Action::ManageStaff)?;
        let actor = by.id;
        let txn = self.db.begin().await?;
        let current = self.find_model(&txn, id).await?;
        let current_role: Role = current.role;
        if actor == id
            && (change.active == Some(false) || change.role.is_some_and(|r| r != current_role))
        {
            return Err(DomainError::Conflict(
                "you cannot deactivate yourself or change your own role".into(),
            ));
        }
        if let Some(name) = &change.display_name {
            let name = name.trim();
            if name.is_empty() || name.chars().count() > DISPLAY_NAME_MAX {
                return Err(DomainError::Invalid {
                    field: "display_name",
                    message: format!("must be 1 to {DISPLAY_NAME_MAX} characters"),
                });
            }
        }
        let deactivating = change.active == Some(false) && current.active;
        let mut active: staff::ActiveModel = current.into();
        if let Some(flag) = change.active {
            active.active = Set(flag);
        }
        if let Some(role) = change.role {
            active.role = Set(role);
        }
        if let Some(name) = &change.display_name {
            active.display_name = Set(name.trim().to_owned());
        }
        active.updated_at = Set(clock::now());
        let model = active.update(&txn).await?;
        if deactivating {
            sessions::revoke_all_for(&txn, SubjectKind::Staff, id.0, "staff_deactivated").await?;
        }
        audit::record(
            &txn,
            AuditEntry {
                tenant_id: Some(self.tenant),
                actor: Actor::Staff(actor),
                action: "staff.updated",
                target_type: "staff",
                target_id: Some(id.to_string()),
                details: Some(serde_json::json!({
                    "active": change.active,
                    "role": change.role,
                    "display_name": change.display_name,
                })),
            },
        )
        .await?;
        txn.commit().await?;
        model.try_into()
    }

    async fn find_model<C: ConnectionTrait>(
        &self,
        conn: &C,
        id: StaffId,
    ) -> DomainResult<staff::Model> {
        staff::Entity::find_by_id(id)
            .filter(staff::Column::TenantId.eq(self.tenant.0))
            .one(conn)
            .await?
            .ok_or(DomainError::NotFound("staff"))
    }
}

/// The active staff member `id` of `tenant`, as the request authenticator needs it: a
/// deactivated account or a token naming the wrong tenant finds nothing.
pub async fn find_active(
    db: &DatabaseConnection,
    tenant: TenantId,
    id: StaffId,
) -> DomainResult<Option<Staff>> {
    let found = staff::Entity::find_by_id(id)
        .filter(staff::Column::TenantId.eq(tenant.0))
        .filter(staff::Column::Active.eq(true))
        .one(db)
        .await?;
    found.map(Staff::try_from).transpose()
}
