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

use crate::Backends;
use crate::backends;
use crate::measure::{Latencies, latencies, micros};
use crate::report::{group, ms};
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
    let mysql_url = SecretString::from(backends.mysql_url.clone());
    let redis_url = SecretString::from(backends.redis_url.clone());
    let database_url = backends::database_url(&mysql_url, DATABASE)?;
    backends::recreate_database(&mysql_url, DATABASE).await?;
    let cache_prefix = format!("scantag-bench-{}", uuid::Uuid::new_v4().simple());
    let pool = args.pool;
    let result = match BenchServer::start(&database_url, &redis_url, &cache_prefix, |s| {
        s.database_max_connections = pool;
    })
    .await
    {
        Ok(server) => {
            let result = bench(args, &server, &database_url).await;
            server.stop().await;
            result
        }
        Err(err) => Err(err),
    };
    if !backends.keep {
        backends::delete_cache_keys(&redis_url, &cache_prefix)
            .await
            .ok();
        if let Err(err) = backends::drop_database(&mysql_url, DATABASE).await {
            eprintln!("scantag-bench: could not drop database {DATABASE}: {err:#}");
        }
    }
    result
}

async fn booth(api: &Api) -> anyhow::Result<String> {
    let me = api.get("/api/v1/me").await?;
    let admin = me["principal"]["id"].as_i64().context("admin id")?;
    let channel = api
        .post(
            "/api/v1/channels",
            &json!({
                "name": "展台", "scene": "expo",
                "owner_policy": {"type": "fixed", "staff_id": admin},
                "form": [{"key": "phone", "required": true}, {"key": "company"}, {"key": "region"}],
                "privacy_policy_version": POLICY,
            }),
        )
        .await?;
    Ok(channel["qr_scene"].as_str().context("qr_scene")?.to_owned())
}

async fn group_with(api: &Api, name: &str, tags: &[String]) -> anyhow::Result<Vec<(String, i64)>> {
    let group = api
        .post(
            "/api/v1/tag-groups",
            &json!({"name": name, "dimension": "custom"}),
        )
        .await?["id"]
        .as_i64()
        .context("group id")?;
    let mut out = Vec::new();
    for tag in tags {
        let id = api
            .post("/api/v1/tags", &json!({"group_id": group, "name": tag}))
            .await?["id"]
            .as_i64()
            .context("tag id")?;
        out.push((tag.clone(), id));
    }
    Ok(out)
}

