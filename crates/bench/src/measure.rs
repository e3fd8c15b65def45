//! The measurements of `search`: the endpoint answered by the server's bitmap index with the
//! cache bypassed, and warm from the cache; the same questions as the server's own SQL (run
//! directly) and as a relational division; the bitmap operation alone; the two ways of refining
//! candidates with a keyword; and a search right after a tag write. Every HTTP answer — total,
//! every id of the page, every item — is checked against the SQL answer.

use std::time::{Duration, Instant};

use anyhow::Context;
use hdrhistogram::Histogram;
use indicatif::{ProgressBar, ProgressStyle};
use scantag_api::routes::customers::{CustomerView, SearchResponse};
use scantag_domain::access::{Scope, Viewer};
use scantag_domain::customers;
use scantag_domain::kernel::ids::TenantId;
use scantag_domain::search::{self, Resolved, index};
use sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend, Statement, Value};
use serde_json::json;

use crate::filters::{Filter, PAGE, Question};
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

/// One printed row.
pub struct Row {
    pub name: &'static str,
    pub latencies: Latencies,
}

pub struct Results {
    pub rows: Vec<Row>,
    /// The SQL count of every tag filter, in filter order.
    pub totals: Vec<i64>,
    /// The SQL count of every mixed filter.
    pub mixed_totals: Vec<i64>,
    /// Cache-bypassed HTTP and best-SQL latency of every tag filter, in filter order.
    pub per_filter: Vec<(Duration, Duration)>,
    pub problems: Vec<String>,
}

impl Results {
    pub fn row(&self, name: &str) -> Option<&Latencies> {
        self.rows
            .iter()
            .find(|r| r.name == name)
            .map(|r| &r.latencies)
    }
}

pub const HTTP_COLD: &str = "HTTP cold: index (cache bypassed)";
pub const HTTP_WARM: &str = "HTTP warm (cached)";
pub const SQL_SHAPE: &str = "SQL: the server's query shape, run directly (count + page)";
pub const SQL_DIVISION: &str = "SQL: relational division (count + page), second yardstick";
pub const BITMAP: &str = "bitmap operation alone (AND, ANDNOT, count, page ids)";
pub const AFTER_WRITE: &str = "HTTP right after a tag write (catch-up)";
pub const MIXED_COLD: &str = "mixed: HTTP cold, index + keyword refine";
pub const MIXED_WARM: &str = "mixed: HTTP warm (cached)";
pub const MIXED_SQL: &str = "mixed: SQL, the server's query shape";
pub const MIXED_CHECK: &str = "mixed: refine by checking candidates by key";
pub const MIXED_INTERSECT: &str = "mixed: refine by intersecting SQL's keyword ids";

/// What the phases work on.
pub struct Plan<'a> {
    pub api: &'a Api,
    pub db: &'a DatabaseConnection,
    pub tenant: TenantId,
    pub filters: &'a [Filter],
    pub mixed: &'a [Question],
    /// Tag filters also timed as a relational division (the first ones).
    pub division_queries: usize,
    pub warm_repeats: u32,
    /// The bench's own index of the tenant, for the bitmap operation alone.
    pub held: &'a index::Held,
    /// A tag no seeded customer carries, and customers to put it on one by one.
    pub write_tag: i64,
    pub write_targets: &'a [i64],
}

struct HttpAnswer {
    json: serde_json::Value,
    cache: Option<String>,
    path: Option<String>,
}

impl HttpAnswer {
    fn total(&self) -> i64 {
        self.json["total"].as_i64().unwrap_or(-1)
    }
}

