//! Channel management: what a channel may be configured with, who may configure it, other
//! tenants' channels, and the channel's mini-program code (rendered by WeChat, then cached).

use reqwest::Method;
use scantag_e2e::{Answer, Session, TestApp, spawn_app};
use serde_json::{Value, json};

const POLICY: &str = "2026-10";

fn channel_body(scene: &str) -> Value {
    json!({"name": "展会", "scene": scene, "privacy_policy_version": POLICY})
}

async fn create_channel(app: &TestApp, admin: &Session, body: &Value) -> Answer {
    app.post("/api/v1/channels", Some(&admin.access), body)
        .await
}

async fn channel_count(app: &TestApp, admin: &Session) -> usize {
    app.get("/api/v1/channels", Some(&admin.access))
        .await
        .expect(200)
        .body["items"]
        .as_array()
        .unwrap()
        .len()
}

/// GETs the channel's code and returns the answer with the raw bytes.
async fn qrcode(app: &TestApp, who: &Session, id: i64, query: &str) -> (u16, String, Vec<u8>) {
    let response = app
        .client
        .get(app.url(&format!("/api/v1/channels/{id}/qrcode{query}")))
        .bearer_auth(&who.access)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    let cache = response
        .headers()
        .get("x-cache")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    let bytes = response.bytes().await.unwrap().to_vec();
    if status == 200 {
        assert_eq!(content_type, "image/png");
    } else {
        assert_eq!(content_type, "application/problem+json");
    }
    (status, cache, bytes)
}

/// Width and height from a PNG's IHDR chunk.
fn png_size(bytes: &[u8]) -> (u32, u32) {
    assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n", "a PNG signature");
    assert_eq!(&bytes[12..16], b"IHDR");
    let width = u32::from_be_bytes(bytes[16..20].try_into().unwrap());
    let height = u32::from_be_bytes(bytes[20..24].try_into().unwrap());
    (width, height)
}

#[tokio::test]
async fn a_channel_is_created_with_its_tags_policy_and_form() {
    let app = spawn_app().await;
    let admin = app.tenant_admin("星河").await;
    let rep = app.invite_staff(&admin, "o-rep", "sales").await;
    let group = app.create_group(&admin, "来源渠道", false).await;
    let tag = app.create_tag(&admin, group, "车展").await;
    let created = create_channel(
        &app,
        &admin,
        &json!({
            "name": "2026 上海车展展台", "scene": "expo-2026_A", "default_tag_ids": [tag, tag],
            "owner_policy": {"type": "round_robin", "staff_ids": [admin.id, rep.id]},
            "form": [{"key": "phone", "required": true, "label": "联系电话"}, {"key": "company"}],
            "privacy_policy_version": POLICY, "privacy_policy_url": "https://example.com/privacy",
        }),
    )
    .await
    .expect(201);
    let c = &created.body;
    let tenant = admin.tenant_id.unwrap();
    assert_eq!(c["qr_scene"], format!("{tenant}.expo-2026_A"));
    assert_eq!(
        c["default_tags"].as_array().unwrap().len(),
        1,
        "deduplicated"
    );
    assert_eq!(c["default_tags"][0]["group_name"], "来源渠道");
    assert_eq!(c["owner_policy"]["type"], "round_robin");
    let keys: Vec<&str> = c["form"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["key"].as_str().unwrap())
        .collect();
    assert_eq!(
        keys,
        ["name", "phone", "company"],
        "the name leads the form"
    );
    assert_eq!(c["form"][1]["label"], "联系电话");
    assert_eq!(
        c["form"][2]["label"], "公司",
        "the field's own label by default"
    );
    assert_eq!(c["active"], true);
    assert_eq!(
        c["stats"],
        json!({"scans": 0, "captures": 0, "new_customers": 0, "merged": 0})
    );

    let id = c["id"].as_i64().unwrap();
    let listed = app
        .get("/api/v1/channels", Some(&rep.access))
        .await
        .expect(200);
    assert_eq!(
        listed.body["items"][0]["id"], id,
        "every staff member sees channels"
    );

    let changed = app
        .patch(
            &format!("/api/v1/channels/{id}"),
            Some(&admin.access),
            &json!({"name": "车展", "privacy_policy_url": null, "owner_policy": {"type": "pool"}}),
        )
        .await
        .expect(200);
    assert_eq!(changed.body["name"], "车展");
    assert_eq!(changed.body["privacy_policy_url"], Value::Null);
    assert_eq!(changed.body["owner_policy"], json!({"type": "pool"}));
    assert_eq!(changed.body["scene"], "expo-2026_A", "the scene stays");
}

