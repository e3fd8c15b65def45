//! Scan-to-record (扫码即录入): a visitor submits a channel's form and is recorded once.
//!
//! One transaction per capture: find the customer the visitor already is (same unionid, else
//! openid, else phone), or create one; fill empty fields without overwriting what staff
//! entered; add the channel's tags; give an owner by the channel's policy; record the visit,
//! the consent, an outbox event and the owner's task. Unique indexes on phone, openid and
//! unionid settle races between concurrent first captures: the loser retries and merges.

use crate::kernel::clock;
use chrono::{DateTime, Utc};
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseConnection, DatabaseTransaction, EntityTrait,
    QueryFilter, QueryOrder, QuerySelect, Set, TransactionTrait,
};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::access::SystemTask;
use crate::channels::{self, FormField, FormTarget, OpenChannel, OwnerPolicy};
use crate::customers::{self, CustomerTag, Customers, PhoneNumber, TagSource, contact};
use crate::identity::visitors::Visitor;
use crate::kernel::error::{DomainError, DomainResult, ErrorCode, FieldIssue, Step};
use crate::kernel::ids::{CaptureId, ChannelId, CustomerId, StaffId, TaskId, TenantId};
use crate::kernel::names::checked_name;
use crate::library::custom_fields::{self, CustomFieldDef};
use crate::store::entities::{capture, channel, customer, customer_field_value, staff};
use crate::store::retry;
use crate::support::audit::{self, Actor, AuditEntry};
use crate::support::data_version;
use crate::support::idempotency::{self, IdempotencyKey};
use crate::support::outbox::{self, EventKind};
use crate::tasks::{self, NewTask, TaskKind};

mod check;
mod dedupe;
mod owner;
mod records;
mod steps;

use crate::kernel::values::Conflicts;
pub use crate::kernel::values::{Conflict, MatchedBy, Outcome};
use check::{Checked, check};
use dedupe::{Merge, Target, find_existing, merge};
use owner::{pick_owner, staff_row};
pub use records::customer_captures;
use steps::Attempt;

/// Attempts at the capture transaction when a concurrent capture wins a unique index or a
/// deadlock is detected.
const ATTEMPTS: usize = retry::ATTEMPTS;

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
    /// The tags the rules put on (or took off) the customer in this capture, and why.
    #[serde(default)]
    pub rule_changes: Vec<customers::automation::RuleChange>,
    pub captured_at: DateTime<Utc>,
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

/// Records the visitor's submission; see the module documentation. With `key`, the answer
/// is stored for replays in the same transaction.
#[tracing::instrument(skip_all, fields(visitor = %visitor.id, scene = %submission.scene))]
pub async fn submit(
    db: &DatabaseConnection,
    visitor: &Visitor,
    submission: &Submission,
    key: Option<&IdempotencyKey>,
    follow_up_window: chrono::Duration,
) -> DomainResult<CaptureResult> {
    let open = channels::open(db, &submission.scene, clock::now()).await?;
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
/// or identity first (the retry merges into it), or the database rolled it back for another
/// transaction's sake (a deadlock, a lock wait, a busy SQLite file).
fn retryable(err: &DomainError) -> bool {
    match err {
        DomainError::Taken { code, .. } => {
            matches!(
                code,
                ErrorCode::PhoneTaken | ErrorCode::CustomerIdentityTaken
            )
        }
        other => retry::transient_domain(other),
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
) -> DomainResult<Option<CaptureResult>> {
    let tenant = open.tenant;
    let now = clock::now();
    let existing = find_existing(db, tenant, visitor, checked.phone.as_ref()).await?;
    let owner = match existing.as_ref().and_then(|(found, ..)| found.owner_id) {
        Some(owner) => staff_row(db, tenant, owner).await?,
        None => pick_owner(db, open).await?,
    };

    let txn = db.begin().await?;
    let step = Attempt {
        txn: &txn,
        open,
        visitor,
        checked,
        owner: owner.as_ref(),
        now,
    };
    let Some(written) = step.write_customer(existing).await? else {
        return Ok(None);
    };
    let id = CustomerId(written.target.id);
    step.attach_channel_tags(db, id, written.outcome).await?;
    let reaction = match written.outcome {
        Outcome::Created => customers::automation::react_new(&txn, tenant, id, now).await?,
        Outcome::Merged => customers::automation::react(&txn, tenant, id, now).await?,
    };
    // A rule may have given the customer an owner (or taken the owner away).
    let owner = match reaction.owner {
        Some(Some(assigned)) => staff_row(&txn, tenant, assigned).await?,
        Some(None) => None,
        None => owner.clone(),
    };
    let step = Attempt {
        owner: owner.as_ref(),
        ..step
    };
    let (capture_id, details) = step.record_visit(id, &written).await?;
    let tags = customers::load_tags(&txn, &[id.0])
        .await?
        .remove(&id.0)
        .unwrap_or_default();
    let task = step.follow_up(id, &written, follow_up_window).await?;
    step.announce(id, details, task).await?;
    let rule_changes = reaction.changes;
    let result = CaptureResult {
        capture_id,
        customer_id: id,
        outcome: written.outcome,
        matched_by: written.matched_by,
        owner: owner.map(|o| OwnerInfo {
            id: StaffId(o.id),
            display_name: o.display_name,
        }),
        tags,
        rule_changes,
        captured_at: now,
    };
    if let Some(key) = key {
        let stored = serde_json::to_string(&result)
            .map_err(|e| DomainError::Conflict(format!("capture result not storable: {e}")))?;
        idempotency::complete(&txn, key, &stored).await?;
    }
    data_version::bump_for(&txn, tenant, &[id.0]).await?;
    txn.commit().await.step("committing the capture")?;
    Ok(Some(result))
}
