//! The rule language: a condition tree over one customer's fields, tags and facts, and the
//! numeric measures (metrics) it compares. These are the stored shapes (JSON through serde);
//! what a client sends is checked first by [`super::validate`], which reports every fault
//! with its JSON pointer, so a tree that reaches these types is well formed.

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::kernel::ids::{TagGroupId, TagId};

/// A node of the condition tree. Each kind is told apart by its key.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Condition {
    /// Every child holds (at least one child).
    All { all: Vec<Condition> },
    /// At least one child holds (at least one child).
    Any { any: Vec<Condition> },
    /// The child does not hold.
    Not { not: Box<Condition> },
    /// The customer carries the tag.
    HasTag { has_tag: TagId },
    /// The customer does not carry the tag.
    LacksTag { lacks_tag: TagId },
    /// The customer carries a tag of the group.
    HasTagIn { has_tag_in: TagGroupId },
    /// A comparison of a customer field or custom field with a value.
    Field {
        field: String,
        op: Op,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        value: Option<Value>,
    },
    /// A comparison of a metric with a number.
    Metric {
        metric: Metric,
        op: Op,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        value: Option<Value>,
    },
}

/// A comparison operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Op {
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

impl Op {
    pub const ALL: [(&'static str, Op); 10] = [
        ("eq", Op::Eq),
        ("ne", Op::Ne),
        ("in", Op::In),
        ("not_in", Op::NotIn),
        ("gt", Op::Gt),
        ("gte", Op::Gte),
        ("lt", Op::Lt),
        ("lte", Op::Lte),
        ("is_set", Op::IsSet),
        ("contains", Op::Contains),
    ];

    pub fn parse(text: &str) -> Option<Op> {
        Op::ALL.iter().find(|(t, _)| *t == text).map(|&(_, op)| op)
    }

    pub fn symbol(self) -> &'static str {
        match self {
            Op::Eq => "=",
            Op::Ne => "≠",
            Op::In => "in",
            Op::NotIn => "not in",
            Op::Gt => ">",
            Op::Gte => "≥",
            Op::Lt => "<",
            Op::Lte => "≤",
            Op::IsSet => "is set",
            Op::Contains => "contains",
        }
    }

    /// The verdict of `left op right` for ordered values.
    pub(crate) fn ordered<T: PartialOrd>(self, left: T, right: T) -> bool {
        match self {
            Op::Eq => left == right,
            Op::Ne => left != right,
            Op::Gt => left > right,
            Op::Gte => left >= right,
            Op::Lt => left < right,
            Op::Lte => left <= right,
            Op::In | Op::NotIn | Op::IsSet | Op::Contains => false,
        }
    }
}

/// A number measured on the customer now.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Metric {
    /// count / sum / avg / max / min over the customer's facts of one kind.
    Aggregate {
        aggregate: Aggregate,
        /// `orders`, `follow_ups` or `events` for a count; a numeric attribute
        /// (`orders.amount`, `events.properties.<key>`) otherwise.
        of: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        within: Option<Window>,
        #[serde(default, rename = "where", skip_serializing_if = "Option::is_none")]
        filter: Option<FactFilter>,
    },
    /// Whole days since a date field, in the tenant's timezone.
    DaysSince { days_since: String },
    /// Whole days since the customer's latest fact of a kind, in the tenant's timezone;
    /// `otherwise_since` names the date field to count from when there is none.
    DaysSinceLast {
        days_since_last: FactKind,
        #[serde(default, rename = "where", skip_serializing_if = "Option::is_none")]
        filter: Option<FactFilter>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        otherwise_since: Option<String>,
    },
    /// A weighted sum of metrics; a metric with no value counts 0.
    Score { score: Vec<Term> },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Term {
    pub weight: f64,
    pub metric: Metric,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Aggregate {
    Count,
    Sum,
    Avg,
    Max,
    Min,
}

impl Aggregate {
    pub const ALL: [(&'static str, Aggregate); 5] = [
        ("count", Aggregate::Count),
        ("sum", Aggregate::Sum),
        ("avg", Aggregate::Avg),
        ("max", Aggregate::Max),
        ("min", Aggregate::Min),
    ];

    pub fn as_str(self) -> &'static str {
        Aggregate::ALL
            .iter()
            .find(|(_, a)| *a == self)
            .map_or("count", |(t, _)| t)
    }
}

/// The facts a rule can measure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FactKind {
    Orders,
    FollowUps,
    Events,
}

