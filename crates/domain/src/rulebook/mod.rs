//! The tenant's tagging rules: create, read, change and delete them (admins and managers).
//! A rule is checked on save against the tenant's vocabulary (fields, tags, groups, stages,
//! staff)
//! with every fault at its JSON pointer, and refused when it would make rules read each
//! other's tags in a circle. Editing the condition or the actions makes a new version.
//! Disabling or deleting a rule takes its tags off the customers carrying them (the rules
//! engine evaluates each of them again, so a tag another rule wants stays).
//!
//! Owns `rules` and `rule_owner_turns` (whose turns the rules engine takes); rule states and
//! tag links change only through the rules engine.

use chrono::{DateTime, Utc};

use crate::kernel::clock;
use std::collections::HashMap;

use sea_orm::sea_query::{Expr, OnConflict};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseConnection, DatabaseTransaction,
    EntityTrait, QueryFilter, QueryOrder, QuerySelect, Set, TransactionTrait,
};
use serde::Serialize;
use serde_json::Value;

use crate::access::StaffActor;
use crate::access::Viewer;
use crate::access::policy::{self, Action};
use crate::customers::automation::jobs::{self, JobKind, RuleJob};
pub use crate::customers::automation::preview::{Preview, TagEffect};
use crate::customers::automation::{self, RuleChange};
use crate::kernel::error::{DomainError, DomainResult, ErrorCode, FieldIssue, Step};
use crate::kernel::ids::{CustomerId, RuleId, StaffId, TagId, TenantId};
use crate::kernel::names::checked_unique_name;
use crate::kernel::tagging::TagSource;
use crate::library::custom_fields;
use crate::rules::validate::{self, Vocabulary};
use crate::rules::{self, DEFAULT_STAGES, Rule};
use crate::store::entities::{
    customer, customer_tag, rule, rule_owner_turn, rule_state, rule_version, staff, tag_group,
    tenant,
};
use crate::support::audit::{self, AuditEntry};
use crate::support::{config_version, data_version};

pub mod templates;

/// A saved rule, and the backfill its save queued (a rule enabled, created, or changed).
#[derive(Debug, Clone)]
pub struct Saved {
    pub rule: Rule,
    pub backfill_job_id: Option<i64>,
    /// For a rule disabled by the save: the tags its customers lost or kept.
    pub tags: Option<TagsRemoved>,
}

/// Longest rule name, in characters.
pub const NAME_MAX: usize = 64;
/// Priorities run from -1000 to 1000; higher runs first.
pub const PRIORITY_RANGE: std::ops::RangeInclusive<i32> = -1_000..=1_000;
/// Customers evaluated again per transaction after a rule changes.
const REEVALUATE_CHUNK: usize = 100;

/// A rule as a client writes it; the condition and actions are JSON, checked on save.
#[derive(Debug, Clone)]
pub struct RuleDraft {
    pub name: String,
    pub priority: i32,
    pub enabled: bool,
    /// `null`: the rule applies to every customer.
    pub condition: Value,
    pub actions: Value,
}

/// A partial change: `None` leaves a part alone.
#[derive(Debug, Clone, Default)]
pub struct RulePatch {
    pub name: Option<String>,
    pub priority: Option<i32>,
    pub enabled: Option<bool>,
    pub condition: Option<Value>,
    pub actions: Option<Value>,
    /// With `enabled: false`: the rule's tags stay on its customers as manual tags.
    pub keep_tags: bool,
}

/// How many customers lost each tag when a rule went (or was disabled), and how many kept
/// it as a manual tag (`keep_tags`).
#[derive(Debug, Clone, Default, Serialize)]
pub struct TagsRemoved {
    pub tags: Vec<TagCount>,
    pub kept: Vec<TagCount>,
}

/// A version of a rule as it was saved.
#[derive(Debug, Clone, Serialize)]
pub struct RuleVersion {
    pub version: i32,
    pub name: String,
    pub priority: i32,
    pub condition: Option<rules::Condition>,
    pub actions: Vec<rules::RuleAction>,
    pub created_by: Option<StaffId>,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Serialize)]
pub struct TagCount {
    pub tag_id: TagId,
    pub customers: u64,
}

