//! Writing the verdicts: the rules' tags (through `tagging::links`), the rule states, and the
//! edge-triggered actions of the rules that just became true: owners first (they change what
//! other rules see, and are written at once), then tasks and messages. Everything but an owner
//! is gathered in [`Writes`] over a batch of customers and written in a few multi-row
//! statements, however many customers the batch holds.

use super::*;
use crate::store::entities::rule_due;

/// A link to write or take off, and why.
struct LinkWrite {
    customer: i64,
    tag: i64,
    stamp: Option<(RuleId, i32)>,
    reason: String,
    evidence: Option<String>,
}

impl LinkWrite {
    fn by(&self) -> (i64, i64, Attribution<'_>) {
        let stamp = self.stamp.map(|(id, version)| RuleStamp {
            id,
            version,
            evidence: self.evidence.as_deref(),
        });
        (self.customer, self.tag, by(stamp, &self.reason))
    }
}

/// A task a rule raises.
struct TaskWrite {
    assignee: StaffId,
    title: String,
    customer: CustomerId,
    due: Option<DateTime<Utc>>,
    rule: RuleId,
}

/// What the rules decided for a batch of customers, written together by [`Writes::flush`].
#[derive(Default)]
pub(super) struct Writes {
    removed: Vec<LinkWrite>,
    added: Vec<LinkWrite>,
    restamped: Vec<LinkWrite>,
    /// `(customer, tag)` vetoes no rule needs any more.
    pub(super) lifted: Vec<(i64, i64)>,
    states: Vec<rule_state::ActiveModel>,
    /// `(customer, rule)` states no longer needed.
    forgotten: Vec<(i64, i64)>,
    /// Customers' new places in the due-time queue.
    due: Vec<rule_due::ActiveModel>,
    /// Customers with nothing due any more.
    undue: Vec<i64>,
    tasks: Vec<TaskWrite>,
    notices: Vec<(Option<CustomerId>, Value)>,
}

impl Writes {
    /// Writes everything gathered.
    pub(super) async fn flush(
        self,
        txn: &DatabaseTransaction,
        tenant: TenantId,
        now: DateTime<Utc>,
    ) -> DomainResult<()> {
        let removed: Vec<_> = self.removed.iter().map(LinkWrite::by).collect();
        links::remove_each(txn, tenant, &removed, now).await?;
        let added: Vec<_> = self.added.iter().map(LinkWrite::by).collect();
        links::add_each(txn, tenant, &added, now).await?;
        for link in &self.restamped {
            let (customer, tag, by) = link.by();
            links::restamp(txn, customer, tag, by).await?;
        }
        for chunk in self.lifted.chunks(links::PAIRS_PER_STATEMENT) {
            links::lift_vetoes(txn, Links::Pairs(chunk)).await?;
        }
        for chunk in self.forgotten.chunks(links::PAIRS_PER_STATEMENT) {
            rule_state::Entity::delete_many()
                .filter(links::pairs_of(
                    rule_state::Column::CustomerId,
                    rule_state::Column::RuleId,
                    chunk,
                ))
                .exec(txn)
                .await
                .step("forgetting rule states no longer needed")?;
        }
        let mut states = self.states;
        // In key order, as the scheduler's claims lock them.
        states.sort_by_key(|r| {
            (
                state_key(&r.customer_id).map(|c| c.0),
                state_key(&r.rule_id).map(|r| r.0),
            )
        });
        let mut states = states.into_iter().peekable();
        while states.peek().is_some() {
            let chunk: Vec<rule_state::ActiveModel> = states.by_ref().take(500).collect();
            rule_state::Entity::insert_many(chunk)
                .on_conflict(
                    OnConflict::columns([
                        rule_state::Column::CustomerId,
                        rule_state::Column::RuleId,
                    ])
                    .update_columns([
                        rule_state::Column::Holds,
                        rule_state::Column::RuleVersion,
                        rule_state::Column::Since,
                        rule_state::Column::EvaluatedAt,
                    ])
                    .to_owned(),
                )
                .exec_without_returning(txn)
                .await
                .step("writing the rule states")?;
        }
        for chunk in self.undue.chunks(IDS_PER_STATEMENT) {
            rule_due::Entity::delete_many()
                .filter(rule_due::Column::CustomerId.is_in(chunk.iter().copied()))
                .exec(txn)
                .await
                .step("taking customers off the due-time queue")?;
        }
        let mut due = self.due;
        // In key order, as the scheduler's claims lock them.
        due.sort_by_key(|r| state_key(&r.customer_id).map(|c| c.0));
        let mut due = due.into_iter().peekable();
        while due.peek().is_some() {
            let chunk: Vec<rule_due::ActiveModel> = due.by_ref().take(1_000).collect();
            rule_due::Entity::insert_many(chunk)
                .on_conflict(
                    OnConflict::column(rule_due::Column::CustomerId)
                        .update_columns([
                            rule_due::Column::NextDueAt,
                            rule_due::Column::LeaseUntil,
                            rule_due::Column::LeaseToken,
                        ])
                        .to_owned(),
                )
                .exec_without_returning(txn)
                .await
                .step("queueing the customers' due times")?;
        }
        let tasks: Vec<NewTask<'_>> = self
            .tasks
            .iter()
            .map(|t| NewTask {
                tenant,
                assignee: t.assignee,
                kind: TaskKind::Rule,
                title: &t.title,
                customer: Some(t.customer),
                channel: None,
                due: t.due,
                rule: Some(t.rule),
                now,
            })
            .collect();
        tasks::create_many(txn, &tasks).await?;
        outbox::record_many(txn, tenant, EventKind::RuleNotification, &self.notices, now).await?;
        Ok(())
    }
}

