//! Customers: one record per person per tenant, their custom field values, and the tags they
//! carry with the history of every tag change.
//!
//! Every operation goes through [`Customers`], built for a [`Viewer`]: admins and managers see
//! the whole tenant, sales reps only the customers they own. A customer the viewer may not see
//! is reported exactly like a missing one.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Utc};
use sea_orm::sea_query::{Alias, Expr, ExprTrait, JoinType, Query};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseConnection, DatabaseTransaction,
    EntityTrait, QueryFilter, QueryOrder, QuerySelect, Set, TransactionTrait,
};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use unicode_normalization::UnicodeNormalization;

use crate::audit::{self, Actor, AuditEntry};
use crate::custom_fields::{self, CustomFieldDef};
use crate::data_version;
use crate::entities::{
    customer, customer_field_value, customer_tag, staff, tag, tag_group, tag_history,
};
use crate::error::{DomainError, DomainResult, FieldIssue};
use crate::ids::{CustomerId, StaffId, TagGroupId, TagId, TenantId};
use crate::names::checked_name;
use crate::search::{self, Filter};

/// Most tags given when creating a customer.
pub const INITIAL_TAGS_MAX: usize = 50;
/// Longest customer name, in characters.
pub const CUSTOMER_NAME_MAX: usize = 64;
/// Most customers one batch may name or match.
pub const BATCH_MAX_IDS: usize = 1_000;
pub const BATCH_MAX_MATCHES: u64 = 10_000;
/// Rows per statement when writing many rows.
const CHUNK: usize = 500;

/// Who is looking: the tenant, the staff member, and whether they see every customer.
#[derive(Debug, Clone, Copy)]
pub struct Viewer {
    pub tenant: TenantId,
    pub staff: StaffId,
    pub sees_all: bool,
}

/// A mainland China mobile number, valid by construction: eleven digits starting 13–19.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct PhoneNumber(String);

impl PhoneNumber {
    /// Accepts `13800138000`, `+86 138-0013-8000`, `0086 13800138000` and the like.
    /// Full-width digits and signs (`１３８…`, `＋８６`) are read as their ASCII forms.
    pub fn parse(raw: &str) -> Result<PhoneNumber, FieldIssue> {
        let digits: String = raw
            .nfkc()
            .filter(|c| !matches!(c, ' ' | '-' | '(' | ')'))
            .collect();
        let digits = digits.strip_prefix('+').unwrap_or(&digits);
        let digits = if digits.len() == 15 && digits.starts_with("0086") {
            &digits[4..]
        } else if digits.len() == 13 && digits.starts_with("86") {
            &digits[2..]
        } else {
            digits
        };
        let bytes = digits.as_bytes();
        let valid = bytes.len() == 11
            && bytes[0] == b'1'
            && (b'3'..=b'9').contains(&bytes[1])
            && bytes.iter().all(u8::is_ascii_digit);
        if valid {
            Ok(PhoneNumber(digits.to_owned()))
        } else {
            Err(FieldIssue::new(
                "phone",
                "phone",
                "must be a mainland China mobile number such as 13800138000",
            ))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Where a customer's tag came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TagSource {
    Manual,
    Api,
    Channel,
    Rule,
    Import,
}

impl TagSource {
    pub fn as_str(self) -> &'static str {
        match self {
            TagSource::Manual => "manual",
            TagSource::Api => "api",
            TagSource::Channel => "channel",
            TagSource::Rule => "rule",
            TagSource::Import => "import",
        }
    }

    /// Whether the system chose the tag on its own (a channel's default tags, later rules)
    /// rather than a person or a system acting for one. Automatic choices never replace a
    /// deliberate one in an exclusive group.
    pub fn is_automatic(self) -> bool {
        matches!(self, TagSource::Channel | TagSource::Rule)
    }

    fn parse(s: &str) -> TagSource {
        match s {
            "api" => TagSource::Api,
            "channel" => TagSource::Channel,
            "rule" => TagSource::Rule,
            "import" => TagSource::Import,
            _ => TagSource::Manual,
        }
    }
}

/// A tag on a customer, with why it is there.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CustomerTag {
    pub tag_id: TagId,
    pub name: String,
    pub color: String,
    pub group_id: TagGroupId,
    pub group_name: String,
    pub source: TagSource,
    pub reason: Option<String>,
    pub assigned_by: Option<StaffId>,
    pub assigned_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Customer {
    pub id: CustomerId,
    pub name: String,
    pub phone: Option<String>,
    pub company: Option<String>,
    pub industry: Option<String>,
    pub region: Option<String>,
    pub owner_id: Option<StaffId>,
    pub source_channel_id: Option<i64>,
    pub project_stage: Option<String>,
    pub custom_fields: Map<String, Value>,
    pub tags: Vec<CustomerTag>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub last_active_at: Option<DateTime<Utc>>,
    pub last_follow_up_at: Option<DateTime<Utc>>,
    pub last_order_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, Default)]
