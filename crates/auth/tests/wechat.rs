//! The WeChat client against the WeChat mock over real HTTP, plus a few raw sockets for the
//! failures the mock cannot produce (silent servers, non-JSON answers).

#![allow(
    clippy::expect_used,
    reason = "a failed expectation is the test failure, with its message"
)]

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use miniprogram_mock::{MockConfig, MockServer};
use scantag_auth::wechat::{
    EnvVersion, QrCodeRequest, SubscribeMessage, WeChatApi, WeChatClient, WeChatConfig, WeChatError,
};
use scantag_cache::Cache;
use secrecy::{ExposeSecret, SecretString};
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

const PNG_SIGNATURE: &[u8] = b"\x89PNG\r\n\x1a\n";

async fn start_mock() -> MockServer {
    MockServer::start("127.0.0.1:0", MockConfig::default())
        .await
        .expect("the mock starts")
}

fn config_for(base_url: &str) -> WeChatConfig {
    let mock = MockConfig::default();
    WeChatConfig {
        base_url: base_url.to_owned(),
        appid: mock.appid,
        secret: SecretString::from(mock.secret),
        timeout: Duration::from_secs(2),
        max_retries: 2,
        pool_idle_timeout: Duration::from_secs(4),
    }
}

fn client_for(server: &MockServer) -> WeChatClient {
    client_with(config_for(&server.base_url()), Cache::memory("test", 100))
}

fn client_with(config: WeChatConfig, cache: Cache) -> WeChatClient {
    WeChatClient::new(config, cache).expect("the client builds")
}

fn qr_request(scene: &str) -> QrCodeRequest {
    QrCodeRequest {
        scene: scene.to_owned(),
        page: Some("pages/tag/index".to_owned()),
        width: Some(430),
        env_version: Some(EnvVersion::Release),
        check_path: Some(false),
    }
}

/// A TCP server that accepts connections and never answers; returns its base URL and how many
/// connections it accepted.
async fn silent_server() -> (String, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .expect("binds a port");
    let addr = listener.local_addr().expect("has an address");
    let accepted = Arc::new(AtomicUsize::new(0));
    let counter = accepted.clone();
    tokio::spawn(async move {
        let mut open = Vec::new();
        while let Ok((stream, _)) = listener.accept().await {
            counter.fetch_add(1, Ordering::SeqCst);
            open.push(stream);
        }
    });
    (format!("http://{addr}"), accepted)
}

/// A TCP server answering every request with `response` verbatim.
async fn canned_server(response: &'static str) -> String {
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .expect("binds a port");
    let addr = listener.local_addr().expect("has an address");
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut buf = [0u8; 4096];
                let _ = stream.read(&mut buf).await;
                let _ = stream.write_all(response.as_bytes()).await;
                let _ = stream.shutdown().await;
            });
        }
    });
    format!("http://{addr}")
}

#[tokio::test]
async fn a_login_code_is_exchanged_for_the_openid_unionid_and_session_key() {
    let server = start_mock().await;
    let minted = server
        .state()
        .mint_login_code(Some("o-user-1".to_owned()), Some("u-union-1".to_owned()));

    let session = client_for(&server)
        .code_to_session(&minted.code)
        .await
        .expect("the code is accepted");

    assert_eq!(session.openid, "o-user-1");
    assert_eq!(session.unionid.as_deref(), Some("u-union-1"));
    assert!(!session.session_key.expose_secret().is_empty());
    server.stop().await;
}

#[tokio::test]
async fn a_login_without_an_open_platform_binding_has_no_unionid() {
    let server = start_mock().await;
    let minted = server.state().mint_login_code(None, None);

    let session = client_for(&server)
        .code_to_session(&minted.code)
        .await
        .expect("the code is accepted");

    assert_eq!(session.openid, minted.openid);
    assert_eq!(session.unionid, None);
    server.stop().await;
}

