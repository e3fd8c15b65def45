//! Scan-to-record (扫码即录入): a visitor submits a channel's form and is recorded once.
//!
//! One transaction per capture: find the customer the visitor already is (same unionid, else
//! openid, else phone), or create one; fill empty fields without overwriting what staff
//! entered; add the channel's tags; give an owner by the channel's policy; record the visit,
//! the consent, an outbox event and the owner's task. Unique indexes on phone, openid and
//! unionid settle races between concurrent first captures: the loser retries and merges.

use chrono::{DateTime, Utc};
use sea_orm::sea_query::{Expr, ExprTrait, Query};
use sea_orm::{
    ColumnTrait, Condition, ConnectionTrait, DatabaseConnection, DatabaseTransaction, DbBackend,
    EntityTrait, QueryFilter, QueryOrder, QuerySelect, Set, Statement, TransactionTrait,
};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::audit::{self, Actor, AuditEntry};
use crate::channels::{self, FormField, FormTarget, OpenChannel, OwnerPolicy};
use crate::custom_fields::{self, CustomFieldDef};
use crate::customers::{self, CustomerTag, Customers, PhoneNumber, TagSource};
use crate::data_version;
use crate::entities::{
    capture, channel, channel_owner_turn, customer, customer_field_value, domain_event, staff,
};
use crate::error::{DomainError, DomainResult, FieldIssue};
use crate::idempotency::{self, IdempotencyKey};
use crate::ids::{CaptureId, ChannelId, CustomerId, StaffId, TaskId, TenantId};
use crate::names::checked_name;
use crate::tasks::{self, NewTask, TaskKind};
use crate::visitors::Visitor;

/// Attempts at the capture transaction when a concurrent capture wins a unique index or a
/// deadlock is detected.
const ATTEMPTS: usize = 4;

/// What the visitor submitted.
#[derive(Debug, Clone)]
pub struct Submission {
    /// The qualified scene from the mini-program code.
    pub scene: String,
    pub name: Option<String>,
    pub phone: Option<String>,
    pub company: Option<String>,
    pub industry: Option<String>,
    pub region: Option<String>,
    pub custom_fields: Map<String, Value>,
    /// A phone number WeChat verified (from a `getPhoneNumber` code); wins over `phone`.
    pub verified_phone: Option<String>,
    pub consent: Consent,
}

#[derive(Debug, Clone)]
pub struct Consent {
    pub accepted: bool,
    pub policy_version: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Created,
    Merged,
}

/// Which identity found the existing customer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MatchedBy {
    Unionid,
    Openid,
    Phone,
}

impl MatchedBy {
    fn as_str(self) -> &'static str {
        match self {
            MatchedBy::Unionid => "unionid",
            MatchedBy::Openid => "openid",
            MatchedBy::Phone => "phone",
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct OwnerInfo {
    pub id: StaffId,
    pub display_name: String,
}

/// The answer to a capture, stored for idempotent replays.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CaptureResult {
    pub capture_id: CaptureId,
    pub customer_id: CustomerId,
    pub outcome: Outcome,
    pub matched_by: Option<MatchedBy>,
    pub owner: Option<OwnerInfo>,
    pub tags: Vec<CustomerTag>,
    pub captured_at: DateTime<Utc>,
}

/// A message to send to the owner once the capture is committed.
#[derive(Debug, Clone)]
pub struct TaskNotice {
    pub task_id: TaskId,
    pub owner_openid: String,
    pub channel_name: String,
    pub customer_name: String,
    pub at: DateTime<Utc>,
}

#[derive(Debug, Clone)]
pub struct Captured {
    pub result: CaptureResult,
    pub notice: Option<TaskNotice>,
}

/// A submitted value that differs from what the record already held; the record keeps its
/// value, the capture keeps this one.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Conflict {
    pub field: String,
    pub submitted: Value,
}

/// A visit as staff see it on the customer.
#[derive(Debug, Clone, Serialize)]
pub struct CaptureRecord {
    pub id: CaptureId,
    pub channel_id: ChannelId,
    pub channel_name: String,
    pub outcome: Outcome,
    pub matched_by: Option<MatchedBy>,
    pub consent_policy_version: String,
    pub consented_at: DateTime<Utc>,
    pub conflicts: Vec<Conflict>,
    pub created_at: DateTime<Utc>,
}

