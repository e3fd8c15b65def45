//! Tagging rules: the tenant's rules (admins and managers keep them) and, for any staff
//! member, why a rule holds or not for one of their customers.

use actix_web::{HttpResponse, delete, get, patch, post, put, web};
use chrono::{DateTime, Utc};
use scantag_domain::access::policy::Action;
use scantag_domain::customers::Customers;
use scantag_domain::customers::automation::{RuleChange, RuleCheck};
use scantag_domain::rulebook::{RuleBook, RuleDraft, RulePatch, Saved, TagsRemoved, templates};
use scantag_domain::rules::{NodeTrace, Rule};
use scantag_domain::{CustomerId, RuleId};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};
use validator::Validate;

use crate::error::{ApiError, Problem};
use crate::extract::{StaffCaller, ValidJson, ValidQuery};
use crate::state::AppState;

pub mod jobs;
pub mod preview;
pub mod schema;
pub mod versions;

/// A tagging rule.
#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({
    "id": 3, "name": "高价值客户", "priority": 100, "enabled": true, "version": 2,
    "condition": {"all": [
        {"metric": {"aggregate": "sum", "of": "orders.amount", "within": {"last_days": 180}}, "op": "gt", "value": 500000},
        {"metric": {"aggregate": "count", "of": "orders", "within": {"last_days": 180}}, "op": "gt", "value": 3}
    ]},
    "actions": [{"type": "add_tag", "tag_id": 7}],
    "created_at": "2026-11-01T08:00:00Z", "updated_at": "2026-11-20T03:00:00Z"
}))]
pub struct RuleView {
    pub id: i64,
    pub name: String,
    /// Higher runs first, and wins an exclusive group against a lower one.
    pub priority: i32,
    pub enabled: bool,
    /// 1 for a new rule; grows by one with each change of the condition or the actions.
    pub version: i32,
    /// The condition tree; `null` for a rule that applies to every customer.
    #[schema(value_type = Option<schema::RuleCondition>, required = true)]
    pub condition: Value,
    #[schema(value_type = Vec<schema::RuleActionDoc>)]
    pub actions: Value,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// In the answer to a create or change that makes the rule hold for other customers than
    /// before: the background job bringing it to every customer (`GET /rule-jobs/{id}`).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(example = 12)]
    pub backfill_job_id: Option<i64>,
    /// In the answer to a change that disabled the rule: the tags its customers lost, or kept
    /// (`keep_tags`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub disabled_tags: Option<TagsRemovedView>,
}

impl RuleView {
    fn saved(saved: Saved) -> RuleView {
        RuleView {
            backfill_job_id: saved.backfill_job_id,
            disabled_tags: saved.tags.map(TagsRemovedView::from),
            ..RuleView::from(saved.rule)
        }
    }
}

impl From<Rule> for RuleView {
    fn from(r: Rule) -> Self {
        RuleView {
            id: r.id.0,
            name: r.name,
            priority: r.priority,
            enabled: r.enabled,
            version: r.version,
            condition: serde_json::to_value(&r.condition).unwrap_or(Value::Null),
            actions: serde_json::to_value(&r.actions).unwrap_or(Value::Null),
            created_at: r.created_at,
            updated_at: r.updated_at,
            backfill_job_id: None,
            disabled_tags: None,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RuleList {
    /// Highest priority first.
    pub items: Vec<RuleView>,
}

/// A rule to create. The condition and the actions are checked against the tenant's fields,
/// tags, groups and stages; each fault comes back in `errors[]` with the JSON pointer of the
/// node (`/condition/all/1/value`).
#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({
    "name": "高意向客户", "priority": 50, "enabled": true,
    "condition": {"field": "project_stage", "op": "in", "value": ["已报价", "方案沟通中"]},
    "actions": [{"type": "add_tag", "tag_id": 8}]
}))]
pub struct CreateRuleRequest {
    #[validate(length(min = 1, max = 64))]
    #[schema(min_length = 1, max_length = 64)]
    pub name: String,
    /// -1000 to 1000 (default 0).
    #[serde(default)]
    #[schema(minimum = -1000, maximum = 1000)]
    pub priority: i32,
    /// Default true.
    #[serde(default = "yes")]
    pub enabled: bool,
    /// Absent or `null`: the rule applies to every customer.
    #[serde(default)]
    #[schema(value_type = Option<schema::RuleCondition>)]
    pub condition: Value,
    /// 1 to 20 actions.
    #[schema(value_type = Vec<schema::RuleActionDoc>)]
    pub actions: Value,
}

