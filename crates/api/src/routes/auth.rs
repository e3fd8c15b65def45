//! WeChat login, token refresh, logout, and the caller's own profile.

use actix_web::{HttpResponse, get, post, web};
use chrono::{DateTime, Utc};
use scantag_auth::jwt::{PrincipalKind, Subject};
use scantag_domain::TenantId;
use scantag_domain::identity::sessions::{self, Session, SubjectKind};
use scantag_domain::identity::staff::{self, LoginPrincipal, Role, WeChatIdentity};
use scantag_domain::identity::tenants;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use validator::Validate;

use crate::error::{ApiError, Problem};
use crate::extract::{Caller, ValidJson};
use crate::state::AppState;

#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"code": "081Kq4Ga1pQ1aD0YyQHa1rB0Ga1Kq4Gb", "invite": null}))]
pub struct LoginRequest {
    /// The code from `wx.login()` in the mini-program; single use, valid for five minutes.
    #[validate(length(min = 1, max = 128))]
    #[schema(min_length = 1, max_length = 128)]
    pub code: String,
    /// An invite code from an admin: binds this WeChat account to the tenant as staff.
    #[validate(length(min = 1, max = 128))]
    #[schema(min_length = 1, max_length = 128)]
    pub invite: Option<String>,
    /// For staff of several tenants: which tenant to log in to (default: the last used).
    #[validate(range(min = 1))]
    #[schema(minimum = 1)]
    pub tenant_id: Option<i64>,
    /// Display name to use when an invite creates the staff account.
    #[validate(length(min = 1, max = 64))]
    #[schema(min_length = 1, max_length = 64)]
    pub display_name: Option<String>,
}

#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"refresh_token": "3f1c0c0e9d1b4a0c8a7f1e2d3c4b5a69788766554433221100ffeeddccbbaa99"}))]
pub struct RefreshRequest {
    /// The refresh token from the last login or refresh; it can be used once.
    #[validate(length(min = 1, max = 256))]
    #[schema(min_length = 1, max_length = 256)]
    pub refresh_token: String,
}

/// Who is logged in.
#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({
    "kind": "staff", "id": 12, "tenant_id": 3, "role": "admin", "display_name": "王经理"
}))]
pub struct PrincipalView {
    pub kind: PrincipalKindView,
    /// Staff id or visitor id.
    pub id: i64,
    /// The tenant of a staff member; absent for visitors.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tenant_id: Option<i64>,
    /// `admin`, `manager`, `sales`, or `visitor`.
    pub role: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
}

#[derive(Debug, Clone, Copy, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum PrincipalKindView {
    Staff,
    Visitor,
}

#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({
    "access_token": "eyJhbGciOiJIUzI1NiIsImtpZCI6ImsxIiwidHlwIjoiSldUIn0.eyJzdWIiOiIxMiJ9.c2lnbmF0dXJl",
    "token_type": "Bearer",
    "expires_in": 900,
    "expires_at": "2026-11-23T10:15:00Z",
    "refresh_token": "3f1c0c0e9d1b4a0c8a7f1e2d3c4b5a69788766554433221100ffeeddccbbaa99",
    "refresh_expires_at": "2026-12-23T10:00:00Z",
    "principal": {"kind": "staff", "id": 12, "tenant_id": 3, "role": "admin", "display_name": "王经理"}
}))]
pub struct TokenResponse {
    /// Send as `Authorization: Bearer <access_token>`.
    pub access_token: String,
    pub token_type: &'static str,
    /// Seconds until the access token expires.
    pub expires_in: u64,
    pub expires_at: DateTime<Utc>,
    /// Exchange at `/api/v1/auth/refresh` for a new pair; single use.
    pub refresh_token: String,
    pub refresh_expires_at: DateTime<Utc>,
    pub principal: PrincipalView,
}

#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({"id": 3, "name": "星河科技", "timezone": "Asia/Shanghai"}))]
pub struct TenantView {
    pub id: i64,
    pub name: String,
    pub timezone: String,
}

#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({
    "principal": {"kind": "staff", "id": 12, "tenant_id": 3, "role": "admin", "display_name": "王经理"},
    "tenant": {"id": 3, "name": "星河科技", "timezone": "Asia/Shanghai"}
}))]
pub struct MeResponse {
    pub principal: PrincipalView,
    /// The staff member's tenant; absent for visitors.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tenant: Option<TenantView>,
}

