//! Customers: one record per person per tenant, their custom field values, and the tags they
//! carry with the history of every tag change.
//!
//! Every operation goes through [`Customers`], built for a [`Viewer`]: admins and managers see
//! the whole tenant, sales reps only the customers they own. A customer the viewer may not see
//! is reported exactly like a missing one.

use crate::kernel::clock;
use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Utc};
use sea_orm::sea_query::{Alias, Expr, ExprTrait, JoinType, Query};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseConnection, DatabaseTransaction,
    EntityTrait, QueryFilter, QueryOrder, QuerySelect, Set, TransactionTrait,
};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::access::policy::{self, Action};
use crate::access::{Actor as AccessActor, StaffActor, SystemTask};
use crate::kernel::error::{DomainError, DomainResult, ErrorCode, FieldIssue, Step};
use crate::kernel::ids::{CustomerId, RuleId, StaffId, TagGroupId, TagId, TenantId};
use crate::kernel::names::checked_name;
use crate::library::custom_fields::{self, CustomFieldDef};
use crate::search::{self, Filter};
use crate::store::entities::{
    customer, customer_field_value, customer_tag, staff, tag, tag_group, tag_history,
};
use crate::store::retry;
use crate::support::audit::{self, AuditEntry};
use crate::support::data_version;

pub mod automation;
pub(crate) mod contact;
mod fields;
mod read;
mod tagging;

pub use crate::access::Viewer;
pub use crate::kernel::phone::PhoneNumber;
pub use crate::kernel::tagging::TagSource;
pub(crate) use fields::write_field_values;
use fields::{load_field_values, validate_custom_fields};
pub use read::{CustomerPage, loaded, page};
pub(crate) use read::{load, load_tags};

/// Most tags given when creating a customer.
pub const INITIAL_TAGS_MAX: usize = 50;
/// Longest customer name, in characters.
pub const CUSTOMER_NAME_MAX: usize = 64;
/// Most customers one batch may name or match.
pub const BATCH_MAX_IDS: usize = 1_000;
pub const BATCH_MAX_MATCHES: u64 = 10_000;
/// Rows per statement when writing many rows.
const CHUNK: usize = 500;

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
    /// The rule (and its version) that assigned the tag, for `source = rule`.
    #[serde(default)]
    pub rule_id: Option<RuleId>,
    #[serde(default)]
    pub rule_version: Option<i32>,
    /// The values that satisfied the rule when it assigned the tag.
    #[serde(default)]
    pub evidence: Option<Value>,
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
    /// Why an automatic source made the change ("rule \"高价值客户\" (v1): …").
    pub reason: Option<String>,
    pub rule_id: Option<RuleId>,
    pub rule_version: Option<i32>,
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
        code: ErrorCode::ValidationFailed,
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

/// Customer operations for one actor, within the customers it sees.
pub struct Customers<'a> {
    db: &'a DatabaseConnection,
    viewer: Viewer,
    actor: AccessActor,
}

impl<'a> Customers<'a> {
    pub fn new(db: &'a DatabaseConnection, staff: &StaffActor) -> Self {
        Customers {
            db,
            viewer: Viewer::of(staff),
            actor: AccessActor::Staff(*staff),
        }
    }

    /// Operations the system makes on its own for `task`, seeing every customer of `tenant`.
    pub(crate) fn system(db: &'a DatabaseConnection, tenant: TenantId, task: SystemTask) -> Self {
        let actor = AccessActor::System { tenant, task };
        Customers {
            db,
            viewer: Viewer {
                tenant,
                scope: policy::customer_scope(&actor),
            },
            actor,
        }
    }

    fn tenant(&self) -> TenantId {
        self.viewer.tenant
    }

    #[tracing::instrument(skip_all, fields(tenant = %self.viewer.tenant))]
    pub async fn create(&self, new: NewCustomer) -> DomainResult<Customer> {
        let id = retry::retrying("customers.create", || self.create_once(new.clone())).await?;
        self.get(id).await
    }