fn yes() -> bool {
    true
}

/// Changes to a rule; parts not given stay. A new condition or new actions make a new version.
#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"enabled": false}))]
pub struct UpdateRuleRequest {
    #[validate(length(min = 1, max = 64))]
    #[schema(min_length = 1, max_length = 64)]
    pub name: Option<String>,
    #[schema(minimum = -1000, maximum = 1000)]
    pub priority: Option<i32>,
    pub enabled: Option<bool>,
    /// A new condition (`null`: every customer).
    #[serde(default, deserialize_with = "super::customers::nullable")]
    #[schema(value_type = Option<schema::RuleCondition>)]
    pub condition: Option<Option<Value>>,
    #[schema(value_type = Option<Vec<schema::RuleActionDoc>>)]
    pub actions: Option<Value>,
    /// With `enabled: false`: the rule's tags stay on its customers, as manual tags of the
    /// caller, instead of leaving them. A person's own tags are never touched either way.
    #[serde(default)]
    pub keep_tags: bool,
}

/// How a rule is deleted.
#[derive(Debug, Deserialize, Validate, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct DeleteRuleQuery {
    /// `true`: the rule's tags stay on its customers as manual tags of the caller.
    pub keep_tags: Option<bool>,
}

/// How many customers lost each of the rule's tags.
#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({"tags": [{"tag_id": 7, "customers": 412}], "kept": []}))]
pub struct TagsRemovedView {
    /// The tags the rule took off, with how many customers lost each.
    pub tags: Vec<TagCountView>,
    /// With `keep_tags`: the tags that stayed as manual tags, with how many customers.
    pub kept: Vec<TagCountView>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TagCountView {
    pub tag_id: i64,
    pub customers: u64,
}

impl From<TagsRemoved> for TagsRemovedView {
    fn from(t: TagsRemoved) -> Self {
        let view = |counts: Vec<scantag_domain::rulebook::TagCount>| {
            counts
                .into_iter()
                .map(|c| TagCountView {
                    tag_id: c.tag_id.0,
                    customers: c.customers,
                })
                .collect()
        };
        TagsRemovedView {
            tags: view(t.tags),
            kept: view(t.kept),
        }
    }
}

/// A tag a rule put on (or took off) a customer in this request, and why.
#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({
    "tag_id": 7, "added": true, "rule_id": 3, "rule_name": "高价值客户", "rule_version": 2,
    "reason": "rule \"高价值客户\" (v2): sum of orders.amount (paid, CNY) in the last 180 days = 6,200.00 元 > 5,000.00 元; count of orders (paid) in the last 180 days = 4 > 3"
}))]
pub struct RuleChangeView {
    pub tag_id: i64,
    /// True when the tag was put on, false when it was taken off.
    pub added: bool,
    pub rule_id: i64,
    pub rule_name: String,
    pub rule_version: i32,
    pub reason: String,
}

impl From<RuleChange> for RuleChangeView {
    fn from(c: RuleChange) -> Self {
        RuleChangeView {
            tag_id: c.tag_id.0,
            added: c.added,
            rule_id: c.rule_id.0,
            rule_name: c.rule_name,
            rule_version: c.rule_version,
            reason: c.reason,
        }
    }
}

/// One node of the condition as evaluated.
#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({
    "path": "/all/0", "node": "metric", "holds": true, "value": 620000,
    "text": "sum of orders.amount (paid, CNY) in the last 180 days = 6,200.00 元 > 5,000.00 元"
}))]
pub struct NodeView {
    /// The node's JSON pointer within the condition (`""` is the root).
    pub path: String,
    /// all, any, not, has_tag, lacks_tag, has_tag_in, field or metric.
    pub node: String,
    pub holds: bool,
    /// What the node measured: the field's value, the metric's number (amounts in fen), whether
    /// the tag is there; `null` for all / any / not.
    pub value: Value,
    pub text: String,
}

