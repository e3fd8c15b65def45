//! The database side of the benchmark: counting rows to prove nothing was lost or doubled,
//! and the bare INSERT + COMMIT baselines that say what the database can commit at all.

use super::*;

pub(super) struct Expected {
    pub(super) visitors: u64,
    pub(super) accepted: u64,
    /// Tasks: one per new customer.
    pub(super) tasks: u64,
    /// Visits counted on the tasks: one per accepted submission.
    pub(super) visits: u64,
    pub(super) created: u64,
    pub(super) tags_per_customer: u64,
}

/// Counts rows and compares them with what the answers said; returns a one-line summary.
pub(super) async fn check(
    db: &DatabaseConnection,
    tenant: i64,
    expected: Expected,
    problems: &mut Vec<String>,
) -> anyhow::Result<String> {
    let count = |sql: String| async move { scalar(db, &sql).await };
    let customers = count(format!(
        "SELECT COUNT(*) FROM customers WHERE tenant_id = {tenant} AND deleted_at IS NULL"
    ))
    .await?;
    let duplicated = count(format!(
        "SELECT COUNT(*) FROM (SELECT openid FROM customers WHERE tenant_id = {tenant} \
         GROUP BY openid HAVING COUNT(*) > 1) d"
    ))
    .await?;
    let captures = count(format!(
        "SELECT COUNT(*) FROM captures WHERE tenant_id = {tenant}"
    ))
    .await?;
    let created = count(format!(
        "SELECT COUNT(*) FROM captures WHERE tenant_id = {tenant} AND outcome = 'created'"
    ))
    .await?;
    let tasks = count(format!(
        "SELECT COUNT(*) FROM tasks WHERE tenant_id = {tenant}"
    ))
    .await?;
    let visits = count(format!(
        "SELECT COALESCE(SUM(visits), 0) FROM tasks WHERE tenant_id = {tenant}"
    ))
    .await?;
    let links = count(format!(
        "SELECT COUNT(*) FROM customer_tags WHERE tenant_id = {tenant}"
    ))
    .await?;
    let spread = count(format!(
        "SELECT MAX(n) - MIN(n) FROM (SELECT owner_id, COUNT(*) n FROM customers \
         WHERE tenant_id = {tenant} GROUP BY owner_id) o"
    ))
    .await?;
    let mut expect = |what: &str, got: u64, want: u64| {
        if got != want {
            problems.push(format!("{what}: {got} in the database, expected {want}"));
        }
    };
    expect("customers", customers, expected.visitors);
    expect("openids held by more than one customer", duplicated, 0);
    expect("capture rows", captures, expected.accepted);
    expect("created captures", created, expected.created);
    expect("created captures vs visitors", created, expected.visitors);
    expect("tasks", tasks, expected.tasks);
    expect("visits counted on tasks", visits, expected.visits);
    expect(
        "channel tag links",
        links,
        expected.visitors * expected.tags_per_customer,
    );
    if expected.tasks > 0 && spread > 1 {
        problems.push(format!(
            "round-robin: owners' customer counts differ by {spread}"
        ));
    }
    Ok(format!(
        "{} customers for {} visitors, {duplicated} duplicated, {} capture rows for {} \
         accepted submissions ({} lost), {} tasks counting {} visits, owners' counts within \
         {spread}",
        group(customers),
        group(expected.visitors),
        group(captures),
        group(expected.accepted),
        expected.accepted.saturating_sub(captures),
        group(tasks),
        group(visits)
    ))
}

/// The one number `sql` selects; the cast keeps MariaDB's unsigned arithmetic out of the way.
pub(super) async fn scalar(db: &DatabaseConnection, sql: &str) -> anyhow::Result<u64> {
    let row = db
        .query_one_raw(sea_orm::Statement::from_string(
            db.get_database_backend(),
            format!("SELECT CAST(({sql}) AS SIGNED)"),
        ))
        .await
        .with_context(|| format!("running {sql}"))?
        .with_context(|| format!("{sql} returned no row"))?;
    let value: Option<i64> = row.try_get_by_index(0)?;
    Ok(u64::try_from(value.unwrap_or(0)).unwrap_or(0))
}

/// What decides the cost of a commit on this server.
pub(super) async fn durability_settings(db: &DatabaseConnection) -> anyhow::Result<String> {
    let row = db
        .query_one_raw(sea_orm::Statement::from_string(
            db.get_database_backend(),
            "SELECT CAST(@@innodb_flush_log_at_trx_commit AS SIGNED), CAST(@@log_bin AS SIGNED), \
             CAST(@@sync_binlog AS SIGNED)",
        ))
        .await?
        .context("no settings row")?;
    let flush: i64 = row.try_get_by_index(0)?;
    let log_bin: i64 = row.try_get_by_index(1)?;
    let sync_binlog: i64 = row.try_get_by_index(2)?;
    Ok(format!(
        "innodb_flush_log_at_trx_commit={flush}, log_bin={log_bin}, sync_binlog={sync_binlog}"
    ))
}

/// Single-row `INSERT` + `COMMIT` on `connections` connections for `duration`.
pub(super) async fn baseline(
    db: &DatabaseConnection,
    connections: usize,
    duration: Duration,
) -> anyhow::Result<(Latencies, Duration)> {
    db.execute_unprepared(
        "CREATE TABLE IF NOT EXISTS bench_inserts (id BIGINT AUTO_INCREMENT PRIMARY KEY, \
         payload VARCHAR(64) NOT NULL, created_at DATETIME NOT NULL) ENGINE=InnoDB",
    )
    .await?;
    let started = Instant::now();
    let mut workers = Vec::with_capacity(connections);
    for worker in 0..connections {
        let db = db.clone();
        workers.push(tokio::spawn(async move {
            let mut latencies = latencies()?;
            let mut n = 0u64;
            while started.elapsed() < duration {
                let one = Instant::now();
                let txn = db.begin().await?;
                txn.execute_unprepared(&format!(
                    "INSERT INTO bench_inserts (payload, created_at) \
                     VALUES ('worker {worker} row {n}', UTC_TIMESTAMP())"
                ))
                .await?;
                txn.commit().await?;
                latencies.saturating_record(micros(one.elapsed()));
                n += 1;
            }
            Ok::<_, anyhow::Error>(latencies)
        }));
    }
    let mut total = latencies()?;
    for worker in workers {
        total
            .add(&worker.await.context("a baseline worker panicked")??)
            .context("merging histograms")?;
    }
    Ok((total, started.elapsed()))
}