pub struct NewCustomer {
    pub name: String,
    pub phone: Option<String>,
    pub company: Option<String>,
    pub industry: Option<String>,
    pub region: Option<String>,
    pub owner_id: Option<StaffId>,
    pub project_stage: Option<String>,
    pub custom_fields: Map<String, Value>,
    pub tag_ids: Vec<TagId>,
}

/// A partial update: `None` leaves a field alone, `Some(None)` clears it.
#[derive(Debug, Clone, Default)]
pub struct CustomerPatch {
    pub name: Option<String>,
    pub phone: Option<Option<String>>,
    pub company: Option<Option<String>>,
    pub industry: Option<Option<String>>,
    pub region: Option<Option<String>>,
    pub owner_id: Option<Option<StaffId>>,
    pub project_stage: Option<Option<String>>,
    /// Keys given replace their values; a `null` value removes the key.
    pub custom_fields: Option<Map<String, Value>>,
}

#[derive(Debug, Clone, Serialize)]
pub struct TagHistoryEntry {
    pub id: i64,
    pub tag_id: TagId,
    pub tag_name: String,
    pub action: &'static str,
    pub source: TagSource,
    pub actor_id: Option<StaffId>,
    pub note: Option<String>,
    pub created_at: DateTime<Utc>,
}

/// Which customers a batch applies to.
#[derive(Debug, Clone)]
pub enum BatchTarget {
    Ids(Vec<CustomerId>),
    Filter(Box<Filter>),
}

#[derive(Debug, Clone)]
pub struct BatchTagging {
    pub add: Vec<TagId>,
    pub remove: Vec<TagId>,
    pub target: BatchTarget,
    pub note: Option<String>,
}

#[derive(Debug, Clone, Copy, Serialize)]
pub struct BatchOutcome {
    pub matched: u64,
    pub added: u64,
    pub removed: u64,
}

pub(crate) fn optional_text(
    field: &'static str,
    value: Option<String>,
    max: usize,
    issues: &mut Vec<FieldIssue>,
) -> Option<String> {
    let value = value.map(|v| v.trim().to_owned()).filter(|v| !v.is_empty());
    if value.as_ref().is_some_and(|v| v.chars().count() > max) {
        issues.push(FieldIssue::new(
            field,
            "length",
            format!("must be at most {max} characters"),
        ));
    }
    value
}

pub(crate) fn rejected(issues: Vec<FieldIssue>) -> DomainError {
    DomainError::Rejected {
        code: "validation_failed",
        issues,
    }
}

/// A tag that may be assigned, with what the exclusive rule needs.
#[derive(Debug, Clone)]
pub(crate) struct Assignable {
    pub(crate) id: i64,
    group_id: i64,
    exclusive: bool,
}

/// Customer operations for one viewer.
pub struct Customers<'a> {
    db: &'a DatabaseConnection,
    viewer: Viewer,
    /// Who tag links and history rows name; `None` for changes the system makes on its own
    /// (a visitor's capture, later the rules engine).
    actor: Option<StaffId>,
}

impl<'a> Customers<'a> {
    pub fn new(db: &'a DatabaseConnection, viewer: Viewer) -> Self {
        Customers {
            db,
            viewer,
            actor: Some(viewer.staff),
        }
    }

    /// Operations made by the system itself for `tenant`, seeing every customer.
    pub(crate) fn system(db: &'a DatabaseConnection, tenant: TenantId) -> Self {
        Customers {
            db,
            viewer: Viewer {
                tenant,
                staff: StaffId(0),
                sees_all: true,
            },
            actor: None,
        }
    }

    fn tenant(&self) -> TenantId {
        self.viewer.tenant
    }

