//! The rules engine: runs the tenant's enabled rules on one customer inside the transaction
//! of the change that may affect them (a capture, a customer's create or update, an order, a
//! follow-up, an event, a person's tag change), so the response and every read after it
//! already show the result.
//!
//! Semantics (see docs/ARCHITECTURE.md, "Rules"):
//! - a rule's tags are level-triggered: on the customer exactly while its condition holds;
//! - a person's decision wins: a tag a person gave (manual, api, import) is never removed
//!   by a rule, and a person's tag in an exclusive group is never replaced; a tag a person
//!   took off is vetoed and not put back while some rule keeps wanting it (the veto lifts
//!   once no rule wants it, so the tag may come back on a new transition);
//! - tasks are edge-triggered: once per transition of a rule from false to true;
//! - rules run in dependency order, higher priority first among those free to run, and in an
//!   exclusive group the highest-priority rule's tag wins; one pass settles the customer;
//! - the verdicts depend only on the facts, the rules and the clock, not on the order facts
//!   arrived in.

use crate::kernel::clock;
use chrono::Duration;
use chrono_tz::Tz;
use sea_orm::sea_query::OnConflict;

use super::*;
use crate::kernel::ids::RuleId;
use crate::kernel::values::{FieldType, OwnerPolicy, Role, TaskKind};
use crate::rules::facts::{Datum, EventFact, FollowUpFact, OrderFact};
use crate::rules::{
    self, Assignee, Clock, Condition, CustomerFacts, Evaluation, Rule, RuleAction, TagInfo,
    TagView, eval,
};
use crate::store::entities::{
    activity_event, follow_up, order, rule, rule_due, rule_state, tag_veto, tenant,
};
use crate::support::audit::{self, AuditEntry};
use crate::support::outbox::{self, EventKind};
use crate::tasks::{self, NewTask};
use tagging::links::{self, Attribution, Links, RuleStamp};

mod apply;
mod check;
mod due;
pub mod jobs;
mod load;
pub mod preview;
mod resolve;
mod ruleset;

pub use due::{DueRound, run_due};

pub use check::RuleCheck;
pub(crate) use load::load_facts;
use load::load_facts_many;
use resolve::{Link, Present, Resolution, Verdict, Want, earliest, evaluate_all, resolve, tier_of};
use ruleset::RuleSet;

/// The timezone of a tenant whose stored zone this build does not know.
const FALLBACK_ZONE: Tz = chrono_tz::Asia::Shanghai;

/// A tag the rules put on or took off a customer, and why.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RuleChange {
    pub tag_id: TagId,
    pub added: bool,
    pub rule_id: RuleId,
    pub rule_name: String,
    pub rule_version: i32,
    pub reason: String,
}

/// What the rules did to one customer.
#[derive(Debug, Clone, Default)]
pub(crate) struct Reaction {
    /// The tags they put on or took off.
    pub(crate) changes: Vec<RuleChange>,
    /// The owner a rule gave or took (`Some(None)`: back to the pool), if one did.
    pub(crate) owner: Option<Option<StaffId>>,
}

/// Reads a stored rule.
pub(crate) fn read_rule(model: rule::Model) -> DomainResult<Rule> {
    let unreadable = |what: &str, e: serde_json::Error| {
        DomainError::from(sea_orm::DbErr::Json(format!(
            "unreadable {what} of rule {}: {e}",
            model.id
        )))
    };
    let condition: Option<Condition> =
        serde_json::from_str(&model.condition).map_err(|e| unreadable("condition", e))?;
    let actions: Vec<RuleAction> =
        serde_json::from_str(&model.actions).map_err(|e| unreadable("actions", e))?;
    Ok(Rule {
        id: model.id,
        name: model.name,
        priority: model.priority,
        enabled: model.enabled,
        version: model.version,
        condition,
        actions,
        created_at: model.created_at,
        updated_at: model.updated_at,
    })
}