#[tokio::test]
async fn rejected_channels_say_which_field_is_wrong_and_write_nothing() {
    let app = spawn_app().await;
    let admin = app.tenant_admin("星河").await;
    let group = app.create_group(&admin, "意向", true).await;
    let hot = app.create_tag(&admin, group, "高意向").await;
    let cold = app.create_tag(&admin, group, "低意向").await;
    let retired = app.create_tag(&admin, group, "旧标签").await;
    app.patch(
        &format!("/api/v1/tags/{retired}"),
        Some(&admin.access),
        &json!({"status": "archived"}),
    )
    .await
    .expect(200);
    let rep = app.invite_staff(&admin, "o-rep", "sales").await;
    // The code carries "{tenant}." before the scene, and WeChat allows 32 characters.
    let room = 32 - format!("{}.", admin.tenant_id.unwrap()).len();

    let with = |change: Value| {
        let mut body = channel_body("expo");
        for (k, v) in change.as_object().unwrap() {
            if v.is_null() {
                body.as_object_mut().unwrap().remove(k);
            } else {
                body[k] = v.clone();
            }
        }
        body
    };
    let cases: Vec<(Value, &str, &str)> = vec![
        (with(json!({"scene": "展会"})), "scene", "scene"),
        (with(json!({"scene": "a b"})), "scene", "scene"),
        (with(json!({"scene": "50%off"})), "scene", "scene"),
        (with(json!({"scene": ""})), "scene", "length"),
        (
            with(json!({"scene": "s".repeat(room + 1)})),
            "scene",
            "length",
        ),
        (with(json!({"name": " "})), "name", "length"),
        (
            with(json!({"default_tag_ids": [999_999]})),
            "default_tag_ids[0]",
            "unknown_tag",
        ),
        (
            with(json!({"default_tag_ids": [retired]})),
            "default_tag_ids[0]",
            "archived",
        ),
        (
            with(json!({"default_tag_ids": [hot, cold]})),
            "default_tag_ids[1]",
            "exclusive",
        ),
        (
            with(json!({"owner_policy": {"type": "fixed", "staff_id": 999_999}})),
            "owner_policy.staff_id",
            "unknown_staff",
        ),
        (
            with(json!({"owner_policy": {"type": "round_robin", "staff_ids": []}})),
            "owner_policy.staff_ids",
            "length",
        ),
        (
            with(json!({"owner_policy": {"type": "round_robin", "staff_ids": [rep.id, rep.id]}})),
            "owner_policy.staff_ids[1]",
            "duplicate",
        ),
        (
            with(json!({"owner_policy": {"type": "lottery"}})),
            "owner_policy.type",
            "invalid_value",
        ),
        (
            with(json!({"form": [{"key": "salary"}]})),
            "form[0].key",
            "unknown_field",
        ),
        (
            with(json!({"form": [{"key": "custom_fields.nope"}]})),
            "form[0].key",
            "unknown_field",
        ),
        (
            with(json!({"form": [{"key": "phone"}, {"key": "phone"}]})),
            "form[1].key",
            "duplicate",
        ),
        (
            with(json!({"form": [{"key": "name", "required": false}]})),
            "form[0].required",
            "required",
        ),
        (
            with(json!({"privacy_policy_url": "javascript:alert(1)"})),
            "privacy_policy_url",
            "url",
        ),
        (
            with(json!({"starts_at": "2026-12-01T00:00:00Z", "ends_at": "2026-11-01T00:00:00Z"})),
            "ends_at",
            "range",
        ),
        (
            with(json!({"privacy_policy_version": null})),
            "privacy_policy_version",
            "required",
        ),
        (with(json!({"rr_next": 3})), "rr_next", "unknown_field"),
    ];
    for (body, field, code) in cases {
        create_channel(&app, &admin, &body)
            .await
            .expect_field_error(field, Some(code));
    }
    assert_eq!(channel_count(&app, &admin).await, 0, "nothing was written");

    create_channel(&app, &admin, &channel_body(&"s".repeat(room)))
        .await
        .expect(201);
    let taken = create_channel(&app, &admin, &channel_body(&"s".repeat(room)))
        .await
        .expect(409);
    assert_eq!(taken.code(), "scene_taken");

    // A patch is checked the same way, and a rejected one changes nothing.
    let id = app.get("/api/v1/channels", Some(&admin.access)).await.body["items"][0]["id"]
        .as_i64()
        .unwrap();
    let path = format!("/api/v1/channels/{id}");
    app.patch(
        &path,
        Some(&admin.access),
        &json!({"name": "改名", "default_tag_ids": [retired]}),
    )
    .await
    .expect_coded_field_error("default_tag_ids[0]", "archived");
    app.patch(&path, Some(&admin.access), &json!({"scene": "moved"}))
        .await
        .expect_field_error("scene", Some("unknown_field"));
    let kept = app.get(&path, Some(&admin.access)).await.expect(200);
    assert_eq!(kept.body["name"], "展会");
}