    pub async fn create(&self, new: NewCustomer) -> DomainResult<Customer> {
        let mut issues = Vec::new();
        let name = checked_name("name", &new.name, CUSTOMER_NAME_MAX)
            .map_err(|issue| issues.push(issue))
            .unwrap_or_default();
        let phone = match new
            .phone
            .as_deref()
            .map(str::trim)
            .filter(|p| !p.is_empty())
        {
            Some(raw) => PhoneNumber::parse(raw).map_err(|i| issues.push(i)).ok(),
            None => None,
        };
        let company = optional_text("company", new.company, 100, &mut issues);
        let industry = optional_text("industry", new.industry, 64, &mut issues);
        let region = optional_text("region", new.region, 64, &mut issues);
        let project_stage = optional_text("project_stage", new.project_stage, 32, &mut issues);
        if new.tag_ids.len() > INITIAL_TAGS_MAX {
            issues.push(FieldIssue::new(
                "tag_ids",
                "length",
                format!("at most {INITIAL_TAGS_MAX} tags"),
            ));
        }
        let owner = match (new.owner_id, self.viewer.sees_all) {
            (None, true) => None,
            (None, false) => Some(self.viewer.staff),
            (Some(owner), _) => Some(owner),
        };
        if !self.viewer.sees_all && owner != Some(self.viewer.staff) {
            issues.push(FieldIssue::new(
                "owner_id",
                "forbidden",
                "sales reps create customers they own",
            ));
        }
        let defs = custom_fields::list(self.db, self.tenant()).await?;
        let values = validate_custom_fields(&defs, &new.custom_fields, true, &mut issues);
        let txn = self.db.begin().await?;
        if let Some(owner) = owner {
            self.check_owner(&txn, owner, &mut issues).await?;
        }
        let tags = self
            .assignable_tags(&txn, &new.tag_ids, "tag_ids", &mut issues)
            .await?;
        if !issues.is_empty() {
            return Err(rejected(issues));
        }
        if let Some(phone) = &phone {
            self.ensure_phone_free(&txn, phone, None).await?;
        }
        let now = Utc::now();
        let inserted = customer::ActiveModel {
            tenant_id: Set(self.tenant().0),
            name: Set(name),
            phone: Set(phone.as_ref().map(|p| p.as_str().to_owned())),
            phone_index: Set(phone.as_ref().map(|p| p.as_str().to_owned())),
            company: Set(company),
            industry: Set(industry),
            region: Set(region),
            owner_id: Set(owner.map(|o| o.0)),
            source_channel_id: Set(None),
            project_stage: Set(project_stage),
            created_at: Set(now),
            updated_at: Set(now),
            ..Default::default()
        }
        .insert(&txn)
        .await;
        // A concurrent create may take the phone between the check and the insert; the unique
        // index then answers, and the error converts to the same `phone_taken`.
        let model = inserted?;
        let id = CustomerId(model.id);
        write_field_values(&txn, self.tenant(), id, &values).await?;
        self.attach_all(&txn, id, &tags, TagSource::Manual, None, None, true)
            .await?;
        self.audit(
            &txn,
            "customer.created",
            id,
            serde_json::json!({"tags": new.tag_ids}),
        )
        .await?;
        data_version::bump(&txn, self.tenant()).await?;
        txn.commit().await?;
        self.get(id).await
    }

    pub async fn get(&self, id: CustomerId) -> DomainResult<Customer> {
        load(self.db, self.tenant(), &[id.0])
            .await?
            .pop()
            .filter(|c| self.viewer.sees_all || c.owner_id == Some(self.viewer.staff))
            .ok_or(DomainError::NotFound("customer"))
    }

    pub async fn update(&self, id: CustomerId, patch: CustomerPatch) -> DomainResult<Customer> {
        let mut issues = Vec::new();
        let txn = self.db.begin().await?;
        let current = self.lock(&txn, id).await?;
        let mut active: customer::ActiveModel = current.clone().into();
        if let Some(name) = &patch.name {
            match checked_name("name", name, CUSTOMER_NAME_MAX) {
                Ok(name) => active.name = Set(name),
                Err(issue) => issues.push(issue),
            }
        }
        if let Some(phone) = &patch.phone {
            let parsed = match phone.as_deref().map(str::trim).filter(|p| !p.is_empty()) {
                Some(raw) => PhoneNumber::parse(raw).map_err(|i| issues.push(i)).ok(),
                None => None,
            };
            if let Some(phone) = &parsed {
                self.ensure_phone_free(&txn, phone, Some(id)).await?;
            }
            let value = parsed.map(|p| p.0);
            active.phone = Set(value.clone());
            active.phone_index = Set(value);
        }
        if let Some(company) = patch.company.clone() {
            active.company = Set(optional_text("company", company, 100, &mut issues));
        }
        if let Some(industry) = patch.industry.clone() {
            active.industry = Set(optional_text("industry", industry, 64, &mut issues));
        }
        if let Some(region) = patch.region.clone() {
            active.region = Set(optional_text("region", region, 64, &mut issues));
        }
        if let Some(stage) = patch.project_stage.clone() {
            active.project_stage = Set(optional_text("project_stage", stage, 32, &mut issues));
        }
        if let Some(owner) = patch.owner_id {
            if !self.viewer.sees_all {
                issues.push(FieldIssue::new(
                    "owner_id",
                    "forbidden",
                    "only admins and managers reassign customers",
                ));
            } else if let Some(owner) = owner {
                self.check_owner(&txn, owner, &mut issues).await?;
            }
            active.owner_id = Set(owner.map(|o| o.0));
        }
        if let Some(changes) = &patch.custom_fields {
            let defs = custom_fields::list(&txn, self.tenant()).await?;
            let mut merged = load_field_values(&txn, &defs, &[id.0])
                .await?
                .remove(&id.0)
                .unwrap_or_default();
            for (key, value) in changes {
                if value.is_null() {
                    merged.remove(key);
                } else {
                    merged.insert(key.clone(), value.clone());
                }
            }
            let values = validate_custom_fields(&defs, &merged, true, &mut issues);
            if issues.is_empty() {
                customer_field_value::Entity::delete_many()
                    .filter(customer_field_value::Column::CustomerId.eq(id.0))
                    .exec(&txn)
                    .await?;
                write_field_values(&txn, self.tenant(), id, &values).await?;
            }
        }
        if !issues.is_empty() {
            return Err(rejected(issues));
        }
        active.updated_at = Set(Utc::now());
        active.update(&txn).await?;
        self.audit(
            &txn,
            "customer.updated",
            id,
            serde_json::json!({"fields": patch_fields(&patch)}),
        )
        .await?;
        data_version::bump(&txn, self.tenant()).await?;
        txn.commit().await?;
        self.get(id).await
    }

