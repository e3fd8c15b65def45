//! `scantag-bench capture`: scan-to-record throughput and latency.
//!
//! A run sets up a booth over HTTP (a tag group with two tags, sales reps, and a round-robin
//! channel whose form asks for a phone and a company), logs in one visitor per new customer
//! through the bundled WeChat mock, and then lets `--concurrency` visitors submit
//! `POST /api/v1/capture` as fast as the server answers: mostly new visitors, and a share of
//! visitors who captured before and come back (a merge). Every submission carries an
//! `Idempotency-Key`, as the mini-program sends one. A warm-up round runs first and is not
//! measured.
//!
//! Afterwards the database is checked: one customer per visitor (no duplicates), one capture
//! row per accepted submission (none lost), one task per new customer with every return
//! counted on it (the bench runs well within the follow-up window), the round-robin deal even,
//! the channel's tags on every customer. Any failed submission or check fails the run.
//!
//! For scale, the same database then runs a bare single-row `INSERT` + `COMMIT` loop, on one
//! connection and on `--concurrency` connections: what the server and disk can commit at all.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use sea_orm::{ConnectionTrait, DatabaseConnection, TransactionTrait};
use secrecy::{ExposeSecret, SecretString};
use serde_json::{Value, json};

mod database;
mod load;

use database::{Expected, baseline, check, durability_settings};
use load::{Shared, closed_loop, open_loop};

use crate::Backends;
use crate::backends;
use crate::measure::{Latencies, latencies, micros, phase_bar};
use crate::report::{group, latency_row as row};
use crate::server::BenchServer;

const DATABASE: &str = "scantag_bench_capture";
const POLICY: &str = "2026-11";
const CAPTURE: &str = "/api/v1/capture";
/// A repeat visit names a visitor scheduled at least this many concurrency rounds earlier, so
/// that their first capture has almost always been answered.
const REPEAT_DISTANCE_ROUNDS: usize = 2;
const TARGET_PER_SEC: f64 = 1_000.0;
const TARGET_P99_MS: f64 = 50.0;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Visitors submitting at the same time.
    #[arg(long, default_value_t = 64)]
    concurrency: usize,
    /// Measured submissions.
    #[arg(long, default_value_t = 20_000)]
    captures: usize,
    /// Unmeasured submissions before the measured ones.
    #[arg(long, default_value_t = 2_000)]
    warmup: usize,
    /// Offered rates (captures per second) of the open-loop runs that follow the closed-loop
    /// one.
    #[arg(long, value_delimiter = ',', default_value = "250,500,1000")]
    rates: Vec<u32>,
    /// Seconds of each open-loop run; 0 skips them.
    #[arg(long, default_value_t = 5)]
    rate_secs: u32,
    /// Share of submissions by visitors who captured before (merged into their customer).
    #[arg(long, default_value_t = 0.25)]
    repeat_share: f64,
    /// Sales reps the channel deals new customers to, in turn.
    #[arg(long, default_value_t = 4)]
    reps: usize,
    /// The channel's owner policy: `round-robin` over the reps, `fixed` (the first rep) or
    /// `pool` (no owner, no task).
    #[arg(long, value_enum, default_value_t = Policy::RoundRobin)]
    policy: Policy,
    /// The server's database pool size.
    #[arg(long, default_value_t = 32)]
    pool: u32,
    /// Seconds each INSERT + COMMIT baseline runs.
    #[arg(long, default_value_t = 5)]
    baseline_secs: u64,
    /// Seed of the visit order.
    #[arg(long, default_value_t = 42)]
    seed: u64,
}

#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
enum Policy {
    RoundRobin,
    Fixed,
    Pool,
}

impl Policy {
    fn body(self, reps: &[i64]) -> Value {
        match self {
            Policy::RoundRobin => json!({"type": "round_robin", "staff_ids": reps}),
            Policy::Fixed => json!({"type": "fixed", "staff_id": reps.first()}),
            Policy::Pool => json!({"type": "pool"}),
        }
    }

    fn describe(self, reps: usize) -> String {
        match self {
            Policy::RoundRobin => format!("round-robin over {reps} reps"),
            Policy::Fixed => "one fixed owner".to_owned(),
            Policy::Pool => "the unassigned pool".to_owned(),
        }
    }
}

impl Args {
    fn validate(&self) -> anyhow::Result<()> {
        if self.concurrency == 0 || self.captures == 0 || self.reps == 0 {
            bail!("--concurrency, --captures and --reps must be at least 1");
        }
        if self.rates.contains(&0) {
            bail!("--rates must be above 0");
        }
        if !(0.0..1.0).contains(&self.repeat_share) {
            bail!("--repeat-share must be at least 0 and below 1");
        }
        Ok(())
    }
}