/// Refuses rules that would read each other's tags in a circle.
fn circle_free(enabled: &[Rule], vocabulary: &Vocabulary) -> DomainResult<()> {
    match rules::graph::order(enabled, &|t| vocabulary.tags.get(&t).copied()) {
        Ok(_) => Ok(()),
        Err(circle) => Err(DomainError::Rejected {
            code: ErrorCode::RuleCycle,
            issues: vec![FieldIssue::new(
                "/condition",
                "cycle",
                format!(
                    "these rules would read each other's tags in a circle: {}",
                    circle.join(" → ")
                ),
            )],
        }),
    }
}

/// A rule to preview: new (no `rule_id`), or changes to an existing one.
#[derive(Debug, Clone, Default)]
pub struct PreviewDraft {
    pub rule_id: Option<RuleId>,
    pub priority: Option<i32>,
    pub enabled: Option<bool>,
    pub condition: Option<Value>,
    pub actions: Option<Value>,
    /// With `enabled: false`: preview disabling with `keep_tags`.
    pub keep_tags: bool,
}

/// The tags rule `id` took off (from the evaluations after it went) and those kept.
fn tag_counts(id: RuleId, changes: &[RuleChange], kept: Vec<(TagId, u64)>) -> TagsRemoved {
    let mut counts: HashMap<TagId, u64> = HashMap::new();
    for change in changes.iter().filter(|c| !c.added && c.rule_id == id) {
        *counts.entry(change.tag_id).or_default() += 1;
    }
    let mut tags: Vec<TagCount> = counts
        .into_iter()
        .map(|(tag_id, customers)| TagCount { tag_id, customers })
        .collect();
    tags.sort_by_key(|t| t.tag_id);
    TagsRemoved {
        tags,
        kept: kept
            .into_iter()
            .map(|(tag_id, customers)| TagCount { tag_id, customers })
            .collect(),
    }
}

/// The rules of one tenant, for one staff member.
pub struct RuleBook<'a> {
    db: &'a DatabaseConnection,
    staff: StaffActor,
}

/// The tenant's project stages (its own list, or the default one).
pub async fn stages<C: ConnectionTrait>(conn: &C, tenant: TenantId) -> DomainResult<Vec<String>> {
    let stored: Option<Option<crate::kernel::values::StageList>> =
        tenant::Entity::find_by_id(tenant)
            .select_only()
            .column(tenant::Column::ProjectStages)
            .into_tuple()
            .one(conn)
            .await?;
    Ok(match stored.flatten() {
        Some(list) if !list.0.is_empty() => list.0,
        _ => DEFAULT_STAGES.iter().map(|s| (*s).to_owned()).collect(),
    })
}

/// The words the tenant's rules may use.
pub async fn vocabulary<C: ConnectionTrait>(
    conn: &C,
    tenant: TenantId,
) -> DomainResult<Vocabulary> {
    let tags = automation::tag_infos(conn, tenant).await?;
    let groups: HashMap<_, _> = tag_group::Entity::find()
        .filter(tag_group::Column::TenantId.eq(tenant.0))
        .all(conn)
        .await?
        .into_iter()
        .map(|g| (g.id, g.exclusive))
        .collect();
    Ok(Vocabulary {
        custom_fields: custom_fields::list(conn, tenant).await?,
        tags,
        groups,
        stages: stages(conn, tenant).await?,
        staff: staff::Entity::find()
            .select_only()
            .column(staff::Column::Id)
            .filter(staff::Column::TenantId.eq(tenant.0))
            .filter(staff::Column::Active.eq(true))
            .into_tuple::<StaffId>()
            .all(conn)
            .await?
            .into_iter()
            .collect(),
    })
}

impl<'a> RuleBook<'a> {
    pub fn new(db: &'a DatabaseConnection, staff: &StaffActor) -> Self {
        RuleBook { db, staff: *staff }
    }

    fn tenant(&self) -> TenantId {
        self.staff.tenant
    }

    fn permitted(&self) -> DomainResult<()> {
        policy::permit(&self.staff, Action::ManageRules)
            .map_err(|refusal| DomainError::Forbidden(refusal.to_string()))
    }

