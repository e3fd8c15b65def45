//! Batch tagging: adding and removing tags on up to [`BATCH_MAX_IDS`] customers, or on up to
//! [`BATCH_MAX_MATCHES`] matches of a filter, in one transaction (all or nothing).

use super::automation;
use super::*;
use crate::kernel::clock;

impl<'a> Customers<'a> {
    /// Adds and removes tags on many customers in one transaction: either every change is
    /// made or none is.
    #[tracing::instrument(skip_all, fields(tenant = %self.viewer.tenant, add = batch.add.len(), remove = batch.remove.len()))]
    pub async fn batch_tags(&self, batch: BatchTagging) -> DomainResult<BatchOutcome> {
        retry::retrying("customers.batch_tags", || {
            self.batch_tags_once(batch.clone())
        })
        .await
    }

    async fn batch_tags_once(&self, batch: BatchTagging) -> DomainResult<BatchOutcome> {
        let mut issues = Vec::new();
        let note = batch
            .note
            .map(|n| n.trim().to_owned())
            .filter(|n| !n.is_empty());
        // What to change and on whom is read in a transaction of its own, so that the writing
        // transaction starts with the customers' locks and (on MySQL) reads after them.
        let reads = self.db.begin().await?;
        let add = self
            .assignable_tags(&reads, &batch.add, "add", &mut issues)
            .await?;
        let remove = self
            .known_tags(&reads, &batch.remove, "remove", &mut issues)
            .await?;
        for (i, tag) in batch.remove.iter().enumerate() {
            if batch.add.contains(tag) {
                issues.push(FieldIssue::new(
                    format!("remove[{i}]"),
                    "contradictory",
                    "a tag cannot be added and removed at once",
                ));
            }
        }
        if !issues.is_empty() {
            let code = if issues.iter().any(|i| i.code == "archived") {
                ErrorCode::TagArchived
            } else {
                ErrorCode::ValidationFailed
            };
            return Err(DomainError::Rejected { code, issues });
        }
        let customers = self.batch_customers(&reads, &batch.target).await?;
        reads.commit().await?;
        let txn = self.db.begin().await?;
        // Lock the customers first, in primary-key order so concurrent batches queue instead
        // of deadlocking; a second batch on the same customers then sees the first one's links.
        for chunk in customers.chunks(CHUNK) {
            customer::Entity::find()
                .select_only()
                .column(customer::Column::Id)
                .filter(customer::Column::TenantId.eq(self.tenant().0))
                .filter(customer::Column::Id.is_in(chunk.iter().copied()))
                .order_by_asc(customer::Column::Id)
                .lock_exclusive()
                .into_tuple::<i64>()
                .all(&txn)
                .await?;
        }
        let mut outcome = BatchOutcome {
            matched: customers.len() as u64,
            added: 0,
            removed: 0,
        };
        for chunk in customers.chunks(CHUNK) {
            for tag in &remove {
                outcome.removed += self.detach_many(&txn, chunk, *tag, note.as_deref()).await?;
            }
            for tag in &add {
                outcome.added += self.attach_many(&txn, chunk, tag, note.as_deref()).await?;
            }
        }
        if outcome.added + outcome.removed > 0 {
            // The rules see the batch's tags: each customer is evaluated again.
            if automation::has_rules(&txn, self.tenant()).await? {
                automation::react_ids(&txn, self.tenant(), &customers, clock::now()).await?;
            }
            customer::Entity::update_many()
                .col_expr(customer::Column::UpdatedAt, Expr::value(clock::now()))
                .filter(customer::Column::TenantId.eq(self.tenant().0))
                .filter(customer::Column::Id.is_in(customers.iter().copied()))
                .exec(&txn)
                .await?;
            data_version::bump_for(&txn, self.tenant(), &customers).await?;
        }
        txn.commit().await?;
        Ok(outcome)
    }