/// The submission after checking it against the channel's form.
struct Checked {
    name: String,
    phone: Option<PhoneNumber>,
    company: Option<String>,
    industry: Option<String>,
    region: Option<String>,
    /// Per custom field: the definition and the stored values.
    custom: Vec<(CustomFieldDef, Vec<String>, Value)>,
    policy_version: String,
}

fn in_form<'f>(form: &'f [FormField], key: &str) -> Option<&'f FormField> {
    form.iter().find(|f| f.key == key)
}

fn check(
    open: &OpenChannel,
    defs: &[CustomFieldDef],
    submission: &Submission,
) -> Result<Checked, Vec<FieldIssue>> {
    let mut issues = Vec::new();
    let policy_version = &open.model.privacy_policy_version;
    let consent = &submission.consent;
    if !consent.accepted {
        issues.push(FieldIssue::new(
            "consent.accepted",
            "must_accept",
            "the visitor must accept the privacy policy",
        ));
    } else if &consent.policy_version != policy_version {
        issues.push(FieldIssue::new(
            "consent.policy_version",
            "outdated",
            format!("the channel's privacy policy is version {policy_version}"),
        ));
    }
    let mut text = |key: &'static str, value: &Option<String>| -> Option<String> {
        let max = channels::standard_field_max(key);
        let value = value
            .as_deref()
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .map(str::to_owned);
        match (in_form(&open.form, key), &value) {
            (None, Some(_)) => {
                issues.push(FieldIssue::new(
                    key,
                    "not_in_form",
                    "this channel's form does not ask for it",
                ));
                return None;
            }
            (Some(f), None)
                if f.required && !(key == "phone" && submission.verified_phone.is_some()) =>
            {
                issues.push(FieldIssue::new(key, "required", "is required"));
            }
            _ => {}
        }
        if value.as_ref().is_some_and(|v| v.chars().count() > max) {
            issues.push(FieldIssue::new(
                key,
                "length",
                format!("must be at most {max} characters"),
            ));
        }
        value
    };
    let name = text("name", &submission.name);
    let typed_phone = text("phone", &submission.phone);
    let company = text("company", &submission.company);
    let industry = text("industry", &submission.industry);
    let region = text("region", &submission.region);
    let name_checked = issues.iter().any(|i| i.field == "name");
    let name = name.filter(|_| !name_checked).and_then(|name| {
        checked_name("name", &name, customers::CUSTOMER_NAME_MAX)
            .map_err(|issue| issues.push(issue))
            .ok()
    });
    let phone = match (&submission.verified_phone, typed_phone) {
        (Some(verified), _) => match PhoneNumber::parse(verified) {
            Ok(p) => Some(p),
            Err(_) => {
                issues.push(FieldIssue::new(
                    "phone_code",
                    "phone",
                    "the verified phone number is not a mainland China mobile number",
                ));
                None
            }
        },
        (None, Some(raw)) => PhoneNumber::parse(&raw).map_err(|i| issues.push(i)).ok(),
        (None, None) => None,
    };
    let mut custom = Vec::new();
    for (key, value) in &submission.custom_fields {
        let path = format!("custom_fields.{key}");
        let Some(def) = defs.iter().find(|d| &d.key == key) else {
            issues.push(FieldIssue::new(
                path,
                "unknown_field",
                "no such custom field",
            ));
            continue;
        };
        if in_form(&open.form, &path).is_none() {
            issues.push(FieldIssue::new(
                path,
                "not_in_form",
                "this channel's form does not ask for it",
            ));
            continue;
        }
        if value.is_null() {
            continue;
        }
        match custom_fields::stored_values(def, value, false) {
            Ok(values) => custom.push((def.clone(), values, value.clone())),
            Err(issue) => issues.push(issue),
        }
    }
    for field in open.form.iter().filter(|f| f.required) {
        if let Some(key) = field.key.strip_prefix("custom_fields.")
            && submission.custom_fields.get(key).is_none_or(Value::is_null)
            && matches!(
                channels::form_target(&field.key, defs),
                Some(FormTarget::Custom(_))
            )
        {
            issues.push(FieldIssue::new(
                field.key.clone(),
                "required",
                "is required",
            ));
        }
    }
    if !issues.is_empty() {
        return Err(issues);
    }
    Ok(Checked {
        name: name.unwrap_or_default(),
        phone,
        company,
        industry,
        region,
        custom,
        policy_version: policy_version.clone(),
    })
}

