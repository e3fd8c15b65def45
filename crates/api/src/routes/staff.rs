//! Staff administration: invites, the staff list, role changes and deactivation.

use actix_web::{HttpResponse, get, patch, post, web};
use chrono::{DateTime, Utc};
use scantag_domain::StaffId;
use scantag_domain::identity::staff::{self, Role, Staff, StaffChange, TenantStaff};
use scantag_domain::support::audit::Actor;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use validator::{Validate, ValidationError};

use crate::error::{ApiError, Problem};
use crate::extract::{StaffCaller, ValidJson};
use crate::routes::auth::RoleView;
use crate::state::AppState;
use scantag_domain::access::policy::Action;

/// The longest an invite may be valid for, in hours (30 days).
const INVITE_MAX_HOURS: u32 = 720;

#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"role": "sales", "display_name": "李销售", "expires_in_hours": 72}))]
pub struct CreateInviteRequest {
    /// The role the invited person gets.
    pub role: RoleView,
    /// Display name for the new staff account (they may also choose one at login).
    #[validate(length(min = 1, max = 64))]
    #[schema(min_length = 1, max_length = 64)]
    pub display_name: Option<String>,
    /// Hours until the invite expires (1–720, default from the server settings).
    #[validate(range(min = 1, max = 720))]
    #[schema(minimum = 1, maximum = 720)]
    pub expires_in_hours: Option<u32>,
}

#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({
    "code": "9c1e2b6f3d4e5a600193a5c48f7e7a519c1e2b6f3d4e5a600193a5c48f7e7a51",
    "tenant_id": 3, "role": "sales", "display_name": "李销售",
    "expires_at": "2026-11-26T10:00:00Z"
}))]
pub struct InviteResponse {
    /// Give this to the person invited; they pass it as `invite` when logging in. It is shown
    /// only once.
    pub code: String,
    pub tenant_id: i64,
    pub role: RoleView,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    pub expires_at: DateTime<Utc>,
}

#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({
    "id": 12, "display_name": "王经理", "role": "admin", "active": true,
    "last_login_at": "2026-11-23T09:30:00Z", "created_at": "2026-11-01T08:00:00Z"
}))]
pub struct StaffView {
    pub id: i64,
    pub display_name: String,
    pub role: RoleView,
    /// Deactivated staff cannot log in or use existing tokens.
    pub active: bool,
    pub last_login_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
}

impl From<Staff> for StaffView {
    fn from(s: Staff) -> Self {
        StaffView {
            id: s.id.0,
            display_name: s.display_name,
            role: s.role.into(),
            active: s.active,
            last_login_at: s.last_login_at,
            created_at: s.created_at,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct StaffList {
    pub items: Vec<StaffView>,
}

#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
#[validate(schema(function = "validate_not_empty"))]
#[schema(example = json!({"active": false}))]
pub struct UpdateStaffRequest {
    /// `false` deactivates the account and ends all its sessions at once.
    pub active: Option<bool>,
    pub role: Option<RoleView>,
    #[validate(length(min = 1, max = 64))]
    #[schema(min_length = 1, max_length = 64)]
    pub display_name: Option<String>,
}

fn validate_not_empty(req: &UpdateStaffRequest) -> Result<(), ValidationError> {
    if req.active.is_none() && req.role.is_none() && req.display_name.is_none() {
        let mut err = ValidationError::new("empty");
        err.message = Some("give at least one of active, role, display_name".into());
        return Err(err);
    }
    Ok(())
}

/// Invite a person to join the caller's tenant as staff (admins only).
#[utoipa::path(
    tag = "staff",
    security(("bearer" = [])),
    request_body = CreateInviteRequest,
    responses(
        (status = 201, description = "The invite; its code is shown only here", body = InviteResponse),
        (status = 403, description = "The caller is not an admin (`insufficient_role`, `staff_only`)", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "The body is not JSON", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid fields (`validation_failed`)", body = Problem, content_type = "application/problem+json")
    )
)]
#[post("/invites")]
pub async fn create_invite(
    state: web::Data<AppState>,
    caller: StaffCaller,
    body: ValidJson<CreateInviteRequest>,
) -> Result<HttpResponse, ApiError> {
    caller.may(Action::InviteStaff)?;
    let request = body.into_inner()?;
    let ttl = request
        .expires_in_hours
        .map(|h| chrono::Duration::hours(i64::from(h.min(INVITE_MAX_HOURS))))
        .unwrap_or(state.invite_ttl);
    let invite = staff::create_invite(
        &state.db,
        caller.tenant(),
        Actor::Staff(caller.id()),
        request.role.into(),
        request.display_name.as_deref(),
        ttl,
    )
    .await?;
    Ok(HttpResponse::Created().json(InviteResponse {
        code: invite.code,
        tenant_id: invite.tenant_id.0,
        role: invite.role.into(),
        display_name: invite.display_name,
        expires_at: invite.expires_at,
    }))
}

/// The staff of the caller's tenant (admins and managers).
#[utoipa::path(
    tag = "staff",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Every staff member, active first", body = StaffList),
        (status = 403, description = "The caller is neither admin nor manager", body = Problem, content_type = "application/problem+json")
    )
)]
#[get("/staff")]
pub async fn list_staff(
    state: web::Data<AppState>,
    caller: StaffCaller,
) -> Result<HttpResponse, ApiError> {
    caller.may(Action::ListStaff)?;
    let items = TenantStaff::new(&state.db, caller.tenant())
        .list()
        .await?
        .into_iter()
        .map(StaffView::from)
        .collect();
    Ok(HttpResponse::Ok().json(StaffList { items }))
}

/// Change a staff member's role or name, or deactivate them (admins only).
///
/// Deactivation ends the person's sessions immediately: their access and refresh tokens stop
/// working. Admins cannot deactivate themselves or change their own role.
#[utoipa::path(
    tag = "staff",
    security(("bearer" = [])),
    params(("id" = i64, Path, description = "Staff id", example = 12)),
    request_body = UpdateStaffRequest,
    responses(
        (status = 200, description = "The updated staff member", body = StaffView),
        (status = 403, description = "The caller is not an admin", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such staff member in the caller's tenant", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Admins cannot deactivate or demote themselves (`conflict`)", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid or no fields (`validation_failed`)", body = Problem, content_type = "application/problem+json")
    )
)]
#[patch("/staff/{id}")]
pub async fn update_staff(
    state: web::Data<AppState>,
    caller: StaffCaller,
    id: web::Path<i64>,
    body: ValidJson<UpdateStaffRequest>,
) -> Result<HttpResponse, ApiError> {
    caller.may(Action::ManageStaff)?;
    let request = body.into_inner()?;
    let updated = TenantStaff::new(&state.db, caller.tenant())
        .update(
            &caller.actor(),
            StaffId(id.into_inner()),
            StaffChange {
                active: request.active,
                role: request.role.map(Role::from),
                display_name: request.display_name,
            },
        )
        .await?;
    Ok(HttpResponse::Ok().json(StaffView::from(updated)))
}