#[tokio::test]
async fn an_unknown_login_code_is_an_invalid_code() {
    let server = start_mock().await;

    let err = client_for(&server)
        .code_to_session("no-such-code")
        .await
        .expect_err("the code is refused");

    assert!(matches!(err, WeChatError::InvalidCode), "{err:?}");
    assert_eq!(err.errcode(), Some(40029));
    server.stop().await;
}

#[tokio::test]
async fn a_login_code_used_twice_is_reported_as_already_used() {
    let server = start_mock().await;
    let client = client_for(&server);
    let minted = server.state().mint_login_code(None, None);
    client
        .code_to_session(&minted.code)
        .await
        .expect("the first exchange succeeds");

    let err = client
        .code_to_session(&minted.code)
        .await
        .expect_err("the second exchange is refused");

    assert!(matches!(err, WeChatError::CodeUsed), "{err:?}");
    assert_eq!(err.errcode(), Some(40163));
    server.stop().await;
}

#[tokio::test]
async fn rate_limiting_and_high_risk_users_map_to_their_own_errors() {
    let server = start_mock().await;
    let client = client_for(&server);
    let minted = server.state().mint_login_code(None, None);

    server.state().inject_fault("jscode2session", 45011, 1);
    let err = client
        .code_to_session(&minted.code)
        .await
        .expect_err("limited");
    assert!(matches!(err, WeChatError::RateLimited), "{err:?}");

    server.state().inject_fault("jscode2session", 40226, 1);
    let err = client
        .code_to_session(&minted.code)
        .await
        .expect_err("blocked");
    assert!(matches!(err, WeChatError::HighRiskUser), "{err:?}");

    // Neither is retried: both are answers about this user, not passing hiccups.
    assert_eq!(server.state().call_count("jscode2session"), 2);
    server.stop().await;
}

#[tokio::test]
async fn a_wrong_secret_or_appid_is_reported_as_rejected_app_credentials() {
    let server = start_mock().await;
    let minted = server.state().mint_login_code(None, None);

    let mut wrong_secret = config_for(&server.base_url());
    wrong_secret.secret = SecretString::from("not-the-secret".to_owned());
    let client = client_with(wrong_secret, Cache::memory("test", 100));
    let err = client
        .code_to_session(&minted.code)
        .await
        .expect_err("login");
    assert!(
        matches!(err, WeChatError::AppCredentialsRejected { errcode: 40125 }),
        "{err:?}"
    );
    // The access token fetch fails the same way before the business call is made.
    let err = client
        .qr_code_unlimited(&qr_request("t=1"))
        .await
        .expect_err("qr");
    assert!(
        matches!(err, WeChatError::AppCredentialsRejected { errcode: 40125 }),
        "{err:?}"
    );

    let mut wrong_appid = config_for(&server.base_url());
    wrong_appid.appid = "wxnotthisapp0000".to_owned();
    let err = client_with(wrong_appid, Cache::memory("test", 100))
        .code_to_session(&minted.code)
        .await
        .expect_err("login");
    assert!(
        matches!(err, WeChatError::AppCredentialsRejected { errcode: 40013 }),
        "{err:?}"
    );
    server.stop().await;
}

#[tokio::test]
async fn a_single_busy_answer_is_retried_and_the_call_succeeds() {
    let server = start_mock().await;
    let minted = server.state().mint_login_code(None, None);
    server.state().inject_fault("jscode2session", -1, 1);

    let session = client_for(&server)
        .code_to_session(&minted.code)
        .await
        .expect("the retry succeeds");

    assert_eq!(session.openid, minted.openid);
    assert_eq!(server.state().call_count("jscode2session"), 2);
    server.stop().await;
}

