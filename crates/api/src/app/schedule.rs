//! The scheduler of the rules' background work: in every server process, a loop that applies
//! the transitions that come with time alone when they are due
//! (`customers::automation::run_due`), on the server's clock, and between them takes one
//! batch of a backfill or re-check (`customers::automation::jobs`). Rounds follow each other
//! at once while they find full batches; otherwise the next waits for the interval, or for
//! the manual clock to move or a job to be queued.

use std::time::Duration;

use actix_web::web;
use scantag_domain::customers::automation;
use scantag_domain::kernel::clock;

use crate::settings::SchedulerSettings;
use crate::state::AppState;

/// Starts the scheduler, unless `interval_ms` is 0.
pub fn spawn(
    state: web::Data<AppState>,
    settings: &SchedulerSettings,
) -> Option<tokio::task::JoinHandle<()>> {
    if settings.interval_ms == 0 {
        return None;
    }
    let settings = settings.clone();
    let server_clock = state.clock.clone();
    Some(tokio::spawn(clock::scope(server_clock, async move {
        let interval = Duration::from_millis(settings.interval_ms);
        let lease = chrono::Duration::seconds(i64::try_from(settings.lease_secs).unwrap_or(30));
        loop {
            let claimed = match automation::run_due(&state.db, clock::now(), lease, settings.batch)
                .await
            {
                Ok(round) => {
                    if round.customers > 0 {
                        tracing::info!(
                            claimed = round.claimed,
                            customers = round.customers,
                            changes = round.changes,
                            "applied due rule transitions"
                        );
                    }
                    round.claimed
                }
                Err(err) => {
                    tracing::warn!(error = %err, "due rule transitions failed; trying again shortly");
                    0
                }
            };
            // One batch of a backfill or re-check between rounds of due transitions.
            let evaluated = match automation::jobs::run_jobs(&state.db, clock::now(), lease).await {
                Ok(n) => n,
                Err(err) => {
                    tracing::warn!(error = %err, "a rule job's batch failed; trying again shortly");
                    0
                }
            };
            if claimed < settings.batch && evaluated < automation::jobs::JOB_BATCH {
                tokio::select! {
                    () = state.schedule_wake.notified() => {}
                    () = tokio::time::sleep(interval) => {}
                }
            }
        }
    })))
}
