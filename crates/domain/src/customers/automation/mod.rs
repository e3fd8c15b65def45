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
mod due;
pub mod jobs;
mod load;
pub mod preview;
mod ruleset;

pub use due::{DueRound, run_due};

pub(crate) use load::load_facts;
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

/// A link the customer has now.
#[derive(Debug, Clone, Copy)]
struct Link {
    tag: TagId,
    source: TagSource,
    rule: Option<RuleId>,
    rule_version: Option<i32>,
}

/// One rule's wish for a tag, with why.
#[derive(Debug, Clone)]
struct Want {
    tag: TagId,
    rule: usize,
    priority: i32,
    rule_id: RuleId,
    /// What a tier adds to the explanation.
    extra: Option<String>,
}

/// The tags the customer ends up with: the links no rule owns (a person's, a channel's), and
/// the rules' wishes, resolved by the exclusive groups and the vetoes.
struct Resolution<'a> {
    /// Each tag, with the wish that puts it there (`None`: a link no rule owns).
    tags: HashMap<TagId, Option<&'a Want>>,
    groups: HashSet<TagGroupId>,
}

fn resolve<'a>(
    base: &[Link],
    wants: &'a [Want],
    vetoes: &HashSet<TagId>,
    info: &HashMap<TagId, TagInfo>,
) -> Resolution<'a> {
    let group_of = |t: &TagId| info.get(t).map(|i| (i.group, i.exclusive));
    let mut tags: HashMap<TagId, Option<&Want>> = base.iter().map(|l| (l.tag, None)).collect();
    // Exclusive groups a person chose a tag in: no rule changes them.
    let chosen: HashSet<TagGroupId> = base
        .iter()
        .filter(|l| !l.source.is_automatic())
        .filter_map(|l| group_of(&l.tag).filter(|(_, e)| *e).map(|(g, _)| g))
        .collect();
    let mut winners: HashMap<TagGroupId, &Want> = HashMap::new();
    for want in wants {
        // A vetoed tag stays off.
        if vetoes.contains(&want.tag) {
            continue;
        }
        let Some((group, exclusive)) = group_of(&want.tag) else {
            continue;
        };
        if exclusive {
            if chosen.contains(&group) {
                continue;
            }
            let better = |w: &Want| {
                (want.priority, std::cmp::Reverse(want.rule_id))
                    > (w.priority, std::cmp::Reverse(w.rule_id))
            };
            match winners.get(&group) {
                Some(current) if !better(current) => {}
                _ => {
                    winners.insert(group, want);
                }
            }
        } else {
            let entry = tags.entry(want.tag).or_insert(Some(want));
            if let Some(current) = entry
                && (want.priority, std::cmp::Reverse(want.rule_id))
                    > (current.priority, std::cmp::Reverse(current.rule_id))
            {
                *entry = Some(want);
            }
        }
    }
    for (group, want) in winners {
        // The winner takes the place of the group's automatic links.
        tags.retain(|t, _| group_of(t).is_none_or(|(g, _)| g != group) || *t == want.tag);
        let entry = tags.entry(want.tag).or_insert(Some(want));
        if entry.is_some() {
            *entry = Some(want);
        }
    }
    let groups = tags
        .keys()
        .filter_map(|t| group_of(t).map(|(g, _)| g))
        .collect();
    Resolution { tags, groups }
}

impl TagView for Resolution<'_> {
    fn has(&self, tag: TagId) -> bool {
        self.tags.contains_key(&tag)
    }
    fn has_in(&self, group: TagGroupId) -> bool {
        self.groups.contains(&group)
    }
}

/// The customer's current tags as a condition sees them.
struct Present {
    tags: HashSet<TagId>,
    groups: HashSet<TagGroupId>,
}

impl Present {
    /// No tag: for a condition that reads none.
    fn none() -> Present {
        Present {
            tags: HashSet::new(),
            groups: HashSet::new(),
        }
    }
}

