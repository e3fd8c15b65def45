//! What a rule does. Tag actions are level-triggered: the rule's tags are on a customer
//! exactly while its condition holds. The others (tasks, owners, messages) are
//! edge-triggered: they run once each time the condition turns from false to true. The list
//! is open: a new kind is a new variant here, its check in `validate::actions` and its effect
//! in `customers::automation::apply`.

use serde::{Deserialize, Serialize};

use super::condition::Metric;
use crate::kernel::ids::{StaffId, TagId};
use crate::kernel::values::OwnerPolicy;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum RuleAction {
    /// The tag is on the customer while the condition holds. In an exclusive group it takes
    /// the place of the group's other automatic tags (a person's choice stays).
    AddTag { tag_id: TagId },
    /// The tag of the first tier whose `min` the score reaches (tiers are tried from the
    /// highest `min` down); every tier's tag belongs to one exclusive group.
    SetTier { score: Metric, tiers: Vec<Tier> },
    /// A to-do, once per transition to true.
    CreateTask {
        assignee: Assignee,
        /// `{customer_name}` is replaced by the customer's name.
        title: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        due_in_days: Option<u32>,
    },
    /// An owner, by a channel's policies: `fixed` and `round_robin` give one to a customer
    /// who has none (a customer with an owner keeps theirs); `pool` takes the owner away, so
    /// the customer returns to the unassigned pool.
    AssignOwner { policy: OwnerPolicy },
    /// A WeChat subscribe message to the customer's owner (none while there is no owner),
    /// sent after the change commits.
    NotifyOwner { message: String },
    /// A WeChat subscribe message to the customer, who must have come through the
    /// mini-program (and accepted the message there), sent after the change commits.
    NotifyCustomer { message: String },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Tier {
    pub min: f64,
    pub tag_id: TagId,
}

/// Who a rule's task is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Assignee {
    /// The customer's owner (no task while the customer has none).
    Owner,
    /// Every active manager of the tenant (admins when there is no manager).
    Managers,
    /// One named staff member.
    #[serde(untagged)]
    Staff { staff_id: StaffId },
}

impl RuleAction {
    /// The tags this action may put on a customer.
    pub fn produces(&self) -> Vec<TagId> {
        match self {
            RuleAction::AddTag { tag_id } => vec![*tag_id],
            RuleAction::SetTier { tiers, .. } => tiers.iter().map(|t| t.tag_id).collect(),
            RuleAction::CreateTask { .. }
            | RuleAction::AssignOwner { .. }
            | RuleAction::NotifyOwner { .. }
            | RuleAction::NotifyCustomer { .. } => Vec::new(),
        }
    }

    /// Whether the action runs once per transition rather than following the condition.
    pub fn is_edge(&self) -> bool {
        !matches!(self, RuleAction::AddTag { .. } | RuleAction::SetTier { .. })
    }
}