fn state_key<T: Copy + Into<sea_orm::Value>>(value: &sea_orm::ActiveValue<T>) -> Option<T> {
    match value {
        sea_orm::ActiveValue::Set(v) | sea_orm::ActiveValue::Unchanged(v) => Some(*v),
        sea_orm::ActiveValue::NotSet => None,
    }
}

/// Makes the customer's tags what `resolution` says, in `writes`: takes off the rule tags no
/// rule wants and the automatic tags a rule's tag replaced, and puts on the wanted tags it
/// lacks. Returns the changes.
pub(super) fn links(
    row: &customer::Model,
    set: &RuleSet,
    current: &[Link],
    resolution: &Resolution<'_>,
    mut explained: HashMap<TagId, (String, String)>,
    writes: &mut Writes,
) -> Vec<RuleChange> {
    let customer = row.id.0;
    let rules = &set.rules;
    let mut changes = Vec::new();
    for link in current {
        if resolution.tags.contains_key(&link.tag) {
            continue;
        }
        let group = set.info.get(&link.tag).map(|i| i.group);
        let (stamp, name, reason) = match link.rule.and_then(|id| rules.iter().find(|r| r.id == id))
        {
            Some(rule) => (
                Some((rule.id, rule.version)),
                Some(rule.name.clone()),
                format!("rule \"{}\" (v{}) no longer holds", rule.name, rule.version),
            ),
            None if link.source == TagSource::Rule => (
                link.rule.map(|id| (id, link.rule_version.unwrap_or(1))),
                link.rule.map(|id| format!("rule {id}")),
                "its rule was disabled or deleted".to_owned(),
            ),
            None => {
                // An automatic tag a rule's tag replaced in its exclusive group.
                let by = resolution
                    .tags
                    .values()
                    .flatten()
                    .find(|w| set.info.get(&w.tag).map(|i| i.group) == group)
                    .map(|w| &rules[w.rule]);
                match by {
                    Some(rule) => (
                        Some((rule.id, rule.version)),
                        Some(rule.name.clone()),
                        format!("replaced in its group by rule \"{}\"", rule.name),
                    ),
                    None => (None, None, "replaced by a rule".to_owned()),
                }
            }
        };
        if let (Some((id, version)), Some(name)) = (stamp, name) {
            changes.push(RuleChange {
                tag_id: link.tag,
                added: false,
                rule_id: id,
                rule_name: name,
                rule_version: version,
                reason: reason.clone(),
            });
        }
        writes.removed.push(LinkWrite {
            customer,
            tag: link.tag.0,
            stamp,
            reason,
            evidence: None,
        });
    }
    let mut wanted: Vec<(&TagId, &Want)> = resolution
        .tags
        .iter()
        .filter_map(|(tag, want)| want.map(|w| (tag, w)))
        .collect();
    wanted.sort_by_key(|(tag, _)| **tag);
    for (tag, want) in wanted {
        let rule = &rules[want.rule];
        let present = current.iter().any(|l| l.tag == *tag);
        // A tag already there stays, unless it is another rule's: then the link is handed to
        // the rule that keeps it on now.
        if present && !needs_stamp(current, *tag, rule) {
            continue;
        }
        let (reason, evidence) = explained.remove(tag).unwrap_or_default();
        let write = LinkWrite {
            customer,
            tag: tag.0,
            stamp: Some((rule.id, rule.version)),
            reason,
            evidence: Some(evidence),
        };
        if present {
            writes.restamped.push(write);
            continue;
        }
        changes.push(RuleChange {
            tag_id: *tag,
            added: true,
            rule_id: rule.id,
            rule_name: rule.name.clone(),
            rule_version: rule.version,
            reason: write.reason.clone(),
        });
        writes.added.push(write);
    }
    changes
}