pub async fn run(backends: &Backends, args: &Args) -> anyhow::Result<bool> {
    args.validate()?;
    let mysql_url = SecretString::from(backends.mysql_url.clone());
    let redis_url = SecretString::from(backends.redis_url.clone());
    let redis_version = backends::redis_version(&redis_url).await?;
    let database_url = backends::database_url(&mysql_url, DATABASE)?;
    backends::recreate_database(&mysql_url, DATABASE).await?;

    let cache_prefix = format!("scantag-bench-{}", uuid::Uuid::new_v4().simple());
    eprintln!("starting the server");
    let pool = args.pool;
    let result = match BenchServer::start(&database_url, &redis_url, &cache_prefix, |s| {
        s.database_max_connections = pool;
    })
    .await
    {
        Ok(server) => {
            let result = bench(args, &server, &database_url, redis_version).await;
            server.stop().await;
            result
        }
        Err(err) => Err(err),
    };
    if backends.keep {
        eprintln!("kept database {DATABASE}");
    } else {
        if let Err(err) = backends::delete_cache_keys(&redis_url, &cache_prefix).await {
            eprintln!("scantag-bench: could not delete the run's cache keys: {err:#}");
        }
        if let Err(err) = backends::drop_database(&mysql_url, DATABASE).await {
            eprintln!("scantag-bench: could not drop database {DATABASE}: {err:#}");
        }
    }
    result
}

/// One submission of the plan: the visitor, and whether they captured before.
#[derive(Debug, Clone, Copy)]
struct Visit {
    visitor: usize,
    repeat: bool,
}

/// The order of visits: new visitors in turn, and with probability `repeat_share` a visitor
/// scheduled well before comes back instead. Returns the visits and the number of visitors.
fn plan(total: usize, repeat_share: f64, distance: usize, seed: u64) -> (Vec<Visit>, usize) {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut visits = Vec::with_capacity(total);
    let mut visitors = 0;
    for _ in 0..total {
        if visitors > distance && rng.random_bool(repeat_share) {
            let visitor = rng.random_range(0..visitors - distance);
            visits.push(Visit {
                visitor,
                repeat: true,
            });
        } else {
            visits.push(Visit {
                visitor: visitors,
                repeat: false,
            });
            visitors += 1;
        }
    }
    (visits, visitors)
}

fn phone(visitor: usize) -> String {
    format!("139{visitor:08}")
}

/// What the measured phase saw.
struct Phase {
    all: Latencies,
    new: Latencies,
    repeat: Latencies,
    elapsed: Duration,
    created: u64,
    merged: u64,
    failures: Vec<String>,
}

