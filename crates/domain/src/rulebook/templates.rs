//! Rule templates from the domain brief, each instantiated by a tenant in one call: the tag
//! groups and tags it needs are created when missing (found by name otherwise), then its
//! rules, so instantiating a template twice changes nothing the second time. Numbers a tenant
//! may want to set (thresholds, windows, weights) are parameters with defaults.

use std::collections::HashMap;

use serde::Serialize;
use serde_json::{Value, json};

use super::{RuleBook, RuleDraft};
use crate::kernel::error::{DomainError, DomainResult, ErrorCode, FieldIssue};
use crate::kernel::ids::{TagGroupId, TagId};
use crate::library::tags::{Dimension, NewTag, NewTagGroup, TagLibrary};
use crate::rules::Rule;

/// A number a template takes, with its default and bounds.
#[derive(Debug, Clone, Serialize)]
pub struct Parameter {
    pub name: &'static str,
    pub default: f64,
    pub min: f64,
    pub max: f64,
    pub description: &'static str,
}

/// A tag group a template needs, with its tags.
#[derive(Debug, Clone, Serialize)]
pub struct GroupSpec {
    pub name: &'static str,
    pub exclusive: bool,
    pub tags: Vec<&'static str>,
    #[serde(skip)]
    dimension: Dimension,
}

/// A template as listed.
#[derive(Debug, Clone, Serialize)]
pub struct Template {
    pub key: &'static str,
    pub name: &'static str,
    pub description: &'static str,
    /// Whether some of its tags change with time alone (they move when the customer next
    /// changes until time-driven evaluation applies them when due).
    pub clock_driven: bool,
    pub parameters: Vec<Parameter>,
    pub groups: Vec<GroupSpec>,
}

/// What instantiating a template made or found.
#[derive(Debug, Clone, Serialize)]
pub struct Instantiated {
    pub template: &'static str,
    /// Tag names and ids, created or found.
    pub tags: Vec<(String, TagId)>,
    pub rules: Vec<Rule>,
    /// How many of `rules` this call created (the others existed already).
    pub created_rules: usize,
    /// The backfill that brings the new rules to the existing customers.
    pub backfill_job_id: Option<i64>,
}

