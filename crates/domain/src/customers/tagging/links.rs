//! The one writer of `customer_tags` and `tag_history`: every tag that reaches or leaves a
//! customer, from any source (manual, batch, channel, and later rules and imports), is written
//! here, and each change gets its `tag_history` row in the same statement batch and the same
//! transaction. `tag_history` is therefore the complete, ordered feed of tag changes that the
//! rules engine and a tag index can read; nothing else in the crate inserts or deletes either
//! table.
//!
//! Callers decide *what* changes (the exclusive-group rules, visibility, locks): they hold the
//! row locks of the customers they change, and bump the tenant's data version once per
//! transaction.

use chrono::{DateTime, Utc};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ColumnTrait, Condition, DatabaseTransaction, EntityTrait, QueryFilter, QuerySelect, Set,
};

use crate::kernel::error::{DomainResult, Step};
use crate::kernel::ids::{CustomerId, RuleId, StaffId, TagId, TenantId};
use crate::kernel::tagging::{TagAction, TagSource};
use crate::store::entities::{customer_tag, tag_history, tag_veto};

/// Links a rule hands to a person per statement.
const ADOPT_CHUNK: usize = 500;

/// Rows per multi-row statement: well inside SQLite's 32,766 bound parameters at a link's or
/// a history row's dozen columns.
const ROWS_PER_STATEMENT: usize = 1_000;

/// `(customer, tag)` pairs one delete names: `pairs_of` ORs one term per customer, and SQLite
/// refuses expressions nested deeper than 1,000.
pub(crate) const PAIRS_PER_STATEMENT: usize = 200;

/// The longest reason kept on a link or a history row, in characters.
const REASON_MAX: usize = 200;

/// Who made a change and why; recorded on the links added and on every history row.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Attribution<'a> {
    pub(crate) source: TagSource,
    /// Why an automatic source assigned the tag ("captured through channel …"); kept on the link.
    pub(crate) reason: Option<&'a str>,
    /// What the person said about the change; kept on the history row.
    pub(crate) note: Option<&'a str>,
    /// The staff member who made the change; `None` for a visitor's capture or the system.
    pub(crate) actor: Option<StaffId>,
    /// The rule that made the change, for `source = rule`.
    pub(crate) rule: Option<RuleStamp<'a>>,
}

/// Which rule (and version) assigned or removed a tag, and the values that satisfied it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RuleStamp<'a> {
    pub(crate) id: RuleId,
    pub(crate) version: i32,
    /// The satisfied terms as JSON text, kept on the link.
    pub(crate) evidence: Option<&'a str>,
}

fn clipped(reason: Option<&str>) -> Option<String> {
    reason.map(|r| r.chars().take(REASON_MAX).collect())
}

/// The link of `tag` on `customer`, as `by` gives it.
fn link_row(
    tenant: TenantId,
    customer: i64,
    tag: i64,
    by: Attribution<'_>,
    at: DateTime<Utc>,
) -> customer_tag::ActiveModel {
    customer_tag::ActiveModel {
        customer_id: Set(CustomerId(customer)),
        tag_id: Set(TagId(tag)),
        tenant_id: Set(tenant),
        source: Set(by.source),
        reason: Set(clipped(by.reason)),
        assigned_by: Set(by.actor),
        created_at: Set(at),
        rule_id: Set(by.rule.map(|r| r.id)),
        rule_version: Set(by.rule.map(|r| r.version)),
        evidence: Set(by.rule.and_then(|r| r.evidence).map(str::to_owned)),
    }
}

/// A set of links: one customer with several tags, or one tag on several customers.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Links<'a> {
    OfCustomer {
        customer: i64,
        tags: &'a [i64],
    },
    OfTag {
        tag: i64,
        customers: &'a [i64],
    },
    /// `(customer, tag)` pairs of any customers and tags.
    Pairs(&'a [(i64, i64)]),
}

