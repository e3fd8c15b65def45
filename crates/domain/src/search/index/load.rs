//! Reading a tenant's bitmaps from the database: the whole index ([`build`]) and the current
//! state of the customers a change touched ([`members`]). Every statement names the tenant, so
//! an index never holds another tenant's ids.

use std::time::Instant;

use roaring::RoaringBitmap;
use sea_orm::sea_query::{Alias, Cond, Expr, ExprTrait, Order, Query, SelectStatement};
use sea_orm::{ConnectionTrait, DbErr, QueryResult};

use super::bitmaps::{Member, TenantIndex, push};
use crate::kernel::error::{DomainError, DomainResult, Step};
use crate::kernel::ids::TenantId;
use crate::search::col;
use crate::support::data_version;

/// Rows per read while building.
const BUILD_CHUNK: u64 = 50_000;
/// Customers per `IN (…)` list when re-reading changed ones.
const MEMBERS_CHUNK: usize = 1_000;
/// The field types the index holds a bitmap per value of.
const SELECT_TYPES: [&str; 2] = ["single_select", "multi_select"];

/// A customer id as a bitmap member.
fn member_id(id: i64) -> DomainResult<u32> {
    u32::try_from(id).map_err(|_| {
        DomainError::from(DbErr::Custom(format!(
            "customer id {id} is beyond the search index's range"
        )))
    })
}

async fn rows<C: ConnectionTrait>(
    conn: &C,
    q: &SelectStatement,
    step: &'static str,
) -> DomainResult<Vec<QueryResult>> {
    conn.query_all(q).await.step(step)
}

/// The tenant's live customers, with the record columns the index holds ([`record`] reads a
/// row of it).
fn records(tenant: TenantId) -> SelectStatement {
    Query::select()
        .columns(["id", "owner_id", "source_channel_id", "project_stage"])
        .from("customers")
        .and_where(Expr::col("tenant_id").eq(tenant.0))
        .and_where(Expr::col("deleted_at").is_null())
        .order_by("id", Order::Asc)
        .to_owned()
}

/// A row of [`records`]: the customer's id and its record, without tags or fields.
fn record(row: &QueryResult) -> DomainResult<(i64, Member)> {
    let id: i64 = row.try_get_by_index(0)?;
    Ok((
        id,
        Member {
            id: member_id(id)?,
            owner: row.try_get_by_index(1)?,
            channel: row.try_get_by_index(2)?,
            stage: row.try_get_by_index(3)?,
            ..Member::default()
        },
    ))
}

/// Reads the whole index of `tenant`, current as of the data version read before anything
/// else: changes committed while it reads are in the feed after that version, and the caller
/// catches up with them.
pub(crate) async fn build<C: ConnectionTrait>(
    conn: &C,
    tenant: TenantId,
) -> DomainResult<TenantIndex> {
    let started = Instant::now();
    let at = data_version::read(conn, tenant).await?;
    let mut index = TenantIndex::empty(tenant, at.version);
    let mut after = 0_i64;
    loop {
        let q = records(tenant)
            .and_where(Expr::col("id").gt(after))
            .limit(BUILD_CHUNK)
            .to_owned();
        let chunk = rows(conn, &q, "reading customers for the search index").await?;
        for row in &chunk {
            let (id, member) = record(row)?;
            index.add_record(&member);
            after = id;
        }
        if (chunk.len() as u64) < BUILD_CHUNK {
            break;
        }
        tracing::info!(
            %tenant,
            customers = index.live.len(),
            ms = started.elapsed().as_millis() as u64,
            "building the search index: customers read"
        );
    }
    let tags = Query::select()
        .column("id")
        .from("tags")
        .and_where(Expr::col("tenant_id").eq(tenant.0))
        .order_by("id", Order::Asc)
        .to_owned();
    let tags = rows(conn, &tags, "reading the tenant's tags").await?;
    for (n, row) in tags.iter().enumerate() {
        let tag: i64 = row.try_get_by_index(0)?;
        let mut bitmap = RoaringBitmap::new();
        let mut after = 0_i64;
        loop {
            let q = Query::select()
                .column("customer_id")
                .from("customer_tags")
                .and_where(Expr::col("tenant_id").eq(tenant.0))
                .and_where(Expr::col("tag_id").eq(tag))
                .and_where(Expr::col("customer_id").gt(after))
                .order_by("customer_id", Order::Asc)
                .limit(BUILD_CHUNK)
                .to_owned();
            let chunk = rows(conn, &q, "reading a tag's customers").await?;
            for row in &chunk {
                let id: i64 = row.try_get_by_index(0)?;
                push(&mut bitmap, member_id(id)?);
                after = id;
            }
            if (chunk.len() as u64) < BUILD_CHUNK {
                break;
            }
        }
        if !bitmap.is_empty() {
            index.tags.insert(tag, bitmap);
        }
        if (n + 1) % 50 == 0 {
            tracing::info!(
                %tenant,
                tags = n + 1,
                of = tags.len(),
                ms = started.elapsed().as_millis() as u64,
                "building the search index: tags read"
            );
        }
    }
    let fields = Query::select()
        .column("id")
        .from("custom_field_defs")
        .and_where(Expr::col("tenant_id").eq(tenant.0))
        .and_where(Expr::col("field_type").is_in(SELECT_TYPES))
        .to_owned();
    for row in rows(conn, &fields, "reading the tenant's select fields").await? {
        let field: i64 = row.try_get_by_index(0)?;
        let mut after: Option<(String, i64)> = None;
        loop {
            let mut q = Query::select()
                .columns(["value", "customer_id"])
                .from("customer_field_values")
                .and_where(Expr::col("tenant_id").eq(tenant.0))
                .and_where(Expr::col("field_id").eq(field))
                .order_by("value", Order::Asc)
                .order_by("customer_id", Order::Asc)
                .limit(BUILD_CHUNK)
                .to_owned();
            if let Some((value, customer)) = &after {
                q.cond_where(
                    Cond::any().add(Expr::col("value").gt(value.as_str())).add(
                        Cond::all()
                            .add(Expr::col("value").eq(value.as_str()))
                            .add(Expr::col("customer_id").gt(*customer)),
                    ),
                );
            }
            let chunk = rows(conn, &q, "reading a select field's values").await?;
            for row in &chunk {
                let value: String = row.try_get_by_index(0)?;
                let id: i64 = row.try_get_by_index(1)?;
                push(
                    index.fields.entry((field, value.clone())).or_default(),
                    member_id(id)?,
                );
                after = Some((value, id));
            }
            if (chunk.len() as u64) < BUILD_CHUNK {
                break;
            }
        }
    }
    Ok(index)
}