    /// Every rule of the tenant, highest priority first.
    pub async fn list(&self) -> DomainResult<Vec<Rule>> {
        self.permitted()?;
        automation::load_rules(self.db, self.tenant(), false).await
    }

    pub async fn get(&self, id: RuleId) -> DomainResult<Rule> {
        self.permitted()?;
        self.find(self.db, id).await.and_then(automation::read_rule)
    }

    async fn find<C: ConnectionTrait>(&self, conn: &C, id: RuleId) -> DomainResult<rule::Model> {
        rule::Entity::find_by_id(id)
            .filter(rule::Column::TenantId.eq(self.tenant().0))
            .one(conn)
            .await?
            .ok_or(DomainError::NotFound("rule"))
    }

    /// Checks a whole rule; `except` is the rule being changed (for the name and the circle).
    ///
    /// `kept`: the stored condition and actions when a change leaves both alone; they are
    /// not checked again, so that a rule naming a tag archived since can still be renamed,
    /// reprioritised or disabled.
    async fn check<C: ConnectionTrait>(
        &self,
        conn: &C,
        draft: &RuleDraft,
        except: Option<RuleId>,
        kept: Option<validate::Checked>,
    ) -> DomainResult<(String, String, validate::Checked)> {
        // Saving rules of a tenant one at a time keeps the circle check true: the version
        // row is locked until the commit.
        config_version::bump(conn, self.tenant()).await?;
        let mut issues = Vec::new();
        let (name, key) = checked_unique_name("/name", &draft.name, NAME_MAX)
            .map_err(|issue| issues.push(issue))
            .unwrap_or_default();
        if !PRIORITY_RANGE.contains(&draft.priority) {
            issues.push(FieldIssue::new(
                "/priority",
                "range",
                format!(
                    "from {} to {}",
                    PRIORITY_RANGE.start(),
                    PRIORITY_RANGE.end()
                ),
            ));
        }
        let vocabulary = vocabulary(conn, self.tenant()).await?;
        let checked = match kept {
            Some(kept) => Some(kept),
            None => {
                validate::check_rule(&vocabulary, &draft.condition, &draft.actions, &mut issues)
            }
        };
        let Some(checked) = checked.filter(|_| issues.is_empty()) else {
            return Err(DomainError::Rejected {
                code: ErrorCode::ValidationFailed,
                issues,
            });
        };
        if let Some(holder) = rule::Entity::find()
            .filter(rule::Column::TenantId.eq(self.tenant().0))
            .filter(rule::Column::NameKey.eq(key.clone()))
            .one(conn)
            .await?
            .filter(|r| Some(r.id) != except)
        {
            return Err(DomainError::Taken {
                code: ErrorCode::RuleNameTaken,
                detail: format!(
                    "the rule \"{}\" (id {}) already has this name",
                    holder.name, holder.id
                ),
                existing_id: Some(holder.id.0),
            });
        }
        if draft.enabled {
            let mut enabled: Vec<Rule> = automation::load_rules(conn, self.tenant(), true)
                .await?
                .into_iter()
                .filter(|r| Some(r.id) != except)
                .collect();
            enabled.push(Rule {
                id: except.unwrap_or(RuleId(i64::MAX)),
                name: name.clone(),
                priority: draft.priority,
                enabled: true,
                version: 1,
                condition: checked.condition.clone(),
                actions: checked.actions.clone(),
                created_at: clock::now(),
                updated_at: clock::now(),
            });
            circle_free(&enabled, &vocabulary)?;
        }
        Ok((name, key, checked))
    }