impl FactKind {
    pub const ALL: [(&'static str, FactKind); 3] = [
        ("orders", FactKind::Orders),
        ("follow_ups", FactKind::FollowUps),
        ("events", FactKind::Events),
    ];

    pub fn parse(text: &str) -> Option<FactKind> {
        FactKind::ALL
            .iter()
            .find(|(t, _)| *t == text)
            .map(|&(_, k)| k)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            FactKind::Orders => "orders",
            FactKind::FollowUps => "follow_ups",
            FactKind::Events => "events",
        }
    }
}

/// Which facts count by time: those of the last `last_days` days (a rolling window: a fact
/// leaves it exactly `last_days` × 24 h after it occurred), or those whose local date lies
/// between `from` and `to`, both included.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Window {
    Last { last_days: u32 },
    Between { from: NaiveDate, to: NaiveDate },
}

/// Which facts count by their attributes. Orders count only when paid unless `status` says
/// otherwise, and amounts only in CNY unless `currency` says otherwise.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct FactFilter {
    /// Orders: `paid` (the default), `refunded` or `any`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    /// Orders: the product categories counted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub product_category: Option<OneOrMany>,
    /// Orders: the currency counted (CNY by default for amounts).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub currency: Option<String>,
    /// Follow-ups and events: the kinds counted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<OneOrMany>,
    /// Follow-ups: the project stages counted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stage: Option<OneOrMany>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

impl OneOrMany {
    pub fn contains(&self, value: &str) -> bool {
        match self {
            OneOrMany::One(one) => one == value,
            OneOrMany::Many(many) => many.iter().any(|m| m == value),
        }
    }

    pub fn values(&self) -> Vec<&str> {
        match self {
            OneOrMany::One(one) => vec![one.as_str()],
            OneOrMany::Many(many) => many.iter().map(String::as_str).collect(),
        }
    }
}

impl Condition {
    /// Every node of the tree, the root first.
    pub fn walk(&self, visit: &mut dyn FnMut(&Condition)) {
        visit(self);
        match self {
            Condition::All { all: children } | Condition::Any { any: children } => {
                for child in children {
                    child.walk(visit);
                }
            }
            Condition::Not { not } => not.walk(visit),
            _ => {}
        }
    }

    /// The tags and groups the condition reads.
    pub fn reads(&self) -> (Vec<TagId>, Vec<TagGroupId>) {
        let (mut tags, mut groups) = (Vec::new(), Vec::new());
        self.walk(&mut |node| match node {
            Condition::HasTag { has_tag: t } | Condition::LacksTag { lacks_tag: t } => {
                tags.push(*t)
            }
            Condition::HasTagIn { has_tag_in } => groups.push(*has_tag_in),
            _ => {}
        });
        (tags, groups)
    }

    /// The fact kinds (and, for events, the event kinds; `None` for any) the condition measures.
    pub fn measures(&self, out: &mut Vec<(FactKind, Option<Vec<String>>)>) {
        self.walk(&mut |node| {
            if let Condition::Metric { metric, .. } = node {
                metric.measures(out);
            }
        });
    }
}

impl Metric {
    pub fn measures(&self, out: &mut Vec<(FactKind, Option<Vec<String>>)>) {
        let kinds = |filter: &Option<FactFilter>| {
            filter
                .as_ref()
                .and_then(|f| f.kind.as_ref())
                .map(|k| k.values().into_iter().map(str::to_owned).collect())
        };
        match self {
            Metric::Aggregate { of, filter, .. } => {
                let fact = of.split('.').next().and_then(FactKind::parse);
                if let Some(fact) = fact {
                    out.push((fact, kinds(filter)));
                }
            }
            Metric::DaysSinceLast {
                days_since_last,
                filter,
                ..
            } => out.push((*days_since_last, kinds(filter))),
            Metric::DaysSince { .. } => {}
            Metric::Score { score } => {
                for term in score {
                    term.metric.measures(out);
                }
            }
        }
    }
}
