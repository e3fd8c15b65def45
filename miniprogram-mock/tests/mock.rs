//! Black-box tests: a mock on a free port, driven over HTTP like the scantag
//! server drives the real WeChat APIs.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use miniprogram_mock::{MockConfig, MockServer};
use reqwest::{Client, StatusCode};
use serde_json::{Value, json};

const PNG_SIGNATURE: &[u8] = b"\x89PNG\r\n\x1a\n";

struct Harness {
    server: MockServer,
    http: Client,
    config: MockConfig,
}

impl Harness {
    async fn start() -> Self {
        let config = MockConfig::default();
        let server = MockServer::start("127.0.0.1:0", config.clone())
            .await
            .unwrap();
        Harness {
            server,
            http: Client::new(),
            config,
        }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.server.base_url())
    }

    async fn get(&self, path: &str, query: &[(&str, &str)]) -> Value {
        let resp = self
            .http
            .get(self.url(path))
            .query(query)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::OK, "WeChat errors are HTTP 200");
        resp.json().await.unwrap()
    }

    async fn post(&self, path: &str, body: Value) -> reqwest::Response {
        self.http
            .post(self.url(path))
            .json(&body)
            .send()
            .await
            .unwrap()
    }

    async fn post_json(&self, path: &str, body: Value) -> Value {
        let resp = self.post(path, body).await;
        assert_eq!(resp.status(), StatusCode::OK, "WeChat errors are HTTP 200");
        resp.json().await.unwrap()
    }

    async fn exchange(&self, code: &str) -> Value {
        self.get(
            "/sns/jscode2session",
            &[
                ("appid", &self.config.appid),
                ("secret", &self.config.secret),
                ("js_code", code),
                ("grant_type", "authorization_code"),
            ],
        )
        .await
    }

    async fn stable_token(&self, force_refresh: bool) -> Value {
        self.post_json(
            "/cgi-bin/stable_token",
            json!({
                "grant_type": "client_credential",
                "appid": self.config.appid,
                "secret": self.config.secret,
                "force_refresh": force_refresh,
            }),
        )
        .await
    }

    async fn access_token(&self) -> String {
        let body = self.stable_token(false).await;
        body["access_token"].as_str().unwrap().to_owned()
    }

    async fn call_with_token(&self, path: &str, token: &str, body: Value) -> reqwest::Response {
        self.http
            .post(self.url(path))
            .query(&[("access_token", token)])
            .json(&body)
            .send()
            .await
            .unwrap()
    }

    async fn wxacode(&self, token: &str, body: Value) -> reqwest::Response {
        self.call_with_token("/wxa/getwxacodeunlimit", token, body)
            .await
    }
}

fn errcode(body: &Value) -> i64 {
    body["errcode"].as_i64().unwrap_or(0)
}

#[tokio::test]
async fn login_code_exchanges_for_its_openid_unionid_and_a_session_key() {
    let h = Harness::start().await;
    let minted = h
        .server
        .state()
        .mint_login_code(Some("o-alice".into()), Some("u-alice".into()));

    let body = h.exchange(&minted.code).await;

    assert_eq!(body["openid"], "o-alice");
    assert_eq!(body["unionid"], "u-alice");
    assert_eq!(body["session_key"].as_str().unwrap().len(), 24);
    assert!(body.get("errcode").is_none());
}

#[tokio::test]
async fn login_code_without_unionid_omits_it_and_gets_a_random_openid() {
    let h = Harness::start().await;
    let minted = h.server.state().mint_login_code(None, None);

    let body = h.exchange(&minted.code).await;

    assert_eq!(body["openid"], minted.openid.as_str());
    assert!(minted.openid.starts_with('o') && minted.openid.len() == 28);
    assert!(body.get("unionid").is_none());
}

#[tokio::test]
async fn login_code_is_single_use() {
    let h = Harness::start().await;
    let code = h.server.state().mint_login_code(None, None).code;

    h.exchange(&code).await;
    let second = h.exchange(&code).await;

    assert_eq!(errcode(&second), 40163);
    assert_eq!(second["errmsg"], "code been used");
}

#[tokio::test]
async fn expired_and_unknown_login_codes_are_invalid() {
    let h = Harness::start().await;
    let expired = h
        .server
        .state()
        .mint_login_code_with_ttl(None, None, Duration::ZERO)
        .code;

    assert_eq!(errcode(&h.exchange(&expired).await), 40029);
    assert_eq!(errcode(&h.exchange("no-such-code").await), 40029);
}