impl Links<'_> {
    fn is_empty(&self) -> bool {
        match self {
            Links::OfCustomer { tags, .. } => tags.is_empty(),
            Links::OfTag { customers, .. } => customers.is_empty(),
            Links::Pairs(pairs) => pairs.is_empty(),
        }
    }

    /// `(customer, tag)` pairs.
    fn pairs(&self) -> Vec<(i64, i64)> {
        match *self {
            Links::OfCustomer { customer, tags } => tags.iter().map(|&t| (customer, t)).collect(),
            Links::OfTag { tag, customers } => customers.iter().map(|&c| (c, tag)).collect(),
            Links::Pairs(pairs) => pairs.to_vec(),
        }
    }

    /// The links of this set that exist.
    fn existing(&self) -> Condition {
        match *self {
            Links::OfCustomer { customer, tags } => Condition::all()
                .add(customer_tag::Column::CustomerId.eq(customer))
                .add(customer_tag::Column::TagId.is_in(tags.iter().copied())),
            Links::OfTag { tag, customers } => Condition::all()
                .add(customer_tag::Column::TagId.eq(tag))
                .add(customer_tag::Column::CustomerId.is_in(customers.iter().copied())),
            Links::Pairs(pairs) => pairs_of(
                customer_tag::Column::CustomerId,
                customer_tag::Column::TagId,
                pairs,
            ),
        }
    }
}

/// Adds `links`, none of which may exist yet (the caller has read the customers' tags under
/// their locks), and records each in the history.
pub(crate) async fn add(
    txn: &DatabaseTransaction,
    tenant: TenantId,
    links: Links<'_>,
    by: Attribution<'_>,
    at: DateTime<Utc>,
) -> DomainResult<()> {
    if links.is_empty() {
        return Ok(());
    }
    let pairs = links.pairs();
    customer_tag::Entity::insert_many(
        pairs
            .iter()
            .map(|&(customer, tag)| link_row(tenant, customer, tag, by, at)),
    )
    .exec_without_returning(txn)
    .await
    .step("linking tags to customers")?;
    if !by.source.is_automatic() {
        // A person's new decision replaces an old "not this tag".
        lift_vetoes(txn, links).await?;
    }
    record(txn, tenant, &pairs, TagAction::Add, by, at).await
}

/// A person gives customers tags they already carry from an automatic source (a rule, a
/// channel): the links become the person's, so no rule takes them off again, and the history
/// records the decision.
pub(crate) async fn adopt(
    txn: &DatabaseTransaction,
    tenant: TenantId,
    links: Links<'_>,
    by: Attribution<'_>,
    at: DateTime<Utc>,
) -> DomainResult<()> {
    if links.is_empty() {
        return Ok(());
    }
    customer_tag::Entity::update_many()
        .col_expr(customer_tag::Column::Source, Expr::value(by.source))
        .col_expr(
            customer_tag::Column::Reason,
            Expr::value(Option::<String>::None),
        )
        .col_expr(customer_tag::Column::AssignedBy, Expr::value(by.actor))
        .col_expr(
            customer_tag::Column::RuleId,
            Expr::value(Option::<i64>::None),
        )
        .col_expr(
            customer_tag::Column::RuleVersion,
            Expr::value(Option::<i32>::None),
        )
        .col_expr(
            customer_tag::Column::Evidence,
            Expr::value(Option::<String>::None),
        )
        .filter(links.existing())
        .exec(txn)
        .await
        .step("giving tags to a person")?;
    lift_vetoes(txn, links).await?;
    record(txn, tenant, &links.pairs(), TagAction::Add, by, at).await
}