impl From<NodeTrace> for NodeView {
    fn from(n: NodeTrace) -> Self {
        NodeView {
            path: n.path,
            node: n.node.to_owned(),
            holds: n.holds,
            value: n.value,
            text: n.text,
        }
    }
}

/// A rule evaluated now for one customer: why it does, or does not, hold.
#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({
    "rule_id": 3, "rule_version": 2, "holds": false,
    "nodes": [
        {"path": "", "node": "all", "holds": false, "value": null, "text": "all of 2 (1 met)"},
        {"path": "/all/0", "node": "metric", "holds": true, "value": 620000,
         "text": "sum of orders.amount (paid, CNY) in the last 180 days = 6,200.00 元 > 5,000.00 元"},
        {"path": "/all/1", "node": "metric", "holds": false, "value": 3,
         "text": "count of orders (paid) in the last 180 days = 3 > 3"}
    ],
    "would_tag": [], "carries": [], "vetoed": [], "held_before": false,
    "next_change_at": "2027-03-02T08:00:00Z"
}))]
pub struct RuleEvaluationView {
    pub rule_id: i64,
    pub rule_version: i32,
    pub holds: bool,
    /// Every node of the condition, the root first, with its value and verdict; empty for a
    /// rule that applies to every customer.
    pub nodes: Vec<NodeView>,
    /// The tags the rule gives the customer now.
    pub would_tag: Vec<i64>,
    /// The rule's tags the customer carries.
    pub carries: Vec<i64>,
    /// The rule's tags a person took off this customer: the rule does not put them back while
    /// it keeps holding.
    pub vetoed: Vec<i64>,
    /// For a rule with tasks, messages or an owner to give: whether it held at the customer's
    /// last evaluation (they happen when it next turns true). `null` for a rule that only
    /// tags: its tags are level-triggered and no verdict is kept.
    pub held_before: Option<bool>,
    /// When the verdict can next change with no new fact (a fact leaving a window, a "days
    /// since" crossing its threshold at a local midnight); `null` for never.
    pub next_change_at: Option<DateTime<Utc>>,
}

impl From<RuleCheck> for RuleEvaluationView {
    fn from(c: RuleCheck) -> Self {
        RuleEvaluationView {
            rule_id: c.rule.id.0,
            rule_version: c.rule.version,
            holds: c.evaluation.holds,
            nodes: c.evaluation.nodes.into_iter().map(Into::into).collect(),
            would_tag: c.would_tag.into_iter().map(|t| t.0).collect(),
            carries: c.carries.into_iter().map(|t| t.0).collect(),
            vetoed: c.vetoed.into_iter().map(|t| t.0).collect(),
            held_before: c.held_before,
            next_change_at: c.evaluation.next_change,
        }
    }
}

/// Create a rule. Admins and managers.
///
/// The rule runs from now on for every customer that changes (a capture, an edit, an order, a
/// follow-up, an event, a tag change), inside that change; an enabled rule also reaches every
/// existing customer through a background backfill (`backfill_job_id`).
#[utoipa::path(
    tag = "rules",
    security(("bearer" = [])),
    request_body = CreateRuleRequest,
    responses(
        (status = 201, description = "The new rule", body = RuleView),
        (status = 403, description = "Not an admin or manager (`insufficient_role`)", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Another rule has this name (`rule_name_taken`)", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Faults in the rule, each at its JSON pointer (`validation_failed`), or rules that would read each other's tags in a circle (`rule_cycle`, naming them)", body = Problem, content_type = "application/problem+json")
    )
)]
#[post("/rules")]
pub async fn create_rule(
    state: web::Data<AppState>,
    caller: StaffCaller,
    body: ValidJson<CreateRuleRequest>,
) -> Result<HttpResponse, ApiError> {
    caller.may(Action::ManageRules)?;
    let r = body.into_inner()?;
    let rule = RuleBook::new(&state.db, &caller.actor())
        .create(RuleDraft {
            name: r.name,
            priority: r.priority,
            enabled: r.enabled,
            condition: r.condition,
            actions: r.actions,
        })
        .await?;
    state.schedule_wake.notify_one();
    Ok(HttpResponse::Created().json(RuleView::saved(rule)))
}