#[tokio::test]
async fn wrong_credentials_and_arguments_are_rejected() {
    let h = Harness::start().await;
    let code = h.server.state().mint_login_code(None, None).code;
    let (appid, secret) = (h.config.appid.as_str(), h.config.secret.as_str());
    let grant = ("grant_type", "authorization_code");
    let session = "/sns/jscode2session";

    let wrong_secret = h
        .get(
            session,
            &[
                ("appid", appid),
                ("secret", "nope"),
                ("js_code", &code),
                grant,
            ],
        )
        .await;
    assert_eq!(errcode(&wrong_secret), 40125);
    assert_eq!(wrong_secret["errmsg"], "invalid appsecret");

    let wrong_appid = h
        .get(
            session,
            &[
                ("appid", "wxother"),
                ("secret", secret),
                ("js_code", &code),
                grant,
            ],
        )
        .await;
    assert_eq!(errcode(&wrong_appid), 40013);

    let no_code = h
        .get(session, &[("appid", appid), ("secret", secret), grant])
        .await;
    assert_eq!(errcode(&no_code), 41008);

    let bad_grant = [
        ("appid", appid),
        ("secret", secret),
        ("js_code", &code),
        ("grant_type", "x"),
    ];
    assert_eq!(errcode(&h.get(session, &bad_grant).await), 40097);

    let token_query = [
        ("grant_type", "client_credential"),
        ("appid", appid),
        ("secret", "nope"),
    ];
    assert_eq!(errcode(&h.get("/cgi-bin/token", &token_query).await), 40125);

    // None of the rejected calls used the code up.
    assert!(h.exchange(&code).await["openid"].is_string());
}

#[tokio::test]
async fn injected_fault_answers_exactly_count_calls_without_consuming_the_code() {
    let h = Harness::start().await;
    let code = h.server.state().mint_login_code(None, None).code;
    h.server.state().inject_fault("jscode2session", -1, 2);

    for _ in 0..2 {
        let body = h.exchange(&code).await;
        assert_eq!(errcode(&body), -1);
        assert_eq!(body["errmsg"], "system error");
    }

    assert!(h.exchange(&code).await["openid"].is_string());
    assert_eq!(h.server.state().call_count("jscode2session"), 3);
}

#[tokio::test]
async fn faults_injected_over_http_carry_their_message_and_can_be_cleared() {
    let h = Harness::start().await;
    let fault = json!({ "endpoint": "token", "errcode": 45011, "errmsg": "slow down", "count": 5 });
    assert_eq!(
        h.post("/__mock/faults", fault).await.status(),
        StatusCode::NO_CONTENT
    );

    let body = h.stable_token(false).await;
    assert_eq!(errcode(&body), 45011);
    assert_eq!(body["errmsg"], "slow down");

    let resp = h.http.delete(h.url("/__mock/faults")).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::NO_CONTENT);
    assert!(h.stable_token(false).await["access_token"].is_string());
}

#[tokio::test]
async fn stable_token_is_reused_until_force_refresh() {
    let h = Harness::start().await;

    let first = h.stable_token(false).await;
    let again = h.stable_token(false).await;
    let forced = h.stable_token(true).await;

    assert_eq!(first["expires_in"], 7200);
    assert_eq!(first["access_token"], again["access_token"]);
    assert_ne!(first["access_token"], forced["access_token"]);
    assert_eq!(h.server.state().call_count("token"), 3);
}

#[tokio::test]
async fn cgi_bin_token_always_issues_a_new_token_superseding_the_last() {
    let h = Harness::start().await;
    let query = [
        ("grant_type", "client_credential"),
        ("appid", h.config.appid.as_str()),
        ("secret", h.config.secret.as_str()),
    ];

    let old = h.get("/cgi-bin/token", &query).await["access_token"].clone();
    let new = h.get("/cgi-bin/token", &query).await["access_token"].clone();
    assert_ne!(old, new);

    let resp = h
        .call_with_token(
            "/wxa/business/getuserphonenumber",
            old.as_str().unwrap(),
            json!({}),
        )
        .await;
    assert_eq!(errcode(&resp.json().await.unwrap()), 40001);
}