    /// The customers a batch names (each must be visible) or its filter matches (at most
    /// [`BATCH_MAX_MATCHES`]), in primary-key order.
    async fn batch_customers(
        &self,
        txn: &DatabaseTransaction,
        target: &BatchTarget,
    ) -> DomainResult<Vec<i64>> {
        let mut issues = Vec::new();
        Ok(match target {
            BatchTarget::Ids(ids) if ids.len() > BATCH_MAX_IDS => {
                return Err(DomainError::field(
                    "customer_ids",
                    "length",
                    format!("at most {BATCH_MAX_IDS} customers per batch"),
                ));
            }
            BatchTarget::Ids(ids) => {
                let visible = self.visible_ids(txn, ids).await?;
                for (i, id) in ids.iter().enumerate() {
                    if !visible.contains(&id.0) {
                        issues.push(FieldIssue::new(
                            format!("customer_ids[{i}]"),
                            "unknown_customer",
                            "no such customer",
                        ));
                    }
                }
                if !issues.is_empty() {
                    return Err(rejected(issues));
                }
                let mut unique: Vec<i64> = ids.iter().map(|c| c.0).collect();
                unique.sort_unstable();
                unique.dedup();
                unique
            }
            BatchTarget::Filter(filter) => {
                let resolved =
                    search::resolve(txn, self.tenant(), filter)
                        .await
                        .map_err(|err| match err {
                            DomainError::Rejected { code, issues } => DomainError::Rejected {
                                code,
                                issues: issues
                                    .into_iter()
                                    .map(|i| FieldIssue {
                                        field: format!("filter.{}", i.field),
                                        ..i
                                    })
                                    .collect(),
                            },
                            other => other,
                        })?;
                let total = search::count(txn, &self.viewer, &resolved).await?;
                if total > BATCH_MAX_MATCHES {
                    return Err(DomainError::Rejected {
                        code: ErrorCode::TooManyCustomers,
                        issues: vec![FieldIssue::new(
                            "filter",
                            "too_many_customers",
                            format!(
                                "the filter matches {total} customers; a batch may change at most {BATCH_MAX_MATCHES}"
                            ),
                        )],
                    });
                }
                let mut ids = search::all_ids(txn, &self.viewer, &resolved).await?;
                ids.sort_unstable();
                ids
            }
        })
    }

    pub(super) async fn visible_ids(
        &self,
        txn: &DatabaseTransaction,
        ids: &[CustomerId],
    ) -> DomainResult<HashSet<i64>> {
        Ok(customer::Entity::find()
            .select_only()
            .column(customer::Column::Id)
            .filter(self.viewer.condition())
            .filter(customer::Column::DeletedAt.is_null())
            .filter(customer::Column::Id.is_in(ids.iter().map(|c| c.0)))
            .into_tuple::<i64>()
            .all(txn)
            .await?
            .into_iter()
            .collect())
    }

    /// The other tags of `tag`'s group.
    pub(super) async fn group_siblings(
        &self,
        txn: &DatabaseTransaction,
        tag: &Assignable,
    ) -> DomainResult<Vec<i64>> {
        Ok(tag::Entity::find()
            .select_only()
            .column(tag::Column::Id)
            .filter(tag::Column::TenantId.eq(self.tenant().0))
            .filter(tag::Column::GroupId.eq(tag.group_id))
            .filter(tag::Column::Id.ne(tag.id))
            .into_tuple::<i64>()
            .all(txn)
            .await?)
    }

    /// Links `tag` to every customer of `chunk` that lacks it; returns how many links were made.
    pub(super) async fn attach_many(
        &self,
        txn: &DatabaseTransaction,
        chunk: &[i64],
        tag: &Assignable,
        note: Option<&str>,
    ) -> DomainResult<u64> {
        if tag.exclusive {
            let siblings = self.group_siblings(txn, tag).await?;
            for sibling in siblings {
                self.detach_many(txn, chunk, sibling, note).await?;
            }
        }
        let have: HashMap<i64, TagSource> = customer_tag::Entity::find()
            .select_only()
            .column(customer_tag::Column::CustomerId)
            .column(customer_tag::Column::Source)
            .filter(customer_tag::Column::TagId.eq(tag.id))
            .filter(customer_tag::Column::CustomerId.is_in(chunk.iter().copied()))
            .into_tuple::<(i64, TagSource)>()
            .all(txn)
            .await?
            .into_iter()
            .collect();
        let missing: Vec<i64> = chunk
            .iter()
            .copied()
            .filter(|c| !have.contains_key(c))
            .collect();
        // A person's batch makes the automatic links of the tag theirs, as a single add does.
        let mut adopted: Vec<i64> = have
            .iter()
            .filter(|(_, source)| source.is_automatic())
            .map(|(customer, _)| *customer)
            .collect();
        adopted.sort_unstable();
        links::adopt(
            txn,
            self.tenant(),
            Links::OfTag {
                tag: tag.id,
                customers: &adopted,
            },
            self.by(TagSource::Manual, None, note),
            clock::now(),
        )
        .await?;
        links::add(
            txn,
            self.tenant(),
            Links::OfTag {
                tag: tag.id,
                customers: &missing,
            },
            self.by(TagSource::Manual, None, note),
            clock::now(),
        )
        .await?;
        Ok((missing.len() + adopted.len()) as u64)
    }

    /// Unlinks `tag` from the customers of `chunk` that carry it; returns how many.
    pub(super) async fn detach_many(
        &self,
        txn: &DatabaseTransaction,
        chunk: &[i64],
        tag: i64,
        note: Option<&str>,
    ) -> DomainResult<u64> {
        let now = clock::now();
        let removed = links::remove(
            txn,
            self.tenant(),
            Links::OfTag {
                tag,
                customers: chunk,
            },
            self.by(TagSource::Manual, None, note),
            now,
        )
        .await?;
        if automation::has_rules(txn, self.tenant()).await? {
            links::veto(txn, self.tenant(), &removed, self.actor.staff_id(), now).await?;
        }
        Ok(removed.len() as u64)
    }
}