/// The tenant's rules (only the enabled ones when `enabled_only`), highest priority first.
pub(crate) async fn load_rules<C: ConnectionTrait>(
    conn: &C,
    tenant: TenantId,
    enabled_only: bool,
) -> DomainResult<Vec<Rule>> {
    let mut query = rule::Entity::find().filter(rule::Column::TenantId.eq(tenant.0));
    if enabled_only {
        query = query.filter(rule::Column::Enabled.eq(true));
    }
    query
        .order_by_desc(rule::Column::Priority)
        .order_by_asc(rule::Column::Id)
        .all(conn)
        .await
        .step("reading the rules")?
        .into_iter()
        .map(read_rule)
        .collect()
}

/// What rules know of tags: group and exclusivity, for `ids` (or every tag of the tenant).
pub(crate) async fn tag_infos<C: ConnectionTrait>(
    conn: &C,
    tenant: TenantId,
) -> DomainResult<HashMap<TagId, TagInfo>> {
    let query = tag::Entity::find()
        .select_only()
        .column(tag::Column::Id)
        .column(tag::Column::GroupId)
        .column(tag::Column::Status)
        .column(tag_group::Column::Exclusive)
        .join(
            JoinType::InnerJoin,
            tag::Entity::belongs_to(tag_group::Entity)
                .from(tag::Column::GroupId)
                .to(tag_group::Column::Id)
                .into(),
        )
        .filter(tag::Column::TenantId.eq(tenant.0));
    let rows: Vec<(TagId, TagGroupId, crate::kernel::values::TagStatus, bool)> = query
        .into_tuple()
        .all(conn)
        .await
        .step("reading the rules' tags")?;
    Ok(rows
        .into_iter()
        .map(|(id, group, status, exclusive)| {
            (
                id,
                TagInfo {
                    group,
                    exclusive,
                    active: status == crate::kernel::values::TagStatus::Active,
                },
            )
        })
        .collect())
}

/// Whether the tenant has an enabled rule (as of the configuration `conn` sees): only then
/// does a person's removal of a tag need remembering, or a batch need evaluating.
pub(crate) async fn has_rules(txn: &DatabaseTransaction, tenant: TenantId) -> DomainResult<bool> {
    Ok(!ruleset::rule_set(txn, tenant).await?.rules.is_empty())
}

/// The timezone the tenant's local days are counted in.
pub(crate) async fn timezone<C: ConnectionTrait>(conn: &C, tenant: TenantId) -> DomainResult<Tz> {
    let zone: Option<String> = tenant::Entity::find_by_id(tenant)
        .select_only()
        .column(tenant::Column::Timezone)
        .into_tuple()
        .one(conn)
        .await
        .step("reading the tenant's timezone")?;
    Ok(zone
        .and_then(|z| z.parse::<Tz>().ok())
        .unwrap_or(FALLBACK_ZONE))
}

/// Why a rule holds, in one sentence and as the JSON kept on its links.
pub(super) fn explain(
    rule: &Rule,
    evaluation: &Evaluation,
    extra: Option<String>,
) -> (String, String) {
    let mut parts: Vec<String> = evaluation
        .reasons()
        .iter()
        .map(|n| n.text.clone())
        .collect();
    if parts.is_empty() {
        parts.push("applies to every customer".to_owned());
    }
    if let Some(extra) = extra {
        parts.push(extra);
    }
    let reason = format!(
        "rule \"{}\" (v{}): {}",
        rule.name,
        rule.version,
        parts.join("; ")
    );
    let evidence = serde_json::json!({
        "rule_id": rule.id,
        "rule_version": rule.version,
        "holds": evaluation.reasons().iter().map(|n| serde_json::json!({
            "path": n.path, "value": n.value, "text": n.text,
        })).collect::<Vec<_>>(),
        "extra": parts.last(),
    })
    .to_string();
    (reason, evidence)
}

/// Runs the tenant's enabled rules on `customer` (whose row the caller has locked) and
/// applies the verdicts: the rules' tags, the vetoes no rule needs any more, each rule's state,
/// and the edge-triggered actions of the rules that just became true.
pub(crate) async fn react(
    txn: &DatabaseTransaction,
    tenant: TenantId,
    customer: CustomerId,
    now: DateTime<Utc>,
) -> DomainResult<Reaction> {
    react_to(txn, tenant, customer, now, false).await
}

