//! `scantag-bench rules-at-scale`: the rules engine over a large tenant, on a manual clock.
//!
//! The run's own database gets two years of history (by default 1M customers, 5M orders,
//! 1.5M follow-ups, 2M visits and 100k feedback events) in SQL. Then, in one run:
//! - the capture and order latencies with no rule;
//! - the time of one `SELECT customer_id, SUM(amount), COUNT(*) … GROUP BY customer_id` over
//!   the orders of the last 180 days (the yardstick of a set-based evaluation);
//! - 20 rules from every clock-driven template (and the others but 高意向) instantiated over
//!   HTTP, and the backfill they queue timed until its job is done;
//! - the capture and order latencies again, with the 20 rules;
//! - the clock moved one day over `POST /__dev/clock`, twice (right after the backfill and the
//!   load, then on a quiet server): how many customers were due, how many
//!   tags and tasks changed, and how long until nothing due is left;
//! - checks by brute force: 高价值客户, 活跃, 沉默, 新录入 and 待分配 against SQL over every
//!   customer, and every rule again over HTTP for a sample of customers.

use chrono::Timelike as _;
use sea_orm::TransactionTrait as _;

use super::check::{agree_with_rules, ids};
use super::history::{self, Plan};
use super::on_fresh_server;
use super::*;

const TEMPLATES: [&str; 7] = [
    "new_customer",
    "high_value",
    "lifecycle",
    "abc_tiers",
    "rfm",
    "first_capture",
    "activity",
];
const TARGET_BACKFILL_RATIO: f64 = 3.0;
const TARGET_DAY_SECS: f64 = 10.0;

#[derive(clap::Args, Debug)]
pub struct ScaleArgs {
    /// Customers seeded.
    #[arg(long, default_value_t = 1_000_000)]
    customers: u64,
    #[arg(long, default_value_t = 5.0)]
    orders_per_customer: f64,
    #[arg(long, default_value_t = 1.5)]
    follow_ups_per_customer: f64,
    #[arg(long, default_value_t = 2.0)]
    visits_per_customer: f64,
    /// Customers per seeding transaction.
    #[arg(long, default_value_t = 1_000)]
    seed_batch: usize,
    #[arg(long, default_value_t = 3)]
    seed_connections: usize,
    /// Captures (and orders) measured before and after the rules.
    #[arg(long, default_value_t = 1_000)]
    visits: usize,
    /// Unmeasured captures (and orders) before each measured phase.
    #[arg(long, default_value_t = 200)]
    warmup: usize,
    #[arg(long, default_value_t = 16)]
    concurrency: usize,
    /// Customers whose every rule is evaluated again over HTTP at the end.
    #[arg(long, default_value_t = 1_000)]
    sample: usize,
    #[arg(long, default_value_t = 32)]
    pool: u32,
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Resize the server's InnoDB buffer pool to this many MiB for the run (and back after
    /// it); without it the run takes the server as it is. The header reports the size and the
    /// run's data.
    #[arg(long)]
    buffer_pool_mib: Option<u64>,
}

pub async fn run(backends: &Backends, args: &ScaleArgs) -> anyhow::Result<bool> {
    if args.customers == 0 || args.visits == 0 || args.concurrency == 0 {
        bail!("--customers, --visits and --concurrency must be at least 1");
    }
    // A name of the run's own: two runs cannot wipe each other's data.
    let database = format!("scantag_bench_rules_scale_{}", std::process::id());
    let pool = args.pool;
    let mysql_url = SecretString::from(backends.mysql_url.clone());
    let resized = match args.buffer_pool_mib {
        Some(mib) => Some(backends::set_buffer_pool(&mysql_url, mib * 1024 * 1024).await?),
        None => None,
    };
    let result = on_fresh_server(
        backends,
        &database,
        |s| {
            s.database_max_connections = pool;
            s.dev.manual_clock = true;
            // The clock moves a day; one token serves the whole run.
            s.jwt.access_ttl_secs = 7 * 24 * 3600;
        },
        async |server, database_url| bench(args, &database, server, database_url).await,
    )
    .await;
    if let Some(before) = resized
        && let Err(err) = backends::set_buffer_pool(&mysql_url, before).await
    {
        eprintln!("scantag-bench: could not give the buffer pool its size back: {err:#}");
    }
    result
}

