use scantag_e2e::spawn_app;
use serde_json::json;

#[tokio::test]
async fn an_admin_invites_a_sales_rep_who_logs_in_with_that_role() {
    let app = spawn_app().await;
    let admin = app.tenant_admin("Acme").await;

    let invite = app
        .post(
            "/api/v1/invites",
            Some(&admin.access),
            &json!({"role": "sales", "display_name": "李销售", "expires_in_hours": 24}),
        )
        .await
        .expect(201);
    assert_eq!(invite.body["role"], "sales");
    assert_eq!(invite.body["tenant_id"], admin.tenant_id.unwrap());
    let sales = app.login("o-sales", invite.body["code"].as_str()).await;

    assert_eq!(sales.body["principal"]["role"], "sales");
    assert_eq!(sales.body["principal"]["display_name"], "李销售");
    assert_eq!(sales.tenant_id, admin.tenant_id);
    let list = app
        .get("/api/v1/staff", Some(&admin.access))
        .await
        .expect(200);
    let names: Vec<_> = list.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["display_name"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(names.len(), 2);
    assert!(names.contains(&"李销售".to_owned()));
}

#[tokio::test]
async fn sales_reps_can_neither_invite_nor_list_staff() {
    let app = spawn_app().await;
    let admin = app.tenant_admin("Acme").await;
    let sales = app.invite_staff(&admin, "o-sales", "sales").await;

    let invite = app
        .post(
            "/api/v1/invites",
            Some(&sales.access),
            &json!({"role": "admin"}),
        )
        .await
        .expect(403);
    assert_eq!(invite.code(), "insufficient_role");
    app.get("/api/v1/staff", Some(&sales.access))
        .await
        .expect(403);
}

#[tokio::test]
async fn a_manager_lists_staff_but_cannot_change_them() {
    let app = spawn_app().await;
    let admin = app.tenant_admin("Acme").await;
    let manager = app.invite_staff(&admin, "o-manager", "manager").await;

    app.get("/api/v1/staff", Some(&manager.access))
        .await
        .expect(200);
    app.patch(
        &format!("/api/v1/staff/{}", admin.id),
        Some(&manager.access),
        &json!({"active": false}),
    )
    .await
    .expect(403);
}

#[tokio::test]
async fn deactivating_a_staff_member_ends_their_sessions_at_once() {
    let app = spawn_app().await;
    let admin = app.tenant_admin("Acme").await;
    let sales = app.invite_staff(&admin, "o-leaver", "sales").await;
    app.get("/api/v1/me", Some(&sales.access)).await.expect(200);

    let updated = app
        .patch(
            &format!("/api/v1/staff/{}", sales.id),
            Some(&admin.access),
            &json!({"active": false}),
        )
        .await
        .expect(200);
    assert_eq!(updated.body["active"], false);

    app.get("/api/v1/me", Some(&sales.access)).await.expect(401);
    app.post(
        "/api/v1/auth/refresh",
        None,
        &json!({"refresh_token": sales.refresh}),
    )
    .await
    .expect(401);
    let again = app.login("o-leaver", None).await;
    assert_eq!(
        again.body["principal"]["kind"], "visitor",
        "no staff rights remain"
    );
}

#[tokio::test]
async fn a_role_change_takes_effect_and_old_tokens_stop_claiming_the_old_role() {
    let app = spawn_app().await;
    let admin = app.tenant_admin("Acme").await;
    let sales = app.invite_staff(&admin, "o-promoted", "sales").await;

    let updated = app
        .patch(
            &format!("/api/v1/staff/{}", sales.id),
            Some(&admin.access),
            &json!({"role": "manager"}),
        )
        .await
        .expect(200);
    assert_eq!(updated.body["role"], "manager");

    app.get("/api/v1/me", Some(&sales.access)).await.expect(401);
    let again = app.login("o-promoted", None).await;
    assert_eq!(again.body["principal"]["role"], "manager");
}

#[tokio::test]
async fn admins_cannot_deactivate_or_demote_themselves() {
    let app = spawn_app().await;
    let admin = app.tenant_admin("Acme").await;
    for body in [json!({"active": false}), json!({"role": "sales"})] {
        let answer = app
            .patch(
                &format!("/api/v1/staff/{}", admin.id),
                Some(&admin.access),
                &body,
            )
            .await
            .expect(409);
        assert_eq!(answer.code(), "conflict");
    }
    app.get("/api/v1/me", Some(&admin.access)).await.expect(200);
}

#[tokio::test]
async fn another_tenants_staff_member_is_not_found() {
    let app = spawn_app().await;
    let acme = app.tenant_admin("Acme").await;
    let globex = app.tenant_admin("Globex").await;

    let answer = app
        .patch(
            &format!("/api/v1/staff/{}", globex.id),
            Some(&acme.access),
            &json!({"active": false}),
        )
        .await
        .expect(404);
    assert_eq!(answer.code(), "not_found");
    let missing = app
        .patch(
            "/api/v1/staff/999999",
            Some(&acme.access),
            &json!({"active": false}),
        )
        .await
        .expect(404);
    assert_eq!(
        missing.body["detail"], answer.body["detail"],
        "indistinguishable from missing"
    );
    app.get("/api/v1/me", Some(&globex.access))
        .await
        .expect(200);
    let list = app
        .get("/api/v1/staff", Some(&acme.access))
        .await
        .expect(200);
    assert_eq!(list.body["items"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn invites_with_bad_fields_are_refused_with_field_errors() {
    let app = spawn_app().await;
    let admin = app.tenant_admin("Acme").await;
    let cases = [
        (json!({"role": "owner"}), "role"),
        (json!({}), "role"),
        (
            json!({"role": "sales", "expires_in_hours": 0}),
            "expires_in_hours",
        ),
        (
            json!({"role": "sales", "expires_in_hours": 721}),
            "expires_in_hours",
        ),
        (json!({"role": "sales", "display_name": ""}), "display_name"),
        (
            json!({"role": "sales", "display_name": "x".repeat(65)}),
            "display_name",
        ),
        (json!({"role": "sales", "colour": "red"}), "colour"),
    ];
    for (body, field) in cases {
        let answer = app
            .post("/api/v1/invites", Some(&admin.access), &body)
            .await
            .expect(422);
        assert_eq!(answer.code(), "validation_failed");
        assert_eq!(answer.error_fields(), vec![field.to_owned()], "{body}");
    }
}

#[tokio::test]
async fn staff_updates_with_bad_fields_are_refused_and_change_nothing() {
    let app = spawn_app().await;
    let admin = app.tenant_admin("Acme").await;
    let sales = app.invite_staff(&admin, "o-sales", "sales").await;
    let path = format!("/api/v1/staff/{}", sales.id);
    let cases = [
        (json!({}), "body"),
        (json!({"active": "no"}), "active"),
        (json!({"role": "boss"}), "role"),
        (json!({"display_name": " "}), "display_name"),
    ];
    for (body, field) in cases {
        let answer = app
            .patch(&path, Some(&admin.access), &body)
            .await
            .expect(422);
        assert_eq!(answer.error_fields(), vec![field.to_owned()], "{body}");
    }
    app.patch(
        "/api/v1/staff/abc",
        Some(&admin.access),
        &json!({"active": false}),
    )
    .await
    .expect(404);
    app.get("/api/v1/me", Some(&sales.access)).await.expect(200);
    let list = app
        .get("/api/v1/staff", Some(&admin.access))
        .await
        .expect(200);
    let rep = list.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["id"] == sales.id)
        .unwrap()
        .clone();
    assert_eq!(rep["role"], "sales");
    assert_eq!(rep["active"], true);
}
