//! Transitions that come with time alone (a counted order leaving its window, "30 days
//! since" arriving): every evaluation keeps in `rule_due` the earliest instant any of the
//! customer's verdicts can change with no new fact (one row per customer with something due),
//! and a scheduler in every server process takes the due customers in batches and evaluates
//! exactly those again.
//!
//! Several processes share the work: a round claims due customers with a lease (a
//! conditional update and a token, so one process holds a customer at a time; no row locks
//! are held while claiming) and evaluates them in batches of up to a thousand, two at once on
//! MySQL, each in one transaction under the customers' row locks, as every other change takes
//! them. A transition is therefore applied once however many processes look: a second
//! evaluation of the same customer finds its tags and states already moved and changes
//! nothing. A process that dies mid-round leaves its claims to expire; the evaluation is
//! idempotent, so taking them again loses and doubles nothing.

use super::*;
use crate::store::entities::rule_due;
use crate::store::lease;
use crate::store::retry;
use crate::support::data_version;
use futures_util::StreamExt;
use futures_util::stream::FuturesUnordered;
use std::collections::BTreeMap;

/// What one round did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DueRound {
    /// Due customers this round claimed.
    pub claimed: u64,
    /// Customers evaluated again.
    pub customers: u64,
    /// Tags put on or taken off.
    pub changes: u64,
}

/// Claims up to `limit` due customers for `lease` and evaluates them again.
pub async fn run_due(
    db: &DatabaseConnection,
    now: DateTime<Utc>,
    lease: Duration,
    limit: u64,
) -> DomainResult<DueRound> {
    let free = || lease::free(rule_due::Column::LeaseUntil, now);
    let due: Vec<i64> = rule_due::Entity::find()
        .select_only()
        .column(rule_due::Column::CustomerId)
        .filter(rule_due::Column::NextDueAt.lte(now))
        .filter(free())
        .order_by_asc(rule_due::Column::NextDueAt)
        .limit(limit)
        .into_tuple()
        .all(db)
        .await
        .step("reading the due customers")?;
    if due.is_empty() {
        return Ok(DueRound::default());
    }
    let token = lease::token();
    let claimed = rule_due::Entity::update_many()
        .col_expr(rule_due::Column::LeaseUntil, Expr::value(now + lease))
        .col_expr(rule_due::Column::LeaseToken, Expr::value(token.clone()))
        .filter(rule_due::Column::CustomerId.is_in(due.clone()))
        .filter(rule_due::Column::NextDueAt.lte(now))
        .filter(free())
        .exec(db)
        .await
        .step("claiming the due customers")?
        .rows_affected;
    let mut customers: Vec<(i64, TenantId)> = rule_due::Entity::find()
        .select_only()
        .column(rule_due::Column::CustomerId)
        .column(rule_due::Column::TenantId)
        .filter(rule_due::Column::CustomerId.is_in(due))
        .filter(rule_due::Column::LeaseToken.eq(token.clone()))
        .into_tuple()
        .all(db)
        .await
        .step("reading the claimed customers")?;
    customers.sort_unstable();
    customers.dedup();
    let mut round = DueRound {
        claimed,
        ..DueRound::default()
    };
    let mut by_tenant: BTreeMap<TenantId, Vec<i64>> = BTreeMap::new();
    for (customer, tenant) in customers {
        by_tenant.entry(tenant).or_default().push(customer);
    }
    for (tenant, customers) in by_tenant {
        let (evaluated, failed) =
            evaluate_side_by_side(db, tenant, &customers, now, "rules.due").await;
        round.customers += evaluated.len() as u64;
        round.changes += evaluated.iter().map(|(_, c)| c.len() as u64).sum::<u64>();
        // A customer failing holds up no other; its claim is given back, so the next
        // round tries it again.
        if !failed.is_empty() {
            rule_due::Entity::update_many()
                .col_expr(
                    rule_due::Column::LeaseUntil,
                    Expr::value(None::<DateTime<Utc>>),
                )
                .filter(rule_due::Column::CustomerId.is_in(failed))
                .filter(rule_due::Column::LeaseToken.eq(token.clone()))
                .exec(db)
                .await
                .ok();
        }
    }
    Ok(round)
}

/// Customers evaluated per transaction by the scheduler and the rule jobs.
pub const EVALUATE_BATCH: usize = 1_000;

/// Batches of a round evaluated at once, each in its own transaction.
const BATCHES_AT_ONCE: usize = 2;

