use scantag_api::admin;
use scantag_e2e::{spawn_app, spawn_app_with};
use serde_json::json;

#[tokio::test]
async fn first_admin_binds_through_the_cli_invite() {
    let app = spawn_app().await;
    let (tenant_id, invite) = app.create_tenant("星河科技").await;

    let admin = app.login("o-first-admin", Some(&invite)).await;

    assert_eq!(admin.body["principal"]["kind"], "staff");
    assert_eq!(admin.body["principal"]["role"], "admin");
    assert_eq!(admin.tenant_id, Some(tenant_id));
    assert_eq!(admin.body["token_type"], "Bearer");
    assert!(admin.body["expires_in"].as_u64().unwrap() > 0);
    let me = app.get("/api/v1/me", Some(&admin.access)).await.expect(200);
    assert_eq!(me.body["principal"]["id"], admin.id);
    assert_eq!(me.body["tenant"]["name"], "星河科技");
    assert_eq!(me.body["tenant"]["timezone"], "Asia/Shanghai");
}

#[tokio::test]
async fn the_wechat_session_key_never_leaves_the_server() {
    let app = spawn_app().await;
    let (_, invite) = app.create_tenant("Acme").await;
    let code = app.login_code(Some("o-key"));
    let answer = app
        .post(
            "/api/v1/auth/wechat/login",
            None,
            &json!({"code": code, "invite": invite}),
        )
        .await
        .expect(200);
    assert!(!answer.text.contains("session_key"));
    assert!(
        !answer.text.contains("o-key"),
        "the openid is not echoed either"
    );
}

#[tokio::test]
async fn staff_log_in_again_without_an_invite_and_find_the_same_account() {
    let app = spawn_app().await;
    let first = app.tenant_admin("Acme").await;

    let again = app.login("admin-of-Acme", None).await;

    assert_eq!(again.body["principal"]["kind"], "staff");
    assert_eq!(again.id, first.id);
    assert_eq!(again.tenant_id, first.tenant_id);
}

#[tokio::test]
async fn a_login_without_invite_is_a_visitor_without_staff_rights() {
    let app = spawn_app().await;
    app.tenant_admin("Acme").await;

    let visitor = app.login("o-passer-by", None).await;

    assert_eq!(visitor.body["principal"]["kind"], "visitor");
    assert_eq!(visitor.body["principal"]["role"], "visitor");
    assert!(visitor.tenant_id.is_none());
    let me = app
        .get("/api/v1/me", Some(&visitor.access))
        .await
        .expect(200);
    assert_eq!(me.body["principal"]["kind"], "visitor");
    let staff = app
        .get("/api/v1/staff", Some(&visitor.access))
        .await
        .expect(403);
    assert_eq!(staff.code(), "staff_only");
    let invite = app
        .post(
            "/api/v1/invites",
            Some(&visitor.access),
            &json!({"role": "admin"}),
        )
        .await
        .expect(403);
    assert_eq!(invite.code(), "staff_only");
    let again = app.login("o-passer-by", None).await;
    assert_eq!(
        again.id, visitor.id,
        "a visitor is recognised on the next login"
    );
}

#[tokio::test]
async fn refresh_rotates_the_token_and_reuse_revokes_the_whole_session() {
    let app = spawn_app().await;
    let admin = app.tenant_admin("Acme").await;

    let rotated = app
        .post(
            "/api/v1/auth/refresh",
            None,
            &json!({"refresh_token": admin.refresh}),
        )
        .await
        .expect(200);
    let next_refresh = rotated.body["refresh_token"].as_str().unwrap().to_owned();
    let next_access = rotated.body["access_token"].as_str().unwrap().to_owned();
    assert_ne!(next_refresh, admin.refresh);
    assert_eq!(rotated.body["principal"]["id"], admin.id);
    app.get("/api/v1/me", Some(&next_access)).await.expect(200);

    let reused = app
        .post(
            "/api/v1/auth/refresh",
            None,
            &json!({"refresh_token": admin.refresh}),
        )
        .await
        .expect(401);
    assert_eq!(reused.code(), "refresh_token_reused");

    let after = app
        .post(
            "/api/v1/auth/refresh",
            None,
            &json!({"refresh_token": next_refresh}),
        )
        .await
        .expect(401);
    assert_eq!(
        after.code(),
        "refresh_token_invalid",
        "the newest token died with its session"
    );
    let me = app.get("/api/v1/me", Some(&next_access)).await.expect(401);
    assert_eq!(me.code(), "session_revoked");
}