/// Makes every link rule `rule` holds a person's (`by`): a rule disabled or deleted with
/// `keep_tags` leaves its tags where they are, as manual tags. Returns how many links of each
/// tag changed hands.
pub(crate) async fn adopt_rule(
    txn: &DatabaseTransaction,
    tenant: TenantId,
    rule: RuleId,
    by: Attribution<'_>,
    at: DateTime<Utc>,
) -> DomainResult<Vec<(i64, u64)>> {
    let held: Vec<(i64, i64)> = customer_tag::Entity::find()
        .select_only()
        .column(customer_tag::Column::TagId)
        .column(customer_tag::Column::CustomerId)
        .filter(customer_tag::Column::TenantId.eq(tenant.0))
        .filter(customer_tag::Column::RuleId.eq(rule.0))
        .filter(customer_tag::Column::Source.eq(TagSource::Rule))
        .into_tuple()
        .all(txn)
        .await
        .step("reading the links a rule holds")?;
    let mut by_tag: std::collections::BTreeMap<i64, Vec<i64>> = std::collections::BTreeMap::new();
    for (tag, customer) in held {
        by_tag.entry(tag).or_default().push(customer);
    }
    let mut kept = Vec::new();
    for (tag, customers) in by_tag {
        // In slices, so that no statement outgrows the database's limit on parameters.
        for slice in customers.chunks(ADOPT_CHUNK) {
            let links = Links::OfTag {
                tag,
                customers: slice,
            };
            adopt(txn, tenant, links, by, at).await?;
        }
        kept.push((tag, customers.len() as u64));
    }
    Ok(kept)
}

/// Records that a person took these tags off these customers: no rule puts them back while
/// the rules that want them go on wanting them (the rules engine lifts the veto once none does).
pub(crate) async fn veto(
    txn: &DatabaseTransaction,
    tenant: TenantId,
    pairs: &[(i64, i64)],
    staff: Option<StaffId>,
    at: DateTime<Utc>,
) -> DomainResult<()> {
    if pairs.is_empty() {
        return Ok(());
    }
    // A veto already there stays as it is.
    let rows = pairs.iter().map(|&(customer, tag)| tag_veto::ActiveModel {
        customer_id: Set(CustomerId(customer)),
        tag_id: Set(TagId(tag)),
        tenant_id: Set(tenant),
        staff_id: Set(staff),
        created_at: Set(at),
    });
    tag_veto::Entity::insert_many(rows)
        .on_conflict_do_nothing_on([tag_veto::Column::CustomerId, tag_veto::Column::TagId])
        .exec_without_returning(txn)
        .await
        .step("recording the removed tags")?;
    Ok(())
}

/// Lifts the vetoes on `links`.
pub(crate) async fn lift_vetoes(txn: &DatabaseTransaction, links: Links<'_>) -> DomainResult<()> {
    if links.is_empty() {
        return Ok(());
    }
    let condition = match links {
        Links::OfCustomer { customer, tags } => Condition::all()
            .add(tag_veto::Column::CustomerId.eq(customer))
            .add(tag_veto::Column::TagId.is_in(tags.iter().copied())),
        Links::OfTag { tag, customers } => Condition::all()
            .add(tag_veto::Column::TagId.eq(tag))
            .add(tag_veto::Column::CustomerId.is_in(customers.iter().copied())),
        Links::Pairs(pairs) => {
            pairs_of(tag_veto::Column::CustomerId, tag_veto::Column::TagId, pairs)
        }
    };
    tag_veto::Entity::delete_many()
        .filter(condition)
        .exec(txn)
        .await
        .step("lifting tag vetoes")?;
    Ok(())
}

/// Removes those of `links` that exist, records each removal in the history, and returns the
/// `(customer, tag)` pairs removed.
pub(crate) async fn remove(
    txn: &DatabaseTransaction,
    tenant: TenantId,
    links: Links<'_>,
    by: Attribution<'_>,
    at: DateTime<Utc>,
) -> DomainResult<Vec<(i64, i64)>> {
    if links.is_empty() {
        return Ok(Vec::new());
    }
    let present: Vec<(i64, i64)> = customer_tag::Entity::find()
        .select_only()
        .column(customer_tag::Column::CustomerId)
        .column(customer_tag::Column::TagId)
        .filter(customer_tag::Column::TenantId.eq(tenant.0))
        .filter(links.existing())
        .into_tuple()
        .all(txn)
        .await
        .step("reading the links to remove")?;
    // Delete only the links read, so the history names exactly what went.
    let customers: Vec<i64> = present.iter().map(|&(c, _)| c).collect();
    let tags: Vec<i64> = present.iter().map(|&(_, t)| t).collect();
    let read = match links {
        Links::OfCustomer { customer, .. } => Links::OfCustomer {
            customer,
            tags: &tags,
        },
        Links::OfTag { tag, .. } => Links::OfTag {
            tag,
            customers: &customers,
        },
        Links::Pairs(_) => Links::Pairs(&present),
    };
    unlink(txn, tenant, read, &present, by, at).await?;
    Ok(present)
}

