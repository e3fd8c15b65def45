//! Two years of a tenant's history, seeded directly in SQL: customers created over the last
//! 730 days in id order (2 % without an owner), and for each, orders (paid 95 %, amounts
//! 10–4,000 元, categories), follow-ups and visit events spread between its creation and now,
//! and a feedback event with a rating for one customer in ten. Rows are deterministic from the
//! seed, written as multi-row INSERTs with explicit ids, one transaction per batch of
//! customers, by a few connections at once.

use std::fmt::Write as _;

use chrono::{DateTime, Duration as TimeDelta};
use sea_orm::TransactionTrait;
use tokio::sync::{Mutex, mpsc};

use super::*;

const HISTORY_DAYS: i64 = 730;
const KINDS: [&str; 4] = ["call", "visit", "wechat", "meeting"];

pub(super) struct Plan {
    pub(super) tenant: i64,
    pub(super) owner: i64,
    pub(super) customers: u64,
    pub(super) orders_per_customer: f64,
    pub(super) follow_ups_per_customer: f64,
    pub(super) visits_per_customer: f64,
    pub(super) batch: usize,
    pub(super) connections: usize,
    pub(super) seed: u64,
    /// The instant the history ends at (every fact is at or before it).
    pub(super) now: DateTime<Utc>,
}

#[derive(Default, Debug, Clone, Copy)]
pub(super) struct Seeded {
    pub(super) customers: u64,
    pub(super) orders: u64,
    pub(super) follow_ups: u64,
    pub(super) events: u64,
    pub(super) secs: f64,
}

/// One transaction's rows, as SQL.
#[derive(Default)]
struct Batch {
    statements: Vec<String>,
    counts: Seeded,
}

fn time(t: DateTime<Utc>) -> String {
    format!("'{}'", t.format("%Y-%m-%d %H:%M:%S"))
}

/// A count drawn around `mean`: uniform over 0..=2·mean, so the mean holds and the spread is wide.
fn count(rng: &mut StdRng, mean: f64) -> usize {
    let top = (mean * 2.0).round() as usize;
    if top == 0 {
        0
    } else {
        rng.random_range(0..=top)
    }
}

/// Builds the rows of customers `first..first + n`.
fn batch(plan: &Plan, first: i64, n: usize) -> Batch {
    let mut rng = StdRng::seed_from_u64(plan.seed ^ (first as u64).rotate_left(17));
    let mut out = Batch::default();
    let mut customers = String::from(
        "INSERT INTO customers (id, tenant_id, name, company, industry, region, owner_id, project_stage, created_at, updated_at, last_active_at, last_follow_up_at, last_order_at) VALUES ",
    );
    let mut orders = String::from(
        "INSERT INTO orders (tenant_id, customer_id, amount_fen, currency, product_category, status, occurred_at, body_digest, created_at) VALUES ",
    );
    let mut follow_ups = String::from(
        "INSERT INTO follow_ups (tenant_id, customer_id, author_id, kind, content, occurred_at, created_at) VALUES ",
    );
    let mut events = String::from(
        "INSERT INTO activity_events (tenant_id, customer_id, kind, properties, occurred_at, created_at) VALUES ",
    );
    let total = plan.customers as f64;
    let history = TimeDelta::days(HISTORY_DAYS).num_seconds() as f64;
    let t = plan.tenant;
    for k in 0..n {
        let id = first + k as i64;
        // Older ids are older customers; a few seconds of jitter.
        let age = history * (1.0 - (id - 1) as f64 / total) - rng.random_range(0.0..60.0);
        let created = plan.now - TimeDelta::seconds(age.max(60.0) as i64);
        let span = (plan.now - created).num_seconds().max(1);
        let at = |rng: &mut StdRng| created + TimeDelta::seconds(rng.random_range(0..span));
        let mut last_order = None;
        for _ in 0..count(&mut rng, plan.orders_per_customer) {
            let when = at(&mut rng);
            last_order = last_order.max(Some(when));
            let _ = write!(
                orders,
                "({t},{id},{},'CNY','{}','{}',{},'{:016x}',{}),",
                rng.random_range(1_000..400_000),
                CATEGORIES[rng.random_range(0..CATEGORIES.len())],
                if rng.random_bool(0.95) {
                    "paid"
                } else {
                    "refunded"
                },
                time(when),
                rng.random::<u64>(),
                time(when),
            );
            out.counts.orders += 1;
        }
        let mut last_follow_up = None;
        for _ in 0..count(&mut rng, plan.follow_ups_per_customer) {
            let when = at(&mut rng);
            last_follow_up = last_follow_up.max(Some(when));
            let _ = write!(
                follow_ups,
                "({t},{id},{},'{}','回访',{},{}),",
                plan.owner,
                KINDS[rng.random_range(0..KINDS.len())],
                time(when),
                time(when),
            );
            out.counts.follow_ups += 1;
        }
        let mut last_visit = None;
        for _ in 0..count(&mut rng, plan.visits_per_customer) {
            let when = at(&mut rng);
            last_visit = last_visit.max(Some(when));
            let _ = write!(
                events,
                "({t},{id},'visit',NULL,{},{}),",
                time(when),
                time(when)
            );
            out.counts.events += 1;
        }
        if rng.random_bool(0.1) {
            let when = at(&mut rng);
            let _ = write!(
                events,
                "({t},{id},'custom:feedback','{{\"rating\":{}}}',{},{}),",
                rng.random_range(1..=5),
                time(when),
                time(when)
            );
            out.counts.events += 1;
        }
        let owner = if rng.random_bool(0.98) {
            plan.owner.to_string()
        } else {
            "NULL".to_owned()
        };
        let opt = |t: Option<DateTime<Utc>>| t.map_or_else(|| "NULL".to_owned(), time);
        let _ = write!(
            customers,
            "({id},{t},'客户{id}','公司{}','行业{}','{}',{owner},'{}',{},{},{},{},{}),",
            id % 5_000,
            id % 8,
            REGIONS[rng.random_range(0..REGIONS.len())],
            ["线索", "意向", "已报价", "成交"][rng.random_range(0..4)],
            time(created),
            time(created),
            opt(last_visit),
            opt(last_follow_up),
            opt(last_order),
        );
        out.counts.customers += 1;
    }
    for (sql, rows) in [
        (customers, out.counts.customers),
        (orders, out.counts.orders),
        (follow_ups, out.counts.follow_ups),
        (events, out.counts.events),
    ] {
        if rows > 0 {
            let mut sql = sql;
            sql.pop();
            out.statements.push(sql);
        }
    }
    out
}