/// Runs the phases in order, all sequential on one keep-alive connection.
pub async fn run(plan: &Plan<'_>) -> anyhow::Result<Results> {
    let viewer = Viewer {
        tenant: plan.tenant,
        scope: Scope::Tenant,
    };
    let mut results = Results {
        rows: Vec::new(),
        totals: Vec::new(),
        mixed_totals: Vec::new(),
        per_filter: Vec::new(),
        problems: Vec::new(),
    };
    let questions: Vec<Question> = plan.filters.iter().map(Filter::question).collect();
    for (set, mixed) in [(&questions[..], false), (plan.mixed, true)] {
        let names = if mixed {
            [MIXED_COLD, MIXED_SQL, MIXED_WARM]
        } else {
            [HTTP_COLD, SQL_SHAPE, HTTP_WARM]
        };
        let mut resolved = Vec::with_capacity(set.len());
        for q in set {
            resolved.push(search::resolve(plan.db, plan.tenant, &q.filter).await?);
        }
        let (cold_row, cold, cold_times) = http_phase(plan.api, names[0], set, true).await?;
        let (sql_row, sql_times) =
            sql_phase(plan, &viewer, names[1], set, &resolved, &cold, &mut results).await?;
        if mixed {
            results.mixed_totals = cold.iter().map(HttpAnswer::total).collect();
        } else {
            results.totals = cold.iter().map(HttpAnswer::total).collect();
            results.per_filter = cold_times.iter().copied().zip(sql_times).collect();
        }
        for (q, answer) in set.iter().zip(&cold) {
            if answer.cache.as_deref() != Some("bypass") || answer.path.as_deref() != Some("index")
            {
                results.problems.push(format!(
                    "{}: X-Cache {:?}, X-Search-Path {:?} on a bypassing request, expected \"bypass\" from the index",
                    q.label, answer.cache, answer.path
                ));
            }
        }
        results.rows.push(cold_row);
        results.rows.push(sql_row);
        if mixed {
            for (name, refine) in [
                (MIXED_CHECK, index::Refine::Check),
                (MIXED_INTERSECT, index::Refine::Intersect),
            ] {
                let row = refine_phase(
                    plan,
                    &viewer,
                    name,
                    refine,
                    set,
                    &resolved,
                    &cold,
                    &mut results,
                )
                .await?;
                results.rows.push(row);
            }
        } else {
            let division = division_phase(plan, &cold, &mut results).await?;
            results.rows.push(division);
            let bitmap = bitmap_phase(plan, &viewer, set, &resolved, &cold, &mut results)?;
            results.rows.push(bitmap);
        }
        let warm = warm_phase(plan, names[2], set, &cold, &mut results).await?;
        results.rows.push(warm);
    }
    let writes = write_phase(plan, &mut results).await?;
    results.rows.push(writes);
    Ok(results)
}

/// Every question once over HTTP.
async fn http_phase(
    api: &Api,
    name: &'static str,
    questions: &[Question],
    bypass: bool,
) -> anyhow::Result<(Row, Vec<HttpAnswer>, Vec<Duration>)> {
    let mut latencies = latencies()?;
    let bar = phase_bar(name, questions.len() as u64)?;
    let (mut answers, mut times) = (Vec::new(), Vec::new());
    for q in questions {
        let (elapsed, answer) = http_search(api, &q.body, bypass).await?;
        latencies.saturating_record(micros(elapsed));
        times.push(elapsed);
        answers.push(answer);
        bar.inc(1);
    }
    bar.finish_and_clear();
    Ok((Row { name, latencies }, answers, times))
}

/// The server's own SQL for every question, timed (count + page of ids); then the whole
/// answer, loaded as the server loads it, checked against the HTTP answer.
async fn sql_phase(
    plan: &Plan<'_>,
    viewer: &Viewer,
    name: &'static str,
    questions: &[Question],
    resolved: &[Resolved],
    http: &[HttpAnswer],
    results: &mut Results,
) -> anyhow::Result<(Row, Vec<Duration>)> {
    let mut latencies = latencies()?;
    let mut times = Vec::new();
    let bar = phase_bar(name, questions.len() as u64)?;
    for ((q, resolved), http) in questions.iter().zip(resolved).zip(http) {
        let started = Instant::now();
        let page = search::page(plan.db, viewer, resolved, PAGE, None).await?;
        let elapsed = started.elapsed();
        latencies.saturating_record(micros(elapsed));
        times.push(elapsed);
        let expected = oracle(plan, page).await?;
        if http.json != expected {
            results.problems.push(format!(
                "{}: the HTTP answer (total {}, page {}) differs from SQL's (total {}, page {})",
                q.label,
                http.total(),
                brief(&ids_of(&http.json)),
                expected["total"],
                brief(&ids_of(&expected))
            ));
        }
        bar.inc(1);
    }
    bar.finish_and_clear();
    Ok((Row { name, latencies }, times))
}

