//! The measurements: the search endpoint with the cache bypassed and warm, and the same
//! questions as a relational-division SQL query, each HTTP answer checked against the SQL one.

use std::time::{Duration, Instant};

use anyhow::Context;
use hdrhistogram::Histogram;
use indicatif::{ProgressBar, ProgressStyle};
use sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend, Statement, Value};

use crate::filters::{Filter, PAGE};
use crate::server::Api;

const SEARCH: &str = "/api/v1/customers/search";

/// Customers carrying both A and B (and not soft-deleted), minus those carrying C.
const MATCHES: &str = "SELECT ct.customer_id FROM customer_tags ct \
     JOIN customers c ON c.id = ct.customer_id AND c.deleted_at IS NULL \
     WHERE ct.tenant_id = ? AND ct.tag_id IN (?, ?) \
     GROUP BY ct.customer_id HAVING COUNT(*) = 2";
const EXCLUDED: &str = "SELECT customer_id FROM customer_tags WHERE tenant_id = ? AND tag_id = ?";

/// Latencies in microseconds.
pub type Latencies = Histogram<u64>;

pub struct Results {
    pub cold: Latencies,
    pub warm: Latencies,
    pub sql: Latencies,
    /// The SQL count of every filter, in filter order.
    pub totals: Vec<i64>,
    /// Cache-bypassed HTTP and SQL latency of every filter, in filter order.
    pub per_filter: Vec<(Duration, Duration)>,
    pub problems: Vec<String>,
}

struct HttpAnswer {
    total: i64,
    ids: Vec<i64>,
    cache: Option<String>,
}

/// Runs the phases in order: HTTP with the cache bypassed, SQL, then HTTP warm (every filter
/// once to fill the cache, then `warm_repeats` rounds over all filters). All sequential, on one
/// keep-alive connection.
pub async fn run(
    api: &Api,
    db: &DatabaseConnection,
    tenant_id: i64,
    filters: &[Filter],
    warm_repeats: u32,
) -> anyhow::Result<Results> {
    let mut results = Results {
        cold: latencies()?,
        warm: latencies()?,
        sql: latencies()?,
        totals: Vec::with_capacity(filters.len()),
        per_filter: Vec::with_capacity(filters.len()),
        problems: Vec::new(),
    };

    let bar = phase_bar("HTTP cold (cache bypassed)", filters.len() as u64)?;
    let mut cold = Vec::with_capacity(filters.len());
    let mut cold_times = Vec::with_capacity(filters.len());
    for filter in filters {
        let (elapsed, answer) = http_search(api, filter, true).await?;
        results.cold.saturating_record(micros(elapsed));
        cold_times.push(elapsed);
        if answer.cache.as_deref() != Some("bypass") {
            results.problems.push(format!(
                "{}: X-Cache {:?} on a Cache-Control: no-cache request, expected \"bypass\"",
                filter.describe(),
                answer.cache
            ));
        }
        cold.push(answer);
        bar.inc(1);
    }
    bar.finish_and_clear();

    let bar = phase_bar("SQL relational division", filters.len() as u64)?;
    for ((filter, http), &cold_time) in filters.iter().zip(&cold).zip(&cold_times) {
        let (elapsed, count, page) = sql_search(db, tenant_id, filter).await?;
        results.sql.saturating_record(micros(elapsed));
        results.per_filter.push((cold_time, elapsed));
        if http.total != count {
            results.problems.push(format!(
                "{}: HTTP total {} but SQL counts {count}",
                filter.describe(),
                http.total
            ));
        } else if http.ids != page {
            results.problems.push(format!(
                "{}: HTTP first page {} differs from SQL {}",
                filter.describe(),
                brief(&http.ids),
                brief(&page)
            ));
        }
        results.totals.push(count);
        bar.inc(1);
    }
    bar.finish_and_clear();

    let rounds = 1 + u64::from(warm_repeats);
    let bar = phase_bar("HTTP warm (cached)", filters.len() as u64 * rounds)?;
    for round in 0..rounds {
        for (filter, &expected) in filters.iter().zip(&results.totals) {
            let (elapsed, answer) = http_search(api, filter, false).await?;
            // The first round fills the cache and is not measured.
            if round > 0 {
                results.warm.saturating_record(micros(elapsed));
                if answer.cache.as_deref() != Some("hit") {
                    results.problems.push(format!(
                        "{}: repeat {round} answered X-Cache {:?}, expected \"hit\"",
                        filter.describe(),
                        answer.cache
                    ));
                }
            }
            if answer.total != expected {
                results.problems.push(format!(
                    "{}: warm round {round}: HTTP total {} but SQL counts {expected}",
                    filter.describe(),
                    answer.total
                ));
            }
            bar.inc(1);
        }
    }
    bar.finish_and_clear();
    Ok(results)
}