/// The 50 rules of `ruled`: every template, and 29 more.
async fn fifty_rules(api: &Api) -> anyhow::Result<(HashMap<String, i64>, Vec<i64>)> {
    let mut tags = HashMap::new();
    let mut rules = Vec::new();
    let templates = api.get("/api/v1/rule-templates").await?;
    for template in templates["items"].as_array().context("templates")? {
        let key = template["key"].as_str().context("key")?;
        let made = api
            .post(&format!("/api/v1/rule-templates/{key}"), &json!({}))
            .await?;
        for tag in made["tags"].as_array().context("tags")? {
            tags.insert(
                tag["name"].as_str().context("name")?.to_owned(),
                tag["tag_id"].as_i64().context("id")?,
            );
        }
        for rule in made["rules"].as_array().context("rules")? {
            rules.push(rule["id"].as_i64().context("rule id")?);
        }
    }
    let add = |name: String, condition: Value, tag: i64| json!({"name": name, "condition": condition, "actions": [{"type": "add_tag", "tag_id": tag}]});
    let mut drafts = Vec::new();
    let regions: Vec<String> = REGIONS.iter().map(|r| format!("地区·{r}")).collect();
    for ((name, id), region) in group_with(api, "地区", &regions)
        .await?
        .into_iter()
        .zip(REGIONS)
    {
        drafts.push(add(
            name.clone(),
            json!({"field": "region", "op": "eq", "value": region}),
            id,
        ));
        tags.insert(name, id);
    }
    let bought: Vec<String> = CATEGORIES.iter().map(|c| format!("买过·{c}")).collect();
    for ((name, id), category) in group_with(api, "品类", &bought)
        .await?
        .into_iter()
        .zip(CATEGORIES)
    {
        drafts.push(add(
            name.clone(),
            json!({"metric": {"aggregate": "count", "of": "orders", "where": {"product_category": category}}, "op": "gte", "value": 1}),
            id,
        ));
        tags.insert(name, id);
    }
    let views: Vec<String> = (1..=5).map(|k| format!("浏览≥{k}")).collect();
    for (k, (name, id)) in group_with(api, "浏览", &views)
        .await?
        .into_iter()
        .enumerate()
    {
        drafts.push(add(
            name.clone(),
            json!({"metric": {"aggregate": "count", "of": "events", "within": {"last_days": 30}, "where": {"kind": "page_view"}}, "op": "gte", "value": k + 1}),
            id,
        ));
        tags.insert(name, id);
    }
    let vip: Vec<String> = ["上海高价值", "有公司", "成熟大客户", "沉默高价值"]
        .iter()
        .map(|s| (*s).to_owned())
        .collect();
    let made = group_with(api, "组合", &vip).await?;
    let high = *tags.get("高价值客户").context("高价值客户")?;
    let conditions = [
        json!({"all": [{"has_tag": high}, {"field": "region", "op": "eq", "value": "上海"}]}),
        json!({"field": "company", "op": "is_set"}),
        json!({"all": [{"has_tag": high}, {"has_tag": *tags.get("成熟期").context("成熟期")?}]}),
        json!({"all": [{"has_tag": high}, {"has_tag": *tags.get("沉默").context("沉默")?}]}),
    ];
    for ((name, id), condition) in made.into_iter().zip(conditions) {
        drafts.push(add(name.clone(), condition, id));
        tags.insert(name, id);
    }
    for draft in drafts {
        let rule = api.post("/api/v1/rules", &draft).await?;
        rules.push(rule["id"].as_i64().context("rule id")?);
    }
    if rules.len() != 50 {
        bail!("expected 50 rules, made {}", rules.len());
    }
    Ok((tags, rules))
}

/// What one phase of visits saw.
struct Phase {
    submit: Latencies,
    path: Latencies,
    elapsed: Duration,
    failures: Vec<String>,
}

/// Visits `visitors[range]` of one tenant, `concurrency` at a time.
async fn visit_all(
    client: &reqwest::Client,
    base: &str,
    tenant: &Tenant,
    visitors: &[(usize, String)],
    concurrency: usize,
    replay_share: f64,
    seed: u64,
) -> anyhow::Result<Phase> {
    let queue = Arc::new(std::sync::Mutex::new(visitors.to_vec()));
    let started = Instant::now();
    let mut workers = Vec::new();
    for w in 0..concurrency {
        let queue = queue.clone();
        let client = client.clone();
        let form_url = format!("{base}/api/v1/capture/form?scene={}", tenant.scene);
        let submit_url = format!("{base}/api/v1/capture");
        let scene = tenant.scene.clone();
        let mut rng = StdRng::seed_from_u64(seed ^ (w as u64) << 8);
        workers.push(tokio::spawn(async move {
            let mut submit = latencies()?;
            let mut path = latencies()?;
            let mut failures = Vec::new();
            loop {
                let next = queue
                    .lock()
                    .map_err(|_| anyhow::anyhow!("queue poisoned"))?
                    .pop();
                let Some((i, token)) = next else {
                    return Ok::<_, anyhow::Error>((submit, path, failures));
                };
                let began = Instant::now();
                let form = client.get(&form_url).send().await;
                if !form.as_ref().is_ok_and(|r| r.status().is_success()) {
                    failures.push(format!("visitor {i}: form {:?}", form.map(|r| r.status())));
                    continue;
                }
                let body = json!({
                    "scene": scene, "name": format!("访客{i}"), "phone": format!("139{i:08}"),
                    "company": (i % 3 != 0).then(|| format!("公司{}", i % 40)),
                    "region": REGIONS[i % REGIONS.len()],
                    "consent": {"accepted": true, "policy_version": POLICY},
                });
                let key = uuid::Uuid::new_v4().to_string();
                let times = if rng.random_bool(replay_share) { 2 } else { 1 };
                for _ in 0..times {
                    let sent = Instant::now();
                    let answer = client
                        .post(&submit_url)
                        .bearer_auth(&token)
                        .header("Idempotency-Key", &key)
                        .json(&body)
                        .send()
                        .await;
                    match answer {
                        Ok(r) if r.status().is_success() => {
                            r.bytes().await.ok();
                            submit.saturating_record(micros(sent.elapsed()));
                        }
                        Ok(r) => failures.push(format!("visitor {i}: {}", r.status())),
                        Err(e) => failures.push(format!("visitor {i}: {e}")),
                    }
                }
                path.saturating_record(micros(began.elapsed()));
            }
        }));
    }
    let mut phase = Phase {
        submit: latencies()?,
        path: latencies()?,
        elapsed: Duration::ZERO,
        failures: Vec::new(),
    };
    for worker in workers {
        let (submit, path, failures) = worker.await.context("a visitor worker panicked")??;
        phase.submit.add(&submit).context("merging histograms")?;
        phase.path.add(&path).context("merging histograms")?;
        phase.failures.extend(failures);
    }
    phase.elapsed = started.elapsed();
    Ok(phase)
}

