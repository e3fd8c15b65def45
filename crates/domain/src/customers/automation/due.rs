//! Transitions that come with time alone (a counted order leaving its window, "30 days
//! since" arriving): every evaluation stores in `rule_states.next_due_at` the earliest
//! instant its verdict can change with no new fact, and a scheduler in every server process
//! takes the due states in batches and evaluates exactly those customers again.
//!
//! Several processes share the work: a round claims due states with a lease (a conditional
//! update and a token, so one process holds a state at a time; no row locks are held while
//! claiming) and evaluates each customer in a transaction of its own under the customer's row
//! lock, as every other change does. A transition is therefore applied once however many
//! processes look: a second evaluation of the same customer finds the states already moved
//! and changes nothing. A process that dies mid-round leaves its claims to expire; the
//! evaluation is idempotent, so taking them again loses and doubles nothing.

use super::*;
use crate::store::lease;
use crate::store::retry;
use crate::support::data_version;

/// What one round did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DueRound {
    /// Due states this round claimed.
    pub claimed: u64,
    /// Customers evaluated again.
    pub customers: u64,
    /// Tags put on or taken off.
    pub changes: u64,
}

/// Claims up to `limit` due states for `lease` and evaluates their customers again.
pub async fn run_due(
    db: &DatabaseConnection,
    now: DateTime<Utc>,
    lease: Duration,
    limit: u64,
) -> DomainResult<DueRound> {
    let free = || lease::free(rule_state::Column::LeaseUntil, now);
    let due: Vec<i64> = rule_state::Entity::find()
        .select_only()
        .column(rule_state::Column::CustomerId)
        .filter(rule_state::Column::NextDueAt.lte(now))
        .filter(free())
        .order_by_asc(rule_state::Column::NextDueAt)
        .limit(limit)
        .into_tuple()
        .all(db)
        .await
        .step("reading the due rule states")?;
    if due.is_empty() {
        return Ok(DueRound::default());
    }
    let token = lease::token();
    let claimed = rule_state::Entity::update_many()
        .col_expr(rule_state::Column::LeaseUntil, Expr::value(now + lease))
        .col_expr(rule_state::Column::LeaseToken, Expr::value(token.clone()))
        .filter(rule_state::Column::CustomerId.is_in(due.clone()))
        .filter(rule_state::Column::NextDueAt.lte(now))
        .filter(free())
        .exec(db)
        .await
        .step("claiming the due rule states")?
        .rows_affected;
    let mut customers: Vec<(i64, TenantId)> = rule_state::Entity::find()
        .select_only()
        .column(rule_state::Column::CustomerId)
        .column(rule_state::Column::TenantId)
        .filter(rule_state::Column::CustomerId.is_in(due))
        .filter(rule_state::Column::LeaseToken.eq(token.clone()))
        .distinct()
        .into_tuple()
        .all(db)
        .await
        .step("reading the claimed rule states")?;
    customers.sort_unstable();
    customers.dedup();
    let mut round = DueRound {
        claimed,
        ..DueRound::default()
    };
    for (customer, tenant) in customers {
        let evaluated = retry::retrying("rules.due", || {
            evaluate_one(db, tenant, CustomerId(customer), now)
        })
        .await;
        match evaluated {
            Ok(changes) => {
                round.customers += 1;
                round.changes += changes.len() as u64;
            }
            // One customer failing holds up no other; its claim is given back, so the next
            // round tries it again.
            Err(err) => {
                tracing::warn!(customer, error = %err, "could not apply a customer's due rule transitions");
                rule_state::Entity::update_many()
                    .col_expr(
                        rule_state::Column::LeaseUntil,
                        Expr::value(None::<DateTime<Utc>>),
                    )
                    .filter(rule_state::Column::CustomerId.eq(customer))
                    .filter(rule_state::Column::LeaseToken.eq(token.clone()))
                    .exec(db)
                    .await
                    .ok();
            }
        }
    }
    Ok(round)
}

/// Evaluates one customer again, in its own transaction under the customer's lock; returns
/// the tags changed. A customer deleted meanwhile takes its states with it.
pub(super) async fn evaluate_one(
    db: &DatabaseConnection,
    tenant: TenantId,
    customer: CustomerId,
    now: DateTime<Utc>,
) -> DomainResult<Vec<RuleChange>> {
    let txn = db.begin().await?;
    let row = customer::Entity::find_by_id(customer)
        .filter(customer::Column::TenantId.eq(tenant.0))
        .filter(customer::Column::DeletedAt.is_null())
        .lock_exclusive()
        .one(&txn)
        .await
        .step("locking the customer for its due rules")?;
    let Some(row) = row else {
        rule_state::Entity::delete_many()
            .filter(rule_state::Column::CustomerId.eq(customer.0))
            .exec(&txn)
            .await
            .step("forgetting a deleted customer's rule states")?;
        txn.commit().await?;
        return Ok(Vec::new());
    };
    let reaction = react_row(&txn, &row, now).await?;
    // States of rules no longer enabled (their clean-up after a disable or delete did not
    // run) would stay due for ever: they go.
    let enabled: Vec<i64> = ruleset::rule_set(&txn, tenant)
        .await?
        .rules
        .iter()
        .map(|r| r.id.0)
        .collect();
    rule_state::Entity::delete_many()
        .filter(rule_state::Column::CustomerId.eq(customer.0))
        .filter(rule_state::Column::RuleId.is_not_in(enabled))
        .exec(&txn)
        .await
        .step("forgetting the states of rules gone")?;
    if !reaction.changes.is_empty() || reaction.owner.is_some() {
        data_version::bump(&txn, tenant).await?;
    }
    txn.commit().await?;
    Ok(reaction.changes)
}