fn staff_view(staff: &staff::Staff) -> PrincipalView {
    PrincipalView {
        kind: PrincipalKindView::Staff,
        id: staff.id.0,
        tenant_id: Some(staff.tenant_id.0),
        role: staff.role.as_str().to_owned(),
        display_name: Some(staff.display_name.clone()),
    }
}

fn visitor_view(id: i64) -> PrincipalView {
    PrincipalView {
        kind: PrincipalKindView::Visitor,
        id,
        tenant_id: None,
        role: "visitor".to_owned(),
        display_name: None,
    }
}

/// Signs an access token for `session` and packs it with the refresh token.
fn token_response(
    state: &AppState,
    session: &Session,
    role: &str,
    issued: sessions::IssuedRefreshToken,
    principal: PrincipalView,
) -> Result<TokenResponse, ApiError> {
    let kind = match session.kind {
        SubjectKind::Staff => PrincipalKind::Staff,
        SubjectKind::Visitor => PrincipalKind::Visitor,
    };
    let access = state.jwt.issue_at(
        &Subject {
            id: session.subject_id,
            tenant_id: session.tenant_id.map(|t| t.0),
            role: role.to_owned(),
            kind,
            session_id: session.id.0,
        },
        scantag_domain::kernel::clock::now(),
    )?;
    Ok(TokenResponse {
        access_token: access.token,
        token_type: "Bearer",
        expires_in: state.jwt.access_ttl().as_secs(),
        expires_at: access.expires_at,
        refresh_token: issued.token,
        refresh_expires_at: issued.expires_at,
        principal,
    })
}

/// Log in with a `wx.login()` code.
///
/// The code is exchanged with WeChat (code2session); the WeChat `session_key` stays on the
/// server. With a valid `invite` the WeChat account becomes a staff member of the invite's
/// tenant. Without one, a known staff account logs in; anyone else gets a visitor session,
/// which has no staff rights.
#[utoipa::path(
    tag = "auth",
    request_body = LoginRequest,
    responses(
        (status = 200, description = "Logged in; a new session was started", body = TokenResponse),
        (status = 400, description = "The WeChat code is invalid or already used (`wechat_code_invalid`, `wechat_code_used`), the JSON is malformed (`malformed_json`), or the invite is unknown (`invite_invalid`)", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "WeChat flagged the user as high risk (`wechat_user_blocked`)", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The invite was already used (`invite_used`) or the account is already staff of that tenant (`already_member`)", body = Problem, content_type = "application/problem+json"),
        (status = 410, description = "The invite has expired (`invite_expired`)", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "The body is not JSON (`unsupported_media_type`)", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Missing or invalid fields (`validation_failed`)", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "WeChat rate-limits the mini-program (`wechat_rate_limited`); see Retry-After", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "WeChat is unreachable or busy (`wechat_unavailable`); see Retry-After", body = Problem, content_type = "application/problem+json")
    )
)]
#[post("/auth/wechat/login")]
pub async fn login(
    state: web::Data<AppState>,
    body: ValidJson<LoginRequest>,
) -> Result<HttpResponse, ApiError> {
    let request = body.into_inner()?;
    let session = state.wechat.code_to_session(&request.code).await?;
    let identity = WeChatIdentity {
        openid: session.openid,
        unionid: session.unionid,
    };
    let principal = staff::login(
        &state.db,
        &identity,
        request.invite.as_deref(),
        request.tenant_id.map(TenantId),
        request.display_name.as_deref(),
    )
    .await?;
    let response = match principal {
        LoginPrincipal::Staff(staff) => {
            let (session, issued) = sessions::start(
                &state.db,
                SubjectKind::Staff,
                staff.id.0,
                Some(staff.tenant_id),
                state.refresh_ttl,
            )
            .await?;
            token_response(
                &state,
                &session,
                staff.role.as_str(),
                issued,
                staff_view(&staff),
            )?
        }
        LoginPrincipal::Visitor(visitor) => {
            let (session, issued) = sessions::start(
                &state.db,
                SubjectKind::Visitor,
                visitor.id.0,
                None,
                state.refresh_ttl,
            )
            .await?;
            token_response(
                &state,
                &session,
                "visitor",
                issued,
                visitor_view(visitor.id.0),
            )?
        }
    };
    Ok(HttpResponse::Ok().json(response))
}

