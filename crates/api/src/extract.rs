//! Request extractors: a JSON body that is parsed and validated with field-level errors, and
//! the authenticated caller, which makes tenant scoping the default for every handler.
//!
//! Body and query extractors never fail on their own. actix-web polls a handler's extractors
//! together, so a body that can be judged at once would otherwise answer 422 before the caller's
//! session has even been loaded. They keep their verdict instead, and the handler takes it with
//! [`ValidJson::into_inner`] once it has checked who the caller is and what they may do: 401,
//! then 403, then 415/400/422.
//!
//! Over 600 lines because the body extractor's repair loop (every serde error reported at
//! once) and the caller extractors share the verdict-keeping design; the tests follow.

use std::future::Future;
use std::pin::Pin;

use actix_web::body::MessageBody;
use actix_web::dev::{Payload, ServiceRequest, ServiceResponse};
use actix_web::http::StatusCode;
use actix_web::http::header;
use actix_web::middleware::Next;
use actix_web::mime;
use actix_web::{FromRequest, HttpMessage, HttpRequest, web};
use scantag_auth::jwt::{Claims, PrincipalKind};
use scantag_domain::access::StaffActor;
use scantag_domain::access::policy::{self, Action};
use scantag_domain::identity::sessions::{self, SubjectKind};
use scantag_domain::identity::staff::{self, Role, Staff};
use scantag_domain::identity::visitors::{self, Visitor};
use scantag_domain::{SessionId, StaffId, TenantId, VisitorId};
use serde::de::DeserializeOwned;
use serde_json::Value;
use validator::{Validate, ValidationErrors, ValidationErrorsKind};

use crate::error::{ApiError, FieldError};
use crate::state::AppState;

/// The largest JSON body accepted.
pub const JSON_LIMIT: usize = 256 * 1024;

/// A JSON request body, deserialised and validated. Wrong content types answer 415, broken
/// JSON 400, and wrong, missing or invalid fields 422 with one entry per field — when the
/// handler asks for it with [`ValidJson::into_inner`].
pub struct ValidJson<T>(Result<T, ApiError>);

impl<T> ValidJson<T> {
    /// The body, or why it is refused. Call it after the caller's permissions are checked.
    pub fn into_inner(self) -> Result<T, ApiError> {
        self.0
    }
}

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
            // The body is read even when it will be refused, so the connection stays usable.
            let bytes = body.await;
            Ok(ValidJson(read_body::<T>(is_json, bytes)))
        })
    }
}

fn read_body<T: DeserializeOwned + Validate>(
    is_json: bool,
    bytes: Result<web::Bytes, actix_web::Error>,
) -> Result<T, ApiError> {
    if !is_json {
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "the request body must be JSON (Content-Type: application/json)",
        ));
    }
    let bytes = bytes.map_err(|_| {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            format!("the request body must be at most {JSON_LIMIT} bytes"),
        )
    })?;
    parse_json::<T>(&bytes)
}

fn parse_json<T: DeserializeOwned + Validate>(bytes: &[u8]) -> Result<T, ApiError> {
    // Parsing to a value first separates broken JSON (400) from JSON of the wrong shape (422),
    // which serde_json alone reports alike for some mistakes (a number where an enum goes).
    let value: Value = serde_json::from_slice(bytes).map_err(|err| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "malformed_json",
            format!("the request body is not valid JSON: {err}"),
        )
    })?;
    from_value_validated(value)
}

/// Deserialises and validates `value`, answering 422 with every offending field.
pub fn from_value_validated<T: DeserializeOwned + Validate>(value: Value) -> Result<T, ApiError> {
    let (parsed, mut errors) = read_all::<T>(value);
    if let Some(parsed) = &parsed
        && let Err(invalid) = parsed.validate()
    {
        let shape_errors = !errors.is_empty();
        for error in field_errors(&invalid) {
            // A stand-in put where a field was missing or mistyped is no news to the client.
            let covered = errors.iter().any(|e| within(&error.field, &e.field))
                || (shape_errors && error.field == "body");
            if !covered {
                errors.push(error);
            }
        }
    }
    match parsed {
        Some(parsed) if errors.is_empty() => Ok(parsed),
        _ => Err(ApiError::validation(errors)),
    }
}

/// Deserialises `value` into `T`, answering 422 with every offending field.
pub fn from_value<T: DeserializeOwned>(value: Value) -> Result<T, ApiError> {
    match read_all::<T>(value) {
        (Some(parsed), errors) if errors.is_empty() => Ok(parsed),
        (_, errors) => Err(ApiError::validation(errors)),
    }
}