async fn bench(
    args: &Args,
    server: &BenchServer,
    database_url: &SecretString,
    redis_version: String,
) -> anyhow::Result<bool> {
    let api = &server.api;
    eprintln!("setting up the booth over HTTP");
    let group_id = api
        .post(
            "/api/v1/tag-groups",
            &json!({"name": "来源渠道", "dimension": "basic"}),
        )
        .await?["id"]
        .as_i64()
        .context("tag group id")?;
    let mut tag_ids = Vec::new();
    for name in ["2026 车展", "线下活动"] {
        let tag = api
            .post("/api/v1/tags", &json!({"group_id": group_id, "name": name}))
            .await?;
        tag_ids.push(tag["id"].as_i64().context("tag id")?);
    }
    let reps = server.invite_reps(args.reps, "bench-rep").await?;
    let channel = api
        .post(
            "/api/v1/channels",
            &json!({
                "name": "2026 上海车展展台", "scene": "expo2026",
                "default_tag_ids": tag_ids,
                "owner_policy": args.policy.body(&reps),
                "form": [{"key": "phone", "required": true}, {"key": "company"}],
                "privacy_policy_version": POLICY,
            }),
        )
        .await?;
    let scene = channel["qr_scene"]
        .as_str()
        .context("channel qr_scene")?
        .to_owned();

    let rates: &[u32] = if args.rate_secs == 0 {
        &[]
    } else {
        &args.rates
    };
    let paced: Vec<usize> = rates
        .iter()
        .map(|&rate| usize::try_from(rate.saturating_mul(args.rate_secs)).unwrap_or(0))
        .collect();
    let total = args.warmup + args.captures + paced.iter().sum::<usize>();
    let distance = REPEAT_DISTANCE_ROUNDS * args.concurrency;
    let (visits, visitor_count) = plan(total, args.repeat_share, distance, args.seed);

    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(60))
        .pool_max_idle_per_host(args.concurrency)
        .build()
        .context("building the HTTP client")?;
    let base_url = api.base_url().to_owned();

    let started = Instant::now();
    let tokens =
        log_in_visitors(server, &client, &base_url, visitor_count, args.concurrency).await?;
    let login_elapsed = started.elapsed();

    let shared = Arc::new(Shared {
        client,
        url: format!("{base_url}{CAPTURE}"),
        scene,
        tokens,
    });
    let (warm, rest) = visits.split_at(args.warmup);
    let (closed, mut rest) = rest.split_at(args.captures);
    let warmup = closed_loop(&shared, warm, args.concurrency, "warm-up").await?;
    let measured = closed_loop(&shared, closed, args.concurrency, "closed loop").await?;
    let mut open = Vec::new();
    for (&rate, &count) in rates.iter().zip(&paced) {
        let (these, others) = rest.split_at(count);
        rest = others;
        open.push((
            rate,
            open_loop(&shared, these, args.concurrency, rate).await?,
        ));
    }

    let db = backends::connect(database_url.expose_secret(), args.concurrency + 1)
        .await
        .context("connecting to the bench database")?;
    let phases = std::iter::once(&warmup)
        .chain(std::iter::once(&measured))
        .chain(open.iter().map(|(_, phase)| phase));
    let mut problems: Vec<String> = Vec::new();
    let mut created = 0;
    for phase in phases {
        problems.extend(phase.failures.iter().cloned());
        created += phase.created;
    }
    let failed = u64::try_from(problems.len()).unwrap_or(u64::MAX);
    let accepted = u64::try_from(total).unwrap_or(u64::MAX) - failed;
    let checks = check(
        &db,
        server.tenant_id,
        Expected {
            visitors: u64::try_from(visitor_count).unwrap_or(u64::MAX),
            accepted,
            tasks: if args.policy == Policy::Pool {
                0
            } else {
                created
            },
            visits: if args.policy == Policy::Pool {
                0
            } else {
                accepted
            },
            created,
            tags_per_customer: u64::try_from(tag_ids.len()).unwrap_or(0),
        },
        &mut problems,
    )
    .await?;

    eprintln!("bare INSERT + COMMIT baselines");
    let single = baseline(&db, 1, Duration::from_secs(args.baseline_secs)).await?;
    let concurrent = baseline(
        &db,
        args.concurrency,
        Duration::from_secs(args.baseline_secs),
    )
    .await?;
    let settings = durability_settings(&db).await?;
    let mysql_version = backends::mysql_version(&db).await?;
    db.close().await.ok();

    println!(
        "MySQL/MariaDB {mysql_version} ({settings}) · Redis {redis_version} · server: {} HTTP \
         workers, database pool {} · {} CPU cores shared by the database, the server, the \
         WeChat mock and the load generator",
        std::thread::available_parallelism().map_or(1, usize::from),
        args.pool,
        std::thread::available_parallelism().map_or(1, usize::from),
    );
    println!(
        "booth: {}, {} default tags, form name + phone + company · {} visitors logged in \
         through the WeChat mock in {:.1} s ({}/s)",
        args.policy.describe(args.reps),
        tag_ids.len(),
        group(u64::try_from(visitor_count).unwrap_or(0)),
        login_elapsed.as_secs_f64(),
        group((visitor_count as f64 / login_elapsed.as_secs_f64()) as u64)
    );
    println!(
        "captures: {} warm-up, then {} in a closed loop of {} visitors, then open loops at \
         the offered rates, at most {} in flight · {:.0} % repeat visits · every submission \
         with an Idempotency-Key",
        group(u64::try_from(args.warmup).unwrap_or(0)),
        group(measured.all.len()),
        args.concurrency,
        args.concurrency,
        args.repeat_share * 100.0
    );
    println!();
    println!("| workload | ops | ops/s | p50 ms | p99 ms | max ms |");
    println!("|---|---:|---:|---:|---:|---:|");
    println!(
        "{}",
        row(
            &format!("HTTP capture, closed loop, {} in flight", args.concurrency),
            &measured.all,
            measured.elapsed
        )
    );
    println!(
        "{}",
        row(
            &format!("… new visitors ({} created)", group(measured.created)),
            &measured.new,
            measured.elapsed
        )
    );
    println!(
        "{}",
        row(
            &format!("… repeat visitors ({} merged)", group(measured.merged)),
            &measured.repeat,
            measured.elapsed
        )
    );
    for (rate, phase) in &open {
        println!(
            "{}",
            row(
                &format!(
                    "HTTP capture, open loop, {} /s offered",
                    group(u64::from(*rate))
                ),
                &phase.all,
                phase.elapsed
            )
        );
    }
    println!(
        "{}",
        row("SQL INSERT + COMMIT, 1 connection", &single.0, single.1)
    );
    println!(
        "{}",
        row(
            &format!("SQL INSERT + COMMIT, {} connections", args.concurrency),
            &concurrent.0,
            concurrent.1
        )
    );
    println!();
    println!("{}", verdict(&measured, &open));
    println!("checks: {checks}");
    for problem in problems.iter().take(20) {
        eprintln!("PROBLEM {problem}");
    }
    if problems.len() > 20 {
        eprintln!("… and {} more", problems.len() - 20);
    }
    Ok(problems.is_empty())
}

