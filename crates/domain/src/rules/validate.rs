//! Checks a rule as a client sent it (JSON) against the tenant's vocabulary — its custom
//! fields, tags, groups and project stages — and reports every fault at once, each at its
//! JSON pointer (`/condition/all/1/value`). Only a rule without faults is read into the
//! typed tree.

use std::collections::HashMap;

use chrono::NaiveDate;
use serde_json::{Map, Value};

use super::actions::RuleAction;
use super::condition::{Aggregate, Condition, FactKind, Op};
use super::facts::{CUSTOM_PREFIX, FieldKind, STANDARD_FIELDS};
use crate::kernel::error::FieldIssue;
use crate::kernel::ids::{TagGroupId, TagId};
use crate::kernel::values::FieldType;
use crate::library::custom_fields::CustomFieldDef;

/// Deepest condition tree accepted.
pub const MAX_DEPTH: usize = 20;
/// Most nodes (conditions and metrics) in one rule.
pub const MAX_NODES: usize = 200;
/// Longest window, in days.
pub const MAX_WINDOW_DAYS: u64 = 3_650;
/// Most values in an `in` list, terms in a score, tiers, actions.
pub const MAX_LIST: usize = 100;
pub const MAX_TERMS: usize = 20;
pub const MAX_ACTIONS: usize = 20;
/// Longest task title, in characters.
pub const TITLE_MAX: usize = 128;

/// Currencies an order may be in.
pub const CURRENCIES: [&str; 12] = [
    "CNY", "HKD", "MOP", "TWD", "USD", "EUR", "GBP", "JPY", "KRW", "SGD", "AUD", "CAD",
];

/// What a tag is to a rule.
#[derive(Debug, Clone, Copy)]
pub struct TagInfo {
    pub group: TagGroupId,
    pub exclusive: bool,
    pub active: bool,
}

/// The tenant's words a rule may use.
#[derive(Debug, Clone, Default)]
pub struct Vocabulary {
    pub custom_fields: Vec<CustomFieldDef>,
    pub tags: HashMap<TagId, TagInfo>,
    pub groups: HashMap<TagGroupId, bool>,
    pub stages: Vec<String>,
}

impl Vocabulary {
    /// The kind of the field named `name`, as a condition names it.
    pub fn field(&self, name: &str) -> Option<FieldKind> {
        if let Some(key) = name.strip_prefix(CUSTOM_PREFIX) {
            let def = self.custom_fields.iter().find(|d| d.key == key)?;
            return Some(match def.field_type {
                FieldType::Text => FieldKind::Text,
                FieldType::Number => FieldKind::Number,
                FieldType::Date => FieldKind::Date,
                FieldType::SingleSelect => FieldKind::Select(def.options.clone()),
                FieldType::MultiSelect => FieldKind::MultiSelect(def.options.clone()),
            });
        }
        STANDARD_FIELDS
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, k)| k.clone())
    }
}

/// A rule's parts as the client sent them, checked.
pub struct Checked {
    pub condition: Option<Condition>,
    pub actions: Vec<RuleAction>,
}

/// Checks `condition` (JSON `null` or absent: every customer) and `actions`, with paths below
/// `/condition` and `/actions`.
pub fn check_rule(
    vocabulary: &Vocabulary,
    condition: &Value,
    actions: &Value,
    issues: &mut Vec<FieldIssue>,
) -> Option<Checked> {
    let before = issues.len();
    let mut walker = Walker {
        vocabulary,
        issues,
        nodes: 0,
    };
    if !condition.is_null() {
        walker.condition(condition, "/condition", 1);
    }
    walker.actions(actions, "/actions");
    if issues.len() > before {
        return None;
    }
    let condition = if condition.is_null() {
        None
    } else {
        match serde_json::from_value::<Condition>(condition.clone()) {
            Ok(c) => Some(c),
            Err(e) => {
                issues.push(FieldIssue::new("/condition", "invalid", e.to_string()));
                return None;
            }
        }
    };
    match serde_json::from_value::<Vec<RuleAction>>(actions.clone()) {
        Ok(actions) => Some(Checked { condition, actions }),
        Err(e) => {
            issues.push(FieldIssue::new("/actions", "invalid", e.to_string()));
            None
        }
    }
}

