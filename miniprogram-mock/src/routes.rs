//! HTTP layer: the WeChat endpoints and the `/__mock/` control API.
//!
//! WeChat endpoints answer business errors as HTTP 200 with
//! `{"errcode", "errmsg"}`, exactly like the real servers; the control API
//! uses ordinary HTTP statuses.

use std::collections::HashMap;
use std::time::Duration;

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, ResponseError, web};
use chrono::Utc;
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use crate::qrcode;
use crate::state::{Endpoint, MockState, SentMessage, WxError, random_openid};

/// Mounts every mock route, with `state` as shared data, so that any actix
/// `App` can host the mock: `App::new().configure(configure(state))`.
pub fn configure(state: MockState) -> impl FnOnce(&mut web::ServiceConfig) {
    move |cfg| {
        cfg.app_data(web::Data::new(state))
            .route("/sns/jscode2session", web::get().to(jscode2session))
            .route("/cgi-bin/token", web::get().to(token))
            .route("/cgi-bin/stable_token", web::post().to(stable_token))
            .route("/wxa/getwxacodeunlimit", web::post().to(getwxacodeunlimit))
            .route(
                "/wxa/business/getuserphonenumber",
                web::post().to(getuserphonenumber),
            )
            .route(
                "/cgi-bin/message/subscribe/send",
                web::post().to(subscribe_send),
            )
            .service(
                web::scope("/__mock")
                    .route("/login-codes", web::post().to(mint_login_code))
                    .route("/phone-codes", web::post().to(mint_phone_code))
                    .route("/faults", web::post().to(inject_fault))
                    .route("/faults", web::delete().to(clear_faults))
                    .route("/messages", web::get().to(list_messages))
                    .route("/messages", web::delete().to(clear_messages))
                    .route("/access-tokens/expire", web::post().to(expire_tokens))
                    .route("/stats", web::get().to(stats)),
            );
    }
}

// ---------------------------------------------------------------------------
// WeChat endpoints
// ---------------------------------------------------------------------------

fn wx_error(err: WxError) -> HttpResponse {
    HttpResponse::Ok().json(json!({ "errcode": err.errcode, "errmsg": err.errmsg }))
}

fn wx_reply<T: serde::Serialize>(result: Result<T, WxError>) -> HttpResponse {
    match result {
        Ok(body) => HttpResponse::Ok().json(body),
        Err(err) => wx_error(err),
    }
}

/// Query parameters; a malformed query string reads as empty, which then
/// fails the usual parameter checks.
fn query(req: &HttpRequest) -> HashMap<String, String> {
    web::Query::<HashMap<String, String>>::from_query(req.query_string())
        .map(web::Query::into_inner)
        .unwrap_or_default()
}

/// Parses a WeChat JSON body; the real servers answer 47001 to anything
/// that is not the expected JSON.
fn wx_body<T: DeserializeOwned>(body: &[u8]) -> Result<T, WxError> {
    serde_json::from_slice(body).map_err(|_| WxError::data_format())
}

/// Counts the call, answers a queued fault, then checks `access_token`.
fn begin_authorized(
    state: &MockState,
    endpoint: Endpoint,
    req: &HttpRequest,
) -> Result<(), WxError> {
    state.begin_call(endpoint)?;
    let params = query(req);
    state.check_access_token(params.get("access_token").map(String::as_str))
}

async fn jscode2session(state: web::Data<MockState>, req: HttpRequest) -> HttpResponse {
    let result = state.begin_call(Endpoint::Jscode2session).and_then(|()| {
        let p = query(&req);
        let get = |k: &str| p.get(k).map(String::as_str);
        state.exchange_login_code(
            get("appid"),
            get("secret"),
            get("js_code"),
            get("grant_type"),
        )
    });
    if let Ok(session) = &result {
        tracing::info!(openid = %session.openid, "login code exchanged");
    }
    wx_reply(result)
}

