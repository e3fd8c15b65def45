//! `scantag-bench`: the benchmarks behind `make bench`. Each run creates a fresh MySQL/MariaDB
//! database, starts the real scantag server in-process against it and Redis (with the bundled
//! WeChat mock for logins), measures over HTTP, checks every answer, and prints one markdown
//! table; any wrong answer makes it exit non-zero.
//!
//! - `search`: builds a tag library over HTTP, seeds customers (with owners and stages) and
//!   their tags directly in SQL, times the search index's build, and measures `POST
//!   /api/v1/customers/search` for `A AND B AND NOT C` filters and for filters mixing a tag with
//!   an owner, a stage and a keyword: answered by the index with the cache bypassed, warm from
//!   the cache, next to the server's own SQL run directly and a relational division, the bitmap
//!   operation alone, both ways of refining by keyword, and right after a tag write. Every HTTP
//!   answer is checked against SQL, item by item.
//! - `capture`: see [`capture`].

mod backends;
mod capture;
mod filters;
mod library;
mod measure;
mod report;
mod rules;
mod seed;
mod server;

use std::process::ExitCode;

use anyhow::{Context, bail};
use clap::{Parser, Subcommand};
use rand::SeedableRng;
use rand::rngs::StdRng;
use scantag_domain::kernel::ids::TenantId;
use scantag_domain::search::index;
use secrecy::{ExposeSecret, SecretString};
use std::time::Instant;

use crate::server::BenchServer;

/// Independent random streams derived from `--seed`, so that changing the number of customers
/// does not change the tag library's popularity order or the filters, and the other way round.
const LIBRARY_STREAM: u64 = 0x6c69_6272_6172_7900;
const SEED_STREAM: u64 = 0x7365_6564_0000_0000;
const FILTER_STREAM: u64 = 0x6669_6c74_6572_0000;

#[derive(Parser, Debug)]
#[command(
    name = "scantag-bench",
    version,
    about = "Measure scantag over HTTP on MySQL/MariaDB + Redis, checking every answer"
)]
struct Cli {
    #[command(flatten)]
    backends: Backends,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Seed customers and tags, then measure and cross-check tag-filtered customer search.
    Search(Args),
    /// Measure scan-to-record captures from concurrent visitors, next to bare INSERT + COMMIT.
    Capture(capture::Args),
    /// Measure what 50 active rules add to a capture and an order, and check every rule tag.
    Rules(rules::Args),
    /// The rules engine over a large tenant on a manual clock: the backfill next to one GROUP BY,
    /// a day's due transitions, capture and order latency with 20 rules, checked by brute force.
    RulesAtScale(rules::scale::ScaleArgs),
}

/// Where the benchmarks run.
#[derive(clap::Args, Debug)]
pub struct Backends {
    /// MySQL/MariaDB server URL without a database; the run's database is (re)created there.
    #[arg(
        long,
        global = true,
        env = "SCANTAG_BENCH_MYSQL_URL",
        hide_env_values = true,
        default_value = "mysql://root@127.0.0.1:3306"
    )]
    mysql_url: String,
    /// Redis URL for the server's cache; the run's keys get a prefix of their own.
    #[arg(
        long,
        global = true,
        env = "SCANTAG_BENCH_REDIS_URL",
        hide_env_values = true,
        default_value = "redis://127.0.0.1:6379/0"
    )]
    redis_url: String,
    /// Keep the database (and the run's cache keys) at the end, for a look with other tools.
    #[arg(long, global = true)]
    keep: bool,
}