/// Removes every tag of `customer` (it is being deleted), with history rows saying so.
pub(crate) async fn remove_all(
    txn: &DatabaseTransaction,
    tenant: TenantId,
    customer: i64,
    by: Attribution<'_>,
    at: DateTime<Utc>,
) -> DomainResult<usize> {
    let present: Vec<(i64, i64)> = customer_tag::Entity::find()
        .select_only()
        .column(customer_tag::Column::CustomerId)
        .column(customer_tag::Column::TagId)
        .filter(customer_tag::Column::CustomerId.eq(customer))
        .into_tuple()
        .all(txn)
        .await
        .step("reading the customer's tags")?;
    let tags: Vec<i64> = present.iter().map(|&(_, t)| t).collect();
    let read = Links::OfCustomer {
        customer,
        tags: &tags,
    };
    unlink(txn, tenant, read, &present, by, at).await?;
    Ok(present.len())
}

/// Deletes `read`, the links just read as `present` under the customers' locks, and records
/// each removal.
async fn unlink(
    txn: &DatabaseTransaction,
    tenant: TenantId,
    read: Links<'_>,
    present: &[(i64, i64)],
    by: Attribution<'_>,
    at: DateTime<Utc>,
) -> DomainResult<()> {
    if present.is_empty() {
        return Ok(());
    }
    customer_tag::Entity::delete_many()
        .filter(read.existing())
        .exec(txn)
        .await
        .step("unlinking tags from customers")?;
    record(txn, tenant, present, TagAction::Remove, by, at).await
}