async fn log_in(
    server: &BenchServer,
    client: &reqwest::Client,
    base: &str,
    prefix: &str,
    count: usize,
) -> anyhow::Result<Vec<(usize, String)>> {
    let mut out = Vec::with_capacity(count);
    for i in 0..count {
        let code = server
            .mock
            .mint_login_code(Some(format!("{prefix}-{i}")), None)
            .code;
        let answer: Value = client
            .post(format!("{base}/api/v1/auth/wechat/login"))
            .json(&json!({"code": code}))
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?;
        out.push((
            i,
            answer["access_token"].as_str().context("token")?.to_owned(),
        ));
    }
    Ok(out)
}

/// Posts `count` orders to random customers of the tenant, `concurrency` at a time.
async fn post_orders(
    client: &reqwest::Client,
    base: &str,
    tenant: &Tenant,
    customers: &[i64],
    count: usize,
    concurrency: usize,
    seed: u64,
) -> anyhow::Result<(Latencies, Duration, Vec<String>)> {
    let mut rng = StdRng::seed_from_u64(seed);
    let now = Utc::now();
    let bodies: Vec<Value> = (0..count)
        .map(|_| {
            let customer = customers[rng.random_range(0..customers.len())];
            let days = rng.random_range(0..400);
            json!({
                "customer_id": customer,
                "amount_fen": rng.random_range(1_000..400_000),
                "product_category": CATEGORIES[rng.random_range(0..CATEGORIES.len())],
                "status": if rng.random_bool(0.05) { "refunded" } else { "paid" },
                "occurred_at": now - chrono::Duration::days(days) - chrono::Duration::minutes(rng.random_range(0..1440)),
            })
        })
        .collect();
    let queue = Arc::new(std::sync::Mutex::new(bodies));
    let started = Instant::now();
    let mut workers = Vec::new();
    for _ in 0..concurrency {
        let queue = queue.clone();
        let client = client.clone();
        let url = format!("{base}/api/v1/orders");
        let token = tenant.api.token().to_owned();
        workers.push(tokio::spawn(async move {
            let mut times = latencies()?;
            let mut failures = Vec::new();
            loop {
                let next = queue
                    .lock()
                    .map_err(|_| anyhow::anyhow!("queue poisoned"))?
                    .pop();
                let Some(body) = next else {
                    return Ok::<_, anyhow::Error>((times, failures));
                };
                let sent = Instant::now();
                match client
                    .post(&url)
                    .bearer_auth(&token)
                    .json(&body)
                    .send()
                    .await
                {
                    Ok(r) if r.status().is_success() => {
                        r.bytes().await.ok();
                        times.saturating_record(micros(sent.elapsed()));
                    }
                    Ok(r) => failures.push(format!(
                        "order: {} {}",
                        r.status(),
                        r.text().await.unwrap_or_default()
                    )),
                    Err(e) => failures.push(format!("order: {e}")),
                }
            }
        }));
    }
    let mut all = latencies()?;
    let mut failures = Vec::new();
    for worker in workers {
        let (times, f) = worker.await.context("an order worker panicked")??;
        all.add(&times).context("merging histograms")?;
        failures.extend(f);
    }
    Ok((all, started.elapsed(), failures))
}

