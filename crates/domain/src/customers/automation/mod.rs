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
    activity_event, follow_up, order, rule, rule_state, tag_veto, tenant,
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
    react_on(txn, row.tenant_id, row.id, Some(row), now, false).await
}

async fn react_to(
    txn: &DatabaseTransaction,
    tenant: TenantId,
    customer: CustomerId,
    now: DateTime<Utc>,
    fresh: bool,
) -> DomainResult<Reaction> {
    react_on(txn, tenant, customer, None, now, fresh).await
}

#[tracing::instrument(skip_all, fields(tenant = %tenant, customer = %customer))]
async fn react_on(
    txn: &DatabaseTransaction,
    tenant: TenantId,
    customer: CustomerId,
    written: Option<&customer::Model>,
    now: DateTime<Utc>,
    fresh: bool,
) -> DomainResult<Reaction> {
    let set = ruleset::rule_set(txn, tenant).await?;
    let current = current_links(txn, customer).await?;
    if set.rules.is_empty() && !current.iter().any(|l| l.source == TagSource::Rule) {
        return Ok(Reaction::default());
    }
    let row = match written {
        Some(row) => row.clone(),
        None => {
            let found = customer::Entity::find_by_id(customer)
                .filter(customer::Column::TenantId.eq(tenant.0))
                .filter(customer::Column::DeletedAt.is_null())
                .one(txn)
                .await
                .step("reading the customer for the rules")?;
            match found {
                Some(row) => row,
                None => return Ok(Reaction::default()),
            }
        }
    };
    let (vetoes, states) = if fresh {
        (HashSet::new(), HashMap::new())
    } else {
        (
            read_vetoes(txn, customer).await?,
            read_states(txn, customer).await?,
        )
    };
    // States of rules no longer enabled (a disable's clean-up that did not run) go, so that
    // none stays due for ever.
    let orphans: Vec<i64> = states
        .keys()
        .filter(|id| !set.rules.iter().any(|r| r.id == **id))
        .map(|id| id.0)
        .collect();
    if !orphans.is_empty() {
        rule_state::Entity::delete_many()
            .filter(rule_state::Column::CustomerId.eq(customer.0))
            .filter(rule_state::Column::RuleId.is_in(orphans))
            .exec(txn)
            .await
            .step("forgetting the states of rules gone")?;
    }
    let mut facts = load_facts(txn, &row, &set.defs, &set.measured, fresh).await?;
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
        let (wants, verdicts) = evaluate_all(&set, &facts, &base, &vetoes, &clock, &carried);
        let turned: Vec<usize> = verdicts
            .iter()
            .filter(|v| v.holds && !fired.contains(&v.rule))
            .filter(|v| states.get(&set.rules[v.rule].id).is_none_or(|s| !s.holds))
            .map(|v| v.rule)
            .collect();
        fired.extend(&turned);
        match apply::owners(txn, &row, &set, &turned, now).await? {
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
    let changes = apply::links(txn, &row, &set, &current, &resolution, &explained, now).await?;
    // Vetoes no rule needs any more: the tag may come back on a new transition.
    let lifted: Vec<i64> = vetoes
        .iter()
        .filter(|t| !wants.iter().any(|w| w.tag == **t))
        .map(|t| t.0)
        .collect();
    links::lift_vetoes(
        txn,
        Links::OfCustomer {
            customer: customer.0,
            tags: &lifted,
        },
    )
    .await?;
    apply::states(txn, tenant, &row, &set, &verdicts, &states, now).await?;
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
    apply::edges(txn, &row, &set, &fired, now).await?;
    Ok(Reaction { changes, owner })
}

// The engine's reads are plain reads: every caller locks the customer's row before its
// first plain read in the transaction (so that on MySQL the transaction's snapshot is taken
// after the lock and shows what the previous holder committed), and every writer of these
// rows holds that lock. Locking reads here would take gap locks on a new customer's empty
// ranges and make concurrent captures deadlock on their inserts.
async fn current_links(txn: &DatabaseTransaction, customer: CustomerId) -> DomainResult<Vec<Link>> {
    Ok(customer_tag::Entity::find()
        .select_only()
        .column(customer_tag::Column::TagId)
        .column(customer_tag::Column::Source)
        .column(customer_tag::Column::RuleId)
        .column(customer_tag::Column::RuleVersion)
        .filter(customer_tag::Column::CustomerId.eq(customer.0))
        .into_tuple::<(TagId, TagSource, Option<RuleId>, Option<i32>)>()
        .all(txn)
        .await
        .step("reading the customer's tags for the rules")?
        .into_iter()
        .map(|(tag, source, rule, rule_version)| Link {
            tag,
            source,
            rule,
            rule_version,
        })
        .collect())
}

async fn read_vetoes(
    txn: &DatabaseTransaction,
    customer: CustomerId,
) -> DomainResult<HashSet<TagId>> {
    Ok(tag_veto::Entity::find()
        .select_only()
        .column(tag_veto::Column::TagId)
        .filter(tag_veto::Column::CustomerId.eq(customer.0))
        .into_tuple::<TagId>()
        .all(txn)
        .await
        .step("reading the customer's vetoed tags")?
        .into_iter()
        .collect())
}

async fn read_states(
    txn: &DatabaseTransaction,
    customer: CustomerId,
) -> DomainResult<HashMap<RuleId, rule_state::Model>> {
    Ok(rule_state::Entity::find()
        .filter(rule_state::Column::CustomerId.eq(customer.0))
        .all(txn)
        .await
        .step("reading the customer's rule states")?
        .into_iter()
        .map(|s| (s.rule_id, s))
        .collect())
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