/// Whether `field` is `parent` or lies inside it.
fn within(field: &str, parent: &str) -> bool {
    field == parent
        || field
            .strip_prefix(parent)
            .is_some_and(|rest| rest.starts_with('.') || rest.starts_with('['))
}

/// Bounds the repair loop of [`read_all`]; a body with more problems than this gets the first
/// ones.
const MAX_ROUNDS: usize = 48;

/// One step of a path into a JSON value.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Step {
    Key(String),
    Index(usize),
}

/// serde stops at the first error. To name every bad field at once, each error is recorded and
/// the offending spot repaired — an unknown field removed, a missing or mistyped one replaced
/// by a stand-in that deserialises — and the value read again, until it reads or a spot cannot
/// be repaired. Returns the value (read from the repaired input, so only for further checks
/// when there are errors) and the errors.
///
/// Repairs stop as soon as they would invent errors: when a stand-in makes the enclosing value
/// fail (serde loses the path inside internally tagged enums, so the error then lands on an
/// ancestor), or when a field of a nested object turns out missing beside an enum value the
/// repair chose — in a tagged enum (`{"type": …}`) which fields are required depends on the
/// variant the client did not get to name.
fn read_all<T: DeserializeOwned>(mut value: Value) -> (Option<T>, Vec<FieldError>) {
    let mut errors: Vec<FieldError> = Vec::new();
    let mut repairing: Option<Repairing> = None;
    for _ in 0..MAX_ROUNDS {
        let err = match serde_path_to_error::deserialize::<_, T>(&value) {
            Ok(parsed) => return (Some(parsed), errors),
            Err(err) => err,
        };
        let path = steps(err.path());
        let message = err.into_inner().to_string();
        let (field_error, repair) = classify(&path, &message);
        let spot = repair.spot().to_vec();
        let (attempts, variant_tried) = match &repairing {
            Some(r) if r.spot == spot => (r.attempts, r.variant_tried),
            Some(r) if r.spot.starts_with(&spot) => return (None, errors),
            Some(r)
                if r.chose_variant
                    && is_missing(&repair)
                    && !parent(&r.spot).is_empty()
                    && spot.starts_with(parent(&r.spot)) =>
            {
                return (None, errors);
            }
            _ => {
                if !errors.iter().any(|e| e.field == field_error.field) {
                    errors.push(field_error);
                }
                (0, false)
            }
        };
        let variant = expected_variant(&message).filter(|_| !variant_tried);
        let (replacement, attempts) = match (&repair, variant) {
            (Repair::Remove(_), _) if attempts == 0 => (Patch::Remove, 1),
            (Repair::Remove(_), _) => return (None, errors),
            (_, Some(variant)) => (Patch::Set(Value::String(variant)), attempts),
            (_, None) => match stand_in(attempts) {
                Some(stand_in) => (Patch::Set(stand_in), attempts + 1),
                None => return (None, errors),
            },
        };
        let chose_variant = matches!(&replacement, Patch::Set(Value::String(v)) if !v.is_empty());
        if !patch(&mut value, &spot, replacement) {
            return (None, errors);
        }
        repairing = Some(Repairing {
            spot,
            attempts,
            variant_tried: variant_tried || chose_variant,
            chose_variant,
        });
    }
    (None, errors)
}

/// The spot [`read_all`] is repairing.
struct Repairing {
    spot: Vec<Step>,
    /// Stand-ins of [`stand_in`] tried there so far.
    attempts: usize,
    /// Whether an enum variant named in serde's message was tried there.
    variant_tried: bool,
    /// Whether the last repair put such a variant there.
    chose_variant: bool,
}

fn parent(spot: &[Step]) -> &[Step] {
    spot.split_last().map_or(spot, |(_, parent)| parent)
}

fn is_missing(repair: &Repair) -> bool {
    matches!(repair, Repair::Insert(_))
}

fn steps(path: &serde_path_to_error::Path) -> Vec<Step> {
    path.iter()
        .filter_map(|segment| match segment {
            serde_path_to_error::Segment::Map { key } => Some(Step::Key(key.clone())),
            serde_path_to_error::Segment::Seq { index } => Some(Step::Index(*index)),
            _ => None,
        })
        .collect()
}

/// Values of different JSON types, tried in turn where a field is missing or mistyped.
fn stand_in(attempt: usize) -> Option<Value> {
    let value = match attempt {
        0 => Value::Null,
        1 => Value::String(String::new()),
        2 => Value::from(1),
        3 => Value::Bool(false),
        4 => Value::Array(Vec::new()),
        5 => Value::Object(serde_json::Map::new()),
        _ => return None,
    };
    Some(value)
}