/// Records the visitor's submission; see the module documentation. With `key`, the answer
/// is stored for replays in the same transaction.
pub async fn submit(
    db: &DatabaseConnection,
    visitor: &Visitor,
    submission: &Submission,
    key: Option<&IdempotencyKey>,
    follow_up_window: chrono::Duration,
) -> DomainResult<Captured> {
    let open = channels::open(db, &submission.scene, Utc::now()).await?;
    // A submission naming custom fields needs the definitions even on a form without any,
    // to tell an unknown field from one the form does not ask for.
    let defs = open
        .custom_field_defs(db, !submission.custom_fields.is_empty())
        .await?;
    let checked = check(&open, &defs, submission).map_err(customers::rejected)?;
    let mut attempt = 0;
    loop {
        attempt += 1;
        let outcome = record(db, &open, visitor, &checked, key, follow_up_window).await;
        match outcome {
            Ok(Some(captured)) => return Ok(captured),
            Ok(None) if attempt < ATTEMPTS => {
                tracing::debug!(attempt, "the customer changed while capturing; retrying");
            }
            Err(err) if attempt < ATTEMPTS && retryable(&err) => {
                tracing::debug!(attempt, error = %err, "capture lost a race; retrying");
            }
            Ok(None) => {
                return Err(DomainError::Conflict(
                    "the customer kept changing while the capture was recorded; retry".to_owned(),
                ));
            }
            Err(err) => return Err(err),
        }
    }
}

/// Whether a failed attempt may succeed when run again: a concurrent capture took the phone
/// or identity first (the retry merges into it), or the database broke a deadlock.
fn retryable(err: &DomainError) -> bool {
    match err {
        DomainError::Taken { code, .. } => {
            matches!(*code, "phone_taken" | "customer_identity_taken")
        }
        DomainError::Database(db) => {
            let message = db.to_string();
            message.contains("Deadlock") || message.contains("database is locked")
        }
        _ => false,
    }
}

