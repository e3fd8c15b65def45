//! The evaluation endpoint's answer: one rule evaluated now for one customer, node by node —
//! "why does (or doesn't) this customer have this tag".

use super::*;

/// A rule evaluated now for one customer, node by node.
#[derive(Debug, Clone, Serialize)]
pub struct RuleCheck {
    pub rule: Rule,
    pub evaluation: Evaluation,
    /// The tag the rule would give now (the first of its tag actions, or the tier reached).
    pub would_tag: Vec<TagId>,
    /// Which of the rule's tags the customer carries now.
    pub carries: Vec<TagId>,
    /// The rule's tags a person took off and the rule may not put back.
    pub vetoed: Vec<TagId>,
    /// For a rule with tasks, messages or an owner to give: whether it held at the
    /// customer's last evaluation (when it next turns true, they happen). `None` for a rule
    /// that only tags: its tags are level-triggered and no verdict is kept.
    pub held_before: Option<bool>,
}

impl Customers<'_> {
    /// Evaluates one rule now for one customer, with its current tags: "why does (or
    /// doesn't) this customer have this tag".
    #[tracing::instrument(skip_all, fields(tenant = %self.viewer.tenant, customer = %id, rule = %rule_id))]
    pub async fn evaluate_rule(&self, id: CustomerId, rule_id: RuleId) -> DomainResult<RuleCheck> {
        let customer = self.get(id).await?;
        let model = rule::Entity::find_by_id(rule_id)
            .filter(rule::Column::TenantId.eq(self.tenant().0))
            .one(self.db)
            .await?
            .ok_or(DomainError::NotFound("rule"))?;
        let rule = read_rule(model)?;
        let row = customer::Entity::find_by_id(id)
            .one(self.db)
            .await?
            .ok_or(DomainError::NotFound("customer"))?;
        // The tenant's timezone and custom fields as the engine has them.
        let set = ruleset::rule_set(self.db, self.tenant()).await?;
        let measured = ruleset::measured(std::slice::from_ref(&rule));
        let facts = load_facts(self.db, &row, &set.defs, &measured, false).await?;
        let clock = set.clock(clock::now());
        let present = Present {
            tags: customer.tags.iter().map(|t| t.tag_id).collect(),
            groups: customer.tags.iter().map(|t| t.group_id).collect(),
        };
        let mut evaluation = eval::evaluate(rule.condition.as_ref(), &facts, &present, &clock);
        let mut would_tag = Vec::new();
        if evaluation.holds {
            for action in &rule.actions {
                match action {
                    RuleAction::AddTag { tag_id } => would_tag.push(*tag_id),
                    RuleAction::SetTier { score, tiers } => {
                        let (value, due) = eval::measure(score, &facts, &clock);
                        evaluation.next_change = earliest(evaluation.next_change, due);
                        if let Some(tier) = tier_of(value.unwrap_or(0.0), tiers) {
                            would_tag.push(tier.tag_id);
                        }
                    }
                    RuleAction::CreateTask { .. }
                    | RuleAction::AssignOwner { .. }
                    | RuleAction::NotifyOwner { .. }
                    | RuleAction::NotifyCustomer { .. } => {}
                }
            }
        }
        let produces = rule.produces();
        let carries = customer
            .tags
            .iter()
            .map(|t| t.tag_id)
            .filter(|t| produces.contains(t))
            .collect();
        let vetoed = tag_veto::Entity::find()
            .select_only()
            .column(tag_veto::Column::TagId)
            .filter(tag_veto::Column::CustomerId.eq(id.0))
            .into_tuple::<TagId>()
            .all(self.db)
            .await?
            .into_iter()
            .filter(|t| produces.contains(t))
            .collect();
        // A state is kept only while a rule with edges holds: no row means it did not.
        let held_before = match apply::has_edges(&rule) {
            true => Some(
                rule_state::Entity::find_by_id((id, rule_id))
                    .one(self.db)
                    .await?
                    .is_some_and(|s| s.holds),
            ),
            false => None,
        };
        Ok(RuleCheck {
            rule,
            evaluation,
            would_tag,
            carries,
            vetoed,
            held_before,
        })
    }
}