#[tokio::test]
async fn busy_answers_beyond_the_retry_budget_surface_as_busy() {
    let server = start_mock().await;
    let minted = server.state().mint_login_code(None, None);
    server.state().inject_fault("jscode2session", -1, 10);

    let err = client_for(&server)
        .code_to_session(&minted.code)
        .await
        .expect_err("WeChat stays busy");

    assert!(matches!(err, WeChatError::Busy), "{err:?}");
    assert_eq!(err.errcode(), Some(-1));
    // One attempt plus max_retries (2) retries.
    assert_eq!(server.state().call_count("jscode2session"), 3);
    server.stop().await;
}

#[tokio::test]
async fn a_busy_token_endpoint_is_retried_before_the_business_call() {
    let server = start_mock().await;
    server.state().inject_fault("token", -1, 1);

    let png = client_for(&server)
        .qr_code_unlimited(&qr_request("t=1"))
        .await
        .expect("the token fetch is retried");

    assert!(png.starts_with(PNG_SIGNATURE));
    assert_eq!(server.state().call_count("token"), 2);
    server.stop().await;
}

#[tokio::test]
async fn an_unreachable_server_is_a_transport_error_quickly() {
    let client = client_with(config_for("http://127.0.0.1:1"), Cache::memory("test", 100));
    let started = Instant::now();

    let err = client
        .code_to_session("any-code")
        .await
        .expect_err("nothing listens there");

    assert!(matches!(err, WeChatError::Transport(_)), "{err:?}");
    assert_eq!(err.errcode(), None);
    // The login URL carries the app secret in its query string; errors must not repeat it.
    assert!(!err.to_string().contains(&MockConfig::default().secret));
    assert!(started.elapsed() < Duration::from_secs(5));
}