impl TagView for Present {
    fn has(&self, tag: TagId) -> bool {
        self.tags.contains(&tag)
    }
    fn has_in(&self, group: TagGroupId) -> bool {
        self.groups.contains(&group)
    }
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

/// The tier a score reaches: the tier with the highest `min` not above it.
fn tier_of(score: f64, tiers: &[rules::Tier]) -> Option<&rules::Tier> {
    tiers
        .iter()
        .filter(|t| t.min <= score)
        .max_by(|a, b| a.min.total_cmp(&b.min))
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

/// One rule's verdict on the customer: whether it holds, and when that can next change.
pub(crate) struct Verdict {
    pub(crate) rule: usize,
    pub(crate) holds: bool,
    pub(crate) next: Option<DateTime<Utc>>,
}

/// Evaluates every rule in order, each seeing the tags the rules before it settled, and
/// returns their wishes for tags and their verdicts.
///
/// An archived tag is not given any more, but a customer carrying it keeps it while its rule
/// holds.
fn evaluate_all(
    set: &RuleSet,
    facts: &CustomerFacts,
    base: &[Link],
    vetoes: &HashSet<TagId>,
    clock: &Clock,
    carried: &HashSet<TagId>,
) -> (Vec<Want>, Vec<Verdict>) {
    let mut wants: Vec<Want> = Vec::new();
    let mut verdicts = Vec::with_capacity(set.rules.len());
    for (i, rule) in set.rules.iter().enumerate() {
        // Only a rule that reads tags needs the tags settled so far.
        let reads_tags = rule.condition.as_ref().is_some_and(|c| {
            let (tags, groups) = c.reads();
            !tags.is_empty() || !groups.is_empty()
        });
        let evaluation = if reads_tags {
            let view = resolve(base, &wants, vetoes, &set.info);
            eval::decide(rule.condition.as_ref(), facts, &view, clock)
        } else {
            eval::decide(rule.condition.as_ref(), facts, &Present::none(), clock)
        };
        let mut next = evaluation.next_change;
        for action in &rule.actions {
            let (tag, extra) = match action {
                RuleAction::AddTag { tag_id } => (Some(*tag_id), None),
                RuleAction::SetTier { score, tiers } => {
                    let (value, due) = eval::measure(score, facts, clock);
                    next = earliest(next, due);
                    let value = value.unwrap_or(0.0);
                    let tier = tier_of(value, tiers);
                    let text = tier.map(|t| format!("score {value:.2} ≥ tier minimum {}", t.min));
                    (tier.map(|t| t.tag_id), text)
                }
                RuleAction::CreateTask { .. }
                | RuleAction::AssignOwner { .. }
                | RuleAction::NotifyOwner { .. }
                | RuleAction::NotifyCustomer { .. } => (None, None),
            };
            let assignable =
                |tag: &TagId| set.info.get(tag).is_some_and(|i| i.active) || carried.contains(tag);
            if let (true, Some(tag)) = (evaluation.holds, tag.filter(assignable)) {
                // Explained only if the tag is put on (`apply::links`).
                wants.push(Want {
                    tag,
                    rule: i,
                    priority: rule.priority,
                    rule_id: rule.id,
                    extra,
                });
            }
        }
        verdicts.push(Verdict {
            rule: i,
            holds: evaluation.holds,
            next,
        });
    }
    (wants, verdicts)
}

fn earliest(a: Option<DateTime<Utc>>, b: Option<DateTime<Utc>>) -> Option<DateTime<Utc>> {
    match (a, b) {
        (Some(a), Some(b)) => Some(std::cmp::min(a, b)),
        (a, b) => a.or(b),
    }
}

/// Who a rule's task goes to.
async fn assignees(
    txn: &DatabaseTransaction,
    tenant: TenantId,
    assignee: Assignee,
    owner: Option<StaffId>,
) -> DomainResult<Vec<StaffId>> {
    let active = |role: Option<Role>, id: Option<StaffId>| {
        let mut query = staff::Entity::find()
            .select_only()
            .column(staff::Column::Id)
            .filter(staff::Column::TenantId.eq(tenant.0))
            .filter(staff::Column::Active.eq(true));
        if let Some(role) = role {
            query = query.filter(staff::Column::Role.eq(role));
        }
        if let Some(id) = id {
            query = query.filter(staff::Column::Id.eq(id.0));
        }
        query
            .order_by_asc(staff::Column::Id)
            .into_tuple::<StaffId>()
    };
    Ok(match assignee {
        Assignee::Owner => owner.into_iter().collect(),
        Assignee::Managers => {
            let managers = active(Some(Role::Manager), None).all(txn).await?;
            if managers.is_empty() {
                active(Some(Role::Admin), None).all(txn).await?
            } else {
                managers
            }
        }
        Assignee::Staff { staff_id } => active(None, Some(staff_id)).all(txn).await?,
    })
}

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
    /// Whether the rule's state on this customer was true before now.
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
        let held_before = rule_state::Entity::find_by_id((id, rule_id))
            .one(self.db)
            .await?
            .map(|s| s.holds);
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
