//! Shared in-memory state of the mock: configuration, minted codes, issued
//! access tokens, queued faults, recorded subscribe messages and call counters.
//!
//! The WeChat-facing logic lives here as plain methods so that the HTTP layer
//! only translates requests and responses.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use rand::Rng;
use serde::Serialize;

/// Characters of login codes, phone codes and access tokens.
const ALPHANUMERIC: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
/// Characters of generated openids (real openids are URL-safe base64).
const URL_SAFE: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/// Settings of one mock instance.
#[derive(Debug, Clone)]
pub struct MockConfig {
    /// The only appid the mock accepts.
    pub appid: String,
    /// The only app secret the mock accepts.
    pub secret: String,
    /// Lifetime of login and phone codes minted without an explicit ttl.
    pub code_ttl: Duration,
    /// Lifetime of issued access tokens; also reported as `expires_in`.
    pub token_ttl: Duration,
}

impl Default for MockConfig {
    fn default() -> Self {
        Self {
            appid: "wxmockappid00000".to_owned(),
            secret: "mock-app-secret".to_owned(),
            code_ttl: Duration::from_secs(300),
            token_ttl: Duration::from_secs(7200),
        }
    }
}

/// A login code ready to be passed to `jscode2session`, with the identity it
/// resolves to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MintedCode {
    pub code: String,
    pub openid: String,
    pub unionid: Option<String>,
}

/// The WeChat APIs the mock serves, as named by fault injection and call
/// statistics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Endpoint {
    Jscode2session,
    Token,
    GetWxaCodeUnlimit,
    GetUserPhoneNumber,
    SubscribeSend,
}

impl Endpoint {
    pub(crate) const ALL: [Endpoint; 5] = [
        Endpoint::Jscode2session,
        Endpoint::Token,
        Endpoint::GetWxaCodeUnlimit,
        Endpoint::GetUserPhoneNumber,
        Endpoint::SubscribeSend,
    ];

    pub(crate) fn name(self) -> &'static str {
        match self {
            Endpoint::Jscode2session => "jscode2session",
            Endpoint::Token => "token",
            Endpoint::GetWxaCodeUnlimit => "getwxacodeunlimit",
            Endpoint::GetUserPhoneNumber => "getuserphonenumber",
            Endpoint::SubscribeSend => "subscribe_send",
        }
    }

    pub(crate) fn parse(name: &str) -> Option<Endpoint> {
        Endpoint::ALL.into_iter().find(|e| e.name() == name)
    }
}

/// Returned when a fault names an endpoint the mock does not serve.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownEndpoint(pub String);

impl fmt::Display for UnknownEndpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "unknown endpoint {:?}; expected one of jscode2session, token, getwxacodeunlimit, \
             getuserphonenumber, subscribe_send or *",
            self.0
        )
    }
}

impl std::error::Error for UnknownEndpoint {}

/// A WeChat business error, answered as HTTP 200 `{"errcode", "errmsg"}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct WxError {
    pub(crate) errcode: i64,
    pub(crate) errmsg: String,
}

impl WxError {
    pub(crate) fn new(errcode: i64, errmsg: &str) -> Self {
        Self {
            errcode,
            errmsg: errmsg.to_owned(),
        }
    }

    pub(crate) fn invalid_args() -> Self {
        Self::new(40097, "invalid args")
    }

    pub(crate) fn data_format() -> Self {
        Self::new(47001, "data format error")
    }

    fn invalid_appid() -> Self {
        Self::new(40013, "invalid appid")
    }

    fn invalid_secret() -> Self {
        Self::new(40125, "invalid appsecret")
    }

    fn invalid_code() -> Self {
        Self::new(40029, "invalid code")
    }
}

/// What `jscode2session` answers for a valid code.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Session {
    pub(crate) openid: String,
    pub(crate) session_key: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) unionid: Option<String>,
}

/// A freshly issued (or reused) access token.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct IssuedToken {
    pub(crate) access_token: String,
    pub(crate) expires_in: u64,
}

