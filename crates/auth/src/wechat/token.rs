//! The access token: cached in-process and in the shared cache, refreshed by one caller at a
//! time per process and, through a cache lock, per deployment.

use std::time::{Duration, Instant};

use reqwest::Method;
use scantag_cache::Cache;
use secrecy::{ExposeSecret, SecretString};
use serde_json::{Value, json};
use tokio::sync::Mutex;

use super::error::WeChatError;
use super::http::{Call, Http, Reply};

/// Refresh this long before expiry. `stable_token` hands out a new token during the last five
/// minutes of the old one, and the old one stays valid until it expires, so callers holding it
/// are not cut off.
const REFRESH_MARGIN: Duration = Duration::from_secs(300);
/// How long a token read from the shared cache is used before it is read again: the shared
/// entry carries no expiry this process can see, and another process may have replaced it.
const ADOPTED_TOKEN_LIFETIME: Duration = Duration::from_secs(60);
/// How long the cross-process refresh lock lives if its holder dies before releasing it.
const REFRESH_LOCK_TTL: Duration = Duration::from_secs(10);
/// While another process refreshes, poll the shared entry this often, this many times, then
/// fetch regardless so a stuck holder does not stall every request.
const POLL_INTERVAL: Duration = Duration::from_millis(100);
const POLL_ATTEMPTS: u32 = 20;

#[derive(Clone)]
struct LocalToken {
    value: String,
    refresh_at: Instant,
}

impl LocalToken {
    fn is_fresh(&self) -> bool {
        Instant::now() < self.refresh_at
    }

    fn adopted(value: String) -> LocalToken {
        LocalToken {
            value,
            refresh_at: Instant::now() + ADOPTED_TOKEN_LIFETIME,
        }
    }
}

/// Hands out the app's access token.
pub(crate) struct TokenStore {
    appid: String,
    secret: SecretString,
    cache: Cache,
    shared_key: String,
    lock_key: String,
    /// Held for the whole refresh so concurrent callers wait for one fetch instead of each
    /// starting their own.
    local: Mutex<Option<LocalToken>>,
}

impl TokenStore {
    pub(crate) fn new(appid: &str, secret: SecretString, cache: Cache) -> TokenStore {
        TokenStore {
            appid: appid.to_owned(),
            secret,
            cache,
            shared_key: format!("wechat:access_token:{appid}"),
            lock_key: format!("wechat:access_token:lock:{appid}"),
            local: Mutex::new(None),
        }
    }

    /// A token that is not due for refresh.
    pub(crate) async fn current(&self, http: &Http) -> Result<String, WeChatError> {
        let mut local = self.local.lock().await;
        if let Some(token) = local.as_ref().filter(|t| t.is_fresh()) {
            return Ok(token.value.clone());
        }
        if let Some(shared) = self.cache.get_string(&self.shared_key).await {
            let token = LocalToken::adopted(shared);
            *local = Some(token.clone());
            return Ok(token.value);
        }
        let token = self.refresh(http, None).await?;
        *local = Some(token.clone());
        Ok(token.value)
    }

    /// A token other than `rejected`, which WeChat refused (40001/42001): forces WeChat to
    /// issue a new one unless another caller already did.
    pub(crate) async fn replace_rejected(
        &self,
        http: &Http,
        rejected: &str,
    ) -> Result<String, WeChatError> {
        let mut local = self.local.lock().await;
        if let Some(token) = local
            .as_ref()
            .filter(|t| t.is_fresh() && t.value != rejected)
        {
            return Ok(token.value.clone());
        }
        *local = None;
        // Another process may already have stored a replacement, which must survive; the
        // read-then-delete race only costs one extra refresh.
        match self.cache.get_string(&self.shared_key).await {
            Some(shared) if shared == rejected => {
                self.cache.delete(&self.shared_key).await;
            }
            Some(shared) => {
                let token = LocalToken::adopted(shared);
                *local = Some(token.clone());
                return Ok(token.value);
            }
            None => {}
        }
        let token = self.refresh(http, Some(rejected)).await?;
        *local = Some(token.clone());
        Ok(token.value)
    }