async fn token(state: web::Data<MockState>, req: HttpRequest) -> HttpResponse {
    wx_reply(state.begin_call(Endpoint::Token).and_then(|()| {
        let p = query(&req);
        let get = |k: &str| p.get(k).map(String::as_str);
        state.issue_token(get("appid"), get("secret"), get("grant_type"))
    }))
}

#[derive(Deserialize)]
struct StableTokenRequest {
    grant_type: Option<String>,
    appid: Option<String>,
    secret: Option<String>,
    #[serde(default)]
    force_refresh: bool,
}

async fn stable_token(state: web::Data<MockState>, body: web::Bytes) -> HttpResponse {
    wx_reply(state.begin_call(Endpoint::Token).and_then(|()| {
        let r: StableTokenRequest = wx_body(&body)?;
        state.stable_token(
            r.appid.as_deref(),
            r.secret.as_deref(),
            r.grant_type.as_deref(),
            r.force_refresh,
        )
    }))
}

#[derive(Deserialize)]
struct WxaCodeRequest {
    scene: Option<String>,
    page: Option<String>,
    // Accepted for fidelity; the mock knows no page list to check against.
    #[allow(dead_code)]
    check_path: Option<bool>,
    env_version: Option<String>,
    width: Option<i64>,
    #[serde(default)]
    auto_color: bool,
    line_color: Option<Value>,
    #[serde(default)]
    is_hyaline: bool,
}

/// Characters WeChat allows in a scene besides ASCII letters and digits.
const SCENE_PUNCTUATION: &str = "!#$&'()*+,/:;=?@-._~";

async fn getwxacodeunlimit(
    state: web::Data<MockState>,
    req: HttpRequest,
    body: web::Bytes,
) -> HttpResponse {
    let result = begin_authorized(&state, Endpoint::GetWxaCodeUnlimit, &req).and_then(|()| {
        let r: WxaCodeRequest = wx_body(&body)?;
        let scene = r.scene.unwrap_or_default();
        if scene.is_empty() || scene.chars().count() > 32 {
            return Err(WxError::new(
                40169,
                "invalid length for scene, or the data is not json string",
            ));
        }
        if !scene
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || SCENE_PUNCTUATION.contains(c))
        {
            return Err(WxError::invalid_args());
        }
        let page = r.page.unwrap_or_default();
        if page.starts_with('/') {
            return Err(WxError::new(41030, "invalid page"));
        }
        if let Some(env) = r.env_version.as_deref()
            && !matches!(env, "release" | "trial" | "develop")
        {
            return Err(WxError::invalid_args());
        }
        let width = match r.width {
            None => 430,
            Some(w) => u32::try_from(w)
                .ok()
                .filter(|w| (280..=1280).contains(w))
                .ok_or_else(WxError::invalid_args)?,
        };
        let line_color = if r.auto_color {
            Some(qrcode::auto_color(&scene, &page))
        } else {
            r.line_color.as_ref().map(parse_color)
        };
        let style = qrcode::Style {
            width,
            line_color,
            hyaline: r.is_hyaline,
        };
        qrcode::render(&scene, &page, style).map_err(|err| {
            tracing::error!(%err, "PNG encoding failed");
            WxError::new(-1, "system error")
        })
    });
    match result {
        Ok(png) => HttpResponse::Ok().content_type("image/png").body(png),
        Err(err) => wx_error(err),
    }
}

/// Reads `{"r","g","b"}` whose channels may be numbers or numeric strings,
/// as WeChat accepts both; anything unreadable falls back to black.
fn parse_color(value: &Value) -> [u8; 3] {
    let channel = |key: &str| -> u8 {
        match value.get(key) {
            Some(Value::Number(n)) => n.as_u64().and_then(|n| u8::try_from(n).ok()),
            Some(Value::String(s)) => s.trim().parse().ok(),
            _ => None,
        }
        .unwrap_or(0)
    };
    [channel("r"), channel("g"), channel("b")]
}

