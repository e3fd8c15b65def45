//! Every error the API answers, as RFC 9457 `application/problem+json`.
//!
//! A problem carries a stable snake_case `code` clients can branch on, a human `detail`, the
//! request id, and for 422 the offending fields. Server errors log their full cause chain and
//! tell the client nothing more than the request id to quote.

use std::borrow::Cow;

use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpResponse, ResponseError};
use scantag_auth::jwt::JwtError;
use scantag_auth::wechat::WeChatError;
use scantag_domain::DomainError;
use scantag_domain::access::policy::Refusal;
use serde::Serialize;
use utoipa::ToSchema;

use crate::request_context::current_request_id;

/// What a 503 for an unreachable database asks clients to wait, in seconds.
pub const DATABASE_RETRY_AFTER_SECS: u32 = 3;

/// A problem with one field of the request.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(example = json!({"field": "code", "code": "required", "message": "is required"}))]
pub struct FieldError {
    /// Path of the field in the request body, e.g. `code` or `items[2].name`.
    pub field: String,
    /// Stable machine-readable reason, e.g. `required`, `length`, `invalid_type`.
    pub code: String,
    /// Human-readable explanation.
    pub message: String,
}

impl FieldError {
    pub fn new(
        field: impl Into<String>,
        code: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        FieldError {
            field: field.into(),
            code: code.into(),
            message: message.into(),
        }
    }
}

/// An RFC 9457 problem document.
#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({
    "type": "urn:scantag:problem:validation_failed",
    "title": "Unprocessable Entity",
    "status": 422,
    "detail": "the request has invalid fields",
    "code": "validation_failed",
    "request_id": "0193a5c4-8f7e-7a51-9c1e-2b6f3d4e5a60",
    "errors": [{"field": "code", "code": "required", "message": "is required"}]
}))]
pub struct Problem {
    /// `urn:scantag:problem:{code}`.
    #[serde(rename = "type")]
    pub problem_type: String,
    /// The HTTP status phrase.
    pub title: String,
    pub status: u16,
    /// What went wrong, for people.
    pub detail: String,
    /// Stable machine-readable error code.
    pub code: String,
    /// The request id; quote it when reporting a problem.
    pub request_id: Option<String>,
    /// Field-level errors (422 only).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<FieldError>,
    /// For a 409 about a name, scene, key or phone already in use: the id of the record that
    /// holds it.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(example = 7)]
    pub existing_id: Option<i64>,
}

#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    code: Cow<'static, str>,
    detail: String,
    errors: Vec<FieldError>,
    existing_id: Option<i64>,
    retry_after_secs: Option<u32>,
    www_authenticate: bool,
}

impl ApiError {
    pub fn new(
        status: StatusCode,
        code: impl Into<Cow<'static, str>>,
        detail: impl Into<String>,
    ) -> Self {
        ApiError {
            status,
            code: code.into(),
            detail: detail.into(),
            errors: Vec::new(),
            existing_id: None,
            retry_after_secs: None,
            www_authenticate: false,
        }
    }

    pub fn not_found(what: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("{what} not found"),
        )
    }

    pub fn unauthorized(code: &'static str, detail: impl Into<String>) -> Self {
        let mut err = Self::new(StatusCode::UNAUTHORIZED, code, detail);
        err.www_authenticate = true;
        err
    }

    pub fn forbidden(code: &'static str, detail: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, code, detail)
    }

    pub fn validation(errors: Vec<FieldError>) -> Self {
        let mut err = Self::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
            "the request has invalid fields",
        );
        err.errors = errors;
        err
    }

    pub fn field(field: &str, code: &str, message: impl Into<String>) -> Self {
        Self::validation(vec![FieldError::new(field, code, message)])
    }

    /// A server fault: the cause is logged, the client learns only the request id.
    pub fn internal(cause: &dyn std::error::Error) -> Self {
        let mut chain = cause.to_string();
        let mut source = cause.source();
        while let Some(s) = source {
            chain.push_str(": ");
            chain.push_str(&s.to_string());
            source = s.source();
        }
        tracing::error!(error = %chain, "request failed");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal_error",
            "an unexpected error occurred; quote the request id when reporting it",
        )
    }

    /// 503: the database cannot be reached; retrying shortly may succeed.
    pub fn database_unavailable() -> Self {
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "database_unavailable",
            "the database cannot be reached or has no free connection; retry shortly (with the \
             same Idempotency-Key)",
        )
        .with_retry_after(DATABASE_RETRY_AFTER_SECS)
    }

    pub fn with_retry_after(mut self, secs: u32) -> Self {
        self.retry_after_secs = Some(secs);
        self
    }

    /// Whether the server, or something it depends on, failed (a 5xx) rather than the request.
    /// The problem document this error answers with.
    pub fn problem(&self) -> Problem {
        Problem {
            problem_type: format!("urn:scantag:problem:{}", self.code),
            title: self.status.canonical_reason().unwrap_or("Error").to_owned(),
            status: self.status.as_u16(),
            detail: self.detail.clone(),
            code: self.code.to_string(),
            request_id: current_request_id(),
            errors: self.errors.clone(),
            existing_id: self.existing_id,
        }
    }

    pub fn is_server_error(&self) -> bool {
        self.status.is_server_error()
    }

    pub fn code(&self) -> &str {
        &self.code
    }

    pub fn errors(&self) -> &[FieldError] {
        &self.errors
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}: {}", self.status.as_u16(), self.code, self.detail)
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        self.status
    }

    fn error_response(&self) -> HttpResponse {
        let problem = self.problem();
        let mut res = HttpResponse::build(self.status);
        res.insert_header((
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        ));
        if let Some(secs) = self.retry_after_secs {
            res.insert_header((header::RETRY_AFTER, secs.to_string()));
        }
        if self.www_authenticate {
            res.insert_header((header::WWW_AUTHENTICATE, "Bearer"));
        }
        res.json(problem)
    }
}