    /// Gets a new token, letting one process of the deployment fetch it while the others wait
    /// for it to appear in the shared cache.
    async fn refresh(
        &self,
        http: &Http,
        rejected: Option<&str>,
    ) -> Result<LocalToken, WeChatError> {
        let force = rejected.is_some();
        if self.cache.try_lock(&self.lock_key, REFRESH_LOCK_TTL).await {
            // The previous holder may have stored a token between our read and taking the lock.
            let result = match self.shared_token(rejected).await {
                Some(shared) => Ok(LocalToken::adopted(shared)),
                None => self.fetch_and_share(http, force).await,
            };
            self.cache.unlock(&self.lock_key).await;
            return result;
        }
        for _ in 0..POLL_ATTEMPTS {
            tokio::time::sleep(POLL_INTERVAL).await;
            if let Some(shared) = self.shared_token(rejected).await {
                return Ok(LocalToken::adopted(shared));
            }
        }
        tracing::warn!(
            appid = %self.appid,
            "another process holds the access token refresh lock but stored no token; fetching here"
        );
        self.fetch_and_share(http, force).await
    }

    /// The shared token, unless it is the rejected one.
    async fn shared_token(&self, rejected: Option<&str>) -> Option<String> {
        self.cache
            .get_string(&self.shared_key)
            .await
            .filter(|shared| Some(shared.as_str()) != rejected)
    }

    async fn fetch_and_share(&self, http: &Http, force: bool) -> Result<LocalToken, WeChatError> {
        let body = json!({
            "grant_type": "client_credential",
            "appid": self.appid,
            "secret": self.secret.expose_secret(),
            "force_refresh": force,
        });
        let reply = http
            .call(&Call {
                endpoint: "stable_token",
                method: Method::POST,
                path: "/cgi-bin/stable_token",
                query: &[],
                body: Some(&body),
                idempotent: true,
                returns_image: false,
            })
            .await?;
        let Reply::Json(json) = reply else {
            return Err(WeChatError::UnexpectedResponse(
                "stable_token answered an image".to_owned(),
            ));
        };
        let value = json
            .get("access_token")
            .and_then(Value::as_str)
            .filter(|t| !t.is_empty())
            .ok_or_else(|| {
                WeChatError::UnexpectedResponse("stable_token answered no access_token".to_owned())
            })?
            .to_owned();
        let expires_in = json
            .get("expires_in")
            .and_then(Value::as_u64)
            .filter(|&s| s > 0)
            .ok_or_else(|| {
                WeChatError::UnexpectedResponse("stable_token answered no expires_in".to_owned())
            })?;
        let lifetime = usable_lifetime(Duration::from_secs(expires_in));
        if !lifetime.is_zero() {
            self.cache
                .set(&self.shared_key, value.as_bytes(), lifetime)
                .await;
        }
        tracing::debug!(appid = %self.appid, expires_in, force, "fetched access token");
        Ok(LocalToken {
            value,
            refresh_at: Instant::now() + lifetime,
        })
    }
}

/// How long a token that expires in `expires_in` is used before refreshing: up to the refresh
/// margin, or half its life when it is too short for the margin to make sense.
fn usable_lifetime(expires_in: Duration) -> Duration {
    if expires_in > REFRESH_MARGIN * 2 {
        expires_in - REFRESH_MARGIN
    } else {
        expires_in / 2
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_regular_token_is_refreshed_five_minutes_before_expiry() {
        assert_eq!(
            usable_lifetime(Duration::from_secs(7200)),
            Duration::from_secs(6900)
        );
    }

    #[test]
    fn a_short_lived_token_is_refreshed_at_half_life() {
        assert_eq!(
            usable_lifetime(Duration::from_secs(120)),
            Duration::from_secs(60)
        );
    }
}
