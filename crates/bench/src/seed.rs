//! Seeding customers and their tags directly in SQL: deterministic rows from the seed, written
//! as multi-row INSERTs, one transaction per batch, by a few connections at once.
//!
//! The data aims to look like a real tenant's: creation times spread over the last two years in
//! id order, about 60% of customers with a (unique) phone, about 1% soft-deleted, and 2 to 8 tags
//! per customer drawn from a Zipf-like popularity (s = 1), at most one per exclusive group.

use std::fmt::Write as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use chrono::{NaiveDateTime, TimeDelta, Utc};
use indicatif::{ProgressBar, ProgressStyle};
use rand::distr::Distribution;
use rand::distr::weighted::WeightedIndex;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use sea_orm::{ConnectionTrait, DatabaseConnection, Statement, TransactionTrait};
use tokio::sync::{Mutex, mpsc};

use crate::library::Library;

/// Exponent of the tag popularity law: the tag of rank r is drawn with weight 1 / r^s.
const ZIPF_S: f64 = 1.0;
/// Tags per customer, inclusive.
const MIN_TAGS: usize = 2;
const MAX_TAGS: usize = 8;
/// How far back customers were created.
const HISTORY_DAYS: i64 = 730;

pub const SURNAMES: [&str; 24] = [
    "王", "李", "张", "刘", "陈", "杨", "黄", "赵", "吴", "周", "徐", "孙", "马", "朱", "胡", "郭",
    "何", "高", "林", "罗", "郑", "梁", "谢", "宋",
];
pub const GIVEN: [&str; 24] = [
    "伟", "芳", "娜", "敏", "静", "丽", "强", "磊", "军", "洋", "勇", "艳", "杰", "娟", "涛", "明",
    "超", "秀英", "霞", "平", "刚", "桂英", "晨", "欣",
];
pub const CITIES: [&str; 12] = [
    "北京", "上海", "广州", "深圳", "杭州", "成都", "武汉", "南京", "苏州", "西安", "重庆", "天津",
];
const COMPANY_WORDS: [&str; 10] = [
    "星河", "云启", "华拓", "恒信", "智远", "新图", "博达", "嘉禾", "锐思", "长风",
];
const COMPANY_KINDS: [&str; 6] = ["科技", "贸易", "餐饮", "教育", "医疗器械", "文化传媒"];
const INDUSTRIES: [&str; 8] = [
    "互联网",
    "制造业",
    "零售",
    "教育",
    "医疗",
    "金融",
    "餐饮",
    "物流",
];
const REGIONS: [&str; 10] = [
    "北京", "上海", "广东", "浙江", "江苏", "四川", "湖北", "山东", "福建", "陕西",
];
pub const STAGES: [&str; 5] = ["线索", "意向", "报价", "成交", "流失"];
/// Where tag links come from, with weights: most are set by hand.
const SOURCES: [(&str, u32); 4] = [
    ("manual", 60),
    ("import", 20),
    ("channel", 10),
    ("rule", 10),
];

pub struct Plan {
    pub tenant_id: i64,
    pub customers: u64,
    pub batch_size: usize,
    pub connections: usize,
    pub seed: u64,
    /// Staff ids customers are owned by (uniformly); one in ten customers has no owner.
    pub owners: Vec<i64>,
}

pub struct Seeded {
    pub customers: u64,
    pub deleted: u64,
    pub links: u64,
    pub elapsed: Duration,
}

impl Seeded {
    pub fn rows_per_sec(&self) -> f64 {
        (self.customers + self.links) as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }
}

/// One transaction's worth of rows, as SQL.
struct Batch {
    customers_sql: String,
    links_sql: String,
    customers: u64,
    deleted: u64,
    links: u64,
}

