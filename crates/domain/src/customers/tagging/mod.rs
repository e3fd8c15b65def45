//! Tagging: which tags customers carry. Adding and removing a tag by hand, the tags a source
//! may assign (active, in the tenant), attaching several at once under the exclusive-group
//! rules, batches over many customers (`batch`), and the history of every change.
//!
//! Owns `customer_tags` and `tag_history`, written only through [`links`]. The rules kept
//! here: a tag is assigned only while active; in an exclusive group a new tag replaces the
//! others, except that an automatic source (channel, rule) never replaces a tag a person chose
//! (manual, api, import); every change is locked per customer and recorded in the history.

use super::*;
use crate::kernel::clock;

mod batch;
pub(crate) mod links;
#[cfg(test)]
mod tests;

use super::automation;
use crate::kernel::values::TagStatus;
use links::{Attribution, Links};

impl<'a> Customers<'a> {
    /// Puts `tag` on the customer (replacing the other tag of an exclusive group) and returns
    /// the customer's tags. Adding a tag that is already there changes nothing.
    #[tracing::instrument(skip_all, fields(tenant = %self.viewer.tenant, customer = %id, tag = %tag))]
    pub async fn add_tag(
        &self,
        id: CustomerId,
        tag: TagId,
        note: Option<String>,
    ) -> DomainResult<Vec<CustomerTag>> {
        retry::retrying("customers.add_tag", || {
            self.add_tag_once(id, tag, note.clone())
        })
        .await?;
        Ok(self.get(id).await?.tags)
    }

    async fn add_tag_once(
        &self,
        id: CustomerId,
        tag: TagId,
        note: Option<String>,
    ) -> DomainResult<()> {
        let txn = self.db.begin().await?;
        self.lock(&txn, id).await?;
        let mut issues = Vec::new();
        let tags = self
            .assignable_tags(&txn, &[tag], "tag_id", &mut issues)
            .await?;
        if let Some(issue) = issues.pop() {
            let code = if issue.code == "archived" {
                ErrorCode::TagArchived
            } else {
                ErrorCode::ValidationFailed
            };
            return Err(DomainError::Rejected {
                code,
                issues: vec![FieldIssue {
                    field: "tag_id".into(),
                    ..issue
                }],
            });
        }
        let note = note.map(|n| n.trim().to_owned()).filter(|n| !n.is_empty());
        let added = self
            .attach_all(
                &txn,
                id,
                &tags,
                TagSource::Manual,
                None,
                note.as_deref(),
                false,
            )
            .await?;
        if added > 0 {
            self.touch(&txn, id).await?;
            automation::react(&txn, self.tenant(), id, clock::now()).await?;
            data_version::bump_for(&txn, self.tenant(), &[id.0]).await?;
        }
        txn.commit().await?;
        Ok(())
    }

    #[tracing::instrument(skip_all, fields(tenant = %self.viewer.tenant, customer = %id, tag = %tag))]
    pub async fn remove_tag(
        &self,
        id: CustomerId,
        tag: TagId,
        note: Option<String>,
    ) -> DomainResult<()> {
        retry::retrying("customers.remove_tag", || {
            self.remove_tag_once(id, tag, note.clone())
        })
        .await
    }

    async fn remove_tag_once(
        &self,
        id: CustomerId,
        tag: TagId,
        note: Option<String>,
    ) -> DomainResult<()> {
        let txn = self.db.begin().await?;
        self.lock(&txn, id).await?;
        let note = note.map(|n| n.trim().to_owned()).filter(|n| !n.is_empty());
        let removed = links::remove(
            &txn,
            self.tenant(),
            Links::OfCustomer {
                customer: id.0,
                tags: &[tag.0],
            },
            self.by(TagSource::Manual, None, note.as_deref()),
            clock::now(),
        )
        .await?;
        if removed.is_empty() {
            return Err(DomainError::NotFound("tag on this customer"));
        }
        let now = clock::now();
        if automation::has_rules(&txn, self.tenant()).await? {
            links::veto(&txn, self.tenant(), &removed, self.actor.staff_id(), now).await?;
        }
        automation::react(&txn, self.tenant(), id, now).await?;
        self.touch(&txn, id).await?;
        data_version::bump_for(&txn, self.tenant(), &[id.0]).await?;
        txn.commit().await?;
        Ok(())
    }