impl From<Refusal> for ApiError {
    fn from(refusal: Refusal) -> Self {
        ApiError::forbidden("insufficient_role", refusal.to_string())
    }
}

impl From<DomainError> for ApiError {
    fn from(err: DomainError) -> Self {
        match err {
            DomainError::NotFound(what) => ApiError::not_found(what),
            DomainError::Forbidden(detail) => ApiError::forbidden("insufficient_role", detail),
            DomainError::InviteInvalid => ApiError::new(
                StatusCode::BAD_REQUEST,
                "invite_invalid",
                "the invite code is not valid",
            ),
            DomainError::InviteUsed => ApiError::new(
                StatusCode::CONFLICT,
                "invite_used",
                "the invite code has already been used",
            ),
            DomainError::InviteExpired => ApiError::new(
                StatusCode::GONE,
                "invite_expired",
                "the invite code has expired; ask an admin for a new one",
            ),
            DomainError::AlreadyMember => ApiError::new(
                StatusCode::CONFLICT,
                "already_member",
                "this WeChat account is already a staff member of the tenant",
            ),
            DomainError::RefreshInvalid => ApiError::unauthorized(
                "refresh_token_invalid",
                "the refresh token is not valid; log in again",
            ),
            DomainError::RefreshReused => ApiError::unauthorized(
                "refresh_token_reused",
                "the refresh token was already used; the session has been revoked, log in again",
            ),
            DomainError::Conflict(detail) => {
                ApiError::new(StatusCode::CONFLICT, "conflict", detail)
            }
            DomainError::Taken {
                code,
                detail,
                existing_id,
            } => {
                let mut err = ApiError::new(StatusCode::CONFLICT, code.as_str(), detail);
                err.existing_id = existing_id;
                err
            }
            DomainError::Rejected { code, issues } => {
                let mut err = ApiError::validation(
                    issues
                        .into_iter()
                        .map(|i| FieldError::new(i.field, i.code, i.message))
                        .collect(),
                );
                err.code = Cow::Borrowed(code.as_str());
                err
            }
            DomainError::Gone { code, detail } => {
                ApiError::new(StatusCode::GONE, code.as_str(), detail)
            }
            DomainError::Invalid { field, message } => ApiError::field(field, "invalid", message),
            DomainError::Unavailable(db) => {
                tracing::warn!(error = %db, "database unavailable");
                ApiError::database_unavailable()
            }
            err @ DomainError::Database { .. } => ApiError::internal(&err),
        }
    }
}

impl From<WeChatError> for ApiError {
    fn from(err: WeChatError) -> Self {
        match err {
            WeChatError::InvalidCode => ApiError::new(
                StatusCode::BAD_REQUEST,
                "wechat_code_invalid",
                "the WeChat login code is invalid or has expired; call wx.login again",
            ),
            WeChatError::CodeUsed => ApiError::new(
                StatusCode::BAD_REQUEST,
                "wechat_code_used",
                "the WeChat login code was already used; call wx.login again",
            ),
            WeChatError::RateLimited => ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "wechat_rate_limited",
                "WeChat is rate limiting this mini-program; retry later",
            )
            .with_retry_after(60),
            WeChatError::HighRiskUser => ApiError::new(
                StatusCode::FORBIDDEN,
                "wechat_user_blocked",
                "WeChat flagged this user as high risk and refused the login",
            ),
            WeChatError::InvalidArgument { errcode, errmsg } => ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "wechat_invalid_argument",
                format!("WeChat rejected the request ({errcode}: {errmsg})"),
            ),
            other => {
                tracing::error!(error = %other, errcode = ?other.errcode(), "WeChat call failed");
                ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "wechat_unavailable",
                    "WeChat could not be reached or is busy; retry shortly",
                )
                .with_retry_after(5)
            }
        }
    }
}

impl From<JwtError> for ApiError {
    fn from(err: JwtError) -> Self {
        match err {
            JwtError::Expired => {
                ApiError::unauthorized("token_expired", "the access token has expired; refresh it")
            }
            JwtError::Config(_) | JwtError::Signing => ApiError::internal(&err),
            _ => ApiError::unauthorized("invalid_token", "the access token is not valid"),
        }
    }
}