#[tokio::test]
async fn concurrent_refreshes_with_one_token_let_exactly_one_through() {
    let app = spawn_app().await;
    let admin = app.tenant_admin("Acme").await;
    let body = json!({"refresh_token": admin.refresh});

    let (a, b) = tokio::join!(
        app.post("/api/v1/auth/refresh", None, &body),
        app.post("/api/v1/auth/refresh", None, &body)
    );

    let mut statuses = [a.status.as_u16(), b.status.as_u16()];
    statuses.sort_unstable();
    assert_eq!(statuses, [200, 401]);
}

#[tokio::test]
async fn an_unknown_refresh_token_is_refused() {
    let app = spawn_app().await;
    let answer = app
        .post(
            "/api/v1/auth/refresh",
            None,
            &json!({"refresh_token": "not-a-token"}),
        )
        .await
        .expect(401);
    assert_eq!(answer.code(), "refresh_token_invalid");
}

#[tokio::test]
async fn logout_ends_the_access_and_refresh_tokens() {
    let app = spawn_app().await;
    let admin = app.tenant_admin("Acme").await;
    let other = app.login("admin-of-Acme", None).await;

    let answer = app
        .request(
            reqwest::Method::POST,
            "/api/v1/auth/logout",
            Some(&admin.access),
            None,
        )
        .await;
    assert_eq!(answer.status.as_u16(), 204);

    let me = app.get("/api/v1/me", Some(&admin.access)).await.expect(401);
    assert_eq!(me.code(), "session_revoked");
    app.post(
        "/api/v1/auth/refresh",
        None,
        &json!({"refresh_token": admin.refresh}),
    )
    .await
    .expect(401);
    app.get("/api/v1/me", Some(&other.access)).await.expect(200);
    let anonymous = app
        .request(reqwest::Method::POST, "/api/v1/auth/logout", None, None)
        .await
        .expect(401);
    assert_eq!(anonymous.code(), "unauthenticated");
}

#[tokio::test]
async fn an_invite_binds_only_once() {
    let app = spawn_app().await;
    let (_, invite) = app.create_tenant("Acme").await;
    app.login("o-first", Some(&invite)).await;

    let code = app.login_code(Some("o-second"));
    let answer = app
        .post(
            "/api/v1/auth/wechat/login",
            None,
            &json!({"code": code, "invite": invite}),
        )
        .await
        .expect(409);
    assert_eq!(answer.code(), "invite_used");
}

#[tokio::test]
async fn concurrent_logins_with_one_invite_create_one_staff_member() {
    let app = spawn_app().await;
    let (_, invite) = app.create_tenant("Acme").await;
    let bodies: Vec<_> = (0..5)
        .map(|i| json!({"code": app.login_code(Some(&format!("o-racer-{i}"))), "invite": invite}))
        .collect();

    let answers = futures_util::future::join_all(
        bodies
            .iter()
            .map(|b| app.post("/api/v1/auth/wechat/login", None, b)),
    )
    .await;

    let ok = answers.iter().filter(|a| a.status.as_u16() == 200).count();
    let used = answers.iter().filter(|a| a.code() == "invite_used").count();
    assert_eq!((ok, used), (1, 4));
}

#[tokio::test]
async fn unknown_and_expired_invites_are_refused_and_the_login_is_not_half_done() {
    let app = spawn_app().await;
    let (tenant_id, _) = app.create_tenant("Acme").await;
    let expired = admin::create_invite(
        &app.db,
        scantag_domain::TenantId(tenant_id),
        scantag_domain::identity::staff::Role::Sales,
        None,
        chrono::Duration::seconds(-1),
    )
    .await
    .unwrap();

    let code = app.login_code(Some("o-late"));
    let late = app
        .post(
            "/api/v1/auth/wechat/login",
            None,
            &json!({"code": code, "invite": expired.code}),
        )
        .await
        .expect(410);
    assert_eq!(late.code(), "invite_expired");

    let code = app.login_code(Some("o-late"));
    let unknown = app
        .post(
            "/api/v1/auth/wechat/login",
            None,
            &json!({"code": code, "invite": "nope"}),
        )
        .await
        .expect(400);
    assert_eq!(unknown.code(), "invite_invalid");

    let visitor = app.login("o-late", None).await;
    assert_eq!(
        visitor.body["principal"]["kind"], "visitor",
        "no staff account was created"
    );
}

#[tokio::test]
async fn login_still_works_when_redis_is_unreachable() {
    let app = spawn_app_with(|s| {
        s.redis_url = Some(secrecy::SecretString::from(
            "redis://127.0.0.1:1/".to_owned(),
        ));
    })
    .await;
    let admin = app.tenant_admin("Acme").await;
    app.get("/api/v1/me", Some(&admin.access)).await.expect(200);
    let ready = app.get("/readyz", None).await.expect(200);
    assert_eq!(ready.body["status"], "degraded");
    assert_eq!(ready.body["cache"]["backend"], "redis");
    assert_eq!(ready.body["cache"]["status"], "unavailable");
}