#[tokio::test]
async fn a_login_code_exchange_that_times_out_is_not_retried() {
    let (base_url, accepted) = silent_server().await;
    let mut config = config_for(&base_url);
    config.timeout = Duration::from_millis(200);

    let err = client_with(config, Cache::memory("test", 100))
        .code_to_session("any-code")
        .await
        .expect_err("the server never answers");

    assert!(matches!(err, WeChatError::Transport(_)), "{err:?}");
    // The code may already be spent on WeChat's side, so one attempt only.
    assert_eq!(accepted.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn an_access_token_fetch_that_times_out_is_retried() {
    let (base_url, accepted) = silent_server().await;
    let mut config = config_for(&base_url);
    config.timeout = Duration::from_millis(200);

    let err = client_with(config, Cache::memory("test", 100))
        .qr_code_unlimited(&qr_request("t=1"))
        .await
        .expect_err("the server never answers");

    assert!(matches!(err, WeChatError::Transport(_)), "{err:?}");
    assert_eq!(accepted.load(Ordering::SeqCst), 3);
}

#[tokio::test]
async fn an_answer_that_is_not_json_is_an_unexpected_response() {
    let base_url = canned_server(
        "HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: 15\r\nConnection: close\r\n\r\n<html>hi</html>",
    )
    .await;

    let err = client_with(config_for(&base_url), Cache::memory("test", 100))
        .code_to_session("any-code")
        .await
        .expect_err("HTML is not a WeChat answer");

    assert!(matches!(err, WeChatError::UnexpectedResponse(_)), "{err:?}");
}

#[tokio::test]
async fn the_access_token_is_fetched_once_for_several_calls() {
    let server = start_mock().await;
    let client = client_for(&server);

    for scene in ["t=1", "t=2", "t=3"] {
        client
            .qr_code_unlimited(&qr_request(scene))
            .await
            .expect("the QR code renders");
    }
    let code = server.state().mint_phone_code("13800138000", "86");
    client
        .phone_number(&code)
        .await
        .expect("the phone code is accepted");

    assert_eq!(server.state().call_count("token"), 1);
    server.stop().await;
}

#[tokio::test]
async fn concurrent_first_calls_share_a_single_token_fetch() {
    let server = start_mock().await;
    let client = Arc::new(client_for(&server));

    let calls = (0..8).map(|i| {
        let client = client.clone();
        tokio::spawn(async move {
            client
                .qr_code_unlimited(&qr_request(&format!("t={i}")))
                .await
        })
    });
    for call in futures_join(calls).await {
        call.expect("the QR code renders");
    }

    assert_eq!(server.state().call_count("token"), 1);
    server.stop().await;
}

/// Awaits every spawned task, surfacing panics.
async fn futures_join<T: Send + 'static>(
    tasks: impl Iterator<Item = tokio::task::JoinHandle<T>>,
) -> Vec<T> {
    let mut results = Vec::new();
    for task in tasks.collect::<Vec<_>>() {
        results.push(task.await.expect("the task completes"));
    }
    results
}

#[tokio::test]
async fn an_expired_access_token_is_refreshed_and_the_call_succeeds() {
    let server = start_mock().await;
    let client = client_for(&server);
    client
        .qr_code_unlimited(&qr_request("t=1"))
        .await
        .expect("the first QR code renders");

    server.state().expire_access_tokens();
    let png = client
        .qr_code_unlimited(&qr_request("t=2"))
        .await
        .expect("the call succeeds with a fresh token");

    assert!(png.starts_with(PNG_SIGNATURE));
    assert_eq!(server.state().call_count("token"), 2);
    assert_eq!(server.state().call_count("getwxacodeunlimit"), 3);
    server.stop().await;
}

#[tokio::test]
async fn a_token_rejected_even_after_a_refresh_is_reported_as_invalid() {
    let server = start_mock().await;
    server.state().inject_fault("getwxacodeunlimit", 40001, 2);

    let err = client_for(&server)
        .qr_code_unlimited(&qr_request("t=1"))
        .await
        .expect_err("the token keeps being rejected");

    assert!(
        matches!(err, WeChatError::AccessTokenInvalid { errcode: 40001 }),
        "{err:?}"
    );
    // The first fetch plus exactly one forced refresh.
    assert_eq!(server.state().call_count("token"), 2);
    assert_eq!(server.state().call_count("getwxacodeunlimit"), 2);
    server.stop().await;
}

#[tokio::test]
async fn two_clients_sharing_a_cache_fetch_the_access_token_once() {
    let server = start_mock().await;
    let cache = Cache::memory("shared", 100);
    let first = client_with(config_for(&server.base_url()), cache.clone());
    let second = client_with(config_for(&server.base_url()), cache);

    first
        .qr_code_unlimited(&qr_request("t=1"))
        .await
        .expect("the first client renders");
    second
        .qr_code_unlimited(&qr_request("t=2"))
        .await
        .expect("the second client renders");

    assert_eq!(server.state().call_count("token"), 1);
    server.stop().await;
}

#[tokio::test]
async fn two_clients_starting_together_fetch_the_access_token_once() {
    let server = start_mock().await;
    let cache = Cache::memory("shared", 100);
    let first = client_with(config_for(&server.base_url()), cache.clone());
    let second = client_with(config_for(&server.base_url()), cache);

    let (request_a, request_b) = (qr_request("t=1"), qr_request("t=2"));
    let (a, b) = tokio::join!(
        first.qr_code_unlimited(&request_a),
        second.qr_code_unlimited(&request_b),
    );
    a.expect("the first client renders");
    b.expect("the second client renders");

    assert_eq!(server.state().call_count("token"), 1);
    server.stop().await;
}

#[tokio::test]
async fn a_token_refreshed_by_one_client_is_picked_up_by_the_other() {
    let server = start_mock().await;
    let cache = Cache::memory("shared", 100);
    let first = client_with(config_for(&server.base_url()), cache.clone());
    let second = client_with(config_for(&server.base_url()), cache);
    first
        .qr_code_unlimited(&qr_request("t=1"))
        .await
        .expect("renders");
    second
        .qr_code_unlimited(&qr_request("t=2"))
        .await
        .expect("renders");

    server.state().expire_access_tokens();
    first
        .qr_code_unlimited(&qr_request("t=3"))
        .await
        .expect("renders");
    second
        .qr_code_unlimited(&qr_request("t=4"))
        .await
        .expect("renders");

    // One initial fetch and one forced refresh; the second client adopts the refreshed token
    // from the cache instead of forcing another one.
    assert_eq!(server.state().call_count("token"), 2);
    server.stop().await;
}

#[tokio::test]
async fn a_qr_code_is_returned_as_png_bytes() {
    let server = start_mock().await;

    let png = client_for(&server)
        .qr_code_unlimited(&QrCodeRequest {
            scene: "tag=abc123".to_owned(),
            page: None,
            width: None,
            env_version: None,
            check_path: None,
        })
        .await
        .expect("the QR code renders");

    assert!(png.starts_with(PNG_SIGNATURE));
    server.stop().await;
}

#[tokio::test]
async fn qr_code_argument_errors_are_invalid_arguments() {
    let server = start_mock().await;
    let client = client_for(&server);

    let err = client
        .qr_code_unlimited(&qr_request(&"x".repeat(33)))
        .await
        .expect_err("the scene is too long");
    assert!(
        matches!(err, WeChatError::InvalidArgument { errcode: 40169, .. }),
        "{err:?}"
    );

    let mut bad_page = qr_request("t=1");
    bad_page.page = Some("/pages/index/index".to_owned());
    let err = client
        .qr_code_unlimited(&bad_page)
        .await
        .expect_err("the page is invalid");
    assert!(
        matches!(err, WeChatError::InvalidArgument { errcode: 41030, .. }),
        "{err:?}"
    );

    let mut bad_width = qr_request("t=1");
    bad_width.width = Some(10);
    let err = client
        .qr_code_unlimited(&bad_width)
        .await
        .expect_err("the width is out of range");
    assert!(
        matches!(err, WeChatError::InvalidArgument { errcode: 40097, .. }),
        "{err:?}"
    );
    server.stop().await;
}

#[tokio::test]
async fn a_phone_code_is_exchanged_for_the_phone_number() {
    let server = start_mock().await;
    let client = client_for(&server);

    let code = server.state().mint_phone_code("13800138000", "86");
    let phone = client
        .phone_number(&code)
        .await
        .expect("the code is accepted");
    assert_eq!(phone.phone_number, "13800138000");
    assert_eq!(phone.pure_phone_number, "13800138000");
    assert_eq!(phone.country_code, "86");

    let code = server.state().mint_phone_code("91234567", "852");
    let phone = client
        .phone_number(&code)
        .await
        .expect("the code is accepted");
    assert_eq!(phone.phone_number, "+85291234567");
    assert_eq!(phone.pure_phone_number, "91234567");
    assert_eq!(phone.country_code, "852");
    server.stop().await;
}

#[tokio::test]
async fn an_unknown_or_reused_phone_code_is_an_invalid_code() {
    let server = start_mock().await;
    let client = client_for(&server);
    let code = server.state().mint_phone_code("13800138000", "86");
    client
        .phone_number(&code)
        .await
        .expect("the first use works");

    let err = client.phone_number(&code).await.expect_err("reused");
    assert!(matches!(err, WeChatError::InvalidCode), "{err:?}");
    let err = client
        .phone_number("no-such-code")
        .await
        .expect_err("unknown");
    assert!(matches!(err, WeChatError::InvalidCode), "{err:?}");
    server.stop().await;
}

#[tokio::test]
async fn a_subscribe_message_is_sent_and_recorded_by_wechat() {
    let server = start_mock().await;
    let message = SubscribeMessage {
        touser: "o-user-1".to_owned(),
        template_id: "tpl-visit-reminder".to_owned(),
        page: Some("pages/visit/detail?id=7".to_owned()),
        data: json!({ "thing1": { "value": "Follow-up visit" }, "time2": { "value": "2025-01-02 10:00" } }),
        miniprogram_state: Some("formal".to_owned()),
        lang: Some("zh_CN".to_owned()),
    };

    let msgid = client_for(&server)
        .send_subscribe_message(&message)
        .await
        .expect("the message is sent");

    let sent = server.state().sent_messages();
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0]["msgid"], json!(msgid));
    assert_eq!(sent[0]["touser"], "o-user-1");
    assert_eq!(sent[0]["template_id"], "tpl-visit-reminder");
    assert_eq!(sent[0]["page"], "pages/visit/detail?id=7");
    assert_eq!(sent[0]["data"], message.data);
    assert_eq!(sent[0]["miniprogram_state"], "formal");
    assert_eq!(sent[0]["lang"], "zh_CN");
    server.stop().await;
}

