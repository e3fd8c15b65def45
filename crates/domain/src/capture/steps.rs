//! The steps of one capture attempt, each inside the attempt's transaction: writing the
//! customer (a new record, or a merge into the one found, locked), attaching the channel's
//! tags, recording the visit (the capture row, the outbox event, the audit entry), and the
//! owner's follow-up (a task and its message, or one more visit counted on an open task).

use super::dedupe::FreeIdentity;
use super::owner::OwnerRow;
use super::*;

/// What one attempt works with.
pub(super) struct Attempt<'a> {
    pub(super) txn: &'a DatabaseTransaction,
    pub(super) open: &'a OpenChannel,
    pub(super) visitor: &'a Visitor,
    pub(super) checked: &'a Checked,
    pub(super) owner: Option<&'a OwnerRow>,
    pub(super) now: DateTime<Utc>,
}

/// The customer as the capture left it.
pub(super) struct Written {
    pub(super) target: Target,
    pub(super) outcome: Outcome,
    pub(super) matched_by: Option<MatchedBy>,
    pub(super) conflicts: Vec<Conflict>,
}

impl Attempt<'_> {
    /// Inserts the new customer, or merges into the one found before the transaction; `None`
    /// when that one was deleted or reassigned since, and the attempt must start over.
    ///
    /// Long because the two ways a capture writes the customer (insert, or lock and merge)
    /// read best side by side.
    pub(super) async fn write_customer(
        &self,
        existing: Option<(customer::Model, MatchedBy, FreeIdentity)>,
    ) -> DomainResult<Option<Written>> {
        let (txn, open, visitor, checked, now) =
            (self.txn, self.open, self.visitor, self.checked, self.now);
        let (tenant, channel_id, owner) = (open.tenant, open.model.id, self.owner);
        let (target, outcome, matched_by, conflicts) = match existing {
            None => {
                let mut row = customer::ActiveModel {
                    tenant_id: Set(tenant),
                    name: Set(checked.name.clone()),
                    company: Set(checked.company.clone()),
                    industry: Set(checked.industry.clone()),
                    region: Set(checked.region.clone()),
                    owner_id: Set(owner.as_ref().map(|o| StaffId(o.id))),
                    source_channel_id: Set(Some(channel_id)),
                    project_stage: Set(None),
                    created_at: Set(now),
                    updated_at: Set(now),
                    last_active_at: Set(Some(now)),
                    ..Default::default()
                };
                contact::set_phone(&mut row, checked.phone.as_ref());
                contact::set_openid(&mut row, &visitor.openid);
                contact::set_unionid(&mut row, visitor.unionid.as_deref());
                let inserted = customer::Entity::insert(row)
                    .exec(txn)
                    .await
                    .step("inserting the captured customer")?;
                let id = inserted.last_insert_id;
                let values: Vec<(i64, Vec<String>)> = checked
                    .custom
                    .iter()
                    .map(|(def, values, _)| (def.id.0, values.clone()))
                    .collect();
                customers::write_field_values(txn, tenant, id, &values).await?;
                let target = Target { id: id.0 };
                (target, Outcome::Created, None, Vec::new())
            }
            Some((found, matched_by, identity)) => {
                // Lock it: concurrent captures of one person then merge one after the other.
                let locked = customer::Entity::find_by_id(found.id)
                    .filter(customer::Column::DeletedAt.is_null())
                    .lock_exclusive()
                    .one(txn)
                    .await
                    .step("locking the customer found")?;
                let Some(locked) = locked.filter(|l| l.owner_id == found.owner_id) else {
                    // Deleted or given another owner since it was read.
                    return Ok(None);
                };
                let target = Target { id: locked.id.0 };
                let new_owner = owner.as_ref().filter(|_| locked.owner_id.is_none());
                let conflicts = merge(
                    txn,
                    tenant,
                    locked,
                    Merge {
                        visitor,
                        identity,
                        checked,
                        owner: new_owner.map(|o| StaffId(o.id)),
                        now,
                    },
                )
                .await?;
                (target, Outcome::Merged, Some(matched_by), conflicts)
            }
        };
        Ok(Some(Written {
            target,
            outcome,
            matched_by,
            conflicts,
        }))
    }

    /// The channel's default tags, as the channel attaches them (`source = channel`).
    pub(super) async fn attach_channel_tags(
        &self,
        db: &DatabaseConnection,
        id: CustomerId,
        outcome: Outcome,
    ) -> DomainResult<()> {
        let (txn, open) = (self.txn, self.open);
        let (tenant, channel_id) = (open.tenant, open.model.id);
        let system = Customers::system(
            db,
            tenant,
            SystemTask::Capture {
                channel: channel_id,
            },
        );
        let mut ignored = Vec::new();
        let tags = system
            .assignable_tags(txn, &open.default_tag_ids, "default_tag_ids", &mut ignored)
            .await?;
        let reason = format!("captured through channel {}", open.model.name);
        system
            .attach_all(
                txn,
                id,
                &tags,
                TagSource::Channel,
                Some(&reason),
                None,
                outcome == Outcome::Created,
            )
            .await?;

        Ok(())
    }

    /// The capture row and the audit entry; returns the capture's id and what the audit
    /// entry says.
    pub(super) async fn record_visit(
        &self,
        id: CustomerId,
        written: &Written,
    ) -> DomainResult<(CaptureId, Value)> {
        let (txn, open, visitor, checked, now, owner) = (
            self.txn,
            self.open,
            self.visitor,
            self.checked,
            self.now,
            self.owner,
        );
        let (tenant, channel_id) = (open.tenant, open.model.id);
        let (outcome, matched_by) = (written.outcome, written.matched_by);
        let conflicts = written.conflicts.clone();
        let outcome_name = match outcome {
            Outcome::Created => "created",
            Outcome::Merged => "merged",
        };
        let capture_id = capture::Entity::insert(capture::ActiveModel {
            tenant_id: Set(tenant),
            channel_id: Set(channel_id),
            customer_id: Set(id),
            visitor_id: Set(visitor.id),
            outcome: Set(outcome),
            matched_by: Set(matched_by),
            conflicts: Set(Conflicts(conflicts)),
            consent_policy_version: Set(checked.policy_version.clone()),
            consented_at: Set(now),
            created_at: Set(now),
            ..Default::default()
        })
        .exec(txn)
        .await
        .step("recording the capture")?
        .last_insert_id;
        let details = serde_json::json!({
            "capture_id": capture_id,
            "channel_id": channel_id.0,
            "outcome": outcome_name,
            "matched_by": matched_by.map(MatchedBy::as_str),
            "owner_id": owner.as_ref().map(|o| o.id),
        });
        audit::record(
            txn,
            AuditEntry {
                tenant_id: Some(tenant),
                actor: Actor::Visitor(visitor.id),
                action: "customer.captured",
                target_type: "customer",
                target_id: Some(id.to_string()),
                details: Some(details.clone()),
            },
        )
        .await?;
        Ok((capture_id, details))
    }

    /// The `customer.captured` outbox event: the audit entry's details and the owner's new
    /// task, whose WeChat message the outbox's consumer sends once the capture is committed.
    pub(super) async fn announce(
        &self,
        id: CustomerId,
        mut details: Value,
        task: Option<TaskId>,
    ) -> DomainResult<()> {
        details["task_id"] = serde_json::json!(task);
        outbox::record(
            self.txn,
            self.open.tenant,
            EventKind::CustomerCaptured,
            Some(id),
            &details,
            self.now,
        )
        .await
    }

    /// The owner's new task about this capture; or one more visit counted on the owner's
    /// open task about the customer (then `None`).
    pub(super) async fn follow_up(
        &self,
        id: CustomerId,
        written: &Written,
        follow_up_window: chrono::Duration,
    ) -> DomainResult<Option<TaskId>> {
        let (txn, open, now, owner) = (self.txn, self.open, self.now, self.owner);
        let (tenant, channel_id, outcome) = (open.tenant, open.model.id, written.outcome);
        let notice = match owner {
            Some(owner) if owner.active => {
                let counted = match outcome {
                    Outcome::Created => None,
                    // A zero window counts nothing: every return is a task of its own.
                    Outcome::Merged if follow_up_window.is_zero() => None,
                    Outcome::Merged => {
                        tasks::count_visit(
                            txn,
                            tenant,
                            StaffId(owner.id),
                            id,
                            now.checked_sub_signed(follow_up_window).unwrap_or(now),
                            now,
                        )
                        .await?
                    }
                };
                match counted {
                    // The owner already has a task (and had a message) about this customer.
                    Some(_) => None,
                    None => {
                        let (kind, title) = match outcome {
                            Outcome::Created => (
                                TaskKind::NewCustomer,
                                format!("New customer from {}", open.model.name),
                            ),
                            Outcome::Merged => (
                                TaskKind::RepeatVisit,
                                format!("Returning customer from {}", open.model.name),
                            ),
                        };
                        let task_id = tasks::create(
                            txn,
                            NewTask {
                                tenant,
                                assignee: StaffId(owner.id),
                                kind,
                                title: &title,
                                customer: Some(id),
                                channel: Some(channel_id),
                                due: None,
                                rule: None,
                                now,
                            },
                        )
                        .await?;
                        Some(task_id)
                    }
                }
            }
            _ => None,
        };
        Ok(notice)
    }
}
