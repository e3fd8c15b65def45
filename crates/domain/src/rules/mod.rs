//! The rule language and its evaluator: what a rule is ([`Rule`]: a condition tree and a list
//! of actions), how a client's draft is checked ([`validate`]), the pure evaluator
//! ([`eval`]: facts + rule + clock → verdict, explanation, next change), and the order rules
//! run in ([`graph`]). Nothing here reads or writes the database: the rules engine
//! (`customers::automation`) loads the facts and applies the verdicts, and `automation`
//! keeps the tenant's rules.

pub mod actions;
pub mod condition;
pub mod eval;
pub mod facts;
pub mod graph;
#[cfg(test)]
mod tests;
pub mod validate;

use chrono::{DateTime, Utc};
use serde::Serialize;

pub use actions::{Assignee, RuleAction, Tier};
pub use condition::{Condition, Metric};
pub use eval::{Clock, Evaluation, NodeTrace, TagView};
pub use facts::CustomerFacts;
pub use validate::{TagInfo, Vocabulary};

use crate::kernel::ids::{RuleId, TagId};

/// The project stages a tenant has until it sets its own.
pub const DEFAULT_STAGES: [&str; 7] = [
    "初步接触",
    "需求确认",
    "方案沟通中",
    "已报价",
    "谈判",
    "成交",
    "输单",
];

/// One tagging rule of a tenant.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Rule {
    pub id: RuleId,
    pub name: String,
    /// Higher runs first and wins an exclusive group against a lower one.
    pub priority: i32,
    pub enabled: bool,
    /// Grows by one with each change of the condition or the actions.
    pub version: i32,
    /// `None`: the rule applies to every customer.
    pub condition: Option<Condition>,
    pub actions: Vec<RuleAction>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl Rule {
    /// Every tag the rule may put on a customer.
    pub fn produces(&self) -> Vec<TagId> {
        self.actions.iter().flat_map(RuleAction::produces).collect()
    }
}

/// Whether `kind` is a follow-up kind.
pub fn follow_up_kind(kind: &str) -> bool {
    crate::kernel::values::FollowUpKind::ALL
        .iter()
        .any(|(k, _)| *k == kind)
}

/// Longest event kind, in characters.
pub const EVENT_KIND_MAX: usize = 64;

/// Whether `kind` is an activity event kind: `visit`, `page_view`, `login`, or
/// `custom:<name>` with a name of letters, digits, `_`, `-` or `.`.
pub fn event_kind(kind: &str) -> bool {
    match kind {
        "visit" | "page_view" | "login" => true,
        _ => kind.strip_prefix("custom:").is_some_and(|name| {
            !name.is_empty()
                && kind.len() <= EVENT_KIND_MAX
                && name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
        }),
    }
}