#[tokio::test]
async fn unknown_tokens_are_invalid_and_expired_ones_report_expiry() {
    let h = Harness::start().await;
    let token = h.access_token().await;
    let body = json!({ "touser": "o-x", "template_id": "t", "data": {} });

    let unknown = h
        .call_with_token("/cgi-bin/message/subscribe/send", "bogus", body.clone())
        .await;
    assert_eq!(errcode(&unknown.json().await.unwrap()), 40001);
    let missing = h
        .post_json("/cgi-bin/message/subscribe/send", body.clone())
        .await;
    assert_eq!(errcode(&missing), 40001);

    let resp = h.post("/__mock/access-tokens/expire", json!({})).await;
    assert_eq!(resp.status(), StatusCode::NO_CONTENT);

    let expired = h
        .call_with_token("/cgi-bin/message/subscribe/send", &token, body)
        .await;
    let expired: Value = expired.json().await.unwrap();
    assert_eq!(errcode(&expired), 42001);
    assert_eq!(expired["errmsg"], "access_token expired");
    assert_ne!(
        h.access_token().await,
        token,
        "stable_token replaces an expired token"
    );
}

#[tokio::test]
async fn wxacode_is_a_png_of_the_requested_width() {
    let h = Harness::start().await;
    let token = h.access_token().await;

    let resp = h
        .wxacode(
            &token,
            json!({ "scene": "t=AbC123", "page": "pages/tag/index", "width": 280 }),
        )
        .await;

    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.headers()["content-type"], "image/png");
    let png = resp.bytes().await.unwrap();
    assert!(png.starts_with(PNG_SIGNATURE));
    // IHDR follows the signature: 4-byte length, "IHDR", then the width.
    assert_eq!(&png[16..20], &280u32.to_be_bytes());
}

#[tokio::test]
async fn wxacode_differs_between_scenes() {
    let h = Harness::start().await;
    let token = h.access_token().await;

    let a = h
        .wxacode(&token, json!({ "scene": "a=1" }))
        .await
        .bytes()
        .await
        .unwrap();
    let b = h
        .wxacode(&token, json!({ "scene": "a=2" }))
        .await
        .bytes()
        .await
        .unwrap();

    assert!(a.starts_with(PNG_SIGNATURE) && b.starts_with(PNG_SIGNATURE));
    assert_ne!(a, b);
}

#[tokio::test]
async fn wxacode_rejects_each_invalid_request_with_its_errcode() {
    let h = Harness::start().await;
    let token = h.access_token().await;
    let cases = [
        (json!({}), 40169),
        (json!({ "scene": "" }), 40169),
        (json!({ "scene": "x".repeat(33) }), 40169),
        (json!({ "scene": "a b" }), 40097),
        (json!({ "scene": "标签" }), 40097),
        (json!({ "scene": "a", "page": "/pages/index" }), 41030),
        (json!({ "scene": "a", "env_version": "beta" }), 40097),
        (json!({ "scene": "a", "width": 279 }), 40097),
        (json!({ "scene": "a", "width": 1281 }), 40097),
    ];

    for (body, expected) in cases {
        let resp = h.wxacode(&token, body.clone()).await;
        assert_eq!(resp.status(), StatusCode::OK);
        assert!(
            resp.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with("application/json")
        );
        let answer: Value = resp.json().await.unwrap();
        assert_eq!(errcode(&answer), expected, "for {body}");
    }
}

#[tokio::test]
async fn phone_code_resolves_to_the_phone_number_once() {
    let h = Harness::start().await;
    let token = h.access_token().await;
    let code = h.server.state().mint_phone_code("13800138000", "86");
    let path = "/wxa/business/getuserphonenumber";

    let resp = h
        .call_with_token(path, &token, json!({ "code": code }))
        .await;
    let body: Value = resp.json().await.unwrap();

    assert_eq!(errcode(&body), 0);
    let info = &body["phone_info"];
    assert_eq!(info["phoneNumber"], "13800138000");
    assert_eq!(info["purePhoneNumber"], "13800138000");
    assert_eq!(info["countryCode"], "86");
    assert_eq!(info["watermark"]["appid"], h.config.appid.as_str());
    assert!(info["watermark"]["timestamp"].is_i64());

    let reused = h
        .call_with_token(path, &token, json!({ "code": code }))
        .await;
    assert_eq!(errcode(&reused.json().await.unwrap()), 40029);
}

#[tokio::test]
async fn phone_codes_minted_over_http_can_expire() {
    let h = Harness::start().await;
    let token = h.access_token().await;
    let minted: Value = h
        .post(
            "/__mock/phone-codes",
            json!({ "phone_number": "13800138000", "ttl_secs": 0 }),
        )
        .await
        .json()
        .await
        .unwrap();

    let resp = h
        .call_with_token(
            "/wxa/business/getuserphonenumber",
            &token,
            json!({ "code": minted["code"] }),
        )
        .await;

    assert_eq!(errcode(&resp.json().await.unwrap()), 40029);
}

