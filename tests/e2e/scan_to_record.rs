//! Scan-to-record end to end: channels, the public form, captures with dedupe on unionid,
//! openid and phone, merge without overwrite, round-robin owners under concurrency,
//! idempotent submissions, owner tasks and WeChat messages, and every rejected input.

use futures_util::future::join_all;
use reqwest::Method;
use scantag_e2e::{Session, TestApp, spawn_app};
use serde_json::{Value, json};

const POLICY: &str = "2026-10";

/// A tenant with an admin, a tag group with two tags, and a channel using both.
struct Booth {
    admin: Session,
    tags: Vec<i64>,
    channel: Value,
}

impl Booth {
    fn scene(&self) -> &str {
        self.channel["qr_scene"].as_str().unwrap()
    }

    fn id(&self) -> i64 {
        self.channel["id"].as_i64().unwrap()
    }
}

async fn booth(app: &TestApp, tenant: &str, policy: Value) -> Booth {
    let admin = app.tenant_admin(tenant).await;
    let group = app.create_group(&admin, "来源渠道", false).await;
    let tags = vec![
        app.create_tag(&admin, group, "车展").await,
        app.create_tag(&admin, group, "线下活动").await,
    ];
    let policy = if policy.is_null() {
        json!({"type": "fixed", "staff_id": admin.id})
    } else {
        policy
    };
    let channel = app
        .post(
            "/api/v1/channels",
            Some(&admin.access),
            &json!({
                "name": "2026 上海车展展台",
                "scene": "expo2026",
                "default_tag_ids": tags,
                "owner_policy": policy,
                "form": [{"key": "phone", "required": true}, {"key": "company"}, {"key": "region"}],
                "privacy_policy_version": POLICY,
            }),
        )
        .await
        .expect(201)
        .body;
    Booth {
        admin,
        tags,
        channel,
    }
}

fn form(scene: &str, name: &str, phone: &str) -> Value {
    json!({
        "scene": scene,
        "name": name,
        "phone": phone,
        "consent": {"accepted": true, "policy_version": POLICY},
    })
}

async fn capture(
    app: &TestApp,
    who: &Session,
    body: &Value,
    key: Option<&str>,
) -> scantag_e2e::Answer {
    let mut req = app
        .client
        .request(Method::POST, app.url("/api/v1/capture"))
        .bearer_auth(&who.access)
        .json(body);
    if let Some(key) = key {
        req = req.header("Idempotency-Key", key);
    }
    app.send(req).await
}

async fn stats(app: &TestApp, booth: &Booth) -> Value {
    app.get(
        &format!("/api/v1/channels/{}", booth.id()),
        Some(&booth.admin.access),
    )
    .await
    .expect(200)
    .body["stats"]
        .clone()
}

async fn customer_count(app: &TestApp, admin: &Session) -> u64 {
    app.search(admin, &json!({})).await.expect(200).body["total"]
        .as_u64()
        .unwrap()
}

async fn tasks(app: &TestApp, who: &Session, status: &str) -> Vec<Value> {
    app.get(&format!("/api/v1/tasks?status={status}"), Some(&who.access))
        .await
        .expect(200)
        .body["items"]
        .as_array()
        .unwrap()
        .clone()
}

/// The messages WeChat received for `openid`, once `n` have arrived (they are sent after
/// the response). Fails after five seconds.
async fn messages_for(app: &TestApp, openid: &str, n: usize) -> Vec<Value> {
    app.messages_to(openid, n).await
}

