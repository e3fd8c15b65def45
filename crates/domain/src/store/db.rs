//! Opening the database and bringing its schema up to date.

use std::path::Path;
use std::time::Duration;

use sea_orm::sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode};
use sea_orm::{ConnectOptions, Database, DatabaseConnection, DbErr};
use sea_orm_migration::MigratorTrait;

use crate::kernel::error::DomainResult;
use crate::store::migration::Migrator;

/// How long a SQLite request waits for the one connection: it is only ever busy, never down.
const SQLITE_ACQUIRE_TIMEOUT: Duration = Duration::from_secs(10);

/// Prepared statements a MySQL connection keeps, unless told otherwise. sqlx's default of 100
/// is smaller than the statements this application runs: each statement prepared beyond it
/// closes the oldest, and the close (which has no reply) followed at once by the next request
/// on a socket without `TCP_NODELAY` waits for the server's delayed acknowledgement, about
/// 40 ms. The server counts every connection's statements against `max_prepared_stmt_count`
/// (16,382 by default): pool size × this × processes must stay below it.
pub const STATEMENT_CACHE_DEFAULT: usize = 250;

/// Connects to `url` (`sqlite://path?mode=rwc` or `mysql://…`); a MySQL request that cannot
/// get a connection within `acquire_timeout` fails as unavailable; each MySQL connection keeps
/// up to `statement_cache` prepared statements.
///
/// SQLite is the single-node embedded default: it gets one pooled connection, so writers are
/// serialised in the process instead of failing with "database is locked" when a read
/// transaction tries to upgrade, plus WAL and enforced foreign keys. MySQL gets a normal pool.
pub async fn connect(
    url: &str,
    max_connections: u32,
    acquire_timeout: Duration,
    statement_cache: usize,
) -> DomainResult<DatabaseConnection> {
    let mut options = ConnectOptions::new(url.to_owned());
    options.acquire_timeout(acquire_timeout).sqlx_logging(false);
    if url.starts_with("sqlite:") {
        if let Some(dir) = sqlite_parent_dir(url) {
            std::fs::create_dir_all(dir)
                .map_err(|e| DbErr::Custom(format!("cannot create {}: {e}", dir.display())))?;
        }
        options
            .acquire_timeout(SQLITE_ACQUIRE_TIMEOUT)
            .max_connections(1)
            .min_connections(1)
            .map_sqlx_sqlite_opts(|opts: SqliteConnectOptions| {
                opts.journal_mode(SqliteJournalMode::Wal)
                    .busy_timeout(Duration::from_secs(5))
                    .foreign_keys(true)
                    .create_if_missing(true)
            });
    } else {
        options
            .max_connections(max_connections)
            .min_connections(1)
            .map_sqlx_mysql_opts(move |o| o.statement_cache_capacity(statement_cache));
    }
    Ok(Database::connect(options).await?)
}

/// Applies every pending migration.
pub async fn migrate(db: &DatabaseConnection) -> DomainResult<()> {
    Migrator::up(db, None).await?;
    Ok(())
}

/// Checks that the database answers within `timeout`.
pub async fn ping(db: &DatabaseConnection, timeout: Duration) -> DomainResult<()> {
    match tokio::time::timeout(timeout, db.ping()).await {
        Ok(answer) => Ok(answer?),
        Err(_) => Err(DbErr::ConnectionAcquire(sea_orm::ConnAcquireErr::Timeout).into()),
    }
}

fn sqlite_parent_dir(url: &str) -> Option<&Path> {
    let path = url
        .trim_start_matches("sqlite://")
        .trim_start_matches("sqlite:");
    let path = path.split('?').next()?;
    if path.is_empty() || path == ":memory:" {
        return None;
    }
    Path::new(path)
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_directory_of_a_sqlite_file() {
        assert_eq!(
            sqlite_parent_dir("sqlite://./data/scantag.db?mode=rwc"),
            Some(Path::new("./data"))
        );
        assert_eq!(sqlite_parent_dir("sqlite::memory:"), None);
        assert_eq!(sqlite_parent_dir("sqlite://x.db"), None);
    }
}