/// One search request, timed until the whole body has arrived; parsing is not timed.
async fn http_search(
    api: &Api,
    filter: &Filter,
    bypass_cache: bool,
) -> anyhow::Result<(Duration, HttpAnswer)> {
    let headers: &[(&str, &str)] = if bypass_cache {
        &[("cache-control", "no-cache")]
    } else {
        &[]
    };
    let body = filter.search_body();
    let started = Instant::now();
    let answer = api.send(SEARCH, &body, headers).await?;
    let elapsed = started.elapsed();

    let json: serde_json::Value =
        serde_json::from_slice(&answer.body).context("the search answer is not JSON")?;
    let total = json["total"]
        .as_i64()
        .with_context(|| format!("the search answer has no total: {json}"))?;
    let ids = json["items"]
        .as_array()
        .context("the search answer has no items")?
        .iter()
        .map(|item| item["id"].as_i64().context("an item has no id"))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let cache = answer
        .headers
        .get("x-cache")
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
    Ok((elapsed, HttpAnswer { total, ids, cache }))
}

/// The count and the first page (newest first) of one filter, timed together.
async fn sql_search(
    db: &DatabaseConnection,
    tenant_id: i64,
    filter: &Filter,
) -> anyhow::Result<(Duration, i64, Vec<i64>)> {
    let values = || -> Vec<Value> {
        vec![
            tenant_id.into(),
            filter.all_of[0].into(),
            filter.all_of[1].into(),
            tenant_id.into(),
            filter.none_of.into(),
        ]
    };
    let count_sql =
        format!("SELECT COUNT(*) FROM ({MATCHES}) m WHERE m.customer_id NOT IN ({EXCLUDED})");
    let page_sql = format!(
        "SELECT m.customer_id FROM ({MATCHES}) m WHERE m.customer_id NOT IN ({EXCLUDED}) \
         ORDER BY m.customer_id DESC LIMIT {PAGE}"
    );

    let started = Instant::now();
    let count_row = db
        .query_one_raw(Statement::from_sql_and_values(
            DbBackend::MySql,
            count_sql,
            values(),
        ))
        .await
        .context("SQL count")?
        .context("SQL count returned no row")?;
    let page_rows = db
        .query_all_raw(Statement::from_sql_and_values(
            DbBackend::MySql,
            page_sql,
            values(),
        ))
        .await
        .context("SQL page")?;
    let elapsed = started.elapsed();

    let count = count_row.try_get_by_index::<i64>(0)?;
    let page = page_rows
        .iter()
        .map(|row| row.try_get_by_index::<i64>(0))
        .collect::<Result<Vec<_>, _>>()?;
    Ok((elapsed, count, page))
}

pub(crate) fn latencies() -> anyhow::Result<Latencies> {
    // 1 µs to one hour at three significant digits.
    Histogram::new_with_bounds(1, 3_600_000_000, 3).context("creating a latency histogram")
}

pub(crate) fn micros(elapsed: Duration) -> u64 {
    u64::try_from(elapsed.as_micros())
        .unwrap_or(u64::MAX)
        .max(1)
}

pub(crate) fn phase_bar(name: &str, len: u64) -> anyhow::Result<ProgressBar> {
    let bar = ProgressBar::new(len);
    bar.set_style(
        ProgressStyle::with_template(
            "{msg} [{elapsed_precise}] {wide_bar} {pos}/{len} ({per_sec})",
        )
        .context("progress bar template")?,
    );
    bar.set_message(name.to_owned());
    Ok(bar)
}

/// The first few ids of a page, for a readable mismatch report.
fn brief(ids: &[i64]) -> String {
    let head: Vec<String> = ids.iter().take(5).map(i64::to_string).collect();
    format!(
        "[{}{}] ({} ids)",
        head.join(", "),
        if ids.len() > 5 { ", …" } else { "" },
        ids.len()
    )
}
