//! `scantag-bench rules`: what the rules engine costs a capture and an order.
//!
//! One server, two tenants with the same booth (a fixed-owner channel whose form asks for a
//! phone, a company and a region): `plain` has no rule, `ruled` has 50 enabled rules — every
//! template from the brief (21 rules: lifecycle, RFM, A/B/C tiers, high value …) and 29 more on
//! regions, product categories, page views and other rules' tags. Visitors then go through the
//! whole mini-program path — fetch the form, submit with an `Idempotency-Key`, and for a share
//! of them submit again with the same key (a replay) — in a closed loop, the two tenants taking
//! turns round after round so that neither gets the warmer database. Orders follow, posted
//! to the captured customers the same way.
//!
//! Afterwards, by brute force over the database: every region, category and high-value tag
//! of `ruled` is checked against SQL over the customers and their orders, and for a sample of
//! customers every rule is evaluated again through `GET …/rules/{id}/evaluation`, which must
//! agree with the tags the customer carries; `plain` must carry no rule tag. Any difference
//! fails the run.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use chrono::Utc;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use sea_orm::{ConnectionTrait, DatabaseConnection, Statement};
use secrecy::{ExposeSecret, SecretString};
use serde_json::{Value, json};

mod check;
mod history;
mod load;
pub mod scale;
mod setup;

use check::{check, ids};
use load::{Phase, log_in, post_orders, visit_all};
use setup::{booth, fifty_rules};

use crate::Backends;
use crate::backends;
use crate::measure::{Latencies, latencies, micros};
use crate::report::{group, latency_row as row};
use crate::server::{Api, BenchServer};

const DATABASE: &str = "scantag_bench_rules";
const POLICY: &str = "2026-11";
const REGIONS: [&str; 10] = [
    "上海", "北京", "广州", "深圳", "杭州", "成都", "武汉", "南京", "西安", "苏州",
];
const CATEGORIES: [&str; 10] = [
    "SaaS",
    "硬件",
    "咨询",
    "培训",
    "维保",
    "耗材",
    "软件",
    "云服务",
    "安装",
    "定制",
];
const TARGET_ADDED_P99_MS: f64 = 5.0;
const TARGET_THROUGHPUT_LOSS: f64 = 0.15;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Visitors on the path at the same time, per tenant.
    #[arg(long, default_value_t = 16)]
    concurrency: usize,
    /// Visits per tenant per round.
    #[arg(long, default_value_t = 1_000)]
    visits: usize,
    /// Measured rounds; each tenant runs one phase per round, taking turns.
    #[arg(long, default_value_t = 3)]
    rounds: usize,
    /// Unmeasured visits per tenant first.
    #[arg(long, default_value_t = 300)]
    warmup: usize,
    /// Share of visits that submit a second time with the same key.
    #[arg(long, default_value_t = 0.1)]
    replay_share: f64,
    /// Orders per tenant.
    #[arg(long, default_value_t = 3_000)]
    orders: usize,
    /// Customers of `ruled` whose every rule is evaluated again over HTTP afterwards.
    #[arg(long, default_value_t = 200)]
    sample: usize,
    #[arg(long, default_value_t = 32)]
    pool: u32,
    #[arg(long, default_value_t = 42)]
    seed: u64,
}

/// One tenant of the run.
struct Tenant {
    name: &'static str,
    api: Api,
    id: i64,
    scene: String,
    /// The rules' tag ids by name, for the checks (empty for `plain`).
    tags: HashMap<String, i64>,
    rules: Vec<i64>,
}

pub async fn run(backends: &Backends, args: &Args) -> anyhow::Result<bool> {
    if args.concurrency == 0 || args.visits == 0 || args.rounds == 0 {
        bail!("--concurrency, --visits and --rounds must be at least 1");
    }
    let pool = args.pool;
    on_fresh_server(
        backends,
        DATABASE,
        |s| s.database_max_connections = pool,
        async |server, database_url| bench(args, server, database_url).await,
    )
    .await
}

