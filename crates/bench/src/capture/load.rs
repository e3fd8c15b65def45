//! The load: visitors submitting captures in a closed loop (as fast as answers come) and in
//! open loops at fixed offered rates, each answer timed and classified.

use super::*;

pub(super) struct Shared {
    pub(super) client: reqwest::Client,
    pub(super) url: String,
    pub(super) scene: String,
    pub(super) tokens: Vec<String>,
}

impl Phase {
    fn new() -> anyhow::Result<Phase> {
        Ok(Phase {
            all: latencies()?,
            new: latencies()?,
            repeat: latencies()?,
            elapsed: Duration::ZERO,
            created: 0,
            merged: 0,
            failures: Vec::new(),
        })
    }

    fn record(&mut self, visit: Visit, answer: Answer) {
        match answer {
            Answer::Accepted { micros, created } => {
                self.all.saturating_record(micros);
                if visit.repeat {
                    self.repeat.saturating_record(micros);
                } else {
                    self.new.saturating_record(micros);
                }
                if created {
                    self.created += 1;
                } else {
                    self.merged += 1;
                }
            }
            Answer::Failed(why) => self
                .failures
                .push(format!("visitor {}: {why}", visit.visitor)),
        }
    }

    fn add(&mut self, other: Phase) -> anyhow::Result<()> {
        self.all.add(&other.all).context("merging histograms")?;
        self.new.add(&other.new).context("merging histograms")?;
        self.repeat
            .add(&other.repeat)
            .context("merging histograms")?;
        self.created += other.created;
        self.merged += other.merged;
        self.failures.extend(other.failures);
        Ok(())
    }
}

/// Closed loop: `concurrency` visitors submit `visits` back to back, each waiting for its
/// answer before the next submission. Shows the most the server does with that many in flight.
pub(super) async fn closed_loop(
    shared: &Arc<Shared>,
    visits: &[Visit],
    concurrency: usize,
    name: &str,
) -> anyhow::Result<Phase> {
    let visits: Arc<Vec<Visit>> = Arc::new(visits.to_vec());
    let bar = phase_bar(name, visits.len() as u64)?;
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let mut workers = Vec::with_capacity(concurrency);
    for _ in 0..concurrency {
        let (shared, visits, next, bar) =
            (shared.clone(), visits.clone(), next.clone(), bar.clone());
        workers.push(tokio::spawn(async move {
            let mut phase = Phase::new()?;
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(&visit) = visits.get(i) else {
                    return Ok::<_, anyhow::Error>(phase);
                };
                let answer = submit(&shared, visit, Instant::now()).await;
                phase.record(visit, answer);
                bar.inc(1);
            }
        }));
    }
    let mut total = Phase::new()?;
    for worker in workers {
        total.add(worker.await.context("a capture worker panicked")??)?;
    }
    total.elapsed = started.elapsed();
    bar.finish_and_clear();
    Ok(total)
}

/// Open loop: submissions start on a fixed schedule of `rate` per second, at most
/// `concurrency` at a time. Latency counts from the scheduled start, so time spent waiting
/// for a free slot when the server falls behind is part of it.
pub(super) async fn open_loop(
    shared: &Arc<Shared>,
    visits: &[Visit],
    concurrency: usize,
    rate: u32,
) -> anyhow::Result<Phase> {
    let bar = phase_bar(&format!("{rate}/s offered"), visits.len() as u64)?;
    let slots = Arc::new(tokio::sync::Semaphore::new(concurrency));
    let interval = Duration::from_secs_f64(1.0 / f64::from(rate.max(1)));
    let started = Instant::now();
    let mut running = tokio::task::JoinSet::new();
    for (i, &visit) in visits.iter().enumerate() {
        let due = started + interval.mul_f64(i as f64);
        tokio::time::sleep_until(due.into()).await;
        let slot = slots.clone().acquire_owned().await?;
        let (shared, bar) = (shared.clone(), bar.clone());
        running.spawn(async move {
            let answer = submit(&shared, visit, due).await;
            drop(slot);
            bar.inc(1);
            (visit, answer)
        });
    }
    let mut total = Phase::new()?;
    while let Some(done) = running.join_next().await {
        let (visit, answer) = done.context("a capture task panicked")?;
        total.record(visit, answer);
    }
    total.elapsed = started.elapsed();
    bar.finish_and_clear();
    Ok(total)
}

/// How one submission went.
pub(super) enum Answer {
    Accepted { micros: u64, created: bool },
    Failed(String),
}

/// Submits one visit; latency counts from `since`.
pub(super) async fn submit(shared: &Shared, visit: Visit, since: Instant) -> Answer {
    let body = json!({
        "scene": shared.scene,
        "name": format!("访客{}", visit.visitor),
        "phone": phone(visit.visitor),
        "company": format!("星河科技{}号", visit.visitor % 50),
        "consent": {"accepted": true, "policy_version": POLICY},
    });
    let sent = shared
        .client
        .post(&shared.url)
        .bearer_auth(&shared.tokens[visit.visitor])
        .header("Idempotency-Key", uuid::Uuid::new_v4().to_string())
        .json(&body)
        .send()
        .await;
    let answer = match sent {
        Ok(response) => {
            let status = response.status();
            response.bytes().await.map(|bytes| (status, bytes))
        }
        Err(err) => Err(err),
    };
    let micros = micros(since.elapsed());
    match answer {
        Ok((status, bytes)) if status.is_success() => {
            let outcome = serde_json::from_slice::<Value>(&bytes)
                .ok()
                .and_then(|v| v["outcome"].as_str().map(str::to_owned));
            match outcome.as_deref() {
                Some("created") => Answer::Accepted {
                    micros,
                    created: true,
                },
                Some("merged") => Answer::Accepted {
                    micros,
                    created: false,
                },
                other => Answer::Failed(format!("{status} with outcome {other:?}")),
            }
        }
        Ok((status, bytes)) => {
            Answer::Failed(format!("{status} {}", String::from_utf8_lossy(&bytes)))
        }
        Err(err) => Answer::Failed(err.to_string()),
    }
}