async fn scalar(db: &DatabaseConnection, sql: &str) -> anyhow::Result<i64> {
    backends::value(db, sql).await
}

fn sql_time(t: chrono::DateTime<Utc>) -> String {
    format!("'{}'", t.format("%Y-%m-%d %H:%M:%S%.6f"))
}

async fn server_now(api: &Api) -> anyhow::Result<chrono::DateTime<Utc>> {
    let clock = api.get("/__dev/clock").await?;
    clock["now"]
        .as_str()
        .context("clock now")?
        .parse()
        .context("clock now")
}

/// Captures and orders, `warmup` unmeasured first.
struct Load {
    captures: Phase,
    orders: (Latencies, Duration),
}

async fn load(
    args: &LoadPlan<'_>,
    visitors: &[(usize, String)],
    round: u64,
    problems: &mut Vec<String>,
) -> anyhow::Result<Load> {
    let (warm, measured) = visitors.split_at(args.warmup);
    let cfg = args.cfg;
    let warm_phase = visit_all(
        args.client,
        args.base,
        args.tenant,
        warm,
        cfg.concurrency,
        0.0,
        cfg.seed + round,
    )
    .await?;
    problems.extend(warm_phase.failures);
    let captures = visit_all(
        args.client,
        args.base,
        args.tenant,
        measured,
        cfg.concurrency,
        0.0,
        cfg.seed + round + 1,
    )
    .await?;
    problems.extend(captures.failures.iter().cloned());
    let (_, _, failures) = post_orders(
        args.client,
        args.base,
        args.tenant,
        args.customers,
        args.warmup,
        cfg.concurrency,
        cfg.seed + round + 2,
    )
    .await?;
    problems.extend(failures);
    let (times, elapsed, failures) = post_orders(
        args.client,
        args.base,
        args.tenant,
        args.customers,
        cfg.visits,
        cfg.concurrency,
        cfg.seed + round + 3,
    )
    .await?;
    problems.extend(failures);
    Ok(Load {
        captures,
        orders: (times, elapsed),
    })
}

/// What a load phase runs against.
struct LoadPlan<'a> {
    cfg: &'a ScaleArgs,
    warmup: usize,
    client: &'a reqwest::Client,
    base: &'a str,
    tenant: &'a Tenant,
    customers: &'a [i64],
}