/// Writes `plan.customers` customers and their tag links, showing a progress bar.
pub async fn seed(
    db: &DatabaseConnection,
    library: &Library,
    plan: &Plan,
) -> anyhow::Result<Seeded> {
    let first_id = next_customer_id(db).await?;
    // Ids are given explicitly, so that tag links can be written without reading ids back and
    // batches can go in concurrently; the table's auto-increment moves past them.
    let generator = Generator::new(library, plan, first_id)?;
    let progress = progress_bar(plan.customers)?;
    let started = Instant::now();

    let (sender, receiver) = mpsc::channel::<Batch>(plan.connections * 2);
    let batch_size = plan.batch_size;
    let producer = tokio::task::spawn_blocking(move || -> anyhow::Result<()> {
        let mut generator = generator;
        while let Some(batch) = generator.next_batch(batch_size)? {
            if sender.blocking_send(batch).is_err() {
                // A writer failed and the receiver is gone; its error is reported below.
                break;
            }
        }
        Ok(())
    });

    let receiver = Arc::new(Mutex::new(receiver));
    let totals = Arc::new(Totals::default());
    let mut writers = tokio::task::JoinSet::new();
    for _ in 0..plan.connections {
        let receiver = Arc::clone(&receiver);
        let totals = Arc::clone(&totals);
        let db = db.clone();
        let progress = progress.clone();
        writers.spawn(async move {
            loop {
                let batch = receiver.lock().await.recv().await;
                let Some(batch) = batch else {
                    return anyhow::Ok(());
                };
                write_batch(&db, &batch).await?;
                totals.add(&batch);
                progress.inc(batch.customers);
                let rows =
                    totals.customers.load(Ordering::Relaxed) + totals.links.load(Ordering::Relaxed);
                let secs = started.elapsed().as_secs_f64().max(1e-9);
                progress.set_message(format!(
                    "{} tag links · {:.0} rows/s",
                    totals.links.load(Ordering::Relaxed),
                    rows as f64 / secs
                ));
            }
        });
    }

    let mut failure = None;
    while let Some(joined) = writers.join_next().await {
        let result = joined.context("a seeding task panicked").and_then(|r| r);
        if let Err(err) = result
            && failure.is_none()
        {
            failure = Some(err);
            // The other writers would keep draining the queue; stop them and the producer.
            writers.abort_all();
            receiver.lock().await.close();
        }
    }
    let produced = producer.await.context("the row generator panicked")?;
    if let Some(err) = failure {
        progress.abandon();
        return Err(err.context("seeding customers"));
    }
    produced?;
    progress.finish_and_clear();

    let seeded = Seeded {
        customers: totals.customers.load(Ordering::Relaxed),
        deleted: totals.deleted.load(Ordering::Relaxed),
        links: totals.links.load(Ordering::Relaxed),
        elapsed: started.elapsed(),
    };
    eprintln!(
        "seeded {} customers ({} soft-deleted) and {} tag links in {:.1} s: {:.0} rows/s",
        seeded.customers,
        seeded.deleted,
        seeded.links,
        seeded.elapsed.as_secs_f64(),
        seeded.rows_per_sec()
    );
    Ok(seeded)
}

/// Refreshes the optimizer's statistics and moves the tenant's data version on, so that no
/// cache entry written before the seeding (the tag library's, say) can be served for it.
pub async fn finish(db: &DatabaseConnection, tenant_id: i64) -> anyhow::Result<()> {
    eprintln!("analyzing tables");
    db.execute_unprepared("ANALYZE TABLE customers, customer_tags")
        .await
        .context("ANALYZE TABLE customers, customer_tags")?;
    let backend = db.get_database_backend();
    let bumped = db
        .execute_raw(Statement::from_sql_and_values(
            backend,
            "UPDATE tenant_data_versions SET version = version + 1 WHERE tenant_id = ?",
            [tenant_id.into()],
        ))
        .await
        .context("bumping the tenant's data version")?;
    if bumped.rows_affected() == 0 {
        db.execute_raw(Statement::from_sql_and_values(
            backend,
            "INSERT INTO tenant_data_versions (tenant_id, version) VALUES (?, 1)",
            [tenant_id.into()],
        ))
        .await
        .context("recording the tenant's data version")?;
    }
    Ok(())
}

/// Up to `count` live customers of the tenant, spread over its ids, in random order of id.
pub async fn spread_customers(
    db: &DatabaseConnection,
    tenant_id: i64,
    count: usize,
) -> anyhow::Result<Vec<i64>> {
    let rows = db
        .query_all_raw(Statement::from_sql_and_values(
            db.get_database_backend(),
            "SELECT id FROM customers WHERE tenant_id = ? AND deleted_at IS NULL \
             ORDER BY CRC32(id) LIMIT ?",
            [tenant_id.into(), (count as u64).into()],
        ))
        .await
        .context("picking customers to write to")?;
    rows.iter()
        .map(|row| row.try_get_by_index::<i64>(0).map_err(Into::into))
        .collect()
}

