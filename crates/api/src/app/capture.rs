//! Capture, the visitor's submission of a channel's form: the idempotency claim (before any
//! work, so that concurrent duplicates meet at once), the exchange of a WeChat phone-number
//! code (after the claim, so a duplicate never spends the single-use code twice), the
//! domain's capture transaction and the release of a failed attempt's claim. The owner's
//! WeChat message is an outbox event of the transaction, which `app::outbox` delivers.

use actix_web::http::StatusCode;
use actix_web::web;
use scantag_auth::wechat::WeChatError;
use scantag_domain::capture::{self, CaptureResult, Consent, Submission};
use scantag_domain::support::idempotency::{self, Claim, IdempotencyKey};

use crate::error::ApiError;
use crate::extract::VisitorCaller;
use crate::routes::capture::CaptureRequest;
use crate::state::AppState;

/// The answer to a submission, and whether it is the stored answer of an earlier one with
/// the same Idempotency-Key.
pub struct Submitted {
    pub result: CaptureResult,
    pub replayed: bool,
}

/// Records the visitor's submission; `key` is the request's Idempotency-Key, if any.
pub async fn submit(
    state: &web::Data<AppState>,
    visitor: &VisitorCaller,
    request: CaptureRequest,
    key: Option<String>,
) -> Result<Submitted, ApiError> {
    let key = match key {
        Some(key) => {
            let canonical = serde_json::to_vec(&request).map_err(|e| ApiError::internal(&e))?;
            let key =
                IdempotencyKey::new(format!("visitor:{}", visitor.visitor.id), key, &canonical);
            let claim = match idempotency::claim(&state.db, &key).await {
                Ok(claim) => claim,
                Err(err) => {
                    // The claim may have been written before the connection broke.
                    release_claim(state.clone(), key);
                    return Err(err.into());
                }
            };
            match claim {
                Claim::Acquired => Some(key),
                Claim::Replay(stored) => {
                    let result: CaptureResult =
                        serde_json::from_str(&stored).map_err(|e| ApiError::internal(&e))?;
                    return Ok(Submitted {
                        result,
                        replayed: true,
                    });
                }
                Claim::Mismatch => {
                    return Err(ApiError::new(
                        StatusCode::UNPROCESSABLE_ENTITY,
                        "idempotency_key_reused",
                        "this Idempotency-Key was used with a different request body",
                    ));
                }
                Claim::InProgress => {
                    return Err(ApiError::new(
                        StatusCode::CONFLICT,
                        "idempotency_in_progress",
                        "a submission with this Idempotency-Key is still running; retry shortly",
                    )
                    .with_retry_after(1));
                }
            }
        }
        None => None,
    };
    let outcome = run_capture(state, visitor, request, key.as_ref()).await;
    if let (Err(err), Some(key)) = (&outcome, key) {
        // A refusal leaves the database healthy: release before answering, so that a retry
        // with a corrected body and the same key finds the key free. Anything else may mean
        // the database is failing; then the answer must not wait for it.
        let released =
            !err.is_server_error() && idempotency::release(&state.db, &key).await.is_ok();
        if !released {
            release_claim(state.clone(), key);
        }
    }
    let result = outcome?;
    state.outbox_wake.notify_one();
    Ok(Submitted {
        result,
        replayed: false,
    })
}

/// Gives up the claim of a failed submission so that its retry can run. The release runs in
/// the background, so that a request that failed because the database did is answered at once
/// rather than after another wait for a connection; it is retried until the database answers,
/// as otherwise the retry would wait for the claim to be abandoned (a minute).
fn release_claim(state: web::Data<AppState>, key: IdempotencyKey) {
    actix_web::rt::spawn(async move {
        let deadline = tokio::time::Instant::now() + RELEASE_RETRY_FOR;
        loop {
            match idempotency::release(&state.db, &key).await {
                Ok(()) => return,
                Err(err) if tokio::time::Instant::now() >= deadline => {
                    tracing::warn!(error = %err, "gave up releasing an idempotency key; it is taken over once abandoned");
                    return;
                }
                Err(_) => tokio::time::sleep(RELEASE_RETRY_EVERY).await,
            }
        }
    });
}

/// How long and how often a failed release is retried: until the claim counts as abandoned.
const RELEASE_RETRY_FOR: std::time::Duration = std::time::Duration::from_secs(60);
const RELEASE_RETRY_EVERY: std::time::Duration = std::time::Duration::from_millis(500);

async fn run_capture(
    state: &AppState,
    visitor: &VisitorCaller,
    request: CaptureRequest,
    key: Option<&IdempotencyKey>,
) -> Result<CaptureResult, ApiError> {
    let verified_phone = match &request.phone_code {
        Some(code) => Some(
            state
                .wechat
                .phone_number(code)
                .await
                .map_err(phone_code_error)?
                .pure_phone_number,
        ),
        None => None,
    };
    let submission = Submission {
        scene: request.scene,
        name: request.name,
        phone: request.phone,
        company: request.company,
        industry: request.industry,
        region: request.region,
        custom_fields: request.custom_fields,
        verified_phone,
        consent: Consent {
            accepted: request.consent.accepted,
            policy_version: request.consent.policy_version,
        },
    };
    Ok(capture::submit(
        &state.db,
        &visitor.visitor,
        &submission,
        key,
        state.capture.returning_customer_window,
    )
    .await?)
}

/// A `phone_code` WeChat refused is a bad field of the submission; other failures are WeChat's.
fn phone_code_error(err: WeChatError) -> ApiError {
    match err {
        WeChatError::InvalidCode => ApiError::field(
            "phone_code",
            "wechat_code_invalid",
            "the phone-number code is invalid or has expired; ask for the number again",
        ),
        WeChatError::CodeUsed => ApiError::field(
            "phone_code",
            "wechat_code_used",
            "the phone-number code was already used; ask for the number again",
        ),
        other => other.into(),
    }
}
