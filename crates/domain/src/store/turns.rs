//! Round-robin turns: a row per dealer (a channel, a rule) counting the turns taken, advanced
//! by one atomic increment-and-read so that turns are handed out in order however many
//! writers run at once. The table's owner calls this with its own table.

use sea_orm::sea_query::{Alias, Expr, ExprTrait, Query};
use sea_orm::{ConnectionTrait, DbBackend, Statement};

use crate::kernel::error::DomainResult;

/// Takes the next turn of the row whose `key_column` is `key` in `table` (which has a
/// `taken` counter) and returns its number: 0 for the first. A missing row gives 0 every time.
///
/// Inside a transaction the row stays locked until it ends; on its own connection the turn is
/// committed at once and no writer waits for another's transaction.
pub(crate) async fn take<C: ConnectionTrait>(
    conn: &C,
    table: &'static str,
    key_column: &'static str,
    key: i64,
) -> DomainResult<i64> {
    let backend = conn.get_database_backend();
    let taken: i64 = match backend {
        // MySQL has no UPDATE … RETURNING; LAST_INSERT_ID(expr) hands the new value back in
        // the statement's own reply.
        DbBackend::MySql => {
            let result = conn
                .execute_raw(Statement::from_sql_and_values(
                    backend,
                    format!(
                        "UPDATE {table} SET taken = LAST_INSERT_ID(taken + 1) WHERE {key_column} = ?"
                    ),
                    [key.into()],
                ))
                .await?;
            if result.rows_affected() == 0 {
                return Ok(0);
            }
            i64::try_from(result.last_insert_id()).unwrap_or(0)
        }
        _ => {
            let update = Query::update()
                .table(Alias::new(table))
                .value(Alias::new("taken"), Expr::col(Alias::new("taken")).add(1))
                .and_where(Expr::col(Alias::new(key_column)).eq(key))
                .returning_col(Alias::new("taken"))
                .to_owned();
            match conn.query_one(&update).await? {
                Some(row) => row.try_get_by_index(0)?,
                None => return Ok(0),
            }
        }
    };
    Ok(taken - 1)
}