/// The phone number a phone code resolves to.
#[derive(Debug, Clone)]
pub(crate) struct PhoneNumber {
    pub(crate) pure_phone_number: String,
    pub(crate) country_code: String,
}

/// A subscribe message accepted by `subscribe/send`.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct SentMessage {
    pub(crate) msgid: u64,
    pub(crate) touser: String,
    pub(crate) template_id: String,
    pub(crate) page: Option<String>,
    pub(crate) data: serde_json::Value,
    pub(crate) miniprogram_state: Option<String>,
    pub(crate) lang: Option<String>,
    pub(crate) received_at: DateTime<Utc>,
}

#[derive(Debug)]
struct LoginCode {
    openid: String,
    unionid: Option<String>,
    expires_at: Instant,
    used: bool,
}

#[derive(Debug)]
struct PhoneCode {
    phone: PhoneNumber,
    expires_at: Instant,
    used: bool,
}

/// Which API issued a token: the two kinds are independent, as on the real
/// servers, so refreshing one never invalidates the other.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TokenKind {
    Regular,
    Stable,
}

#[derive(Debug)]
struct TokenRecord {
    kind: TokenKind,
    expires_at: Instant,
}

#[derive(Debug)]
struct Fault {
    /// `None` matches every endpoint.
    endpoint: Option<Endpoint>,
    error: WxError,
    remaining: u32,
}

#[derive(Debug)]
struct Inner {
    config: MockConfig,
    login_codes: HashMap<String, LoginCode>,
    phone_codes: HashMap<String, PhoneCode>,
    /// Only currently valid or expired tokens; superseded ones are removed so
    /// they answer "invalid credential" like unknown ones.
    tokens: HashMap<String, TokenRecord>,
    stable_token: Option<String>,
    faults: Vec<Fault>,
    messages: Vec<SentMessage>,
    next_msgid: u64,
    calls: HashMap<Endpoint, u64>,
}

/// Cheaply clonable handle to the state of one mock instance.
#[derive(Debug, Clone)]
pub struct MockState {
    inner: Arc<Mutex<Inner>>,
}

impl MockState {
    pub fn new(config: MockConfig) -> Self {
        Self {
            inner: Arc::new(Mutex::new(Inner {
                config,
                login_codes: HashMap::new(),
                phone_codes: HashMap::new(),
                tokens: HashMap::new(),
                stable_token: None,
                faults: Vec::new(),
                messages: Vec::new(),
                next_msgid: 1,
                calls: HashMap::new(),
            })),
        }
    }

    /// A poisoned lock only means a handler panicked mid-update; the maps are
    /// still usable, and a mock should keep answering rather than cascade.
    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The configuration this instance was created with.
    pub fn config(&self) -> MockConfig {
        self.lock().config.clone()
    }

    /// Mints a single-use login code valid for `config.code_ttl`. Without an
    /// openid a fresh random one is generated.
    pub fn mint_login_code(&self, openid: Option<String>, unionid: Option<String>) -> MintedCode {
        let ttl = self.lock().config.code_ttl;
        self.mint_login_code_with_ttl(openid, unionid, ttl)
    }

    /// Mints a single-use login code valid for `ttl` (zero yields a code that
    /// is already expired).
    pub fn mint_login_code_with_ttl(
        &self,
        openid: Option<String>,
        unionid: Option<String>,
        ttl: Duration,
    ) -> MintedCode {
        let openid = openid.unwrap_or_else(random_openid);
        let code = random_string(32, ALPHANUMERIC);
        self.lock().login_codes.insert(
            code.clone(),
            LoginCode {
                openid: openid.clone(),
                unionid: unionid.clone(),
                expires_at: Instant::now() + ttl,
                used: false,
            },
        );
        MintedCode {
            code,
            openid,
            unionid,
        }
    }

    /// Mints a single-use code for `getuserphonenumber`, valid for
    /// `config.code_ttl`.
    pub fn mint_phone_code(&self, phone_number: &str, country_code: &str) -> String {
        let ttl = self.lock().config.code_ttl;
        self.mint_phone_code_with_ttl(phone_number, country_code, ttl)
    }