/// The answer the API gives for `page`, built from SQL as the server builds it.
async fn oracle(plan: &Plan<'_>, page: search::Page) -> anyhow::Result<serde_json::Value> {
    let loaded = customers::loaded(plan.db, plan.tenant, page).await?;
    let response = SearchResponse {
        total: loaded.total,
        items: loaded.items.into_iter().map(CustomerView::from).collect(),
        next_cursor: loaded.next_cursor,
    };
    serde_json::to_value(&response).context("serializing the SQL answer")
}

fn ids_of(json: &serde_json::Value) -> Vec<i64> {
    json["items"]
        .as_array()
        .map(|items| items.iter().filter_map(|i| i["id"].as_i64()).collect())
        .unwrap_or_default()
}

async fn division_phase(
    plan: &Plan<'_>,
    http: &[HttpAnswer],
    results: &mut Results,
) -> anyhow::Result<Row> {
    let mut latencies = latencies()?;
    let count = plan.division_queries.min(plan.filters.len());
    let bar = phase_bar(SQL_DIVISION, count as u64)?;
    for (filter, http) in plan.filters.iter().zip(http).take(count) {
        let (elapsed, total, page) = division(plan.db, plan.tenant.0, filter).await?;
        latencies.saturating_record(micros(elapsed));
        if total != http.total() || page != ids_of(&http.json) {
            results.problems.push(format!(
                "{}: the relational division finds {total} ({}), HTTP {} ({})",
                filter.describe(),
                brief(&page),
                http.total(),
                brief(&ids_of(&http.json))
            ));
        }
        bar.inc(1);
    }
    bar.finish_and_clear();
    Ok(Row {
        name: SQL_DIVISION,
        latencies,
    })
}

/// The set algebra and page ids alone, in this process, on the bench's own index.
fn bitmap_phase(
    plan: &Plan<'_>,
    viewer: &Viewer,
    questions: &[Question],
    resolved: &[Resolved],
    http: &[HttpAnswer],
    results: &mut Results,
) -> anyhow::Result<Row> {
    let mut latencies = latencies()?;
    for ((q, resolved), http) in questions.iter().zip(resolved).zip(http) {
        let started = Instant::now();
        let (total, ids) = index::bitmap_page(plan.held, viewer, resolved, PAGE);
        latencies.saturating_record(micros(started.elapsed()));
        if total as i64 != http.total() || ids != ids_of(&http.json) {
            results.problems.push(format!(
                "{}: the bench's own index finds {total} ({}), HTTP {}",
                q.label,
                brief(&ids),
                http.total()
            ));
        }
    }
    Ok(Row {
        name: BITMAP,
        latencies,
    })
}

/// A mixed question answered from the bench's index with one way of refining, checked.
#[allow(clippy::too_many_arguments)]
async fn refine_phase(
    plan: &Plan<'_>,
    viewer: &Viewer,
    name: &'static str,
    refine: index::Refine,
    questions: &[Question],
    resolved: &[Resolved],
    http: &[HttpAnswer],
    results: &mut Results,
) -> anyhow::Result<Row> {
    let mut latencies = latencies()?;
    let bar = phase_bar(name, questions.len() as u64)?;
    for ((q, resolved), http) in questions.iter().zip(resolved).zip(http) {
        let started = Instant::now();
        let page = index::page(plan.db, plan.held, viewer, resolved, PAGE, None, refine).await?;
        latencies.saturating_record(micros(started.elapsed()));
        let ids: Vec<i64> = page.ids.iter().map(|id| id.0).collect();
        if page.total as i64 != http.total() || ids != ids_of(&http.json) {
            results.problems.push(format!(
                "{}: {name} finds {} ({}), HTTP {}",
                q.label,
                page.total,
                brief(&ids),
                http.total()
            ));
        }
        bar.inc(1);
    }
    bar.finish_and_clear();
    Ok(Row { name, latencies })
}

