//! The MySQL/MariaDB server and Redis the benchmark runs on: creating and dropping the bench
//! database, connecting, reporting versions and sizes, sizing the buffer pool, and clearing
//! the run's cache keys.

use anyhow::{Context, bail};
use sea_orm::{ConnectOptions, ConnectionTrait, Database, DatabaseConnection};
use secrecy::{ExposeSecret, SecretString};

/// A pool on `url` that does not log statements: seeding statements are large, and sqlx would
/// report each slow one.
pub async fn connect(url: &str, max_connections: usize) -> anyhow::Result<DatabaseConnection> {
    let mut options = ConnectOptions::new(url.to_owned());
    options
        .max_connections(u32::try_from(max_connections).context("too many connections")?)
        .min_connections(1)
        .sqlx_logging(false)
        // As the server keeps them (`store::db::STATEMENT_CACHE_DEFAULT`).
        .map_sqlx_mysql_opts(|o| {
            o.statement_cache_capacity(scantag_domain::store::db::STATEMENT_CACHE_DEFAULT)
        });
    Ok(Database::connect(options).await?)
}

/// `server_url` with `database` as its path, keeping any query string (TLS options and the like).
pub fn database_url(server_url: &SecretString, database: &str) -> anyhow::Result<SecretString> {
    let url = server_url.expose_secret();
    let (base, query) = match url.split_once('?') {
        Some((base, query)) => (base, Some(query)),
        None => (url, None),
    };
    let base = base.trim_end_matches('/');
    let Some((scheme, rest)) = base.split_once("://") else {
        bail!("--mysql-url must look like mysql://user:password@host:3306");
    };
    if scheme != "mysql" {
        bail!("--mysql-url must be a mysql:// URL (MySQL or MariaDB)");
    }
    if rest.contains('/') {
        bail!("--mysql-url names a server, not a database: leave the path out");
    }
    let mut with_db = format!("{base}/{database}");
    if let Some(query) = query {
        with_db.push('?');
        with_db.push_str(query);
    }
    Ok(SecretString::from(with_db))
}

/// Drops `database` if an earlier run left it, and creates it empty with the collation the
/// migrations expect.
pub async fn recreate_database(server_url: &SecretString, database: &str) -> anyhow::Result<()> {
    let server = connect(server_url.expose_secret(), 1)
        .await
        .context("connecting to the MySQL/MariaDB server (--mysql-url)")?;
    server
        .execute_unprepared(&format!("DROP DATABASE IF EXISTS `{database}`"))
        .await
        .with_context(|| format!("dropping the old database {database}"))?;
    server
        .execute_unprepared(&format!(
            "CREATE DATABASE `{database}` CHARACTER SET utf8mb4 COLLATE utf8mb4_bin"
        ))
        .await
        .with_context(|| format!("creating database {database}"))?;
    server.close().await.ok();
    Ok(())
}

pub async fn drop_database(server_url: &SecretString, database: &str) -> anyhow::Result<()> {
    let server = connect(server_url.expose_secret(), 1).await?;
    server
        .execute_unprepared(&format!("DROP DATABASE IF EXISTS `{database}`"))
        .await?;
    server.close().await.ok();
    Ok(())
}

/// The first value of the one row `sql` selects.
pub async fn value<T: sea_orm::TryGetable>(
    db: &DatabaseConnection,
    sql: &str,
) -> anyhow::Result<T> {
    let row = db
        .query_one_raw(sea_orm::Statement::from_string(
            db.get_database_backend(),
            sql.to_owned(),
        ))
        .await
        .with_context(|| format!("running {sql}"))?
        .with_context(|| format!("no row from {sql}"))?;
    Ok(row.try_get_by_index::<T>(0)?)
}

pub async fn mysql_version(db: &DatabaseConnection) -> anyhow::Result<String> {
    value(db, "SELECT VERSION()").await
}

/// The InnoDB buffer pool's size in bytes.
pub async fn buffer_pool_bytes(db: &DatabaseConnection) -> anyhow::Result<u64> {
    value(db, "SELECT @@innodb_buffer_pool_size").await
}

