//! Conventions every endpoint shares: problem documents, field errors, request ids, probes.

use scantag_e2e::spawn_app;
use serde_json::json;

const LOGIN: &str = "/api/v1/auth/wechat/login";

#[tokio::test]
async fn malformed_json_is_a_400_problem_with_the_request_id() {
    let app = spawn_app().await;
    let answer = app
        .send(
            app.client
                .post(app.url(LOGIN))
                .header("content-type", "application/json")
                .body("{\"code\": "),
        )
        .await
        .expect(400);
    assert_eq!(answer.code(), "malformed_json");
    assert_eq!(answer.body["type"], "urn:scantag:problem:malformed_json");
    assert_eq!(answer.body["status"], 400);
    let request_id = answer.header("x-request-id").unwrap().to_owned();
    assert_eq!(answer.body["request_id"], request_id);
}

#[tokio::test]
async fn a_body_that_is_not_json_is_a_415() {
    let app = spawn_app().await;
    let answer = app
        .send(
            app.client
                .post(app.url(LOGIN))
                .header("content-type", "text/plain")
                .body("code=abc"),
        )
        .await
        .expect(415);
    assert_eq!(answer.code(), "unsupported_media_type");
    let no_type = app
        .send(app.client.post(app.url(LOGIN)).body("{\"code\": \"x\"}"))
        .await
        .expect(415);
    assert_eq!(no_type.code(), "unsupported_media_type");
}

#[tokio::test]
async fn missing_wrong_and_unknown_fields_are_422_with_field_errors() {
    let app = spawn_app().await;
    let cases = [
        (json!({}), "code", "required"),
        (json!({"code": 42}), "code", "invalid_type"),
        (json!({"code": ""}), "code", "length"),
        (json!({"code": "x".repeat(129)}), "code", "length"),
        (json!({"code": "abc", "tenant_id": 0}), "tenant_id", "range"),
        (
            json!({"code": "abc", "extra": true}),
            "extra",
            "unknown_field",
        ),
        (json!({"code": "abc", "invite": ""}), "invite", "length"),
    ];
    for (body, field, code) in cases {
        let answer = app.post(LOGIN, None, &body).await.expect(422);
        assert_eq!(answer.code(), "validation_failed", "{body}");
        let errors = answer.body["errors"].as_array().unwrap();
        assert_eq!(errors.len(), 1, "{body}: {}", answer.text);
        assert_eq!(errors[0]["field"], field, "{body}");
        assert_eq!(errors[0]["code"], code, "{body}");
        assert!(!errors[0]["message"].as_str().unwrap().is_empty());
    }
    assert_eq!(
        app.mock.call_count("jscode2session"),
        0,
        "nothing reached WeChat"
    );
}

#[tokio::test]
async fn an_oversized_body_is_refused() {
    let app = spawn_app().await;
    let body = json!({"code": "x".repeat(300 * 1024)});
    let answer = app.post(LOGIN, None, &body).await.expect(413);
    assert_eq!(answer.code(), "payload_too_large");
}

#[tokio::test]
async fn a_well_formed_request_id_is_echoed_and_a_bad_one_replaced() {
    let app = spawn_app().await;
    let given = app
        .send(
            app.client
                .get(app.url("/healthz"))
                .header("x-request-id", "trace-abc.123"),
        )
        .await
        .expect(200);
    assert_eq!(given.header("x-request-id"), Some("trace-abc.123"));

    let generated = app.get("/healthz", None).await.expect(200);
    assert_eq!(generated.header("x-request-id").unwrap().len(), 36);

    let replaced = app
        .send(
            app.client
                .get(app.url("/healthz"))
                .header("x-request-id", "bad id <script>"),
        )
        .await
        .expect(200);
    assert_ne!(replaced.header("x-request-id"), Some("bad id <script>"));
    assert!(replaced.header("x-request-id").is_some());

    let problem = app
        .send(
            app.client
                .get(app.url("/api/v1/me"))
                .header("x-request-id", "corr-42"),
        )
        .await
        .expect(401);
    assert_eq!(problem.body["request_id"], "corr-42");
}

#[tokio::test]
async fn probes_report_liveness_and_readiness() {
    let app = spawn_app().await;
    let health = app.get("/healthz", None).await.expect(200);
    assert_eq!(health.body["status"], "ok");
    let ready = app.get("/readyz", None).await.expect(200);
    assert_eq!(ready.body["status"], "ready");
    assert_eq!(ready.body["database"]["status"], "ok");
    assert_eq!(ready.body["database"]["backend"], app.backend.name());
    let cache = match app.backend {
        scantag_e2e::Backend::Sqlite => "memory",
        scantag_e2e::Backend::MySql { .. } => "redis",
    };
    assert_eq!(ready.body["cache"]["backend"], cache);
    assert_eq!(ready.body["cache"]["status"], "ok");
}

#[tokio::test]
async fn unknown_routes_are_404_and_wrong_methods_405_with_allow() {
    let app = spawn_app().await;
    let answer = app.get("/api/v1/nothing-here", None).await.expect(404);
    assert_eq!(answer.code(), "not_found");
    let answer = app
        .request(reqwest::Method::DELETE, "/api/v1/me", None, None)
        .await
        .expect(405);
    assert_eq!(answer.code(), "method_not_allowed");
    assert_eq!(answer.header("allow"), Some("GET"));
    let answer = app
        .request(reqwest::Method::PUT, "/api/v1/tags/7", None, None)
        .await
        .expect(405);
    assert_eq!(answer.header("allow"), Some("GET, PATCH"));
}