/// The tenant's rules. Admins and managers.
#[utoipa::path(
    tag = "rules",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Every rule, highest priority first", body = RuleList),
        (status = 403, description = "Not an admin or manager (`insufficient_role`)", body = Problem, content_type = "application/problem+json")
    )
)]
#[get("/rules")]
pub async fn list_rules(
    state: web::Data<AppState>,
    caller: StaffCaller,
) -> Result<HttpResponse, ApiError> {
    caller.may(Action::ManageRules)?;
    let items = RuleBook::new(&state.db, &caller.actor())
        .list()
        .await?
        .into_iter()
        .map(RuleView::from)
        .collect();
    Ok(HttpResponse::Ok().json(RuleList { items }))
}

/// One rule. Admins and managers.
#[utoipa::path(
    tag = "rules",
    security(("bearer" = [])),
    params(("id" = i64, Path, description = "Rule id", example = 3)),
    responses(
        (status = 200, description = "The rule", body = RuleView),
        (status = 403, description = "Not an admin or manager (`insufficient_role`)", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such rule in the tenant", body = Problem, content_type = "application/problem+json")
    )
)]
#[get("/rules/{id}")]
pub async fn get_rule(
    state: web::Data<AppState>,
    caller: StaffCaller,
    id: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    caller.may(Action::ManageRules)?;
    let rule = RuleBook::new(&state.db, &caller.actor())
        .get(RuleId(id.into_inner()))
        .await?;
    Ok(HttpResponse::Ok().json(RuleView::from(rule)))
}

/// Change a rule. Admins and managers.
///
/// Disabling it takes its tags off the customers carrying them (tags another rule wants stay);
/// a changed condition is applied now to the customers carrying its tags, and to others as
/// they change.
#[utoipa::path(
    tag = "rules",
    security(("bearer" = [])),
    params(("id" = i64, Path, description = "Rule id", example = 3)),
    request_body = UpdateRuleRequest,
    responses(
        (status = 200, description = "The rule as changed", body = RuleView),
        (status = 403, description = "Not an admin or manager (`insufficient_role`)", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such rule in the tenant", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Another rule has this name (`rule_name_taken`)", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Faults in the rule (`validation_failed`) or a circle of rules (`rule_cycle`)", body = Problem, content_type = "application/problem+json")
    )
)]
#[patch("/rules/{id}")]
pub async fn update_rule(
    state: web::Data<AppState>,
    caller: StaffCaller,
    id: web::Path<i64>,
    body: ValidJson<UpdateRuleRequest>,
) -> Result<HttpResponse, ApiError> {
    caller.may(Action::ManageRules)?;
    let r = body.into_inner()?;
    let rule = RuleBook::new(&state.db, &caller.actor())
        .update(
            RuleId(id.into_inner()),
            RulePatch {
                name: r.name,
                priority: r.priority,
                enabled: r.enabled,
                condition: r.condition.map(|c| c.unwrap_or(Value::Null)),
                actions: r.actions,
                keep_tags: r.keep_tags,
            },
        )
        .await?;
    state.schedule_wake.notify_one();
    Ok(HttpResponse::Ok().json(RuleView::saved(rule)))
}

/// Delete a rule. Admins and managers. Its tags leave the customers carrying them (unless
/// `keep_tags=true` keeps them as the caller's manual tags); the answer says how many
/// customers lost (or kept) each tag. A person's own tags are never touched.
#[utoipa::path(
    tag = "rules",
    security(("bearer" = [])),
    params(("id" = i64, Path, description = "Rule id", example = 3), DeleteRuleQuery),
    responses(
        (status = 200, description = "The rule is gone; the tags it took off or left", body = TagsRemovedView),
        (status = 403, description = "Not an admin or manager (`insufficient_role`)", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such rule in the tenant", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "An unknown query parameter or a `keep_tags` that is not a boolean", body = Problem, content_type = "application/problem+json")
    )
)]
#[delete("/rules/{id}")]
pub async fn delete_rule(
    state: web::Data<AppState>,
    caller: StaffCaller,
    id: web::Path<i64>,
    query: ValidQuery<DeleteRuleQuery>,
) -> Result<HttpResponse, ApiError> {
    caller.may(Action::ManageRules)?;
    let keep_tags = query.into_inner()?.keep_tags.unwrap_or(false);
    let removed = RuleBook::new(&state.db, &caller.actor())
        .delete(RuleId(id.into_inner()), keep_tags)
        .await?;
    Ok(HttpResponse::Ok().json(TagsRemovedView::from(removed)))
}

