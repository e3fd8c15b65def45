//! The outbox's consumer: in every server process, a loop that claims waiting events in
//! batches (a lease, so processes share the work and a dead one's events come back), sends the
//! WeChat message each asks for, and marks it processed with how it went.
//!
//! At least once: a message sent just before a crash may be sent again once the lease runs
//! out. A task's message is not sent again once the task records it. WeChat's passing refusals
//! (busy, throttled, unreachable, a stale access token) are tried again with doubling waits up
//! to `max_attempts`; a refusal that will not pass (the user declined, a bad template) ends the
//! event at once.

use std::time::Duration;

use actix_web::web;
use chrono::{DateTime, FixedOffset, Utc};
use scantag_auth::wechat::{SubscribeMessage, WeChatError};
use scantag_domain::kernel::clock;
use scantag_domain::notices::{self, Notice};
use scantag_domain::support::outbox::{self, Claimed};
use serde_json::{Value, json};

use crate::settings::OutboxSettings;
use crate::state::AppState;

/// The first wait before a passing refusal is tried again; each later wait doubles.
const FIRST_RETRY: chrono::Duration = chrono::Duration::seconds(2);
/// The longest wait between tries.
const LONGEST_RETRY: chrono::Duration = chrono::Duration::minutes(10);

/// Starts the consumer, unless `interval_ms` is 0.
pub fn spawn(
    state: web::Data<AppState>,
    settings: &OutboxSettings,
) -> Option<tokio::task::JoinHandle<()>> {
    if settings.interval_ms == 0 {
        return None;
    }
    let settings = settings.clone();
    let server_clock = state.clock.clone();
    Some(tokio::spawn(clock::scope(server_clock, async move {
        let interval = Duration::from_millis(settings.interval_ms);
        let lease = chrono::Duration::seconds(i64::try_from(settings.lease_secs).unwrap_or(60));
        loop {
            let delivered = match round(&state, &settings, lease).await {
                Ok(n) => n,
                Err(err) => {
                    tracing::warn!(error = %err, "outbox delivery failed; trying again shortly");
                    0
                }
            };
            // A full batch means more may be waiting.
            if delivered < settings.batch {
                tokio::select! {
                    () = state.outbox_wake.notified() => {}
                    () = tokio::time::sleep(interval) => {}
                }
            }
        }
    })))
}

/// Claims one batch and delivers it; returns how many events it claimed.
async fn round(
    state: &AppState,
    settings: &OutboxSettings,
    lease: chrono::Duration,
) -> Result<u64, scantag_domain::DomainError> {
    let claimed = outbox::claim(&state.db, clock::now(), lease, settings.batch).await?;
    let count = claimed.len() as u64;
    // Past half the lease the rest of the batch goes back, so that no event is sent after
    // another process could have claimed it.
    let deadline = tokio::time::Instant::now() + lease.to_std().unwrap_or_default() / 2;
    let mut events = claimed.iter();
    for event in events.by_ref() {
        if tokio::time::Instant::now() >= deadline {
            outbox::give_back(&state.db, event, clock::now()).await?;
            break;
        }
        if let Err(err) = deliver(state, settings, event).await {
            // One event failing (the database, say) holds up no other.
            tracing::warn!(event = event.id, attempts = event.attempts, error = %err, "event not delivered");
            let later = clock::now() + retry_wait(event.attempts);
            if let Err(err) = outbox::retry_at(&state.db, event, &err.to_string(), later).await {
                tracing::warn!(event = event.id, error = %err, "event not put back; its lease will free it");
            }
        }
    }
    for event in events {
        outbox::give_back(&state.db, event, clock::now()).await?;
    }
    Ok(count)
}