    /// What saving `draft` would do to the tags of the customers the caller sees, writing
    /// nothing: a new rule (no `rule_id`), or changes to rule `rule_id` (`enabled: false`
    /// previews disabling it). Checked like a save, circles included.
    #[tracing::instrument(skip_all, fields(tenant = %self.staff.tenant))]
    pub async fn preview(&self, draft: PreviewDraft) -> DomainResult<Preview> {
        self.permitted()?;
        let existing = match draft.rule_id {
            Some(id) => Some(automation::read_rule(self.find(self.db, id).await?)?),
            None => None,
        };
        let mut issues = Vec::new();
        let priority = draft
            .priority
            .or(existing.as_ref().map(|r| r.priority))
            .unwrap_or(0);
        if !PRIORITY_RANGE.contains(&priority) {
            issues.push(FieldIssue::new(
                "/priority",
                "range",
                format!(
                    "from {} to {}",
                    PRIORITY_RANGE.start(),
                    PRIORITY_RANGE.end()
                ),
            ));
        }
        let vocabulary = vocabulary(self.db, self.tenant()).await?;
        let stored = |value: Option<Value>, of: &dyn Fn(&Rule) -> Value| {
            value
                .or_else(|| existing.as_ref().map(of))
                .unwrap_or(Value::Null)
        };
        let unchanged = draft.condition.is_none() && draft.actions.is_none();
        let condition = stored(draft.condition, &|r| {
            serde_json::to_value(&r.condition).unwrap_or(Value::Null)
        });
        let actions = stored(draft.actions, &|r| {
            serde_json::to_value(&r.actions).unwrap_or(Value::Null)
        });
        // Only the priority or the switch changes: the saved rule stands as it is (as a save
        // keeps it, archived tags and all).
        let checked = match (&existing, unchanged) {
            (Some(rule), true) => Some(validate::Checked {
                condition: rule.condition.clone(),
                actions: rule.actions.clone(),
            }),
            _ => validate::check_rule(&vocabulary, &condition, &actions, &mut issues),
        };
        let Some(checked) = checked.filter(|_| issues.is_empty()) else {
            return Err(DomainError::Rejected {
                code: ErrorCode::ValidationFailed,
                issues,
            });
        };
        let enabled = draft
            .enabled
            .or(existing.as_ref().map(|r| r.enabled))
            .unwrap_or(true);
        let id = draft.rule_id.unwrap_or(RuleId(i64::MAX));
        let mut rules: Vec<Rule> = automation::load_rules(self.db, self.tenant(), true)
            .await?
            .into_iter()
            .filter(|r| r.id != id)
            .collect();
        if enabled {
            let now = clock::now();
            rules.push(Rule {
                id,
                name: existing
                    .as_ref()
                    .map_or_else(|| "preview".to_owned(), |r| r.name.clone()),
                priority,
                enabled: true,
                version: existing.as_ref().map_or(1, |r| r.version + 1),
                condition: checked.condition,
                actions: checked.actions,
                created_at: now,
                updated_at: now,
            });
            circle_free(&rules, &vocabulary)?;
        }
        // Disabled with `keep_tags`, the rule's links would be a person's.
        let kept = (!enabled && draft.keep_tags).then_some(id);
        automation::preview::preview(self.db, &Viewer::of(&self.staff), rules, kept, clock::now())
            .await
    }

    /// Creates a rule; an enabled one is backfilled over the tenant's customers in the
    /// background.
    #[tracing::instrument(skip_all, fields(tenant = %self.staff.tenant))]
    pub async fn create(&self, draft: RuleDraft) -> DomainResult<Saved> {
        self.permitted()?;
        let txn = self.db.begin().await?;
        let (name, key, checked) = self.check(&txn, &draft, None, None).await?;
        let now = clock::now();
        let model = rule::ActiveModel {
            tenant_id: Set(self.tenant()),
            name: Set(name),
            name_key: Set(key),
            priority: Set(draft.priority),
            enabled: Set(draft.enabled),
            version: Set(1),
            condition: Set(to_json(&checked.condition)),
            actions: Set(to_json(&checked.actions)),
            created_by: Set(Some(self.staff.id)),
            created_at: Set(now),
            updated_at: Set(now),
            ..Default::default()
        }
        .insert(&txn)
        .await
        .step("saving the rule")?;
        self.keep_turns(&txn, model.id).await?;
        self.record_version(&txn, &model).await?;
        let backfill_job_id = match model.enabled {
            true => Some(
                jobs::queue_backfill(&txn, self.tenant(), model.id, Some(self.staff.id), now)
                    .await?,
            ),
            false => None,
        };
        self.audit(
            &txn,
            "rule.created",
            model.id,
            serde_json::json!({"version": 1}),
        )
        .await?;
        txn.commit().await?;
        Ok(Saved {
            rule: automation::read_rule(model)?,
            backfill_job_id,
            tags: None,
        })
    }

