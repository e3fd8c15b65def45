//! Checks a rule as a client sent it (JSON) against the tenant's vocabulary — its custom
//! fields, tags, groups, project stages and staff — and reports every fault at once, each at its
//! JSON pointer (`/condition/all/1/value`). Only a rule without faults is read into the
//! typed tree.

use std::collections::{HashMap, HashSet};

use chrono::NaiveDate;
use serde_json::{Map, Value};

use super::actions::RuleAction;
use super::condition::{Aggregate, Condition, FactKind, Op};
use super::facts::{CUSTOM_PREFIX, FieldKind, STANDARD_FIELDS};
use crate::kernel::error::FieldIssue;
use crate::kernel::ids::{StaffId, TagGroupId, TagId};
use crate::kernel::values::FieldType;
use crate::library::custom_fields::CustomFieldDef;

mod actions;
mod facts;

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
/// Longest message, in characters: a subscribe message's `thing` value shows no more.
pub const MESSAGE_MAX: usize = 20;
/// Most staff members a round-robin deals to (as a channel's).
pub const ROUND_ROBIN_MAX: usize = 50;

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
    /// The tenant's active staff members, who tasks and owners may name.
    pub staff: HashSet<StaffId>,
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
    pub(super) fn issue(&mut self, path: &str, code: &'static str, message: impl Into<String>) {
        self.issues.push(FieldIssue::new(path, code, message));
    }

    /// Counts a node; false once the rule has too many.
    pub(super) fn count(&mut self, path: &str) -> bool {
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
    pub(super) fn node<'v>(
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

    pub(super) fn only_keys(&mut self, object: &Map<String, Value>, path: &str, allowed: &[&str]) {
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

    pub(super) fn tag(&mut self, value: &Value, at: &str) -> Option<TagId> {
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

    pub(super) fn op(&mut self, object: &Map<String, Value>, path: &str) -> Option<Op> {
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
}

/// A JSON-pointer segment for `key`.
fn escape(key: &str) -> String {
    key.replace('~', "~0").replace('/', "~1")
}
