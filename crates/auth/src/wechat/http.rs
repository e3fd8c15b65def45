//! One HTTP round trip to a WeChat endpoint: sending, reading the errcode envelope, logging and
//! retrying when it is safe to.

use std::error::Error as _;
use std::time::{Duration, Instant};

use backon::{ExponentialBuilder, Retryable};
use reqwest::header::CONTENT_TYPE;
use reqwest::{Method, StatusCode};
use serde_json::Value;

use super::error::WeChatError;

/// First retry delay; later ones double, with jitter, up to [`MAX_RETRY_DELAY`].
const MIN_RETRY_DELAY: Duration = Duration::from_millis(100);
const MAX_RETRY_DELAY: Duration = Duration::from_secs(2);

/// A request to one endpoint.
pub(crate) struct Call<'a> {
    /// Short endpoint name for logs; URLs are never logged because their query strings carry
    /// the app secret or the access token.
    pub endpoint: &'static str,
    pub method: Method,
    pub path: &'static str,
    pub query: &'a [(&'static str, &'a str)],
    pub body: Option<&'a Value>,
    /// Whether sending the request twice is harmless. Calls that spend a one-time code or send a
    /// message are not retried once the request may have reached WeChat.
    pub idempotent: bool,
    /// Whether a successful answer is an image rather than JSON.
    pub returns_image: bool,
}

/// A successful answer.
pub(crate) enum Reply {
    /// The JSON object, errcode 0 or absent.
    Json(Value),
    Image(Vec<u8>),
}

/// When a failed attempt may be repeated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Retry {
    /// WeChat did not act on the request (busy, or the request never left this host).
    Always,
    /// The request may have been processed (timeout, reset, gateway error).
    IfIdempotent,
    Never,
}

struct Failure {
    error: WeChatError,
    retry: Retry,
}

impl Failure {
    fn fatal(error: WeChatError) -> Failure {
        Failure {
            error,
            retry: Retry::Never,
        }
    }
}

/// The HTTP side of the client, built once and shared by all calls.
pub(crate) struct Http {
    client: reqwest::Client,
    base_url: String,
    max_retries: u32,
}