/// Seeds `plan.customers` customers (ids from 1; the database is the run's own) and their
/// history; returns what was written.
pub(super) async fn seed(db: &DatabaseConnection, plan: Plan) -> anyhow::Result<Seeded> {
    let started = Instant::now();
    let plan = Arc::new(plan);
    let (sender, receiver) = mpsc::channel::<Batch>(plan.connections * 2);
    let producer = {
        let plan = plan.clone();
        tokio::task::spawn_blocking(move || {
            let mut first = 1_i64;
            while first <= plan.customers as i64 {
                let n = plan.batch.min((plan.customers as i64 - first + 1) as usize);
                if sender.blocking_send(batch(&plan, first, n)).is_err() {
                    break;
                }
                first += n as i64;
            }
        })
    };
    let receiver = Arc::new(Mutex::new(receiver));
    let totals = Arc::new(std::sync::Mutex::new(Seeded::default()));
    let mut writers = tokio::task::JoinSet::new();
    for _ in 0..plan.connections {
        let (receiver, totals, db) = (receiver.clone(), totals.clone(), db.clone());
        let target = plan.customers;
        writers.spawn(async move {
            loop {
                let Some(batch) = receiver.lock().await.recv().await else {
                    return anyhow::Ok(());
                };
                let txn = db.begin().await?;
                for sql in &batch.statements {
                    txn.execute_unprepared(sql)
                        .await
                        .context("seeding the history")?;
                }
                txn.commit().await?;
                let mut t = totals
                    .lock()
                    .map_err(|_| anyhow::anyhow!("totals poisoned"))?;
                t.customers += batch.counts.customers;
                t.orders += batch.counts.orders;
                t.follow_ups += batch.counts.follow_ups;
                t.events += batch.counts.events;
                if t.customers % 100_000 < batch.counts.customers {
                    eprintln!(
                        "  {} of {} customers seeded",
                        group(t.customers),
                        group(target)
                    );
                }
            }
        });
    }
    while let Some(joined) = writers.join_next().await {
        if let Err(err) = joined.context("a seeding task panicked").and_then(|r| r) {
            writers.abort_all();
            receiver.lock().await.close();
            return Err(err);
        }
    }
    producer.await.context("the row generator panicked")?;
    let mut seeded = *totals
        .lock()
        .map_err(|_| anyhow::anyhow!("totals poisoned"))?;
    seeded.secs = started.elapsed().as_secs_f64();
    Ok(seeded)
}
