//! The WeChat mini-program server-API client: login code exchange (`jscode2session`), phone
//! number, unlimited QR codes and subscribe messages, with a shared, single-flight access token.
//!
//! [`WeChatApi`] is the seam the rest of the service depends on; [`WeChatClient`] is the HTTP
//! implementation talking to `api.weixin.qq.com` (or a local stand-in in tests).

mod client;
mod error;
mod http;
mod token;

use std::time::Duration;

use secrecy::SecretString;
use serde::Serialize;

pub use client::WeChatClient;
pub use error::WeChatError;

/// Where the real WeChat server APIs live.
pub const DEFAULT_BASE_URL: &str = "https://api.weixin.qq.com";
/// Per-request timeout used by [`WeChatConfig::new`].
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);
/// Retries after the first attempt used by [`WeChatConfig::new`].
pub const DEFAULT_MAX_RETRIES: u32 = 2;
/// Idle connections are dropped after this long: servers close theirs after a few seconds
/// (actix-web and the bundled mock after 5 s), and a request sent on a connection the server
/// is closing at that instant fails without an answer.
pub const DEFAULT_POOL_IDLE_TIMEOUT: Duration = Duration::from_secs(4);

/// How to reach WeChat and as which mini-program.
#[derive(Debug, Clone)]
pub struct WeChatConfig {
    /// Scheme, host and port, without a trailing path, e.g. `https://api.weixin.qq.com`.
    pub base_url: String,
    pub appid: String,
    pub secret: SecretString,
    /// Limit for one HTTP request, connecting included.
    pub timeout: Duration,
    /// How many times a failed call is tried again when retrying is safe.
    pub max_retries: u32,
    /// How long an idle connection is kept for reuse; below the server's idle timeout.
    pub pool_idle_timeout: Duration,
}

impl WeChatConfig {
    /// A configuration for the real WeChat servers with the default timeout and retries.
    pub fn new(appid: impl Into<String>, secret: SecretString) -> WeChatConfig {
        WeChatConfig {
            base_url: DEFAULT_BASE_URL.to_owned(),
            appid: appid.into(),
            secret,
            timeout: DEFAULT_TIMEOUT,
            max_retries: DEFAULT_MAX_RETRIES,
            pool_idle_timeout: DEFAULT_POOL_IDLE_TIMEOUT,
        }
    }
}

/// The result of exchanging a login code.
#[derive(Debug, Clone)]
pub struct WeChatSession {
    pub openid: String,
    /// Present only when the mini-program is bound to an open-platform account.
    pub unionid: Option<String>,
    pub session_key: SecretString,
}

/// A user's phone number as WeChat returns it.
#[derive(Debug, Clone, Serialize)]
pub struct PhoneInfo {
    /// With the country code, e.g. `+86 13800138000` or `13800138000` for mainland numbers.
    pub phone_number: String,
    /// Without the country code.
    pub pure_phone_number: String,
    pub country_code: String,
}

/// Which version of the mini-program a QR code opens.
#[derive(Debug, Clone)]
pub enum EnvVersion {
    Release,
    Trial,
    Develop,
}

impl EnvVersion {
    /// The value WeChat expects in `env_version`.
    pub fn as_str(&self) -> &'static str {
        match self {
            EnvVersion::Release => "release",
            EnvVersion::Trial => "trial",
            EnvVersion::Develop => "develop",
        }
    }
}

/// Parameters of an unlimited mini-program code (`getwxacodeunlimit`).
#[derive(Debug, Clone)]
pub struct QrCodeRequest {
    /// Up to 32 visible characters handed to the page as `scene`.
    pub scene: String,
    /// The page to open, e.g. `pages/index/index`; the home page when absent.
    pub page: Option<String>,
    /// Width in pixels (280 to 1280).
    pub width: Option<u32>,
    pub env_version: Option<EnvVersion>,
    /// Whether WeChat checks that `page` exists in the published version.
    pub check_path: Option<bool>,
}

/// A subscribe message to send (`subscribe/send`).
#[derive(Debug, Clone)]
pub struct SubscribeMessage {
    /// The recipient's openid.
    pub touser: String,
    pub template_id: String,
    /// The page opened when the user taps the message.
    pub page: Option<String>,
    /// Template fields, e.g. `{"thing1": {"value": "..."}}`.
    pub data: serde_json::Value,
    /// `developer`, `trial` or `formal`.
    pub miniprogram_state: Option<String>,
    /// `zh_CN`, `en_US`, `zh_HK` or `zh_TW`.
    pub lang: Option<String>,
}

/// The WeChat server APIs the service uses.
#[async_trait::async_trait]
pub trait WeChatApi: Send + Sync {
    /// Exchanges a `wx.login` code for the user's openid, unionid and session key.
    async fn code_to_session(&self, js_code: &str) -> Result<WeChatSession, WeChatError>;

    /// Exchanges a `getPhoneNumber` code for the user's phone number.
    async fn phone_number(&self, code: &str) -> Result<PhoneInfo, WeChatError>;

    /// Renders an unlimited mini-program code; returns the image bytes (PNG by default).
    async fn qr_code_unlimited(&self, request: &QrCodeRequest) -> Result<Vec<u8>, WeChatError>;

    /// Sends a subscribe message; returns WeChat's message id.
    async fn send_subscribe_message(&self, message: &SubscribeMessage) -> Result<i64, WeChatError>;
}