    /// Changes a rule. A change of the condition or the actions makes a new version; the
    /// customers carrying the rule's tags are evaluated again.
    #[tracing::instrument(skip_all, fields(tenant = %self.staff.tenant, rule = %id))]
    pub async fn update(&self, id: RuleId, patch: RulePatch) -> DomainResult<Saved> {
        self.permitted()?;
        let txn = self.db.begin().await?;
        let current = self.find(&txn, id).await?;
        let stored = automation::read_rule(current.clone())?;
        let draft =
            RuleDraft {
                name: patch.name.clone().unwrap_or_else(|| current.name.clone()),
                priority: patch.priority.unwrap_or(current.priority),
                enabled: patch.enabled.unwrap_or(current.enabled),
                condition: patch.condition.clone().unwrap_or_else(|| {
                    serde_json::to_value(&stored.condition).unwrap_or(Value::Null)
                }),
                actions: patch.actions.clone().unwrap_or_else(|| {
                    serde_json::to_value(&stored.actions).unwrap_or(Value::Null)
                }),
            };
        let kept =
            (patch.condition.is_none() && patch.actions.is_none()).then(|| validate::Checked {
                condition: stored.condition.clone(),
                actions: stored.actions.clone(),
            });
        let (name, key, checked) = self.check(&txn, &draft, Some(id), kept).await?;
        let (condition, actions) = (to_json(&checked.condition), to_json(&checked.actions));
        let changed = condition != current.condition || actions != current.actions;
        let version = if changed {
            current.version + 1
        } else {
            current.version
        };
        // A rule that now holds for other customers than before reaches them all.
        let broadened = draft.enabled && (changed || !current.enabled);
        let was_enabled = current.enabled;
        let mut active: rule::ActiveModel = current.into();
        active.name = Set(name);
        active.name_key = Set(key);
        active.priority = Set(draft.priority);
        active.enabled = Set(draft.enabled);
        active.condition = Set(condition);
        active.actions = Set(actions);
        active.version = Set(version);
        active.updated_at = Set(clock::now());
        let model = active.update(&txn).await.step("saving the rule")?;
        self.keep_turns(&txn, model.id).await?;
        if changed {
            self.record_version(&txn, &model).await?;
        }
        // Disabled with `keep_tags`: the rule's links become the caller's manual tags first,
        // so the evaluation below has none of the rule's left to take off.
        let disabled = was_enabled && !draft.enabled;
        let kept = match disabled && patch.keep_tags {
            true => self.keep_tags(&txn, &model, "disabled").await?,
            false => Vec::new(),
        };
        let backfill_job_id = match broadened {
            true => Some(
                jobs::queue_backfill(&txn, self.tenant(), id, Some(self.staff.id), clock::now())
                    .await?,
            ),
            false => None,
        };
        self.audit(
            &txn,
            "rule.updated",
            id,
            serde_json::json!({"version": version}),
        )
        .await?;
        txn.commit().await?;
        let changes = self.reevaluate(id).await?;
        if !draft.enabled {
            // A disabled rule holds for nobody: enabled again, it starts from "false", so its
            // tasks come on the next transition.
            rule_state::Entity::delete_many()
                .filter(rule_state::Column::RuleId.eq(id.0))
                .exec(self.db)
                .await?;
        }
        Ok(Saved {
            rule: automation::read_rule(model)?,
            backfill_job_id,
            tags: disabled.then(|| tag_counts(id, &changes, kept)),
        })
    }