/// [`react`] for a customer created in this transaction: it has no fact, veto or rule state
/// yet, which saves reading them.
pub(crate) async fn react_new(
    txn: &DatabaseTransaction,
    tenant: TenantId,
    customer: CustomerId,
    now: DateTime<Utc>,
) -> DomainResult<Reaction> {
    react_to(txn, tenant, customer, now, true).await
}

/// [`react`] with the customer's row as the caller just wrote it, which saves reading it.
pub(crate) async fn react_row(
    txn: &DatabaseTransaction,
    row: &customer::Model,
    now: DateTime<Utc>,
) -> DomainResult<Reaction> {
    let mut reactions = react_many(txn, row.tenant_id, vec![row.clone()], now, false).await?;
    Ok(reactions.pop().map(|(_, r)| r).unwrap_or_default())
}

async fn react_to(
    txn: &DatabaseTransaction,
    tenant: TenantId,
    customer: CustomerId,
    now: DateTime<Utc>,
    fresh: bool,
) -> DomainResult<Reaction> {
    // A tenant without rules, and a customer without a rule's tag, need not be read.
    let set = ruleset::rule_set(txn, tenant).await?;
    let links = current_links(txn, &[customer.0]).await?;
    if nothing_to_do(&set, &links) {
        return Ok(Reaction::default());
    }
    let found = customer::Entity::find_by_id(customer)
        .filter(customer::Column::TenantId.eq(tenant.0))
        .filter(customer::Column::DeletedAt.is_null())
        .one(txn)
        .await
        .step("reading the customer for the rules")?;
    let Some(row) = found else {
        return Ok(Reaction::default());
    };
    let mut reactions = react_with(txn, tenant, &set, vec![row], links, now, fresh).await?;
    Ok(reactions.pop().map(|(_, r)| r).unwrap_or_default())
}

fn nothing_to_do(set: &RuleSet, links: &HashMap<i64, Vec<Link>>) -> bool {
    set.rules.is_empty()
        && !links
            .values()
            .flatten()
            .any(|l| l.source == TagSource::Rule)
}

/// [`react_many`] for the live ones of `customers` (whose rows the caller has locked).
pub(crate) async fn react_ids(
    txn: &DatabaseTransaction,
    tenant: TenantId,
    customers: &[i64],
    now: DateTime<Utc>,
) -> DomainResult<Vec<(CustomerId, Reaction)>> {
    let mut reactions = Vec::with_capacity(customers.len());
    for chunk in customers.chunks(IDS_PER_STATEMENT) {
        let rows = customer::Entity::find()
            .filter(customer::Column::TenantId.eq(tenant.0))
            .filter(customer::Column::Id.is_in(chunk.iter().copied()))
            .filter(customer::Column::DeletedAt.is_null())
            .order_by_asc(customer::Column::Id)
            .all(txn)
            .await
            .step("reading the customers for the rules")?;
        reactions.extend(react_many(txn, tenant, rows, now, false).await?);
    }
    Ok(reactions)
}

/// One customer as the rules see it, read with the others of its batch.
struct Subject {
    row: customer::Model,
    current: Vec<Link>,
    vetoes: HashSet<TagId>,
    states: HashMap<RuleId, rule_state::Model>,
    /// Its place in the due-time queue.
    due: Option<DateTime<Utc>>,
    facts: CustomerFacts,
}