/// Whether a run reached the target: ≥ 1,000 captures/s with p99 ≤ 50 ms, either in the
/// closed loop or in an open loop offered at least 1,000/s that kept up with its schedule.
fn verdict(closed: &Phase, open: &[(u32, Phase)]) -> String {
    let rate = |phase: &Phase| phase.all.len() as f64 / phase.elapsed.as_secs_f64();
    let p99 = |phase: &Phase| phase.all.value_at_quantile(0.99) as f64 / 1000.0;
    let meets = |phase: &Phase| rate(phase) >= TARGET_PER_SEC && p99(phase) <= TARGET_P99_MS;
    let paced_meets = open.iter().any(|(offered, phase)| {
        f64::from(*offered) >= TARGET_PER_SEC
            && rate(phase) >= 0.98 * f64::from(*offered)
            && p99(phase) <= TARGET_P99_MS
    });
    format!(
        "target ≥ {TARGET_PER_SEC:.0} captures/s with p99 ≤ {TARGET_P99_MS:.0} ms: {} \
         (closed loop {:.0}/s at p99 {:.1} ms)",
        if meets(closed) || paced_meets {
            "met"
        } else {
            "NOT met"
        },
        rate(closed),
        p99(closed)
    )
}

/// Logs in `count` visitors, `concurrency` at a time, and returns their access tokens.
async fn log_in_visitors(
    server: &BenchServer,
    client: &reqwest::Client,
    base_url: &str,
    count: usize,
    concurrency: usize,
) -> anyhow::Result<Vec<String>> {
    let bar = phase_bar("logging visitors in", count as u64)?;
    let next = Arc::new(AtomicUsize::new(0));
    let mut workers = Vec::with_capacity(concurrency);
    for _ in 0..concurrency {
        let next = next.clone();
        let client = client.clone();
        let mock = server.mock.clone();
        let url = format!("{base_url}/api/v1/auth/wechat/login");
        let bar = bar.clone();
        workers.push(tokio::spawn(async move {
            let mut mine = Vec::new();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= count {
                    return Ok::<_, anyhow::Error>(mine);
                }
                let code = mock
                    .mint_login_code(Some(format!("bench-visitor-{i}")), None)
                    .code;
                let answer: Value = client
                    .post(&url)
                    .json(&json!({ "code": code }))
                    .send()
                    .await?
                    .error_for_status()?
                    .json()
                    .await?;
                let token = answer["access_token"]
                    .as_str()
                    .context("the login answer has no access_token")?
                    .to_owned();
                mine.push((i, token));
                bar.inc(1);
            }
        }));
    }
    let mut tokens = vec![String::new(); count];
    for worker in workers {
        for (i, token) in worker.await.context("a login worker panicked")?? {
            tokens[i] = token;
        }
    }
    bar.finish_and_clear();
    Ok(tokens)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeats_name_visitors_scheduled_well_before() {
        let (visits, visitors) = plan(10_000, 0.25, 128, 7);
        assert_eq!(visits.len(), 10_000);
        let repeats = visits.iter().filter(|v| v.repeat).count();
        assert!((2_000..3_000).contains(&repeats), "{repeats}");
        assert_eq!(visitors, 10_000 - repeats);
        let mut first_seen = vec![None; visitors];
        for (i, visit) in visits.iter().enumerate() {
            if visit.repeat {
                let first = first_seen[visit.visitor].expect("a repeat follows a first visit");
                assert!(
                    i - first > 128,
                    "visit {i} repeats visitor first seen at {first}"
                );
            } else {
                assert!(first_seen[visit.visitor].is_none());
                first_seen[visit.visitor] = Some(i);
            }
        }
    }

    #[test]
    fn phones_are_mainland_mobile_numbers() {
        assert_eq!(phone(7), "13900000007");
        assert_eq!(phone(12_345_678).len(), 11);
    }
}