#[tokio::test]
async fn only_admins_and_managers_change_channels_and_visitors_reach_no_staff_endpoint() {
    let app = spawn_app().await;
    let admin = app.tenant_admin("星河").await;
    let manager = app.invite_staff(&admin, "o-manager", "manager").await;
    let rep = app.invite_staff(&admin, "o-rep", "sales").await;
    let id = create_channel(&app, &manager, &channel_body("expo"))
        .await
        .expect(201)
        .body["id"]
        .as_i64()
        .unwrap();
    let path = format!("/api/v1/channels/{id}");

    let refused = create_channel(&app, &rep, &channel_body("rep"))
        .await
        .expect(403);
    assert_eq!(refused.code(), "insufficient_role");
    let refused = app
        .patch(&path, Some(&rep.access), &json!({"active": false}))
        .await
        .expect(403);
    assert_eq!(refused.code(), "insufficient_role");
    app.get(&path, Some(&rep.access)).await.expect(200);

    let visitor = app.visitor("o-visitor", None).await;
    let staff_only: Vec<(Method, String, Option<Value>)> = vec![
        (Method::GET, "/api/v1/channels".into(), None),
        (
            Method::POST,
            "/api/v1/channels".into(),
            Some(channel_body("v")),
        ),
        (Method::GET, path.clone(), None),
        (Method::PATCH, path.clone(), Some(json!({"active": false}))),
        (Method::GET, format!("{path}/qrcode"), None),
        (Method::GET, "/api/v1/tasks".into(), None),
        (Method::POST, "/api/v1/tasks/1/complete".into(), None),
        (Method::GET, "/api/v1/customers/1/captures".into(), None),
    ];
    for (method, path, body) in &staff_only {
        let answer = app
            .request(method.clone(), path, Some(&visitor.access), body.as_ref())
            .await
            .expect(403);
        assert_eq!(answer.code(), "staff_only", "{method} {path}");
        app.request(method.clone(), path, None, body.as_ref())
            .await
            .expect(401);
    }
    assert_eq!(channel_count(&app, &admin).await, 1);
}

