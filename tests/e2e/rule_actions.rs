//! The rules' edge-triggered actions beyond tasks, end to end: owners dealt in turn (and the
//! other rules seeing the new owner in the same change), customers returned to the pool, and
//! WeChat messages to the owner and to the customer, sent after the commit by the outbox's
//! consumer, once per transition, and again after WeChat was busy.

use std::time::Duration as StdDuration;

use chrono::{Duration, Utc};
use scantag_e2e::{Session, TestApp, spawn_app};
use serde_json::{Value, json};

async fn rule(app: &TestApp, admin: &Session, body: Value) -> Value {
    app.post("/api/v1/rules", Some(&admin.access), &body)
        .await
        .expect(201)
        .body
}

async fn pool_channel(app: &TestApp, admin: &Session) -> String {
    app.post(
        "/api/v1/channels",
        Some(&admin.access),
        &json!({"name": "公众号", "scene": "mp", "owner_policy": {"type": "pool"},
                "form": [{"key": "phone", "required": true}], "privacy_policy_version": "v1"}),
    )
    .await
    .expect(201)
    .body["qr_scene"]
        .as_str()
        .unwrap()
        .to_owned()
}

async fn capture(app: &TestApp, scene: &str, openid: &str, name: &str, phone: &str) -> Value {
    let visitor = app.visitor(openid, None).await;
    app.post(
        "/api/v1/capture",
        Some(&visitor.access),
        &json!({"scene": scene, "name": name, "phone": phone,
                "consent": {"accepted": true, "policy_version": "v1"}}),
    )
    .await
    .expect(201)
    .body
}

async fn follow_up(app: &TestApp, who: &Session, customer: i64, stage: &str) -> Value {
    app.post(
        "/api/v1/follow-ups",
        Some(&who.access),
        &json!({"customer_id": customer, "kind": "call", "content": "电话沟通", "stage": stage,
                "occurred_at": Utc::now() - Duration::seconds(1)}),
    )
    .await
    .expect(201)
    .body
}

fn tag_named(customer: &Value, name: &str) -> bool {
    customer["tags"]
        .as_array()
        .unwrap()
        .iter()
        .any(|t| t["name"] == name)
}