    /// Every version of a rule, newest first.
    pub async fn versions(&self, id: RuleId) -> DomainResult<Vec<RuleVersion>> {
        self.permitted()?;
        self.find(self.db, id).await?;
        rule_version::Entity::find()
            .filter(rule_version::Column::RuleId.eq(id.0))
            .filter(rule_version::Column::TenantId.eq(self.tenant().0))
            .order_by_desc(rule_version::Column::Version)
            .all(self.db)
            .await?
            .into_iter()
            .map(|v| {
                let unreadable = |e: serde_json::Error| {
                    DomainError::from(sea_orm::DbErr::Json(format!(
                        "unreadable version {} of rule {}: {e}",
                        v.version, v.rule_id
                    )))
                };
                Ok(RuleVersion {
                    version: v.version,
                    name: v.name.clone(),
                    priority: v.priority,
                    condition: serde_json::from_str(&v.condition).map_err(unreadable)?,
                    actions: serde_json::from_str(&v.actions).map_err(unreadable)?,
                    created_by: v.created_by,
                    created_at: v.created_at,
                })
            })
            .collect()
    }

    /// Makes the links rule `rule` holds the caller's manual tags (`keep_tags`), noting that
    /// the rule was `gone` ("disabled", "deleted"); returns how many customers keep each tag.
    async fn keep_tags(
        &self,
        txn: &DatabaseTransaction,
        rule: &rule::Model,
        gone: &str,
    ) -> DomainResult<Vec<(TagId, u64)>> {
        let note = format!("kept when rule \"{}\" was {gone}", rule.name);
        automation::keep_rule_tags(
            txn,
            self.tenant(),
            rule.id,
            self.staff.id,
            &note,
            clock::now(),
        )
        .await
    }

    /// Keeps the saved version of a rule (the first, or one a change made).
    async fn record_version(
        &self,
        txn: &DatabaseTransaction,
        model: &rule::Model,
    ) -> DomainResult<()> {
        rule_version::Entity::insert(rule_version::ActiveModel {
            rule_id: Set(model.id),
            version: Set(model.version),
            tenant_id: Set(model.tenant_id),
            name: Set(model.name.clone()),
            priority: Set(model.priority),
            condition: Set(model.condition.clone()),
            actions: Set(model.actions.clone()),
            created_by: Set(Some(self.staff.id)),
            created_at: Set(model.updated_at),
        })
        .exec_without_returning(txn)
        .await
        .step("keeping the rule's version")?;
        Ok(())
    }

    /// Queues a re-check of every customer of the tenant: the job reports what it corrected.
    #[tracing::instrument(skip_all, fields(tenant = %self.staff.tenant))]
    pub async fn recheck(&self) -> DomainResult<RuleJob> {
        self.permitted()?;
        let id = jobs::queue(
            self.db,
            self.tenant(),
            JobKind::Recheck,
            None,
            Some(self.staff.id),
            clock::now(),
        )
        .await?;
        jobs::job(self.db, self.tenant(), id).await
    }

    /// One of the tenant's rule jobs (backfills, re-checks) with its progress.
    pub async fn job(&self, id: i64) -> DomainResult<RuleJob> {
        self.permitted()?;
        jobs::job(self.db, self.tenant(), id).await
    }

    /// The tenant's latest 50 rule jobs, newest first.
    pub async fn jobs(&self) -> DomainResult<Vec<RuleJob>> {
        self.permitted()?;
        jobs::latest(self.db, self.tenant(), 50).await
    }

    /// Deletes a rule and takes its tags off the customers carrying them.
    #[tracing::instrument(skip_all, fields(tenant = %self.staff.tenant, rule = %id))]
    pub async fn delete(&self, id: RuleId, keep_tags: bool) -> DomainResult<TagsRemoved> {
        self.permitted()?;
        let txn = self.db.begin().await?;
        let current = self.find(&txn, id).await?;
        let kept = match keep_tags {
            true => self.keep_tags(&txn, &current, "deleted").await?,
            false => Vec::new(),
        };
        rule::Entity::delete_by_id(id).exec(&txn).await?;
        rule_version::Entity::delete_many()
            .filter(rule_version::Column::RuleId.eq(id.0))
            .exec(&txn)
            .await?;
        rule_owner_turn::Entity::delete_by_id(id).exec(&txn).await?;
        self.audit(&txn, "rule.deleted", id, Value::Null).await?;
        config_version::bump(&txn, self.tenant()).await?;
        txn.commit().await?;
        let changes = self.reevaluate(id).await?;
        rule_state::Entity::delete_many()
            .filter(rule_state::Column::RuleId.eq(id.0))
            .exec(self.db)
            .await?;
        Ok(tag_counts(id, &changes, kept))
    }

