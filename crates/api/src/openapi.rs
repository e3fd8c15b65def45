//! The OpenAPI document: paths are collected from the routes themselves, so an endpoint cannot
//! be served without being documented. `scantag openapi` prints it; `make openapi` commits it.

use actix_web::App;
use utoipa::openapi::header::HeaderBuilder;
use utoipa::openapi::path::Operation;
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::openapi::{ContentBuilder, Ref, RefOr, ResponseBuilder, Type};
use utoipa::openapi::{ObjectBuilder, Response};
use utoipa::{Modify, OpenApi};
use utoipa_actix_web::AppExt;

use crate::error::{DATABASE_RETRY_AFTER_SECS, FieldError, Problem};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "scantag API",
        description = "The JSON API of scantag, the backend of a WeChat mini-program CRM: \
            WeChat login, staff and tenants, customers and their tags.\n\n\
            Errors are RFC 9457 problem documents (`application/problem+json`) with a stable \
            `code`, field-level `errors` for 422, and the `request_id` (also in the \
            `X-Request-Id` response header).",
        license(name = "Apache-2.0", identifier = "Apache-2.0")
    ),
    modifiers(&BearerAuth),
    components(schemas(Problem, FieldError)),
    tags(
        (name = "auth", description = "WeChat login, tokens and the current caller"),
        (name = "staff", description = "Staff accounts and invites"),
        (name = "tags", description = "The shared two-level tag library: tag groups and tags"),
        (name = "customers", description = "Customers, custom fields, tagging and tag-filtered lists"),
        (name = "channels", description = "Capture channels (渠道码): scenes on mini-program codes, their forms, tags, owner policies and statistics"),
        (name = "capture", description = "The visitor side of a channel: the public form of a scene and the capture submission (扫码即录入)"),
        (name = "tasks", description = "Each staff member's own to-dos, such as following up a captured customer"),
        (name = "facts", description = "What customers do: orders, follow-ups and activity events, one by one or in bulk; each runs the tenant's rules on the customer"),
        (name = "rules", description = "Tagging rules: a condition tree over fields, tags and facts, and the actions it triggers; why a rule holds for a customer"),
        (name = "health", description = "Liveness and readiness probes"),
        (name = "dev", description = "Testing from outside: the manual clock (`SCANTAG_DEV__MANUAL_CLOCK=true`, only with a WeChat mock); 404 on a server with the real clock")
    )
)]
pub struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        let mut scheme = Http::new(HttpAuthScheme::Bearer);
        scheme.bearer_format = Some("JWT".to_owned());
        scheme.description =
            Some("Access token from /api/v1/auth/wechat/login or /api/v1/auth/refresh".to_owned());
        components.add_security_scheme("bearer", SecurityScheme::Http(scheme));
    }
}

/// Operations with a bearer token that any caller may use; every other one is for staff and
/// refuses a visitor's token with 403 `staff_only` (the `StaffCaller` extractor).
const ANY_CALLER: &[&str] = &[
    "logout",
    "me",
    "submit_capture",
    "create_event",
    "bulk_events",
];

/// Operations without a `database_unavailable` problem: liveness never reads the database, and
/// readiness answers its 503 with a `Readiness` body of its own.
const NO_DATABASE: &[&str] = &["healthz", "readyz"];

/// Every operation of the document.
fn operations_mut(api: &mut utoipa::openapi::OpenApi) -> impl Iterator<Item = &mut Operation> {
    api.paths.paths.values_mut().flat_map(|item| {
        [
            &mut item.get,
            &mut item.put,
            &mut item.post,
            &mut item.delete,
            &mut item.patch,
        ]
        .into_iter()
        .flatten()
    })
}

/// Adds the answers that come from the shared extractors rather than from each handler, so
/// the document lists every status an operation can give: a JSON body can be broken (400),
/// too large (413) or not JSON (415); a bearer operation refuses a missing or bad token (401,
/// unless it documents its own); a staff operation refuses visitors (403); any
/// operation that reads the database answers 503 while it is unreachable.
fn add_common_responses(api: &mut utoipa::openapi::OpenApi) {
    for operation in operations_mut(api) {
        let id = operation.operation_id.clone().unwrap_or_default();
        if has_json_body(operation) {
            add_problem(
                operation,
                "400",
                "The body is not valid JSON (`malformed_json`)",
            );
            add_problem(
                operation,
                "413",
                "The body is larger than 256 KiB (`payload_too_large`)",
            );
            add_problem(
                operation,
                "415",
                "The body is not `application/json` (`unsupported_media_type`)",
            );
        }
        if operation.security.is_some() && !operation.responses.responses.contains_key("401") {
            add_problem(operation, "401", "Missing or invalid access token");
        }
        if operation.security.is_some() && !ANY_CALLER.contains(&id.as_str()) {
            add_problem(
                operation,
                "403",
                "The token is a visitor's; this endpoint is for staff (`staff_only`)",
            );
        }
        if !NO_DATABASE.contains(&id.as_str()) {
            add_unavailable(operation);
        }
    }
}

fn has_json_body(operation: &Operation) -> bool {
    matches!(&operation.request_body, Some(RefOr::T(body)) if body.content.contains_key("application/json"))
}

