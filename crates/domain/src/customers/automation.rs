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

use chrono::Duration;
use chrono_tz::Tz;
use sea_orm::sea_query::OnConflict;

use super::*;
use crate::kernel::ids::RuleId;
use crate::kernel::values::{FieldType, Role, TaskKind};
use crate::rules::facts::{Datum, EventFact, FollowUpFact, OrderFact};
use crate::rules::{
    self, Assignee, Clock, Condition, CustomerFacts, Evaluation, Rule, RuleAction, TagInfo,
    TagView, eval,
};
use crate::store::entities::{
    activity_event, follow_up, order, rule, rule_state, tag_veto, tenant,
};
use crate::tasks::{self, NewTask};
use tagging::links::{self, Attribution, Links, RuleStamp};

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
    ids: Option<&[TagId]>,
) -> DomainResult<HashMap<TagId, TagInfo>> {
    let mut query = tag::Entity::find()
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
    if let Some(ids) = ids {
        if ids.is_empty() {
            return Ok(HashMap::new());
        }
        query = query.filter(tag::Column::Id.is_in(ids.iter().map(|t| t.0)));
    }
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

/// Whether the tenant has an enabled rule.
pub(crate) async fn has_rules<C: ConnectionTrait>(
    conn: &C,
    tenant: TenantId,
) -> DomainResult<bool> {
    let found: Option<RuleId> = rule::Entity::find()
        .select_only()
        .column(rule::Column::Id)
        .filter(rule::Column::TenantId.eq(tenant.0))
        .filter(rule::Column::Enabled.eq(true))
        .into_tuple()
        .one(conn)
        .await
        .step("looking for rules")?;
    Ok(found.is_some())
}

/// The tenant's clock for `now`: local days in its timezone.
pub(crate) async fn clock<C: ConnectionTrait>(
    conn: &C,
    tenant: TenantId,
    now: DateTime<Utc>,
) -> DomainResult<Clock> {
    let zone: Option<String> = tenant::Entity::find_by_id(tenant)
        .select_only()
        .column(tenant::Column::Timezone)
        .into_tuple()
        .one(conn)
        .await
        .step("reading the tenant's timezone")?;
    let tz = zone
        .and_then(|z| z.parse::<Tz>().ok())
        .unwrap_or(FALLBACK_ZONE);
    Ok(Clock { now, tz })
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
    reason: String,
    evidence: String,
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
        // A vetoed tag stays off; an archived one is not assigned any more.
        if vetoes.contains(&want.tag) || !info.get(&want.tag).is_some_and(|i| i.active) {
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

impl TagView for Present {
    fn has(&self, tag: TagId) -> bool {
        self.tags.contains(&tag)
    }
    fn has_in(&self, group: TagGroupId) -> bool {
        self.groups.contains(&group)
    }
}

/// Loads what the rules measure of one customer: its fields and custom fields always, and
/// the facts of the kinds the rules measure.
pub(crate) async fn load_facts<C: ConnectionTrait>(
    conn: &C,
    tenant: TenantId,
    row: &customer::Model,
    rules: &[Rule],
) -> DomainResult<CustomerFacts> {
    let mut facts = CustomerFacts::default();
    let f = &mut facts.fields;
    for (name, value) in [
        ("name", Some(row.name.clone())),
        ("company", row.company.clone()),
        ("industry", row.industry.clone()),
        ("region", row.region.clone()),
        ("project_stage", row.project_stage.clone()),
        ("phone", row.phone.clone()),
    ] {
        if let Some(value) = value {
            f.insert(name, Datum::Text(value));
        }
    }
    if let Some(owner) = row.owner_id {
        f.insert("owner_id", Datum::Number(owner.0 as f64));
    }
    if let Some(channel) = row.source_channel_id {
        f.insert("source_channel_id", Datum::Number(channel.0 as f64));
    }
    for (name, value) in [
        ("created_at", Some(row.created_at)),
        ("updated_at", Some(row.updated_at)),
        ("last_order_at", row.last_order_at),
        ("last_follow_up_at", row.last_follow_up_at),
        ("last_active_at", row.last_active_at),
    ] {
        if let Some(value) = value {
            f.insert(name, Datum::Time(value));
        }
    }
    let defs = custom_fields::list(conn, tenant).await?;
    if !defs.is_empty() {
        let values = load_field_values(conn, &defs, &[row.id.0])
            .await?
            .remove(&row.id.0)
            .unwrap_or_default();
        for (key, value) in values {
            let Some(def) = defs.iter().find(|d| d.key == key) else {
                continue;
            };
            let datum = match (def.field_type, &value) {
                (FieldType::Number, v) => v.as_f64().map(Datum::Number),
                (FieldType::Date, Value::String(s)) => s.parse().ok().map(Datum::Date),
                (FieldType::MultiSelect, Value::Array(items)) => Some(Datum::List(
                    items
                        .iter()
                        .filter_map(|i| i.as_str().map(str::to_owned))
                        .collect(),
                )),
                (_, Value::String(s)) => Some(Datum::Text(s.clone())),
                _ => None,
            };
            if let Some(datum) = datum {
                facts.custom.insert(key, datum);
            }
        }
    }
    let mut measured = Vec::new();
    for rule in rules {
        if let Some(condition) = &rule.condition {
            condition.measures(&mut measured);
        }
        for action in &rule.actions {
            if let RuleAction::SetTier { score, .. } = action {
                score.measures(&mut measured);
            }
        }
    }
    use rules::condition::FactKind;
    let wants = |kind: FactKind| measured.iter().any(|(k, _)| *k == kind);
    if wants(FactKind::Orders) {
        facts.orders = order::Entity::find()
            .filter(order::Column::CustomerId.eq(row.id.0))
            .all(conn)
            .await
            .step("reading the customer's orders")?
            .into_iter()
            .map(|o| OrderFact {
                occurred_at: o.occurred_at,
                amount_fen: o.amount_fen,
                currency: o.currency,
                product_category: o.product_category,
                status: o.status,
            })
            .collect();
    }
    if wants(FactKind::FollowUps) {
        facts.follow_ups = follow_up::Entity::find()
            .filter(follow_up::Column::CustomerId.eq(row.id.0))
            .all(conn)
            .await
            .step("reading the customer's follow-ups")?
            .into_iter()
            .map(|f| FollowUpFact {
                occurred_at: f.occurred_at,
                kind: f.kind,
                stage: f.stage,
            })
            .collect();
    }
    if wants(FactKind::Events) {
        // Only the event kinds some rule measures (all of them if one measures any kind).
        let mut kinds: Option<Vec<String>> = Some(Vec::new());
        for (kind, names) in &measured {
            if *kind != FactKind::Events {
                continue;
            }
            match (names, kinds.as_mut()) {
                (Some(names), Some(all)) => all.extend(names.iter().cloned()),
                _ => kinds = None,
            }
        }
        let mut query =
            activity_event::Entity::find().filter(activity_event::Column::CustomerId.eq(row.id.0));
        if let Some(kinds) = kinds {
            query = query.filter(activity_event::Column::Kind.is_in(kinds));
        }
        facts.events = query
            .all(conn)
            .await
            .step("reading the customer's events")?
            .into_iter()
            .map(|e| EventFact {
                occurred_at: e.occurred_at,
                kind: e.kind,
                properties: e
                    .properties
                    .and_then(|p| serde_json::from_str(&p).ok())
                    .unwrap_or_default(),
            })
            .collect();
    }
    Ok(facts)
}

/// Why a rule holds, in one sentence and as the JSON kept on its links.
fn explain(rule: &Rule, evaluation: &Evaluation, extra: Option<String>) -> (String, String) {
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
/// and the tasks of the rules that just became true. Returns the tag changes made.
///
/// Long because evaluating in order, resolving and writing the result of one customer belong
/// together.
#[tracing::instrument(skip_all, fields(tenant = %tenant, customer = %customer))]
pub(crate) async fn react(
    txn: &DatabaseTransaction,
    tenant: TenantId,
    customer: CustomerId,
    now: DateTime<Utc>,
) -> DomainResult<Vec<RuleChange>> {
    let rules = load_rules(txn, tenant, true).await?;
    let Some(row) = customer::Entity::find_by_id(customer)
        .filter(customer::Column::TenantId.eq(tenant.0))
        .filter(customer::Column::DeletedAt.is_null())
        .one(txn)
        .await
        .step("reading the customer for the rules")?
    else {
        return Ok(Vec::new());
    };
    let current: Vec<Link> = customer_tag::Entity::find()
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
        .collect();
    let vetoes: HashSet<TagId> = tag_veto::Entity::find()
        .select_only()
        .column(tag_veto::Column::TagId)
        .filter(tag_veto::Column::CustomerId.eq(customer.0))
        .into_tuple::<TagId>()
        .all(txn)
        .await
        .step("reading the customer's vetoed tags")?
        .into_iter()
        .collect();
    let rule_links = current.iter().filter(|l| l.source == TagSource::Rule);
    if rules.is_empty() && rule_links.clone().next().is_none() {
        if !vetoes.is_empty() {
            let tags: Vec<i64> = vetoes.iter().map(|t| t.0).collect();
            links::lift_vetoes(
                txn,
                Links::OfCustomer {
                    customer: customer.0,
                    tags: &tags,
                },
            )
            .await?;
        }
        return Ok(Vec::new());
    }
    let mut involved: Vec<TagId> = current.iter().map(|l| l.tag).collect();
    for rule in &rules {
        involved.extend(rule.produces());
        if let Some(condition) = &rule.condition {
            involved.extend(condition.reads().0);
        }
    }
    involved.sort_unstable();
    involved.dedup();
    let info = tag_infos(txn, tenant, Some(&involved)).await?;
    let order = rules::graph::order(&rules, &|t| info.get(&t).copied())
        .unwrap_or_else(|_| (0..rules.len()).collect());
    let clock = clock(txn, tenant, now).await?;
    let facts = load_facts(txn, tenant, &row, &rules).await?;
    let base: Vec<Link> = current
        .iter()
        .copied()
        .filter(|l| l.source != TagSource::Rule)
        .collect();
    let states: HashMap<RuleId, rule_state::Model> = rule_state::Entity::find()
        .filter(rule_state::Column::CustomerId.eq(customer.0))
        .all(txn)
        .await
        .step("reading the customer's rule states")?
        .into_iter()
        .map(|s| (s.rule_id, s))
        .collect();

    // Evaluate in order; each rule sees the tags the rules before it settled.
    let mut wants: Vec<Want> = Vec::new();
    let mut verdicts: Vec<(usize, bool, Option<DateTime<Utc>>)> = Vec::new();
    for &i in &order {
        let rule = &rules[i];
        let evaluation = {
            let view = resolve(&base, &wants, &vetoes, &info);
            eval::evaluate(rule.condition.as_ref(), &facts, &view, &clock)
        };
        let mut next = evaluation.next_change;
        for action in &rule.actions {
            let (tag, extra) = match action {
                RuleAction::AddTag { tag_id } => (Some(*tag_id), None),
                RuleAction::SetTier { score, tiers } => {
                    let (value, due) = eval::measure(score, &facts, &clock);
                    next = earliest(next, due);
                    let value = value.unwrap_or(0.0);
                    let tier = tier_of(value, tiers);
                    let text = tier.map(|t| format!("score {value:.2} ≥ tier minimum {}", t.min));
                    (tier.map(|t| t.tag_id), text)
                }
                RuleAction::CreateTask { .. } => (None, None),
            };
            if let (true, Some(tag)) = (evaluation.holds, tag) {
                let (reason, evidence) = explain(rule, &evaluation, extra);
                wants.push(Want {
                    tag,
                    rule: i,
                    priority: rule.priority,
                    rule_id: rule.id,
                    reason,
                    evidence,
                });
            }
        }
        verdicts.push((i, evaluation.holds, next));
    }

    // Write the difference.
    let resolution = resolve(&base, &wants, &vetoes, &info);
    let mut changes = Vec::new();
    for link in &current {
        if resolution.tags.contains_key(&link.tag) {
            continue;
        }
        // A rule's tag whose rule no longer wants it, or an automatic tag a rule's tag replaced.
        let (stamp, reason) = match link.rule.and_then(|id| rules.iter().find(|r| r.id == id)) {
            Some(rule) => (
                Some((rule.id, rule.version, rule.name.clone())),
                format!("rule \"{}\" (v{}) no longer holds", rule.name, rule.version),
            ),
            None if link.source == TagSource::Rule => (
                link.rule
                    .map(|id| (id, link.rule_version.unwrap_or(1), format!("rule {id}"))),
                "its rule was disabled or deleted".to_owned(),
            ),
            None => {
                let by = resolution.tags.values().flatten().find(|w| {
                    info.get(&w.tag).map(|i| i.group) == info.get(&link.tag).map(|i| i.group)
                });
                match by {
                    Some(w) => {
                        let rule = &rules[w.rule];
                        (
                            Some((rule.id, rule.version, rule.name.clone())),
                            format!("replaced in its group by rule \"{}\"", rule.name),
                        )
                    }
                    None => (None, "replaced by a rule".to_owned()),
                }
            }
        };
        links::remove(
            txn,
            tenant,
            Links::OfCustomer {
                customer: customer.0,
                tags: &[link.tag.0],
            },
            Attribution {
                source: TagSource::Rule,
                reason: Some(&reason),
                note: None,
                actor: None,
                rule: stamp.as_ref().map(|(id, version, _)| RuleStamp {
                    id: *id,
                    version: *version,
                    evidence: None,
                }),
            },
            now,
        )
        .await?;
        if let Some((id, version, name)) = stamp {
            changes.push(RuleChange {
                tag_id: link.tag,
                added: false,
                rule_id: id,
                rule_name: name,
                rule_version: version,
                reason,
            });
        }
    }
    let mut added: Vec<&Want> = resolution
        .tags
        .iter()
        .filter(|(tag, _)| !current.iter().any(|l| l.tag == **tag))
        .filter_map(|(_, want)| *want)
        .collect();
    added.sort_by_key(|w| w.tag);
    for want in added {
        let rule = &rules[want.rule];
        links::add(
            txn,
            tenant,
            Links::OfCustomer {
                customer: customer.0,
                tags: &[want.tag.0],
            },
            Attribution {
                source: TagSource::Rule,
                reason: Some(&want.reason),
                note: None,
                actor: None,
                rule: Some(RuleStamp {
                    id: rule.id,
                    version: rule.version,
                    evidence: Some(&want.evidence),
                }),
            },
            now,
        )
        .await?;
        changes.push(RuleChange {
            tag_id: want.tag,
            added: true,
            rule_id: rule.id,
            rule_name: rule.name.clone(),
            rule_version: rule.version,
            reason: want.reason.clone(),
        });
    }
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

    // Rule states, and the edge-triggered actions of the rules that just became true.
    let mut rows = Vec::new();
    for (i, holds, next) in verdicts {
        let rule = &rules[i];
        let old = states.get(&rule.id);
        let turned_true = holds && old.is_none_or(|s| !s.holds);
        let unchanged = old.is_some_and(|s| {
            s.holds == holds && s.rule_version == rule.version && s.next_due_at == next
        });
        if turned_true {
            for action in &rule.actions {
                if let RuleAction::CreateTask {
                    assignee,
                    title,
                    due_in_days,
                } = action
                {
                    let owner = customer::Entity::find_by_id(customer)
                        .select_only()
                        .column(customer::Column::OwnerId)
                        .into_tuple::<Option<StaffId>>()
                        .one(txn)
                        .await?
                        .flatten();
                    let title = title.replace("{customer_name}", &row.name);
                    for assignee in assignees(txn, tenant, *assignee, owner).await? {
                        tasks::create(
                            txn,
                            NewTask {
                                tenant,
                                assignee,
                                kind: TaskKind::Rule,
                                title: &title,
                                customer: Some(customer),
                                channel: None,
                                due: due_in_days.map(|d| now + Duration::days(i64::from(d))),
                                rule: Some(rule.id),
                                now,
                            },
                        )
                        .await?;
                    }
                }
            }
        }
        if unchanged {
            continue;
        }
        let since = match old {
            Some(s) if s.holds == holds => s.since,
            _ => now,
        };
        rows.push(rule_state::ActiveModel {
            customer_id: Set(customer),
            rule_id: Set(rule.id),
            tenant_id: Set(tenant),
            holds: Set(holds),
            rule_version: Set(rule.version),
            since: Set(since),
            evaluated_at: Set(now),
            next_due_at: Set(next),
        });
    }
    if !rows.is_empty() {
        rule_state::Entity::insert_many(rows)
            .on_conflict(
                OnConflict::columns([rule_state::Column::CustomerId, rule_state::Column::RuleId])
                    .update_columns([
                        rule_state::Column::Holds,
                        rule_state::Column::RuleVersion,
                        rule_state::Column::Since,
                        rule_state::Column::EvaluatedAt,
                        rule_state::Column::NextDueAt,
                    ])
                    .to_owned(),
            )
            .exec_without_returning(txn)
            .await
            .step("writing the rule states")?;
    }
    Ok(changes)
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
        let facts = load_facts(self.db, self.tenant(), &row, std::slice::from_ref(&rule)).await?;
        let clock = clock(self.db, self.tenant(), Utc::now()).await?;
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
                    RuleAction::CreateTask { .. } => {}
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
