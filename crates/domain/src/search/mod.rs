//! Tag-filtered customer lists: `all_of` / `any_of` / `none_of` tags combined with field
//! filters, an exact total, and keyset pages (newest first, no OFFSET).
//!
//! The query is one statement: with `all_of` tags it starts from the first tag's range of the
//! `(tenant_id, tag_id, customer_id)` index and joins `customers` and the other required tags
//! to it (the planner drives from the rarest), otherwise it starts from `customers`;
//! `any_of` and `none_of` are correlated `EXISTS` / `NOT EXISTS` probes on the
//! `(customer_id, tag_id)` primary key.

pub mod index;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use sea_orm::ConnectionTrait;
use sea_orm::sea_query::{
    Alias, Cond, Expr, ExprTrait, Func, JoinType, LikeExpr, Order, Query, SelectStatement,
};
use serde::Serialize;
use serde_json::{Map, Value};

use crate::access::Scope;
use crate::access::Viewer;
use crate::kernel::error::{DomainError, DomainResult, ErrorCode, FieldIssue};
use crate::kernel::ids::{CustomerId, StaffId, TagId, TenantId};
use crate::kernel::phone::PhoneNumber;
use crate::kernel::values::FieldType;
use crate::library::custom_fields;
use crate::store::entities::tag;

/// Most tag ids in one operator list.
pub const TAGS_PER_OPERATOR_MAX: usize = 20;
/// Largest page.
pub const PAGE_MAX: u64 = 200;

/// What to look for. Every part is optional; all given parts must hold.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Filter {
    pub all_of: Vec<TagId>,
    pub any_of: Vec<TagId>,
    pub none_of: Vec<TagId>,
    pub owner_id: Option<StaffId>,
    pub source_channel_id: Option<i64>,
    pub project_stage: Option<String>,
    pub created_from: Option<DateTime<Utc>>,
    pub created_to: Option<DateTime<Utc>>,
    pub updated_from: Option<DateTime<Utc>>,
    pub updated_to: Option<DateTime<Utc>>,
    pub custom_fields: Map<String, Value>,
    pub keyword: Option<String>,
}

/// A filter checked against the tenant's tags and fields, ready to query.
#[derive(Debug, Clone)]
pub struct Resolved {
    tenant: TenantId,
    filter: Filter,
    /// Custom-field equality terms.
    fields: Vec<FieldTerm>,
}

/// A custom field must hold a value.
#[derive(Debug, Clone)]
pub(crate) struct FieldTerm {
    pub(crate) field: i64,
    /// The stored (canonical) value.
    pub(crate) value: String,
    /// A single- or multi-select field: the index holds a bitmap per value.
    pub(crate) select: bool,
}

impl Resolved {
    pub(crate) fn filter(&self) -> &Filter {
        &self.filter
    }

    pub(crate) fn field_terms(&self) -> &[FieldTerm] {
        &self.fields
    }