#[tokio::test]
async fn a_subscribe_message_to_a_missing_user_is_an_invalid_argument() {
    let server = start_mock().await;
    let message = SubscribeMessage {
        touser: String::new(),
        template_id: "tpl-visit-reminder".to_owned(),
        page: None,
        data: json!({ "thing1": { "value": "x" } }),
        miniprogram_state: None,
        lang: None,
    };

    let err = client_for(&server)
        .send_subscribe_message(&message)
        .await
        .expect_err("there is no recipient");

    assert!(
        matches!(err, WeChatError::InvalidArgument { errcode: 40003, .. }),
        "{err:?}"
    );
    assert!(server.state().sent_messages().is_empty());
    server.stop().await;
}

#[tokio::test]
async fn secrets_never_show_in_debug_output() {
    let server = start_mock().await;
    let config = config_for(&server.base_url());
    let client = client_with(config.clone(), Cache::memory("test", 100));
    let minted = server.state().mint_login_code(None, None);
    let session = client.code_to_session(&minted.code).await.expect("login");

    let secret = MockConfig::default().secret;
    assert!(!format!("{config:?}").contains(&secret));
    assert!(!format!("{client:?}").contains(&secret));
    assert!(!format!("{session:?}").contains(session.session_key.expose_secret()));
    server.stop().await;
}