/// Why a rule does (or does not) hold for a customer, node by node, evaluated now. Any staff
/// member, for the customers they see.
#[utoipa::path(
    tag = "rules",
    security(("bearer" = [])),
    params(
        ("id" = i64, Path, description = "Customer id", example = 1024),
        ("rule_id" = i64, Path, description = "Rule id", example = 3)
    ),
    responses(
        (status = 200, description = "The rule evaluated now", body = RuleEvaluationView),
        (status = 404, description = "No such customer visible to the caller, or no such rule", body = Problem, content_type = "application/problem+json")
    )
)]
#[get("/customers/{id}/rules/{rule_id}/evaluation")]
pub async fn evaluate_rule(
    state: web::Data<AppState>,
    caller: StaffCaller,
    path: web::Path<(i64, i64)>,
) -> Result<HttpResponse, ApiError> {
    let (customer, rule) = path.into_inner();
    let check = Customers::new(&state.db, &caller.actor())
        .evaluate_rule(CustomerId(customer), RuleId(rule))
        .await?;
    Ok(HttpResponse::Ok().json(RuleEvaluationView::from(check)))
}

/// A number a template takes.
#[derive(Debug, Serialize, ToSchema)]
pub struct TemplateParameterView {
    pub name: String,
    pub default: f64,
    pub min: f64,
    pub max: f64,
    pub description: String,
}

/// A tag group a template creates (or finds by name), with its tags.
#[derive(Debug, Serialize, ToSchema)]
pub struct TemplateGroupView {
    pub name: String,
    pub exclusive: bool,
    pub tags: Vec<String>,
}

/// A rule template from the domain brief.
#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({
    "key": "high_value", "name": "高价值客户",
    "description": "More than `min_spend_fen` fen of paid CNY orders and more than `min_orders` orders in the last `window_days` days.",
    "clock_driven": true,
    "parameters": [{"name": "min_spend_fen", "default": 500000.0, "min": 0.0, "max": 1e12, "description": "spend that must be exceeded, in fen (5,000.00 元)"}],
    "groups": [{"name": "客户价值", "exclusive": false, "tags": ["高价值客户"]}]
}))]
pub struct TemplateView {
    /// What to instantiate it by.
    pub key: String,
    pub name: String,
    pub description: String,
    /// Whether some of its tags change with time alone.
    pub clock_driven: bool,
    pub parameters: Vec<TemplateParameterView>,
    pub groups: Vec<TemplateGroupView>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TemplateList {
    pub items: Vec<TemplateView>,
}

/// Parameters for a template; those not given take their defaults.
#[derive(Debug, Default, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"parameters": {"min_spend_fen": 800000, "min_orders": 5}}))]
pub struct InstantiateRequest {
    #[serde(default)]
    pub parameters: std::collections::HashMap<String, f64>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TemplateTagView {
    pub name: String,
    pub tag_id: i64,
}

/// What instantiating made or found.
#[derive(Debug, Serialize, ToSchema)]
pub struct InstantiatedView {
    pub template: String,
    /// The template's tags, created or found by name.
    pub tags: Vec<TemplateTagView>,
    /// The template's rules, created or found by name.
    pub rules: Vec<RuleView>,
    /// How many of `rules` this request created: 0 when the template was already there.
    pub created_rules: usize,
    /// The background job bringing the new rules to every customer, if any were created.
    pub backfill_job_id: Option<i64>,
}

/// The rule templates a tenant can instantiate. Admins and managers.
#[utoipa::path(
    tag = "rules",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Every template", body = TemplateList),
        (status = 403, description = "Not an admin or manager (`insufficient_role`)", body = Problem, content_type = "application/problem+json")
    )
)]
#[get("/rule-templates")]
pub async fn list_templates(caller: StaffCaller) -> Result<HttpResponse, ApiError> {
    caller.may(Action::ManageRules)?;
    let items = templates::catalogue()
        .into_iter()
        .map(|t| TemplateView {
            key: t.key.to_owned(),
            name: t.name.to_owned(),
            description: t.description.to_owned(),
            clock_driven: t.clock_driven,
            parameters: t
                .parameters
                .into_iter()
                .map(|p| TemplateParameterView {
                    name: p.name.to_owned(),
                    default: p.default,
                    min: p.min,
                    max: p.max,
                    description: p.description.to_owned(),
                })
                .collect(),
            groups: t
                .groups
                .into_iter()
                .map(|g| TemplateGroupView {
                    name: g.name.to_owned(),
                    exclusive: g.exclusive,
                    tags: g.tags.into_iter().map(str::to_owned).collect(),
                })
                .collect(),
        })
        .collect();
    Ok(HttpResponse::Ok().json(TemplateList { items }))
}

