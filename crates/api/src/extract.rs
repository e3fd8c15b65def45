//! Request extractors: a JSON body that is parsed and validated with field-level errors, and
//! the authenticated caller, which makes tenant scoping the default for every handler.

use std::future::Future;
use std::pin::Pin;

use actix_web::dev::Payload;
use actix_web::http::header;
use actix_web::mime;
use actix_web::{FromRequest, HttpRequest, web};
use scantag_auth::jwt::{Claims, PrincipalKind};
use scantag_domain::sessions::{self, SubjectKind};
use scantag_domain::staff::{self, Role, Staff};
use scantag_domain::visitors::{self, Visitor};
use scantag_domain::{SessionId, StaffId, TenantId, VisitorId};
use serde::de::DeserializeOwned;
use validator::{Validate, ValidationErrors, ValidationErrorsKind};

use crate::error::{ApiError, FieldError};
use crate::state::AppState;

/// The largest JSON body accepted.
pub const JSON_LIMIT: usize = 256 * 1024;

/// A JSON request body, deserialised and validated. Wrong content types answer 415, broken
/// JSON 400, and wrong, missing or invalid fields 422 with one entry per field.
pub struct ValidJson<T>(pub T);

impl<T: DeserializeOwned + Validate + 'static> FromRequest for ValidJson<T> {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, ApiError>>>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let is_json = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<mime::Mime>().ok())
            .is_some_and(|m| {
                m.type_() == mime::APPLICATION
                    && (m.subtype() == mime::JSON || m.suffix() == Some(mime::JSON))
            });
        let body = web::Bytes::from_request(req, payload);
        Box::pin(async move {
            if !is_json {
                return Err(ApiError::new(
                    actix_web::http::StatusCode::UNSUPPORTED_MEDIA_TYPE,
                    "unsupported_media_type",
                    "the request body must be JSON (Content-Type: application/json)",
                ));
            }
            let bytes = body.await.map_err(|_| {
                ApiError::new(
                    actix_web::http::StatusCode::PAYLOAD_TOO_LARGE,
                    "payload_too_large",
                    format!("the request body must be at most {JSON_LIMIT} bytes"),
                )
            })?;
            let value = parse_json::<T>(&bytes)?;
            value
                .validate()
                .map_err(|e| ApiError::validation(field_errors(&e)))?;
            Ok(ValidJson(value))
        })
    }
}

fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    // Parsing to a value first separates broken JSON (400) from JSON of the wrong shape (422),
    // which serde_json alone reports alike for some mistakes (a number where an enum goes).
    let value: serde_json::Value = serde_json::from_slice(bytes).map_err(|err| {
        ApiError::new(
            actix_web::http::StatusCode::BAD_REQUEST,
            "malformed_json",
            format!("the request body is not valid JSON: {err}"),
        )
    })?;
    from_value(value)
}

/// Deserialises `value` into `T`, answering 422 with the path of the offending field.
pub fn from_value<T: DeserializeOwned>(value: serde_json::Value) -> Result<T, ApiError> {
    serde_path_to_error::deserialize(value).map_err(|err| {
        let path = err.path().to_string();
        data_error(&path, &err.into_inner().to_string())
    })
}

/// A 422 naming the field a deserialisation error is about.
fn data_error(path: &str, message: &str) -> ApiError {
    let message = message
        .split(" at line ")
        .next()
        .unwrap_or(message)
        .to_owned();
    let (field, code) = if let Some(name) = backticked(&message, "missing field") {
        (join_path(path, &name), "required")
    } else if let Some(name) = backticked(&message, "unknown field") {
        // The path already ends at the unknown field.
        let field = if path.is_empty() || path == "." {
            name
        } else {
            path.to_owned()
        };
        (field, "unknown_field")
    } else if message.starts_with("invalid type") || message.starts_with("invalid digit") {
        (path.to_owned(), "invalid_type")
    } else {
        (path.to_owned(), "invalid_value")
    };
    ApiError::field(&field, code, message)
}

/// Query-string parameters, deserialised and validated like [`ValidJson`] bodies (422 with
/// the offending parameter named).
pub struct ValidQuery<T>(pub T);