/// Waits until no rule state is due at `at` (the scheduler has applied everything due then).
async fn drained(db: &DatabaseConnection, at: chrono::DateTime<Utc>) -> anyhow::Result<Duration> {
    let started = Instant::now();
    let sql = format!(
        "SELECT COUNT(*) FROM rule_due WHERE next_due_at <= {}",
        sql_time(at)
    );
    while scalar(db, &sql).await? > 0 {
        if started.elapsed() > Duration::from_secs(1_800) {
            bail!("due rule states still waiting after 30 minutes");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Ok(started.elapsed())
}

/// What one day's due transitions were, and how long they took.
struct Day {
    due: i64,
    changes: i64,
    tasks: i64,
    took: Duration,
}

/// Moves the clock one day and waits until nothing due is left.
async fn advance_day(api: &Api, db: &DatabaseConnection, t: i64) -> anyhow::Result<Day> {
    let now0 = server_now(api).await?;
    drained(db, now0).await?;
    let due = scalar(
        db,
        &format!(
            "SELECT COUNT(*) FROM rule_due WHERE next_due_at <= {}",
            sql_time(now0 + chrono::Duration::days(1))
        ),
    )
    .await?;
    eprintln!(
        "advancing the clock one day ({} customers due)",
        group(due as u64)
    );
    let moved = api
        .post("/__dev/clock", &json!({"advance_secs": 86_400}))
        .await?;
    let now1: chrono::DateTime<Utc> = moved["now"].as_str().context("now")?.parse()?;
    let took = drained(db, now1).await?;
    // Rows keep whole seconds: everything of this second and after came with the day (the
    // load is over and nothing else was due).
    let from = now1.with_nanosecond(0).context("the clock's second")?;
    let changes = scalar(
        db,
        &format!(
            "SELECT COUNT(*) FROM tag_history WHERE tenant_id = {t} AND source = 'rule' AND created_at >= {}",
            sql_time(from)
        ),
    )
    .await?;
    let tasks = scalar(
        db,
        &format!(
            "SELECT COUNT(*) FROM tasks WHERE tenant_id = {t} AND kind = 'rule' AND created_at >= {}",
            sql_time(from)
        ),
    )
    .await?;
    Ok(Day {
        due,
        changes,
        tasks,
        took,
    })
}

/// Long because the run is one story: seed, measure, enable, backfill, measure, advance, check.
async fn bench(
    args: &ScaleArgs,
    database: &str,
    server: &BenchServer,
    database_url: &SecretString,
) -> anyhow::Result<bool> {
    let api = &server.api;
    let db = backends::connect(database_url.expose_secret(), args.seed_connections + 2)
        .await
        .context("connecting")?;
    let t = server.tenant_id;
    let scene = booth(api).await?;
    let owner = api.get("/api/v1/me").await?["principal"]["id"]
        .as_i64()
        .context("admin id")?;
    let zone: String = db
        .query_one_raw(Statement::from_string(
            db.get_database_backend(),
            format!("SELECT timezone FROM tenants WHERE id = {t}"),
        ))
        .await?
        .context("the tenant")?
        .try_get_by_index(0)?;
    if zone != "Asia/Shanghai" {
        bail!("the checks count local days at UTC+8; the bench tenant's zone is {zone}");
    }

    eprintln!(
        "seeding {} customers and two years of history",
        group(args.customers)
    );
    let seeded = history::seed(
        &db,
        Plan {
            tenant: t,
            owner,
            customers: args.customers,
            orders_per_customer: args.orders_per_customer,
            follow_ups_per_customer: args.follow_ups_per_customer,
            visits_per_customer: args.visits_per_customer,
            batch: args.seed_batch,
            connections: args.seed_connections,
            seed: args.seed,
            now: server_now(api).await?,
        },
    )
    .await?;
    eprintln!(
        "seeded {} customers, {} orders, {} follow-ups, {} events in {:.0} s",
        group(seeded.customers),
        group(seeded.orders),
        group(seeded.follow_ups),
        group(seeded.events),
        seeded.secs
    );
    db.execute_unprepared("ANALYZE TABLE customers, orders, follow_ups, activity_events")
        .await
        .context("ANALYZE TABLE")?;

    // The yardstick: one set-based pass over the orders of the window, all rows fetched.
    let since = server_now(api).await? - chrono::Duration::days(180);
    let group_by = format!(
        "SELECT customer_id, SUM(amount_fen), COUNT(*) FROM orders WHERE occurred_at >= {} GROUP BY customer_id",
        sql_time(since)
    );
    let mut group_by_secs = Vec::new();
    let mut group_by_rows = 0;
    for _ in 0..3 {
        let started = Instant::now();
        let rows = db
            .query_all_raw(Statement::from_string(
                db.get_database_backend(),
                group_by.clone(),
            ))
            .await
            .context("the GROUP BY")?;
        group_by_secs.push(started.elapsed().as_secs_f64());
        group_by_rows = rows.len();
    }
    let mut sorted = group_by_secs.clone();
    sorted.sort_by(f64::total_cmp);
    let group_by_median = sorted[1];

    let tenant = Tenant {
        name: "bench",
        api: api.clone(),
        id: t,
        scene,
        tags: HashMap::new(),
        rules: Vec::new(),
    };
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(120))
        .pool_max_idle_per_host(args.concurrency * 2)
        .build()?;
    let base = api.base_url().to_owned();
    let per_phase = args.warmup + args.visits;
    eprintln!("logging in {} visitors", group(2 * per_phase as u64));
    let visitors = log_in(server, &client, &base, "scale", 2 * per_phase).await?;
    let mut rng = StdRng::seed_from_u64(args.seed);
    let order_customers: Vec<i64> = (0..10_000)
        .map(|_| rng.random_range(1..=args.customers as i64))
        .collect();
    let mut problems = Vec::new();
    let load_args = LoadPlan {
        cfg: args,
        warmup: args.warmup,
        client: &client,
        base: &base,
        tenant: &tenant,
        customers: &order_customers,
    };
    eprintln!("captures and orders, no rules");
    let before = load(&load_args, &visitors[..per_phase], 0, &mut problems).await?;

    eprintln!("instantiating the templates ({})", TEMPLATES.join(", "));
    let started = Instant::now();
    let mut rule_count = 0;
    let mut tags: HashMap<String, i64> = HashMap::new();
    for key in TEMPLATES {
        let made = api
            .post(&format!("/api/v1/rule-templates/{key}"), &json!({}))
            .await?;
        rule_count += made["rules"].as_array().map_or(0, Vec::len);
        for tag in made["tags"].as_array().context("tags")? {
            tags.insert(
                tag["name"].as_str().context("name")?.to_owned(),
                tag["tag_id"].as_i64().context("tag_id")?,
            );
        }
    }
    let saved = started.elapsed();
    // The backfill: until no job is queued or running.
    let jobs = loop {
        let jobs = api.get("/api/v1/rule-jobs").await?["items"]
            .as_array()
            .context("jobs")?
            .clone();
        if jobs
            .iter()
            .all(|j| j["status"] == "done" || j["status"] == "superseded")
        {
            break jobs;
        }
        if started.elapsed() > Duration::from_secs(3_600) {
            bail!("the backfill did not finish within an hour");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let backfill = started.elapsed();
    let evaluated: i64 = jobs.iter().filter_map(|j| j["processed"].as_i64()).sum();
    let finished = jobs
        .iter()
        .find(|j| j["status"] == "done")
        .context("a finished backfill")?;
    let (changed, corrections) = (
        finished["changed"].as_i64().unwrap_or(0),
        finished["corrections"].as_i64().unwrap_or(0),
    );
    let superseded = jobs.iter().filter(|j| j["status"] == "superseded").count();
    let links = scalar(
        &db,
        &format!("SELECT COUNT(*) FROM customer_tags WHERE tenant_id = {t} AND source = 'rule'"),
    )
    .await?;
    let states = scalar(&db, "SELECT COUNT(*) FROM rule_states").await?;
    let queued = scalar(&db, "SELECT COUNT(*) FROM rule_due").await?;
    let backfill_tasks = scalar(
        &db,
        &format!("SELECT COUNT(*) FROM tasks WHERE tenant_id = {t} AND kind = 'rule'"),
    )
    .await?;

    eprintln!("captures and orders, {rule_count} rules");
    let after = load(&load_args, &visitors[per_phase..], 10, &mut problems).await?;

    // One day passes, then another: the first comes right after the backfill and the load,
    // the second on a server with nothing else to do.
    let first_day = advance_day(api, &db, t).await?;
    let second_day = advance_day(api, &db, t).await?;
    let days = [
        ("one day advanced", &first_day),
        ("the day after", &second_day),
    ];

    // A full re-check: every customer read and evaluated again, with nothing to correct.
    eprintln!("re-checking every customer");
    let started = Instant::now();
    let job = api.post("/api/v1/rules/recheck", &json!({})).await?;
    let job_id = job["id"].as_i64().context("job id")?;
    let recheck = loop {
        let job = api.get(&format!("/api/v1/rule-jobs/{job_id}")).await?;
        if job["status"] == "done" {
            break job;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let recheck_secs = started.elapsed().as_secs_f64();
    let recheck_corrections = recheck["corrections"].as_i64().unwrap_or(-1);
    if recheck_corrections != 0 {
        problems.push(format!(
            "the re-check corrected {recheck_corrections} tags, e.g. {}",
            recheck["sample"]
        ));
    }
    let rechecked = recheck["processed"].as_i64().unwrap_or(0);

    eprintln!("checking by brute force");
    let checked = sql_checks(&db, api, t, &tags, &mut problems).await?;
    let live: Vec<i64> = ids(
        &db,
        &format!("SELECT id FROM customers WHERE tenant_id = {t} AND deleted_at IS NULL"),
    )
    .await?
    .into_iter()
    .collect();
    let rule_tags: BTreeSet<i64> = tags.values().copied().collect();
    let evaluations = agree_with_rules(api, &live, args.sample, &rule_tags, &mut problems).await?;
    let mysql_version = backends::mysql_version(&db).await?;
    let buffer_pool = backends::buffer_pool_bytes(&db).await?;
    let data = backends::database_bytes(&db, database).await?;
    db.close().await.ok();

    let p99 = |l: &Latencies| l.value_at_quantile(0.99) as f64 / 1000.0;
    let p50 = |l: &Latencies| l.value_at_quantile(0.5) as f64 / 1000.0;
    let ratio = backfill.as_secs_f64() / group_by_median;
    println!(
        "MySQL/MariaDB {mysql_version} (InnoDB buffer pool {} MiB; the run's data and indexes {} MiB at the end) · one server, database pool {} · {} CPU cores shared by the database, the server and the load · manual clock",
        buffer_pool / (1024 * 1024),
        data / (1024 * 1024),
        args.pool,
        std::thread::available_parallelism().map_or(1, usize::from),
    );
    println!(
        "seeded {} customers, {} orders, {} follow-ups, {} events over two years in {:.0} s; {rule_count} rules from {} templates",
        group(seeded.customers),
        group(seeded.orders),
        group(seeded.follow_ups),
        group(seeded.events),
        seeded.secs,
        TEMPLATES.len()
    );
    println!();
    println!("| measurement | value |");
    println!("|---|---:|");
    println!(
        "| GROUP BY over the 180-day orders ({} rows), 3 runs | {} s (median {:.2} s) |",
        group(group_by_rows as u64),
        group_by_secs
            .iter()
            .map(|s| format!("{s:.2}"))
            .collect::<Vec<_>>()
            .join(" / "),
        group_by_median
    );
    println!(
        "| backfill: first save to job done ({} templates saved in {:.2} s, {superseded} backfill(s) superseded, {} customer evaluations) | {:.2} s = {:.1}× the GROUP BY, {:.0} customers/s |",
        TEMPLATES.len(),
        saved.as_secs_f64(),
        group(evaluated as u64),
        backfill.as_secs_f64(),
        ratio,
        evaluated as f64 / backfill.as_secs_f64()
    );
    println!(
        "| backfill's work: customers changed / tags put on / rule links / rule states / due-queue rows / tasks | {} / {} / {} / {} / {} / {} |",
        group(changed as u64),
        group(corrections as u64),
        group(links as u64),
        group(states as u64),
        group(queued as u64),
        group(backfill_tasks as u64)
    );
    println!(
        "| re-check of every customer ({} evaluated, nothing to write) | {recheck_secs:.2} s = {:.1}× the GROUP BY, {:.0} customers/s; {recheck_corrections} corrections |",
        group(rechecked as u64),
        recheck_secs / group_by_median,
        rechecked as f64 / recheck_secs
    );
    for (what, day) in days {
        println!(
            "| {what}: customers due / tag changes / tasks | {} / {} / {} |",
            group(day.due as u64),
            group(day.changes as u64),
            group(day.tasks as u64)
        );
        println!(
            "| {what}: until nothing due is left | {:.2} s ({:.0} customers/s) |",
            day.took.as_secs_f64(),
            day.due as f64 / day.took.as_secs_f64().max(0.001)
        );
    }
    println!();
    println!("| workload | ops | ops/s | p50 ms | p99 ms | max ms |");
    println!("|---|---:|---:|---:|---:|---:|");
    println!(
        "{}",
        row(
            "capture submit, no rules",
            &before.captures.submit,
            before.captures.elapsed
        )
    );
    println!(
        "{}",
        row(
            &format!("capture submit, {rule_count} rules"),
            &after.captures.submit,
            after.captures.elapsed
        )
    );
    println!(
        "{}",
        row("order, no rules", &before.orders.0, before.orders.1)
    );
    println!(
        "{}",
        row(
            &format!("order, {rule_count} rules"),
            &after.orders.0,
            after.orders.1
        )
    );
    println!();
    println!(
        "added with {rule_count} rules: capture p50 {:+.2} ms, p99 {:+.2} ms; order p50 {:+.2} ms, p99 {:+.2} ms",
        p50(&after.captures.submit) - p50(&before.captures.submit),
        p99(&after.captures.submit) - p99(&before.captures.submit),
        p50(&after.orders.0) - p50(&before.orders.0),
        p99(&after.orders.0) - p99(&before.orders.0),
    );
    println!(
        "targets: backfill ≤ {TARGET_BACKFILL_RATIO}× the GROUP BY: {}; a day's transitions ≤ {TARGET_DAY_SECS} s: {}",
        if ratio <= TARGET_BACKFILL_RATIO {
            "met"
        } else {
            "NOT met"
        },
        if days
            .iter()
            .all(|(_, d)| d.took.as_secs_f64() <= TARGET_DAY_SECS)
        {
            "met"
        } else {
            "NOT met"
        },
    );
    println!(
        "checks: {checked} tags against SQL over all {} customers; {evaluations} rule evaluations over HTTP for {} sampled customers; {} mismatches",
        group(live.len() as u64),
        args.sample.min(live.len()),
        problems.len()
    );
    for problem in problems.iter().take(20) {
        eprintln!("PROBLEM {problem}");
    }
    Ok(problems.is_empty())
}

/// The tags whose rules SQL can say directly, over every customer, at the server's time. A
/// difference is only reported when it is still there a few seconds later, once the
/// scheduler has applied what came due while the check ran (the clock runs on).
async fn sql_checks(
    db: &DatabaseConnection,
    api: &Api,
    t: i64,
    tags: &HashMap<String, i64>,
    problems: &mut Vec<String>,
) -> anyhow::Result<usize> {
    let templates = api.get("/api/v1/rule-templates").await?;
    let param = |key: &str, name: &str| -> anyhow::Result<f64> {
        templates["items"]
            .as_array()
            .context("templates")?
            .iter()
            .find(|t| t["key"] == key)
            .and_then(|t| {
                t["parameters"]
                    .as_array()?
                    .iter()
                    .find(|p| p["name"] == name)
            })
            .and_then(|p| p["default"].as_f64())
            .with_context(|| format!("parameter {name} of {key}"))
    };
    let (spend, orders, window) = (
        param("high_value", "min_spend_fen")?,
        param("high_value", "min_orders")?,
        param("high_value", "window_days")?,
    );
    let silent = param("activity", "silent_days")?;
    let new_days = param("new_customer", "new_days")?;
    let queries = |now: &str| -> Vec<(&'static str, String)> {
        let local = |e: &str| format!("DATE({e} + INTERVAL 8 HOUR)");
        let since_visit = format!(
            "DATEDIFF({}, {})",
            local(now),
            local("COALESCE(v.last_visit, c.created_at)")
        );
        let visits = format!(
            "FROM customers c LEFT JOIN (SELECT customer_id, MAX(occurred_at) AS last_visit FROM activity_events \
             WHERE tenant_id = {t} AND kind = 'visit' AND occurred_at <= {now} GROUP BY customer_id) v ON v.customer_id = c.id \
             WHERE c.tenant_id = {t} AND c.deleted_at IS NULL"
        );
        vec![
            (
                "高价值客户",
                format!(
                    "SELECT o.customer_id FROM orders o JOIN customers c ON c.id = o.customer_id AND c.deleted_at IS NULL \
                 WHERE o.tenant_id = {t} AND o.status = 'paid' AND o.currency = 'CNY' \
                   AND o.occurred_at > {now} - INTERVAL {window} DAY AND o.occurred_at <= {now} \
                 GROUP BY o.customer_id HAVING SUM(o.amount_fen) > {spend} AND COUNT(*) > {orders}"
                ),
            ),
            (
                "活跃",
                format!("SELECT c.id {visits} AND {since_visit} < {silent}"),
            ),
            (
                "沉默",
                format!("SELECT c.id {visits} AND {since_visit} >= {silent}"),
            ),
            (
                "新录入",
                format!(
                    "SELECT id FROM customers WHERE tenant_id = {t} AND deleted_at IS NULL AND DATEDIFF({}, {}) < {new_days}",
                    local(now),
                    local("created_at")
                ),
            ),
            (
                "待分配",
                format!(
                    "SELECT id FROM customers WHERE tenant_id = {t} AND deleted_at IS NULL AND owner_id IS NULL"
                ),
            ),
        ]
    };
    let differences = || async {
        let now = sql_time(server_now(api).await?);
        let mut out: Vec<(&'static str, BTreeSet<i64>, usize, usize)> = Vec::new();
        for (name, sql) in queries(&now) {
            let tag = tags.get(name).with_context(|| format!("the tag {name}"))?;
            // Read in one snapshot, so the expected and the carried sets are of one instant.
            let txn = db.begin().await?;
            let expected = ids_in(&txn, &sql).await?;
            let carried = ids_in(
                &txn,
                &format!("SELECT customer_id FROM customer_tags WHERE tag_id = {tag}"),
            )
            .await?;
            txn.commit().await?;
            let diff: BTreeSet<i64> = expected.symmetric_difference(&carried).copied().collect();
            out.push((name, diff, expected.len(), carried.len()));
        }
        anyhow::Ok(out)
    };
    let first = differences().await?;
    let checked = first.len();
    if first.iter().any(|(_, d, _, _)| !d.is_empty()) {
        tokio::time::sleep(Duration::from_secs(3)).await;
        let second = differences().await?;
        for ((name, a, expected, carried), (_, b, _, _)) in first.iter().zip(&second) {
            let kept: Vec<&i64> = a.intersection(b).collect();
            if !kept.is_empty() {
                problems.push(format!(
                    "{name}: {expected} expected, {carried} carry it; {} differ, e.g. {:?}",
                    kept.len(),
                    kept.iter().take(5).collect::<Vec<_>>()
                ));
            }
        }
    }
    Ok(checked)
}

async fn ids_in(txn: &sea_orm::DatabaseTransaction, sql: &str) -> anyhow::Result<BTreeSet<i64>> {
    let rows = txn
        .query_all_raw(Statement::from_string(
            txn.get_database_backend(),
            sql.to_owned(),
        ))
        .await
        .with_context(|| format!("running {sql}"))?;
    rows.iter()
        .map(|r| r.try_get_by_index::<i64>(0).context("an id"))
        .collect()
}