async fn next_customer_id(db: &DatabaseConnection) -> anyhow::Result<i64> {
    let row = db
        .query_one_raw(Statement::from_string(
            db.get_database_backend(),
            "SELECT CAST(COALESCE(MAX(id), 0) AS SIGNED) FROM customers",
        ))
        .await
        .context("reading the highest customer id")?
        .context("no answer to SELECT MAX(id)")?;
    Ok(row.try_get_by_index::<i64>(0)? + 1)
}

async fn write_batch(db: &DatabaseConnection, batch: &Batch) -> anyhow::Result<()> {
    let txn = db.begin().await?;
    txn.execute_unprepared(&batch.customers_sql)
        .await
        .context("inserting customers")?;
    if batch.links > 0 {
        txn.execute_unprepared(&batch.links_sql)
            .await
            .context("inserting customer_tags")?;
    }
    txn.commit().await?;
    Ok(())
}

#[derive(Default)]
struct Totals {
    customers: AtomicU64,
    deleted: AtomicU64,
    links: AtomicU64,
}

impl Totals {
    fn add(&self, batch: &Batch) {
        self.customers.fetch_add(batch.customers, Ordering::Relaxed);
        self.deleted.fetch_add(batch.deleted, Ordering::Relaxed);
        self.links.fetch_add(batch.links, Ordering::Relaxed);
    }
}

fn progress_bar(customers: u64) -> anyhow::Result<ProgressBar> {
    let bar = ProgressBar::new(customers);
    bar.set_style(
        ProgressStyle::with_template(
            "seeding [{elapsed_precise}] {wide_bar:.cyan/blue} {human_pos}/{human_len} customers \
             ({per_sec}, ETA {eta}) {msg}",
        )
        .context("progress bar template")?
        .progress_chars("=> "),
    );
    bar.enable_steady_tick(Duration::from_millis(200));
    Ok(bar)
}

/// Produces the rows, in id order, from one random stream: the same plan gives the same data.
struct Generator {
    rng: StdRng,
    tenant_id: i64,
    /// Per popularity rank: tag id, group, exclusive.
    tags: Vec<(i64, usize, bool)>,
    popularity: WeightedIndex<f64>,
    sources: WeightedIndex<u32>,
    start: NaiveDateTime,
    now: NaiveDateTime,
    total: u64,
    first_id: i64,
    next: u64,
    picked: Vec<usize>,
    owners: Vec<i64>,
}

impl Generator {
    fn new(library: &Library, plan: &Plan, first_id: i64) -> anyhow::Result<Generator> {
        let tags: Vec<_> = library
            .by_rank
            .iter()
            .map(|t| (t.id, t.group, t.exclusive))
            .collect();
        if tags.is_empty() {
            bail!("the tag library is empty");
        }
        let popularity =
            WeightedIndex::new((1..=tags.len()).map(|rank| 1.0 / (rank as f64).powf(ZIPF_S)))
                .context("tag popularity weights")?;
        let sources =
            WeightedIndex::new(SOURCES.iter().map(|(_, w)| *w)).context("tag source weights")?;
        // Whole seconds: DATETIME has no fraction, and a fraction would only be rounded away.
        let now = Utc::now().naive_utc();
        let now = now - TimeDelta::nanoseconds(i64::from(now.and_utc().timestamp_subsec_nanos()));
        Ok(Generator {
            rng: StdRng::seed_from_u64(plan.seed),
            tenant_id: plan.tenant_id,
            tags,
            popularity,
            sources,
            start: now - TimeDelta::days(HISTORY_DAYS),
            now,
            total: plan.customers,
            first_id,
            next: 0,
            picked: Vec::with_capacity(MAX_TAGS),
            owners: plan.owners.clone(),
        })
    }

    fn next_batch(&mut self, size: usize) -> anyhow::Result<Option<Batch>> {
        if self.next >= self.total {
            return Ok(None);
        }
        let end = (self.next + size as u64).min(self.total);
        let mut batch = Batch {
            customers_sql: String::with_capacity(size * 200),
            links_sql: String::with_capacity(size * 5 * 60),
            customers: 0,
            deleted: 0,
            links: 0,
        };
        batch.customers_sql.push_str(
            "INSERT INTO customers (id, tenant_id, name, phone, phone_index, company, industry, \
             region, project_stage, owner_id, created_at, updated_at, last_active_at, deleted_at) \
             VALUES ",
        );
        batch.links_sql.push_str(
            "INSERT INTO customer_tags (tenant_id, customer_id, tag_id, source, created_at) VALUES ",
        );
        for index in self.next..end {
            self.customer(index, &mut batch)
                .context("formatting seed rows")?;
        }
        self.next = end;
        Ok(Some(batch))
    }