    /// Long because it checks every field in the order a client sees the errors, then writes once.
    async fn create_once(&self, new: NewCustomer) -> DomainResult<CustomerId> {
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
        let owner = match policy::owner_of_new_customer(self.viewer.scope, new.owner_id) {
            Ok(owner) => owner,
            Err(requested) => {
                issues.push(FieldIssue::new(
                    "owner_id",
                    "forbidden",
                    "sales reps create customers they own",
                ));
                requested
            }
        };
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
        let now = clock::now();
        let mut row = customer::ActiveModel {
            tenant_id: Set(self.tenant()),
            name: Set(name),
            company: Set(company),
            industry: Set(industry),
            region: Set(region),
            owner_id: Set(owner),
            source_channel_id: Set(None),
            project_stage: Set(project_stage),
            created_at: Set(now),
            updated_at: Set(now),
            ..Default::default()
        };
        contact::set_phone(&mut row, phone.as_ref());
        let inserted = row.insert(&txn).await;
        // A concurrent create may take the phone between the check and the insert; the unique
        // index then answers, and the error converts to the same `phone_taken`.
        let model = inserted?;
        let id = model.id;
        write_field_values(&txn, self.tenant(), id, &values).await?;
        self.attach_all(&txn, id, &tags, TagSource::Manual, None, None, true)
            .await?;
        automation::react_new(&txn, self.tenant(), id, now).await?;
        self.audit(
            &txn,
            "customer.created",
            id,
            serde_json::json!({"tags": new.tag_ids}),
        )
        .await?;
        data_version::bump_for(&txn, self.tenant(), &[id.0]).await?;
        txn.commit().await?;
        Ok(id)
    }

    #[tracing::instrument(skip_all, fields(tenant = %self.viewer.tenant, customer = %id))]
    pub async fn get(&self, id: CustomerId) -> DomainResult<Customer> {
        load(self.db, self.tenant(), &[id.0])
            .await?
            .pop()
            .filter(|c| self.viewer.scope.covers(c.owner_id))
            .ok_or(DomainError::NotFound("customer"))
    }

    #[tracing::instrument(skip_all, fields(tenant = %self.viewer.tenant, customer = %id))]
    pub async fn update(&self, id: CustomerId, patch: CustomerPatch) -> DomainResult<Customer> {
        retry::retrying("customers.update", || self.update_once(id, patch.clone())).await?;
        self.get(id).await
    }

    /// One attempt at the update's transaction; the caller reads the result after the commit,
    /// so a retried attempt never follows a committed one.
    ///
    /// Long because it applies the patch field by field, collecting every error before writing.
    async fn update_once(&self, id: CustomerId, patch: CustomerPatch) -> DomainResult<CustomerId> {
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
            contact::set_phone(&mut active, parsed.as_ref());
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
            if !policy::allows(&self.actor, Action::ReassignCustomers) {
                issues.push(FieldIssue::new(
                    "owner_id",
                    "forbidden",
                    "only admins and managers reassign customers",
                ));
            } else if let Some(owner) = owner {
                self.check_owner(&txn, owner, &mut issues).await?;
            }
            active.owner_id = Set(owner);
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
        let now = clock::now();
        active.updated_at = Set(now);
        let written = active.update(&txn).await?;
        automation::react_row(&txn, &written, now).await?;
        self.audit(
            &txn,
            "customer.updated",
            id,
            serde_json::json!({"fields": patch_fields(&patch)}),
        )
        .await?;
        data_version::bump_for(&txn, self.tenant(), &[id.0]).await?;
        txn.commit().await?;
        Ok(id)
    }

    /// Soft-deletes the customer: it leaves every list, its phone number is free again, and its
    /// tags are removed (with history rows saying so).
    #[tracing::instrument(skip_all, fields(tenant = %self.viewer.tenant, customer = %id))]
    pub async fn delete(&self, id: CustomerId) -> DomainResult<()> {
        retry::retrying("customers.delete", || self.delete_once(id)).await
    }

    async fn delete_once(&self, id: CustomerId) -> DomainResult<()> {
        let txn = self.db.begin().await?;
        let current = self.lock(&txn, id).await?;
        tagging::links::remove_all(
            &txn,
            self.tenant(),
            id.0,
            self.by(TagSource::Manual, None, Some("customer deleted")),
            clock::now(),
        )
        .await?;
        let now = clock::now();
        let mut active: customer::ActiveModel = current.into();
        active.deleted_at = Set(Some(now));
        contact::release(&mut active);
        active.updated_at = Set(now);
        active.update(&txn).await?;
        self.audit(&txn, "customer.deleted", id, Value::Null)
            .await?;
        data_version::bump_for(&txn, self.tenant(), &[id.0]).await?;
        txn.commit().await?;
        Ok(())
    }