    /// The customer's tag changes, newest first; `before` is the id of the last entry seen.
    #[tracing::instrument(skip_all, fields(tenant = %self.viewer.tenant, customer = %id))]
    pub async fn tag_history(
        &self,
        id: CustomerId,
        limit: u64,
        before: Option<i64>,
    ) -> DomainResult<(Vec<TagHistoryEntry>, Option<i64>)> {
        self.get(id).await?;
        let mut query = tag_history::Entity::find()
            .filter(tag_history::Column::TenantId.eq(self.tenant().0))
            .filter(tag_history::Column::CustomerId.eq(id.0));
        if let Some(before) = before {
            query = query.filter(tag_history::Column::Id.lt(before));
        }
        let mut rows = query
            .order_by_desc(tag_history::Column::Id)
            .limit(limit + 1)
            .all(self.db)
            .await?;
        let more = rows.len() as u64 > limit;
        rows.truncate(usize::try_from(limit).unwrap_or(usize::MAX));
        let names: HashMap<TagId, String> = tag::Entity::find()
            .filter(tag::Column::TenantId.eq(self.tenant().0))
            .filter(tag::Column::Id.is_in(rows.iter().map(|r| r.tag_id)))
            .all(self.db)
            .await?
            .into_iter()
            .map(|t| (t.id, t.name))
            .collect();
        let next = if more {
            rows.last().map(|r| r.id)
        } else {
            None
        };
        let items = rows
            .into_iter()
            .map(|r| TagHistoryEntry {
                id: r.id,
                tag_id: r.tag_id,
                tag_name: names.get(&r.tag_id).cloned().unwrap_or_default(),
                action: r.action.as_str(),
                source: r.source,
                actor_id: r.actor_id,
                note: r.note,
                reason: r.reason,
                rule_id: r.rule_id,
                rule_version: r.rule_version,
                created_at: r.created_at,
            })
            .collect();
        Ok((items, next))
    }