/// Instantiate a template: its tag groups and tags (created when missing, found by name
/// otherwise), then its rules. Instantiating it again changes nothing. Admins and managers.
#[utoipa::path(
    tag = "rules",
    security(("bearer" = [])),
    params(("key" = String, Path, description = "Template key", example = "high_value")),
    request_body = InstantiateRequest,
    responses(
        (status = 201, description = "The template's tags and rules", body = InstantiatedView),
        (status = 403, description = "Not an admin or manager (`insufficient_role`)", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such template", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "An unknown or negative parameter", body = Problem, content_type = "application/problem+json")
    )
)]
#[post("/rule-templates/{key}")]
pub async fn instantiate_template(
    state: web::Data<AppState>,
    caller: StaffCaller,
    key: web::Path<String>,
    body: ValidJson<InstantiateRequest>,
) -> Result<HttpResponse, ApiError> {
    caller.may(Action::ManageRules)?;
    let r = body.into_inner()?;
    let made = RuleBook::new(&state.db, &caller.actor())
        .instantiate(&key.into_inner(), &r.parameters)
        .await?;
    state.schedule_wake.notify_one();
    Ok(HttpResponse::Created().json(InstantiatedView {
        template: made.template.to_owned(),
        tags: made
            .tags
            .into_iter()
            .map(|(name, id)| TemplateTagView { name, tag_id: id.0 })
            .collect(),
        rules: made.rules.into_iter().map(RuleView::from).collect(),
        created_rules: made.created_rules,
        backfill_job_id: made.backfill_job_id,
    }))
}

/// The tenant's project stages, in order.
#[derive(Debug, Serialize, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"stages": ["初步接触", "需求确认", "方案沟通中", "已报价", "谈判", "成交", "输单"]}))]
pub struct ProjectStages {
    /// 1 to 20 distinct names of 1 to 32 characters.
    #[validate(length(min = 1, max = 20))]
    #[schema(min_items = 1, max_items = 20)]
    pub stages: Vec<String>,
}

/// The project stages follow-ups move customers to, and conditions compare with. Any staff
/// member.
#[utoipa::path(
    tag = "rules",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The tenant's stages (the default list until an admin sets its own)", body = ProjectStages)
    )
)]
#[get("/project-stages")]
pub async fn project_stages(
    state: web::Data<AppState>,
    caller: StaffCaller,
) -> Result<HttpResponse, ApiError> {
    let stages = scantag_domain::rulebook::stages(&state.db, caller.tenant()).await?;
    Ok(HttpResponse::Ok().json(ProjectStages { stages }))
}

/// Set the tenant's project stages. Admins only. Stages already on customers stay; rules
/// naming a stage no longer listed keep working, and new rules and follow-ups use the new list.
#[utoipa::path(
    tag = "rules",
    security(("bearer" = [])),
    request_body = ProjectStages,
    responses(
        (status = 200, description = "The stages as saved", body = ProjectStages),
        (status = 403, description = "Not an admin (`insufficient_role`)", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "No stage, more than 20, a duplicate, or a bad name", body = Problem, content_type = "application/problem+json")
    )
)]
#[put("/project-stages")]
pub async fn set_project_stages(
    state: web::Data<AppState>,
    caller: StaffCaller,
    body: ValidJson<ProjectStages>,
) -> Result<HttpResponse, ApiError> {
    caller.may(Action::ConfigureTenant)?;
    let r = body.into_inner()?;
    let stages =
        scantag_domain::identity::tenants::set_project_stages(&state.db, &caller.actor(), r.stages)
            .await?;
    Ok(HttpResponse::Ok().json(ProjectStages { stages }))
}