    /// Locks the customer row for the rest of the transaction (`SELECT … FOR UPDATE` on
    /// MySQL; SQLite transactions are serialised anyway) and returns it.
    async fn lock(
        &self,
        txn: &DatabaseTransaction,
        id: CustomerId,
    ) -> DomainResult<customer::Model> {
        customer::Entity::find_by_id(id)
            .filter(self.viewer.condition())
            .filter(customer::Column::DeletedAt.is_null())
            .lock_exclusive()
            .one(txn)
            .await
            .step("locking the customer")?
            .ok_or(DomainError::NotFound("customer"))
    }

    /// Marks the customer as changed now.
    async fn touch(&self, txn: &DatabaseTransaction, id: CustomerId) -> DomainResult<()> {
        customer::Entity::update_many()
            .col_expr(customer::Column::UpdatedAt, Expr::value(clock::now()))
            .filter(customer::Column::Id.eq(id.0))
            .exec(txn)
            .await?;
        Ok(())
    }

    async fn check_owner(
        &self,
        txn: &DatabaseTransaction,
        owner: StaffId,
        issues: &mut Vec<FieldIssue>,
    ) -> DomainResult<()> {
        let found = staff::Entity::find_by_id(owner)
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
        match contact::holder_of_phone(txn, self.tenant(), phone).await? {
            Some(holder) if Some(CustomerId(holder)) != except => Err(DomainError::Taken {
                code: ErrorCode::PhoneTaken,
                detail: format!("customer {holder} already has this phone number"),
                existing_id: Some(holder),
            }),
            _ => Ok(()),
        }
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
                actor: self.actor.into(),
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

/// A fact about a customer that moves its derived fields.
#[derive(Debug, Clone, Copy)]
pub(crate) enum FactNote<'a> {
    /// A paid order at this time (`None`: the latest paid order is recomputed, after a refund).
    Order(Option<DateTime<Utc>>),
    /// A follow-up at this time, moving the project stage when it says one and is the latest
    /// follow-up that says one (by `occurred_at`, then by id).
    FollowUp {
        id: crate::kernel::ids::FollowUpId,
        at: DateTime<Utc>,
        stage: Option<&'a str>,
    },
    /// Activity at this time.
    Active(DateTime<Utc>),
}

/// Keeps the customer's derived fields (last order, last follow-up, last activity, project
/// stage) true to its facts: each is the latest fact's, whatever order facts arrive in. The
/// caller holds the customer's row lock and passes the row it read.
pub(crate) async fn note_fact(
    txn: &DatabaseTransaction,
    row: &customer::Model,
    fact: FactNote<'_>,
    now: DateTime<Utc>,
) -> DomainResult<customer::Model> {
    let later = |current: Option<DateTime<Utc>>, at: DateTime<Utc>| current.is_none_or(|c| c <= at);
    let mut active: customer::ActiveModel = row.clone().into();
    match fact {
        FactNote::Order(Some(at)) => {
            if later(row.last_order_at, at) {
                active.last_order_at = Set(Some(at));
            }
        }
        FactNote::Order(None) => {
            let latest: Option<Option<DateTime<Utc>>> =
                crate::store::entities::order::Entity::find()
                    .select_only()
                    .expr(Expr::col(crate::store::entities::order::Column::OccurredAt).max())
                    .filter(crate::store::entities::order::Column::CustomerId.eq(row.id.0))
                    .filter(
                        crate::store::entities::order::Column::Status
                            .eq(crate::kernel::values::OrderStatus::Paid),
                    )
                    .into_tuple()
                    .one(txn)
                    .await?;
            active.last_order_at = Set(latest.flatten());
        }
        FactNote::FollowUp { id, at, stage } => {
            if later(row.last_follow_up_at, at) {
                active.last_follow_up_at = Set(Some(at));
            }
            if let Some(stage) = stage {
                use crate::store::entities::follow_up;
                let latest: Option<crate::kernel::ids::FollowUpId> = follow_up::Entity::find()
                    .select_only()
                    .column(follow_up::Column::Id)
                    .filter(follow_up::Column::CustomerId.eq(row.id.0))
                    .filter(follow_up::Column::Stage.is_not_null())
                    .order_by_desc(follow_up::Column::OccurredAt)
                    .order_by_desc(follow_up::Column::Id)
                    .limit(1)
                    .into_tuple()
                    .one(txn)
                    .await?;
                if latest == Some(id) {
                    active.project_stage = Set(Some(stage.to_owned()));
                }
            }
        }
        FactNote::Active(at) => {
            if later(row.last_active_at, at) {
                active.last_active_at = Set(Some(at));
            }
        }
    }
    active.updated_at = Set(now);
    active
        .update(txn)
        .await
        .step("updating the customer's derived fields")
}