/// Runs the tenant's enabled rules on each of `rows` (live customers of `tenant` whose rows
/// the caller has locked, in id order) and applies the verdicts. The customers are read in one
/// query per table (per thousand customers) and written in a few multi-row statements,
/// whatever their number: one customer and a backfill's batch take the same path. Returns
/// each customer's reaction, in the order of `rows`.
///
/// `fresh`: the customers were created in this transaction and have no fact, veto or rule
/// state yet, which saves reading them.
#[tracing::instrument(skip_all, fields(tenant = %tenant, customers = rows.len()))]
pub(crate) async fn react_many(
    txn: &DatabaseTransaction,
    tenant: TenantId,
    rows: Vec<customer::Model>,
    now: DateTime<Utc>,
    fresh: bool,
) -> DomainResult<Vec<(CustomerId, Reaction)>> {
    if rows.is_empty() {
        return Ok(Vec::new());
    }
    let set = ruleset::rule_set(txn, tenant).await?;
    let ids: Vec<i64> = rows.iter().map(|r| r.id.0).collect();
    let links = current_links(txn, &ids).await?;
    react_with(txn, tenant, &set, rows, links, now, fresh).await
}

/// [`react_many`] with the rule set and the customers' links read.
async fn react_with(
    txn: &DatabaseTransaction,
    tenant: TenantId,
    set: &RuleSet,
    rows: Vec<customer::Model>,
    mut links: HashMap<i64, Vec<Link>>,
    now: DateTime<Utc>,
    fresh: bool,
) -> DomainResult<Vec<(CustomerId, Reaction)>> {
    let ids: Vec<i64> = rows.iter().map(|r| r.id.0).collect();
    if nothing_to_do(set, &links) {
        // Without rules nothing holds and nothing is due: states and queue rows left from
        // rules since disabled or deleted go, or the scheduler would claim them for ever.
        if !fresh {
            for chunk in ids.chunks(IDS_PER_STATEMENT) {
                rule_state::Entity::delete_many()
                    .filter(rule_state::Column::CustomerId.is_in(chunk.iter().copied()))
                    .exec(txn)
                    .await
                    .step("forgetting the states of rules gone")?;
                rule_due::Entity::delete_many()
                    .filter(rule_due::Column::CustomerId.is_in(chunk.iter().copied()))
                    .exec(txn)
                    .await
                    .step("taking customers off the due-time queue")?;
            }
        }
        return Ok(rows.iter().map(|r| (r.id, Reaction::default())).collect());
    }
    let (mut vetoes, mut states, mut due) = if fresh {
        (HashMap::new(), HashMap::new(), HashMap::new())
    } else {
        (
            read_vetoes(txn, &ids).await?,
            read_states(txn, &ids).await?,
            read_due(txn, &ids).await?,
        )
    };
    // States of rules no longer enabled (a disable's clean-up that did not run) go, so that
    // none stays due for ever.
    let enabled: Vec<i64> = set.rules.iter().map(|r| r.id.0).collect();
    let orphaned = states
        .values()
        .flat_map(|s| s.keys())
        .any(|id| !enabled.contains(&id.0));
    if orphaned {
        for chunk in ids.chunks(IDS_PER_STATEMENT) {
            rule_state::Entity::delete_many()
                .filter(rule_state::Column::CustomerId.is_in(chunk.iter().copied()))
                .filter(rule_state::Column::RuleId.is_not_in(enabled.iter().copied()))
                .exec(txn)
                .await
                .step("forgetting the states of rules gone")?;
        }
        for held in states.values_mut() {
            held.retain(|id, _| enabled.contains(&id.0));
        }
    }
    let facts = load_facts_many(txn, &rows, &set.defs, &set.measured, fresh).await?;
    let subjects = rows.into_iter().zip(facts).map(|(row, facts)| Subject {
        current: links.remove(&row.id.0).unwrap_or_default(),
        vetoes: vetoes.remove(&row.id.0).unwrap_or_default(),
        states: states.remove(&row.id.0).unwrap_or_default(),
        due: due.remove(&row.id.0),
        row,
        facts,
    });
    let mut writes = apply::Writes::default();
    let mut staffing = apply::Staffing::default();
    let mut reactions = Vec::with_capacity(ids.len());
    for subject in subjects {
        let id = subject.row.id;
        let reaction = decide(txn, set, subject, now, &mut writes, &mut staffing).await?;
        reactions.push((id, reaction));
    }
    writes.flush(txn, tenant, now).await?;
    Ok(reactions)
}