#[tokio::test]
async fn another_tenants_channels_and_tasks_are_missing() {
    let app = spawn_app().await;
    let mine = app.tenant_admin("星河").await;
    let theirs = app.tenant_admin("月亮").await;
    let id = create_channel(&app, &mine, &channel_body("expo"))
        .await
        .expect(201)
        .body["id"]
        .as_i64()
        .unwrap();
    let path = format!("/api/v1/channels/{id}");
    for (method, path, body) in [
        (Method::GET, path.clone(), None),
        (
            Method::PATCH,
            path.clone(),
            Some(json!({"name": "not yours"})),
        ),
        (Method::GET, format!("{path}/qrcode"), None),
    ] {
        let answer = app
            .request(method.clone(), &path, Some(&theirs.access), body.as_ref())
            .await
            .expect(404);
        assert_eq!(answer.code(), "not_found", "{method} {path}");
    }
    assert_eq!(channel_count(&app, &theirs).await, 0);
    // The same scene is free in another tenant: scenes are qualified by the tenant on the code.
    let other = create_channel(&app, &theirs, &channel_body("expo"))
        .await
        .expect(201);
    assert_ne!(
        other.body["qr_scene"],
        json!(format!("{}.expo", mine.tenant_id.unwrap()))
    );

    // A task and a customer's visits belong to their tenant.
    let visitor = app.visitor("o-li", None).await;
    let scene = app.get(&path, Some(&mine.access)).await.body["qr_scene"].clone();
    app.patch(
        &path,
        Some(&mine.access),
        &json!({"owner_policy": {"type": "fixed", "staff_id": mine.id}}),
    )
    .await
    .expect(200);
    let captured = app
        .post(
            "/api/v1/capture",
            Some(&visitor.access),
            &json!({"scene": scene, "name": "李雷", "consent": {"accepted": true, "policy_version": POLICY}}),
        )
        .await
        .expect(201);
    let customer = captured.body["customer_id"].as_i64().unwrap();
    let task = app
        .get("/api/v1/tasks", Some(&mine.access))
        .await
        .expect(200)
        .body["items"][0]["id"]
        .as_i64()
        .unwrap();
    app.post(
        &format!("/api/v1/tasks/{task}/complete"),
        Some(&theirs.access),
        &json!({}),
    )
    .await
    .expect(404);
    app.get(
        &format!("/api/v1/customers/{customer}/captures"),
        Some(&theirs.access),
    )
    .await
    .expect(404);
    app.get(
        &format!("/api/v1/customers/{customer}/captures"),
        Some(&mine.access),
    )
    .await
    .expect(200);
}

#[tokio::test]
async fn a_channel_code_is_a_png_rendered_by_wechat_once_then_cached() {
    let app = spawn_app().await;
    let admin = app.tenant_admin("星河").await;
    let id = create_channel(&app, &admin, &channel_body("expo"))
        .await
        .expect(201)
        .body["id"]
        .as_i64()
        .unwrap();

    let (status, cache, first) = qrcode(&app, &admin, id, "").await;
    assert_eq!((status, cache.as_str()), (200, "miss"));
    assert_eq!(png_size(&first), (430, 430));
    let (status, cache, again) = qrcode(&app, &admin, id, "").await;
    assert_eq!((status, cache.as_str()), (200, "hit"));
    assert_eq!(again, first);
    assert_eq!(app.mock.call_count("getwxacodeunlimit"), 1);

    let (status, cache, wide) = qrcode(&app, &admin, id, "?width=600&env_version=trial").await;
    assert_eq!((status, cache.as_str()), (200, "miss"));
    assert_eq!(png_size(&wide), (600, 600));
    assert_eq!(app.mock.call_count("getwxacodeunlimit"), 2);

    for bad in ["?width=100", "?width=5000", "?env_version=beta", "?size=3"] {
        let answer = app
            .get(
                &format!("/api/v1/channels/{id}/qrcode{bad}"),
                Some(&admin.access),
            )
            .await
            .expect(422);
        assert_eq!(answer.code(), "validation_failed", "{bad}");
    }
    assert_eq!(app.mock.call_count("getwxacodeunlimit"), 2);
}

#[tokio::test]
async fn wechat_failures_on_a_channel_code_are_problems_and_nothing_is_cached() {
    let app = spawn_app().await;
    let admin = app.tenant_admin("星河").await;
    let id = create_channel(&app, &admin, &channel_body("expo"))
        .await
        .expect(201)
        .body["id"]
        .as_i64()
        .unwrap();
    let path = format!("/api/v1/channels/{id}/qrcode");

    app.mock.inject_fault("getwxacodeunlimit", 45011, 1);
    let limited = app.get(&path, Some(&admin.access)).await.expect(429);
    assert_eq!(limited.code(), "wechat_rate_limited");
    assert!(limited.header("retry-after").is_some());

    app.mock.inject_fault("getwxacodeunlimit", -1, 10);
    let busy = app.get(&path, Some(&admin.access)).await.expect(503);
    assert_eq!(busy.code(), "wechat_unavailable");
    assert!(busy.header("retry-after").is_some());
    app.mock.clear_faults();

    app.mock.inject_fault("getwxacodeunlimit", 40097, 1);
    let refused = app.get(&path, Some(&admin.access)).await.expect(422);
    assert_eq!(refused.code(), "wechat_invalid_argument");

    let (status, cache, png) = qrcode(&app, &admin, id, "").await;
    assert_eq!(
        (status, cache.as_str()),
        (200, "miss"),
        "failures were not cached"
    );
    assert_eq!(png_size(&png), (430, 430));
}