#[tokio::test]
async fn a_rule_deals_owners_in_turn_and_another_returns_customers_to_the_pool() {
    let app = spawn_app().await;
    let admin = app.tenant_admin("Acme").await;
    let a = app.invite_staff(&admin, "o-rep-a", "sales").await;
    let b = app.invite_staff(&admin, "o-rep-b", "sales").await;
    let scene = pool_channel(&app, &admin).await;
    app.post(
        "/api/v1/rule-templates/new_customer",
        Some(&admin.access),
        &json!({}),
    )
    .await
    .expect(201);
    let deal = rule(
        &app,
        &admin,
        json!({"name": "轮流分配", "priority": 10,
               "condition": {"not": {"field": "owner_id", "op": "is_set"}},
               "actions": [{"type": "assign_owner", "policy": {"type": "round_robin", "staff_ids": [a.id, b.id]}}]}),
    )
    .await;

    let mut owners = Vec::new();
    for (i, name) in ["甲", "乙", "丙", "丁"].iter().enumerate() {
        let captured = capture(
            &app,
            &scene,
            &format!("o-visitor-{i}"),
            name,
            &format!("1390013900{i}"),
        )
        .await;
        owners.push(captured["owner"]["id"].as_i64().unwrap());
        // 待分配 follows "no owner": the dealt owner is there before the tags are written.
        assert!(tag_named(&captured, "新录入"), "{captured}");
        assert!(!tag_named(&captured, "待分配"), "{captured}");
        let detail = app
            .customer(&admin, captured["customer_id"].as_i64().unwrap())
            .await;
        assert_eq!(detail["owner_id"], captured["owner"]["id"]);
    }
    assert_eq!(owners, vec![a.id, b.id, a.id, b.id]);
    // The dealt owner gets the capture's task, and its message.
    let a_tasks = app
        .get("/api/v1/tasks?status=all", Some(&a.access))
        .await
        .expect(200)
        .body;
    assert_eq!(
        a_tasks["items"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|t| t["kind"] == "new_customer")
            .count(),
        2,
        "{a_tasks}"
    );
    app.messages_to("o-rep-a", 2).await;
    // 待分配 held only until the owner was dealt: no "assign this customer" task.
    let admin_tasks = app
        .get("/api/v1/tasks?status=all", Some(&admin.access))
        .await
        .expect(200)
        .body;
    assert!(
        !admin_tasks["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t["kind"] == "rule"),
        "{admin_tasks}"
    );

    // A customer with an owner keeps them.
    let kept = app
        .create_customer(&admin, &json!({"name": "自有", "owner_id": admin.id}))
        .await;
    assert_eq!(kept["owner_id"], admin.id);

    // 输单 returns the customer to the pool; 待分配 comes back in the same change.
    rule(
        &app,
        &admin,
        json!({"name": "输单退回公海", "priority": 20,
               "condition": {"field": "project_stage", "op": "eq", "value": "输单"},
               "actions": [{"type": "assign_owner", "policy": {"type": "pool"}}]}),
    )
    .await;
    let id = kept["id"].as_i64().unwrap();
    follow_up(&app, &admin, id, "输单").await;
    let detail = app.customer(&admin, id).await;
    // Back in the pool, the dealing rule gives it the next turn at once.
    assert_eq!(detail["owner_id"], a.id, "{detail}");
    assert!(!tag_named(&detail, "待分配"), "{detail}");

    // Without the dealer, a pooled customer stays unassigned and is 待分配.
    app.patch(
        &format!("/api/v1/rules/{}", deal["id"]),
        Some(&admin.access),
        &json!({"enabled": false}),
    )
    .await
    .expect(200);
    app.patch(
        &format!("/api/v1/customers/{id}"),
        Some(&admin.access),
        &json!({"project_stage": "谈判"}),
    )
    .await
    .expect(200);
    follow_up(&app, &admin, id, "输单").await;
    let detail = app.customer(&admin, id).await;
    assert!(detail["owner_id"].is_null(), "{detail}");
    assert!(tag_named(&detail, "待分配"), "{detail}");
    // Unassigned for good this time: the managers (here the admin) are asked to assign it.
    let admin_tasks = app
        .get("/api/v1/tasks?status=all", Some(&admin.access))
        .await
        .expect(200)
        .body;
    let asked: Vec<&Value> = admin_tasks["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| t["kind"] == "rule")
        .collect();
    assert_eq!(asked.len(), 1, "{admin_tasks}");
    assert_eq!(asked[0]["customer_id"], id);
    // While 输单 holds, an owner a person gives stays.
    app.patch(
        &format!("/api/v1/customers/{id}"),
        Some(&admin.access),
        &json!({"owner_id": b.id}),
    )
    .await
    .expect(200);
    follow_up(&app, &admin, id, "输单").await;
    assert_eq!(app.customer(&admin, id).await["owner_id"], b.id);
}

#[tokio::test]
async fn the_owner_is_messaged_once_per_transition_after_the_commit() {
    let app = spawn_app().await;
    let admin = app.tenant_admin("Acme").await;
    let rep = app.invite_staff(&admin, "o-rep", "sales").await;
    rule(
        &app,
        &admin,
        json!({"name": "报价提醒",
               "condition": {"field": "project_stage", "op": "eq", "value": "已报价"},
               "actions": [{"type": "notify_owner", "message": "客户已报价，请跟进"}]}),
    )
    .await;
    let customer = app
        .create_customer(&admin, &json!({"name": "王五", "owner_id": rep.id}))
        .await;
    let id = customer["id"].as_i64().unwrap();

    follow_up(&app, &admin, id, "已报价").await;
    let sent = app.messages_to("o-rep", 1).await;
    assert_eq!(sent[0]["template_id"], scantag_e2e::TASK_TEMPLATE);
    assert_eq!(sent[0]["data"]["thing1"]["value"], "客户已报价，请跟进");
    assert_eq!(sent[0]["data"]["thing2"]["value"], "王五");
    assert_eq!(sent[0]["page"], format!("pages/customers/detail?id={id}"));
    // Still true: no second message. False, then true again: one more.
    follow_up(&app, &admin, id, "已报价").await;
    follow_up(&app, &admin, id, "谈判").await;
    follow_up(&app, &admin, id, "已报价").await;
    assert_eq!(app.messages_to("o-rep", 2).await.len(), 2);
    // Longer than the consumer's round: nothing else arrives.
    tokio::time::sleep(StdDuration::from_millis(2_500)).await;
    assert_eq!(app.messages_so_far("o-rep").len(), 2);

    // A customer without an owner messages nobody; staff who are not the owner get nothing.
    let pooled = app.create_customer(&admin, &json!({"name": "无主"})).await;
    follow_up(&app, &admin, pooled["id"].as_i64().unwrap(), "已报价").await;
    tokio::time::sleep(StdDuration::from_millis(1_500)).await;
    assert_eq!(app.messages_so_far("o-rep").len(), 2);
    assert!(app.messages_so_far("admin-of-Acme").is_empty());
}

#[tokio::test]
async fn a_message_wechat_is_too_busy_for_is_sent_on_a_later_try() {
    let app = spawn_app().await;
    let admin = app.tenant_admin("Acme").await;
    let scene = app
        .post(
            "/api/v1/channels",
            Some(&admin.access),
            &json!({"name": "展会", "scene": "expo", "owner_policy": {"type": "fixed", "staff_id": admin.id},
                    "form": [{"key": "phone", "required": true}], "privacy_policy_version": "v1"}),
        )
        .await
        .expect(201)
        .body["qr_scene"]
        .as_str()
        .unwrap()
        .to_owned();
    // Busy for longer than the WeChat client's own retries.
    app.mock.inject_fault("subscribe_send", -1, 3);
    let captured = capture(&app, &scene, "o-guest", "赵六", "13700137000").await;
    let sent = app.messages_to("admin-of-Acme", 1).await;
    assert_eq!(sent[0]["data"]["thing2"]["value"], "赵六");
    // Three refused calls (the client's first try and its two retries), then the outbox's
    // second try.
    assert_eq!(app.mock.call_count("subscribe_send"), 4);
    let tasks = app
        .get("/api/v1/tasks?status=open", Some(&admin.access))
        .await
        .expect(200)
        .body;
    let task = &tasks["items"][0];
    assert_eq!(task["customer_id"], captured["customer_id"]);
    // The task says the message went out once the consumer recorded it.
    for _ in 0..100 {
        let task = app
            .get("/api/v1/tasks?status=open", Some(&admin.access))
            .await
            .expect(200)
            .body["items"][0]
            .clone();
        if task["notified"] == true {
            return;
        }
        tokio::time::sleep(StdDuration::from_millis(50)).await;
    }
    panic!("the task never recorded its message");
}

#[tokio::test]
async fn owner_and_message_actions_are_checked_with_the_path_of_each_fault() {
    let app = spawn_app().await;
    let admin = app.tenant_admin("Acme").await;
    let other = app.tenant_admin("Other").await;
    let rep = app.invite_staff(&admin, "o-rep", "sales").await;
    let sales = app.invite_staff(&admin, "o-sales", "sales").await;
    let condition = json!({"field": "region", "op": "eq", "value": "上海"});
    let answer = app
        .post(
            "/api/v1/rules",
            Some(&admin.access),
            &json!({"name": "坏", "condition": condition, "actions": [
                {"type": "assign_owner", "policy": {"type": "fixed", "staff_id": other.id}},
                {"type": "assign_owner", "policy": {"type": "round_robin", "staff_ids": []}},
                {"type": "assign_owner", "policy": {"type": "round_robin", "staff_ids": [rep.id, rep.id]}},
                {"type": "assign_owner", "policy": {"type": "lottery"}},
                {"type": "notify_owner", "message": "这条消息超过了二十个字符的上限所以会被拒绝掉"},
                {"type": "notify_customer", "message": " "},
                {"type": "create_task", "assignee": {"staff_id": 999_999}, "title": "看看"}
            ]}),
        )
        .await
        .expect(422);
    for (path, code) in [
        ("/actions/0/policy/staff_id", "unknown_staff"),
        ("/actions/1/policy/staff_ids", "length"),
        ("/actions/2/policy/staff_ids/1", "duplicate"),
        ("/actions/3/policy/type", "type"),
        ("/actions/4/message", "length"),
        ("/actions/5/message", "length"),
        ("/actions/6/assignee/staff_id", "unknown_staff"),
    ] {
        assert_eq!(
            answer.field_error_code(path),
            Some(code),
            "{path}: {}",
            answer.body
        );
    }
    // Nothing was saved; a sales rep may not save rules at all.
    let rules = app
        .get("/api/v1/rules", Some(&admin.access))
        .await
        .expect(200)
        .body;
    assert_eq!(rules["items"].as_array().map(Vec::len), Some(0), "{rules}");
    app.post(
        "/api/v1/rules",
        Some(&sales.access),
        &json!({"name": "x", "condition": condition, "actions": [{"type": "notify_owner", "message": "hi"}]}),
    )
    .await
    .expect(403);
}

#[tokio::test]
async fn two_server_processes_on_one_database_send_each_message_once() {
    let first = spawn_app().await;
    let second = scantag_e2e::spawn_beside(&first, |_| {}).await;
    let admin = first.tenant_admin("Acme").await;
    let scene = first
        .post(
            "/api/v1/channels",
            Some(&admin.access),
            &json!({"name": "展会", "scene": "expo", "owner_policy": {"type": "fixed", "staff_id": admin.id},
                    "form": [{"key": "phone", "required": true}], "privacy_policy_version": "v1"}),
        )
        .await
        .expect(201)
        .body["qr_scene"]
        .as_str()
        .unwrap()
        .to_owned();
    let (first_ref, second_ref, scene_ref) = (&first, &second, &scene);
    let captures = (0..20).map(|i| {
        let app = if i % 2 == 0 { first_ref } else { second_ref };
        async move {
            let scene = scene_ref;
            let visitor = first_ref.visitor(&format!("o-guest-{i}"), None).await;
            app.post(
                "/api/v1/capture",
                Some(&visitor.access),
                &json!({"scene": scene, "name": format!("客{i}"), "phone": format!("137001370{i:02}"),
                        "consent": {"accepted": true, "policy_version": "v1"}}),
            )
            .await
            .expect(201)
        }
    });
    futures_util::future::join_all(captures).await;
    let sent = first.messages_to("admin-of-Acme", 20).await;
    // Longer than a consumer's round: no event is delivered twice.
    tokio::time::sleep(StdDuration::from_millis(2_500)).await;
    let sent_now = first.messages_so_far("admin-of-Acme");
    let mut pages: Vec<&str> = sent_now
        .iter()
        .map(|m| m["page"].as_str().unwrap())
        .collect();
    pages.sort_unstable();
    pages.dedup();
    assert_eq!((sent.len(), sent_now.len(), pages.len()), (20, 20, 20));
}
