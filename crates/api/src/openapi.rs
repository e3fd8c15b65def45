//! The OpenAPI document: paths are collected from the routes themselves, so an endpoint cannot
//! be served without being documented. `scantag openapi` prints it; `make openapi` commits it.

use actix_web::App;
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::{Modify, OpenApi};
use utoipa_actix_web::AppExt;

use crate::error::{FieldError, Problem};

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
        (name = "health", description = "Liveness and readiness probes")
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

/// The complete document, as served at `/api/v1/openapi.json`.
pub fn document() -> utoipa::openapi::OpenApi {
    let (_, api) = App::new()
        .into_utoipa_app()
        .openapi(ApiDoc::openapi())
        .configure(crate::routes::configure)
        .split_for_parts();
    api
}

/// The document as committed in `openapi/openapi.json`.
pub fn document_json() -> Result<String, serde_json::Error> {
    document().to_pretty_json().map(|mut s| {
        s.push('\n');
        s
    })
}