    /// The tags of this tenant among `ids`, recording unknown ones, archived ones and two tags of
    /// one exclusive group as issues on `field[i]` (or `field` itself for a single id).
    pub(crate) async fn assignable_tags(
        &self,
        txn: &DatabaseTransaction,
        ids: &[TagId],
        field: &str,
        issues: &mut Vec<FieldIssue>,
    ) -> DomainResult<Vec<Assignable>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        // Each tag with its group's exclusive flag, in one statement.
        let rows: Vec<(i64, i64, String, TagStatus, bool)> = tag::Entity::find()
            .select_only()
            .columns([
                tag::Column::Id,
                tag::Column::GroupId,
                tag::Column::Name,
                tag::Column::Status,
            ])
            .column(tag_group::Column::Exclusive)
            .join(
                JoinType::InnerJoin,
                tag::Entity::belongs_to(tag_group::Entity)
                    .from(tag::Column::GroupId)
                    .to(tag_group::Column::Id)
                    .into(),
            )
            .filter(tag::Column::TenantId.eq(self.tenant().0))
            .filter(tag::Column::Id.is_in(ids.iter().map(|t| t.0)))
            .into_tuple()
            .all(txn)
            .await?;
        let mut out: Vec<Assignable> = Vec::new();
        for (i, id) in ids.iter().enumerate() {
            let path = if ids.len() == 1 && field == "tag_id" {
                field.to_owned()
            } else {
                format!("{field}[{i}]")
            };
            match rows.iter().find(|(tag, ..)| *tag == id.0) {
                None => issues.push(FieldIssue::new(path, "unknown_tag", "no such tag")),
                Some((_, _, name, status, _)) if *status != TagStatus::Active => {
                    issues.push(FieldIssue::new(
                        path,
                        "archived",
                        format!("the tag \"{name}\" is archived and cannot be assigned"),
                    ));
                }
                Some(&(tag, group_id, _, _, exclusive)) => {
                    if exclusive && out.iter().any(|o| o.group_id == group_id && o.id != tag) {
                        issues.push(FieldIssue::new(
                            path,
                            "exclusive",
                            "two tags of one exclusive group",
                        ));
                    } else if !out.iter().any(|o| o.id == tag) {
                        out.push(Assignable {
                            id: tag,
                            group_id,
                            exclusive,
                        });
                    }
                }
            }
        }
        Ok(out)
    }

    /// The tags of this tenant among `ids` (archived ones included), for removal.
    pub(super) async fn known_tags(
        &self,
        txn: &DatabaseTransaction,
        ids: &[TagId],
        field: &str,
        issues: &mut Vec<FieldIssue>,
    ) -> DomainResult<Vec<i64>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let known: HashSet<i64> = tag::Entity::find()
            .select_only()
            .column(tag::Column::Id)
            .filter(tag::Column::TenantId.eq(self.tenant().0))
            .filter(tag::Column::Id.is_in(ids.iter().map(|t| t.0)))
            .into_tuple::<i64>()
            .all(txn)
            .await?
            .into_iter()
            .collect();
        let mut out = Vec::new();
        for (i, id) in ids.iter().enumerate() {
            if known.contains(&id.0) {
                if !out.contains(&id.0) {
                    out.push(id.0);
                }
            } else {
                issues.push(FieldIssue::new(
                    format!("{field}[{i}]"),
                    "unknown_tag",
                    "no such tag",
                ));
            }
        }
        Ok(out)
    }

    /// Links `tags` to one customer in a few statements, whatever their number: each tag the
    /// customer lacks is added, first unlinking the other tags of its group when the group is
    /// exclusive, and every change gets its history row. `fresh` says the customer was created
    /// in this transaction and carries no tag yet, which saves looking. Returns how many tags
    /// were added.
    ///
    /// Long because the exclusive-group rules and the writes of one customer belong together.
    #[allow(clippy::too_many_arguments)]
    pub(crate) async fn attach_all(
        &self,
        txn: &DatabaseTransaction,
        id: CustomerId,
        tags: &[Assignable],
        source: TagSource,
        reason: Option<&str>,
        note: Option<&str>,
        fresh: bool,
    ) -> DomainResult<usize> {
        if tags.is_empty() {
            return Ok(0);
        }
        // (tag, group, source) of every tag the customer carries now.
        let current: Vec<(i64, i64, TagSource)> = if fresh {
            Vec::new()
        } else {
            customer_tag::Entity::find()
                .select_only()
                .column(customer_tag::Column::TagId)
                .column(tag::Column::GroupId)
                .column(customer_tag::Column::Source)
                .join(
                    JoinType::InnerJoin,
                    customer_tag::Entity::belongs_to(tag::Entity)
                        .from(customer_tag::Column::TagId)
                        .to(tag::Column::Id)
                        .into(),
                )
                .filter(customer_tag::Column::CustomerId.eq(id.0))
                .into_tuple()
                .all(txn)
                .await?
        };
        let mut added: Vec<i64> = Vec::new();
        let mut removed: Vec<i64> = Vec::new();
        // Tags a person gives that an automatic source had given: they become the person's.
        let mut adopted: Vec<i64> = Vec::new();
        for tag in tags {
            if let Some((.., held)) = current.iter().find(|(t, ..)| *t == tag.id) {
                if held.is_automatic() && !source.is_automatic() && !adopted.contains(&tag.id) {
                    adopted.push(tag.id);
                }
                continue;
            }
            if added.contains(&tag.id) {
                continue;
            }
            if tag.exclusive {
                let in_group = || {
                    current
                        .iter()
                        .filter(|(_, group, _)| *group == tag.group_id)
                };
                // A person's choice in an exclusive group stands against automatic sources.
                let chosen = in_group().any(|(.., s)| !s.is_automatic());
                if source.is_automatic() && chosen {
                    continue;
                }
                for (other, ..) in in_group() {
                    if !removed.contains(other) {
                        removed.push(*other);
                    }
                }
            }
            added.push(tag.id);
        }
        if added.is_empty() && removed.is_empty() && adopted.is_empty() {
            return Ok(0);
        }
        let now = clock::now();
        let by = self.by(source, reason, note);
        links::adopt(
            txn,
            self.tenant(),
            Links::OfCustomer {
                customer: id.0,
                tags: &adopted,
            },
            by,
            now,
        )
        .await?;
        links::remove(
            txn,
            self.tenant(),
            Links::OfCustomer {
                customer: id.0,
                tags: &removed,
            },
            by,
            now,
        )
        .await?;
        links::add(
            txn,
            self.tenant(),
            Links::OfCustomer {
                customer: id.0,
                tags: &added,
            },
            by,
            now,
        )
        .await?;
        Ok(added.len() + adopted.len())
    }

    /// Who the changes of this service are attributed to.
    pub(super) fn by<'b>(
        &self,
        source: TagSource,
        reason: Option<&'b str>,
        note: Option<&'b str>,
    ) -> Attribution<'b> {
        Attribution {
            source,
            reason,
            note,
            actor: self.actor.staff_id(),
            rule: None,
        }
    }
}
