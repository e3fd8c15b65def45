//! Every WeChat failure a login can meet is a clear client error or a documented 503, never 500.

use scantag_e2e::{spawn_app, spawn_app_with};
use serde_json::json;
use std::time::Duration;

async fn login_with(app: &scantag_e2e::TestApp, code: &str) -> scantag_e2e::Answer {
    app.post("/api/v1/auth/wechat/login", None, &json!({ "code": code }))
        .await
}

#[tokio::test]
async fn an_unknown_code_is_a_bad_request() {
    let app = spawn_app().await;
    let answer = login_with(&app, "never-minted").await.expect(400);
    assert_eq!(answer.code(), "wechat_code_invalid");
}

#[tokio::test]
async fn a_code_used_twice_is_a_bad_request_of_its_own() {
    let app = spawn_app().await;
    let code = app.login_code(Some("o-twice"));
    login_with(&app, &code).await.expect(200);
    let answer = login_with(&app, &code).await.expect(400);
    assert_eq!(answer.code(), "wechat_code_used");
}

#[tokio::test]
async fn an_expired_code_is_invalid() {
    let app = spawn_app().await;
    let minted = app
        .mock
        .mint_login_code_with_ttl(Some("o-slow".into()), None, Duration::ZERO);
    tokio::time::sleep(Duration::from_millis(20)).await;
    let answer = login_with(&app, &minted.code).await.expect(400);
    assert_eq!(answer.code(), "wechat_code_invalid");
}

#[tokio::test]
async fn a_rate_limit_is_a_429_with_retry_after() {
    let app = spawn_app().await;
    app.mock.inject_fault("jscode2session", 45011, 1);
    let code = app.login_code(Some("o-busy"));
    let answer = login_with(&app, &code).await.expect(429);
    assert_eq!(answer.code(), "wechat_rate_limited");
    assert!(answer.header("retry-after").is_some());
    login_with(&app, &code).await.expect(200);
}

#[tokio::test]
async fn a_high_risk_user_is_forbidden() {
    let app = spawn_app().await;
    app.mock.inject_fault("jscode2session", 40226, 1);
    let code = app.login_code(Some("o-risky"));
    let answer = login_with(&app, &code).await.expect(403);
    assert_eq!(answer.code(), "wechat_user_blocked");
}

#[tokio::test]
async fn a_single_busy_answer_is_retried_transparently() {
    let app = spawn_app().await;
    app.mock.inject_fault("jscode2session", -1, 1);
    let code = app.login_code(Some("o-patient"));
    login_with(&app, &code).await.expect(200);
}

#[tokio::test]
async fn a_wechat_that_stays_busy_is_a_503_with_retry_after() {
    let app = spawn_app().await;
    app.mock.inject_fault("jscode2session", -1, 10);
    let code = app.login_code(Some("o-unlucky"));
    let answer = login_with(&app, &code).await.expect(503);
    assert_eq!(answer.code(), "wechat_unavailable");
    assert!(answer.header("retry-after").is_some());
}

#[tokio::test]
async fn rejected_app_credentials_are_a_503_not_a_500() {
    let app = spawn_app_with(|s| {
        s.wechat.secret = Some(secrecy::SecretString::from("wrong-secret".to_owned()));
    })
    .await;
    let code = app.login_code(Some("o-any"));
    let answer = login_with(&app, &code).await.expect(503);
    assert_eq!(answer.code(), "wechat_unavailable");
    assert!(!answer.text.contains("wrong-secret"));
}

#[tokio::test]
async fn an_unreachable_wechat_is_a_503() {
    let app = spawn_app_with(|s| {
        s.wechat.base_url = "http://127.0.0.1:1".into();
        s.wechat.max_retries = 0;
    })
    .await;
    let answer = login_with(&app, "any-code").await.expect(503);
    assert_eq!(answer.code(), "wechat_unavailable");
}