/// Evaluates `customers` of `tenant` again in batches (at least [`BATCHES_AT_ONCE`], of up to
/// [`EVALUATE_BATCH`]), that many at once (one at a time on SQLite): the batches hold disjoint
/// customers, each runs in its own transaction, and one waits on the database while another
/// is decided. Returns each customer evaluated with its changes (in no particular order),
/// and those that failed.
pub(super) async fn evaluate_side_by_side(
    db: &DatabaseConnection,
    tenant: TenantId,
    customers: &[i64],
    now: DateTime<Utc>,
    what: &'static str,
) -> (Vec<(CustomerId, Vec<RuleChange>)>, Vec<i64>) {
    // SQLite writes one transaction at a time (over one connection): batches would only queue.
    let at_once = match db.get_database_backend() {
        sea_orm::DatabaseBackend::Sqlite => 1,
        _ => BATCHES_AT_ONCE,
    };
    let size = customers.len().div_ceil(at_once).clamp(1, EVALUATE_BATCH);
    let mut waiting = customers.chunks(size);
    let mut running = FuturesUnordered::new();
    let (mut evaluated, mut failed) = (Vec::new(), Vec::new());
    loop {
        while running.len() < at_once {
            let Some(batch) = waiting.next() else {
                break;
            };
            running.push(evaluate_batch(db, tenant, batch, now, what));
        }
        let Some((done, lost)) = running.next().await else {
            break;
        };
        evaluated.extend(done);
        failed.extend(lost);
    }
    (evaluated, failed)
}

/// Evaluates `customers` again in one transaction (retried on a deadlock or a lost
/// connection); should the batch fail, each customer in a transaction of its own, so that
/// one failing customer holds up no other. Returns each customer evaluated with its changes,
/// and the customers that failed.
async fn evaluate_batch(
    db: &DatabaseConnection,
    tenant: TenantId,
    customers: &[i64],
    now: DateTime<Utc>,
    what: &'static str,
) -> (Vec<(CustomerId, Vec<RuleChange>)>, Vec<i64>) {
    match retry::retrying(what, || evaluate_many(db, tenant, customers, now)).await {
        Ok(evaluated) => return (evaluated, Vec::new()),
        Err(err) if customers.len() == 1 => {
            tracing::warn!(customer = customers[0], error = %err, "could not evaluate a customer's rules");
            return (Vec::new(), customers.to_vec());
        }
        Err(err) => {
            tracing::warn!(customers = customers.len(), error = %err, "a batch of rule evaluations failed; evaluating its customers one by one");
        }
    }
    let (mut evaluated, mut failed) = (Vec::new(), Vec::new());
    for customer in customers.chunks(1) {
        match retry::retrying(what, || evaluate_many(db, tenant, customer, now)).await {
            Ok(done) => evaluated.extend(done),
            Err(err) => {
                tracing::warn!(customer = customer[0], error = %err, "could not evaluate a customer's rules");
                failed.extend_from_slice(customer);
            }
        }
    }
    (evaluated, failed)
}

/// Evaluates `customers` of `tenant` again, in one transaction under their row locks (taken
/// in id order, as every batch takes them); returns each live customer's tag changes.
/// Customers deleted meanwhile take their states with them.
pub(super) async fn evaluate_many(
    db: &DatabaseConnection,
    tenant: TenantId,
    customers: &[i64],
    now: DateTime<Utc>,
) -> DomainResult<Vec<(CustomerId, Vec<RuleChange>)>> {
    let txn = db.begin().await?;
    let locked = customer::Entity::find()
        .filter(customer::Column::TenantId.eq(tenant.0))
        .filter(customer::Column::Id.is_in(customers.iter().copied()))
        .order_by_asc(customer::Column::Id)
        .lock_exclusive()
        .all(&txn)
        .await
        .step("locking the customers for their rules")?;
    let (live, _deleted): (Vec<customer::Model>, Vec<customer::Model>) =
        locked.into_iter().partition(|c| c.deleted_at.is_none());
    let gone: Vec<i64> = customers
        .iter()
        .copied()
        .filter(|id| !live.iter().any(|c| c.id.0 == *id))
        .collect();
    if !gone.is_empty() {
        rule_state::Entity::delete_many()
            .filter(rule_state::Column::CustomerId.is_in(gone.clone()))
            .exec(&txn)
            .await
            .step("forgetting deleted customers' rule states")?;
        rule_due::Entity::delete_many()
            .filter(rule_due::Column::CustomerId.is_in(gone))
            .exec(&txn)
            .await
            .step("taking deleted customers off the due-time queue")?;
    }
    // States of rules no longer enabled (their clean-up after a disable or delete did not
    // run) go with the evaluation, so none stays due for ever.
    let reactions = react_many(&txn, tenant, live, now, false).await?;
    let touched: Vec<i64> = reactions
        .iter()
        .filter(|(_, r)| !r.changes.is_empty() || r.owner.is_some())
        .map(|(id, _)| id.0)
        .collect();
    if !touched.is_empty() {
        data_version::bump_for(&txn, tenant, &touched).await?;
    }
    txn.commit().await?;
    Ok(reactions
        .into_iter()
        .map(|(id, r)| (id, r.changes))
        .collect())
}