struct Walker<'a> {
    vocabulary: &'a Vocabulary,
    issues: &'a mut Vec<FieldIssue>,
    nodes: usize,
}

const CONDITION_KEYS: [&str; 8] = [
    "all",
    "any",
    "not",
    "has_tag",
    "lacks_tag",
    "has_tag_in",
    "field",
    "metric",
];
const METRIC_KEYS: [&str; 4] = ["aggregate", "days_since", "days_since_last", "score"];

impl Walker<'_> {
    fn issue(&mut self, path: &str, code: &'static str, message: impl Into<String>) {
        self.issues.push(FieldIssue::new(path, code, message));
    }

    /// Counts a node; false once the rule has too many.
    fn count(&mut self, path: &str) -> bool {
        self.nodes += 1;
        if self.nodes == MAX_NODES + 1 {
            self.issue(
                path,
                "too_many_nodes",
                format!("a rule has at most {MAX_NODES} nodes"),
            );
        }
        self.nodes <= MAX_NODES
    }

    /// The node's object and the one kind key it has among `kinds`.
    fn node<'v>(
        &mut self,
        value: &'v Value,
        path: &str,
        kinds: &[&'static str],
        what: &str,
    ) -> Option<(&'v Map<String, Value>, &'static str)> {
        let Some(object) = value.as_object() else {
            self.issue(path, "type", format!("{what} is a JSON object"));
            return None;
        };
        let found: Vec<&'static str> = kinds
            .iter()
            .copied()
            .filter(|k| object.contains_key(*k))
            .collect();
        match found.as_slice() {
            [kind] => Some((object, kind)),
            [] => {
                self.issue(
                    path,
                    "unknown_node",
                    format!("{what} has one of the keys {}", kinds.join(", ")),
                );
                None
            }
            _ => {
                self.issue(
                    path,
                    "ambiguous_node",
                    format!("{what} has only one of the keys {}", found.join(", ")),
                );
                None
            }
        }
    }

    fn only_keys(&mut self, object: &Map<String, Value>, path: &str, allowed: &[&str]) {
        for key in object.keys() {
            if !allowed.contains(&key.as_str()) {
                self.issue(
                    &format!("{path}/{}", escape(key)),
                    "unknown_key",
                    format!("unknown key; allowed here: {}", allowed.join(", ")),
                );
            }
        }
    }

    fn condition(&mut self, value: &Value, path: &str, depth: usize) {
        if depth > MAX_DEPTH {
            self.issue(
                path,
                "too_deep",
                format!("a condition is at most {MAX_DEPTH} levels deep"),
            );
            return;
        }
        if !self.count(path) {
            return;
        }
        let Some((object, kind)) = self.node(value, path, &CONDITION_KEYS, "a condition") else {
            return;
        };
        match kind {
            "all" | "any" => {
                self.only_keys(object, path, &[kind]);
                let at = format!("{path}/{kind}");
                match object[kind].as_array() {
                    None => self.issue(&at, "type", "a list of conditions"),
                    Some(children) if children.is_empty() => {
                        self.issue(&at, "empty", "at least one condition")
                    }
                    Some(children) => {
                        for (i, child) in children.iter().enumerate() {
                            self.condition(child, &format!("{at}/{i}"), depth + 1);
                        }
                    }
                }
            }
            "not" => {
                self.only_keys(object, path, &["not"]);
                self.condition(&object["not"], &format!("{path}/not"), depth + 1);
            }
            "has_tag" | "lacks_tag" => {
                self.only_keys(object, path, &[kind]);
                self.tag(&object[kind], &format!("{path}/{kind}"));
            }
            "has_tag_in" => {
                self.only_keys(object, path, &["has_tag_in"]);
                let at = format!("{path}/has_tag_in");
                match object["has_tag_in"].as_i64() {
                    None => self.issue(&at, "type", "a tag group id"),
                    Some(id) if !self.vocabulary.groups.contains_key(&TagGroupId(id)) => {
                        self.issue(&at, "unknown_group", "no such tag group")
                    }
                    Some(_) => {}
                }
            }
            "field" => {
                self.only_keys(object, path, &["field", "op", "value"]);
                self.field_comparison(object, path);
            }
            _ => {
                self.only_keys(object, path, &["metric", "op", "value"]);
                self.metric(&object["metric"], &format!("{path}/metric"), depth + 1);
                self.metric_comparison(object, path);
            }
        }
    }

    fn tag(&mut self, value: &Value, at: &str) -> Option<TagId> {
        match value.as_i64() {
            None => {
                self.issue(at, "type", "a tag id");
                None
            }
            Some(id) if !self.vocabulary.tags.contains_key(&TagId(id)) => {
                self.issue(at, "unknown_tag", "no such tag");
                None
            }
            Some(id) => Some(TagId(id)),
        }
    }

    fn op(&mut self, object: &Map<String, Value>, path: &str) -> Option<Op> {
        let at = format!("{path}/op");
        match object.get("op") {
            None => {
                self.issue(&at, "required", "an operator is required");
                None
            }
            Some(op) => match op.as_str().and_then(Op::parse) {
                Some(op) => Some(op),
                None => {
                    let known: Vec<&str> = Op::ALL.iter().map(|(t, _)| *t).collect();
                    self.issue(&at, "unknown_op", format!("one of {}", known.join(", ")));
                    None
                }
            },
        }
    }

    /// Long because each kind of field allows its own operators and values.
    fn field_comparison(&mut self, object: &Map<String, Value>, path: &str) {
        let field_at = format!("{path}/field");
        let kind = match object["field"].as_str() {
            None => {
                self.issue(&field_at, "type", "a field name");
                None
            }
            Some(name) => {
                let kind = self.vocabulary.field(name);
                if kind.is_none() {
                    self.issue(
                        &field_at,
                        "unknown_field",
                        format!("no such field \"{name}\" (custom fields are named {CUSTOM_PREFIX}<key>)"),
                    );
                }
                kind
            }
        };
        let op = self.op(object, path);
        let (Some(kind), Some(op)) = (kind, op) else {
            return;
        };
        let allowed: &[Op] = match &kind {
            FieldKind::Text | FieldKind::Stage | FieldKind::Select(_) => {
                &[Op::Eq, Op::Ne, Op::In, Op::NotIn, Op::IsSet]
            }
            FieldKind::Number => &[
                Op::Eq,
                Op::Ne,
                Op::In,
                Op::NotIn,
                Op::Gt,
                Op::Gte,
                Op::Lt,
                Op::Lte,
                Op::IsSet,
            ],
            FieldKind::Time | FieldKind::Date => {
                &[Op::Eq, Op::Ne, Op::Gt, Op::Gte, Op::Lt, Op::Lte, Op::IsSet]
            }
            FieldKind::MultiSelect(_) => &[Op::Contains, Op::IsSet],
            FieldKind::Presence => &[Op::IsSet],
        };
        let op_at = format!("{path}/op");
        if !allowed.contains(&op) {
            let names: Vec<&str> = Op::ALL
                .iter()
                .filter(|(_, o)| allowed.contains(o))
                .map(|(t, _)| *t)
                .collect();
            self.issue(
                &op_at,
                "op_not_allowed",
                format!("this field allows {}", names.join(", ")),
            );
            return;
        }
        let value_at = format!("{path}/value");
        let value = object.get("value");
        if op == Op::IsSet {
            if value.is_some_and(|v| !v.is_boolean()) {
                self.issue(&value_at, "type", "true or false (default true)");
            }
            return;
        }
        let Some(value) = value else {
            self.issue(&value_at, "required", "a value to compare with");
            return;
        };
        if matches!(op, Op::In | Op::NotIn) {
            match value.as_array() {
                None => self.issue(&value_at, "type", "a list of values"),
                Some(items) if items.is_empty() || items.len() > MAX_LIST => {
                    self.issue(&value_at, "length", format!("1 to {MAX_LIST} values"))
                }
                Some(items) => {
                    for (i, item) in items.iter().enumerate() {
                        self.scalar(&kind, item, &format!("{value_at}/{i}"));
                    }
                }
            }
        } else {
            self.scalar(&kind, value, &value_at);
        }
    }

    /// One value of a field's kind.
    fn scalar(&mut self, kind: &FieldKind, value: &Value, at: &str) {
        match kind {
            FieldKind::Text => {
                if !value.is_string() {
                    self.issue(at, "type", "a string");
                }
            }
            FieldKind::Stage => match value.as_str() {
                None => self.issue(at, "type", "a project stage"),
                Some(stage) if !self.vocabulary.stages.iter().any(|s| s == stage) => self.issue(
                    at,
                    "unknown_stage",
                    format!(
                        "not a project stage; the stages are {}",
                        self.vocabulary.stages.join(", ")
                    ),
                ),
                Some(_) => {}
            },
            FieldKind::Number => {
                if !value.is_number() {
                    self.issue(at, "type", "a number");
                }
            }
            FieldKind::Time => {
                let text = value.as_str().unwrap_or_default();
                if chrono::DateTime::parse_from_rfc3339(text).is_err()
                    && text.parse::<NaiveDate>().is_err()
                {
                    self.issue(at, "type", "an RFC 3339 time or a date (YYYY-MM-DD)");
                }
            }
            FieldKind::Date => {
                if value
                    .as_str()
                    .and_then(|t| t.parse::<NaiveDate>().ok())
                    .is_none()
                {
                    self.issue(at, "type", "a date (YYYY-MM-DD)");
                }
            }
            FieldKind::Select(options) | FieldKind::MultiSelect(options) => match value.as_str() {
                None => self.issue(at, "type", "one of the field's options"),
                Some(v) if !options.iter().any(|o| o == v) => self.issue(
                    at,
                    "unknown_option",
                    format!(
                        "not an option of the field; options: {}",
                        options.join(", ")
                    ),
                ),
                Some(_) => {}
            },
            FieldKind::Presence => {}
        }
    }

    fn metric_comparison(&mut self, object: &Map<String, Value>, path: &str) {
        let Some(op) = self.op(object, path) else {
            return;
        };
        let value_at = format!("{path}/value");
        let value = object.get("value");
        match op {
            Op::IsSet => {
                if value.is_some_and(|v| !v.is_boolean()) {
                    self.issue(&value_at, "type", "true or false (default true)");
                }
            }
            Op::Eq | Op::Ne | Op::Gt | Op::Gte | Op::Lt | Op::Lte => match value {
                None => self.issue(&value_at, "required", "a number to compare with"),
                Some(v) if !v.is_number() => self.issue(&value_at, "type", "a number"),
                Some(_) => {}
            },
            _ => self.issue(
                &format!("{path}/op"),
                "op_not_allowed",
                "a metric allows eq, ne, gt, gte, lt, lte, is_set",
            ),
        }
    }

    /// Long because each metric kind checks its own operands.
    fn metric(&mut self, value: &Value, path: &str, depth: usize) {
        if depth > MAX_DEPTH {
            self.issue(
                path,
                "too_deep",
                format!("a condition is at most {MAX_DEPTH} levels deep"),
            );
            return;
        }
        if !self.count(path) {
            return;
        }
        let Some((object, kind)) = self.node(value, path, &METRIC_KEYS, "a metric") else {
            return;
        };
        match kind {
            "aggregate" => {
                self.only_keys(object, path, &["aggregate", "of", "within", "where"]);
                let aggregate = object["aggregate"]
                    .as_str()
                    .and_then(|a| Aggregate::ALL.iter().find(|(t, _)| *t == a))
                    .map(|&(_, a)| a);
                if aggregate.is_none() {
                    self.issue(
                        &format!("{path}/aggregate"),
                        "unknown_aggregate",
                        "one of count, sum, avg, max, min",
                    );
                }
                let fact = self.measured(object.get("of"), aggregate, &format!("{path}/of"));
                if let Some(within) = object.get("within") {
                    self.window(within, &format!("{path}/within"));
                }
                if let (Some(filter), Some(fact)) = (object.get("where"), fact) {
                    self.filter(filter, fact, &format!("{path}/where"));
                }
            }
            "days_since" => {
                self.only_keys(object, path, &["days_since"]);
                self.date_field(&object["days_since"], &format!("{path}/days_since"));
            }
            "days_since_last" => {
                self.only_keys(
                    object,
                    path,
                    &["days_since_last", "where", "otherwise_since"],
                );
                let at = format!("{path}/days_since_last");
                let fact = object["days_since_last"].as_str().and_then(FactKind::parse);
                if fact.is_none() {
                    self.issue(&at, "unknown_fact", "one of orders, follow_ups, events");
                }
                if let (Some(filter), Some(fact)) = (object.get("where"), fact) {
                    self.filter(filter, fact, &format!("{path}/where"));
                }
                if let Some(field) = object.get("otherwise_since") {
                    self.date_field(field, &format!("{path}/otherwise_since"));
                }
            }
            _ => {
                self.only_keys(object, path, &["score"]);
                let at = format!("{path}/score");
                match object["score"].as_array() {
                    None => self.issue(&at, "type", "a list of weighted terms"),
                    Some(terms) if terms.is_empty() || terms.len() > MAX_TERMS => {
                        self.issue(&at, "length", format!("1 to {MAX_TERMS} terms"))
                    }
                    Some(terms) => {
                        for (i, term) in terms.iter().enumerate() {
                            self.term(term, &format!("{at}/{i}"), depth);
                        }
                    }
                }
            }
        }
    }

    fn term(&mut self, term: &Value, at: &str, depth: usize) {
        let Some(object) = term.as_object() else {
            self.issue(at, "type", "a term: {\"weight\": number, \"metric\": {…}}");
            return;
        };
        self.only_keys(object, at, &["weight", "metric"]);
        if !object.get("weight").is_some_and(Value::is_number) {
            self.issue(&format!("{at}/weight"), "type", "a number");
        }
        match object.get("metric") {
            None => self.issue(&format!("{at}/metric"), "required", "a metric"),
            Some(metric) => self.metric(metric, &format!("{at}/metric"), depth + 1),
        }
    }

    /// What an aggregate measures: a fact kind to count, or a numeric attribute otherwise.
    fn measured(
        &mut self,
        of: Option<&Value>,
        aggregate: Option<Aggregate>,
        at: &str,
    ) -> Option<FactKind> {
        let Some(of) = of.and_then(Value::as_str) else {
            self.issue(
                at,
                "required",
                "what to measure: orders, follow_ups, events, or orders.amount …",
            );
            return None;
        };
        let (fact_name, attribute) = match of.split_once('.') {
            Some((fact, attribute)) => (fact, Some(attribute)),
            None => (of, None),
        };
        let Some(fact) = FactKind::parse(fact_name) else {
            self.issue(at, "unknown_fact", "orders, follow_ups or events");
            return None;
        };
        let numeric = match (fact, attribute) {
            (_, None) => None,
            (FactKind::Orders, Some("amount")) => Some(true),
            (FactKind::Orders, Some("product_category" | "currency" | "status"))
            | (FactKind::FollowUps, Some("kind" | "stage" | "content"))
            | (FactKind::Events, Some("kind")) => Some(false),
            (FactKind::Events, Some(a))
                if a.strip_prefix("properties.").is_some_and(|p| !p.is_empty()) =>
            {
                Some(true)
            }
            _ => {
                self.issue(
                    at,
                    "unknown_attribute",
                    format!(
                        "{fact_name} has no attribute \"{}\"",
                        attribute.unwrap_or_default()
                    ),
                );
                return Some(fact);
            }
        };
        match (aggregate, numeric) {
            (Some(Aggregate::Count), Some(_)) => self.issue(
                at,
                "type",
                format!("count counts facts: name them ({fact_name})"),
            ),
            (Some(a), None) if a != Aggregate::Count => self.issue(
                at,
                "not_numeric",
                format!(
                    "{} needs a numeric attribute, e.g. orders.amount",
                    a.as_str()
                ),
            ),
            (Some(a), Some(false)) => self.issue(
                at,
                "not_numeric",
                format!("{} over {of}: not a number", a.as_str()),
            ),
            _ => {}
        }
        Some(fact)
    }

    fn window(&mut self, value: &Value, at: &str) {
        let Some(object) = value.as_object() else {
            self.issue(
                at,
                "type",
                "{\"last_days\": N} or {\"from\": date, \"to\": date}",
            );
            return;
        };
        if let Some(days) = object.get("last_days") {
            self.only_keys(object, at, &["last_days"]);
            match days.as_i64() {
                Some(n) if n >= 1 && n as u64 <= MAX_WINDOW_DAYS => {}
                Some(_) => self.issue(
                    &format!("{at}/last_days"),
                    "range",
                    format!("1 to {MAX_WINDOW_DAYS} days"),
                ),
                None => self.issue(&format!("{at}/last_days"), "type", "a whole number of days"),
            }
            return;
        }
        self.only_keys(object, at, &["from", "to"]);
        let date = |key: &str| {
            object
                .get(key)
                .and_then(Value::as_str)
                .and_then(|d| d.parse::<NaiveDate>().ok())
        };
        let (from, to) = (date("from"), date("to"));
        for (key, parsed) in [("from", from), ("to", to)] {
            if parsed.is_none() {
                self.issue(&format!("{at}/{key}"), "type", "a date (YYYY-MM-DD)");
            }
        }
        if let (Some(from), Some(to)) = (from, to) {
            let span = (to - from).num_days();
            if span < 0 {
                self.issue(&format!("{at}/to"), "range", "not before from");
            } else if span as u64 >= MAX_WINDOW_DAYS {
                self.issue(
                    &format!("{at}/to"),
                    "range",
                    format!("a window of at most {MAX_WINDOW_DAYS} days"),
                );
            }
        }
    }

    /// Long because each fact kind has its own attributes to filter on.
    fn filter(&mut self, value: &Value, fact: FactKind, at: &str) {
        let Some(object) = value.as_object() else {
            self.issue(at, "type", "an object of attribute filters");
            return;
        };
        let allowed: &[&str] = match fact {
            FactKind::Orders => &["status", "product_category", "currency"],
            FactKind::FollowUps => &["kind", "stage"],
            FactKind::Events => &["kind"],
        };
        self.only_keys(object, at, allowed);
        for (key, value) in object {
            let path = format!("{at}/{}", escape(key));
            match key.as_str() {
                "status" if !matches!(value.as_str(), Some("paid" | "refunded" | "any")) => {
                    self.issue(&path, "type", "paid, refunded or any");
                }
                "currency" if !value.as_str().is_some_and(|c| CURRENCIES.contains(&c)) => {
                    self.issue(
                        &path,
                        "unknown_currency",
                        format!("one of {}", CURRENCIES.join(", ")),
                    );
                }
                "product_category" | "kind" | "stage" => {
                    let values: Vec<(String, &Value)> = match value {
                        Value::Array(items) if !items.is_empty() && items.len() <= MAX_LIST => {
                            items
                                .iter()
                                .enumerate()
                                .map(|(i, v)| (format!("{path}/{i}"), v))
                                .collect()
                        }
                        Value::String(_) => vec![(path.clone(), value)],
                        _ => {
                            self.issue(
                                &path,
                                "type",
                                format!("a string or a list of 1 to {MAX_LIST}"),
                            );
                            Vec::new()
                        }
                    };
                    for (item_at, item) in values {
                        let Some(text) = item.as_str() else {
                            self.issue(&item_at, "type", "a string");
                            continue;
                        };
                        match (fact, key.as_str()) {
                            (FactKind::FollowUps, "kind") if !super::follow_up_kind(text) => self
                                .issue(
                                    &item_at,
                                    "unknown_kind",
                                    "call, visit, wechat, meeting or other",
                                ),
                            (FactKind::FollowUps, "stage")
                                if !self.vocabulary.stages.iter().any(|s| s == text) =>
                            {
                                self.issue(
                                    &item_at,
                                    "unknown_stage",
                                    "not a project stage of the tenant",
                                )
                            }
                            (FactKind::Events, "kind") if !super::event_kind(text) => self.issue(
                                &item_at,
                                "unknown_kind",
                                "visit, page_view, login or custom:<name>",
                            ),
                            _ => {}
                        }
                    }
                }
                _ => {}
            }
        }
    }

    fn date_field(&mut self, value: &Value, at: &str) {
        match value.as_str() {
            None => self.issue(at, "type", "a date field name"),
            Some(name) => match self.vocabulary.field(name) {
                None => self.issue(at, "unknown_field", format!("no such field \"{name}\"")),
                Some(FieldKind::Time | FieldKind::Date) => {}
                Some(_) => self.issue(at, "not_a_date", format!("\"{name}\" is not a date")),
            },
        }
    }

    /// Long because each action kind checks its own operands.
    fn actions(&mut self, value: &Value, path: &str) {
        let Some(actions) = value.as_array() else {
            self.issue(path, "type", "a list of actions");
            return;
        };
        if actions.is_empty() || actions.len() > MAX_ACTIONS {
            self.issue(path, "length", format!("1 to {MAX_ACTIONS} actions"));
        }
        for (i, action) in actions.iter().enumerate() {
            let at = format!("{path}/{i}");
            let Some(object) = action.as_object() else {
                self.issue(&at, "type", "an action object");
                continue;
            };
            let kind = object
                .get("type")
                .and_then(Value::as_str)
                .unwrap_or_default();
            match kind {
                "add_tag" => {
                    self.only_keys(object, &at, &["type", "tag_id"]);
                    self.assignable(object.get("tag_id"), &format!("{at}/tag_id"));
                }
                "set_tier" => {
                    self.only_keys(object, &at, &["type", "score", "tiers"]);
                    match object.get("score") {
                        None => self.issue(&format!("{at}/score"), "required", "a metric"),
                        Some(score) => self.metric(score, &format!("{at}/score"), 1),
                    }
                    self.tiers(object.get("tiers"), &format!("{at}/tiers"));
                }
                "create_task" => {
                    self.only_keys(object, &at, &["type", "assignee", "title", "due_in_days"]);
                    let assignee = object.get("assignee");
                    let valid = match assignee {
                        Some(Value::String(s)) => s == "owner" || s == "managers",
                        Some(Value::Object(o)) => {
                            o.len() == 1 && o.get("staff_id").is_some_and(Value::is_i64)
                        }
                        _ => false,
                    };
                    if !valid {
                        self.issue(
                            &format!("{at}/assignee"),
                            "type",
                            "\"owner\", \"managers\" or {\"staff_id\": id}",
                        );
                    }
                    match object.get("title").and_then(Value::as_str).map(str::trim) {
                        Some(t) if !t.is_empty() && t.chars().count() <= TITLE_MAX => {}
                        _ => self.issue(
                            &format!("{at}/title"),
                            "length",
                            format!("1 to {TITLE_MAX} characters"),
                        ),
                    }
                    if let Some(days) = object.get("due_in_days")
                        && days.as_u64().is_none_or(|d| d > MAX_WINDOW_DAYS)
                    {
                        self.issue(
                            &format!("{at}/due_in_days"),
                            "range",
                            format!("0 to {MAX_WINDOW_DAYS} days"),
                        );
                    }
                }
                _ => self.issue(
                    &format!("{at}/type"),
                    "unknown_action",
                    "one of add_tag, set_tier, create_task",
                ),
            }
        }
    }

    fn assignable(&mut self, value: Option<&Value>, at: &str) -> Option<TagInfo> {
        let tag = self.tag(value.unwrap_or(&Value::Null), at)?;
        let info = self.vocabulary.tags.get(&tag).copied()?;
        if !info.active {
            self.issue(at, "archived", "the tag is archived and cannot be assigned");
        }
        Some(info)
    }

    fn tiers(&mut self, value: Option<&Value>, at: &str) {
        let Some(tiers) = value.and_then(Value::as_array) else {
            self.issue(at, "type", "a list of {\"min\": number, \"tag_id\": id}");
            return;
        };
        if tiers.is_empty() || tiers.len() > MAX_TERMS {
            self.issue(at, "length", format!("1 to {MAX_TERMS} tiers"));
        }
        let mut group: Option<TagGroupId> = None;
        for (i, tier) in tiers.iter().enumerate() {
            let tier_at = format!("{at}/{i}");
            let Some(object) = tier.as_object() else {
                self.issue(&tier_at, "type", "{\"min\": number, \"tag_id\": id}");
                continue;
            };
            self.only_keys(object, &tier_at, &["min", "tag_id"]);
            if !object.get("min").is_some_and(Value::is_number) {
                self.issue(&format!("{tier_at}/min"), "type", "a number");
            }
            let tag_at = format!("{tier_at}/tag_id");
            if let Some(info) = self.assignable(object.get("tag_id"), &tag_at) {
                if !info.exclusive {
                    self.issue(
                        &tag_at,
                        "not_exclusive",
                        "tier tags belong to an exclusive group",
                    );
                } else if group.is_some_and(|g| g != info.group) {
                    self.issue(
                        &tag_at,
                        "mixed_groups",
                        "every tier's tag belongs to one group",
                    );
                }
                group.get_or_insert(info.group);
            }
        }
    }
}

/// A JSON-pointer segment for `key`.
fn escape(key: &str) -> String {
    key.replace('~', "~0").replace('/', "~1")
}
