//! The dry run of a rule: what saving it would do to the tags of the customers the caller
//! sees, writing nothing.

use actix_web::{HttpResponse, post, web};
use scantag_domain::RuleId;
use scantag_domain::access::policy::Action;
use scantag_domain::rulebook::{Preview, PreviewDraft, RuleBook};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;
use validator::Validate;

use super::schema;
use crate::error::{ApiError, Problem};
use crate::extract::{StaffCaller, ValidJson};
use crate::state::AppState;

/// A rule to preview: a new one (no `rule_id`: `condition` and `actions` as for a create), or
/// changes to rule `rule_id` (the fields given replace the saved ones; `enabled: false`
/// previews disabling it).
#[derive(Debug, Clone, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({
    "condition": {"all": [
        {"metric": {"aggregate": "sum", "of": "orders.amount", "within": {"last_days": 180}}, "op": "gt", "value": 500000},
        {"metric": {"aggregate": "count", "of": "orders", "within": {"last_days": 180}}, "op": "gt", "value": 3}
    ]},
    "actions": [{"type": "add_tag", "tag_id": 7}]
}))]
pub struct PreviewRequest {
    #[schema(minimum = 1)]
    pub rule_id: Option<i64>,
    #[schema(minimum = -1000, maximum = 1000)]
    pub priority: Option<i32>,
    pub enabled: Option<bool>,
    /// The condition (`null`: every customer).
    #[serde(default, deserialize_with = "crate::routes::customers::nullable")]
    #[schema(value_type = Option<schema::RuleCondition>)]
    pub condition: Option<Option<Value>>,
    #[schema(value_type = Option<Vec<schema::RuleActionDoc>>)]
    pub actions: Option<Value>,
    /// With `enabled: false`: preview disabling with `keep_tags` (the rule's tags stay, as
    /// manual tags).
    #[serde(default)]
    pub keep_tags: bool,
}

/// What saving the rule would do to one tag.
#[derive(Debug, Serialize, ToSchema)]
pub struct TagEffectView {
    pub tag_id: i64,
    /// Customers who would gain the tag.
    pub gain: u64,
    /// Customers who would lose it.
    pub lose: u64,
    /// Up to 20 of those who would gain it, by id.
    pub gaining: Vec<i64>,
    /// Up to 20 of those who would lose it, by id.
    pub losing: Vec<i64>,
}

#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({"customers": 1200, "tags": [
    {"tag_id": 7, "gain": 31, "lose": 2, "gaining": [1024, 1090], "losing": [1500, 1733]}
]}))]
pub struct PreviewView {
    /// Customers evaluated: every one the caller sees.
    pub customers: u64,
    /// The tags that would change, by tag id.
    pub tags: Vec<TagEffectView>,
}

impl From<Preview> for PreviewView {
    fn from(p: Preview) -> Self {
        PreviewView {
            customers: p.customers,
            tags: p
                .tags
                .into_iter()
                .map(|t| TagEffectView {
                    tag_id: t.tag_id.0,
                    gain: t.gain,
                    lose: t.lose,
                    gaining: t.gaining.into_iter().map(|c| c.0).collect(),
                    losing: t.losing.into_iter().map(|c| c.0).collect(),
                })
                .collect(),
        }
    }
}

/// Preview a rule: for each tag, how many customers would gain and lose it if the rule were
/// saved (and a sample of 20 of each), within the caller's visibility. Writes nothing.
/// Admins and managers.
///
/// Each customer is evaluated as the engine would on its next change, and compared with the
/// tags it carries now; owners a drafted `assign_owner` would give are not simulated.
#[utoipa::path(
    tag = "rules",
    security(("bearer" = [])),
    request_body = PreviewRequest,
    responses(
        (status = 200, description = "What saving the rule would change", body = PreviewView),
        (status = 403, description = "Not an admin or manager (`insufficient_role`)", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such rule in the tenant (`rule_id`)", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Faults in the rule, each at its JSON pointer (`validation_failed`), or a circle of rules (`rule_cycle`)", body = Problem, content_type = "application/problem+json")
    )
)]
#[post("/rules/preview")]
pub async fn preview_rule(
    state: web::Data<AppState>,
    caller: StaffCaller,
    body: ValidJson<PreviewRequest>,
) -> Result<HttpResponse, ApiError> {
    caller.may(Action::ManageRules)?;
    let r = body.into_inner()?;
    let preview = RuleBook::new(&state.db, &caller.actor())
        .preview(PreviewDraft {
            rule_id: r.rule_id.map(RuleId),
            priority: r.priority,
            enabled: r.enabled,
            condition: r.condition.map(|c| c.unwrap_or(Value::Null)),
            actions: r.actions,
            keep_tags: r.keep_tags,
        })
        .await?;
    Ok(HttpResponse::Ok().json(PreviewView::from(preview)))
}