struct Params(HashMap<&'static str, f64>);

impl Params {
    fn get(&self, name: &str) -> f64 {
        self.0.get(name).copied().unwrap_or_default()
    }
}

/// Draft rules of a template: `(name, priority, condition, actions)`, given its tags by name.
type Drafts = Vec<(&'static str, i32, Value, Value)>;

fn group(
    name: &'static str,
    dimension: Dimension,
    exclusive: bool,
    tags: &[&'static str],
) -> GroupSpec {
    GroupSpec {
        name,
        exclusive,
        tags: tags.to_vec(),
        dimension,
    }
}

/// A parameter from 0 to 10^12; numbers of days from 1 to 3,650.
fn param(name: &'static str, default: f64, description: &'static str) -> Parameter {
    let days = name.ends_with("_days");
    Parameter {
        name,
        default,
        min: if days { 1.0 } else { 0.0 },
        max: if days { 3_650.0 } else { 1e12 },
        description,
    }
}

/// Every template, in the order a tenant meets them.
pub fn catalogue() -> Vec<Template> {
    vec![
        Template {
            key: "new_customer",
            name: "新录入 + 待分配",
            description: "A customer recorded in the last `new_days` days is 新录入; a customer without an owner is 待分配 (until someone owns it), and the managers get a task to assign them.",
            clock_driven: true,
            parameters: vec![param("new_days", 7.0, "days a customer stays 新录入")],
            groups: vec![group(
                "录入状态",
                Dimension::Lifecycle,
                false,
                &["新录入", "待分配"],
            )],
        },
        Template {
            key: "high_intent",
            name: "高意向客户",
            description: "Project stage 已报价 or 方案沟通中.",
            clock_driven: false,
            parameters: vec![],
            groups: vec![group("意向", Dimension::Behaviour, false, &["高意向客户"])],
        },
        Template {
            key: "high_value",
            name: "高价值客户",
            description: "More than `min_spend_fen` fen of paid CNY orders and more than `min_orders` orders in the last `window_days` days.",
            clock_driven: true,
            parameters: vec![
                param(
                    "min_spend_fen",
                    500_000.0,
                    "spend that must be exceeded, in fen (5,000.00 元)",
                ),
                param("min_orders", 3.0, "order count that must be exceeded"),
                param("window_days", 180.0, "the rolling window, in days"),
            ],
            groups: vec![group("客户价值", Dimension::Value, false, &["高价值客户"])],
        },
        Template {
            key: "lifecycle",
            name: "生命周期",
            description: "One exclusive lifecycle tag: 潜客 (no order yet), 新客 (one order), 成长期 (2 or more orders in a year), 成熟期 (`mature_orders` or more in a year), and 流失预警 for a buyer without a follow-up for `churn_days` days, with a task for the owner.",
            clock_driven: true,
            parameters: vec![
                param(
                    "mature_orders",
                    5.0,
                    "orders in 365 days that make a customer 成熟期",
                ),
                param(
                    "churn_days",
                    30.0,
                    "days without a follow-up before 流失预警",
                ),
            ],
            groups: vec![group(
                "生命周期",
                Dimension::Lifecycle,
                true,
                &["潜客", "新客", "成长期", "成熟期", "流失预警"],
            )],
        },
        Template {
            key: "abc_tiers",
            name: "A/B/C 客户分级",
            description: "A score of orders in 365 days (× `order_weight`), follow-ups in 90 days (× `contact_weight`) and the average `rating` property of `custom:feedback` events (× `feedback_weight`) puts each customer in tier A (≥ `a_min`), B (≥ `b_min`) or C.",
            clock_driven: true,
            parameters: vec![
                param("order_weight", 10.0, "points per order in 365 days"),
                param("contact_weight", 2.0, "points per follow-up in 90 days"),
                param(
                    "feedback_weight",
                    5.0,
                    "points per point of average feedback rating",
                ),
                param("a_min", 60.0, "the lowest score of tier A"),
                param("b_min", 30.0, "the lowest score of tier B"),
            ],
            groups: vec![group(
                "客户等级",
                Dimension::Value,
                true,
                &["A类客户", "B类客户", "C类客户"],
            )],
        },
        Template {
            key: "rfm",
            name: "RFM 八类客户",
            description: "The eight classic RFM segments for customers with at least one order: recency high when the last order is at most `recent_days` days old, frequency high at `frequent_orders` or more orders in 365 days, monetary high at `monetary_fen` fen or more in 365 days.",
            clock_driven: true,
            parameters: vec![
                param(
                    "recent_days",
                    30.0,
                    "days since the last order that still count as recent",
                ),
                param(
                    "frequent_orders",
                    3.0,
                    "orders in 365 days that count as frequent",
                ),
                param(
                    "monetary_fen",
                    500_000.0,
                    "spend in 365 days (fen) that counts as high",
                ),
            ],
            groups: vec![group(
                "RFM分层",
                Dimension::Value,
                true,
                &[
                    "重要价值客户",
                    "重要发展客户",
                    "重要保持客户",
                    "重要挽留客户",
                    "一般价值客户",
                    "一般发展客户",
                    "一般保持客户",
                    "一般挽留客户",
                ],
            )],
        },
        Template {
            key: "first_capture",
            name: "首次扫码 → 新客户",
            description: "A customer who came through a channel in the last `new_days` days is 新客户, and gets a welcome message in WeChat when they arrive.",
            clock_driven: true,
            parameters: vec![param(
                "new_days",
                30.0,
                "days a captured customer stays 新客户",
            )],
            groups: vec![group("来源", Dimension::Behaviour, false, &["新客户"])],
        },
        Template {
            key: "activity",
            name: "活跃 → 沉默",
            description: "活跃 while the last visit (or, without one, the record's creation) is less than `silent_days` days ago, 沉默 from then on, until the next visit.",
            clock_driven: true,
            parameters: vec![param(
                "silent_days",
                30.0,
                "days without a visit before 沉默",
            )],
            groups: vec![group(
                "活跃度",
                Dimension::Behaviour,
                true,
                &["活跃", "沉默"],
            )],
        },
    ]
}

/// The template's rules, given its tags by name and its parameters.
fn drafts(key: &str, t: &HashMap<&str, TagId>, p: &Params) -> Drafts {
    let tag = |name: &str| json!(t.get(name).map_or(0, |id| id.0));
    let add = |name: &str| json!([{"type": "add_tag", "tag_id": tag(name)}]);
    // Windows are whole days.
    let orders_in = |days: f64| json!({"aggregate": "count", "of": "orders", "within": {"last_days": days.round() as i64}});
    let spend_in = |days: f64| json!({"aggregate": "sum", "of": "orders.amount", "within": {"last_days": days.round() as i64}});
    match key {
        "new_customer" => vec![
            (
                "新录入",
                0,
                json!({"metric": {"days_since": "created_at"}, "op": "lt", "value": p.get("new_days")}),
                add("新录入"),
            ),
            (
                "待分配",
                0,
                json!({"not": {"field": "owner_id", "op": "is_set"}}),
                json!([
                    {"type": "add_tag", "tag_id": tag("待分配")},
                    {"type": "create_task", "assignee": "managers", "title": "分配新客户 {customer_name}", "due_in_days": 1}
                ]),
            ),
        ],
        "high_intent" => vec![(
            "高意向客户",
            0,
            json!({"field": "project_stage", "op": "in", "value": ["已报价", "方案沟通中"]}),
            add("高意向客户"),
        )],
        "high_value" => {
            let days = p.get("window_days");
            vec![(
                "高价值客户",
                0,
                json!({"all": [
                    {"metric": spend_in(days), "op": "gt", "value": p.get("min_spend_fen")},
                    {"metric": orders_in(days), "op": "gt", "value": p.get("min_orders")}
                ]}),
                add("高价值客户"),
            )]
        }
        "lifecycle" => {
            let all_orders = json!({"aggregate": "count", "of": "orders"});
            vec![
                (
                    "生命周期·潜客",
                    10,
                    json!({"metric": all_orders, "op": "eq", "value": 0}),
                    add("潜客"),
                ),
                (
                    "生命周期·新客",
                    20,
                    json!({"metric": all_orders, "op": "eq", "value": 1}),
                    add("新客"),
                ),
                (
                    "生命周期·成长期",
                    30,
                    json!({"metric": orders_in(365.0), "op": "gte", "value": 2}),
                    add("成长期"),
                ),
                (
                    "生命周期·成熟期",
                    40,
                    json!({"metric": orders_in(365.0), "op": "gte", "value": p.get("mature_orders")}),
                    add("成熟期"),
                ),
                (
                    "生命周期·流失预警",
                    50,
                    json!({"all": [
                        {"metric": all_orders, "op": "gte", "value": 1},
                        {"metric": {"days_since_last": "follow_ups", "otherwise_since": "created_at"}, "op": "gte", "value": p.get("churn_days")}
                    ]}),
                    json!([
                        {"type": "add_tag", "tag_id": tag("流失预警")},
                        {"type": "create_task", "assignee": "owner", "title": "流失预警：回访 {customer_name}", "due_in_days": 3}
                    ]),
                ),
            ]
        }
        "abc_tiers" => vec![(
            "A/B/C 客户分级",
            0,
            Value::Null,
            json!([{"type": "set_tier",
            "score": {"score": [
                {"weight": p.get("order_weight"), "metric": orders_in(365.0)},
                {"weight": p.get("contact_weight"), "metric": {"aggregate": "count", "of": "follow_ups", "within": {"last_days": 90}}},
                {"weight": p.get("feedback_weight"), "metric": {"aggregate": "avg", "of": "events.properties.rating", "where": {"kind": "custom:feedback"}}}
            ]},
            "tiers": [
                {"min": p.get("a_min"), "tag_id": tag("A类客户")},
                {"min": p.get("b_min"), "tag_id": tag("B类客户")},
                {"min": 0, "tag_id": tag("C类客户")}
            ]}]),
        )],
        "rfm" => {
            let recency = json!({"days_since_last": "orders"});
            let r = |high: bool| json!({"metric": recency, "op": if high { "lte" } else { "gt" }, "value": p.get("recent_days")});
            let f = |high: bool| json!({"metric": orders_in(365.0), "op": if high { "gte" } else { "lt" }, "value": p.get("frequent_orders")});
            let m = |high: bool| json!({"metric": spend_in(365.0), "op": if high { "gte" } else { "lt" }, "value": p.get("monetary_fen")});
            [
                ("重要价值客户", true, true, true),
                ("重要发展客户", true, false, true),
                ("重要保持客户", false, true, true),
                ("重要挽留客户", false, false, true),
                ("一般价值客户", true, true, false),
                ("一般发展客户", true, false, false),
                ("一般保持客户", false, true, false),
                ("一般挽留客户", false, false, false),
            ]
            .into_iter()
            .map(|(name, rh, fh, mh)| (name, 0, json!({"all": [r(rh), f(fh), m(mh)]}), add(name)))
            .collect()
        }
        "first_capture" => vec![(
            "首次扫码·新客户",
            0,
            json!({"all": [
                {"field": "source_channel_id", "op": "is_set"},
                {"metric": {"days_since": "created_at"}, "op": "lt", "value": p.get("new_days")}
            ]}),
            json!([
                {"type": "add_tag", "tag_id": tag("新客户")},
                {"type": "notify_customer", "message": "欢迎光临，您的专属顾问将尽快联系您"}
            ]),
        )],
        "activity" => {
            let since = json!({"days_since_last": "events", "where": {"kind": "visit"}, "otherwise_since": "created_at"});
            vec![
                (
                    "活跃度·活跃",
                    0,
                    json!({"metric": since, "op": "lt", "value": p.get("silent_days")}),
                    add("活跃"),
                ),
                (
                    "活跃度·沉默",
                    0,
                    json!({"metric": since, "op": "gte", "value": p.get("silent_days")}),
                    add("沉默"),
                ),
            ]
        }
        _ => Vec::new(),
    }
}

impl RuleBook<'_> {
    /// Instantiates template `key` with `parameters` (defaults for those not given): its tag
    /// groups and tags, created or found by name, then its rules, created or found by name.
    pub async fn instantiate(
        &self,
        key: &str,
        parameters: &HashMap<String, f64>,
    ) -> DomainResult<Instantiated> {
        self.permitted()?;
        let template = catalogue()
            .into_iter()
            .find(|t| t.key == key)
            .ok_or(DomainError::NotFound("rule template"))?;
        let mut issues = Vec::new();
        for (name, value) in parameters {
            match template.parameters.iter().find(|p| p.name == name) {
                None => issues.push(FieldIssue::new(
                    format!("parameters.{name}"),
                    "unknown_parameter",
                    "the template has no such parameter",
                )),
                Some(p) if !(p.min..=p.max).contains(value) => issues.push(FieldIssue::new(
                    format!("parameters.{name}"),
                    "range",
                    format!("from {} to {}", p.min, p.max),
                )),
                Some(_) => {}
            }
        }
        if !issues.is_empty() {
            return Err(crate::customers::rejected(issues));
        }
        let params = Params(
            template
                .parameters
                .iter()
                .map(|p| (p.name, parameters.get(p.name).copied().unwrap_or(p.default)))
                .collect(),
        );
        let library = TagLibrary::new(self.db, &self.staff);
        let mut tags: Vec<(String, TagId)> = Vec::new();
        for (order, spec) in template.groups.iter().enumerate() {
            let group = self.group_for(&library, spec, order).await?;
            for (i, name) in spec.tags.iter().enumerate() {
                let made = library
                    .create_tag(NewTag {
                        group_id: group,
                        name: (*name).to_owned(),
                        color: None,
                        definition: Some(format!("{} ({})", template.name, template.key)),
                        sort_order: i32::try_from(i).unwrap_or_default(),
                    })
                    .await;
                let id = match made {
                    Ok(tag) => tag.id,
                    Err(DomainError::Taken {
                        code: ErrorCode::TagNameTaken,
                        existing_id: Some(id),
                        ..
                    }) => TagId(id),
                    Err(err) => return Err(err),
                };
                tags.push(((*name).to_owned(), id));
            }
        }
        let by_name: HashMap<&str, TagId> = tags.iter().map(|(n, id)| (n.as_str(), *id)).collect();
        let mut rules = Vec::new();
        let mut created_rules = 0;
        let mut backfill_job_id = None;
        for (name, priority, condition, actions) in drafts(template.key, &by_name, &params) {
            let made = self
                .create(RuleDraft {
                    name: name.to_owned(),
                    priority,
                    enabled: true,
                    condition,
                    actions,
                })
                .await;
            match made {
                Ok(saved) => {
                    created_rules += 1;
                    backfill_job_id = saved.backfill_job_id.or(backfill_job_id);
                    rules.push(saved.rule);
                }
                Err(DomainError::Taken {
                    code: ErrorCode::RuleNameTaken,
                    existing_id: Some(id),
                    ..
                }) => rules.push(self.get(crate::kernel::ids::RuleId(id)).await?),
                Err(err) => return Err(err),
            }
        }
        Ok(Instantiated {
            template: template.key,
            tags,
            rules,
            created_rules,
            backfill_job_id,
        })
    }

    async fn group_for(
        &self,
        library: &TagLibrary<'_>,
        spec: &GroupSpec,
        order: usize,
    ) -> DomainResult<TagGroupId> {
        let made = library
            .create_group(NewTagGroup {
                name: spec.name.to_owned(),
                dimension: spec.dimension,
                exclusive: spec.exclusive,
                description: None,
                sort_order: i32::try_from(order).unwrap_or_default(),
            })
            .await;
        match made {
            Ok(group) => Ok(group.id),
            Err(DomainError::Taken {
                code: ErrorCode::TagGroupNameTaken,
                existing_id: Some(id),
                ..
            }) => Ok(TagGroupId(id)),
            Err(err) => Err(err),
        }
    }
}