/// Every question once to fill the cache (not measured), then `warm_repeats` rounds, each
/// answer the same as the cold one.
async fn warm_phase(
    plan: &Plan<'_>,
    name: &'static str,
    questions: &[Question],
    cold: &[HttpAnswer],
    results: &mut Results,
) -> anyhow::Result<Row> {
    let mut latencies = latencies()?;
    let rounds = 1 + u64::from(plan.warm_repeats);
    let bar = phase_bar(name, questions.len() as u64 * rounds)?;
    for round in 0..rounds {
        for (q, cold) in questions.iter().zip(cold) {
            let (elapsed, answer) = http_search(plan.api, &q.body, false).await?;
            if round > 0 {
                latencies.saturating_record(micros(elapsed));
                if answer.cache.as_deref() != Some("hit") {
                    results.problems.push(format!(
                        "{}: repeat {round} answered X-Cache {:?}, expected \"hit\"",
                        q.label, answer.cache
                    ));
                }
            }
            if answer.json != cold.json {
                results.problems.push(format!(
                    "{}: warm round {round} answered total {} ({}), cold {}",
                    q.label,
                    answer.total(),
                    brief(&ids_of(&answer.json)),
                    cold.total()
                ));
            }
            bar.inc(1);
        }
    }
    bar.finish_and_clear();
    Ok(Row { name, latencies })
}

/// Puts the write tag on one customer after another over HTTP, each time listing the tag's
/// customers at once (the server's index catches up first): total and page checked.
async fn write_phase(plan: &Plan<'_>, results: &mut Results) -> anyhow::Result<Row> {
    let mut latencies = latencies()?;
    let bar = phase_bar(AFTER_WRITE, plan.write_targets.len() as u64)?;
    let mut written: Vec<i64> = Vec::new();
    let body = json!({"all_of": [plan.write_tag], "limit": PAGE});
    for &customer in plan.write_targets {
        plan.api
            .post(
                &format!("/api/v1/customers/{customer}/tags"),
                &json!({"tag_id": plan.write_tag}),
            )
            .await
            .with_context(|| format!("tagging customer {customer}"))?;
        written.push(customer);
        let (elapsed, answer) = http_search(plan.api, &body, true).await?;
        latencies.saturating_record(micros(elapsed));
        let mut expected = written.clone();
        expected.sort_unstable_by(|a, b| b.cmp(a));
        expected.truncate(PAGE as usize);
        if answer.total() != written.len() as i64 || ids_of(&answer.json) != expected {
            results.problems.push(format!(
                "after tagging customer {customer}: total {} ({}), expected {} ({})",
                answer.total(),
                brief(&ids_of(&answer.json)),
                written.len(),
                brief(&expected)
            ));
        }
        bar.inc(1);
    }
    bar.finish_and_clear();
    Ok(Row {
        name: AFTER_WRITE,
        latencies,
    })
}

/// One search request, timed until the whole body has arrived; parsing is not timed.
async fn http_search(
    api: &Api,
    body: &serde_json::Value,
    bypass_cache: bool,
) -> anyhow::Result<(Duration, HttpAnswer)> {
    let headers: &[(&str, &str)] = if bypass_cache {
        &[("cache-control", "no-cache")]
    } else {
        &[]
    };
    let started = Instant::now();
    let answer = api.send(SEARCH, body, headers).await?;
    let elapsed = started.elapsed();
    let json: serde_json::Value =
        serde_json::from_slice(&answer.body).context("the search answer is not JSON")?;
    json["total"]
        .as_i64()
        .with_context(|| format!("the search answer has no total: {json}"))?;
    let header = |name: &str| {
        answer
            .headers
            .get(name)
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
    };
    Ok((
        elapsed,
        HttpAnswer {
            cache: header("x-cache"),
            path: header("x-search-path"),
            json,
        },
    ))
}

/// The count and the first page (newest first) of one filter as a relational division, timed
/// together.
async fn division(
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