    /// Soft-deletes the customer: it leaves every list, its phone number is free again, and its
    /// tags are removed (with history rows saying so).
    pub async fn delete(&self, id: CustomerId) -> DomainResult<()> {
        let txn = self.db.begin().await?;
        let current = self.lock(&txn, id).await?;
        let links = customer_tag::Entity::find()
            .filter(customer_tag::Column::CustomerId.eq(id.0))
            .all(&txn)
            .await?;
        for link in &links {
            self.history(
                &txn,
                id,
                link.tag_id,
                "remove",
                TagSource::Manual,
                Some("customer deleted"),
            )
            .await?;
        }
        customer_tag::Entity::delete_many()
            .filter(customer_tag::Column::CustomerId.eq(id.0))
            .exec(&txn)
            .await?;
        let now = Utc::now();
        let mut active: customer::ActiveModel = current.into();
        active.deleted_at = Set(Some(now));
        active.phone_index = Set(None);
        active.openid = Set(None);
        active.unionid = Set(None);
        active.updated_at = Set(now);
        active.update(&txn).await?;
        self.audit(&txn, "customer.deleted", id, Value::Null)
            .await?;
        data_version::bump(&txn, self.tenant()).await?;
        txn.commit().await?;
        Ok(())
    }

    /// Puts `tag` on the customer (replacing the other tag of an exclusive group) and returns
    /// the customer's tags. Adding a tag that is already there changes nothing.
    pub async fn add_tag(
        &self,
        id: CustomerId,
        tag: TagId,
        note: Option<String>,
    ) -> DomainResult<Vec<CustomerTag>> {
        let txn = self.db.begin().await?;
        self.lock(&txn, id).await?;
        let mut issues = Vec::new();
        let tags = self
            .assignable_tags(&txn, &[tag], "tag_id", &mut issues)
            .await?;
        if let Some(issue) = issues.pop() {
            let code = if issue.code == "archived" {
                "tag_archived"
            } else {
                "validation_failed"
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
            data_version::bump(&txn, self.tenant()).await?;
        }
        txn.commit().await?;
        Ok(self.get(id).await?.tags)
    }

    pub async fn remove_tag(
        &self,
        id: CustomerId,
        tag: TagId,
        note: Option<String>,
    ) -> DomainResult<()> {
        let txn = self.db.begin().await?;
        self.lock(&txn, id).await?;
        let removed = customer_tag::Entity::delete_many()
            .filter(customer_tag::Column::CustomerId.eq(id.0))
            .filter(customer_tag::Column::TagId.eq(tag.0))
            .exec(&txn)
            .await?;
        if removed.rows_affected == 0 {
            return Err(DomainError::NotFound("tag on this customer"));
        }
        let note = note.map(|n| n.trim().to_owned()).filter(|n| !n.is_empty());
        self.history(
            &txn,
            id,
            tag.0,
            "remove",
            TagSource::Manual,
            note.as_deref(),
        )
        .await?;
        self.touch(&txn, id).await?;
        data_version::bump(&txn, self.tenant()).await?;
        txn.commit().await?;
        Ok(())
    }

    /// The customer's tag changes, newest first; `before` is the id of the last entry seen.
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
        let names: HashMap<i64, String> = tag::Entity::find()
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
                tag_id: TagId(r.tag_id),
                tag_name: names.get(&r.tag_id).cloned().unwrap_or_default(),
                action: if r.action == "add" { "add" } else { "remove" },
                source: TagSource::parse(&r.source),
                actor_id: r.actor_id.map(StaffId),
                note: r.note,
                created_at: r.created_at,
            })
            .collect();
        Ok((items, next))
    }

    /// Adds and removes tags on many customers in one transaction: either every change is
    /// made or none is.
    pub async fn batch_tags(&self, batch: BatchTagging) -> DomainResult<BatchOutcome> {
        let mut issues = Vec::new();
        let note = batch
            .note
            .map(|n| n.trim().to_owned())
            .filter(|n| !n.is_empty());
        let txn = self.db.begin().await?;
        let add = self
            .assignable_tags(&txn, &batch.add, "add", &mut issues)
            .await?;
        let remove = self
            .known_tags(&txn, &batch.remove, "remove", &mut issues)
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
                "tag_archived"
            } else {
                "validation_failed"
            };
            return Err(DomainError::Rejected { code, issues });
        }
        let customers: Vec<i64> = match &batch.target {
            BatchTarget::Ids(ids) if ids.len() > BATCH_MAX_IDS => {
                return Err(DomainError::field(
                    "customer_ids",
                    "length",
                    format!("at most {BATCH_MAX_IDS} customers per batch"),
                ));
            }
            BatchTarget::Ids(ids) => {
                let visible = self.visible_ids(&txn, ids).await?;
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
                let resolved = search::resolve(&txn, self.tenant(), filter).await.map_err(
                    |err| match err {
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
                    },
                )?;
                let total = search::count(&txn, &self.viewer, &resolved).await?;
                if total > BATCH_MAX_MATCHES {
                    return Err(DomainError::Rejected {
                        code: "too_many_customers",
                        issues: vec![FieldIssue::new(
                            "filter",
                            "too_many_customers",
                            format!(
                                "the filter matches {total} customers; a batch may change at most {BATCH_MAX_MATCHES}"
                            ),
                        )],
                    });
                }
                let mut ids = search::all_ids(&txn, &self.viewer, &resolved).await?;
                ids.sort_unstable();
                ids
            }
        };
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
            customer::Entity::update_many()
                .col_expr(customer::Column::UpdatedAt, Expr::value(Utc::now()))
                .filter(customer::Column::TenantId.eq(self.tenant().0))
                .filter(customer::Column::Id.is_in(customers.iter().copied()))
                .exec(&txn)
                .await?;
            data_version::bump(&txn, self.tenant()).await?;
        }
        txn.commit().await?;
        Ok(outcome)
    }

    /// Locks the customer row for the rest of the transaction (`SELECT … FOR UPDATE` on
    /// MySQL; SQLite transactions are serialised anyway) and returns it.
    async fn lock(
        &self,
        txn: &DatabaseTransaction,
        id: CustomerId,
    ) -> DomainResult<customer::Model> {
        let mut query = customer::Entity::find_by_id(id.0)
            .filter(customer::Column::TenantId.eq(self.tenant().0))
            .filter(customer::Column::DeletedAt.is_null());
        if !self.viewer.sees_all {
            query = query.filter(customer::Column::OwnerId.eq(self.viewer.staff.0));
        }
        query
            .lock_exclusive()
            .one(txn)
            .await?
            .ok_or(DomainError::NotFound("customer"))
    }

    /// Marks the customer as changed now.
    async fn touch(&self, txn: &DatabaseTransaction, id: CustomerId) -> DomainResult<()> {
        customer::Entity::update_many()
            .col_expr(customer::Column::UpdatedAt, Expr::value(Utc::now()))
            .filter(customer::Column::Id.eq(id.0))
            .exec(txn)
            .await?;
        Ok(())
    }

    async fn visible_ids(
        &self,
        txn: &DatabaseTransaction,
        ids: &[CustomerId],
    ) -> DomainResult<HashSet<i64>> {
        let mut query = customer::Entity::find()
            .select_only()
            .column(customer::Column::Id)
            .filter(customer::Column::TenantId.eq(self.tenant().0))
            .filter(customer::Column::DeletedAt.is_null())
            .filter(customer::Column::Id.is_in(ids.iter().map(|c| c.0)));
        if !self.viewer.sees_all {
            query = query.filter(customer::Column::OwnerId.eq(self.viewer.staff.0));
        }
        Ok(query
            .into_tuple::<i64>()
            .all(txn)
            .await?
            .into_iter()
            .collect())
    }

    async fn check_owner(
        &self,
        txn: &DatabaseTransaction,
        owner: StaffId,
        issues: &mut Vec<FieldIssue>,
    ) -> DomainResult<()> {
        let found = staff::Entity::find_by_id(owner.0)
            .filter(staff::Column::TenantId.eq(self.tenant().0))
            .filter(staff::Column::Active.eq(true))
            .one(txn)
            .await?;
        if found.is_none() {
            issues.push(FieldIssue::new(
                "owner_id",
                "unknown_staff",
                "no such active staff member",
            ));
        }
        Ok(())
    }

    async fn ensure_phone_free(
        &self,
        txn: &DatabaseTransaction,
        phone: &PhoneNumber,
        except: Option<CustomerId>,
    ) -> DomainResult<()> {
        let existing = customer::Entity::find()
            .filter(customer::Column::TenantId.eq(self.tenant().0))
            .filter(customer::Column::PhoneIndex.eq(phone.as_str()))
            .one(txn)
            .await?;
        match existing {
            Some(c) if Some(CustomerId(c.id)) != except => Err(DomainError::Taken {
                code: "phone_taken",
                detail: format!("customer {} already has this phone number", c.id),
                existing_id: Some(c.id),
            }),
            _ => Ok(()),
        }
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
        let rows: Vec<(i64, i64, String, String, bool)> = tag::Entity::find()
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
                Some((_, _, name, status, _)) if status != "active" => {
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
    async fn known_tags(
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
        let current: Vec<(i64, i64, String)> = if fresh {
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
        for tag in tags {
            if current.iter().any(|(t, ..)| *t == tag.id) || added.contains(&tag.id) {
                continue;
            }
            if tag.exclusive {
                let in_group = || {
                    current
                        .iter()
                        .filter(|(_, group, _)| *group == tag.group_id)
                };
                // A person's choice in an exclusive group stands against automatic sources.
                let chosen = in_group().any(|(.., s)| !TagSource::parse(s).is_automatic());
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
        if !removed.is_empty() {
            customer_tag::Entity::delete_many()
                .filter(customer_tag::Column::CustomerId.eq(id.0))
                .filter(customer_tag::Column::TagId.is_in(removed.iter().copied()))
                .exec(txn)
                .await?;
        }
        if added.is_empty() && removed.is_empty() {
            return Ok(0);
        }
        let now = Utc::now();
        if !added.is_empty() {
            customer_tag::Entity::insert_many(added.iter().map(|&tag| customer_tag::ActiveModel {
                customer_id: Set(id.0),
                tag_id: Set(tag),
                tenant_id: Set(self.tenant().0),
                source: Set(source.as_str().to_owned()),
                reason: Set(reason.map(str::to_owned)),
                assigned_by: Set(self.actor.map(|a| a.0)),
                created_at: Set(now),
            }))
            .exec_without_returning(txn)
            .await?;
        }
        let changes = removed
            .iter()
            .map(|&tag| (tag, "remove"))
            .chain(added.iter().map(|&tag| (tag, "add")));
        tag_history::Entity::insert_many(changes.map(|(tag, action)| tag_history::ActiveModel {
            tenant_id: Set(self.tenant().0),
            customer_id: Set(id.0),
            tag_id: Set(tag),
            action: Set(action.to_owned()),
            source: Set(source.as_str().to_owned()),
            actor_id: Set(self.actor.map(|a| a.0)),
            note: Set(note.map(str::to_owned)),
            created_at: Set(now),
            ..Default::default()
        }))
        .exec_without_returning(txn)
        .await?;
        Ok(added.len())
    }

    /// The other tags of `tag`'s group.
    async fn group_siblings(
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
    async fn attach_many(
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
        let have: HashSet<i64> = customer_tag::Entity::find()
            .select_only()
            .column(customer_tag::Column::CustomerId)
            .filter(customer_tag::Column::TagId.eq(tag.id))
            .filter(customer_tag::Column::CustomerId.is_in(chunk.iter().copied()))
            .into_tuple::<i64>()
            .all(txn)
            .await?
            .into_iter()
            .collect();
        let missing: Vec<i64> = chunk
            .iter()
            .copied()
            .filter(|c| !have.contains(c))
            .collect();
        if missing.is_empty() {
            return Ok(0);
        }
        let now = Utc::now();
        customer_tag::Entity::insert_many(missing.iter().map(|&customer| {
            customer_tag::ActiveModel {
                customer_id: Set(customer),
                tag_id: Set(tag.id),
                tenant_id: Set(self.tenant().0),
                source: Set(TagSource::Manual.as_str().to_owned()),
                reason: Set(None),
                assigned_by: Set(self.actor.map(|a| a.0)),
                created_at: Set(now),
            }
        }))
        .exec(txn)
        .await?;
        self.history_many(txn, &missing, tag.id, "add", note)
            .await?;
        Ok(missing.len() as u64)
    }

    /// Unlinks `tag` from the customers of `chunk` that carry it; returns how many.
    async fn detach_many(
        &self,
        txn: &DatabaseTransaction,
        chunk: &[i64],
        tag: i64,
        note: Option<&str>,
    ) -> DomainResult<u64> {
        let have: Vec<i64> = customer_tag::Entity::find()
            .select_only()
            .column(customer_tag::Column::CustomerId)
            .filter(customer_tag::Column::TagId.eq(tag))
            .filter(customer_tag::Column::CustomerId.is_in(chunk.iter().copied()))
            .into_tuple::<i64>()
            .all(txn)
            .await?;
        if have.is_empty() {
            return Ok(0);
        }
        customer_tag::Entity::delete_many()
            .filter(customer_tag::Column::TagId.eq(tag))
            .filter(customer_tag::Column::CustomerId.is_in(have.iter().copied()))
            .exec(txn)
            .await?;
        self.history_many(txn, &have, tag, "remove", note).await?;
        Ok(have.len() as u64)
    }

    async fn history(
        &self,
        txn: &DatabaseTransaction,
        id: CustomerId,
        tag: i64,
        action: &str,
        source: TagSource,
        note: Option<&str>,
    ) -> DomainResult<()> {
        tag_history::Entity::insert(tag_history::ActiveModel {
            tenant_id: Set(self.tenant().0),
            customer_id: Set(id.0),
            tag_id: Set(tag),
            action: Set(action.to_owned()),
            source: Set(source.as_str().to_owned()),
            actor_id: Set(self.actor.map(|a| a.0)),
            note: Set(note.map(str::to_owned)),
            created_at: Set(Utc::now()),
            ..Default::default()
        })
        .exec_without_returning(txn)
        .await?;
        Ok(())
    }

    async fn history_many(
        &self,
        txn: &DatabaseTransaction,
        customers: &[i64],
        tag: i64,
        action: &str,
        note: Option<&str>,
    ) -> DomainResult<()> {
        let now = Utc::now();
        tag_history::Entity::insert_many(customers.iter().map(|&customer| {
            tag_history::ActiveModel {
                tenant_id: Set(self.tenant().0),
                customer_id: Set(customer),
                tag_id: Set(tag),
                action: Set(action.to_owned()),
                source: Set(TagSource::Manual.as_str().to_owned()),
                actor_id: Set(self.actor.map(|a| a.0)),
                note: Set(note.map(str::to_owned)),
                created_at: Set(now),
                ..Default::default()
            }
        }))
        .exec(txn)
        .await?;
        Ok(())
    }

    async fn audit(
        &self,
        txn: &DatabaseTransaction,
        action: &str,
        id: CustomerId,
        details: Value,
    ) -> DomainResult<()> {
        audit::record(
            txn,
            AuditEntry {
                tenant_id: Some(self.tenant()),
                actor: Actor::Staff(self.viewer.staff),
                action,
                target_type: "customer",
                target_id: Some(id.to_string()),
                details: (!Value::is_null(&details)).then_some(details),
            },
        )
        .await
    }
}

/// Names of the fields a patch touches, for the audit trail (values may be personal data).
fn patch_fields(patch: &CustomerPatch) -> Vec<&'static str> {
    let mut fields = Vec::new();
    let touched = [
        ("name", patch.name.is_some()),
        ("phone", patch.phone.is_some()),
        ("company", patch.company.is_some()),
        ("industry", patch.industry.is_some()),
        ("region", patch.region.is_some()),
        ("owner_id", patch.owner_id.is_some()),
        ("project_stage", patch.project_stage.is_some()),
        ("custom_fields", patch.custom_fields.is_some()),
    ];
    for (name, yes) in touched {
        if yes {
            fields.push(name);
        }
    }
    fields
}

/// Checks every custom field value (unknown keys, types, options, and on `complete` data the
/// required fields) and returns the stored values per field.
fn validate_custom_fields(
    defs: &[CustomFieldDef],
    given: &Map<String, Value>,
    complete: bool,
    issues: &mut Vec<FieldIssue>,
) -> Vec<(i64, Vec<String>)> {
    let mut out = Vec::new();
    for (key, value) in given {
        match defs.iter().find(|d| &d.key == key) {
            None => issues.push(FieldIssue::new(
                format!("custom_fields.{key}"),
                "unknown_field",
                "no such custom field",
            )),
            Some(_) if value.is_null() => {}
            Some(def) => match custom_fields::stored_values(def, value, false) {
                Ok(values) => out.push((def.id.0, values)),
                Err(issue) => issues.push(issue),
            },
        }
    }
    if complete {
        for def in defs.iter().filter(|d| d.required) {
            if given.get(&def.key).is_none_or(Value::is_null) {
                issues.push(FieldIssue::new(
                    format!("custom_fields.{}", def.key),
                    "required",
                    "is required",
                ));
            }
        }
    }
    out
}

pub(crate) async fn write_field_values(
    txn: &DatabaseTransaction,
    tenant: TenantId,
    id: CustomerId,
    values: &[(i64, Vec<String>)],
) -> DomainResult<()> {
    let rows: Vec<customer_field_value::ActiveModel> = values
        .iter()
        .flat_map(|(field, values)| {
            values
                .iter()
                .map(move |value| customer_field_value::ActiveModel {
                    customer_id: Set(id.0),
                    field_id: Set(*field),
                    value: Set(value.clone()),
                    tenant_id: Set(tenant.0),
                })
        })
        .collect();
    if !rows.is_empty() {
        customer_field_value::Entity::insert_many(rows)
            .exec(txn)
            .await?;
    }
    Ok(())
}

pub(crate) async fn load_field_values<C: ConnectionTrait>(
    conn: &C,
    defs: &[CustomFieldDef],
    ids: &[i64],
) -> DomainResult<HashMap<i64, Map<String, Value>>> {
    let rows = customer_field_value::Entity::find()
        .filter(customer_field_value::Column::CustomerId.is_in(ids.iter().copied()))
        .all(conn)
        .await?;
    let mut grouped: HashMap<(i64, i64), Vec<String>> = HashMap::new();
    for row in rows {
        grouped
            .entry((row.customer_id, row.field_id))
            .or_default()
            .push(row.value);
    }
    let mut out: HashMap<i64, Map<String, Value>> = HashMap::new();
    for ((customer, field), values) in grouped {
        if let Some(def) = defs.iter().find(|d| d.id.0 == field) {
            out.entry(customer)
                .or_default()
                .insert(def.key.clone(), custom_fields::json_value(def, values));
        }
    }
    Ok(out)
}

/// Loads live customers of `tenant` with their tags and custom fields, in the order of `ids`.
pub(crate) async fn load<C: ConnectionTrait>(
    conn: &C,
    tenant: TenantId,
    ids: &[i64],
) -> DomainResult<Vec<Customer>> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let rows = customer::Entity::find()
        .filter(customer::Column::TenantId.eq(tenant.0))
        .filter(customer::Column::DeletedAt.is_null())
        .filter(customer::Column::Id.is_in(ids.iter().copied()))
        .all(conn)
        .await?;
    let defs = custom_fields::list(conn, tenant).await?;
    let mut fields = load_field_values(conn, &defs, ids).await?;
    let mut tags = load_tags(conn, ids).await?;
    let mut by_id: HashMap<i64, customer::Model> = rows.into_iter().map(|r| (r.id, r)).collect();
    Ok(ids
        .iter()
        .filter_map(|id| by_id.remove(id))
        .map(|m| Customer {
            id: CustomerId(m.id),
            custom_fields: fields.remove(&m.id).unwrap_or_default(),
            tags: tags.remove(&m.id).unwrap_or_default(),
            name: m.name,
            phone: m.phone,
            company: m.company,
            industry: m.industry,
            region: m.region,
            owner_id: m.owner_id.map(StaffId),
            source_channel_id: m.source_channel_id,
            project_stage: m.project_stage,
            created_at: m.created_at,
            updated_at: m.updated_at,
            last_active_at: m.last_active_at,
            last_follow_up_at: m.last_follow_up_at,
            last_order_at: m.last_order_at,
        })
        .collect())
}

pub(crate) async fn load_tags<C: ConnectionTrait>(
    conn: &C,
    ids: &[i64],
) -> DomainResult<HashMap<i64, Vec<CustomerTag>>> {
    let (ct, t, g) = (Alias::new("ct"), Alias::new("t"), Alias::new("g"));
    let select = Query::select()
        .column((ct.clone(), Alias::new("customer_id")))
        .column((ct.clone(), Alias::new("tag_id")))
        .column((ct.clone(), Alias::new("source")))
        .column((ct.clone(), Alias::new("reason")))
        .column((ct.clone(), Alias::new("assigned_by")))
        .column((ct.clone(), Alias::new("created_at")))
        .column((t.clone(), Alias::new("name")))
        .column((t.clone(), Alias::new("color")))
        .column((t.clone(), Alias::new("group_id")))
        .expr_as(
            Expr::col((g.clone(), Alias::new("name"))),
            Alias::new("group_name"),
        )
        .from_as(Alias::new("customer_tags"), ct.clone())
        .join_as(
            JoinType::InnerJoin,
            Alias::new("tags"),
            t.clone(),
            Expr::col((t.clone(), Alias::new("id"))).equals((ct.clone(), Alias::new("tag_id"))),
        )
        .join_as(
            JoinType::InnerJoin,
            Alias::new("tag_groups"),
            g.clone(),
            Expr::col((g.clone(), Alias::new("id"))).equals((t.clone(), Alias::new("group_id"))),
        )
        .and_where(Expr::col((ct.clone(), Alias::new("customer_id"))).is_in(ids.iter().copied()))
        .order_by(
            (g.clone(), Alias::new("sort_order")),
            sea_orm::sea_query::Order::Asc,
        )
        .order_by((g, Alias::new("id")), sea_orm::sea_query::Order::Asc)
        .order_by(
            (t.clone(), Alias::new("sort_order")),
            sea_orm::sea_query::Order::Asc,
        )
        .order_by((t, Alias::new("id")), sea_orm::sea_query::Order::Asc)
        .to_owned();
    let mut out: HashMap<i64, Vec<CustomerTag>> = HashMap::new();
    for row in conn.query_all(&select).await? {
        let customer: i64 = row.try_get("", "customer_id")?;
        let source: String = row.try_get("", "source")?;
        out.entry(customer).or_default().push(CustomerTag {
            tag_id: TagId(row.try_get("", "tag_id")?),
            name: row.try_get("", "name")?,
            color: row.try_get("", "color")?,
            group_id: TagGroupId(row.try_get("", "group_id")?),
            group_name: row.try_get("", "group_name")?,
            source: TagSource::parse(&source),
            reason: row.try_get("", "reason")?,
            assigned_by: row.try_get::<Option<i64>>("", "assigned_by")?.map(StaffId),
            assigned_at: row.try_get("", "created_at")?,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::PhoneNumber;

    #[test]
    fn mainland_mobiles_are_accepted_in_common_spellings() {
        for raw in [
            "13800138000",
            "+86 138-0013-8000",
            "0086 13800138000",
            "86 13800138000",
            "(138) 0013 8000",
        ] {
            assert_eq!(
                PhoneNumber::parse(raw).unwrap().as_str(),
                "13800138000",
                "{raw}"
            );
        }
    }

    #[test]
    fn other_numbers_are_refused() {
        for raw in [
            "12800138000",
            "1380013800",
            "138001380001",
            "010-12345678",
            "1380013800a",
            "",
        ] {
            assert!(PhoneNumber::parse(raw).is_err(), "{raw}");
        }
    }
}
