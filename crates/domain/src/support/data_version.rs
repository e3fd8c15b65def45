//! The per-tenant data version and the change feed beside it.
//!
//! The version is bumped in the transaction of every change to a tenant's customers, tags or
//! fields. Caches key their entries by it, so an entry computed before a change is never
//! served after the change committed, whatever the cache did meanwhile.
//!
//! A change that touches customers also records them in `customer_changes` under the version
//! it bumped to ([`bump_for`]). The bump takes the version row's lock until the commit, so a
//! tenant's versions commit in order: a reader that has seen version V committed has seen
//! every feed row up to V, and the search index catches up by re-reading the customers named
//! after its own version ([`changed_between`]). Rows older than the feed's retention are pruned
//! ([`prune`]), and `feed_from` then says up to which version the feed may be incomplete.

use chrono::{DateTime, Utc};
use sea_orm::sea_query::{Expr, ExprTrait, Func, OnConflict, Order, Query};
use sea_orm::{ConnectionTrait, DbErr};

use crate::kernel::error::{DomainResult, Step};
use crate::kernel::ids::TenantId;

const TABLE: &str = "tenant_data_versions";
const FEED: &str = "customer_changes";

/// Feed rows per insert: well inside SQLite's bound-parameter limit at four columns.
const ROWS_PER_STATEMENT: usize = 1_000;

/// Where a tenant's data stands.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Versions {
    /// The version of the last committed change (0 before the first).
    pub version: i64,
    /// Feed rows of versions up to this one may have been pruned.
    pub feed_from: i64,
}

/// Increments the tenant's version, for a change that touched no customer (the tag library,
/// field definitions). Call it as the last statement of the writing transaction, which keeps
/// the row lock short.
pub async fn bump<C: ConnectionTrait>(conn: &C, tenant: TenantId) -> DomainResult<()> {
    let mut insert = Query::insert();
    insert
        .into_table(TABLE)
        .columns(["tenant_id", "version"])
        .values([tenant.0.into(), 1i64.into()])
        .map_err(|e| DbErr::Custom(e.to_string()))?
        .on_conflict(
            OnConflict::column("tenant_id")
                .value("version", Expr::col("version").add(1))
                .to_owned(),
        );
    conn.execute(&insert)
        .await
        .step("bumping the tenant's data version")?;
    Ok(())
}

/// Increments the tenant's version and records `customers` in the change feed under it: the
/// change in this transaction touched them (their tags, owner, stage, channel, fields, or
/// their deletion). The last statements of the writing transaction, like [`bump`].
pub async fn bump_for<C: ConnectionTrait>(
    conn: &C,
    tenant: TenantId,
    customers: &[i64],
) -> DomainResult<()> {
    bump(conn, tenant).await?;
    if customers.is_empty() {
        return Ok(());
    }
    // The transaction holds the row it just wrote: this reads its own version.
    let version = current(conn, tenant).await?;
    let mut ids = customers.to_vec();
    ids.sort_unstable();
    ids.dedup();
    let now = Utc::now();
    for chunk in ids.chunks(ROWS_PER_STATEMENT) {
        let mut insert = Query::insert();
        insert
            .into_table(FEED)
            .columns(["tenant_id", "version", "customer_id", "recorded_at"]);
        for id in chunk {
            insert
                .values([tenant.0.into(), version.into(), (*id).into(), now.into()])
                .map_err(|e| DbErr::Custom(e.to_string()))?;
        }
        conn.execute(&insert)
            .await
            .step("recording the changed customers")?;
    }
    Ok(())
}

/// The tenant's current version (0 before its first change).
pub async fn current<C: ConnectionTrait>(conn: &C, tenant: TenantId) -> DomainResult<i64> {
    Ok(read(conn, tenant).await?.version)
}

/// The tenant's version and how far back its feed is complete.
pub async fn read<C: ConnectionTrait>(conn: &C, tenant: TenantId) -> DomainResult<Versions> {
    let select = Query::select()
        .columns(["version", "feed_from"])
        .from(TABLE)
        .and_where(Expr::col("tenant_id").eq(tenant.0))
        .to_owned();
    let row = conn
        .query_one(&select)
        .await
        .step("reading the tenant's data version")?;
    match row {
        Some(row) => Ok(Versions {
            version: row.try_get_by_index::<i64>(0)?,
            feed_from: row.try_get_by_index::<i64>(1)?,
        }),
        None => Ok(Versions::default()),
    }
}

/// The customers the changes after version `after`, up to version `upto`, touched (each
/// once, in id order).
pub async fn changed_between<C: ConnectionTrait>(
    conn: &C,
    tenant: TenantId,
    after: i64,
    upto: i64,
) -> DomainResult<Vec<i64>> {
    let select = Query::select()
        .distinct()
        .column("customer_id")
        .from(FEED)
        .and_where(Expr::col("tenant_id").eq(tenant.0))
        .and_where(Expr::col("version").gt(after))
        .and_where(Expr::col("version").lte(upto))
        .order_by("customer_id", Order::Asc)
        .to_owned();
    let rows = conn
        .query_all(&select)
        .await
        .step("reading the change feed")?;
    rows.iter()
        .map(|r| r.try_get_by_index::<i64>(0).map_err(Into::into))
        .collect()
}

/// Deletes the feed rows recorded before `before`, first moving each tenant's `feed_from` past
/// them (in one transaction), so no reader mistakes the pruned part for a quiet one.
pub async fn prune(db: &sea_orm::DatabaseConnection, before: DateTime<Utc>) -> DomainResult<u64> {
    let select = Query::select()
        .column("tenant_id")
        .expr(Func::max(Expr::col("version")))
        .from(FEED)
        .and_where(Expr::col("recorded_at").lt(before))
        .group_by_col("tenant_id")
        .to_owned();
    let rows = db
        .query_all(&select)
        .await
        .step("finding old change feed rows")?;
    let mut deleted = 0;
    for row in rows {
        let tenant: i64 = row.try_get_by_index(0)?;
        let upto: i64 = row.try_get_by_index(1)?;
        let txn = sea_orm::TransactionTrait::begin(db).await?;
        let raise = Query::update()
            .table(TABLE)
            .value("feed_from", upto)
            .and_where(Expr::col("tenant_id").eq(tenant))
            .and_where(Expr::col("feed_from").lt(upto))
            .to_owned();
        txn.execute(&raise)
            .await
            .step("moving the feed's horizon")?;
        let delete = Query::delete()
            .from_table(FEED)
            .and_where(Expr::col("tenant_id").eq(tenant))
            .and_where(Expr::col("version").lte(upto))
            .to_owned();
        deleted += txn
            .execute(&delete)
            .await
            .step("pruning the change feed")?
            .rows_affected();
        txn.commit().await?;
    }
    Ok(deleted)
}
