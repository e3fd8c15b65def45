//! A rule's versions: every condition and action list it has had, as the explanations of its
//! tags name them ("rule 3, v2").

use actix_web::{HttpResponse, get, web};
use chrono::{DateTime, Utc};
use scantag_domain::RuleId;
use scantag_domain::access::policy::Action;
use scantag_domain::rulebook::{RuleBook, RuleVersion};
use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;

use super::schema;
use crate::error::{ApiError, Problem};
use crate::extract::StaffCaller;
use crate::state::AppState;

/// One version of a rule, as it was saved.
#[derive(Debug, Serialize, ToSchema)]
pub struct RuleVersionView {
    pub version: i32,
    pub name: String,
    pub priority: i32,
    #[schema(value_type = Option<schema::RuleCondition>, required = true)]
    pub condition: Value,
    #[schema(value_type = Vec<schema::RuleActionDoc>)]
    pub actions: Value,
    /// Who saved it.
    pub created_by: Option<i64>,
    pub created_at: DateTime<Utc>,
}

impl From<RuleVersion> for RuleVersionView {
    fn from(v: RuleVersion) -> Self {
        RuleVersionView {
            version: v.version,
            name: v.name,
            priority: v.priority,
            condition: serde_json::to_value(&v.condition).unwrap_or(Value::Null),
            actions: serde_json::to_value(&v.actions).unwrap_or(Value::Null),
            created_by: v.created_by.map(|s| s.0),
            created_at: v.created_at,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RuleVersionList {
    /// Newest first.
    pub items: Vec<RuleVersionView>,
}

/// Every version of a rule, newest first. Admins and managers.
///
/// A change of the condition or the actions makes a new version; the tags a rule gives name
/// the version that gave them (`rule_version`).
#[utoipa::path(
    tag = "rules",
    security(("bearer" = [])),
    params(("id" = i64, Path, description = "Rule id", example = 3)),
    responses(
        (status = 200, description = "The rule's versions", body = RuleVersionList),
        (status = 403, description = "Not an admin or manager (`insufficient_role`)", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such rule in the tenant", body = Problem, content_type = "application/problem+json")
    )
)]
#[get("/rules/{id}/versions")]
pub async fn rule_versions(
    state: web::Data<AppState>,
    caller: StaffCaller,
    id: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    caller.may(Action::ManageRules)?;
    let items = RuleBook::new(&state.db, &caller.actor())
        .versions(RuleId(id.into_inner()))
        .await?;
    Ok(HttpResponse::Ok().json(RuleVersionList {
        items: items.into_iter().map(RuleVersionView::from).collect(),
    }))
}