async fn ids(db: &DatabaseConnection, sql: &str) -> anyhow::Result<BTreeSet<i64>> {
    let rows = db
        .query_all_raw(Statement::from_string(
            db.get_database_backend(),
            sql.to_owned(),
        ))
        .await
        .with_context(|| format!("running {sql}"))?;
    rows.iter()
        .map(|r| r.try_get_by_index::<i64>(0).context("an id"))
        .collect()
}

fn compare(
    what: &str,
    expected: &BTreeSet<i64>,
    actual: &BTreeSet<i64>,
    problems: &mut Vec<String>,
) {
    if expected != actual {
        let missing: Vec<_> = expected.difference(actual).take(5).collect();
        let extra: Vec<_> = actual.difference(expected).take(5).collect();
        problems.push(format!(
            "{what}: {} expected, {} carry it; missing {missing:?}, extra {extra:?}",
            expected.len(),
            actual.len()
        ));
    }
}

/// Long because each check is a few lines of SQL and they read best in one place.
async fn check(
    db: &DatabaseConnection,
    ruled: &Tenant,
    plain: &Tenant,
    customers: &[i64],
    sample: usize,
    problems: &mut Vec<String>,
) -> anyhow::Result<String> {
    let t = ruled.id;
    let carriers = |tag: i64| format!("SELECT customer_id FROM customer_tags WHERE tag_id = {tag}");
    let mut checked = 0;
    for region in REGIONS {
        let tag = ruled.tags[&format!("地区·{region}")];
        let expected = ids(db, &format!("SELECT id FROM customers WHERE tenant_id = {t} AND deleted_at IS NULL AND region = '{region}'")).await?;
        compare(
            &format!("地区·{region}"),
            &expected,
            &ids(db, &carriers(tag)).await?,
            problems,
        );
        checked += 1;
    }
    for category in CATEGORIES {
        let tag = ruled.tags[&format!("买过·{category}")];
        let expected = ids(db, &format!("SELECT DISTINCT customer_id FROM orders WHERE tenant_id = {t} AND status = 'paid' AND product_category = '{category}'")).await?;
        compare(
            &format!("买过·{category}"),
            &expected,
            &ids(db, &carriers(tag)).await?,
            problems,
        );
        checked += 1;
    }
    // 高价值客户 holds at the last evaluation of each customer: its orders in the 180 days
    // before then. No customer changes after the run, and the run takes minutes, so orders
    // crossing the window's edge in between are the only way this can differ; the bench's
    // order times avoid the edge by whole minutes, and a difference is reported, not hidden.
    let expected = ids(db, &format!(
        "SELECT o.customer_id FROM orders o JOIN customers c ON c.id = o.customer_id \
         WHERE o.tenant_id = {t} AND o.status = 'paid' AND o.currency = 'CNY' \
           AND o.occurred_at > DATE_SUB(c.updated_at, INTERVAL 180 DAY) AND o.occurred_at <= c.updated_at \
         GROUP BY o.customer_id HAVING SUM(o.amount_fen) > 500000 AND COUNT(*) > 3"
    )).await?;
    compare(
        "高价值客户",
        &expected,
        &ids(db, &carriers(ruled.tags["高价值客户"])).await?,
        problems,
    );
    checked += 1;
    let unowned = ids(
        db,
        &format!("SELECT id FROM customers WHERE tenant_id = {t} AND owner_id IS NULL"),
    )
    .await?;
    compare(
        "待分配",
        &unowned,
        &ids(db, &carriers(ruled.tags["待分配"])).await?,
        problems,
    );
    checked += 1;
    let plain_rule_links = ids(
        db,
        &format!(
            "SELECT customer_id FROM customer_tags WHERE tenant_id = {} AND source = 'rule'",
            plain.id
        ),
    )
    .await?;
    compare(
        "plain tenant's rule tags",
        &BTreeSet::new(),
        &plain_rule_links,
        problems,
    );

    // Every rule again, now, for a sample: a non-exclusive rule's tag is there exactly when it
    // holds; in each exclusive group the customer carries the tag of the highest-priority rule
    // that holds (or none).
    let rules: Vec<Value> = ruled.api.get("/api/v1/rules").await?["items"]
        .as_array()
        .context("rules")?
        .clone();
    // The group of every tag of an exclusive group.
    let mut exclusive: HashMap<i64, i64> = HashMap::new();
    let groups = ruled.api.get("/api/v1/tag-groups").await?;
    for g in groups["items"].as_array().context("groups")? {
        if g["exclusive"] == true {
            let group_id = g["id"].as_i64().context("group id")?;
            let tags = ruled
                .api
                .get(&format!("/api/v1/tags?group_id={group_id}"))
                .await?;
            for tag in tags["items"].as_array().context("tags")? {
                exclusive.insert(tag["id"].as_i64().context("tag id")?, group_id);
            }
        }
    }
    let mut rng = StdRng::seed_from_u64(7);
    let mut evaluations = 0;
    for _ in 0..sample.min(customers.len()) {
        let customer = customers[rng.random_range(0..customers.len())];
        let detail = ruled
            .api
            .get(&format!("/api/v1/customers/{customer}"))
            .await?;
        let carried: BTreeSet<i64> = detail["tags"]
            .as_array()
            .context("tags")?
            .iter()
            .filter_map(|t| t["tag_id"].as_i64())
            .collect();
        // Rules are listed highest priority first: the first holding rule of a group wins.
        let mut settled: BTreeSet<i64> = BTreeSet::new();
        let mut expected: BTreeSet<i64> = BTreeSet::new();
        for rule in &rules {
            let id = rule["id"].as_i64().context("rule id")?;
            let check = ruled
                .api
                .get(&format!(
                    "/api/v1/customers/{customer}/rules/{id}/evaluation"
                ))
                .await?;
            evaluations += 1;
            for tag in check["would_tag"]
                .as_array()
                .context("would_tag")?
                .iter()
                .filter_map(Value::as_i64)
            {
                if let Some(group_id) = exclusive.get(&tag) {
                    if settled.insert(*group_id) {
                        expected.insert(tag);
                    }
                } else {
                    expected.insert(tag);
                }
            }
        }
        let rule_tags: BTreeSet<i64> = carried
            .intersection(&ruled.tags.values().copied().collect())
            .copied()
            .collect();
        if expected != rule_tags {
            problems.push(format!(
                "customer {customer}: the rules say {expected:?}, it carries {rule_tags:?}"
            ));
        }
    }
    Ok(format!(
        "{checked} tags checked against SQL over all {} customers; {evaluations} rule evaluations over HTTP for {} sampled customers agree with their tags; the plain tenant carries no rule tag",
        group(customers.len() as u64),
        sample.min(customers.len())
    ))
}

fn row(name: &str, l: &Latencies, elapsed: Duration) -> String {
    format!(
        "| {name} | {} | {} | {} | {} | {} |",
        group(l.len()),
        group((l.len() as f64 / elapsed.as_secs_f64()) as u64),
        ms(l.value_at_quantile(0.5)),
        ms(l.value_at_quantile(0.99)),
        ms(l.max())
    )
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