    /// Whether a part of the filter is not a bitmap of the index: a keyword, a date range, a
    /// text, number or date custom field.
    pub(crate) fn has_residual(&self) -> bool {
        let f = &self.filter;
        f.keyword.is_some()
            || f.created_from.is_some()
            || f.created_to.is_some()
            || f.updated_from.is_some()
            || f.updated_to.is_some()
            || self.fields.iter().any(|t| !t.select)
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Page {
    pub total: u64,
    /// The page's customers, newest first.
    pub ids: Vec<CustomerId>,
    pub next_cursor: Option<String>,
}

/// Checks `filter` for tenant `tenant`: tags must be the tenant's (archived ones are fine),
/// operators must not contradict each other, ranges must be ordered, fields must exist.
///
/// Long because it checks each part of the filter in turn, collecting every error.
pub async fn resolve<C: ConnectionTrait>(
    conn: &C,
    tenant: TenantId,
    filter: &Filter,
) -> DomainResult<Resolved> {
    let mut issues = Vec::new();
    let lists = [
        ("all_of", &filter.all_of),
        ("any_of", &filter.any_of),
        ("none_of", &filter.none_of),
    ];
    let mut wanted: Vec<i64> = Vec::new();
    for (name, list) in lists {
        if list.len() > TAGS_PER_OPERATOR_MAX {
            issues.push(FieldIssue::new(
                name,
                "length",
                format!("at most {TAGS_PER_OPERATOR_MAX} tags"),
            ));
        }
        wanted.extend(list.iter().map(|t| t.0));
    }
    let known: Vec<i64> = if wanted.is_empty() {
        Vec::new()
    } else {
        use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QuerySelect};
        tag::Entity::find()
            .select_only()
            .column(tag::Column::Id)
            .filter(tag::Column::TenantId.eq(tenant.0))
            .filter(tag::Column::Id.is_in(wanted))
            .into_tuple::<i64>()
            .all(conn)
            .await?
    };
    for (name, list) in lists {
        for (i, id) in list.iter().enumerate() {
            if !known.contains(&id.0) {
                issues.push(FieldIssue::new(
                    format!("{name}[{i}]"),
                    "unknown_tag",
                    "no such tag",
                ));
            }
        }
    }
    for (i, id) in filter.none_of.iter().enumerate() {
        if filter.all_of.contains(id) || filter.any_of.contains(id) {
            issues.push(FieldIssue::new(
                format!("none_of[{i}]"),
                "contradictory",
                "a tag cannot be both required and excluded",
            ));
        }
    }
    let ranges = [
        ("created_from", filter.created_from, filter.created_to),
        ("updated_from", filter.updated_from, filter.updated_to),
    ];
    for (name, from, to) in ranges {
        if let (Some(from), Some(to)) = (from, to)
            && from > to
        {
            issues.push(FieldIssue::new(
                name,
                "range",
                "must not be after the end of the range",
            ));
        }
    }
    if let Some(keyword) = &filter.keyword {
        let count = keyword.trim().chars().count();
        if count == 0 || count > 64 {
            issues.push(FieldIssue::new(
                "keyword",
                "length",
                "must be 1 to 64 characters",
            ));
        }
    }
    let mut fields = Vec::new();
    if !filter.custom_fields.is_empty() {
        let defs = custom_fields::list(conn, tenant).await?;
        for (key, value) in &filter.custom_fields {
            match defs.iter().find(|d| &d.key == key) {
                None => issues.push(FieldIssue::new(
                    format!("custom_fields.{key}"),
                    "unknown_field",
                    "no such custom field",
                )),
                Some(def) => match custom_fields::stored_values(def, value, true) {
                    Ok(values) => fields.extend(values.into_iter().map(|value| FieldTerm {
                        field: def.id.0,
                        value,
                        select: matches!(
                            def.field_type,
                            FieldType::SingleSelect | FieldType::MultiSelect
                        ),
                    })),
                    Err(issue) => issues.push(issue),
                },
            }
        }
    }
    if !issues.is_empty() {
        return Err(DomainError::Rejected {
            code: ErrorCode::ValidationFailed,
            issues,
        });
    }
    Ok(Resolved {
        tenant,
        filter: filter.clone(),
        fields,
    })
}

pub(crate) fn col(table: &str, column: &str) -> Expr {
    Expr::col((Alias::new(table), Alias::new(column)))
}

/// `SELECT … FROM customers c [JOIN customer_tags aN …] WHERE …` without the select list.
///
/// Long because it is the one statement every list runs, built predicate by predicate.
fn matching(viewer: &Viewer, resolved: &Resolved) -> SelectStatement {
    let f = &resolved.filter;
    let tenant = resolved.tenant.0;
    let mut q = Query::select();
    // With tags to require, start from the first one's index range and join the customers to
    // it: MariaDB's planner otherwise may scan every customer of a large tenant and probe the
    // tags row by row. The planner still picks the rarest required tag to drive from.
    match f.all_of.split_first() {
        Some((first, rest)) => {
            q.from_as(Alias::new("customer_tags"), Alias::new("a0"))
                .and_where(col("a0", "tenant_id").eq(tenant))
                .and_where(col("a0", "tag_id").eq(first.0))
                .join_as(
                    JoinType::InnerJoin,
                    Alias::new("customers"),
                    Alias::new("c"),
                    col("c", "id").equals((Alias::new("a0"), Alias::new("customer_id"))),
                );
            for (i, tag) in rest.iter().enumerate() {
                let alias = format!("a{}", i + 1);
                q.join_as(
                    JoinType::InnerJoin,
                    Alias::new("customer_tags"),
                    Alias::new(alias.as_str()),
                    Cond::all()
                        .add(col(&alias, "customer_id").equals((Alias::new("c"), Alias::new("id"))))
                        .add(col(&alias, "tenant_id").eq(tenant))
                        .add(col(&alias, "tag_id").eq(tag.0)),
                );
            }
        }
        None => {
            q.from_as(Alias::new("customers"), Alias::new("c"));
        }
    }
    q.and_where(col("c", "tenant_id").eq(tenant))
        .and_where(col("c", "deleted_at").is_null());
    let probe = |tags: &[TagId]| {
        Query::select()
            .expr(Expr::val(1))
            .from_as(Alias::new("customer_tags"), Alias::new("x"))
            .and_where(col("x", "customer_id").equals((Alias::new("c"), Alias::new("id"))))
            .and_where(col("x", "tag_id").is_in(tags.iter().map(|t| t.0)))
            .to_owned()
    };
    if !f.any_of.is_empty() {
        q.and_where(Expr::exists(probe(&f.any_of)));
    }
    if !f.none_of.is_empty() {
        q.and_where(Expr::exists(probe(&f.none_of)).not());
    }
    match viewer.scope {
        Scope::Tenant => {}
        Scope::Own(staff) => {
            q.and_where(col("c", "owner_id").eq(staff.0));
        }
        // Ids are positive: no customer matches.
        Scope::Nothing => {
            q.and_where(col("c", "id").lt(0));
        }
    }
    if let Some(owner) = f.owner_id {
        q.and_where(col("c", "owner_id").eq(owner.0));
    }
    if let Some(channel) = f.source_channel_id {
        q.and_where(col("c", "source_channel_id").eq(channel));
    }
    if let Some(stage) = &f.project_stage {
        q.and_where(col("c", "project_stage").eq(stage.as_str()));
    }
    residual(&mut q, resolved, true);
    q
}

/// Adds the predicates the index holds no bitmaps for; with `bitmaps_too`, also the select
/// custom fields (which the index answers from bitmaps).
fn residual(q: &mut SelectStatement, resolved: &Resolved, bitmaps_too: bool) {
    let f = &resolved.filter;
    if let Some(from) = f.created_from {
        q.and_where(col("c", "created_at").gte(from));
    }
    if let Some(to) = f.created_to {
        q.and_where(col("c", "created_at").lte(to));
    }
    if let Some(from) = f.updated_from {
        q.and_where(col("c", "updated_at").gte(from));
    }
    if let Some(to) = f.updated_to {
        q.and_where(col("c", "updated_at").lte(to));
    }
    for term in resolved.fields.iter().filter(|t| bitmaps_too || !t.select) {
        q.and_where(Expr::exists(
            Query::select()
                .expr(Expr::val(1))
                .from_as(Alias::new("customer_field_values"), Alias::new("v"))
                .and_where(col("v", "customer_id").equals((Alias::new("c"), Alias::new("id"))))
                .and_where(col("v", "field_id").eq(term.field))
                .and_where(col("v", "value").eq(term.value.as_str()))
                .to_owned(),
        ));
    }
    if let Some(keyword) = f.keyword.as_deref().map(str::trim) {
        let escaped = keyword
            .to_lowercase()
            .replace('\\', "\\\\")
            .replace('%', "\\%")
            .replace('_', "\\_");
        let contains = format!("%{escaped}%");
        let lower = |column: &str| Func::lower(col("c", column));
        let mut any = Cond::any()
            .add(lower("name").like(LikeExpr::new(contains.clone()).escape('\\')))
            .add(lower("company").like(LikeExpr::new(contains).escape('\\')));
        if let Some(pattern) = PhoneNumber::suffix_pattern(keyword) {
            any = any.add(col("c", "phone").like(LikeExpr::new(pattern)));
        }
        q.cond_where(any);
    }
}

/// `SELECT c.id FROM customers c WHERE` the tenant's live customers meet the predicates the
/// index holds no bitmaps for: the index's query path refines its candidates with it.
pub(crate) fn residual_ids(resolved: &Resolved) -> SelectStatement {
    let mut q = Query::select();
    q.column((Alias::new("c"), Alias::new("id")))
        .from_as(Alias::new("customers"), Alias::new("c"))
        .and_where(col("c", "tenant_id").eq(resolved.tenant.0))
        .and_where(col("c", "deleted_at").is_null());
    residual(&mut q, resolved, false);
    q
}

/// How many customers match.
pub async fn count<C: ConnectionTrait>(
    conn: &C,
    viewer: &Viewer,
    resolved: &Resolved,
) -> DomainResult<u64> {
    let mut q = matching(viewer, resolved);
    q.expr(Expr::cust("COUNT(*)"));
    let row = conn.query_one(&q).await?;
    let n: i64 = match row {
        Some(row) => row.try_get_by_index(0)?,
        None => 0,
    };
    Ok(u64::try_from(n).unwrap_or(0))
}

/// Every matching id (callers bound the count first).
pub async fn all_ids<C: ConnectionTrait>(
    conn: &C,
    viewer: &Viewer,
    resolved: &Resolved,
) -> DomainResult<Vec<i64>> {
    let mut q = matching(viewer, resolved);
    q.column((Alias::new("c"), Alias::new("id")));
    let rows = conn.query_all(&q).await?;
    rows.iter()
        .map(|r| r.try_get_by_index::<i64>(0).map_err(DomainError::from))
        .collect()
}

/// An opaque cursor continuing after `id`.
pub fn encode_cursor(id: i64) -> String {
    URL_SAFE_NO_PAD.encode(format!("c1:{id}"))
}

/// The id a cursor continues after, or an error naming the `cursor` field.
pub fn decode_cursor(cursor: &str) -> DomainResult<i64> {
    URL_SAFE_NO_PAD
        .decode(cursor)
        .ok()
        .and_then(|bytes| String::from_utf8(bytes).ok())
        .and_then(|text| {
            text.strip_prefix("c1:")
                .and_then(|id| id.parse::<i64>().ok())
        })
        .filter(|id| *id > 0)
        .ok_or_else(|| {
            DomainError::field(
                "cursor",
                "invalid_cursor",
                "the cursor is not one this API returned",
            )
        })
}

/// One page of matching customers (newest first) and the exact total.
#[tracing::instrument(skip_all, fields(tenant = %viewer.tenant))]
pub async fn page<C: ConnectionTrait>(
    conn: &C,
    viewer: &Viewer,
    resolved: &Resolved,
    limit: u64,
    cursor: Option<i64>,
) -> DomainResult<Page> {
    let total = count(conn, viewer, resolved).await?;
    let mut q = matching(viewer, resolved);
    q.column((Alias::new("c"), Alias::new("id")));
    if let Some(after) = cursor {
        q.and_where(col("c", "id").lt(after));
    }
    q.order_by((Alias::new("c"), Alias::new("id")), Order::Desc)
        .limit(limit + 1);
    let mut ids: Vec<i64> = conn
        .query_all(&q)
        .await?
        .iter()
        .map(|r| r.try_get_by_index::<i64>(0))
        .collect::<Result<_, _>>()?;
    let more = ids.len() as u64 > limit;
    ids.truncate(usize::try_from(limit).unwrap_or(usize::MAX));
    let next_cursor = if more {
        ids.last().map(|id| encode_cursor(*id))
    } else {
        None
    };
    Ok(Page {
        total,
        ids: ids.into_iter().map(CustomerId).collect(),
        next_cursor,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_garbage_is_refused() {
        assert_eq!(decode_cursor(&encode_cursor(42)).unwrap(), 42);
        assert!(decode_cursor("nonsense").is_err());
        assert!(decode_cursor(&URL_SAFE_NO_PAD.encode("c1:-5")).is_err());
    }
}