/// The first variant an "unknown variant" error lists: a stand-in that reads as the enum.
fn expected_variant(message: &str) -> Option<String> {
    let (_, expected) = message
        .strip_prefix("unknown variant")?
        .split_once("expected")?;
    let start = expected.find('`')? + 1;
    let len = expected[start..].find('`')?;
    Some(expected[start..start + len].to_owned())
}

/// How to get past an error at a spot.
enum Repair {
    /// An unknown field: take it out.
    Remove(Vec<Step>),
    /// A mistyped field: put a stand-in there.
    Replace(Vec<Step>),
    /// A missing field: put a stand-in there.
    Insert(Vec<Step>),
}

impl Repair {
    fn spot(&self) -> &[Step] {
        match self {
            Repair::Remove(spot) | Repair::Replace(spot) | Repair::Insert(spot) => spot,
        }
    }
}

/// What to do at a spot.
enum Patch {
    Remove,
    Set(Value),
}

/// Applies `patch` at `spot`; false when the spot is not reachable.
fn patch(value: &mut Value, spot: &[Step], patch: Patch) -> bool {
    let Some((last, parents)) = spot.split_last() else {
        return false;
    };
    let mut at = value;
    for step in parents {
        let next = match (step, at) {
            (Step::Key(key), Value::Object(map)) => map.get_mut(key),
            (Step::Index(i), Value::Array(items)) => items.get_mut(*i),
            _ => None,
        };
        match next {
            Some(next) => at = next,
            None => return false,
        }
    }
    match (last, at, patch) {
        (Step::Key(key), Value::Object(map), Patch::Set(new)) => {
            map.insert(key.clone(), new);
            true
        }
        (Step::Key(key), Value::Object(map), Patch::Remove) => map.remove(key).is_some(),
        (Step::Index(i), Value::Array(items), Patch::Set(new)) if *i < items.len() => {
            items[*i] = new;
            true
        }
        _ => false,
    }
}

/// A path as clients see it: `items[2].name`; the body itself is `body`.
fn render(path: &[Step]) -> String {
    let mut out = String::new();
    for step in path {
        match step {
            Step::Key(key) => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(key);
            }
            Step::Index(i) => out.push_str(&format!("[{i}]")),
        }
    }
    if out.is_empty() {
        out.push_str("body");
    }
    out
}

/// The 422 entry for a deserialisation error at `path`, and how to get past it.
fn classify(path: &[Step], message: &str) -> (FieldError, Repair) {
    let message = message
        .split(" at line ")
        .next()
        .unwrap_or(message)
        .to_owned();
    if let Some(name) = backticked(&message, "missing field") {
        let mut spot = path.to_vec();
        spot.push(Step::Key(name));
        let field = FieldError::new(render(&spot), "required", "is required");
        return (field, Repair::Insert(spot));
    }
    if let Some(name) = backticked(&message, "unknown field") {
        let mut spot = path.to_vec();
        if spot.last() != Some(&Step::Key(name.clone())) {
            spot.push(Step::Key(name));
        }
        let field = FieldError::new(render(&spot), "unknown_field", message);
        return (field, Repair::Remove(spot));
    }
    let code = if message.starts_with("invalid type") || message.starts_with("invalid digit") {
        "invalid_type"
    } else {
        "invalid_value"
    };
    let field = FieldError::new(render(path), code, message);
    (field, Repair::Replace(path.to_vec()))
}

/// Query-string parameters, deserialised and validated like [`ValidJson`] bodies (422 with
/// every offending parameter named), handed over by [`ValidQuery::into_inner`].
pub struct ValidQuery<T>(Result<T, ApiError>);

impl<T> ValidQuery<T> {
    /// The parameters, or why they are refused. Call it after the caller's permissions are
    /// checked.
    pub fn into_inner(self) -> Result<T, ApiError> {
        self.0
    }
}

impl<T: DeserializeOwned + Validate + 'static> FromRequest for ValidQuery<T> {
    type Error = ApiError;
    type Future = std::future::Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let pairs: Vec<(String, String)> = form_urlencoded::parse(req.query_string().as_bytes())
            .into_owned()
            .collect();
        std::future::ready(Ok(ValidQuery(read_query::<T>(pairs))))
    }
}