/// Exchange a refresh token for a new access token and refresh token.
///
/// Each refresh token works once. Presenting one that was already used revokes the whole
/// session (its access tokens stop working at once), since it means the token was copied.
#[utoipa::path(
    tag = "auth",
    request_body = RefreshRequest,
    responses(
        (status = 200, description = "A new token pair", body = TokenResponse),
        (status = 401, description = "Unknown, expired or revoked token (`refresh_token_invalid`), or a reused one (`refresh_token_reused`)", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Missing or invalid fields (`validation_failed`)", body = Problem, content_type = "application/problem+json")
    )
)]
#[post("/auth/refresh")]
pub async fn refresh(
    state: web::Data<AppState>,
    body: ValidJson<RefreshRequest>,
) -> Result<HttpResponse, ApiError> {
    let (session, issued) = sessions::rotate(
        &state.db,
        &body.into_inner()?.refresh_token,
        state.refresh_ttl,
    )
    .await?;
    let ended = || {
        ApiError::unauthorized(
            "refresh_token_invalid",
            "the account behind this session is no longer active; log in again",
        )
    };
    let response = match session.kind {
        SubjectKind::Staff => {
            let tenant = session.tenant_id.ok_or_else(ended)?;
            let Some(staff) = staff::find_active(
                &state.db,
                tenant,
                scantag_domain::StaffId(session.subject_id),
            )
            .await?
            else {
                sessions::revoke(&state.db, session.id, "staff_inactive").await?;
                return Err(ended());
            };
            token_response(
                &state,
                &session,
                staff.role.as_str(),
                issued,
                staff_view(&staff),
            )?
        }
        SubjectKind::Visitor => token_response(
            &state,
            &session,
            "visitor",
            issued,
            visitor_view(session.subject_id),
        )?,
    };
    Ok(HttpResponse::Ok().json(response))
}

/// End the caller's session: its refresh token and every access token issued in it stop
/// working immediately.
#[utoipa::path(
    tag = "auth",
    security(("bearer" = [])),
    responses(
        (status = 204, description = "The session has ended")
    )
)]
#[post("/auth/logout")]
pub async fn logout(state: web::Data<AppState>, caller: Caller) -> Result<HttpResponse, ApiError> {
    sessions::revoke(&state.db, caller.session(), "logout").await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Who the access token belongs to, and for staff their tenant.
#[utoipa::path(
    tag = "auth",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The caller", body = MeResponse),
        (status = 401, description = "Missing, invalid, expired or revoked access token (`unauthenticated`, `invalid_token`, `token_expired`, `session_revoked`)", body = Problem, content_type = "application/problem+json")
    )
)]
#[get("/me")]
pub async fn me(state: web::Data<AppState>, caller: Caller) -> Result<HttpResponse, ApiError> {
    let response = match caller {
        Caller::Staff(s) => {
            let tenant = tenants::find(&state.db, s.tenant())
                .await?
                .ok_or_else(|| ApiError::not_found("tenant"))?;
            MeResponse {
                principal: staff_view(&s.staff),
                tenant: Some(TenantView {
                    id: tenant.id.0,
                    name: tenant.name,
                    timezone: tenant.timezone,
                }),
            }
        }
        Caller::Visitor(v) => MeResponse {
            principal: visitor_view(v.visitor.id.0),
            tenant: None,
        },
    };
    Ok(HttpResponse::Ok().json(response))
}

/// The roles an invite can grant, as they appear on the wire.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum RoleView {
    Admin,
    Manager,
    Sales,
}

impl From<RoleView> for Role {
    fn from(r: RoleView) -> Self {
        match r {
            RoleView::Admin => Role::Admin,
            RoleView::Manager => Role::Manager,
            RoleView::Sales => Role::Sales,
        }
    }
}

impl From<Role> for RoleView {
    fn from(r: Role) -> Self {
        match r {
            Role::Admin => RoleView::Admin,
            Role::Manager => RoleView::Manager,
            Role::Sales => RoleView::Sales,
        }
    }
}
