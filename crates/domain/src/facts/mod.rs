//! Facts about customers: orders, follow-ups and activity events, as people, ERP/OA systems
//! and the mini-program record them, with a historical `occurred_at` so that history can be
//! loaded. Each fact is written in one transaction with what it changes: the customer's
//! derived fields (last order, last follow-up, last activity, project stage, each the latest
//! fact's whatever the order of arrival) and the verdicts of the tenant's rules, so the answer
//! and every read after it show the result.
//!
//! Owns `orders`, `follow_ups` and `activity_events`. Staff see the facts of the customers
//! they see; a visitor sends events for their own customer records only; anything else is
//! reported as a missing customer.

use chrono::{DateTime, Duration, Utc};
use sea_orm::{
    ColumnTrait, Condition, DatabaseConnection, DatabaseTransaction, EntityTrait, QueryFilter,
    QueryOrder, QuerySelect, TransactionTrait,
};
use serde::Serialize;

use crate::access::{StaffActor, Viewer};
use crate::customers::automation::{self, RuleChange};
use crate::customers::{self, FactNote, contact};
use crate::identity::visitors::Visitor;
use crate::kernel::error::{DomainError, DomainResult, FieldIssue, Step};
use crate::kernel::ids::{CustomerId, StaffId};
use crate::store::entities::customer;
use crate::store::retry;
use crate::support::audit::{self, AuditEntry};
use crate::support::data_version;

mod events;
mod follow_ups;
mod orders;

pub use events::{ActivityEvent, NewEvent, PROPERTIES_MAX_BYTES};
pub use follow_ups::{CONTENT_MAX, FollowUp, NewFollowUp};
pub use orders::{AMOUNT_MAX_FEN, NewOrder, Order};

/// How far ahead of the server's clock a fact's `occurred_at` may be.
pub const FUTURE_SKEW: Duration = Duration::minutes(5);
/// Most facts in one bulk request.
pub const BULK_MAX: usize = 1_000;

/// Who records a fact.
#[derive(Debug, Clone)]
pub enum Sender {
    Staff(StaffActor),
    /// The mini-program, for the visitor's own customer records.
    Visitor(Visitor),
}

/// A fact as recorded, with the tag changes its rules made.
#[derive(Debug, Clone, Serialize)]
pub struct Recorded<T> {
    pub fact: T,
    /// False when the fact was already recorded (an order re-sent with its `external_ref`).
    pub created: bool,
    pub rule_changes: Vec<RuleChange>,
}

/// The outcome of one item of a bulk request.
#[derive(Debug)]
pub enum ItemOutcome<T> {
    Done(Recorded<T>),
    Failed(DomainError),
}

/// One page of a customer's facts, newest first.
#[derive(Debug, Clone, Serialize)]
pub struct FactPage<T> {
    pub items: Vec<T>,
    pub next_cursor: Option<String>,
}

/// Records and reads facts for one sender.
pub struct Facts<'a> {
    db: &'a DatabaseConnection,
    sender: Sender,
}

impl<'a> Facts<'a> {
    pub fn staff(db: &'a DatabaseConnection, staff: &StaffActor) -> Self {
        Facts {
            db,
            sender: Sender::Staff(*staff),
        }
    }

    pub fn visitor(db: &'a DatabaseConnection, visitor: &Visitor) -> Self {
        Facts {
            db,
            sender: Sender::Visitor(visitor.clone()),
        }
    }

    fn staff_id(&self) -> Option<StaffId> {
        match &self.sender {
            Sender::Staff(staff) => Some(staff.id),
            Sender::Visitor(_) => None,
        }
    }

    /// Staff only (orders and follow-ups are not the mini-program's to send).
    fn staff_actor(&self) -> DomainResult<StaffActor> {
        match &self.sender {
            Sender::Staff(staff) => Ok(*staff),
            Sender::Visitor(_) => Err(DomainError::Forbidden(
                "only staff and servers record this fact".to_owned(),
            )),
        }
    }

    /// The customer the fact is about, locked, if the sender may see it.
    async fn lock(
        &self,
        txn: &DatabaseTransaction,
        id: CustomerId,
    ) -> DomainResult<customer::Model> {
        let condition = match &self.sender {
            Sender::Staff(staff) => Viewer::of(staff).condition(),
            Sender::Visitor(_) => Condition::all(),
        };
        let row = customer::Entity::find_by_id(id)
            .filter(condition)
            .filter(customer::Column::DeletedAt.is_null())
            .lock_exclusive()
            .one(txn)
            .await
            .step("locking the customer")?;
        match (&self.sender, row) {
            (Sender::Visitor(v), Some(row))
                if !contact::is_visitors(&row, &v.openid, v.unionid.as_deref()) =>
            {
                Err(DomainError::NotFound("customer"))
            }
            (_, row) => row.ok_or(DomainError::NotFound("customer")),
        }
    }

    /// The customer, if the sender may see it, unlocked (for listings).
    async fn visible(&self, id: CustomerId) -> DomainResult<customer::Model> {
        let staff = self.staff_actor()?;
        customer::Entity::find_by_id(id)
            .filter(Viewer::of(&staff).condition())
            .filter(customer::Column::DeletedAt.is_null())
            .one(self.db)
            .await?
            .ok_or(DomainError::NotFound("customer"))
    }

