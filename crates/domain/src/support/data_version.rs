//! The per-tenant data version: bumped in the transaction of every change to a tenant's
//! customers, tags or fields. Caches key their entries by it, so an entry computed before a
//! change is never served after the change committed, whatever the cache did meanwhile.

use sea_orm::sea_query::{Expr, ExprTrait, OnConflict, Query};
use sea_orm::{ConnectionTrait, DbErr};

use crate::kernel::error::DomainResult;
use crate::kernel::ids::TenantId;

const TABLE: &str = "tenant_data_versions";

/// Increments the tenant's version. Call it as the last statement of the writing
/// transaction, which keeps the row lock short.
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
    conn.execute(&insert).await?;
    Ok(())
}

/// The tenant's current version (0 before its first change).
pub async fn current<C: ConnectionTrait>(conn: &C, tenant: TenantId) -> DomainResult<i64> {
    let select = Query::select()
        .column("version")
        .from(TABLE)
        .and_where(Expr::col("tenant_id").eq(tenant.0))
        .to_owned();
    let row = conn.query_one(&select).await?;
    match row {
        Some(row) => Ok(row.try_get_by_index::<i64>(0)?),
        None => Ok(0),
    }
}