/// Runs `body` against a bench server (its settings changed by `adjust`) on the database
/// `database`, created afresh; then stops the server and, unless `--keep`, drops the database
/// and the run's cache keys.
pub(super) async fn on_fresh_server(
    backends: &Backends,
    database: &str,
    adjust: impl FnOnce(&mut scantag_api::settings::Settings),
    body: impl AsyncFnOnce(&BenchServer, &SecretString) -> anyhow::Result<bool>,
) -> anyhow::Result<bool> {
    let mysql_url = SecretString::from(backends.mysql_url.clone());
    let redis_url = SecretString::from(backends.redis_url.clone());
    let database_url = backends::database_url(&mysql_url, database)?;
    backends::recreate_database(&mysql_url, database).await?;
    let cache_prefix = format!("scantag-bench-{}", uuid::Uuid::new_v4().simple());
    let result = match BenchServer::start(&database_url, &redis_url, &cache_prefix, adjust).await {
        Ok(server) => {
            let result = body(&server, &database_url).await;
            server.stop().await;
            result
        }
        Err(err) => Err(err),
    };
    if backends.keep {
        eprintln!("kept database {database}");
    } else {
        backends::delete_cache_keys(&redis_url, &cache_prefix)
            .await
            .ok();
        if let Err(err) = backends::drop_database(&mysql_url, database).await {
            eprintln!("scantag-bench: could not drop database {database}: {err:#}");
        }
    }
    result
}