#[derive(Deserialize)]
struct PhoneNumberRequest {
    code: Option<String>,
}

async fn getuserphonenumber(
    state: web::Data<MockState>,
    req: HttpRequest,
    body: web::Bytes,
) -> HttpResponse {
    let result = begin_authorized(&state, Endpoint::GetUserPhoneNumber, &req).and_then(|()| {
        let r: PhoneNumberRequest = wx_body(&body)?;
        state.redeem_phone_code(r.code.as_deref())
    });
    match result {
        Ok(phone) => {
            // Mainland numbers come back bare; others carry their country code.
            let full = if phone.country_code == "86" {
                phone.pure_phone_number.clone()
            } else {
                format!("+{}{}", phone.country_code, phone.pure_phone_number)
            };
            HttpResponse::Ok().json(json!({
                "errcode": 0,
                "errmsg": "ok",
                "phone_info": {
                    "phoneNumber": full,
                    "purePhoneNumber": phone.pure_phone_number,
                    "countryCode": phone.country_code,
                    "watermark": {
                        "timestamp": Utc::now().timestamp(),
                        "appid": state.config().appid,
                    },
                },
            }))
        }
        Err(err) => wx_error(err),
    }
}

#[derive(Deserialize)]
struct SubscribeRequest {
    touser: Option<String>,
    template_id: Option<String>,
    page: Option<String>,
    data: Option<Value>,
    miniprogram_state: Option<String>,
    lang: Option<String>,
}

async fn subscribe_send(
    state: web::Data<MockState>,
    req: HttpRequest,
    body: web::Bytes,
) -> HttpResponse {
    let result = begin_authorized(&state, Endpoint::SubscribeSend, &req).and_then(|()| {
        let r: SubscribeRequest = wx_body(&body)?;
        let touser = r
            .touser
            .filter(|t| !t.is_empty())
            .ok_or_else(|| WxError::new(40003, "invalid openid"))?;
        let template_id = r
            .template_id
            .filter(|t| !t.is_empty())
            .ok_or_else(|| WxError::new(40037, "invalid template_id"))?;
        let data = r
            .data
            .filter(Value::is_object)
            .ok_or_else(WxError::data_format)?;
        Ok(state.record_message(SentMessage {
            msgid: 0,
            touser,
            template_id,
            page: r.page,
            data,
            miniprogram_state: r.miniprogram_state,
            lang: r.lang,
            received_at: Utc::now(),
        }))
    });
    match result {
        Ok(msgid) => {
            HttpResponse::Ok().json(json!({ "errcode": 0, "errmsg": "ok", "msgid": msgid }))
        }
        Err(err) => wx_error(err),
    }
}

// ---------------------------------------------------------------------------
// Control API
// ---------------------------------------------------------------------------

/// A rejected control request, answered as `{"error": message}`.
#[derive(Debug)]
struct ControlError {
    status: StatusCode,
    message: String,
}

impl ControlError {
    fn unprocessable(message: impl Into<String>) -> Self {
        Self {
            status: StatusCode::UNPROCESSABLE_ENTITY,
            message: message.into(),
        }
    }
}

impl std::fmt::Display for ControlError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl ResponseError for ControlError {
    fn status_code(&self) -> StatusCode {
        self.status
    }

    fn error_response(&self) -> HttpResponse {
        HttpResponse::build(self.status).json(json!({ "error": self.message }))
    }
}