    /// Mints a single-use code for `getuserphonenumber`, valid for `ttl`.
    pub fn mint_phone_code_with_ttl(
        &self,
        phone_number: &str,
        country_code: &str,
        ttl: Duration,
    ) -> String {
        let code = random_string(32, ALPHANUMERIC);
        self.lock().phone_codes.insert(
            code.clone(),
            PhoneCode {
                phone: PhoneNumber {
                    pure_phone_number: phone_number.to_owned(),
                    country_code: country_code.to_owned(),
                },
                expires_at: Instant::now() + ttl,
                used: false,
            },
        );
        code
    }

    /// Makes the next `count` calls to `endpoint` (or to every endpoint for
    /// `"*"`) fail with `errcode` and its usual message.
    ///
    /// # Panics
    ///
    /// Panics on an endpoint name the mock does not serve, so that a typo in a
    /// test fails loudly instead of silently injecting nothing. Use
    /// [`MockState::try_inject_fault`] to handle that case.
    pub fn inject_fault(&self, endpoint: &str, errcode: i64, count: u32) {
        if let Err(err) = self.try_inject_fault(endpoint, errcode, None, count) {
            panic!("inject_fault: {err}");
        }
    }

    /// Like [`MockState::inject_fault`], with an optional custom `errmsg`,
    /// reporting unknown endpoint names as an error.
    pub fn try_inject_fault(
        &self,
        endpoint: &str,
        errcode: i64,
        errmsg: Option<String>,
        count: u32,
    ) -> Result<(), UnknownEndpoint> {
        let target = if endpoint == "*" {
            None
        } else {
            Some(Endpoint::parse(endpoint).ok_or_else(|| UnknownEndpoint(endpoint.to_owned()))?)
        };
        if count == 0 {
            return Ok(());
        }
        let errmsg = errmsg.unwrap_or_else(|| default_errmsg(errcode).to_owned());
        self.lock().faults.push(Fault {
            endpoint: target,
            error: WxError { errcode, errmsg },
            remaining: count,
        });
        Ok(())
    }

    /// Drops every queued fault.
    pub fn clear_faults(&self) {
        self.lock().faults.clear();
    }

    /// Subscribe messages accepted so far, oldest first, in the JSON shape of
    /// `GET /__mock/messages`.
    pub fn sent_messages(&self) -> Vec<serde_json::Value> {
        self.lock()
            .messages
            .iter()
            .map(|m| serde_json::to_value(m).unwrap_or(serde_json::Value::Null))
            .collect()
    }

    /// Forgets every recorded subscribe message.
    pub fn clear_messages(&self) {
        self.lock().messages.clear();
    }

    /// Expires every issued access token: their next use answers 42001 and
    /// `stable_token` issues a new one.
    pub fn expire_access_tokens(&self) {
        let now = Instant::now();
        for record in self.lock().tokens.values_mut() {
            record.expires_at = now;
        }
    }

    /// How many requests `endpoint` has received, faulted ones included.
    /// Unknown names count zero.
    pub fn call_count(&self, endpoint: &str) -> u64 {
        Endpoint::parse(endpoint)
            .map(|e| self.lock().calls.get(&e).copied().unwrap_or(0))
            .unwrap_or(0)
    }

    /// Call counters of every endpoint, by name.
    pub fn call_counts(&self) -> Vec<(&'static str, u64)> {
        let inner = self.lock();
        Endpoint::ALL
            .into_iter()
            .map(|e| (e.name(), inner.calls.get(&e).copied().unwrap_or(0)))
            .collect()
    }