fn problem_response(description: &str) -> Response {
    ResponseBuilder::new()
        .description(description)
        .content(
            "application/problem+json",
            ContentBuilder::new()
                .schema(Some(Ref::from_schema_name("Problem")))
                .build(),
        )
        .build()
}

/// Adds a problem response for `status`, or, where the operation already documents that
/// status for another reason, names this one too.
fn add_problem(operation: &mut Operation, status: &str, description: &str) {
    let responses = &mut operation.responses.responses;
    match responses.get_mut(status) {
        Some(RefOr::T(existing)) => {
            if !existing.description.contains(description) {
                existing.description = format!("{}; or: {description}", existing.description);
            }
        }
        Some(RefOr::Ref(_)) => {}
        None => {
            responses.insert(status.to_owned(), RefOr::T(problem_response(description)));
        }
    }
}

fn add_unavailable(operation: &mut Operation) {
    let description = "The database cannot be reached (`database_unavailable`); retry after \
        Retry-After seconds, with the same Idempotency-Key where there is one";
    add_problem(operation, "503", description);
    if let Some(RefOr::T(response)) = operation.responses.responses.get_mut("503") {
        response.headers.insert(
            "Retry-After".to_owned(),
            RefOr::T(
                HeaderBuilder::new()
                    .schema(Some(
                        ObjectBuilder::new()
                            .schema_type(Type::Integer)
                            .minimum(Some(1))
                            .examples([DATABASE_RETRY_AFTER_SECS]),
                    ))
                    .description(Some("Seconds to wait before retrying"))
                    .build(),
            ),
        );
    }
}

/// The complete document, as served at `/api/v1/openapi.json`.
pub fn document() -> utoipa::openapi::OpenApi {
    let (_, mut api) = App::new()
        .into_utoipa_app()
        .openapi(ApiDoc::openapi())
        .configure(crate::routes::configure)
        .split_for_parts();
    add_common_responses(&mut api);
    share_problem_responses(&mut api);
    api
}

/// The shared problem responses, by status: the component each operation's problem answer
/// refers to, and what it means in general (an operation's reference says what it means there).
const PROBLEMS: &[(&str, &str, &str)] = &[
    ("400", "BadRequest", "The request cannot be read"),
    ("401", "Unauthorized", "No valid access token"),
    ("403", "Forbidden", "The caller may not do this"),
    ("404", "NotFound", "No such resource in the caller's tenant"),
    (
        "409",
        "Conflict",
        "The request conflicts with the current state",
    ),
    (
        "410",
        "Gone",
        "The resource exists but can no longer be used",
    ),
    ("413", "PayloadTooLarge", "The body is too large"),
    ("415", "UnsupportedMediaType", "The body is not JSON"),
    (
        "422",
        "ValidationFailed",
        "The request breaks the rules; `errors` lists every field at once",
    ),
    ("429", "TooManyRequests", "Too many requests; retry later"),
    (
        "503",
        "ServiceUnavailable",
        "A dependency is unavailable; retry after Retry-After seconds",
    ),
];

/// Replaces every operation's problem answer with a reference to one shared response per
/// status (`#/components/responses/…`), keeping the operation's own description on the
/// reference, so the document defines each problem response once.
fn share_problem_responses(api: &mut utoipa::openapi::OpenApi) {
    let mut used: Vec<(&str, Response)> = Vec::new();
    for operation in operations_mut(api) {
        for (status, response) in operation.responses.responses.iter_mut() {
            let Some(&(_, name, general)) = PROBLEMS.iter().find(|(s, ..)| s == status) else {
                continue;
            };
            let RefOr::T(inline) = response else {
                continue;
            };
            if !is_problem_only(inline) {
                continue;
            }
            match used.iter().find(|(n, _)| *n == name) {
                // A problem answer with headers of its own stays inline.
                Some((_, shared)) if shared.headers != inline.headers => continue,
                Some(_) => {}
                None => {
                    let mut shared = inline.clone();
                    shared.description = general.to_owned();
                    used.push((name, shared));
                }
            }
            let mut reference = Ref::new(format!("#/components/responses/{name}"));
            reference.description = inline.description.clone();
            *response = RefOr::Ref(reference);
        }
    }
    let components = api.components.get_or_insert_with(Default::default);
    for (name, response) in used {
        components
            .responses
            .insert(name.to_owned(), RefOr::T(response));
    }
}

/// Whether the response is a bare problem document (headers aside, which must then be the
/// shared response's).
fn is_problem_only(response: &Response) -> bool {
    response.content.len() == 1
        && matches!(
            response.content.get("application/problem+json"),
            Some(RefOr::T(content))
                if matches!(&content.schema, Some(RefOr::Ref(r)) if r.ref_location == "#/components/schemas/Problem")
                    && content.example.is_none()
                    && content.examples.is_empty()
        )
        && response.links.is_empty()
}

/// The document as committed in `openapi/openapi.json`.
pub fn document_json() -> Result<String, serde_json::Error> {
    document().to_pretty_json().map(|mut s| {
        s.push('\n');
        s
    })
}