/// Decides what the rules do to one customer and gathers the writes into `writes`; only an
/// owner a rule gives or takes is written at once (the rules run again on it).
async fn decide(
    txn: &DatabaseTransaction,
    set: &RuleSet,
    subject: Subject,
    now: DateTime<Utc>,
    writes: &mut apply::Writes,
    staffing: &mut apply::Staffing,
) -> DomainResult<Reaction> {
    let Subject {
        row,
        current,
        vetoes,
        states,
        due,
        mut facts,
    } = subject;
    let base: Vec<Link> = current
        .iter()
        .copied()
        .filter(|l| l.source != TagSource::Rule)
        .collect();
    let clock = set.clock(now);
    let carried: HashSet<TagId> = current.iter().map(|l| l.tag).collect();
    // The rules that turned true, in the order they ran. An owner they give or take changes
    // what the rules see, so the rules run again on the new owner before anything else is
    // written; each rule fires once, so this ends after at most one pass per rule.
    let mut row = row;
    let mut fired: Vec<usize> = Vec::new();
    let mut owner = None;
    let (wants, verdicts) = loop {
        let (wants, verdicts) = evaluate_all(set, &facts, &base, &vetoes, &clock, &carried);
        let turned: Vec<usize> = verdicts
            .iter()
            .filter(|v| v.holds && !fired.contains(&v.rule))
            .filter(|v| states.get(&set.rules[v.rule].id).is_none_or(|s| !s.holds))
            .map(|v| v.rule)
            .collect();
        fired.extend(&turned);
        match apply::owners(txn, &row, set, &turned, now).await? {
            Some(assigned) => {
                owner = Some(assigned.owner_id);
                load::owner_changed(&mut facts, &assigned);
                row = assigned;
            }
            None => break (wants, verdicts),
        }
    };
    let resolution = resolve(&base, &wants, &vetoes, &set.info);
    // Why each tag to put on is there: its rule evaluated again with the explanation (rules
    // reading tags see the settled tags, as when they ran, since they run after every rule
    // that sets what they read).
    let explained: HashMap<TagId, (String, String)> = resolution
        .tags
        .iter()
        .filter_map(|(tag, want)| want.map(|w| (*tag, w)))
        .filter(|(tag, want)| apply::needs_stamp(&current, *tag, &set.rules[want.rule]))
        .map(|(tag, want)| {
            let rule = &set.rules[want.rule];
            let evaluation = eval::evaluate(rule.condition.as_ref(), &facts, &resolution, &clock);
            (tag, explain(rule, &evaluation, want.extra.clone()))
        })
        .collect();
    let changes = apply::links(&row, set, &current, &resolution, explained, writes);
    // Vetoes no rule needs any more: the tag may come back on a new transition.
    writes.lifted.extend(
        vetoes
            .iter()
            .filter(|t| !wants.iter().any(|w| w.tag == **t))
            .map(|t| (row.id.0, t.0)),
    );
    apply::states(&row, set, &verdicts, &states, due, now, writes);
    // A rule that held only until an owner arrived (待分配's "no owner") raises nothing; a
    // rule whose own assignment made it false has done what it is for, and its tasks and
    // messages go to the new owner.
    let fired: Vec<usize> = fired
        .into_iter()
        .filter(|&i| {
            verdicts.iter().any(|v| v.rule == i && v.holds)
                || set.rules[i]
                    .actions
                    .iter()
                    .any(|a| matches!(a, RuleAction::AssignOwner { .. }))
        })
        .collect();
    apply::edges(txn, &row, set, &fired, now, staffing, writes).await?;
    Ok(Reaction { changes, owner })
}

/// Customers (or pairs) one statement names.
const IDS_PER_STATEMENT: usize = 1_000;

