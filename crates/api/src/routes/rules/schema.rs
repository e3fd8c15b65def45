//! The documented shapes of a rule's condition tree and actions. Requests carry them as JSON
//! that the domain checks node by node (every fault at its JSON pointer), so these types only
//! describe the language in the OpenAPI document; each node kind has its example.

#![allow(dead_code)]

use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;

use crate::routes::channels::OwnerPolicyView;

/// A node of a rule's condition. Each kind is told apart by its key: `all`, `any`, `not`,
/// `has_tag`, `lacks_tag`, `has_tag_in`, `field` or `metric`. At most 20 levels and 200
/// nodes (metrics included).
#[derive(Serialize, ToSchema)]
#[serde(untagged)]
pub enum RuleCondition {
    All(AllNode),
    Any(AnyNode),
    Not(NotNode),
    HasTag(HasTagNode),
    LacksTag(LacksTagNode),
    HasTagIn(HasTagInNode),
    Field(FieldNode),
    Metric(MetricNode),
}

/// Holds when every child holds.
#[derive(Serialize, ToSchema)]
#[schema(example = json!({"all": [
    {"field": "region", "op": "eq", "value": "上海"},
    {"lacks_tag": 9}
]}))]
pub struct AllNode {
    #[schema(min_items = 1, no_recursion)]
    pub all: Vec<RuleCondition>,
}

/// Holds when at least one child holds.
#[derive(Serialize, ToSchema)]
#[schema(example = json!({"any": [
    {"field": "project_stage", "op": "eq", "value": "已报价"},
    {"field": "project_stage", "op": "eq", "value": "方案沟通中"}
]}))]
pub struct AnyNode {
    #[schema(min_items = 1, no_recursion)]
    pub any: Vec<RuleCondition>,
}

/// Holds when the child does not.
#[derive(Serialize, ToSchema)]
#[schema(example = json!({"not": {"field": "owner_id", "op": "is_set"}}))]
pub struct NotNode {
    #[schema(no_recursion)]
    pub not: Box<RuleCondition>,
}

/// Holds when the customer carries the tag (as set by anyone, or by a rule that runs
/// earlier: rules reading a tag run after the rules that set it).
#[derive(Serialize, ToSchema)]
#[schema(example = json!({"has_tag": 7}))]
pub struct HasTagNode {
    /// A tag id of the tenant.
    pub has_tag: i64,
}

/// Holds when the customer does not carry the tag.
#[derive(Serialize, ToSchema)]
#[schema(example = json!({"lacks_tag": 7}))]
pub struct LacksTagNode {
    pub lacks_tag: i64,
}

/// Holds when the customer carries any tag of the group.
#[derive(Serialize, ToSchema)]
#[schema(example = json!({"has_tag_in": 2}))]
pub struct HasTagInNode {
    /// A tag group id of the tenant.
    pub has_tag_in: i64,
}

/// Compares a field of the customer. Fields: `name`, `company`, `industry`, `region` (text:
/// eq, ne, in, not_in, is_set); `project_stage` (one of the tenant's stages, same operators);
/// `phone` (is_set); `owner_id`, `source_channel_id` (numbers: eq, ne, in, not_in, gt, gte,
/// lt, lte, is_set); `created_at`, `updated_at`, `last_order_at`, `last_follow_up_at`,
/// `last_active_at` (times: eq, ne, gt, gte, lt, lte with an RFC 3339 time or a date meaning
/// its local midnight, is_set); and `custom_fields.<key>` by the field's type (number, date,
/// text and single_select as above with values among the options, multi_select: contains,
/// is_set). An unset field satisfies only `ne`, `not_in` and `is_set: false`.
#[derive(Serialize, ToSchema)]
#[schema(example = json!({"field": "project_stage", "op": "in", "value": ["已报价", "方案沟通中"]}))]
pub struct FieldNode {
    #[schema(example = "project_stage")]
    pub field: String,
    pub op: ComparisonOp,
    /// A value of the field's type; a list for `in` / `not_in` (1–100 values); for `is_set`,
    /// `true` (the default) or `false`.
    pub value: Option<Value>,
}