    /// After the fact's row: the derived fields, the rules, the audit row and the data
    /// version, in the fact's transaction.
    async fn settle(
        &self,
        txn: &DatabaseTransaction,
        row: &customer::Model,
        note: FactNote<'_>,
        audit: (&str, String),
        now: DateTime<Utc>,
    ) -> DomainResult<Vec<RuleChange>> {
        let written = customers::note_fact(txn, row, note, now).await?;
        let changes = automation::react_row(txn, &written, now).await?.changes;
        audit::record(
            txn,
            AuditEntry {
                tenant_id: Some(row.tenant_id),
                actor: match &self.sender {
                    Sender::Staff(staff) => audit::Actor::Staff(staff.id),
                    Sender::Visitor(v) => audit::Actor::Visitor(v.id),
                },
                action: audit.0,
                target_type: "customer",
                target_id: Some(row.id.to_string()),
                details: Some(serde_json::json!({ "fact": audit.1 })),
            },
        )
        .await?;
        data_version::bump_for(txn, row.tenant_id, &[row.id.0]).await?;
        Ok(changes)
    }

    /// Runs `one` for every item, each in its own transaction: one bad item does not stop
    /// the others.
    async fn bulk<T, N, F, Fut>(&self, items: Vec<N>, one: F) -> DomainResult<Vec<ItemOutcome<T>>>
    where
        F: Fn(N) -> Fut,
        Fut: std::future::Future<Output = DomainResult<Recorded<T>>>,
    {
        if items.len() > BULK_MAX {
            return Err(FieldIssue::new(
                "items",
                "length",
                format!("at most {BULK_MAX} items per request"),
            )
            .into());
        }
        let mut out = Vec::with_capacity(items.len());
        for item in items {
            out.push(match one(item).await {
                Ok(done) => ItemOutcome::Done(done),
                // An outage stops the whole request: the client retries it.
                Err(DomainError::Unavailable(e)) => return Err(DomainError::Unavailable(e)),
                Err(err) => ItemOutcome::Failed(err),
            });
        }
        Ok(out)
    }
}

/// `occurred_at` checked: not ahead of the clock by more than [`FUTURE_SKEW`], not before 2000.
fn occurred(
    at: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
    issues: &mut Vec<FieldIssue>,
) -> DateTime<Utc> {
    // Whole seconds, as MySQL keeps them (it would round a fraction, possibly into the
    // future of the evaluation that follows).
    let at = at.unwrap_or(now);
    let at = chrono::Timelike::with_nanosecond(&at, 0).unwrap_or(at);
    if at > now + FUTURE_SKEW {
        issues.push(FieldIssue::new(
            "occurred_at",
            "future",
            format!(
                "must not be more than {} minutes ahead of the server's clock",
                FUTURE_SKEW.num_minutes()
            ),
        ));
    }
    if at < DateTime::<Utc>::from_timestamp(946_684_800, 0).unwrap_or(at) {
        issues.push(FieldIssue::new(
            "occurred_at",
            "range",
            "must be after 2000-01-01",
        ));
    }
    at
}

/// One page of a customer's facts of one table, latest `occurred_at` first (then the latest
/// id), continuing after `cursor_text`; `key` reads a row's `(occurred_at, id)`.
async fn page_of<E, T>(
    db: &DatabaseConnection,
    query: sea_orm::Select<E>,
    (occurred, id): (E::Column, E::Column),
    limit: u64,
    cursor_text: Option<&str>,
    key: impl Fn(&E::Model) -> (DateTime<Utc>, i64),
) -> DomainResult<FactPage<T>>
where
    E: EntityTrait,
    T: From<E::Model>,
{
    let mut query = query;
    if let Some(text) = cursor_text {
        let (at, last) = parse_cursor(text)?;
        query = query.filter(
            Condition::any()
                .add(occurred.lt(at))
                .add(Condition::all().add(occurred.eq(at)).add(id.lt(last))),
        );
    }
    let mut rows = query
        .order_by_desc(occurred)
        .order_by_desc(id)
        .limit(limit + 1)
        .all(db)
        .await?;
    let more = rows.len() as u64 > limit;
    rows.truncate(usize::try_from(limit).unwrap_or(usize::MAX));
    let next_cursor = more
        .then(|| {
            rows.last().map(|r| {
                let (at, id) = key(r);
                cursor(at, id)
            })
        })
        .flatten();
    Ok(FactPage {
        items: rows.into_iter().map(T::from).collect(),
        next_cursor,
    })
}

/// A keyset cursor over `(occurred_at, id)`, newest first.
fn cursor(at: DateTime<Utc>, id: i64) -> String {
    format!("{}_{id}", at.timestamp_micros())
}

fn parse_cursor(text: &str) -> DomainResult<(DateTime<Utc>, i64)> {
    let bad = || FieldIssue::new("cursor", "invalid", "not a cursor this listing gave");
    let (at, id) = text.split_once('_').ok_or_else(bad)?;
    let at = at
        .parse::<i64>()
        .ok()
        .and_then(DateTime::<Utc>::from_timestamp_micros)
        .ok_or_else(bad)?;
    let id = id.parse::<i64>().map_err(|_| bad())?;
    Ok((at, id))
}

/// Text trimmed, `None` when empty, with an issue when longer than `max` characters.
fn text(
    field: &'static str,
    value: Option<String>,
    max: usize,
    issues: &mut Vec<FieldIssue>,
) -> Option<String> {
    customers::optional_text(field, value, max, issues)
}