/// A server that answers the first request on each connection and then drops the connection
/// as soon as a second request arrives on it, unanswered — what a server does when it closes
/// an idle connection at the instant the client reuses it.
async fn closes_reused_connections() -> (String, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .expect("binds a port");
    let addr = listener.local_addr().expect("has an address");
    let accepted = Arc::new(AtomicUsize::new(0));
    let counter = accepted.clone();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            counter.fetch_add(1, Ordering::SeqCst);
            tokio::spawn(async move {
                let mut buf = [0u8; 4096];
                if stream.read(&mut buf).await.unwrap_or(0) == 0 {
                    return;
                }
                let body = r#"{"openid":"o-pool","session_key":"k"}"#;
                let answer = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
                    body.len()
                );
                let _ = stream.write_all(answer.as_bytes()).await;
                let _ = stream.read(&mut buf).await;
                // Dropped here: the second request gets no answer.
            });
        }
    });
    (format!("http://{addr}"), accepted)
}

#[tokio::test]
async fn an_idle_connection_is_not_reused_after_the_pool_idle_timeout() {
    let (url, accepted) = closes_reused_connections().await;
    let mut config = config_for(&url);
    config.pool_idle_timeout = Duration::from_millis(100);
    let client = client_with(config, Cache::memory("test", 100));

    let first = client.code_to_session("code-1").await.expect("first login");
    tokio::time::sleep(Duration::from_millis(300)).await;
    let second = client.code_to_session("code-2").await;

    assert_eq!(first.openid, "o-pool");
    assert_eq!(
        second.expect("second login on a fresh connection").openid,
        "o-pool"
    );
    assert_eq!(accepted.load(Ordering::SeqCst), 2);
}