async fn deliver(
    state: &AppState,
    settings: &OutboxSettings,
    event: &Claimed,
) -> Result<(), scantag_domain::DomainError> {
    let db = &state.db;
    let max_attempts = i32::try_from(settings.max_attempts).unwrap_or(i32::MAX);
    // An event that keeps failing, whatever the cause, ends after twice the tries.
    if event.attempts > max_attempts.saturating_mul(2) {
        return outbox::finish(db, event, "not sent: too many failed tries", clock::now()).await;
    }
    let Some(notice) = notices::prepare(db, event).await? else {
        return outbox::finish(db, event, "nothing to send", clock::now()).await;
    };
    let Some(message) = message(state, &notice) else {
        return outbox::finish(db, event, "no message template configured", clock::now()).await;
    };
    match state.wechat.send_subscribe_message(&message).await {
        Ok(_) => {
            notices::delivered(db, &notice, Ok(())).await?;
            outbox::finish(db, event, "sent", clock::now()).await
        }
        Err(err)
            if passing(&err)
                && event.attempts < i32::try_from(settings.max_attempts).unwrap_or(i32::MAX) =>
        {
            let wait = retry_wait(event.attempts);
            tracing::info!(event = event.id, attempts = event.attempts, error = %err, "message not sent; trying again later");
            outbox::retry_at(db, event, &err.to_string(), clock::now() + wait).await
        }
        Err(err) => {
            tracing::warn!(event = event.id, attempts = event.attempts, error = %err, "message not sent; giving up");
            notices::delivered(db, &notice, Err(err.to_string())).await?;
            outbox::finish(db, event, &format!("not sent: {err}"), clock::now()).await
        }
    }
}

/// Whether WeChat may accept the same message later.
fn passing(err: &WeChatError) -> bool {
    matches!(
        err,
        WeChatError::Busy
            | WeChatError::RateLimited
            | WeChatError::Transport(_)
            | WeChatError::AccessTokenInvalid { .. }
            | WeChatError::UnexpectedResponse(_)
    )
}

/// The wait after the `attempts`-th try: 2 s, 4 s, 8 s, … up to 10 minutes.
fn retry_wait(attempts: i32) -> chrono::Duration {
    let doublings = u32::try_from(attempts.saturating_sub(1))
        .unwrap_or(0)
        .min(16);
    FIRST_RETRY
        .checked_mul(1 << doublings)
        .map_or(LONGEST_RETRY, |w| w.min(LONGEST_RETRY))
}

/// The subscribe message for `notice`, if its template is configured.
fn message(state: &AppState, notice: &Notice) -> Option<SubscribeMessage> {
    let settings = &state.capture;
    let (touser, template, page, data) = match notice {
        Notice::Task {
            task,
            openid,
            channel_name,
            customer_name,
            at,
        } => (
            openid,
            settings.task_template_id.clone()?,
            Some(format!("{}?id={}", settings.task_page, task)),
            json!({
                "thing1": thing(channel_name),
                "thing2": thing(customer_name),
                "time3": {"value": china_time(*at)},
            }),
        ),
        Notice::ToOwner {
            openid,
            message,
            customer,
            customer_name,
            at,
        } => (
            openid,
            settings.task_template_id.clone()?,
            Some(format!("{}?id={}", settings.customer_page, customer)),
            json!({
                "thing1": thing(message),
                "thing2": thing(customer_name),
                "time3": {"value": china_time(*at)},
            }),
        ),
        Notice::ToCustomer {
            openid,
            message,
            at,
        } => (
            openid,
            settings.customer_template_id.clone()?,
            None,
            json!({
                "thing1": thing(message),
                "time2": {"value": china_time(*at)},
            }),
        ),
    };
    Some(SubscribeMessage {
        touser: touser.clone(),
        template_id: template,
        page,
        data,
        miniprogram_state: None,
        lang: Some("zh_CN".to_owned()),
    })
}

/// Subscribe-message `thing` values are at most 20 characters.
fn thing(value: &str) -> Value {
    json!({ "value": value.chars().take(20).collect::<String>() })
}

/// `YYYY-MM-DD HH:MM` in China Standard Time, which WeChat users read.
fn china_time(at: DateTime<Utc>) -> String {
    match FixedOffset::east_opt(8 * 3600) {
        Some(cst) => at.with_timezone(&cst).format("%Y-%m-%d %H:%M").to_string(),
        None => at.format("%Y-%m-%d %H:%M").to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waits_double_from_two_seconds_up_to_ten_minutes() {
        let secs: Vec<i64> = [1, 2, 3, 4, 9, 10, 40]
            .into_iter()
            .map(|a| retry_wait(a).num_seconds())
            .collect();
        assert_eq!(secs, vec![2, 4, 8, 16, 512, 600, 600]);
    }
}