    /// The row that counts the rule's round-robin turns, should it assign owners by turns.
    async fn keep_turns(&self, txn: &DatabaseTransaction, id: RuleId) -> DomainResult<()> {
        rule_owner_turn::Entity::insert(rule_owner_turn::ActiveModel {
            rule_id: Set(id),
            tenant_id: Set(self.tenant().0),
            taken: Set(0),
        })
        .on_conflict(
            // Kept as it is when it exists (the tenant never changes).
            OnConflict::column(rule_owner_turn::Column::RuleId)
                .update_column(rule_owner_turn::Column::TenantId)
                .to_owned(),
        )
        .exec_without_returning(txn)
        .await
        .step("keeping the rule's owner turns")?;
        Ok(())
    }

    /// Evaluates again every customer carrying a tag of rule `id`, or whose state says the
    /// rule held, so that the rule's current definition (or its absence) is what they carry.
    /// Returns the changes made.
    async fn reevaluate(&self, id: RuleId) -> DomainResult<Vec<RuleChange>> {
        let mut customers: Vec<CustomerId> = customer_tag::Entity::find()
            .select_only()
            .column(customer_tag::Column::CustomerId)
            .filter(customer_tag::Column::TenantId.eq(self.tenant().0))
            .filter(customer_tag::Column::RuleId.eq(id.0))
            .filter(customer_tag::Column::Source.eq(TagSource::Rule))
            .into_tuple()
            .all(self.db)
            .await?;
        customers.extend(
            rule_state::Entity::find()
                .select_only()
                .column(rule_state::Column::CustomerId)
                .filter(rule_state::Column::RuleId.eq(id.0))
                .filter(rule_state::Column::Holds.eq(true))
                .into_tuple::<CustomerId>()
                .all(self.db)
                .await?,
        );
        customers.sort_unstable();
        customers.dedup();
        let mut changes = Vec::new();
        for chunk in customers.chunks(REEVALUATE_CHUNK) {
            let txn = self.db.begin().await?;
            let now = clock::now();
            // Lock in primary-key order, as batches do.
            let live: Vec<CustomerId> = customer::Entity::find()
                .select_only()
                .column(customer::Column::Id)
                .filter(customer::Column::TenantId.eq(self.tenant().0))
                .filter(customer::Column::Id.is_in(chunk.iter().map(|c| c.0)))
                .filter(customer::Column::DeletedAt.is_null())
                .lock_exclusive()
                .into_tuple()
                .all(&txn)
                .await?;
            let live: Vec<i64> = live.into_iter().map(|c: CustomerId| c.0).collect();
            let mut touched = Vec::new();
            for (customer, reaction) in
                automation::react_ids(&txn, self.tenant(), &live, now).await?
            {
                if !reaction.changes.is_empty() || reaction.owner.is_some() {
                    touched.push(customer.0);
                }
                changes.extend(reaction.changes);
            }
            if !touched.is_empty() {
                customer::Entity::update_many()
                    .col_expr(customer::Column::UpdatedAt, Expr::value(now))
                    .filter(customer::Column::Id.is_in(touched.iter().copied()))
                    .exec(&txn)
                    .await?;
                data_version::bump_for(&txn, self.tenant(), &touched).await?;
            }
            txn.commit().await?;
        }
        Ok(changes)
    }

    async fn audit<C: ConnectionTrait>(
        &self,
        conn: &C,
        action: &str,
        id: RuleId,
        details: Value,
    ) -> DomainResult<()> {
        audit::record(
            conn,
            AuditEntry {
                tenant_id: Some(self.tenant()),
                actor: audit::Actor::Staff(self.staff.id),
                action,
                target_type: "rule",
                target_id: Some(id.to_string()),
                details: (!details.is_null()).then_some(details),
            },
        )
        .await
    }
}

/// Plain data with string keys: serializing cannot fail.
fn to_json<T: Serialize>(value: &T) -> String {
    serde_json::to_string(value).unwrap_or_else(|_| "null".to_owned())
}