/// One attempt at recording the capture; `None` when the customer found before the
/// transaction changed before it could be locked, and the attempt must start over.
///
/// The reads that need no lock (who the visitor already is, who the owner will be) happen
/// before the transaction, and the round-robin turn is taken in a statement of its own, so
/// that concurrent captures never wait for each other's commits: the transaction holds row
/// locks only on its own customer, plus the tenant's data version for its last statement.
async fn record(
    db: &DatabaseConnection,
    open: &OpenChannel,
    visitor: &Visitor,
    checked: &Checked,
    key: Option<&IdempotencyKey>,
    follow_up_window: chrono::Duration,
) -> DomainResult<Option<Captured>> {
    let tenant = open.tenant;
    let channel_id = ChannelId(open.model.id);
    let now = Utc::now();
    let existing = find_existing(db, tenant, visitor, checked.phone.as_ref()).await?;
    let owner = match existing.as_ref().and_then(|(found, ..)| found.owner_id) {
        Some(owner) => staff_row(db, tenant, StaffId(owner)).await?,
        None => pick_owner(db, open).await?,
    };

    let txn = db.begin().await?;
    let (customer, outcome, matched_by, conflicts) = match existing {
        None => {
            let inserted = customer::Entity::insert(customer::ActiveModel {
                tenant_id: Set(tenant.0),
                name: Set(checked.name.clone()),
                phone: Set(checked.phone.as_ref().map(|p| p.as_str().to_owned())),
                phone_index: Set(checked.phone.as_ref().map(|p| p.as_str().to_owned())),
                company: Set(checked.company.clone()),
                industry: Set(checked.industry.clone()),
                region: Set(checked.region.clone()),
                owner_id: Set(owner.as_ref().map(|o| o.id)),
                source_channel_id: Set(Some(channel_id.0)),
                project_stage: Set(None),
                created_at: Set(now),
                updated_at: Set(now),
                last_active_at: Set(Some(now)),
                openid: Set(Some(visitor.openid.clone())),
                unionid: Set(visitor.unionid.clone()),
                ..Default::default()
            })
            .exec(&txn)
            .await?;
            let id = CustomerId(inserted.last_insert_id);
            let values: Vec<(i64, Vec<String>)> = checked
                .custom
                .iter()
                .map(|(def, values, _)| (def.id.0, values.clone()))
                .collect();
            customers::write_field_values(&txn, tenant, id, &values).await?;
            let target = Target {
                id: id.0,
                name: checked.name.clone(),
            };
            (target, Outcome::Created, None, Vec::new())
        }
        Some((found, matched_by, identity)) => {
            // Lock it: concurrent captures of one person then merge one after the other.
            let locked = customer::Entity::find_by_id(found.id)
                .filter(customer::Column::DeletedAt.is_null())
                .lock_exclusive()
                .one(&txn)
                .await?;
            let Some(locked) = locked.filter(|l| l.owner_id == found.owner_id) else {
                // Deleted or given another owner since it was read.
                return Ok(None);
            };
            let target = Target {
                id: locked.id,
                name: locked.name.clone(),
            };
            let new_owner = owner.as_ref().filter(|_| locked.owner_id.is_none());
            let conflicts = merge(
                &txn,
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
    let id = CustomerId(customer.id);

    let system = Customers::system(db, tenant);
    let mut ignored = Vec::new();
    let tags = system
        .assignable_tags(&txn, &open.default_tag_ids, "default_tag_ids", &mut ignored)
        .await?;
    let reason = format!("captured through channel {}", open.model.name);
    system
        .attach_all(
            &txn,
            id,
            &tags,
            TagSource::Channel,
            Some(&reason),
            None,
            outcome == Outcome::Created,
        )
        .await?;

    let outcome_name = match outcome {
        Outcome::Created => "created",
        Outcome::Merged => "merged",
    };
    let capture_id = capture::Entity::insert(capture::ActiveModel {
        tenant_id: Set(tenant.0),
        channel_id: Set(channel_id.0),
        customer_id: Set(id.0),
        visitor_id: Set(visitor.id.0),
        outcome: Set(outcome_name.to_owned()),
        matched_by: Set(matched_by.map(|m| m.as_str().to_owned())),
        conflicts: Set(serde_json::to_string(&conflicts).unwrap_or_else(|_| "[]".to_owned())),
        consent_policy_version: Set(checked.policy_version.clone()),
        consented_at: Set(now),
        created_at: Set(now),
        ..Default::default()
    })
    .exec(&txn)
    .await?
    .last_insert_id;
    let details = serde_json::json!({
        "capture_id": capture_id,
        "channel_id": channel_id.0,
        "outcome": outcome_name,
        "matched_by": matched_by.map(MatchedBy::as_str),
        "owner_id": owner.as_ref().map(|o| o.id),
    });
    domain_event::Entity::insert(domain_event::ActiveModel {
        tenant_id: Set(tenant.0),
        kind: Set("customer.captured".to_owned()),
        customer_id: Set(Some(id.0)),
        payload: Set(details.to_string()),
        created_at: Set(now),
        processed_at: Set(None),
        ..Default::default()
    })
    .exec_without_returning(&txn)
    .await?;
    audit::record(
        &txn,
        AuditEntry {
            tenant_id: Some(tenant),
            actor: Actor::Visitor(visitor.id),
            action: "customer.captured",
            target_type: "customer",
            target_id: Some(id.to_string()),
            details: Some(details),
        },
    )
    .await?;
    let tags = customers::load_tags(&txn, &[id.0])
        .await?
        .remove(&id.0)
        .unwrap_or_default();

    let notice = match &owner {
        Some(owner) if owner.active => {
            let counted = match outcome {
                Outcome::Created => None,
                // A zero window counts nothing: every return is a task of its own.
                Outcome::Merged if follow_up_window.is_zero() => None,
                Outcome::Merged => {
                    tasks::count_visit(
                        &txn,
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
                        &txn,
                        NewTask {
                            tenant,
                            assignee: StaffId(owner.id),
                            kind,
                            title: &title,
                            customer: Some(id),
                            channel: Some(channel_id),
                        },
                    )
                    .await?;
                    Some(TaskNotice {
                        task_id,
                        owner_openid: owner.openid.clone(),
                        channel_name: open.model.name.clone(),
                        customer_name: customer.name.clone(),
                        at: now,
                    })
                }
            }
        }
        _ => None,
    };
    let result = CaptureResult {
        capture_id: CaptureId(capture_id),
        customer_id: id,
        outcome,
        matched_by,
        owner: owner.map(|o| OwnerInfo {
            id: StaffId(o.id),
            display_name: o.display_name,
        }),
        tags,
        captured_at: now,
    };
    if let Some(key) = key {
        let stored = serde_json::to_string(&result)
            .map_err(|e| DomainError::Conflict(format!("capture result not storable: {e}")))?;
        idempotency::complete(&txn, key, &stored).await?;
    }
    data_version::bump(&txn, tenant).await?;
    txn.commit().await?;
    Ok(Some(Captured { result, notice }))
}

/// The live customer this visitor already is, by which identity it was found, and which of
/// the visitor's identities it may take. Read without a lock: the caller locks the row.
async fn find_existing(
    db: &DatabaseConnection,
    tenant: TenantId,
    visitor: &Visitor,
    phone: Option<&PhoneNumber>,
) -> DomainResult<Option<(customer::Model, MatchedBy, FreeIdentity)>> {
    let mut any = Condition::any().add(customer::Column::Openid.eq(visitor.openid.as_str()));
    if let Some(unionid) = &visitor.unionid {
        any = any.add(customer::Column::Unionid.eq(unionid.as_str()));
    }
    if let Some(phone) = phone {
        any = any.add(customer::Column::PhoneIndex.eq(phone.as_str()));
    }
    let candidates = customer::Entity::find()
        .filter(customer::Column::TenantId.eq(tenant.0))
        .filter(customer::Column::DeletedAt.is_null())
        .filter(any)
        .all(db)
        .await?;
    let by = |matched: MatchedBy| {
        candidates.iter().find(|c| match matched {
            MatchedBy::Unionid => visitor.unionid.is_some() && c.unionid == visitor.unionid,
            MatchedBy::Openid => c.openid.as_deref() == Some(visitor.openid.as_str()),
            MatchedBy::Phone => phone.is_some_and(|p| c.phone_index.as_deref() == Some(p.as_str())),
        })
    };
    for matched in [MatchedBy::Unionid, MatchedBy::Openid, MatchedBy::Phone] {
        if let Some(found) = by(matched) {
            // Another customer may hold the visitor's other identity (a record staff linked
            // earlier); the match keeps its own then, as the unique indexes demand.
            let held_elsewhere = |held: &dyn Fn(&customer::Model) -> bool| {
                candidates.iter().any(|c| c.id != found.id && held(c))
            };
            let identity = FreeIdentity {
                openid: !held_elsewhere(&|c| c.openid.as_deref() == Some(visitor.openid.as_str())),
                unionid: visitor.unionid.is_some()
                    && !held_elsewhere(&|c| c.unionid.is_some() && c.unionid == visitor.unionid),
            };
            return Ok(Some((found.clone(), matched, identity)));
        }
    }
    Ok(None)
}

/// What a merge brings to a customer on record.
struct Merge<'a> {
    visitor: &'a Visitor,
    identity: FreeIdentity,
    checked: &'a Checked,
    /// The owner for a customer who has none yet.
    owner: Option<StaffId>,
    now: DateTime<Utc>,
}

/// Which of the visitor's identities no other customer holds.
#[derive(Debug, Clone, Copy)]
struct FreeIdentity {
    openid: bool,
    unionid: bool,
}

/// Fills the customer's empty fields from the submission; differing values become conflicts.
async fn merge(
    txn: &DatabaseTransaction,
    tenant: TenantId,
    found: customer::Model,
    with: Merge<'_>,
) -> DomainResult<Vec<Conflict>> {
    let Merge {
        visitor,
        identity,
        checked,
        owner,
        now,
    } = with;
    let mut conflicts = Vec::new();
    let mut active: customer::ActiveModel = found.clone().into();
    if checked.name != found.name {
        conflicts.push(Conflict {
            field: "name".to_owned(),
            submitted: Value::String(checked.name.clone()),
        });
    }
    let mut phone = checked.phone.as_ref().map(|p| p.as_str().to_owned());
    if found.phone.is_none()
        && let Some(number) = &phone
        && phone_held(txn, tenant, number).await?
    {
        // Another live customer holds the number: keep it on the capture, not the record.
        conflicts.push(Conflict {
            field: "phone".to_owned(),
            submitted: Value::String(number.clone()),
        });
        phone = None;
    }
    if let Some(value) = fill(&mut conflicts, "phone", &found.phone, phone) {
        active.phone = Set(value.clone());
        active.phone_index = Set(value);
    }
    if let Some(value) = fill(
        &mut conflicts,
        "company",
        &found.company,
        checked.company.clone(),
    ) {
        active.company = Set(value);
    }
    if let Some(value) = fill(
        &mut conflicts,
        "industry",
        &found.industry,
        checked.industry.clone(),
    ) {
        active.industry = Set(value);
    }
    if let Some(value) = fill(
        &mut conflicts,
        "region",
        &found.region,
        checked.region.clone(),
    ) {
        active.region = Set(value);
    }
    if found.openid.is_none() && identity.openid {
        active.openid = Set(Some(visitor.openid.clone()));
    }
    if found.unionid.is_none() && identity.unionid {
        active.unionid = Set(visitor.unionid.clone());
    }
    if found.owner_id.is_none()
        && let Some(owner) = owner
    {
        active.owner_id = Set(Some(owner.0));
    }
    active.last_active_at = Set(Some(now));
    active.updated_at = Set(now);
    let id = found.id;
    customer::Entity::update_many()
        .set(active)
        .filter(customer::Column::Id.eq(id))
        .exec(txn)
        .await?;

    if !checked.custom.is_empty() {
        let have: Vec<(i64, String)> = customer_field_value::Entity::find()
            .select_only()
            .column(customer_field_value::Column::FieldId)
            .column(customer_field_value::Column::Value)
            .filter(customer_field_value::Column::CustomerId.eq(found.id))
            .order_by_asc(customer_field_value::Column::FieldId)
            .into_tuple()
            .all(txn)
            .await?;
        let mut fresh = Vec::new();
        for (def, values, raw) in &checked.custom {
            let current: Vec<&String> = have
                .iter()
                .filter(|(f, _)| *f == def.id.0)
                .map(|(_, v)| v)
                .collect();
            if current.is_empty() {
                fresh.push((def.id.0, values.clone()));
            } else {
                let mut a: Vec<&String> = current;
                let mut b: Vec<&String> = values.iter().collect();
                a.sort();
                b.sort();
                if a != b {
                    conflicts.push(Conflict {
                        field: format!("custom_fields.{}", def.key),
                        submitted: raw.clone(),
                    });
                }
            }
        }
        customers::write_field_values(txn, tenant, CustomerId(found.id), &fresh).await?;
    }
    Ok(conflicts)
}

/// The customer a capture lands on.
struct Target {
    id: i64,
    name: String,
}

/// The value to store for a field the record may lack: `Some` fills an empty field; a value
/// differing from a filled one is recorded as a conflict instead.
fn fill(
    conflicts: &mut Vec<Conflict>,
    field: &str,
    current: &Option<String>,
    submitted: Option<String>,
) -> Option<Option<String>> {
    match (current, submitted) {
        (None, Some(value)) => Some(Some(value)),
        (Some(have), Some(value)) if *have != value => {
            conflicts.push(Conflict {
                field: field.to_owned(),
                submitted: Value::String(value),
            });
            None
        }
        _ => None,
    }
}

async fn phone_held(
    txn: &DatabaseTransaction,
    tenant: TenantId,
    phone: &str,
) -> DomainResult<bool> {
    Ok(customer::Entity::find()
        .select_only()
        .column(customer::Column::Id)
        .filter(customer::Column::TenantId.eq(tenant.0))
        .filter(customer::Column::PhoneIndex.eq(phone))
        .into_tuple::<i64>()
        .one(txn)
        .await?
        .is_some())
}

/// A staff row with what an owner needs.
#[derive(Debug, Clone)]
struct OwnerRow {
    id: i64,
    display_name: String,
    openid: String,
    active: bool,
}

impl From<staff::Model> for OwnerRow {
    fn from(s: staff::Model) -> Self {
        OwnerRow {
            id: s.id,
            display_name: s.display_name,
            openid: s.openid,
            active: s.active,
        }
    }
}

async fn staff_row(
    db: &DatabaseConnection,
    tenant: TenantId,
    id: StaffId,
) -> DomainResult<Option<OwnerRow>> {
    Ok(staff::Entity::find_by_id(id.0)
        .filter(staff::Column::TenantId.eq(tenant.0))
        .one(db)
        .await?
        .map(OwnerRow::from))
}

/// The owner the channel's policy gives a customer without one. Round-robin deals to the
/// active members of the list in turn.
async fn pick_owner(db: &DatabaseConnection, open: &OpenChannel) -> DomainResult<Option<OwnerRow>> {
    match &open.owner_policy {
        OwnerPolicy::Pool => Ok(None),
        OwnerPolicy::Fixed { staff_id } => Ok(staff_row(db, open.tenant, *staff_id)
            .await?
            .filter(|s| s.active)),
        OwnerPolicy::RoundRobin { staff_ids } => {
            let active: Vec<OwnerRow> = staff::Entity::find()
                .filter(staff::Column::TenantId.eq(open.tenant.0))
                .filter(staff::Column::Active.eq(true))
                .filter(staff::Column::Id.is_in(staff_ids.iter().map(|s| s.0)))
                .all(db)
                .await?
                .into_iter()
                .map(OwnerRow::from)
                .collect();
            let members: Vec<&OwnerRow> = staff_ids
                .iter()
                .filter_map(|id| active.iter().find(|s| s.id == id.0))
                .collect();
            if members.is_empty() {
                return Ok(None);
            }
            let turn = take_turn(db, open.model.id).await?;
            let len = i64::try_from(members.len()).unwrap_or(i64::MAX);
            let index = usize::try_from(turn.rem_euclid(len)).unwrap_or(0);
            Ok(members.get(index).map(|m| (*m).clone()))
        }
    }
}

/// Takes the channel's next round-robin turn and returns its number (0 for the first).
///
/// One atomic increment-and-read, committed on its own: turns are handed out in order however
/// many captures run at once, and no capture waits for another's transaction. A capture that
/// fails after taking its turn (it lost a race for the same person and merged instead) leaves
/// that turn unused.
async fn take_turn(db: &DatabaseConnection, channel: i64) -> DomainResult<i64> {
    let backend = db.get_database_backend();
    let taken: i64 = match backend {
        // MySQL has no UPDATE … RETURNING; LAST_INSERT_ID(expr) hands the new value back in
        // the statement's own reply.
        DbBackend::MySql => {
            let result = db
                .execute_raw(Statement::from_sql_and_values(
                    backend,
                    "UPDATE channel_owner_turns SET taken = LAST_INSERT_ID(taken + 1) \
                     WHERE channel_id = ?",
                    [channel.into()],
                ))
                .await?;
            i64::try_from(result.last_insert_id()).unwrap_or(0)
        }
        _ => {
            let update = Query::update()
                .table(channel_owner_turn::Entity)
                .value(
                    channel_owner_turn::Column::Taken,
                    Expr::col(channel_owner_turn::Column::Taken).add(1),
                )
                .and_where(channel_owner_turn::Column::ChannelId.eq(channel))
                .returning_col(channel_owner_turn::Column::Taken)
                .to_owned();
            let row = db.query_one(&update).await?;
            match row {
                Some(row) => row.try_get_by_index(0)?,
                None => 0,
            }
        }
    };
    Ok(taken - 1)
}

/// The captures of a customer the viewer can see, newest first.
pub async fn customer_captures(
    db: &DatabaseConnection,
    viewer: customers::Viewer,
    id: CustomerId,
) -> DomainResult<Vec<CaptureRecord>> {
    Customers::new(db, viewer).get(id).await?;
    let rows = capture::Entity::find()
        .filter(capture::Column::TenantId.eq(viewer.tenant.0))
        .filter(capture::Column::CustomerId.eq(id.0))
        .order_by_desc(capture::Column::Id)
        .limit(200)
        .all(db)
        .await?;
    let names: std::collections::HashMap<i64, String> = channel::Entity::find()
        .filter(channel::Column::TenantId.eq(viewer.tenant.0))
        .filter(channel::Column::Id.is_in(rows.iter().map(|r| r.channel_id)))
        .all(db)
        .await?
        .into_iter()
        .map(|c| (c.id, c.name))
        .collect();
    Ok(rows
        .into_iter()
        .map(|r| CaptureRecord {
            id: CaptureId(r.id),
            channel_id: ChannelId(r.channel_id),
            channel_name: names.get(&r.channel_id).cloned().unwrap_or_default(),
            outcome: if r.outcome == "created" {
                Outcome::Created
            } else {
                Outcome::Merged
            },
            matched_by: match r.matched_by.as_deref() {
                Some("unionid") => Some(MatchedBy::Unionid),
                Some("openid") => Some(MatchedBy::Openid),
                Some("phone") => Some(MatchedBy::Phone),
                _ => None,
            },
            consent_policy_version: r.consent_policy_version,
            consented_at: r.consented_at,
            conflicts: serde_json::from_str(&r.conflicts).unwrap_or_default(),
            created_at: r.created_at,
        })
        .collect())
}
