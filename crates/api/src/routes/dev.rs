//! Testing from outside: the manual clock (`SCANTAG_DEV__MANUAL_CLOCK=true`, only with a
//! WeChat mock). On a server with the real clock these answer 404, as if absent.

use actix_web::{HttpResponse, get, post, web};
use chrono::{DateTime, Utc};
use scantag_domain::kernel::clock::ClockError;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use validator::Validate;

use crate::error::{ApiError, Problem};
use crate::extract::ValidJson;
use crate::state::AppState;

/// The server's time.
#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({"now": "2026-12-31T08:00:00Z", "manual": true}))]
pub struct ClockView {
    pub now: DateTime<Utc>,
    /// Always `true`: only a manual clock is shown.
    pub manual: bool,
}

/// How to move the clock: by a number of seconds, or to an instant; forward only.
#[derive(Debug, Clone, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"advance_secs": 2678400}))]
pub struct MoveClockRequest {
    /// Seconds to move forward (31 days: 2678400).
    #[validate(range(max = 3_155_760_000_u64))]
    pub advance_secs: Option<u64>,
    /// The instant to move to (RFC 3339), not before the clock's current time.
    pub now: Option<DateTime<Utc>>,
}

fn manual_only(state: &AppState) -> Result<(), ApiError> {
    if state.clock.is_manual() {
        Ok(())
    } else {
        Err(ApiError::not_found("resource"))
    }
}

/// The server's manual clock: its current time.
#[utoipa::path(
    tag = "dev",
    responses(
        (status = 200, description = "The manual clock's time", body = ClockView),
        (status = 404, description = "The server runs on real time (`not_found`)", body = Problem, content_type = "application/problem+json")
    )
)]
#[get("/__dev/clock")]
pub async fn get_clock(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    manual_only(&state)?;
    Ok(HttpResponse::Ok().json(ClockView {
        now: state.clock.now(),
        manual: true,
    }))
}

/// Move the server's manual clock forward: `{"advance_secs": N}` or `{"now": "<RFC 3339>"}`.
///
/// Every time-dependent path reads this clock: rule windows and days-since, due transitions
/// (the scheduler looks at once, and applies what is due within seconds), task due dates,
/// token and session expiry. The clock keeps running with real time from the new instant.
#[utoipa::path(
    tag = "dev",
    request_body = MoveClockRequest,
    responses(
        (status = 200, description = "The clock's new time", body = ClockView),
        (status = 404, description = "The server runs on real time (`not_found`)", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Neither or both of `advance_secs` and `now`, or a move backwards or beyond 100 years (`validation_failed`)", body = Problem, content_type = "application/problem+json")
    )
)]
#[post("/__dev/clock")]
pub async fn move_clock(
    state: web::Data<AppState>,
    body: ValidJson<MoveClockRequest>,
) -> Result<HttpResponse, ApiError> {
    manual_only(&state)?;
    let request = body.into_inner()?;
    let moved = match (request.advance_secs, request.now) {
        (Some(secs), None) => state.clock.advance(chrono::Duration::seconds(
            i64::try_from(secs).unwrap_or(i64::MAX),
        )),
        (None, Some(to)) => state.clock.set(to),
        _ => {
            return Err(ApiError::field(
                "advance_secs",
                "required",
                "give exactly one of advance_secs and now",
            ));
        }
    };
    let now = moved.map_err(|err| {
        let field = if request.now.is_some() {
            "now"
        } else {
            "advance_secs"
        };
        let code = match err {
            ClockError::Backwards => "backwards",
            ClockError::TooFar => "range",
            ClockError::NotManual => "not_manual",
        };
        ApiError::field(field, code, err.to_string())
    })?;
    tracing::info!(now = %now, "the manual clock moved");
    state.schedule_wake.notify_one();
    Ok(HttpResponse::Ok().json(ClockView { now, manual: true }))
}
