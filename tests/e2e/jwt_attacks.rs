//! Forged, tampered, expired and misdirected access tokens are all refused with 401.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use scantag_e2e::{Session, TEST_JWT_KID, TEST_JWT_SECRET, TestApp, spawn_app};
use serde_json::{Value, json};

fn claims_of(session: &Session) -> Value {
    let payload = session.access.split('.').nth(1).unwrap();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap()
}

fn sign(claims: &Value, kid: Option<&str>, secret: &str) -> String {
    let mut header = Header::new(Algorithm::HS256);
    header.kid = kid.map(str::to_owned);
    jsonwebtoken::encode(
        &header,
        claims,
        &EncodingKey::from_secret(secret.as_bytes()),
    )
    .unwrap()
}

async fn assert_refused(app: &TestApp, token: &str, code: &str) {
    let answer = app.get("/api/v1/me", Some(token)).await.expect(401);
    assert_eq!(answer.code(), code, "token {token}");
    assert_eq!(answer.header("www-authenticate"), Some("Bearer"));
}

#[tokio::test]
async fn a_token_re_signed_with_the_right_key_is_accepted_so_the_forgeries_below_are_meaningful() {
    let app = spawn_app().await;
    let admin = app.tenant_admin("Acme").await;
    let token = sign(&claims_of(&admin), Some(TEST_JWT_KID), TEST_JWT_SECRET);
    app.get("/api/v1/me", Some(&token)).await.expect(200);
}

#[tokio::test]
async fn an_unsigned_alg_none_token_is_refused() {
    let app = spawn_app().await;
    let admin = app.tenant_admin("Acme").await;
    let header = URL_SAFE_NO_PAD
        .encode(json!({"alg": "none", "typ": "JWT", "kid": TEST_JWT_KID}).to_string());
    let payload = URL_SAFE_NO_PAD.encode(claims_of(&admin).to_string());
    assert_refused(&app, &format!("{header}.{payload}."), "invalid_token").await;
}

#[tokio::test]
async fn a_tampered_payload_is_refused() {
    let app = spawn_app().await;
    let admin = app.tenant_admin("Acme").await;
    let mut claims = claims_of(&admin);
    claims["role"] = json!("admin");
    claims["sub"] = json!("999");
    let parts: Vec<&str> = admin.access.split('.').collect();
    let forged = format!(
        "{}.{}.{}",
        parts[0],
        URL_SAFE_NO_PAD.encode(claims.to_string()),
        parts[2]
    );
    assert_refused(&app, &forged, "invalid_token").await;
}

#[tokio::test]
async fn a_token_signed_with_another_secret_is_refused() {
    let app = spawn_app().await;
    let admin = app.tenant_admin("Acme").await;
    let forged = sign(
        &claims_of(&admin),
        Some(TEST_JWT_KID),
        "an-attacker-secret-that-is-long-enough-too",
    );
    assert_refused(&app, &forged, "invalid_token").await;
}

#[tokio::test]
async fn an_expired_token_is_refused_as_expired() {
    let app = spawn_app().await;
    let admin = app.tenant_admin("Acme").await;
    let mut claims = claims_of(&admin);
    let now = chrono::Utc::now().timestamp();
    claims["iat"] = json!(now - 7200);
    claims["exp"] = json!(now - 3600);
    assert_refused(
        &app,
        &sign(&claims, Some(TEST_JWT_KID), TEST_JWT_SECRET),
        "token_expired",
    )
    .await;
}

#[tokio::test]
async fn a_token_with_an_unknown_or_missing_kid_is_refused() {
    let app = spawn_app().await;
    let admin = app.tenant_admin("Acme").await;
    let claims = claims_of(&admin);
    assert_refused(
        &app,
        &sign(&claims, Some("retired-key"), TEST_JWT_SECRET),
        "invalid_token",
    )
    .await;
    assert_refused(&app, &sign(&claims, None, TEST_JWT_SECRET), "invalid_token").await;
}

#[tokio::test]
async fn a_validly_signed_token_naming_another_tenant_is_refused() {
    let app = spawn_app().await;
    let acme = app.tenant_admin("Acme").await;
    let globex = app.tenant_admin("Globex").await;
    let mut claims = claims_of(&acme);
    claims["tid"] = json!(globex.tenant_id.unwrap());
    assert_refused(
        &app,
        &sign(&claims, Some(TEST_JWT_KID), TEST_JWT_SECRET),
        "invalid_token",
    )
    .await;
}

#[tokio::test]
async fn a_visitor_token_claiming_staff_rights_is_refused() {
    let app = spawn_app().await;
    let acme = app.tenant_admin("Acme").await;
    let visitor = app.login("o-visitor", None).await;
    let mut claims = claims_of(&visitor);
    claims["kind"] = json!("staff");
    claims["role"] = json!("admin");
    claims["tid"] = json!(acme.tenant_id.unwrap());
    assert_refused(
        &app,
        &sign(&claims, Some(TEST_JWT_KID), TEST_JWT_SECRET),
        "invalid_token",
    )
    .await;
}

#[tokio::test]
async fn wrong_audience_and_issuer_are_refused() {
    let app = spawn_app().await;
    let admin = app.tenant_admin("Acme").await;
    for (field, value) in [("aud", "someone-else"), ("iss", "someone-else")] {
        let mut claims = claims_of(&admin);
        claims[field] = json!(value);
        assert_refused(
            &app,
            &sign(&claims, Some(TEST_JWT_KID), TEST_JWT_SECRET),
            "invalid_token",
        )
        .await;
    }
}

#[tokio::test]
async fn missing_and_malformed_authorization_headers_are_refused() {
    let app = spawn_app().await;
    let missing = app.get("/api/v1/me", None).await.expect(401);
    assert_eq!(missing.code(), "unauthenticated");
    assert_refused(&app, "garbage", "invalid_token").await;
    let basic = app
        .send(
            app.client
                .get(app.url("/api/v1/me"))
                .header("authorization", "Basic dXNlcjpwYXNz"),
        )
        .await
        .expect(401);
    assert_eq!(basic.code(), "invalid_token");
}