    /// Counts a request to `endpoint` and answers a queued fault, if any,
    /// before the request is otherwise looked at.
    pub(crate) fn begin_call(&self, endpoint: Endpoint) -> Result<(), WxError> {
        let mut inner = self.lock();
        *inner.calls.entry(endpoint).or_insert(0) += 1;
        let position = inner
            .faults
            .iter()
            .position(|f| f.remaining > 0 && f.endpoint.is_none_or(|e| e == endpoint));
        let Some(position) = position else {
            return Ok(());
        };
        let fault = &mut inner.faults[position];
        fault.remaining -= 1;
        let error = fault.error.clone();
        if fault.remaining == 0 {
            inner.faults.remove(position);
        }
        tracing::info!(
            endpoint = endpoint.name(),
            errcode = error.errcode,
            "answering injected fault"
        );
        Err(error)
    }

    pub(crate) fn exchange_login_code(
        &self,
        appid: Option<&str>,
        secret: Option<&str>,
        js_code: Option<&str>,
        grant_type: Option<&str>,
    ) -> Result<Session, WxError> {
        let mut inner = self.lock();
        inner.check_credentials(appid, secret)?;
        if grant_type != Some("authorization_code") {
            return Err(WxError::invalid_args());
        }
        let js_code = js_code
            .filter(|c| !c.is_empty())
            .ok_or_else(|| WxError::new(41008, "missing code"))?;
        let entry = inner
            .login_codes
            .get_mut(js_code)
            .ok_or_else(WxError::invalid_code)?;
        if entry.used {
            return Err(WxError::new(40163, "code been used"));
        }
        if Instant::now() >= entry.expires_at {
            return Err(WxError::invalid_code());
        }
        entry.used = true;
        Ok(Session {
            openid: entry.openid.clone(),
            session_key: base64_encode(&random_bytes::<16>()),
            unionid: entry.unionid.clone(),
        })
    }

    /// `/cgi-bin/token`: always a new token, superseding earlier ones from
    /// the same API.
    pub(crate) fn issue_token(
        &self,
        appid: Option<&str>,
        secret: Option<&str>,
        grant_type: Option<&str>,
    ) -> Result<IssuedToken, WxError> {
        let mut inner = self.lock();
        if grant_type != Some("client_credential") {
            return Err(WxError::new(40002, "invalid grant_type"));
        }
        inner.check_credentials(appid, secret)?;
        inner.tokens.retain(|_, r| r.kind != TokenKind::Regular);
        Ok(inner.new_token(TokenKind::Regular))
    }

    /// `/cgi-bin/stable_token`: the current token while it is still valid,
    /// otherwise (or when forced) a new one that supersedes it.
    pub(crate) fn stable_token(
        &self,
        appid: Option<&str>,
        secret: Option<&str>,
        grant_type: Option<&str>,
        force_refresh: bool,
    ) -> Result<IssuedToken, WxError> {
        let mut inner = self.lock();
        if grant_type != Some("client_credential") {
            return Err(WxError::new(40002, "invalid grant_type"));
        }
        inner.check_credentials(appid, secret)?;
        let now = Instant::now();
        if !force_refresh
            && let Some(current) = inner.stable_token.clone()
            && let Some(record) = inner.tokens.get(&current)
            && record.expires_at > now
        {
            let expires_in = record.expires_at.saturating_duration_since(now).as_secs();
            return Ok(IssuedToken {
                access_token: current,
                expires_in,
            });
        }
        if let Some(previous) = inner.stable_token.take() {
            inner.tokens.remove(&previous);
        }
        let issued = inner.new_token(TokenKind::Stable);
        inner.stable_token = Some(issued.access_token.clone());
        Ok(issued)
    }

    /// Validates the `access_token` query parameter of a business API.
    pub(crate) fn check_access_token(&self, token: Option<&str>) -> Result<(), WxError> {
        let inner = self.lock();
        let record = token
            .filter(|t| !t.is_empty())
            .and_then(|t| inner.tokens.get(t))
            .ok_or_else(|| {
                WxError::new(
                    40001,
                    "invalid credential, access_token is invalid or not latest",
                )
            })?;
        if Instant::now() >= record.expires_at {
            return Err(WxError::new(42001, "access_token expired"));
        }
        Ok(())
    }