    fn customer(&mut self, index: u64, batch: &mut Batch) -> std::fmt::Result {
        let rng = &mut self.rng;
        let id = self.first_id + index as i64;
        let span = (self.now - self.start).num_seconds();
        // Creation time grows with the id, like real sign-ups, with jitter inside the id's slot.
        let slot = span / self.total.max(1) as i64;
        let created = self.start
            + TimeDelta::seconds(span * index as i64 / self.total as i64)
            + TimeDelta::seconds(rng.random_range(0..=slot.max(0)));
        let created = created.min(self.now);
        let age = (self.now - created).num_seconds().max(0);
        let updated = created + TimeDelta::seconds(rng.random_range(0..=age));
        let last_active = rng
            .random_bool(0.5)
            .then(|| created + TimeDelta::seconds(rng.random_range(0..=age)));
        let deleted_at = rng.random_bool(0.01).then(|| {
            updated
                + TimeDelta::seconds(
                    rng.random_range(0..=(self.now - updated).num_seconds().max(0)),
                )
        });
        // The index makes every phone unique; the leading digits keep them valid mainland
        // mobiles.
        let phone = rng
            .random_bool(0.6)
            .then(|| format!("1{}{:09}", 3 + index % 7, index));

        let name = format!(
            "{}{}",
            SURNAMES[rng.random_range(0..SURNAMES.len())],
            GIVEN[rng.random_range(0..GIVEN.len())]
        );
        let company = rng.random_bool(0.7).then(|| {
            format!(
                "{}{}{}有限公司",
                CITIES[rng.random_range(0..CITIES.len())],
                COMPANY_WORDS[rng.random_range(0..COMPANY_WORDS.len())],
                COMPANY_KINDS[rng.random_range(0..COMPANY_KINDS.len())]
            )
        });
        let industry = rng
            .random_bool(0.8)
            .then(|| INDUSTRIES[rng.random_range(0..INDUSTRIES.len())]);
        let region = rng
            .random_bool(0.8)
            .then(|| REGIONS[rng.random_range(0..REGIONS.len())]);
        let stage = rng
            .random_bool(0.6)
            .then(|| STAGES[rng.random_range(0..STAGES.len())]);
        let owner = (!self.owners.is_empty() && rng.random_bool(0.9))
            .then(|| self.owners[rng.random_range(0..self.owners.len())]);

        let sql = &mut batch.customers_sql;
        if batch.customers > 0 {
            sql.push(',');
        }
        write!(sql, "({id},{},", self.tenant_id)?;
        push_str(sql, Some(&name));
        sql.push(',');
        push_str(sql, phone.as_deref());
        sql.push(',');
        // The unique (tenant, phone_index) key only covers live customers.
        push_str(sql, phone.as_deref().filter(|_| deleted_at.is_none()));
        sql.push(',');
        push_str(sql, company.as_deref());
        sql.push(',');
        push_str(sql, industry);
        sql.push(',');
        push_str(sql, region);
        sql.push(',');
        push_str(sql, stage);
        sql.push(',');
        match owner {
            Some(owner) => write!(sql, "{owner},")?,
            None => sql.push_str("NULL,"),
        }
        push_time(sql, Some(created))?;
        sql.push(',');
        push_time(sql, Some(updated))?;
        sql.push(',');
        push_time(sql, last_active)?;
        sql.push(',');
        push_time(sql, deleted_at)?;
        sql.push(')');
        batch.customers += 1;
        if deleted_at.is_some() {
            batch.deleted += 1;
        }

        self.pick_tags();
        for &rank in &self.picked {
            let (tag_id, _, _) = self.tags[rank];
            let source = SOURCES[self.sources.sample(&mut self.rng)].0;
            let assigned =
                created + TimeDelta::seconds(self.rng.random_range(0..=age.min(30 * 24 * 3600)));
            let sql = &mut batch.links_sql;
            if batch.links > 0 {
                sql.push(',');
            }
            write!(sql, "({},{id},{tag_id},'{source}',", self.tenant_id)?;
            push_time(sql, Some(assigned))?;
            sql.push(')');
            batch.links += 1;
        }
        Ok(())
    }