// The engine's reads are plain reads: every caller locks the customers' rows before its
// first plain read in the transaction (so that on MySQL the transaction's snapshot is taken
// after the lock and shows what the previous holder committed), and every writer of these
// rows holds that lock. Locking reads here would take gap locks on a new customer's empty
// ranges and make concurrent captures deadlock on their inserts.
async fn current_links(
    txn: &DatabaseTransaction,
    customers: &[i64],
) -> DomainResult<HashMap<i64, Vec<Link>>> {
    let mut out: HashMap<i64, Vec<Link>> = HashMap::new();
    for chunk in customers.chunks(IDS_PER_STATEMENT) {
        let rows = customer_tag::Entity::find()
            .select_only()
            .column(customer_tag::Column::CustomerId)
            .column(customer_tag::Column::TagId)
            .column(customer_tag::Column::Source)
            .column(customer_tag::Column::RuleId)
            .column(customer_tag::Column::RuleVersion)
            .filter(customer_tag::Column::CustomerId.is_in(chunk.iter().copied()))
            .into_tuple::<(i64, TagId, TagSource, Option<RuleId>, Option<i32>)>()
            .all(txn)
            .await
            .step("reading the customers' tags for the rules")?;
        for (customer, tag, source, rule, rule_version) in rows {
            out.entry(customer).or_default().push(Link {
                tag,
                source,
                rule,
                rule_version,
            });
        }
    }
    Ok(out)
}

async fn read_vetoes(
    txn: &DatabaseTransaction,
    customers: &[i64],
) -> DomainResult<HashMap<i64, HashSet<TagId>>> {
    let mut out: HashMap<i64, HashSet<TagId>> = HashMap::new();
    for chunk in customers.chunks(IDS_PER_STATEMENT) {
        let rows = tag_veto::Entity::find()
            .select_only()
            .column(tag_veto::Column::CustomerId)
            .column(tag_veto::Column::TagId)
            .filter(tag_veto::Column::CustomerId.is_in(chunk.iter().copied()))
            .into_tuple::<(i64, TagId)>()
            .all(txn)
            .await
            .step("reading the customers' vetoed tags")?;
        for (customer, tag) in rows {
            out.entry(customer).or_default().insert(tag);
        }
    }
    Ok(out)
}

async fn read_states(
    txn: &DatabaseTransaction,
    customers: &[i64],
) -> DomainResult<HashMap<i64, HashMap<RuleId, rule_state::Model>>> {
    let mut out: HashMap<i64, HashMap<RuleId, rule_state::Model>> = HashMap::new();
    for chunk in customers.chunks(IDS_PER_STATEMENT) {
        let rows = rule_state::Entity::find()
            .filter(rule_state::Column::CustomerId.is_in(chunk.iter().copied()))
            .all(txn)
            .await
            .step("reading the customers' rule states")?;
        for state in rows {
            out.entry(state.customer_id.0)
                .or_default()
                .insert(state.rule_id, state);
        }
    }
    Ok(out)
}

async fn read_due(
    txn: &DatabaseTransaction,
    customers: &[i64],
) -> DomainResult<HashMap<i64, DateTime<Utc>>> {
    let mut out = HashMap::new();
    for chunk in customers.chunks(IDS_PER_STATEMENT) {
        let rows = rule_due::Entity::find()
            .select_only()
            .column(rule_due::Column::CustomerId)
            .column(rule_due::Column::NextDueAt)
            .filter(rule_due::Column::CustomerId.is_in(chunk.iter().copied()))
            .into_tuple::<(i64, DateTime<Utc>)>()
            .all(txn)
            .await
            .step("reading the customers' due times")?;
        out.extend(rows);
    }
    Ok(out)
}

/// Turns the links rule `rule` holds into a person's (`staff`'s) manual tags, for a rule
/// disabled or deleted with `keep_tags`; returns how many customers keep each tag.
pub(crate) async fn keep_rule_tags(
    txn: &DatabaseTransaction,
    tenant: TenantId,
    rule: RuleId,
    staff: StaffId,
    note: &str,
    now: DateTime<Utc>,
) -> DomainResult<Vec<(TagId, u64)>> {
    let by = Attribution {
        source: TagSource::Manual,
        reason: None,
        note: Some(note),
        actor: Some(staff),
        rule: None,
    };
    Ok(links::adopt_rule(txn, tenant, rule, by, now)
        .await?
        .into_iter()
        .map(|(tag, n)| (TagId(tag), n))
        .collect())
}
