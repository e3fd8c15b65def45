//! [`WeChatClient`], the HTTP implementation of [`WeChatApi`].

use std::fmt;

use reqwest::Method;
use scantag_cache::Cache;
use secrecy::{ExposeSecret, SecretString};
use serde_json::{Map, Value, json};

use super::error::WeChatError;
use super::http::{Call, Http, Reply};
use super::token::TokenStore;
use super::{PhoneInfo, QrCodeRequest, SubscribeMessage, WeChatApi, WeChatConfig, WeChatSession};

/// Talks to the WeChat server APIs as one mini-program. Build one per process and share it.
pub struct WeChatClient {
    appid: String,
    secret: SecretString,
    http: Http,
    tokens: TokenStore,
}

impl fmt::Debug for WeChatClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WeChatClient")
            .field("appid", &self.appid)
            .field("base_url", &self.http.base_url())
            .finish_non_exhaustive()
    }
}

impl WeChatClient {
    /// Builds the client; `cache` shares the access token with the other processes using the
    /// same cache.
    pub fn new(config: WeChatConfig, cache: Cache) -> Result<WeChatClient, WeChatError> {
        if config.appid.is_empty() {
            return Err(WeChatError::InvalidConfig("appid is empty".to_owned()));
        }
        let http = Http::new(
            &config.base_url,
            config.timeout,
            config.max_retries,
            config.pool_idle_timeout,
        )?;
        let tokens = TokenStore::new(&config.appid, config.secret.clone(), cache);
        Ok(WeChatClient {
            appid: config.appid,
            secret: config.secret,
            http,
            tokens,
        })
    }

    /// POSTs `body` to an endpoint that takes the access token in its query string. When WeChat
    /// rejects the token, replaces it and tries once more: the rejection happens before the
    /// endpoint acts, so even a one-time code or a message is not spent twice.
    async fn post_with_token(
        &self,
        endpoint: &'static str,
        path: &'static str,
        body: &Value,
        idempotent: bool,
        returns_image: bool,
    ) -> Result<Reply, WeChatError> {
        let call = |token| Call {
            endpoint,
            method: Method::POST,
            path,
            query: token,
            body: Some(body),
            idempotent,
            returns_image,
        };
        let token = self.tokens.current(&self.http).await?;
        match self.http.call(&call(&[("access_token", &token)])).await {
            Err(error) if error.is_access_token_rejection() => {
                tracing::info!(
                    endpoint,
                    errcode = error.errcode(),
                    "access token rejected; replacing it and retrying once"
                );
                let fresh = self.tokens.replace_rejected(&self.http, &token).await?;
                self.http.call(&call(&[("access_token", &fresh)])).await
            }
            other => other,
        }
    }
}

fn json_reply(endpoint: &str, reply: Reply) -> Result<Value, WeChatError> {
    match reply {
        Reply::Json(json) => Ok(json),
        Reply::Image(_) => Err(WeChatError::UnexpectedResponse(format!(
            "{endpoint} answered an image"
        ))),
    }
}

fn required_str(json: &Value, field: &str, endpoint: &str) -> Result<String, WeChatError> {
    json.get(field)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .ok_or_else(|| WeChatError::UnexpectedResponse(format!("{endpoint} answered no {field}")))
}