fn by<'a>(stamp: Option<RuleStamp<'a>>, reason: &'a str) -> Attribution<'a> {
    Attribution {
        source: TagSource::Rule,
        reason: Some(reason),
        note: None,
        actor: None,
        rule: stamp,
    }
}

/// Whether a wanted tag needs its link written: it is not on the customer, or it is there as
/// another rule's tag (a tag a person or a channel gave stays theirs).
pub(super) fn needs_stamp(current: &[Link], tag: TagId, rule: &Rule) -> bool {
    match current.iter().find(|l| l.tag == tag) {
        None => true,
        Some(link) => link.source == TagSource::Rule && link.rule != Some(rule.id),
    }
}

/// Gathers the rules' states that changed into `writes`, and the customer's place in the
/// due-time queue. No state row means "does not hold": only a rule with tasks, messages or an
/// owner to give keeps one, while it holds (its next transition to true is an edge); a rule
/// that only tags needs none, its tags being level-triggered. The queue keeps the earliest
/// instant any rule's verdict can change with no new fact, one row per customer.
pub(super) fn states(
    row: &customer::Model,
    set: &RuleSet,
    verdicts: &[Verdict],
    held: &HashMap<RuleId, rule_state::Model>,
    due: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
    writes: &mut Writes,
) {
    for verdict in verdicts {
        let rule = &set.rules[verdict.rule];
        let old = held.get(&rule.id);
        if !(verdict.holds && has_edges(rule)) {
            if old.is_some() {
                writes.forgotten.push((row.id.0, rule.id.0));
            }
            continue;
        }
        if old.is_some_and(|s| s.holds && s.rule_version == rule.version) {
            continue;
        }
        writes.states.push(rule_state::ActiveModel {
            customer_id: Set(row.id),
            rule_id: Set(rule.id),
            tenant_id: Set(row.tenant_id),
            holds: Set(true),
            rule_version: Set(rule.version),
            since: Set(old.map_or(now, |s| s.since)),
            evaluated_at: Set(now),
        });
    }
    let next = verdicts.iter().fold(None, |at, v| earliest(at, v.next));
    match next {
        None if due.is_some() => writes.undue.push(row.id.0),
        // An evaluation ends the scheduler's claim; a new due time applies at once.
        Some(at) if due != Some(at) || due.is_some_and(|d| d <= now) => {
            writes.due.push(rule_due::ActiveModel {
                customer_id: Set(row.id),
                tenant_id: Set(row.tenant_id),
                next_due_at: Set(at),
                lease_until: Set(None),
                lease_token: Set(None),
            });
        }
        _ => {}
    }
}

/// Whether a rule does something when it turns true (beyond its level-triggered tags).
pub(super) fn has_edges(rule: &Rule) -> bool {
    rule.actions
        .iter()
        .any(|a| !matches!(a, RuleAction::AddTag { .. } | RuleAction::SetTier { .. }))
}

/// The owner the `assign_owner` actions of the rules that just turned true (`fired`, in the
/// order they ran) give the customer, written with an audit row; `None` when the owner stays.
/// `fixed` and `round_robin` only give an owner to a customer without one; `pool` takes the
/// owner away.
pub(super) async fn owners(
    txn: &DatabaseTransaction,
    row: &customer::Model,
    set: &RuleSet,
    fired: &[usize],
    now: DateTime<Utc>,
) -> DomainResult<Option<customer::Model>> {
    let tenant = row.tenant_id;
    let mut owner = row.owner_id;
    let mut by: Option<&Rule> = None;
    for &i in fired {
        let rule = &set.rules[i];
        for action in &rule.actions {
            let RuleAction::AssignOwner { policy } = action else {
                continue;
            };
            let next = match policy {
                OwnerPolicy::Pool if owner.is_none() => continue,
                OwnerPolicy::Pool => None,
                _ if owner.is_some() => continue,
                OwnerPolicy::Fixed { staff_id } => {
                    active_staff(txn, tenant, std::slice::from_ref(staff_id))
                        .await?
                        .first()
                        .copied()
                }
                OwnerPolicy::RoundRobin { staff_ids } => {
                    let members = active_staff(txn, tenant, staff_ids).await?;
                    if members.is_empty() {
                        continue;
                    }
                    let turn =
                        crate::store::turns::take(txn, "rule_owner_turns", "rule_id", rule.id.0)
                            .await?;
                    let len = i64::try_from(members.len()).unwrap_or(i64::MAX);
                    usize::try_from(turn.rem_euclid(len))
                        .ok()
                        .and_then(|i| members.get(i).copied())
                }
            };
            if next != owner {
                owner = next;
                by = Some(rule);
            }
        }
    }
    let Some(rule) = by.filter(|_| owner != row.owner_id) else {
        return Ok(None);
    };
    let mut active: customer::ActiveModel = row.clone().into();
    active.owner_id = Set(owner);
    active.updated_at = Set(now);
    let written = active
        .update(txn)
        .await
        .step("writing the owner a rule gave")?;
    audit::record(
        txn,
        AuditEntry {
            tenant_id: Some(tenant),
            actor: audit::Actor::System,
            action: "customer.assigned",
            target_type: "customer",
            target_id: Some(row.id.to_string()),
            details: Some(serde_json::json!({
                "rule_id": rule.id,
                "rule_version": rule.version,
                "from": row.owner_id,
                "to": owner,
            })),
        },
    )
    .await?;
    Ok(Some(written))
}