/// Long because the run is one story: set up, visit, order, check, report.
async fn bench(
    args: &Args,
    server: &BenchServer,
    database_url: &SecretString,
) -> anyhow::Result<bool> {
    let db = backends::connect(database_url.expose_secret(), 4)
        .await
        .context("connecting")?;
    let (ruled_api, ruled_id) = server.another_tenant(&db, "ruled").await?;
    eprintln!("setting up two booths and 50 rules over HTTP");
    let plain_scene = booth(&server.api).await?;
    let ruled_scene = booth(&ruled_api).await?;
    let (tags, rules) = fifty_rules(&ruled_api).await?;
    let plain = Tenant {
        name: "plain",
        api: server.api.clone(),
        id: server.tenant_id,
        scene: plain_scene,
        tags: HashMap::new(),
        rules: Vec::new(),
    };
    let ruled = Tenant {
        name: "ruled",
        api: ruled_api,
        id: ruled_id,
        scene: ruled_scene,
        tags,
        rules,
    };

    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(60))
        .pool_max_idle_per_host(args.concurrency * 2)
        .build()?;
    let base = server.api.base_url().to_owned();
    let per_tenant = args.warmup + args.visits * args.rounds;
    eprintln!(
        "logging in {} visitors per tenant",
        group(per_tenant as u64)
    );
    let plain_visitors = log_in(server, &client, &base, "plain", per_tenant).await?;
    let ruled_visitors = log_in(server, &client, &base, "ruled", per_tenant).await?;

    let mut problems = Vec::new();
    let (pw, rest_p) = plain_visitors.split_at(args.warmup);
    let (rw, rest_r) = ruled_visitors.split_at(args.warmup);
    for (tenant, warm) in [(&plain, pw), (&ruled, rw)] {
        let phase = visit_all(
            &client,
            &base,
            tenant,
            warm,
            args.concurrency,
            args.replay_share,
            args.seed,
        )
        .await?;
        problems.extend(phase.failures);
    }
    let mut totals: HashMap<&str, Phase> = HashMap::new();
    for round in 0..args.rounds {
        let slice = round * args.visits..(round + 1) * args.visits;
        // Alternate which tenant goes first, so that neither always meets the other's leftovers.
        let order: [(&Tenant, &[(usize, String)]); 2] = if round % 2 == 0 {
            [(&plain, &rest_p[slice.clone()]), (&ruled, &rest_r[slice])]
        } else {
            [(&ruled, &rest_r[slice.clone()]), (&plain, &rest_p[slice])]
        };
        for (tenant, visitors) in order {
            eprintln!("round {} · {}", round + 1, tenant.name);
            let phase = visit_all(
                &client,
                &base,
                tenant,
                visitors,
                args.concurrency,
                args.replay_share,
                args.seed + round as u64,
            )
            .await?;
            let total = totals.entry(tenant.name).or_insert(Phase {
                submit: latencies()?,
                path: latencies()?,
                elapsed: Duration::ZERO,
                failures: Vec::new(),
            });
            total.submit.add(&phase.submit).context("merging")?;
            total.path.add(&phase.path).context("merging")?;
            total.elapsed += phase.elapsed;
            problems.extend(phase.failures);
        }
    }
    let customers_of =
        |id: i64| format!("SELECT id FROM customers WHERE tenant_id = {id} ORDER BY id");
    let plain_customers: Vec<i64> = ids(&db, &customers_of(plain.id))
        .await?
        .into_iter()
        .collect();
    let ruled_customers: Vec<i64> = ids(&db, &customers_of(ruled.id))
        .await?
        .into_iter()
        .collect();
    eprintln!("orders");
    let mut order_rows = Vec::new();
    for round in 0..2 {
        for tenant in if round == 0 {
            [&plain, &ruled]
        } else {
            [&ruled, &plain]
        } {
            let customers = if tenant.name == "plain" {
                &plain_customers
            } else {
                &ruled_customers
            };
            let (times, elapsed, failures) = post_orders(
                &client,
                &base,
                tenant,
                customers,
                args.orders / 2,
                args.concurrency,
                args.seed + round,
            )
            .await?;
            problems.extend(failures);
            order_rows.push((tenant.name, times, elapsed));
        }
    }
    eprintln!("checking by brute force");
    let checks = check(
        &db,
        &ruled,
        &plain,
        &ruled_customers,
        args.sample,
        &mut problems,
    )
    .await?;
    let mysql_version = backends::mysql_version(&db).await?;
    db.close().await.ok();

    let (p, r) = (&totals["plain"], &totals["ruled"]);
    let rate = |phase: &Phase| phase.path.len() as f64 / phase.elapsed.as_secs_f64();
    let p99 = |l: &Latencies| l.value_at_quantile(0.99) as f64 / 1000.0;
    println!(
        "MySQL/MariaDB {mysql_version} · one server, database pool {} · {} CPU cores shared by the database, the server and the load · {} visitors on the path per tenant, {} rounds of {} visits each, tenants taking turns, {:.0} % replays",
        args.pool,
        std::thread::available_parallelism().map_or(1, usize::from),
        args.concurrency,
        args.rounds,
        group(args.visits as u64),
        args.replay_share * 100.0
    );
    println!(
        "rules in `ruled`: {} enabled ({} templates + 29 on regions, categories, page views and other rules' tags)",
        ruled.rules.len(),
        8
    );
    println!();
    println!("| workload | ops | ops/s | p50 ms | p99 ms | max ms |");
    println!("|---|---:|---:|---:|---:|---:|");
    println!(
        "{}",
        row(
            "visitor path (form + submit [+ replay]), no rules",
            &p.path,
            p.elapsed
        )
    );
    println!(
        "{}",
        row(
            "visitor path (form + submit [+ replay]), 50 rules",
            &r.path,
            r.elapsed
        )
    );
    println!("{}", row("capture submit, no rules", &p.submit, p.elapsed));
    println!("{}", row("capture submit, 50 rules", &r.submit, r.elapsed));
    for (name, times, elapsed) in &order_rows {
        let label = if *name == "plain" {
            "order, no rules"
        } else {
            "order, 50 rules"
        };
        println!("{}", row(label, times, *elapsed));
    }
    let mut orders: HashMap<&str, Latencies> = HashMap::new();
    for (name, times, _) in &order_rows {
        let entry = match orders.entry(name) {
            std::collections::hash_map::Entry::Occupied(e) => e.into_mut(),
            std::collections::hash_map::Entry::Vacant(v) => v.insert(latencies()?),
        };
        entry.add(times).context("merging")?;
    }
    println!();
    let added = p99(&r.submit) - p99(&p.submit);
    let loss = 1.0 - rate(r) / rate(p);
    println!(
        "capture with 50 rules: p99 {:+.2} ms ({:.2} → {:.2}), throughput {:+.1} % ({:.0} → {:.0} visits/s); order p99 {:.2} → {:.2} ms. Targets ≤ {TARGET_ADDED_P99_MS} ms added p99, ≤ {:.0} % lower throughput: {}",
        added,
        p99(&p.submit),
        p99(&r.submit),
        -loss * 100.0,
        rate(p),
        rate(r),
        p99(&orders["plain"]),
        p99(&orders["ruled"]),
        TARGET_THROUGHPUT_LOSS * 100.0,
        if added <= TARGET_ADDED_P99_MS && loss <= TARGET_THROUGHPUT_LOSS {
            "met"
        } else {
            "NOT met"
        }
    );
    println!("checks: {checks}");
    for problem in problems.iter().take(20) {
        eprintln!("PROBLEM {problem}");
    }
    Ok(problems.is_empty())
}
