//! `scantag-bench`: the benchmarks behind `make bench`. Each run creates a fresh MySQL/MariaDB
//! database, starts the real scantag server in-process against it and Redis (with the bundled
//! WeChat mock for logins), measures over HTTP, checks every answer, and prints one markdown
//! table; any wrong answer makes it exit non-zero.
//!
//! - `search`: builds a tag library over HTTP, seeds customers and their tags directly in SQL,
//!   and measures `POST /api/v1/customers/search` for `A AND B AND NOT C` filters: with the
//!   cache bypassed, warm from the cache, and next to a plain relational-division SQL query on
//!   the same data, against which every HTTP answer is checked.
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
use secrecy::{ExposeSecret, SecretString};

use crate::server::BenchServer;

/// The database a search run recreates on the given server.
const DATABASE: &str = "scantag_bench";

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
    let database_url = backends::database_url(&mysql_url, DATABASE)?;
    backends::recreate_database(&mysql_url, DATABASE).await?;

    let result = bench(backends, args, &database_url, &redis_url, redis_version).await;

    if backends.keep {
        eprintln!("kept database {DATABASE}");
    } else if let Err(err) = backends::drop_database(&mysql_url, DATABASE).await {
        eprintln!("scantag-bench: could not drop database {DATABASE}: {err:#}");
    }
    result
}

async fn bench(
    backends: &Backends,
    args: &Args,
    database_url: &SecretString,
    redis_url: &SecretString,
    redis_version: String,
) -> anyhow::Result<bool> {
    let cache_prefix = format!("scantag-bench-{}", uuid::Uuid::new_v4().simple());
    eprintln!("starting the server");
    let server = BenchServer::start(database_url, redis_url, &cache_prefix, |_| {}).await?;
    let result = measure_all(args, &server, database_url, redis_version).await;
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
    database_url: &SecretString,
    redis_version: String,
) -> anyhow::Result<bool> {
    let api = &server.api;
    eprintln!(
        "creating {} tag groups and {} tags over HTTP",
        args.groups, args.tags
    );
    let mut library_rng = StdRng::seed_from_u64(args.seed ^ LIBRARY_STREAM);
    let library = library::create(api, args.groups, args.tags, &mut library_rng).await?;

    let db = backends::connect(database_url.expose_secret(), args.seed_connections + 1)
        .await
        .context("connecting to the bench database")?;
    let plan = seed::Plan {
        tenant_id: server.tenant_id,
        customers: args.customers,
        batch_size: args.batch_size,
        connections: args.seed_connections,
        seed: args.seed ^ SEED_STREAM,
    };
    let seeded = seed::seed(&db, &library, &plan).await?;
    seed::finish(&db, server.tenant_id).await?;

    let mut filter_rng = StdRng::seed_from_u64(args.seed ^ FILTER_STREAM);
    let filters = filters::pick(&library, args.queries, &mut filter_rng)?;
    let results = measure::run(api, &db, server.tenant_id, &filters, args.warm_repeats).await?;

    let mysql_version = backends::mysql_version(&db).await?;
    db.close().await.ok();

    let header = report::Header {
        seeded: &seeded,
        library: &library,
        seed: args.seed,
        mysql_version,
        redis_version,
    };
    println!("{}", report::render(&header, &results));
    report::print_slowest(&filters, &results, 5);
    report::print_problems(&results.problems);
    Ok(results.problems.is_empty())
}