/// The active members of `ids`, in the list's order.
async fn active_staff(
    txn: &DatabaseTransaction,
    tenant: TenantId,
    ids: &[StaffId],
) -> DomainResult<Vec<StaffId>> {
    let active: Vec<StaffId> = staff::Entity::find()
        .select_only()
        .column(staff::Column::Id)
        .filter(staff::Column::TenantId.eq(tenant.0))
        .filter(staff::Column::Active.eq(true))
        .filter(staff::Column::Id.is_in(ids.iter().map(|s| s.0)))
        .into_tuple()
        .all(txn)
        .await
        .step("reading the staff a rule assigns to")?;
    Ok(ids
        .iter()
        .copied()
        .filter(|id| active.contains(id))
        .collect())
}

/// Gathers into `writes` the tasks and messages of the rules that just turned true (`fired`),
/// for the customer as this change leaves it (an owner a rule gave included). Messages are
/// outbox rows, sent once the transaction commits.
pub(super) async fn edges(
    txn: &DatabaseTransaction,
    row: &customer::Model,
    set: &RuleSet,
    fired: &[usize],
    now: DateTime<Utc>,
    staffing: &mut Staffing,
    writes: &mut Writes,
) -> DomainResult<()> {
    for &i in fired {
        let rule = &set.rules[i];
        for action in &rule.actions {
            match action {
                RuleAction::CreateTask {
                    assignee,
                    title,
                    due_in_days,
                } => {
                    let title = title.replace("{customer_name}", &row.name);
                    for assignee in staffing
                        .assignees(txn, row.tenant_id, *assignee, row.owner_id)
                        .await?
                    {
                        writes.tasks.push(TaskWrite {
                            assignee,
                            title: title.clone(),
                            customer: row.id,
                            due: due_in_days.map(|d| now + Duration::days(i64::from(d))),
                            rule: rule.id,
                        });
                    }
                }
                RuleAction::NotifyOwner { message } => {
                    if let Some(owner) = row.owner_id {
                        writes.notices.push(notice(row, rule, serde_json::json!({"to": "owner", "staff_id": owner, "message": message})));
                    }
                }
                RuleAction::NotifyCustomer { message } => {
                    if row.openid.is_some() {
                        writes.notices.push(notice(
                            row,
                            rule,
                            serde_json::json!({"to": "customer", "message": message}),
                        ));
                    }
                }
                RuleAction::AddTag { .. }
                | RuleAction::SetTier { .. }
                | RuleAction::AssignOwner { .. } => {}
            }
        }
    }
    Ok(())
}

fn notice(row: &customer::Model, rule: &Rule, mut payload: Value) -> (Option<CustomerId>, Value) {
    payload["rule_id"] = serde_json::json!(rule.id);
    payload["rule_version"] = serde_json::json!(rule.version);
    payload["rule_name"] = serde_json::json!(rule.name);
    (Some(row.id), payload)
}

/// Who rules' tasks go to, read once per batch of customers.
#[derive(Default)]
pub(super) struct Staffing {
    managers: Option<Vec<StaffId>>,
    active: HashMap<StaffId, bool>,
}

impl Staffing {
    /// Who a rule's task goes to.
    async fn assignees(
        &mut self,
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
                if self.managers.is_none() {
                    let managers = active(Some(Role::Manager), None).all(txn).await?;
                    self.managers = Some(if managers.is_empty() {
                        active(Some(Role::Admin), None).all(txn).await?
                    } else {
                        managers
                    });
                }
                self.managers.clone().unwrap_or_default()
            }
            Assignee::Staff { staff_id } => {
                let is_active = match self.active.get(&staff_id) {
                    Some(known) => *known,
                    None => {
                        let found = !active(None, Some(staff_id)).all(txn).await?.is_empty();
                        self.active.insert(staff_id, found);
                        found
                    }
                };
                if is_active {
                    vec![staff_id]
                } else {
                    Vec::new()
                }
            }
        })
    }
}