impl<T: DeserializeOwned + Validate + 'static> FromRequest for ValidQuery<T> {
    type Error = ApiError;
    type Future = std::future::Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let query = req.query_string().as_bytes();
        let de = serde_urlencoded::Deserializer::new(form_urlencoded::parse(query));
        let parsed = serde_path_to_error::deserialize::<_, T>(de)
            .map_err(|err| {
                let path = err.path().to_string();
                data_error(&path, &err.into_inner().to_string())
            })
            .and_then(|value| {
                value
                    .validate()
                    .map_err(|e| ApiError::validation(field_errors(&e)))?;
                Ok(ValidQuery(value))
            });
        std::future::ready(parsed)
    }
}

/// The name inside the first pair of backticks of `message`, if it starts with `prefix`.
fn backticked(message: &str, prefix: &str) -> Option<String> {
    let rest = message.strip_prefix(prefix)?;
    let start = rest.find('`')? + 1;
    let len = rest[start..].find('`')?;
    Some(rest[start..start + len].to_owned())
}

fn join_path(parent: &str, field: &str) -> String {
    if parent.is_empty() || parent == "." {
        field.to_owned()
    } else {
        format!("{parent}.{field}")
    }
}

/// Flattens validator's nested errors into one entry per field path.
pub fn field_errors(errors: &ValidationErrors) -> Vec<FieldError> {
    let mut out = Vec::new();
    collect(errors, "", &mut out);
    out
}

fn collect(errors: &ValidationErrors, prefix: &str, out: &mut Vec<FieldError>) {
    for (field, kind) in errors.errors() {
        let path = if field == "__all__" {
            if prefix.is_empty() {
                "body".to_owned()
            } else {
                prefix.to_owned()
            }
        } else {
            join_path(prefix, field)
        };
        match kind {
            ValidationErrorsKind::Field(list) => {
                for e in list {
                    let message = e
                        .message
                        .as_ref()
                        .map(ToString::to_string)
                        .unwrap_or_else(|| format!("failed the {} check", e.code));
                    out.push(FieldError::new(path.clone(), e.code.to_string(), message));
                }
            }
            ValidationErrorsKind::Struct(inner) => collect(inner, &path, out),
            ValidationErrorsKind::List(items) => {
                for (index, inner) in items {
                    collect(inner, &format!("{path}[{index}]"), out);
                }
            }
        }
    }
}

/// The authenticated caller: a staff member of one tenant, or a visitor.
#[derive(Debug, Clone)]
pub enum Caller {
    Staff(StaffCaller),
    Visitor(VisitorCaller),
}

#[derive(Debug, Clone)]
pub struct StaffCaller {
    pub staff: Staff,
    pub session: SessionId,
}

impl StaffCaller {
    pub fn id(&self) -> StaffId {
        self.staff.id
    }

    /// The tenant every query made for this caller is scoped to.
    pub fn tenant(&self) -> TenantId {
        self.staff.tenant_id
    }

    pub fn role(&self) -> Role {
        self.staff.role
    }

    /// Fails with 403 unless the caller has one of `roles`.
    pub fn require(&self, roles: &[Role]) -> Result<(), ApiError> {
        if roles.contains(&self.staff.role) {
            Ok(())
        } else {
            Err(ApiError::forbidden(
                "insufficient_role",
                format!(
                    "this action needs the role {}",
                    roles
                        .iter()
                        .map(|r| r.as_str())
                        .collect::<Vec<_>>()
                        .join(" or ")
                ),
            ))
        }
    }
}

#[derive(Debug, Clone)]
pub struct VisitorCaller {
    pub visitor: Visitor,
    pub session: SessionId,
}

impl Caller {
    pub fn session(&self) -> SessionId {
        match self {
            Caller::Staff(s) => s.session,
            Caller::Visitor(v) => v.session,
        }
    }
}

fn bearer(req: &HttpRequest) -> Result<String, ApiError> {
    let value = req
        .headers()
        .get(header::AUTHORIZATION)
        .ok_or_else(|| ApiError::unauthorized("unauthenticated", "an access token is required"))?;
    let value = value
        .to_str()
        .map_err(|_| ApiError::unauthorized("invalid_token", "the access token is not valid"))?;
    let (scheme, token) = value.split_once(' ').ok_or_else(|| {
        ApiError::unauthorized("invalid_token", "use Authorization: Bearer <token>")
    })?;
    if !scheme.eq_ignore_ascii_case("bearer") || token.trim().is_empty() {
        return Err(ApiError::unauthorized(
            "invalid_token",
            "use Authorization: Bearer <token>",
        ));
    }
    Ok(token.trim().to_owned())
}

