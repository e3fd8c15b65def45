//! The load: visitors on the whole mini-program path, and orders, each answer timed.

use super::*;

/// What one phase of visits saw.
pub(super) struct Phase {
    pub(super) submit: Latencies,
    pub(super) path: Latencies,
    pub(super) elapsed: Duration,
    pub(super) failures: Vec<String>,
}

/// Visits `visitors[range]` of one tenant, `concurrency` at a time.
pub(super) async fn visit_all(
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

pub(super) async fn log_in(
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
pub(super) async fn post_orders(
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