/// WeChat documents `countryCode` as a string, but a number is accepted too.
fn country_code(value: Option<&Value>) -> Option<String> {
    match value? {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

#[async_trait::async_trait]
impl WeChatApi for WeChatClient {
    async fn code_to_session(&self, js_code: &str) -> Result<WeChatSession, WeChatError> {
        const ENDPOINT: &str = "jscode2session";
        let query = [
            ("appid", self.appid.as_str()),
            ("secret", self.secret.expose_secret()),
            ("js_code", js_code),
            ("grant_type", "authorization_code"),
        ];
        let reply = self
            .http
            .call(&Call {
                endpoint: ENDPOINT,
                method: Method::GET,
                path: "/sns/jscode2session",
                query: &query,
                body: None,
                idempotent: false,
                returns_image: false,
            })
            .await?;
        let json = json_reply(ENDPOINT, reply)?;
        Ok(WeChatSession {
            openid: required_str(&json, "openid", ENDPOINT)?,
            unionid: json
                .get("unionid")
                .and_then(Value::as_str)
                .filter(|s| !s.is_empty())
                .map(str::to_owned),
            session_key: SecretString::from(required_str(&json, "session_key", ENDPOINT)?),
        })
    }

    async fn phone_number(&self, code: &str) -> Result<PhoneInfo, WeChatError> {
        const ENDPOINT: &str = "getuserphonenumber";
        let body = json!({ "code": code });
        let reply = self
            .post_with_token(
                ENDPOINT,
                "/wxa/business/getuserphonenumber",
                &body,
                false,
                false,
            )
            .await?;
        let json = json_reply(ENDPOINT, reply)?;
        let info = json.get("phone_info").ok_or_else(|| {
            WeChatError::UnexpectedResponse(format!("{ENDPOINT} answered no phone_info"))
        })?;
        Ok(PhoneInfo {
            phone_number: required_str(info, "phoneNumber", ENDPOINT)?,
            pure_phone_number: required_str(info, "purePhoneNumber", ENDPOINT)?,
            country_code: country_code(info.get("countryCode")).ok_or_else(|| {
                WeChatError::UnexpectedResponse(format!("{ENDPOINT} answered no countryCode"))
            })?,
        })
    }

    async fn qr_code_unlimited(&self, request: &QrCodeRequest) -> Result<Vec<u8>, WeChatError> {
        const ENDPOINT: &str = "getwxacodeunlimit";
        let mut body = Map::new();
        body.insert("scene".to_owned(), json!(request.scene));
        if let Some(page) = &request.page {
            body.insert("page".to_owned(), json!(page));
        }
        if let Some(width) = request.width {
            body.insert("width".to_owned(), json!(width));
        }
        if let Some(env_version) = &request.env_version {
            body.insert("env_version".to_owned(), json!(env_version.as_str()));
        }
        if let Some(check_path) = request.check_path {
            body.insert("check_path".to_owned(), json!(check_path));
        }
        let reply = self
            .post_with_token(
                ENDPOINT,
                "/wxa/getwxacodeunlimit",
                &Value::Object(body),
                true,
                true,
            )
            .await?;
        match reply {
            Reply::Image(bytes) => Ok(bytes),
            Reply::Json(_) => Err(WeChatError::UnexpectedResponse(format!(
                "{ENDPOINT} answered JSON instead of an image"
            ))),
        }
    }

    async fn send_subscribe_message(&self, message: &SubscribeMessage) -> Result<i64, WeChatError> {
        const ENDPOINT: &str = "subscribe_send";
        let mut body = Map::new();
        body.insert("touser".to_owned(), json!(message.touser));
        body.insert("template_id".to_owned(), json!(message.template_id));
        if let Some(page) = &message.page {
            body.insert("page".to_owned(), json!(page));
        }
        body.insert("data".to_owned(), message.data.clone());
        if let Some(state) = &message.miniprogram_state {
            body.insert("miniprogram_state".to_owned(), json!(state));
        }
        if let Some(lang) = &message.lang {
            body.insert("lang".to_owned(), json!(lang));
        }
        let reply = self
            .post_with_token(
                ENDPOINT,
                "/cgi-bin/message/subscribe/send",
                &Value::Object(body),
                false,
                false,
            )
            .await?;
        let json = json_reply(ENDPOINT, reply)?;
        json.get("msgid")
            .and_then(Value::as_i64)
            .ok_or_else(|| WeChatError::UnexpectedResponse(format!("{ENDPOINT} answered no msgid")))
    }
}