    pub(crate) fn redeem_phone_code(&self, code: Option<&str>) -> Result<PhoneNumber, WxError> {
        let mut inner = self.lock();
        let code = code
            .filter(|c| !c.is_empty())
            .ok_or_else(|| WxError::new(41008, "missing code"))?;
        let entry = inner
            .phone_codes
            .get_mut(code)
            .ok_or_else(WxError::invalid_code)?;
        if entry.used || Instant::now() >= entry.expires_at {
            return Err(WxError::invalid_code());
        }
        entry.used = true;
        Ok(entry.phone.clone())
    }

    /// Stores a subscribe message and returns its msgid.
    pub(crate) fn record_message(&self, mut message: SentMessage) -> u64 {
        let mut inner = self.lock();
        message.msgid = inner.next_msgid;
        inner.next_msgid += 1;
        let msgid = message.msgid;
        inner.messages.push(message);
        msgid
    }
}

impl Inner {
    fn check_credentials(&self, appid: Option<&str>, secret: Option<&str>) -> Result<(), WxError> {
        if appid != Some(self.config.appid.as_str()) {
            return Err(WxError::invalid_appid());
        }
        if secret != Some(self.config.secret.as_str()) {
            return Err(WxError::invalid_secret());
        }
        Ok(())
    }

    fn new_token(&mut self, kind: TokenKind) -> IssuedToken {
        let access_token = random_string(96, ALPHANUMERIC);
        let ttl = self.config.token_ttl;
        self.tokens.insert(
            access_token.clone(),
            TokenRecord {
                kind,
                expires_at: Instant::now() + ttl,
            },
        );
        IssuedToken {
            access_token,
            expires_in: ttl.as_secs(),
        }
    }
}

/// The message the real servers pair with the error codes tests usually
/// inject.
fn default_errmsg(errcode: i64) -> &'static str {
    match errcode {
        -1 => "system error",
        40001 => "invalid credential, access_token is invalid or not latest",
        40029 => "invalid code",
        40226 => "risky user",
        42001 => "access_token expired",
        45009 => "reach max api daily quota limit",
        45011 => "api minute-quota reach limit mustslower retry next minute",
        _ => "mock fault",
    }
}

pub(crate) fn random_openid() -> String {
    format!("o{}", random_string(27, URL_SAFE))
}

fn random_string(len: usize, alphabet: &[u8]) -> String {
    let mut rng = rand::rng();
    (0..len)
        .map(|_| char::from(alphabet[rng.random_range(0..alphabet.len())]))
        .collect()
}

fn random_bytes<const N: usize>() -> [u8; N] {
    let mut bytes = [0u8; N];
    rand::rng().fill(&mut bytes[..]);
    bytes
}

/// Standard padded base64, the encoding of real session keys.
fn base64_encode(bytes: &[u8]) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[((n >> (18 - 6 * i)) & 0x3f) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_matches_known_vectors() {
        assert_eq!(base64_encode(b""), "");
        assert_eq!(base64_encode(b"f"), "Zg==");
        assert_eq!(base64_encode(b"fo"), "Zm8=");
        assert_eq!(base64_encode(b"foo"), "Zm9v");
        assert_eq!(base64_encode(b"foobar"), "Zm9vYmFy");
        assert_eq!(base64_encode(&[0u8; 16]).len(), 24);
    }

    #[test]
    fn generated_openids_look_real() {
        let openid = random_openid();
        assert_eq!(openid.len(), 28);
        assert!(openid.starts_with('o'));
    }

    #[test]
    fn wildcard_faults_hit_every_endpoint_in_turn() {
        let state = MockState::new(MockConfig::default());
        state.inject_fault("*", -1, 2);
        assert_eq!(
            state.begin_call(Endpoint::Token).map_err(|e| e.errcode),
            Err(-1)
        );
        assert_eq!(
            state
                .begin_call(Endpoint::SubscribeSend)
                .map_err(|e| e.errcode),
            Err(-1)
        );
        assert!(state.begin_call(Endpoint::Token).is_ok());
        assert_eq!(state.call_count("token"), 2);
    }
}