    /// 2 to 8 distinct tags by popularity, at most one per exclusive group. A draw that repeats
    /// a tag or breaks exclusivity is redrawn; the bound on attempts only matters for tiny
    /// libraries, where a customer then gets fewer tags.
    fn pick_tags(&mut self) {
        let wanted = self
            .rng
            .random_range(MIN_TAGS..=MAX_TAGS)
            .min(self.tags.len());
        self.picked.clear();
        for _ in 0..wanted * 16 {
            if self.picked.len() == wanted {
                break;
            }
            let rank = self.popularity.sample(&mut self.rng);
            let (_, group, exclusive) = self.tags[rank];
            let clash = self
                .picked
                .iter()
                .any(|&other| other == rank || (exclusive && self.tags[other].1 == group));
            if !clash {
                self.picked.push(rank);
            }
        }
    }
}

/// Appends a SQL string literal (or NULL). The generated values contain no quotes, but they are
/// escaped anyway so that a new word list cannot break a statement.
fn push_str(sql: &mut String, value: Option<&str>) {
    let Some(value) = value else {
        sql.push_str("NULL");
        return;
    };
    sql.push('\'');
    for c in value.chars() {
        match c {
            '\'' => sql.push_str("''"),
            '\\' => sql.push_str("\\\\"),
            c => sql.push(c),
        }
    }
    sql.push('\'');
}

fn push_time(sql: &mut String, value: Option<NaiveDateTime>) -> std::fmt::Result {
    match value {
        Some(t) => write!(sql, "'{}'", t.format("%Y-%m-%d %H:%M:%S")),
        None => {
            sql.push_str("NULL");
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::library::Tag;

    fn library(tags: usize, groups: usize, exclusive_groups: usize) -> Library {
        Library {
            by_rank: (0..tags)
                .map(|t| Tag {
                    id: 1000 + t as i64,
                    group: t % groups,
                    exclusive: t % groups < exclusive_groups,
                })
                .collect(),
            groups,
            exclusive_groups,
        }
    }

    fn plan(customers: u64) -> Plan {
        Plan {
            tenant_id: 7,
            customers,
            batch_size: 100,
            connections: 1,
            seed: 42,
            owners: vec![3, 4],
        }
    }

    #[test]
    fn tags_are_skewed_and_respect_exclusive_groups() {
        let lib = library(200, 20, 2);
        let mut generator = Generator::new(&lib, &plan(10_000), 1).unwrap();
        let mut counts = vec![0u64; 200];
        for _ in 0..10_000 {
            generator.pick_tags();
            let picked = &generator.picked;
            assert!((MIN_TAGS..=MAX_TAGS).contains(&picked.len()));
            for (i, &a) in picked.iter().enumerate() {
                counts[a] += 1;
                for &b in &picked[i + 1..] {
                    assert_ne!(a, b);
                    assert!(!lib.mutually_exclusive(a, b));
                }
            }
        }
        // Zipf with s = 1 over 200 tags: the top tag reaches about half the customers, and the
        // bottom half of the tags together hold only a small share.
        assert!(counts[0] > 3_000, "top tag {}", counts[0]);
        let tail: u64 = counts[100..].iter().sum();
        let all: u64 = counts.iter().sum();
        assert!(tail * 5 < all, "tail {tail} of {all}");
    }

    #[test]
    fn the_same_seed_gives_the_same_rows() {
        let lib = library(30, 5, 1);
        let rows = |customers| {
            let mut generator = Generator::new(&lib, &plan(customers), 1).unwrap();
            let batch = generator.next_batch(100).unwrap().unwrap();
            assert_eq!(batch.customers, customers.min(100));
            (batch.customers_sql, batch.links_sql)
        };
        let (customers_a, links_a) = rows(50);
        let (customers_b, links_b) = rows(50);
        // Times are relative to now, so compare the tag links' ids only.
        let ids = |s: &str| {
            s.split("),(")
                .map(|row| row.split(',').take(3).collect::<Vec<_>>().join(","))
                .collect::<Vec<_>>()
        };
        assert_eq!(ids(&links_a), ids(&links_b));
        assert!(customers_a.starts_with("INSERT INTO customers"));
        assert!(customers_a.contains("(1,7,'") && customers_b.contains("(50,7,'"));
    }

    #[test]
    fn string_literals_are_escaped() {
        let mut sql = String::new();
        push_str(&mut sql, Some("O'Brien\\"));
        sql.push(',');
        push_str(&mut sql, None);
        assert_eq!(sql, "'O''Brien\\\\',NULL");
    }
}