#[derive(clap::Args, Debug)]
struct Args {
    /// Customers to seed.
    #[arg(long, default_value_t = 100_000)]
    customers: u64,
    /// Tags in the library, created over HTTP and spread over the groups.
    #[arg(long, default_value_t = 200)]
    tags: usize,
    /// Tag groups; one or two of them are exclusive.
    #[arg(long, default_value_t = 20)]
    groups: usize,
    /// Distinct `A AND B AND NOT C` filters to measure.
    #[arg(long, default_value_t = 100)]
    queries: usize,
    /// Cached repetitions of every filter in the warm measurement.
    #[arg(long, default_value_t = 5)]
    warm_repeats: u32,
    /// Seed of every random choice: the same seed gives the same customers, tags and filters.
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Customers per multi-row INSERT; their tag links are written in the same transaction.
    #[arg(long, default_value_t = 2_000)]
    batch_size: usize,
    /// Connections writing batches concurrently while seeding.
    #[arg(long, default_value_t = 2)]
    seed_connections: usize,
    /// Filters of one tag AND an owner AND a stage AND a keyword.
    #[arg(long, default_value_t = 50)]
    mixed_queries: usize,
    /// Tag filters also timed as a relational division (the first ones; it is slow at 10M).
    #[arg(long, default_value_t = 100)]
    division_queries: usize,
    /// Tag writes, each followed by a search at once.
    #[arg(long, default_value_t = 100)]
    writes: usize,
    /// Sales reps owning the customers.
    #[arg(long, default_value_t = 8)]
    owners: usize,
    /// Resize MariaDB's InnoDB buffer pool to this many MiB for the run (given back after it).
    #[arg(long)]
    buffer_pool_mib: Option<u64>,
}