impl Http {
    pub(crate) fn new(
        base_url: &str,
        timeout: Duration,
        max_retries: u32,
        pool_idle_timeout: Duration,
    ) -> Result<Http, WeChatError> {
        let base_url = base_url.trim_end_matches('/').to_owned();
        reqwest::Url::parse(&base_url)
            .map_err(|e| WeChatError::InvalidConfig(format!("base url {base_url:?}: {e}")))?;
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout)
            .pool_idle_timeout(pool_idle_timeout)
            .build()
            .map_err(|e| WeChatError::InvalidConfig(format!("http client: {}", describe(&e))))?;
        Ok(Http {
            client,
            base_url,
            max_retries,
        })
    }

    pub(crate) fn base_url(&self) -> &str {
        &self.base_url
    }

    /// Sends `call`, retrying with exponential backoff while the failure allows it.
    pub(crate) async fn call(&self, call: &Call<'_>) -> Result<Reply, WeChatError> {
        let backoff = ExponentialBuilder::new()
            .with_min_delay(MIN_RETRY_DELAY)
            .with_max_delay(MAX_RETRY_DELAY)
            .with_max_times(usize::try_from(self.max_retries).unwrap_or(usize::MAX))
            .with_jitter()
            // Without a seed every process would jitter identically, defeating its purpose.
            .with_jitter_seed(rand::random());
        (|| self.attempt(call))
            .retry(backoff)
            .when(|failure: &Failure| match failure.retry {
                Retry::Always => true,
                Retry::IfIdempotent => call.idempotent,
                Retry::Never => false,
            })
            .notify(|failure: &Failure, delay: Duration| {
                tracing::debug!(
                    endpoint = call.endpoint,
                    error = %failure.error,
                    delay_ms = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX),
                    "retrying wechat call"
                );
            })
            .await
            .map_err(|failure| failure.error)
    }

    async fn attempt(&self, call: &Call<'_>) -> Result<Reply, Failure> {
        let started = Instant::now();
        let result = self.round_trip(call).await;
        let latency_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
        match &result {
            Ok(_) => tracing::debug!(
                endpoint = call.endpoint,
                errcode = 0,
                latency_ms,
                "wechat call"
            ),
            Err(Failure { error, .. }) => match error.errcode() {
                Some(errcode) => {
                    tracing::debug!(endpoint = call.endpoint, errcode, latency_ms, "wechat call")
                }
                None => tracing::debug!(
                    endpoint = call.endpoint,
                    error = %error,
                    latency_ms,
                    "wechat call failed"
                ),
            },
        }
        result
    }

    async fn round_trip(&self, call: &Call<'_>) -> Result<Reply, Failure> {
        let url = format!("{}{}", self.base_url, call.path);
        let mut request = self.client.request(call.method.clone(), url);
        if !call.query.is_empty() {
            request = request.query(call.query);
        }
        if let Some(body) = call.body {
            request = request.json(body);
        }
        let response = request.send().await.map_err(transport_failure)?;

        let status = response.status();
        if status.is_server_error() || status == StatusCode::TOO_MANY_REQUESTS {
            return Err(Failure {
                error: WeChatError::Transport(format!("{} answered HTTP {status}", call.endpoint)),
                retry: Retry::IfIdempotent,
            });
        }
        if !status.is_success() {
            return Err(Failure::fatal(WeChatError::UnexpectedResponse(format!(
                "{} answered HTTP {status}",
                call.endpoint
            ))));
        }
        let content_type = response
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_ascii_lowercase();
        let body = response.bytes().await.map_err(transport_failure)?;

        if content_type.starts_with("image/") {
            if !call.returns_image {
                return Err(Failure::fatal(WeChatError::UnexpectedResponse(format!(
                    "{} answered {content_type} instead of JSON",
                    call.endpoint
                ))));
            }
            if body.is_empty() {
                return Err(Failure::fatal(WeChatError::UnexpectedResponse(format!(
                    "{} answered an empty image",
                    call.endpoint
                ))));
            }
            return Ok(Reply::Image(body.to_vec()));
        }

        // WeChat labels JSON as text/plain on several endpoints, so the body decides, not the
        // header.
        let json: Value = serde_json::from_slice(&body).map_err(|_| {
            Failure::fatal(WeChatError::UnexpectedResponse(format!(
                "{} answered {} that is not JSON",
                call.endpoint,
                if content_type.is_empty() {
                    "a body"
                } else {
                    &content_type
                }
            )))
        })?;
        if !json.is_object() {
            return Err(Failure::fatal(WeChatError::UnexpectedResponse(format!(
                "{} answered JSON that is not an object",
                call.endpoint
            ))));
        }
        match json.get("errcode") {
            None | Some(Value::Null) => {}
            Some(code) => {
                let Some(errcode) = code.as_i64() else {
                    return Err(Failure::fatal(WeChatError::UnexpectedResponse(format!(
                        "{} answered a non-integer errcode",
                        call.endpoint
                    ))));
                };
                if errcode != 0 {
                    let errmsg = json
                        .get("errmsg")
                        .and_then(Value::as_str)
                        .unwrap_or_default();
                    let error = WeChatError::from_errcode(errcode, errmsg);
                    let retry = if matches!(error, WeChatError::Busy) {
                        Retry::Always
                    } else {
                        Retry::Never
                    };
                    return Err(Failure { error, retry });
                }
            }
        }
        if call.returns_image {
            return Err(Failure::fatal(WeChatError::UnexpectedResponse(format!(
                "{} answered JSON without an error instead of an image",
                call.endpoint
            ))));
        }
        Ok(Reply::Json(json))
    }
}

/// Classifies a reqwest failure by whether the request can have reached WeChat.
fn transport_failure(error: reqwest::Error) -> Failure {
    // The URL carries the secret or the access token in its query string.
    let error = error.without_url();
    if error.is_builder() {
        return Failure::fatal(WeChatError::InvalidConfig(describe(&error)));
    }
    let retry = if error.is_connect() {
        Retry::Always
    } else {
        Retry::IfIdempotent
    };
    Failure {
        error: WeChatError::Transport(describe(&error)),
        retry,
    }
}

/// The error with its causes, e.g. "error sending request: client error (Connect): tcp connect
/// error: Connection refused".
fn describe(error: &reqwest::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}