#[tokio::test]
async fn subscribe_message_is_recorded_with_a_msgid() {
    let h = Harness::start().await;
    let token = h.access_token().await;
    let path = "/cgi-bin/message/subscribe/send";
    let message = json!({
        "touser": "o-alice",
        "template_id": "TPL-1",
        "page": "pages/tag/index?id=1",
        "data": { "thing1": { "value": "Scanned" } },
        "miniprogram_state": "trial",
        "lang": "zh_CN",
    });

    let body: Value = h
        .call_with_token(path, &token, message)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(errcode(&body), 0);
    assert!(body["msgid"].is_u64());

    let recorded: Vec<Value> = h
        .http
        .get(h.url("/__mock/messages"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(recorded.len(), 1);
    assert_eq!(recorded[0]["msgid"], body["msgid"]);
    assert_eq!(recorded[0]["touser"], "o-alice");
    assert_eq!(recorded[0]["data"]["thing1"]["value"], "Scanned");
    assert!(recorded[0]["received_at"].as_str().unwrap().contains('T'));
    assert_eq!(h.server.state().sent_messages(), recorded);

    h.http
        .delete(h.url("/__mock/messages"))
        .send()
        .await
        .unwrap();
    assert!(h.server.state().sent_messages().is_empty());
}

#[tokio::test]
async fn subscribe_message_needs_a_recipient_and_a_template() {
    let h = Harness::start().await;
    let token = h.access_token().await;
    let path = "/cgi-bin/message/subscribe/send";

    let no_user = h
        .call_with_token(path, &token, json!({ "template_id": "T", "data": {} }))
        .await;
    assert_eq!(errcode(&no_user.json().await.unwrap()), 40003);
    let no_template = h
        .call_with_token(path, &token, json!({ "touser": "o", "data": {} }))
        .await;
    assert_eq!(errcode(&no_template.json().await.unwrap()), 40037);
    assert!(h.server.state().sent_messages().is_empty());
}

#[tokio::test]
async fn stats_count_every_call_per_endpoint() {
    let h = Harness::start().await;
    let token = h.access_token().await;
    h.exchange("unknown").await;
    h.wxacode(&token, json!({ "scene": "a" })).await;
    h.wxacode(&token, json!({ "scene": "" })).await;

    let stats: Value = h
        .http
        .get(h.url("/__mock/stats"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();

    assert_eq!(
        stats,
        json!({ "calls": {
            "jscode2session": 1,
            "token": 1,
            "getwxacodeunlimit": 2,
            "getuserphonenumber": 0,
            "subscribe_send": 0,
        }})
    );
}

#[tokio::test]
async fn login_codes_minted_over_http_exchange_like_library_ones() {
    let h = Harness::start().await;

    let resp = h
        .post("/__mock/login-codes", json!({ "openid": "o-bob" }))
        .await;
    assert_eq!(resp.status(), StatusCode::OK);
    let minted: Value = resp.json().await.unwrap();
    assert_eq!(minted["unionid"], Value::Null);
    assert_eq!(minted["expires_in"], 300);

    let body = h.exchange(minted["code"].as_str().unwrap()).await;
    assert_eq!(body["openid"], "o-bob");
}

#[tokio::test]
async fn bad_control_input_is_a_client_error_with_a_message() {
    let h = Harness::start().await;
    let malformed = h
        .http
        .post(h.url("/__mock/faults"))
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(malformed.status(), StatusCode::BAD_REQUEST);
    assert!(malformed.json::<Value>().await.unwrap()["error"].is_string());

    let cases = [
        (
            "/__mock/faults",
            json!({ "endpoint": "nope", "errcode": -1, "count": 1 }),
        ),
        (
            "/__mock/faults",
            json!({ "endpoint": "token", "errcode": -1 }),
        ),
        (
            "/__mock/phone-codes",
            json!({ "phone_number": "not a number" }),
        ),
        ("/__mock/login-codes", json!({ "ttl_secs": -5 })),
    ];
    for (path, body) in cases {
        let resp = h.post(path, body.clone()).await;
        assert_eq!(
            resp.status(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "for {body}"
        );
        assert!(resp.json::<Value>().await.unwrap()["error"].is_string());
    }
}

#[tokio::test]
async fn stopped_server_no_longer_answers() {
    let h = Harness::start().await;
    let url = h.url("/__mock/stats");
    h.server.stop().await;

    assert!(h.http.get(url).send().await.is_err());
}
