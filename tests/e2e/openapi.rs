//! The OpenAPI document: served, browsable, and identical to the committed file.

use scantag_e2e::spawn_app;

const COMMITTED: &str = include_str!("../../openapi/openapi.json");

#[test]
fn the_committed_openapi_document_is_current() {
    let generated = scantag_api::openapi::document_json().unwrap();
    assert!(
        generated == COMMITTED,
        "openapi/openapi.json is out of date: run `make openapi` and commit the result"
    );
}

#[tokio::test]
async fn the_served_document_is_the_committed_one_and_documents_every_operation() {
    let app = spawn_app().await;
    let served = app.get("/api/v1/openapi.json", None).await;
    assert_eq!(served.status.as_u16(), 200);
    let committed: serde_json::Value = serde_json::from_str(COMMITTED).unwrap();
    assert_eq!(served.body, committed);

    let paths = committed["paths"].as_object().unwrap();
    for path in [
        "/api/v1/auth/wechat/login",
        "/api/v1/auth/refresh",
        "/api/v1/auth/logout",
        "/api/v1/me",
        "/api/v1/invites",
        "/api/v1/staff",
        "/api/v1/staff/{id}",
        "/healthz",
        "/readyz",
    ] {
        assert!(paths.contains_key(path), "{path} is documented");
    }
    for (path, item) in paths {
        for (method, operation) in item.as_object().unwrap() {
            let summary = operation["summary"].as_str().unwrap_or("");
            assert!(!summary.is_empty(), "{method} {path} has a summary");
            for (status, response) in operation["responses"].as_object().unwrap() {
                let description = response["description"].as_str().unwrap_or("");
                assert!(
                    !description.is_empty(),
                    "{method} {path} {status} has a description"
                );
            }
        }
    }
}

#[tokio::test]
async fn the_swagger_ui_is_served_without_the_internet() {
    let app = spawn_app().await;
    let page = app.client.get(app.url("/docs/")).send().await.unwrap();
    assert_eq!(page.status().as_u16(), 200);
    let html = page.text().await.unwrap();
    assert!(html.contains("swagger-ui"));
    assert!(!html.contains("unpkg.com") && !html.contains("cdn.jsdelivr"));
}