impl Args {
    fn validate(&self) -> anyhow::Result<()> {
        if self.customers == 0 {
            bail!("--customers must be at least 1");
        }
        if self.tags < 3 {
            bail!("--tags must be at least 3 (a filter names three distinct tags)");
        }
        if self.groups == 0 || self.groups > self.tags {
            bail!("--groups must be between 1 and --tags");
        }
        if self.queries == 0 {
            bail!("--queries must be at least 1");
        }
        if self.batch_size == 0 || self.seed_connections == 0 {
            bail!("--batch-size and --seed-connections must be at least 1");
        }
        if self.owners == 0 {
            bail!("--owners must be at least 1");
        }
        Ok(())
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("scantag-bench: cannot start the async runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    let outcome = match &cli.command {
        Command::Search(args) => runtime.block_on(run(&cli.backends, args)),
        Command::Capture(args) => runtime.block_on(capture::run(&cli.backends, args)),
        Command::Rules(args) => runtime.block_on(rules::run(&cli.backends, args)),
        Command::RulesAtScale(args) => runtime.block_on(rules::scale::run(&cli.backends, args)),
    };
    match outcome {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(err) => {
            eprintln!("scantag-bench: {err:#}");
            ExitCode::FAILURE
        }
    }
}

/// Warnings from the in-process server go to stderr, beside the progress bars, so that stdout
/// carries only the table. The mock's start-up notice is expected here and left out.
fn init_logging() {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new("warn,scantag_api::startup=error"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}

/// Prepares the backends, runs the benchmark, and drops the database whatever happened.
/// Returns whether every check passed.
async fn run(backends: &Backends, args: &Args) -> anyhow::Result<bool> {
    args.validate()?;
    let mysql_url = SecretString::from(backends.mysql_url.clone());
    let redis_url = SecretString::from(backends.redis_url.clone());
    // Checked first: without Redis the server silently answers from the database and the warm
    // measurement would only report misses.
    let redis_version = backends::redis_version(&redis_url).await?;
    // A name of the run's own: two runs on one server cannot wipe each other's data.
    let database = format!("scantag_bench_search_{}", std::process::id());
    let database_url = backends::database_url(&mysql_url, &database)?;
    backends::recreate_database(&mysql_url, &database).await?;
    let resized = match args.buffer_pool_mib {
        Some(mib) => Some(backends::set_buffer_pool(&mysql_url, mib * 1024 * 1024).await?),
        None => None,
    };

    let result = bench(
        backends,
        args,
        &database,
        &database_url,
        &redis_url,
        redis_version,
    )
    .await;

    if let Some(before) = resized
        && let Err(err) = backends::set_buffer_pool(&mysql_url, before).await
    {
        eprintln!("scantag-bench: could not give the buffer pool its size back: {err:#}");
    }
    if backends.keep {
        eprintln!("kept database {database}");
    } else if let Err(err) = backends::drop_database(&mysql_url, &database).await {
        eprintln!("scantag-bench: could not drop database {database}: {err:#}");
    }
    result
}

async fn bench(
    backends: &Backends,
    args: &Args,
    database: &str,
    database_url: &SecretString,
    redis_url: &SecretString,
    redis_version: String,
) -> anyhow::Result<bool> {
    let cache_prefix = format!("scantag-bench-{}", uuid::Uuid::new_v4().simple());
    eprintln!("starting the server");
    let server = BenchServer::start(database_url, redis_url, &cache_prefix, |s| {
        // The 10M tenant's index must fit.
        s.search_index.max_mib = 16 * 1024;
    })
    .await?;
    let result = measure_all(args, &server, database, database_url, redis_version).await;
    // Stopped before the database is dropped, so that no pooled connection is left using it.
    server.stop().await;
    if !backends.keep
        && let Err(err) = backends::delete_cache_keys(redis_url, &cache_prefix).await
    {
        eprintln!("scantag-bench: could not delete the run's cache keys: {err:#}");
    }
    result
}

async fn measure_all(
    args: &Args,
    server: &BenchServer,
    database: &str,
    database_url: &SecretString,
    redis_version: String,
) -> anyhow::Result<bool> {
    let api = &server.api;
    eprintln!(
        "creating {} tag groups and {} tags over HTTP, and {} sales reps",
        args.groups, args.tags, args.owners
    );
    let mut library_rng = StdRng::seed_from_u64(args.seed ^ LIBRARY_STREAM);
    let library = library::create(api, args.groups, args.tags, &mut library_rng).await?;
    let owners = server.invite_reps(args.owners, "bench-owner").await?;
    let write_tag = library::write_tag(api).await?;

    let db = backends::connect(database_url.expose_secret(), args.seed_connections + 1)
        .await
        .context("connecting to the bench database")?;
    let plan = seed::Plan {
        tenant_id: server.tenant_id,
        customers: args.customers,
        batch_size: args.batch_size,
        connections: args.seed_connections,
        seed: args.seed ^ SEED_STREAM,
        owners: owners.clone(),
    };
    let seeded = seed::seed(&db, &library, &plan).await?;
    seed::finish(&db, server.tenant_id).await?;

    let tenant = TenantId(server.tenant_id);
    eprintln!("building the bench's own search index");
    let started = Instant::now();
    let held = index::build_now(&db, tenant).await?;
    let build = report::Build {
        bench: started.elapsed(),
        server: server_index(api).await?,
        bytes: held.bytes(),
        customers: held.read(|ix| ix.customers()),
        server_bytes: api.get("/readyz").await?["search_index"]["bytes"]
            .as_u64()
            .unwrap_or(0),
    };

    let mut filter_rng = StdRng::seed_from_u64(args.seed ^ FILTER_STREAM);
    let filters = filters::pick(&library, args.queries, &mut filter_rng)?;
    let mixed = filters::pick_mixed(&library, &owners, args.mixed_queries, &mut filter_rng)?;
    let write_targets = seed::spread_customers(&db, server.tenant_id, args.writes).await?;
    let results = measure::run(&measure::Plan {
        api,
        db: &db,
        tenant,
        filters: &filters,
        mixed: &mixed,
        division_queries: args.division_queries,
        warm_repeats: args.warm_repeats,
        held: &held,
        write_tag,
        write_targets: &write_targets,
    })
    .await?;

    let header = report::Header {
        seeded: &seeded,
        library: &library,
        seed: args.seed,
        mysql_version: backends::mysql_version(&db).await?,
        redis_version,
        buffer_pool: backends::buffer_pool_bytes(&db).await?,
        data_bytes: backends::database_bytes(&db, database).await?,
        owners: owners.len(),
        build,
    };
    db.close().await.ok();
    println!("{}", report::render(&header, &results));
    report::print_slowest(&filters, &results, 5);
    report::print_problems(&results.problems);
    Ok(results.problems.is_empty())
}

/// Asks the server once (which starts its index's build; SQL answers meanwhile) and waits
/// until `/readyz` reports the index ready: how long that took.
async fn server_index(api: &server::Api) -> anyhow::Result<std::time::Duration> {
    eprintln!("building the server's search index");
    let started = Instant::now();
    api.send(
        "/api/v1/customers/search",
        &serde_json::json!({"limit": 1}),
        &[("cache-control", "no-cache")],
    )
    .await?;
    loop {
        let ready = api.get("/readyz").await?;
        let index = &ready["search_index"];
        if index["tenants"].as_u64() >= Some(1) && index["building"].as_u64() == Some(0) {
            return Ok(started.elapsed());
        }
        if started.elapsed() > std::time::Duration::from_secs(3_600) {
            bail!("the server's search index was not ready within an hour: {ready}");
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}