async fn record(
    txn: &DatabaseTransaction,
    tenant: TenantId,
    pairs: &[(i64, i64)],
    action: TagAction,
    by: Attribution<'_>,
    at: DateTime<Utc>,
) -> DomainResult<()> {
    let rows: Vec<(i64, i64, Attribution<'_>)> = pairs
        .iter()
        .map(|&(customer, tag)| (customer, tag, by))
        .collect();
    record_each(txn, tenant, &rows, action, at).await
}

/// One history row per `(customer, tag, attribution)`.
async fn record_each(
    txn: &DatabaseTransaction,
    tenant: TenantId,
    rows: &[(i64, i64, Attribution<'_>)],
    action: TagAction,
    at: DateTime<Utc>,
) -> DomainResult<()> {
    for chunk in rows.chunks(ROWS_PER_STATEMENT) {
        history_chunk(txn, tenant, chunk, action, at).await?;
    }
    Ok(())
}

async fn history_chunk(
    txn: &DatabaseTransaction,
    tenant: TenantId,
    rows: &[(i64, i64, Attribution<'_>)],
    action: TagAction,
    at: DateTime<Utc>,
) -> DomainResult<()> {
    tag_history::Entity::insert_many(rows.iter().map(|&(customer, tag, by)| {
        tag_history::ActiveModel {
            tenant_id: Set(tenant),
            customer_id: Set(CustomerId(customer)),
            tag_id: Set(TagId(tag)),
            action: Set(action),
            source: Set(by.source),
            actor_id: Set(by.actor),
            note: Set(by.note.map(str::to_owned)),
            created_at: Set(at),
            rule_id: Set(by.rule.map(|r| r.id)),
            rule_version: Set(by.rule.map(|r| r.version)),
            reason: Set(clipped(by.reason)),
            ..Default::default()
        }
    }))
    .exec_without_returning(txn)
    .await
    .step("writing the tag history")?;
    Ok(())
}

/// Adds tags to customers, each `(customer, tag)` with its own attribution (the rules
/// engine: each tag has its rule and reason), in a few multi-row statements however many
/// customers they touch; none of the links may exist yet (the caller read the customers' tags
/// under their locks).
pub(crate) async fn add_each(
    txn: &DatabaseTransaction,
    tenant: TenantId,
    changes: &[(i64, i64, Attribution<'_>)],
    at: DateTime<Utc>,
) -> DomainResult<()> {
    for chunk in changes.chunks(ROWS_PER_STATEMENT) {
        customer_tag::Entity::insert_many(
            chunk
                .iter()
                .map(|&(customer, tag, by)| link_row(tenant, customer, tag, by, at)),
        )
        .exec_without_returning(txn)
        .await
        .step("linking tags to customers")?;
    }
    record_each(txn, tenant, changes, TagAction::Add, at).await
}

/// Gives a rule's link on one customer to another rule that wants the tag now the first one
/// no longer does (or no longer wins): the link says who keeps it there and why. Membership
/// does not change, so no history row is written.
pub(crate) async fn restamp(
    txn: &DatabaseTransaction,
    customer: i64,
    tag: i64,
    by: Attribution<'_>,
) -> DomainResult<()> {
    customer_tag::Entity::update_many()
        .col_expr(
            customer_tag::Column::Reason,
            Expr::value(clipped(by.reason)),
        )
        .col_expr(
            customer_tag::Column::RuleId,
            Expr::value(by.rule.map(|r| r.id.0)),
        )
        .col_expr(
            customer_tag::Column::RuleVersion,
            Expr::value(by.rule.map(|r| r.version)),
        )
        .col_expr(
            customer_tag::Column::Evidence,
            Expr::value(by.rule.and_then(|r| r.evidence).map(str::to_owned)),
        )
        .filter(customer_tag::Column::CustomerId.eq(customer))
        .filter(customer_tag::Column::TagId.eq(tag))
        .filter(customer_tag::Column::Source.eq(TagSource::Rule))
        .exec(txn)
        .await
        .step("handing a rule's tag to another rule")?;
    Ok(())
}

/// Removes links from customers, each `(customer, tag)` with its own attribution, in a few
/// statements however many customers they touch; the caller read them on the customers under
/// their locks.
pub(crate) async fn remove_each(
    txn: &DatabaseTransaction,
    tenant: TenantId,
    changes: &[(i64, i64, Attribution<'_>)],
    at: DateTime<Utc>,
) -> DomainResult<()> {
    for chunk in changes.chunks(PAIRS_PER_STATEMENT) {
        let pairs: Vec<(i64, i64)> = chunk.iter().map(|&(c, t, _)| (c, t)).collect();
        customer_tag::Entity::delete_many()
            .filter(pairs_of(
                customer_tag::Column::CustomerId,
                customer_tag::Column::TagId,
                &pairs,
            ))
            .exec(txn)
            .await
            .step("unlinking tags from customers")?;
    }
    record_each(txn, tenant, changes, TagAction::Remove, at).await
}

/// `(customer, other)` in `pairs`, grouped by customer (`customer = c AND other IN (…)`,
/// ORed); at most [`PAIRS_PER_STATEMENT`] pairs.
pub(crate) fn pairs_of<C: ColumnTrait>(customer: C, tag: C, pairs: &[(i64, i64)]) -> Condition {
    let mut by_customer: std::collections::BTreeMap<i64, Vec<i64>> = Default::default();
    for &(c, t) in pairs {
        by_customer.entry(c).or_default().push(t);
    }
    by_customer
        .into_iter()
        .fold(Condition::any(), |any, (c, tags)| {
            any.add(Condition::all().add(customer.eq(c)).add(tag.is_in(tags)))
        })
}