/// Compares a metric with a number (amounts are in fen).
#[derive(Serialize, ToSchema)]
#[schema(example = json!({
    "metric": {"aggregate": "sum", "of": "orders.amount", "within": {"last_days": 180}},
    "op": "gt", "value": 500000
}))]
pub struct MetricNode {
    pub metric: RuleMetric,
    /// eq, ne, gt, gte, lt, lte, or is_set (whether the metric has a value: an average of no
    /// fact, days since a date never set have none).
    pub op: ComparisonOp,
    #[schema(example = 500000)]
    pub value: Option<Value>,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ComparisonOp {
    Eq,
    Ne,
    In,
    NotIn,
    Gt,
    Gte,
    Lt,
    Lte,
    IsSet,
    Contains,
}

/// A number measured on the customer at evaluation time.
#[derive(Serialize, ToSchema)]
#[serde(untagged)]
pub enum RuleMetric {
    Aggregate(AggregateMetric),
    DaysSince(DaysSinceMetric),
    DaysSinceLast(DaysSinceLastMetric),
    Score(ScoreMetric),
}

/// count, sum, avg, max or min over the customer's orders, follow-ups or events. `count`
/// names the facts (`orders`, `follow_ups`, `events`); the others a numeric attribute:
/// `orders.amount` (fen) or `events.properties.<key>` (events whose property is a number).
/// Orders count only when paid and amounts only in CNY, unless `where` says otherwise.
#[derive(Serialize, ToSchema)]
#[schema(example = json!({
    "aggregate": "count", "of": "orders", "within": {"last_days": 180},
    "where": {"product_category": ["SaaS", "硬件"]}
}))]
pub struct AggregateMetric {
    pub aggregate: AggregateKind,
    #[schema(example = "orders.amount")]
    pub of: String,
    pub within: Option<FactWindow>,
    #[serde(rename = "where")]
    pub filter: Option<FactFilter>,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum AggregateKind {
    Count,
    Sum,
    Avg,
    Max,
    Min,
}

/// Which facts count by time: a rolling window of the last `last_days` days (1–3650; a fact
/// leaves it exactly that many 24-hour days after it occurred), or the local dates from
/// `from` to `to`, both included, in the tenant's timezone.
#[derive(Serialize, ToSchema)]
#[serde(untagged)]
pub enum FactWindow {
    Last(LastDays),
    Between(BetweenDates),
}

#[derive(Serialize, ToSchema)]
#[schema(example = json!({"last_days": 180}))]
pub struct LastDays {
    #[schema(minimum = 1, maximum = 3650)]
    pub last_days: u32,
}

#[derive(Serialize, ToSchema)]
#[schema(example = json!({"from": "2026-01-01", "to": "2026-06-30"}))]
pub struct BetweenDates {
    pub from: chrono::NaiveDate,
    pub to: chrono::NaiveDate,
}

/// Which facts count by their attributes. Orders: `status` (`paid` by default, `refunded`,
/// `any`), `product_category`, `currency`. Follow-ups: `kind`, `stage`. Events: `kind`.
#[derive(Serialize, ToSchema)]
#[schema(example = json!({"status": "paid", "product_category": "SaaS"}))]
pub struct FactFilter {
    pub status: Option<String>,
    /// A category or a list of categories.
    pub product_category: Option<Value>,
    pub currency: Option<String>,
    /// A kind or a list of kinds.
    pub kind: Option<Value>,
    /// A stage or a list of stages.
    pub stage: Option<Value>,
}

/// Whole days since a date field (`created_at`, `last_follow_up_at`, a date custom field …),
/// counted in local days of the tenant's timezone: a visit at 23:30 belongs to that day.
#[derive(Serialize, ToSchema)]
#[schema(example = json!({"days_since": "last_active_at"}))]
pub struct DaysSinceMetric {
    pub days_since: String,
}

/// Whole local days since the customer's latest fact of a kind (matching `where`); with none,
/// days since `otherwise_since`, else no value.
#[derive(Serialize, ToSchema)]
#[schema(example = json!({
    "days_since_last": "follow_ups", "otherwise_since": "created_at"
}))]
pub struct DaysSinceLastMetric {
    pub days_since_last: FactKindName,
    #[serde(rename = "where")]
    pub filter: Option<FactFilter>,
    pub otherwise_since: Option<String>,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum FactKindName {
    Orders,
    FollowUps,
    Events,
}

/// A weighted sum of metrics (1–20 terms); a metric without a value counts 0.
#[derive(Serialize, ToSchema)]
#[schema(example = json!({"score": [
    {"weight": 10, "metric": {"aggregate": "count", "of": "orders", "within": {"last_days": 365}}},
    {"weight": 2, "metric": {"aggregate": "count", "of": "follow_ups", "within": {"last_days": 90}}},
    {"weight": 5, "metric": {"aggregate": "avg", "of": "events.properties.rating", "where": {"kind": "custom:feedback"}}}
]}))]
pub struct ScoreMetric {
    #[schema(min_items = 1, max_items = 20)]
    pub score: Vec<ScoreTerm>,
}