/// Parses a control body: an empty body means "all defaults", malformed JSON
/// is a 400 and well-formed JSON of the wrong shape a 422.
fn control_body<T: DeserializeOwned>(body: &[u8]) -> Result<T, ControlError> {
    let body = if body.iter().all(u8::is_ascii_whitespace) {
        b"{}".as_slice()
    } else {
        body
    };
    let value: Value = serde_json::from_slice(body).map_err(|err| ControlError {
        status: StatusCode::BAD_REQUEST,
        message: format!("malformed JSON: {err}"),
    })?;
    serde_json::from_value(value).map_err(|err| ControlError::unprocessable(err.to_string()))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LoginCodeRequest {
    openid: Option<String>,
    unionid: Option<String>,
    ttl_secs: Option<u64>,
}

async fn mint_login_code(
    state: web::Data<MockState>,
    body: web::Bytes,
) -> Result<HttpResponse, ControlError> {
    let r: LoginCodeRequest = control_body(&body)?;
    if r.openid.as_deref().is_some_and(str::is_empty) {
        return Err(ControlError::unprocessable("openid must not be empty"));
    }
    let ttl = r
        .ttl_secs
        .map_or_else(|| state.config().code_ttl, Duration::from_secs);
    let openid = Some(r.openid.unwrap_or_else(random_openid));
    let minted = state.mint_login_code_with_ttl(openid, r.unionid, ttl);
    Ok(HttpResponse::Ok().json(json!({
        "code": minted.code,
        "openid": minted.openid,
        "unionid": minted.unionid,
        "expires_in": ttl.as_secs(),
    })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PhoneCodeRequest {
    phone_number: String,
    country_code: Option<String>,
    ttl_secs: Option<u64>,
}

async fn mint_phone_code(
    state: web::Data<MockState>,
    body: web::Bytes,
) -> Result<HttpResponse, ControlError> {
    let r: PhoneCodeRequest = control_body(&body)?;
    let digits = |s: &str| !s.is_empty() && s.chars().all(|c| c.is_ascii_digit());
    if !digits(&r.phone_number) {
        return Err(ControlError::unprocessable(
            "phone_number must be a non-empty string of digits",
        ));
    }
    let country_code = r.country_code.unwrap_or_else(|| "86".to_owned());
    if !digits(&country_code) {
        return Err(ControlError::unprocessable(
            "country_code must be a non-empty string of digits",
        ));
    }
    let ttl = r
        .ttl_secs
        .map_or_else(|| state.config().code_ttl, Duration::from_secs);
    let code = state.mint_phone_code_with_ttl(&r.phone_number, &country_code, ttl);
    Ok(HttpResponse::Ok().json(json!({ "code": code, "expires_in": ttl.as_secs() })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FaultRequest {
    endpoint: String,
    errcode: i64,
    errmsg: Option<String>,
    count: u32,
}

async fn inject_fault(
    state: web::Data<MockState>,
    body: web::Bytes,
) -> Result<HttpResponse, ControlError> {
    let r: FaultRequest = control_body(&body)?;
    if r.errcode == 0 {
        return Err(ControlError::unprocessable(
            "errcode 0 means success and cannot be injected",
        ));
    }
    if r.count == 0 {
        return Err(ControlError::unprocessable("count must be at least 1"));
    }
    state
        .try_inject_fault(&r.endpoint, r.errcode, r.errmsg, r.count)
        .map_err(|err| ControlError::unprocessable(err.to_string()))?;
    Ok(HttpResponse::NoContent().finish())
}

async fn clear_faults(state: web::Data<MockState>) -> HttpResponse {
    state.clear_faults();
    HttpResponse::NoContent().finish()
}

async fn list_messages(state: web::Data<MockState>) -> HttpResponse {
    HttpResponse::Ok().json(state.sent_messages())
}

async fn clear_messages(state: web::Data<MockState>) -> HttpResponse {
    state.clear_messages();
    HttpResponse::NoContent().finish()
}

async fn expire_tokens(state: web::Data<MockState>) -> HttpResponse {
    state.expire_access_tokens();
    HttpResponse::NoContent().finish()
}

async fn stats(state: web::Data<MockState>) -> HttpResponse {
    let calls: serde_json::Map<String, Value> = state
        .call_counts()
        .into_iter()
        .map(|(name, n)| (name.to_owned(), Value::from(n)))
        .collect();
    HttpResponse::Ok().json(json!({ "calls": calls }))
}