/// The live customers of `tenant` among `ids`, as the index holds them, read now.
pub(crate) async fn members<C: ConnectionTrait>(
    conn: &C,
    tenant: TenantId,
    ids: &[i64],
) -> DomainResult<Vec<Member>> {
    let mut out = Vec::with_capacity(ids.len());
    for chunk in ids.chunks(MEMBERS_CHUNK) {
        let chunk = &crate::store::in_list::padded(chunk)[..];
        let q = records(tenant)
            .and_where(Expr::col("id").is_in(chunk.iter().copied()))
            .to_owned();
        let mut members = rows(conn, &q, "re-reading changed customers")
            .await?
            .iter()
            .map(record)
            .collect::<DomainResult<Vec<_>>>()?;
        if members.is_empty() {
            continue;
        }
        let live =
            crate::store::in_list::padded(&members.iter().map(|(id, _)| *id).collect::<Vec<_>>());
        let slot = |id: i64, members: &[(i64, Member)]| {
            members.binary_search_by_key(&id, |(m, _)| *m).ok()
        };
        let tags = Query::select()
            .columns(["customer_id", "tag_id"])
            .from("customer_tags")
            .and_where(Expr::col("tenant_id").eq(tenant.0))
            .and_where(Expr::col("customer_id").is_in(live.iter().copied()))
            .to_owned();
        for row in rows(conn, &tags, "re-reading changed customers' tags").await? {
            let (customer, tag): (i64, i64) = (row.try_get_by_index(0)?, row.try_get_by_index(1)?);
            if let Some(i) = slot(customer, &members) {
                members[i].1.tags.push(tag);
            }
        }
        let fields = Query::select()
            .column((Alias::new("v"), Alias::new("customer_id")))
            .column((Alias::new("v"), Alias::new("field_id")))
            .column((Alias::new("v"), Alias::new("value")))
            .from_as(Alias::new("customer_field_values"), Alias::new("v"))
            .inner_join(
                Alias::new("custom_field_defs"),
                col("custom_field_defs", "id").equals((Alias::new("v"), Alias::new("field_id"))),
            )
            .and_where(col("v", "tenant_id").eq(tenant.0))
            .and_where(col("v", "customer_id").is_in(live.iter().copied()))
            .and_where(col("custom_field_defs", "field_type").is_in(SELECT_TYPES))
            .to_owned();
        for row in rows(conn, &fields, "re-reading changed customers' fields").await? {
            let customer: i64 = row.try_get_by_index(0)?;
            if let Some(i) = slot(customer, &members) {
                members[i]
                    .1
                    .fields
                    .push((row.try_get_by_index(1)?, row.try_get_by_index(2)?));
            }
        }
        out.extend(members.into_iter().map(|(_, m)| m));
    }
    Ok(out)
}