/// Reads query parameters like [`read_all`] reads a body: a bad parameter is recorded and
/// left out, and the rest read again, so every bad one is named at once.
fn read_query<T: DeserializeOwned + Validate>(
    mut pairs: Vec<(String, String)>,
) -> Result<T, ApiError> {
    let mut errors: Vec<FieldError> = Vec::new();
    for _ in 0..MAX_ROUNDS {
        let encoded = form_urlencoded::Serializer::new(String::new())
            .extend_pairs(pairs.iter())
            .finish();
        let de = serde_urlencoded::Deserializer::new(form_urlencoded::parse(encoded.as_bytes()));
        let err = match serde_path_to_error::deserialize::<_, T>(de) {
            Ok(parsed) => {
                if let Err(invalid) = parsed.validate() {
                    let shape_errors = !errors.is_empty();
                    let rule_errors = field_errors(&invalid).into_iter();
                    errors.extend(rule_errors.filter(|e| !(shape_errors && e.field == "body")));
                }
                if errors.is_empty() {
                    return Ok(parsed);
                }
                break;
            }
            Err(err) => err,
        };
        let path = steps(err.path());
        let (field_error, repair) = classify(&path, &err.into_inner().to_string());
        let name = match repair.spot() {
            [Step::Key(name)] if !matches!(repair, Repair::Insert(_)) => name.clone(),
            _ => {
                errors.push(field_error);
                break;
            }
        };
        errors.push(field_error);
        pairs.retain(|(key, _)| *key != name);
    }
    Err(ApiError::validation(errors))
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
                        .unwrap_or_else(|| default_message(e));
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

/// A domain field issue as a validator error, for checks the edge runs ahead of the domain so
/// that their errors come together with the others.
pub fn issue_error(issue: scantag_domain::FieldIssue) -> validator::ValidationError {
    let mut err = validator::ValidationError::new(issue.code);
    err.message = Some(issue.message.into());
    err
}

/// A message for a validator check that names its bounds, e.g. "must be 1 to 32 characters".
fn default_message(e: &validator::ValidationError) -> String {
    let param = |name: &str| e.params.get(name).map(ToString::to_string);
    let (min, max, equal) = (param("min"), param("max"), param("equal"));
    match (e.code.as_ref(), min, max, equal) {
        ("length", _, _, Some(n)) => format!("must be exactly {n} characters long"),
        ("length", Some(min), Some(max), _) => format!("must be {min} to {max} characters long"),
        ("length", Some(min), None, _) => format!("must be at least {min} characters long"),
        ("length", None, Some(max), _) => format!("must be at most {max} characters long"),
        ("range", Some(min), Some(max), _) => format!("must be between {min} and {max}"),
        ("range", Some(min), None, _) => format!("must be at least {min}"),
        ("range", None, Some(max), _) => format!("must be at most {max}"),
        (code, ..) => format!("failed the {code} check"),
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

    /// The caller as the domain's actor.
    pub fn actor(&self) -> StaffActor {
        StaffActor {
            tenant: self.staff.tenant_id,
            id: self.staff.id,
            role: self.staff.role,
        }
    }

    /// Fails with 403 unless the policy lets the caller perform `action`. Handlers ask before
    /// taking the body, so that a refusal comes before a validation error; the domain asks
    /// again before acting.
    pub fn may(&self, action: Action) -> Result<(), ApiError> {
        Ok(policy::permit(&self.actor(), action)?)
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
    let claims: Claims = state
        .jwt
        .verify_at(token, scantag_domain::kernel::clock::now())?;
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

/// Who the bearer token of a request names, found by [`resolve_caller`].
struct Resolved(Result<Caller, ApiError>);

/// Middleware: authenticates a request's bearer token before any extractor runs, so that the
/// `Caller` extractor is ready at once and its 401 or 403 comes before anything another
/// extractor of the handler has to say (a path id that is not a number, say).
pub async fn resolve_caller(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    if req.headers().contains_key(header::AUTHORIZATION)
        && let Some(state) = req.app_data::<web::Data<AppState>>().cloned()
    {
        let resolved = match bearer(req.request()) {
            Ok(token) => authenticate(&state, &token).await,
            Err(err) => Err(err),
        };
        req.extensions_mut().insert(Resolved(resolved));
    }
    next.call(req).await
}

impl FromRequest for Caller {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, ApiError>>>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        if let Some(Resolved(resolved)) = req.extensions_mut().remove::<Resolved>() {
            return Box::pin(std::future::ready(resolved));
        }
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
        assert_eq!(errors[0].message, "must be 1 to 3 characters long");
    }

    #[derive(Debug, serde::Deserialize, Validate)]
    #[serde(deny_unknown_fields)]
    struct Outer {
        #[validate(length(min = 1, max = 3))]
        name: String,
        #[allow(dead_code)]
        kind: Kind,
        #[validate(nested)]
        items: Vec<Body>,
    }

    #[derive(Debug, serde::Deserialize)]
    #[serde(rename_all = "snake_case")]
    enum Kind {
        Plain,
    }

    fn fields(err: &ApiError) -> Vec<(String, String)> {
        err.errors()
            .iter()
            .map(|e| (e.field.clone(), e.code.clone()))
            .collect()
    }

    #[test]
    fn every_missing_field_is_named_at_once() {
        let err = parse_json::<Outer>(b"{}").unwrap_err();
        assert_eq!(
            fields(&err),
            [
                ("name".into(), "required".into()),
                ("kind".into(), "required".into()),
                ("items".into(), "required".into())
            ]
        );
    }

    #[test]
    fn shape_and_rule_errors_are_reported_together() {
        let body = br#"{"name": "long", "kind": 5, "extra": 1,
                        "items": [{"name": "ok", "count": 1}, {"name": "", "count": "x"}]}"#;
        let err = parse_json::<Outer>(body).unwrap_err();
        let mut got = fields(&err);
        got.sort();
        assert_eq!(
            got,
            [
                ("extra".into(), "unknown_field".into()),
                ("items[1].count".into(), "invalid_type".into()),
                ("items[1].name".into(), "length".into()),
                ("kind".into(), "invalid_type".into()),
                ("name".into(), "length".into()),
            ]
        );
    }

    #[derive(Debug, serde::Deserialize, Validate)]
    #[serde(deny_unknown_fields)]
    struct WithPolicy {
        #[allow(dead_code)]
        policy: Policy,
        #[validate(length(min = 1))]
        name: String,
    }

    #[derive(Debug, serde::Deserialize)]
    #[serde(tag = "type", rename_all = "snake_case")]
    #[allow(dead_code)]
    enum Policy {
        Fixed { staff_id: i64 },
        Pool,
    }

    #[test]
    fn a_tagged_enum_gets_its_own_error_and_no_invented_ones() {
        let err =
            parse_json::<WithPolicy>(br#"{"policy": {"type": "fixed"}, "name": ""}"#).unwrap_err();
        let got = fields(&err);
        assert!(
            got.contains(&("policy.staff_id".into(), "required".into())),
            "{got:?}"
        );
        assert!(!got.iter().any(|(f, _)| f == "policy.type"), "{got:?}");

        let err =
            parse_json::<WithPolicy>(br#"{"policy": {"type": "nope"}, "name": "x"}"#).unwrap_err();
        let got = fields(&err);
        assert_eq!(got.len(), 1, "{got:?}");
        assert!(got[0].0.starts_with("policy"), "{got:?}");
    }

    #[test]
    fn a_body_that_is_not_an_object_is_named_body() {
        let err = parse_json::<Body>(b"[]").unwrap_err();
        let got = fields(&err);
        assert_eq!(got.len(), 1, "{got:?}");
        assert_eq!(got[0].0, "body");
    }

    #[derive(Debug, serde::Deserialize, Validate)]
    #[serde(deny_unknown_fields)]
    struct Query {
        #[validate(range(min = 1, max = 100))]
        limit: Option<u64>,
        #[allow(dead_code)]
        status: Option<Kind>,
        #[validate(length(min = 1))]
        cursor: Option<String>,
    }

    #[test]
    fn every_bad_query_parameter_is_named_at_once() {
        let pairs = |q: &[(&str, &str)]| {
            q.iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect::<Vec<_>>()
        };
        let err = read_query::<Query>(pairs(&[("limit", "x"), ("status", "nope"), ("other", "1")]))
            .unwrap_err();
        let mut got = fields(&err);
        got.sort();
        assert_eq!(
            got,
            [
                ("limit".into(), "invalid_type".into()),
                ("other".into(), "unknown_field".into()),
                ("status".into(), "invalid_value".into())
            ]
        );
        let err = read_query::<Query>(pairs(&[("limit", "0"), ("cursor", "")])).unwrap_err();
        let mut got = fields(&err);
        got.sort();
        assert_eq!(
            got,
            [
                ("cursor".into(), "length".into()),
                ("limit".into(), "range".into())
            ]
        );
        let ok = read_query::<Query>(pairs(&[("limit", "5")])).unwrap();
        assert_eq!(ok.limit, Some(5));
    }

    #[test]
    fn a_valid_body_reads_unchanged() {
        let body = br#"{"name": "abc", "kind": "plain", "items": [{"name": "x", "count": 2}]}"#;
        let outer = parse_json::<Outer>(body).unwrap();
        assert_eq!(outer.items[0].count, 2);
    }
}