/// Resizes the server's InnoDB buffer pool (online; needs the privilege to set globals) and
/// waits until the resize is done. Returns the size it had before.
pub async fn set_buffer_pool(server_url: &SecretString, bytes: u64) -> anyhow::Result<u64> {
    let server = connect(server_url.expose_secret(), 1).await?;
    let before = buffer_pool_bytes(&server).await?;
    server
        .execute_unprepared(&format!("SET GLOBAL innodb_buffer_pool_size = {bytes}"))
        .await
        .context("resizing the InnoDB buffer pool (--buffer-pool-mib)")?;
    // The resize runs in the background and reports "Completed …" when done (the status may
    // still show the last resize's for a moment).
    tokio::time::sleep(std::time::Duration::from_secs(1)).await;
    for _ in 0..600 {
        let status = server
            .query_one_raw(sea_orm::Statement::from_string(
                server.get_database_backend(),
                "SHOW STATUS LIKE 'Innodb_buffer_pool_resize_status'",
            ))
            .await?
            .map(|row| row.try_get_by_index::<String>(1))
            .transpose()?
            .unwrap_or_default();
        if status.is_empty() || status.starts_with("Completed") {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    server.close().await.ok();
    Ok(before)
}

/// Bytes of data and indexes in `database`.
pub async fn database_bytes(db: &DatabaseConnection, database: &str) -> anyhow::Result<u64> {
    value(
        db,
        &format!(
            "SELECT CAST(COALESCE(SUM(data_length + index_length), 0) AS UNSIGNED) \
             FROM information_schema.tables WHERE table_schema = '{database}'"
        ),
    )
    .await
}

async fn redis_connection(url: &SecretString) -> anyhow::Result<redis::aio::MultiplexedConnection> {
    let client = redis::Client::open(url.expose_secret()).context("parsing --redis-url")?;
    client
        .get_multiplexed_async_connection()
        .await
        .context("connecting to Redis (--redis-url)")
}

/// The server's version from `INFO server`; also proves Redis is reachable.
pub async fn redis_version(url: &SecretString) -> anyhow::Result<String> {
    let mut conn = redis_connection(url).await?;
    let info: String = redis::cmd("INFO")
        .arg("server")
        .query_async(&mut conn)
        .await
        .context("asking Redis for INFO server")?;
    Ok(info
        .lines()
        .find_map(|line| line.strip_prefix("redis_version:"))
        .map_or_else(|| "unknown".to_owned(), |v| v.trim().to_owned()))
}

/// Deletes every key under the run's prefix, so repeated runs do not pile up cache entries.
pub async fn delete_cache_keys(url: &SecretString, prefix: &str) -> anyhow::Result<u64> {
    let mut conn = redis_connection(url).await?;
    let pattern = format!("{prefix}:*");
    let mut cursor: u64 = 0;
    let mut deleted = 0;
    loop {
        let (next, keys): (u64, Vec<String>) = redis::cmd("SCAN")
            .arg(cursor)
            .arg("MATCH")
            .arg(&pattern)
            .arg("COUNT")
            .arg(1000)
            .query_async(&mut conn)
            .await?;
        if !keys.is_empty() {
            let removed: u64 = redis::cmd("DEL").arg(&keys).query_async(&mut conn).await?;
            deleted += removed;
        }
        if next == 0 {
            return Ok(deleted);
        }
        cursor = next;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(server: &str) -> anyhow::Result<String> {
        database_url(&SecretString::from(server.to_owned()), "db")
            .map(|u| u.expose_secret().to_owned())
    }

    #[test]
    fn the_database_goes_into_the_path_before_any_query() {
        assert_eq!(
            url("mysql://root@127.0.0.1:3306").unwrap(),
            "mysql://root@127.0.0.1:3306/db"
        );
        assert_eq!(
            url("mysql://u:p@h:3306/?ssl-mode=disabled").unwrap(),
            "mysql://u:p@h:3306/db?ssl-mode=disabled"
        );
        assert!(url("mysql://root@h:3306/other").is_err());
        assert!(url("postgres://root@h").is_err());
    }
}