fn invalid() -> ApiError {
    ApiError::unauthorized("invalid_token", "the access token is not valid")
}

async fn authenticate(state: &AppState, token: &str) -> Result<Caller, ApiError> {
    let claims: Claims = state.jwt.verify(token)?;
    let Some(session) = sessions::find_active(&state.db, SessionId(claims.sid)).await? else {
        return Err(ApiError::unauthorized(
            "session_revoked",
            "the session has ended; log in again",
        ));
    };
    let subject: i64 = claims.sub.parse().map_err(|_| invalid())?;
    // The token must describe the session it names: same kind of subject, same subject, same
    // tenant. Anything else is a forgery, even if validly signed.
    let kind_matches = matches!(
        (claims.kind, session.kind),
        (PrincipalKind::Staff, SubjectKind::Staff) | (PrincipalKind::Visitor, SubjectKind::Visitor)
    );
    if !kind_matches
        || session.subject_id != subject
        || session.tenant_id.map(|t| t.0) != claims.tid
    {
        return Err(invalid());
    }
    let session = session.id;
    match claims.kind {
        PrincipalKind::Staff => {
            let tenant = TenantId(claims.tid.ok_or_else(invalid)?);
            // A token naming another tenant, or a deactivated account, finds nobody.
            let staff = staff::find_active(&state.db, tenant, StaffId(subject))
                .await?
                .ok_or_else(invalid)?;
            if staff.role.as_str() != claims.role {
                return Err(invalid());
            }
            Ok(Caller::Staff(StaffCaller { staff, session }))
        }
        PrincipalKind::Visitor => {
            if claims.tid.is_some() {
                return Err(invalid());
            }
            let visitor = visitors::find(&state.db, VisitorId(subject))
                .await?
                .ok_or_else(invalid)?;
            Ok(Caller::Visitor(VisitorCaller { visitor, session }))
        }
    }
}

impl FromRequest for Caller {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, ApiError>>>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let state = req.app_data::<web::Data<AppState>>().cloned();
        let token = bearer(req);
        Box::pin(async move {
            let token = token?;
            let state = state.ok_or_else(|| {
                ApiError::internal(&std::io::Error::other("application state is missing"))
            })?;
            authenticate(&state, &token).await
        })
    }
}

impl FromRequest for StaffCaller {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, ApiError>>>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let caller = Caller::from_request(req, payload);
        Box::pin(async move {
            match caller.await? {
                Caller::Staff(staff) => Ok(staff),
                Caller::Visitor(_) => Err(ApiError::forbidden(
                    "staff_only",
                    "this endpoint is for staff; visitors cannot use it",
                )),
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize, Validate)]
    #[serde(deny_unknown_fields)]
    struct Body {
        #[validate(length(min = 1, max = 3))]
        name: String,
        #[allow(dead_code)]
        count: u32,
    }

    #[test]
    fn a_missing_field_is_named() {
        let err = parse_json::<Body>(br#"{"count": 1}"#).unwrap_err();
        assert_eq!(err.code(), "validation_failed");
        assert!(format!("{err:?}").contains("\"name\""));
    }

    #[test]
    fn a_wrong_type_names_its_path() {
        let err = parse_json::<Body>(br#"{"name": "a", "count": "x"}"#).unwrap_err();
        assert!(format!("{err:?}").contains("field: \"count\""), "{err:?}");
    }

    #[test]
    fn broken_json_is_a_bad_request() {
        let err = parse_json::<Body>(br#"{"name": "#).unwrap_err();
        assert_eq!(err.code(), "malformed_json");
    }

    #[test]
    fn validator_errors_become_field_errors() {
        let body = Body {
            name: "long".into(),
            count: 1,
        };
        let errors = field_errors(&body.validate().unwrap_err());
        assert_eq!(errors.len(), 1);
        assert_eq!(errors[0].field, "name");
        assert_eq!(errors[0].code, "length");
    }
}
