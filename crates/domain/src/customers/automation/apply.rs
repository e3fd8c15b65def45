//! Writing one customer's verdicts: the rules' tags (through `tagging::links`, a few
//! statements whatever their number), the rule states, and the edge-triggered actions of the
//! rules that just became true: owners first (they change what other rules see), then tasks
//! and messages.

use super::*;

/// Makes the customer's tags what `resolution` says: takes off the rule tags no rule wants
/// and the automatic tags a rule's tag replaced, and puts on the wanted tags it lacks.
pub(super) async fn links(
    txn: &DatabaseTransaction,
    row: &customer::Model,
    set: &RuleSet,
    current: &[Link],
    resolution: &Resolution<'_>,
    explained: &HashMap<TagId, (String, String)>,
    now: DateTime<Utc>,
) -> DomainResult<Vec<RuleChange>> {
    let (tenant, customer) = (row.tenant_id, row.id);
    let rules = &set.rules;
    let mut changes = Vec::new();
    // (tag, stamp, reason) of each removal.
    let mut removals: Vec<(i64, Option<RuleStamp<'_>>, String, Option<String>)> = Vec::new();
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
        if let (Some((id, version)), Some(name)) = (stamp, &name) {
            changes.push(RuleChange {
                tag_id: link.tag,
                added: false,
                rule_id: id,
                rule_name: name.clone(),
                rule_version: version,
                reason: reason.clone(),
            });
        }
        removals.push((
            link.tag.0,
            stamp.map(|(id, version)| RuleStamp {
                id,
                version,
                evidence: None,
            }),
            reason,
            name,
        ));
    }
    let removed: Vec<(i64, Attribution<'_>)> = removals
        .iter()
        .map(|(tag, stamp, reason, _)| (*tag, by(*stamp, reason)))
        .collect();
    links::remove_each(txn, tenant, customer.0, &removed, now).await?;
    let mut added: Vec<&Want> = resolution
        .tags
        .iter()
        .filter(|(tag, _)| !current.iter().any(|l| l.tag == **tag))
        .filter_map(|(_, want)| *want)
        .collect();
    added.sort_by_key(|w| w.tag);
    let unexplained = (String::new(), String::new());
    let explanations: Vec<&(String, String)> = added
        .iter()
        .map(|want| explained.get(&want.tag).unwrap_or(&unexplained))
        .collect();
    let additions: Vec<(i64, Attribution<'_>)> = added
        .iter()
        .zip(&explanations)
        .map(|(want, (reason, evidence))| {
            let rule = &rules[want.rule];
            let stamp = RuleStamp {
                id: rule.id,
                version: rule.version,
                evidence: Some(evidence),
            };
            (want.tag.0, by(Some(stamp), reason))
        })
        .collect();
    links::add_each(txn, tenant, customer.0, &additions, now).await?;
    // A rule's tag another rule now keeps on: the link names the rule that does.
    let mut handed: Vec<(&TagId, &Want)> = resolution
        .tags
        .iter()
        .filter_map(|(tag, want)| want.map(|w| (tag, w)))
        .filter(|(tag, want)| {
            current.iter().any(|l| l.tag == **tag) && needs_stamp(current, **tag, &rules[want.rule])
        })
        .collect();
    handed.sort_by_key(|(tag, _)| **tag);
    for (tag, want) in handed {
        let rule = &rules[want.rule];
        let (reason, evidence) = explained.get(tag).unwrap_or(&unexplained);
        let stamp = RuleStamp {
            id: rule.id,
            version: rule.version,
            evidence: Some(evidence),
        };
        links::restamp(txn, customer.0, tag.0, by(Some(stamp), reason)).await?;
    }
    for (want, (reason, _)) in added.iter().zip(explanations.iter().copied()) {
        let rule = &rules[want.rule];
        changes.push(RuleChange {
            tag_id: want.tag,
            added: true,
            rule_id: rule.id,
            rule_name: rule.name.clone(),
            rule_version: rule.version,
            reason: reason.clone(),
        });
    }
    Ok(changes)
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

/// Writes the rules' states that changed (a rule that never held and never will by time
/// alone needs no row: no row means false).
pub(super) async fn states(
    txn: &DatabaseTransaction,
    tenant: TenantId,
    row: &customer::Model,
    set: &RuleSet,
    verdicts: &[Verdict],
    states: &HashMap<RuleId, rule_state::Model>,
    now: DateTime<Utc>,
) -> DomainResult<()> {
    let mut rows = Vec::new();
    for verdict in verdicts {
        let rule = &set.rules[verdict.rule];
        let old = states.get(&rule.id);
        let unchanged = match old {
            Some(s) => {
                s.holds == verdict.holds
                    && s.rule_version == rule.version
                    && s.next_due_at == verdict.next
            }
            None => !verdict.holds && verdict.next.is_none(),
        };
        if unchanged {
            continue;
        }
        let since = match old {
            Some(s) if s.holds == verdict.holds => s.since,
            _ => now,
        };
        rows.push(rule_state::ActiveModel {
            customer_id: Set(row.id),
            rule_id: Set(rule.id),
            tenant_id: Set(tenant),
            holds: Set(verdict.holds),
            rule_version: Set(rule.version),
            since: Set(since),
            evaluated_at: Set(now),
            next_due_at: Set(verdict.next),
            // Evaluated: no scheduler's claim is needed any more, and a new due time applies
            // at once.
            lease_until: Set(None),
            lease_token: Set(None),
        });
    }
    if rows.is_empty() {
        return Ok(());
    }
    // In key order, as the scheduler's claims lock them.
    rows.sort_by_key(|r| match &r.rule_id {
        sea_orm::ActiveValue::Set(id) | sea_orm::ActiveValue::Unchanged(id) => id.0,
        sea_orm::ActiveValue::NotSet => 0,
    });
    rule_state::Entity::insert_many(rows)
        .on_conflict(
            OnConflict::columns([rule_state::Column::CustomerId, rule_state::Column::RuleId])
                .update_columns([
                    rule_state::Column::Holds,
                    rule_state::Column::RuleVersion,
                    rule_state::Column::Since,
                    rule_state::Column::EvaluatedAt,
                    rule_state::Column::NextDueAt,
                    rule_state::Column::LeaseUntil,
                    rule_state::Column::LeaseToken,
                ])
                .to_owned(),
        )
        .exec_without_returning(txn)
        .await
        .step("writing the rule states")?;
    Ok(())
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

/// Runs the tasks and messages of the rules that just turned true (`fired`), for the customer
/// as this change leaves it (an owner a rule gave included). Messages are outbox rows, sent
/// once the transaction commits.
pub(super) async fn edges(
    txn: &DatabaseTransaction,
    row: &customer::Model,
    set: &RuleSet,
    fired: &[usize],
    now: DateTime<Utc>,
) -> DomainResult<()> {
    let tenant = row.tenant_id;
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
                    for assignee in assignees(txn, tenant, *assignee, row.owner_id).await? {
                        tasks::create(
                            txn,
                            NewTask {
                                tenant,
                                assignee,
                                kind: TaskKind::Rule,
                                title: &title,
                                customer: Some(row.id),
                                channel: None,
                                due: due_in_days.map(|d| now + Duration::days(i64::from(d))),
                                rule: Some(rule.id),
                                now,
                            },
                        )
                        .await?;
                    }
                }
                RuleAction::NotifyOwner { message } => {
                    if let Some(owner) = row.owner_id {
                        notify(txn, row, rule, serde_json::json!({"to": "owner", "staff_id": owner, "message": message}), now).await?;
                    }
                }
                RuleAction::NotifyCustomer { message } => {
                    if row.openid.is_some() {
                        notify(
                            txn,
                            row,
                            rule,
                            serde_json::json!({"to": "customer", "message": message}),
                            now,
                        )
                        .await?;
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

async fn notify(
    txn: &DatabaseTransaction,
    row: &customer::Model,
    rule: &Rule,
    mut payload: Value,
    now: DateTime<Utc>,
) -> DomainResult<()> {
    payload["rule_id"] = serde_json::json!(rule.id);
    payload["rule_version"] = serde_json::json!(rule.version);
    payload["rule_name"] = serde_json::json!(rule.name);
    outbox::record(
        txn,
        row.tenant_id,
        EventKind::RuleNotification,
        Some(row.id),
        &payload,
        now,
    )
    .await
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