#[tokio::test]
async fn a_scan_records_the_visitor_with_owner_channel_tags_and_reasons() {
    let app = spawn_app().await;
    let booth = booth(&app, "星河", Value::Null).await;

    let shown = app
        .get(
            &format!("/api/v1/capture/form?scene={}", booth.scene()),
            None,
        )
        .await
        .expect(200);
    let keys: Vec<&str> = shown.body["fields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["key"].as_str().unwrap())
        .collect();
    assert_eq!(keys, ["name", "phone", "company", "region"]);
    assert_eq!(shown.body["fields"][1]["required"], true);
    assert_eq!(shown.body["fields"][1]["type"], "phone");
    assert_eq!(shown.body["privacy_policy"]["version"], POLICY);

    let li = app.visitor("o-li", None).await;
    let mut body = form(booth.scene(), "李雷", "13800138000");
    body["company"] = json!("星河科技");
    let answer = capture(&app, &li, &body, None).await.expect(201);
    assert_eq!(answer.body["outcome"], "created");
    assert_eq!(answer.body["matched_by"], Value::Null);
    assert_eq!(answer.body["owner"]["id"], booth.admin.id);
    let tags = answer.body["tags"].as_array().unwrap();
    assert_eq!(tags.len(), 2);
    for tag in tags {
        assert!(booth.tags.contains(&tag["tag_id"].as_i64().unwrap()));
        assert_eq!(tag["source"], "channel");
        assert_eq!(tag["group_name"], "来源渠道");
        assert!(tag["color"].as_str().unwrap().starts_with('#'));
        assert!(
            tag["reason"]
                .as_str()
                .unwrap()
                .contains("2026 上海车展展台"),
            "the reason names the channel: {tag}"
        );
    }

    let id = answer.body["customer_id"].as_i64().unwrap();
    let customer = app.customer(&booth.admin, id).await;
    assert_eq!(customer["name"], "李雷");
    assert_eq!(customer["phone"], "13800138000");
    assert_eq!(customer["company"], "星河科技");
    assert_eq!(customer["owner_id"], booth.admin.id);
    assert_eq!(customer["source_channel_id"], booth.id());

    let by_channel = app
        .search(&booth.admin, &json!({"source_channel_id": booth.id()}))
        .await
        .expect(200);
    assert_eq!(by_channel.body["total"], 1);
    assert_eq!(
        stats(&app, &booth).await,
        json!({"scans": 1, "captures": 1, "new_customers": 1, "merged": 0})
    );
}

#[tokio::test]
async fn the_same_openid_merges_without_overwriting_what_staff_entered() {
    let app = spawn_app().await;
    let booth = booth(&app, "星河", Value::Null).await;
    let li = app.visitor("o-li", None).await;
    let first = capture(&app, &li, &form(booth.scene(), "李雷", "13800138000"), None)
        .await
        .expect(201);
    let id = first.body["customer_id"].as_i64().unwrap();

    // Staff correct the record.
    app.patch(
        &format!("/api/v1/customers/{id}"),
        Some(&booth.admin.access),
        &json!({"company": "星河科技（上海）"}),
    )
    .await
    .expect(200);

    // The visitor scans again, with another company and a region the record lacks.
    let mut again = form(booth.scene(), "李雷", "13800138000");
    again["company"] = json!("随便填的公司");
    again["region"] = json!("上海");
    let second = capture(&app, &li, &again, None).await.expect(200);
    assert_eq!(second.body["outcome"], "merged");
    assert_eq!(second.body["matched_by"], "openid");
    assert_eq!(second.body["customer_id"], id);

    let customer = app.customer(&booth.admin, id).await;
    assert_eq!(
        customer["company"], "星河科技（上海）",
        "staff data is kept"
    );
    assert_eq!(customer["region"], "上海", "empty fields are filled");
    assert!(customer["last_active_at"].is_string());

    let visits = app
        .get(
            &format!("/api/v1/customers/{id}/captures"),
            Some(&booth.admin.access),
        )
        .await
        .expect(200);
    let items = visits.body["items"].as_array().unwrap();
    assert_eq!(items.len(), 2, "the repeat visit is recorded");
    assert_eq!(items[0]["outcome"], "merged");
    assert_eq!(items[0]["consent_policy_version"], POLICY);
    assert_eq!(
        items[0]["conflicts"],
        json!([{"field": "company", "submitted": "随便填的公司"}])
    );
    assert_eq!(items[1]["outcome"], "created");
    assert_eq!(customer_count(&app, &booth.admin).await, 1);
    assert_eq!(
        stats(&app, &booth).await,
        json!({"scans": 0, "captures": 2, "new_customers": 1, "merged": 1})
    );
}

#[tokio::test]
async fn the_same_unionid_under_another_openid_is_the_same_customer() {
    let app = spawn_app().await;
    let booth = booth(&app, "星河", Value::Null).await;
    let on_phone = app.visitor("o-app-a", Some("u-li")).await;
    let first = capture(
        &app,
        &on_phone,
        &form(booth.scene(), "李雷", "13800138000"),
        None,
    )
    .await
    .expect(201);
    // The same person through another app of the same WeChat open platform account, giving
    // another phone number: the unionid decides.
    let elsewhere = app.visitor("o-app-b", Some("u-li")).await;
    let second = capture(
        &app,
        &elsewhere,
        &form(booth.scene(), "李雷", "13900139000"),
        None,
    )
    .await
    .expect(200);
    assert_eq!(second.body["matched_by"], "unionid");
    assert_eq!(second.body["customer_id"], first.body["customer_id"]);
    assert_eq!(customer_count(&app, &booth.admin).await, 1);
}

#[tokio::test]
async fn a_phone_staff_already_recorded_is_the_same_customer() {
    let app = spawn_app().await;
    let booth = booth(&app, "星河", Value::Null).await;
    let existing = app
        .create_customer(
            &booth.admin,
            &json!({"name": "韩梅梅", "phone": "+86 139-0013-9000", "company": "老客户公司"}),
        )
        .await;
    let han = app.visitor("o-han", None).await;
    let mut body = form(booth.scene(), "韩梅", "13900139000");
    body["company"] = json!("新公司");
    let answer = capture(&app, &han, &body, None).await.expect(200);
    assert_eq!(answer.body["matched_by"], "phone");
    assert_eq!(answer.body["customer_id"], existing["id"]);
    let customer = app
        .customer(&booth.admin, existing["id"].as_i64().unwrap())
        .await;
    assert_eq!(customer["name"], "韩梅梅");
    assert_eq!(customer["company"], "老客户公司");
    assert_eq!(
        customer["tags"].as_array().unwrap().len(),
        2,
        "channel tags added"
    );

    // From now on the visitor is known by openid too.
    let again = capture(
        &app,
        &han,
        &form(booth.scene(), "韩梅", "13900139000"),
        None,
    )
    .await
    .expect(200);
    assert_eq!(again.body["matched_by"], "openid");
    assert_eq!(customer_count(&app, &booth.admin).await, 1);
}

#[tokio::test]
async fn a_verified_phone_code_becomes_the_phone_and_a_bad_one_writes_nothing() {
    let app = spawn_app().await;
    let booth = booth(&app, "星河", Value::Null).await;
    let li = app.visitor("o-li", None).await;

    let mut bad = json!({
        "scene": booth.scene(), "name": "李雷", "phone_code": "not-a-code",
        "consent": {"accepted": true, "policy_version": POLICY},
    });
    capture(&app, &li, &bad, None)
        .await
        .expect_coded_field_error("phone_code", "wechat_code_invalid");
    assert_eq!(customer_count(&app, &booth.admin).await, 0);

    bad["phone_code"] = json!(app.mock.mint_phone_code("13700137000", "86"));
    let answer = capture(&app, &li, &bad, None).await.expect(201);
    let customer = app
        .customer(&booth.admin, answer.body["customer_id"].as_i64().unwrap())
        .await;
    assert_eq!(customer["phone"], "13700137000");
}

#[tokio::test]
async fn round_robin_deals_new_customers_out_evenly_under_concurrency() {
    let app = spawn_app().await;
    let admin = app.tenant_admin("星河").await;
    let mut reps = Vec::new();
    for i in 0..4 {
        reps.push(
            app.invite_staff(&admin, &format!("o-rep-{i}"), "sales")
                .await,
        );
    }
    let ids: Vec<i64> = reps.iter().map(|r| r.id).collect();
    let channel = app
        .post(
            "/api/v1/channels",
            Some(&admin.access),
            &json!({
                "name": "展会", "scene": "rr", "privacy_policy_version": POLICY,
                "owner_policy": {"type": "round_robin", "staff_ids": ids},
            }),
        )
        .await
        .expect(201)
        .body;
    let scene = channel["qr_scene"].as_str().unwrap().to_owned();
    // The fourth rep leaves after the channel was set up: the turn skips them.
    app.patch(
        &format!("/api/v1/staff/{}", reps[3].id),
        Some(&admin.access),
        &json!({"active": false}),
    )
    .await
    .expect(200);

    let mut visitors = Vec::new();
    for i in 0..30 {
        visitors.push(app.visitor(&format!("o-visitor-{i}"), None).await);
    }
    let answers = join_all(visitors.iter().enumerate().map(|(i, v)| {
        let body = json!({
            "scene": scene, "name": format!("访客{i}"),
            "consent": {"accepted": true, "policy_version": POLICY},
        });
        let app = &app;
        async move { capture(app, v, &body, None).await.expect(201) }
    }))
    .await;
    let mut per_owner = std::collections::HashMap::new();
    for answer in &answers {
        *per_owner
            .entry(answer.body["owner"]["id"].as_i64().unwrap())
            .or_insert(0) += 1;
    }
    assert_eq!(per_owner.len(), 3, "{per_owner:?}");
    for rep in &reps[..3] {
        assert_eq!(per_owner.get(&rep.id), Some(&10), "{per_owner:?}");
        assert_eq!(tasks(&app, rep, "open").await.len(), 10);
    }
    assert!(!per_owner.contains_key(&reps[3].id));
}

#[tokio::test]
async fn a_retried_submission_returns_the_first_answer() {
    let app = spawn_app().await;
    let booth = booth(&app, "星河", Value::Null).await;
    let li = app.visitor("o-li", None).await;
    let body = form(booth.scene(), "李雷", "13800138000");
    let first = capture(&app, &li, &body, Some("submit-1"))
        .await
        .expect(201);
    let retry = capture(&app, &li, &body, Some("submit-1"))
        .await
        .expect(201);
    assert_eq!(retry.header("idempotency-replayed"), Some("true"));
    assert_eq!(retry.body, first.body);
    assert_eq!(first.header("idempotency-replayed"), None);

    let mut other = body.clone();
    other["name"] = json!("韩梅梅");
    let reused = capture(&app, &li, &other, Some("submit-1"))
        .await
        .expect(422);
    assert_eq!(reused.code(), "idempotency_key_reused");

    // Keys belong to one visitor: another visitor's same key is a new submission.
    let han = app.visitor("o-han", None).await;
    capture(
        &app,
        &han,
        &form(booth.scene(), "韩梅", "13900139000"),
        Some("submit-1"),
    )
    .await
    .expect(201);

    let bad_key = capture(&app, &li, &body, Some("has space"))
        .await
        .expect(422);
    assert_eq!(bad_key.error_fields(), ["Idempotency-Key"]);
    assert_eq!(stats(&app, &booth).await["captures"], 2);
}

#[tokio::test]
async fn fifty_concurrent_identical_submissions_have_one_effect() {
    let app = spawn_app().await;
    let booth = booth(&app, "星河", Value::Null).await;
    let li = app.visitor("o-li", None).await;
    let body = form(booth.scene(), "李雷", "13800138000");
    let answers = join_all((0..50).map(|_| capture(&app, &li, &body, Some("one-tap")))).await;
    let first = &answers[0].body;
    for answer in &answers {
        assert_eq!(answer.status, 201, "{}", answer.text);
        assert_eq!(&answer.body, first);
    }
    let replayed = answers
        .iter()
        .filter(|a| a.header("idempotency-replayed") == Some("true"))
        .count();
    assert_eq!(replayed, 49);
    assert_eq!(customer_count(&app, &booth.admin).await, 1);
    assert_eq!(stats(&app, &booth).await["captures"], 1);
    assert_eq!(tasks(&app, &booth.admin, "all").await.len(), 1);
    let openid = format!("admin-of-{}", "星河");
    assert_eq!(messages_for(&app, &openid, 1).await.len(), 1);
}

#[tokio::test]
async fn concurrent_first_captures_of_one_person_without_a_key_make_one_customer() {
    let app = spawn_app().await;
    let booth = booth(&app, "星河", Value::Null).await;
    let li = app.visitor("o-li", None).await;
    let body = form(booth.scene(), "李雷", "13800138000");
    let answers = join_all((0..20).map(|_| capture(&app, &li, &body, None))).await;
    let created = answers.iter().filter(|a| a.status == 201).count();
    let merged = answers.iter().filter(|a| a.status == 200).count();
    assert_eq!(
        (created, merged),
        (1, 19),
        "{:?}",
        answers.iter().map(|a| &a.text).collect::<Vec<_>>()
    );
    assert_eq!(customer_count(&app, &booth.admin).await, 1);
    assert_eq!(
        stats(&app, &booth).await,
        json!({"scans": 0, "captures": 20, "new_customers": 1, "merged": 19})
    );
}

#[tokio::test]
async fn the_owner_gets_a_task_and_a_wechat_message_and_completes_the_task() {
    let app = spawn_app().await;
    let booth = booth(&app, "星河", Value::Null).await;
    let rep = app.invite_staff(&booth.admin, "o-rep", "sales").await;
    let li = app.visitor("o-li", None).await;
    let created = capture(&app, &li, &form(booth.scene(), "李雷", "13800138000"), None)
        .await
        .expect(201);

    let open = tasks(&app, &booth.admin, "open").await;
    assert_eq!(open.len(), 1);
    let task = &open[0];
    assert_eq!(task["kind"], "new_customer");
    assert_eq!(task["customer_id"], created.body["customer_id"]);
    assert_eq!(task["channel_id"], booth.id());
    assert!(
        task["title"]
            .as_str()
            .unwrap()
            .contains("2026 上海车展展台")
    );
    assert!(
        tasks(&app, &rep, "all").await.is_empty(),
        "tasks are personal"
    );

    let sent = messages_for(&app, "admin-of-星河", 1).await;
    assert_eq!(sent[0]["template_id"], scantag_e2e::TASK_TEMPLATE);
    assert_eq!(sent[0]["data"]["thing2"]["value"], "李雷");
    assert_eq!(
        sent[0]["page"],
        format!("pages/tasks/index?id={}", task["id"])
    );

    let task_id = task["id"].as_i64().unwrap();
    let path = format!("/api/v1/tasks/{task_id}/complete");
    app.post(&path, Some(&rep.access), &json!({}))
        .await
        .expect(404);
    let done = app
        .post(&path, Some(&booth.admin.access), &json!({}))
        .await
        .expect(200);
    assert_eq!(done.body["status"], "done");
    assert!(done.body["completed_at"].is_string());
    let again = app
        .post(&path, Some(&booth.admin.access), &json!({}))
        .await
        .expect(200);
    assert_eq!(again.body["completed_at"], done.body["completed_at"]);
    assert!(tasks(&app, &booth.admin, "open").await.is_empty());
    assert_eq!(tasks(&app, &booth.admin, "done").await.len(), 1);

    // A repeat visit gives a follow-up task of its own.
    capture(&app, &li, &form(booth.scene(), "李雷", "13800138000"), None)
        .await
        .expect(200);
    let open = tasks(&app, &booth.admin, "open").await;
    assert_eq!(open.len(), 1);
    assert_eq!(open[0]["kind"], "repeat_visit");
    messages_for(&app, "admin-of-星河", 2).await;

    for bad in ["status=bogus", "limit=0", "limit=101", "cursor=%25%25"] {
        app.get(&format!("/api/v1/tasks?{bad}"), Some(&booth.admin.access))
            .await
            .expect(422);
    }
}

#[tokio::test]
async fn pool_channels_record_unowned_customers_without_tasks() {
    let app = spawn_app().await;
    let booth = booth(&app, "星河", json!({"type": "pool"})).await;
    let li = app.visitor("o-li", None).await;
    let answer = capture(&app, &li, &form(booth.scene(), "李雷", "13800138000"), None)
        .await
        .expect(201);
    assert_eq!(answer.body["owner"], Value::Null);
    assert!(tasks(&app, &booth.admin, "all").await.is_empty());
    assert!(app.mock.sent_messages().is_empty());
}

#[tokio::test]
async fn rejected_submissions_say_why_and_write_nothing() {
    let app = spawn_app().await;
    let admin = app.tenant_admin("星河").await;
    app.post(
        "/api/v1/custom-fields",
        Some(&admin.access),
        &json!({"key": "budget", "label": "预算", "field_type": "number"}),
    )
    .await
    .expect(201);
    app.post(
        "/api/v1/custom-fields",
        Some(&admin.access),
        &json!({"key": "secret_note", "label": "内部备注", "field_type": "text"}),
    )
    .await
    .expect(201);
    let channel = app
        .post(
            "/api/v1/channels",
            Some(&admin.access),
            &json!({
                "name": "展会", "scene": "expo", "privacy_policy_version": POLICY,
                "owner_policy": {"type": "fixed", "staff_id": admin.id},
                "form": [{"key": "phone", "required": true}, {"key": "company"},
                         {"key": "custom_fields.budget", "required": true}],
            }),
        )
        .await
        .expect(201)
        .body;
    let scene = channel["qr_scene"].as_str().unwrap();
    let li = app.visitor("o-li", None).await;
    let valid = json!({
        "scene": scene, "name": "李雷", "phone": "13800138000",
        "custom_fields": {"budget": 5000},
        "consent": {"accepted": true, "policy_version": POLICY},
    });
    let with = |path: &str, value: Value| {
        let mut body = valid.clone();
        let mut target = &mut body;
        let parts: Vec<&str> = path.split('.').collect();
        for part in &parts[..parts.len() - 1] {
            target = &mut target[*part];
        }
        let last = parts[parts.len() - 1];
        if value.is_null() {
            target.as_object_mut().unwrap().remove(last);
        } else {
            target[last] = value;
        }
        body
    };
    let cases: Vec<(Value, &str, &str)> = vec![
        (with("consent", Value::Null), "consent", "required"),
        (
            with("consent.accepted", json!(false)),
            "consent.accepted",
            "must_accept",
        ),
        (
            with("consent.policy_version", json!("2025-01")),
            "consent.policy_version",
            "outdated",
        ),
        (with("phone", json!("12345")), "phone", "phone"),
        (with("phone", Value::Null), "phone", "required"),
        (with("name", Value::Null), "name", "required"),
        (with("name", json!("名".repeat(65))), "name", "length"),
        (
            with("company", json!("公".repeat(101))),
            "company",
            "length",
        ),
        (with("industry", json!("汽车")), "industry", "not_in_form"),
        (
            with("custom_fields.budget", Value::Null),
            "custom_fields.budget",
            "required",
        ),
        (
            with("custom_fields.budget", json!("lots")),
            "custom_fields.budget",
            "invalid_type",
        ),
        (
            with("custom_fields.nope", json!(1)),
            "custom_fields.nope",
            "unknown_field",
        ),
        (
            with("custom_fields.secret_note", json!("x")),
            "custom_fields.secret_note",
            "not_in_form",
        ),
    ];
    for (body, field, code) in cases {
        let answer = capture(&app, &li, &body, Some("same-key-every-time")).await;
        answer.expect_coded_field_error(field, code);
    }
    // Oversize beyond the request limits is refused before any lookup.
    let answer = capture(&app, &li, &with("region", json!("区".repeat(300))), None).await;
    assert_eq!(answer.status, 422, "{}", answer.text);

    // Unknown scenes are missing; a malformed or foreign prefix is no different.
    for scene in ["99999.expo", "expo", "1.nope", ".expo"] {
        let answer = capture(&app, &li, &with("scene", json!(scene)), None).await;
        assert_eq!(answer.status, 404, "{scene}: {}", answer.text);
        app.get(&format!("/api/v1/capture/form?scene={scene}"), None)
            .await
            .expect(404);
    }
    // The form needs a scene of a plausible length.
    let long = "1.".to_owned() + &"s".repeat(63);
    for query in [
        "",
        "?scene=",
        &format!("?scene={long}"),
        "?scene=1.expo&extra=1",
    ] {
        let answer = app
            .get(&format!("/api/v1/capture/form{query}"), None)
            .await
            .expect(422);
        assert_eq!(answer.code(), "validation_failed", "{query}");
    }
    // Staff submit nothing; without a token nobody does.
    let staff = capture(&app, &admin, &valid, None).await.expect(403);
    assert_eq!(staff.code(), "visitor_only");
    app.post("/api/v1/capture", None, &valid).await.expect(401);

    assert_eq!(customer_count(&app, &admin).await, 0, "nothing was written");
    assert!(tasks(&app, &admin, "all").await.is_empty());
    let stats = app
        .get(
            &format!("/api/v1/channels/{}", channel["id"]),
            Some(&admin.access),
        )
        .await
        .expect(200)
        .body["stats"]
        .clone();
    assert_eq!(stats["captures"], 0);

    // The key that every rejection carried was released: the valid body now goes through.
    capture(&app, &li, &valid, Some("same-key-every-time"))
        .await
        .expect(201);
}

#[tokio::test]
async fn paused_and_out_of_window_channels_are_gone() {
    let app = spawn_app().await;
    let booth = booth(&app, "星河", Value::Null).await;
    let li = app.visitor("o-li", None).await;
    let path = format!("/api/v1/channels/{}", booth.id());
    let form_path = format!("/api/v1/capture/form?scene={}", booth.scene());
    let body = form(booth.scene(), "李雷", "13800138000");
    let now = chrono::Utc::now();
    for change in [
        json!({"active": false}),
        json!({"active": true, "starts_at": now + chrono::Duration::days(1)}),
        json!({"starts_at": now - chrono::Duration::days(10), "ends_at": now - chrono::Duration::days(1)}),
    ] {
        app.patch(&path, Some(&booth.admin.access), &change)
            .await
            .expect(200);
        assert_eq!(
            app.get(&form_path, None).await.expect(410).code(),
            "channel_inactive"
        );
        assert_eq!(
            capture(&app, &li, &body, None).await.expect(410).code(),
            "channel_inactive"
        );
    }
    app.patch(&path, Some(&booth.admin.access), &json!({"ends_at": null}))
        .await
        .expect(200);
    app.get(&form_path, None).await.expect(200);
    capture(&app, &li, &body, None).await.expect(201);
}