#[derive(Serialize, ToSchema)]
pub struct ScoreTerm {
    pub weight: f64,
    #[schema(no_recursion)]
    pub metric: RuleMetric,
}

/// What a rule does. `add_tag` and `set_tier` are level-triggered (the tag is on the
/// customer exactly while the condition holds); `create_task`, `assign_owner`, `notify_owner`
/// and `notify_customer` are edge-triggered (once each time the condition turns true).
#[derive(Serialize, ToSchema)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum RuleActionDoc {
    /// The tag, while the condition holds. In an exclusive group it replaces the group's
    /// other automatic tags; a person's tag in the group stays, and wins.
    #[schema(example = json!({"type": "add_tag", "tag_id": 7}))]
    AddTag { tag_id: i64 },
    /// The tag of the tier the score reaches (the highest `min` not above it), all tiers'
    /// tags in one exclusive group.
    #[schema(example = json!({"type": "set_tier",
        "score": {"score": [{"weight": 1, "metric": {"aggregate": "count", "of": "orders"}}]},
        "tiers": [{"min": 10, "tag_id": 21}, {"min": 5, "tag_id": 22}, {"min": 0, "tag_id": 23}]}))]
    SetTier {
        score: RuleMetric,
        tiers: Vec<TierDoc>,
    },
    /// A task for `owner` (the customer's owner; none while unassigned), `managers` (every
    /// active manager, or the admins when there is none) or `{"staff_id": id}`. `{customer_name}`
    /// in the title is replaced by the customer's name.
    #[schema(example = json!({"type": "create_task", "assignee": "owner",
        "title": "回访 {customer_name}", "due_in_days": 2}))]
    CreateTask {
        /// `"owner"`, `"managers"` or `{"staff_id": id}`.
        assignee: Value,
        #[schema(max_length = 128)]
        title: String,
        #[schema(maximum = 3650)]
        due_in_days: Option<u32>,
    },
    /// An owner by a channel's policy: `fixed` and `round_robin` (in turn over the active
    /// members of the list, per rule) give one to a customer who has none, and never replace
    /// an owner; `pool` takes the owner away, returning the customer to the unassigned pool.
    /// The other rules then see the new owner at once (待分配 goes in the same change).
    #[schema(example = json!({"type": "assign_owner",
        "policy": {"type": "round_robin", "staff_ids": [3, 4]}}))]
    AssignOwner { policy: OwnerPolicyView },
    /// A WeChat subscribe message to the customer's owner (the task template: `thing1` the
    /// message, `thing2` the customer's name, `time3` when), sent after the change commits;
    /// nothing while the customer has no owner.
    #[schema(example = json!({"type": "notify_owner", "message": "客户已报价，请跟进"}))]
    NotifyOwner {
        #[schema(min_length = 1, max_length = 20)]
        message: String,
    },
    /// A WeChat subscribe message to the customer (the customer template: `thing1` the
    /// message, `time2` when), sent after the change commits; only to a customer who came
    /// through the mini-program and accepted the template there.
    #[schema(example = json!({"type": "notify_customer", "message": "欢迎光临，专属顾问将联系您"}))]
    NotifyCustomer {
        #[schema(min_length = 1, max_length = 20)]
        message: String,
    },
}

#[derive(Serialize, ToSchema)]
pub struct TierDoc {
    pub min: f64,
    pub tag_id: i64,
}
