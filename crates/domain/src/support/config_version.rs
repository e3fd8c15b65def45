//! The per-tenant configuration version: replaced in the transaction of every change to what
//! the rules engine reads besides the customer — rules, tag groups and tags, custom field
//! definitions, project stages. The engine keeps each tenant's compiled rules in memory under
//! this version, so a process never evaluates with a configuration older than the last commit
//! it can see. A version is a random number rather than a count, so that two databases (a
//! test's, a restored copy) never share one for the same tenant id.

use sea_orm::sea_query::{Expr, ExprTrait, OnConflict, Query};
use sea_orm::{ConnectionTrait, DbErr};

use crate::kernel::error::DomainResult;
use crate::kernel::ids::TenantId;

const TABLE: &str = "tenant_config_versions";

pub(crate) async fn bump<C: ConnectionTrait>(conn: &C, tenant: TenantId) -> DomainResult<()> {
    // 1 to 2^63 - 1: never 0, which stands for "no configuration change recorded".
    let version = i64::try_from(rand::random::<u64>() >> 1).map_or(1, |v| std::cmp::max(v, 1));
    let mut insert = Query::insert();
    insert
        .into_table(TABLE)
        .columns(["tenant_id", "version"])
        .values([tenant.0.into(), version.into()])
        .map_err(|e| DbErr::Custom(e.to_string()))?
        .on_conflict(
            OnConflict::column("tenant_id")
                .value("version", version)
                .to_owned(),
        );
    conn.execute(&insert).await?;
    Ok(())
}

/// The tenant's current configuration version (0 before its first recorded change).
pub(crate) async fn current<C: ConnectionTrait>(conn: &C, tenant: TenantId) -> DomainResult<i64> {
    let select = Query::select()
        .column("version")
        .from(TABLE)
        .and_where(Expr::col("tenant_id").eq(tenant.0))
        .to_owned();
    match conn.query_one(&select).await? {
        Some(row) => Ok(row.try_get_by_index::<i64>(0)?),
        None => Ok(0),
    }
}
