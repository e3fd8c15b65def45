//! Tagging rules end to end: facts loaded through the public endpoints (with historical
//! `occurred_at`), rules that tag in the same request, strict thresholds, level-triggered tags
//! and edge-triggered tasks, a person's decision winning both ways, exclusive groups with
//! priorities, refused circles, explanations, the evaluation endpoint, the capture answer,
//! idempotent order re-sends and the tenant's local day.

use chrono::{DateTime, Duration, FixedOffset, NaiveTime, TimeZone, Utc};
use scantag_e2e::{Session, TestApp, spawn_app};
use serde_json::{Value, json};

/// Shanghai keeps no daylight saving time: local time is UTC+8 all year.
fn shanghai() -> FixedOffset {
    FixedOffset::east_opt(8 * 3600).unwrap()
}

async fn rule(app: &TestApp, admin: &Session, body: Value) -> Value {
    app.post("/api/v1/rules", Some(&admin.access), &body)
        .await
        .expect(201)
        .body
}

async fn order(app: &TestApp, who: &Session, customer: i64, fen: i64, days_ago: i64) -> Value {
    let at = Utc::now() - Duration::days(days_ago);
    app.post(
        "/api/v1/orders",
        Some(&who.access),
        &json!({"customer_id": customer, "amount_fen": fen, "occurred_at": at}),
    )
    .await
    .expect(201)
    .body
}

async fn tag_ids(app: &TestApp, who: &Session, customer: i64) -> Vec<i64> {
    app.customer_tag_ids(who, customer).await
}

fn high_value(tag: i64) -> Value {
    json!({
        "name": "高价值客户",
        "priority": 100,
        "condition": {"all": [
            {"metric": {"aggregate": "sum", "of": "orders.amount", "within": {"last_days": 180}}, "op": "gt", "value": 500000},
            {"metric": {"aggregate": "count", "of": "orders", "within": {"last_days": 180}}, "op": "gt", "value": 3}
        ]},
        "actions": [{"type": "add_tag", "tag_id": tag}]
    })
}

async fn tasks(app: &TestApp, who: &Session) -> Vec<Value> {
    app.get("/api/v1/tasks?status=all", Some(&who.access))
        .await
        .expect(200)
        .body["items"]
        .as_array()
        .unwrap()
        .clone()
}

#[tokio::test]
async fn high_value_needs_more_than_5000_yuan_and_more_than_3_orders_in_180_days() {
    let app = spawn_app().await;
    let admin = app.tenant_admin("Acme").await;
    let group = app.create_group(&admin, "客户价值", false).await;
    let tag = app.create_tag(&admin, group, "高价值客户").await;
    let created = rule(&app, &admin, high_value(tag)).await;
    assert_eq!(created["version"], 1);
    let rule_id = created["id"].as_i64().unwrap();

    // Exactly 5,000.00 元 over 4 orders: not more than 5,000.
    let exact = app
        .create_customer(&admin, &json!({"name": "整五千"}))
        .await["id"]
        .as_i64()
        .unwrap();
    for days in [100, 50, 20] {
        order(&app, &admin, exact, 125_000, days).await;
    }
    let fourth = order(&app, &admin, exact, 125_000, 1).await;
    assert_eq!(fourth["rule_changes"], json!([]));
    assert!(tag_ids(&app, &admin, exact).await.is_empty());
    // One fen more, and the rule holds in the same request.
    let fifth = order(&app, &admin, exact, 1, 0).await;
    assert_eq!(fifth["rule_changes"][0]["tag_id"], tag);
    assert_eq!(fifth["rule_changes"][0]["added"], true);
    assert_eq!(tag_ids(&app, &admin, exact).await, vec![tag]);

    // Plenty of money over exactly 3 orders: not more than 3.
    let three = app.create_customer(&admin, &json!({"name": "三单"})).await["id"]
        .as_i64()
        .unwrap();
    for days in [3, 2, 1] {
        order(&app, &admin, three, 900_000, days).await;
    }
    assert!(tag_ids(&app, &admin, three).await.is_empty());
    // An order older than the window does not count either.
    order(&app, &admin, three, 900_000, 181).await;
    assert!(tag_ids(&app, &admin, three).await.is_empty());
    let counted = order(&app, &admin, three, 900_000, 179).await;
    assert_eq!(counted["rule_changes"][0]["rule_id"], rule_id);

    // The tag says which rule and version gave it, and the values that satisfied it.
    let detail = app.customer(&admin, three).await;
    let link = &detail["tags"][0];
    assert_eq!(link["source"], "rule");
    assert_eq!(link["rule_id"], rule_id);
    assert_eq!(link["rule_version"], 1);
    let reason = link["reason"].as_str().unwrap();
    assert!(reason.contains("高价值客户"), "{reason}");
    assert!(reason.contains("36,000.00 元 > 5,000.00 元"), "{reason}");
    assert!(reason.contains("= 4 > 3"), "{reason}");
    assert_eq!(link["evidence"]["holds"].as_array().unwrap().len(), 2);
    let history = app
        .get(
            &format!("/api/v1/customers/{three}/tag-history"),
            Some(&admin.access),
        )
        .await
        .expect(200)
        .body;
    assert_eq!(history["items"][0]["source"], "rule");
    assert_eq!(history["items"][0]["rule_id"], rule_id);
    assert_eq!(history["items"][0]["rule_version"], 1);

    // Level-triggered: a refund takes the condition away, and the tag with it.
    let refunded = app
        .post(
            &format!("/api/v1/orders/{}/refund", counted["id"]),
            Some(&admin.access),
            &json!({}),
        )
        .await
        .expect(200)
        .body;
    assert_eq!(refunded["status"], "refunded");
    assert_eq!(refunded["rule_changes"][0]["added"], false);
    assert!(tag_ids(&app, &admin, three).await.is_empty());
    let history = app
        .get(
            &format!("/api/v1/customers/{three}/tag-history"),
            Some(&admin.access),
        )
        .await
        .expect(200)
        .body;
    assert_eq!(history["items"][0]["action"], "remove");
    assert!(
        history["items"][0]["reason"]
            .as_str()
            .unwrap()
            .contains("no longer holds")
    );
}

#[tokio::test]
async fn the_stage_of_the_latest_follow_up_drives_high_intent() {
    let app = spawn_app().await;
    let admin = app.tenant_admin("Acme").await;
    let group = app.create_group(&admin, "意向", false).await;
    let tag = app.create_tag(&admin, group, "高意向客户").await;
    rule(
        &app,
        &admin,
        json!({"name": "高意向客户", "condition": {"field": "project_stage", "op": "in", "value": ["已报价", "方案沟通中"]},
               "actions": [{"type": "add_tag", "tag_id": tag}]}),
    )
    .await;
    let customer = app.create_customer(&admin, &json!({"name": "李雷"})).await["id"]
        .as_i64()
        .unwrap();
    let follow_up = |stage: &str, days_ago: i64| {
        json!({"customer_id": customer, "kind": "call", "content": "电话沟通", "stage": stage,
               "occurred_at": Utc::now() - Duration::days(days_ago)})
    };
    let first = app
        .post(
            "/api/v1/follow-ups",
            Some(&admin.access),
            &follow_up("已报价", 2),
        )
        .await
        .expect(201)
        .body;
    assert_eq!(first["rule_changes"][0]["tag_id"], tag);
    let detail = app.customer(&admin, customer).await;
    assert_eq!(detail["project_stage"], "已报价");
    assert!(detail["last_follow_up_at"].is_string());
    // An older follow-up loaded later does not move the stage back.
    app.post(
        "/api/v1/follow-ups",
        Some(&admin.access),
        &follow_up("初步接触", 10),
    )
    .await
    .expect(201);
    assert_eq!(
        app.customer(&admin, customer).await["project_stage"],
        "已报价"
    );
    assert_eq!(tag_ids(&app, &admin, customer).await, vec![tag]);
    // A newer one does, and the tag follows.
    app.post(
        "/api/v1/follow-ups",
        Some(&admin.access),
        &follow_up("成交", 0),
    )
    .await
    .expect(201);
    assert!(tag_ids(&app, &admin, customer).await.is_empty());
    // Editing the stage by hand counts as well.
    app.patch(
        &format!("/api/v1/customers/{customer}"),
        Some(&admin.access),
        &json!({"project_stage": "方案沟通中"}),
    )
    .await
    .expect(200);
    assert_eq!(tag_ids(&app, &admin, customer).await, vec![tag]);
    // A stage said at an earlier time, recorded after a later follow-up without one, is still
    // the latest stage said.
    let other = app
        .create_customer(&admin, &json!({"name": "韩梅梅"}))
        .await["id"]
        .as_i64()
        .unwrap();
    app.post(
        "/api/v1/follow-ups",
        Some(&admin.access),
        &json!({"customer_id": other, "kind": "wechat", "content": "问候", "occurred_at": Utc::now() - Duration::days(1)}),
    )
    .await
    .expect(201);
    app.post(
        "/api/v1/follow-ups",
        Some(&admin.access),
        &json!({"customer_id": other, "kind": "call", "content": "报价", "stage": "已报价", "occurred_at": Utc::now() - Duration::days(5)}),
    )
    .await
    .expect(201);
    assert_eq!(app.customer(&admin, other).await["project_stage"], "已报价");
    // An unknown stage is refused.
    app.post(
        "/api/v1/follow-ups",
        Some(&admin.access),
        &follow_up("随便", 0),
    )
    .await
    .expect(422)
    .expect_coded_field_error("stage", "unknown_stage");
    let listed = app
        .get(
            &format!("/api/v1/customers/{customer}/follow-ups?limit=2"),
            Some(&admin.access),
        )
        .await
        .expect(200)
        .body;
    assert_eq!(listed["items"][0]["stage"], "成交");
    assert_eq!(listed["items"][1]["stage"], "已报价");
    let rest = app
        .get(
            &format!(
                "/api/v1/customers/{customer}/follow-ups?cursor={}",
                listed["next_cursor"].as_str().unwrap()
            ),
            Some(&admin.access),
        )
        .await
        .expect(200)
        .body;
    assert_eq!(rest["items"][0]["stage"], "初步接触");
    assert!(rest["next_cursor"].is_null());
}

#[tokio::test]
async fn a_persons_decision_wins_over_a_rule_in_both_directions() {
    let app = spawn_app().await;
    let admin = app.tenant_admin("Acme").await;
    let group = app.create_group(&admin, "客户价值", false).await;
    let tag = app.create_tag(&admin, group, "大客户").await;
    rule(
        &app,
        &admin,
        json!({"name": "大单", "condition": {"metric": {"aggregate": "max", "of": "orders.amount"}, "op": "gte", "value": 100000},
               "actions": [{"type": "add_tag", "tag_id": tag}]}),
    )
    .await;
    let customer = app
        .create_customer(&admin, &json!({"name": "韩梅梅"}))
        .await["id"]
        .as_i64()
        .unwrap();
    let big = order(&app, &admin, customer, 200_000, 3).await;
    assert_eq!(tag_ids(&app, &admin, customer).await, vec![tag]);
    // A person takes the rule's tag off: it stays off while the condition keeps holding.
    app.delete(
        &format!("/api/v1/customers/{customer}/tags/{tag}"),
        Some(&admin.access),
    )
    .await
    .expect(204);
    let again = order(&app, &admin, customer, 300_000, 1).await;
    assert_eq!(again["rule_changes"], json!([]));
    assert!(tag_ids(&app, &admin, customer).await.is_empty());
    let rule_id = rule_id_of(&app, &admin, "大单").await;
    let check = app
        .get(
            &format!("/api/v1/customers/{customer}/rules/{rule_id}/evaluation"),
            Some(&admin.access),
        )
        .await
        .expect(200)
        .body;
    assert_eq!(check["holds"], true);
    assert_eq!(check["vetoed"], json!([tag]));
    // The condition stops holding (both orders refunded), then holds again: the tag comes back.
    for id in [&big["id"], &again["id"]] {
        app.post(
            &format!("/api/v1/orders/{id}/refund"),
            Some(&admin.access),
            &json!({}),
        )
        .await
        .expect(200);
    }
    let back = order(&app, &admin, customer, 150_000, 0).await;
    assert_eq!(back["rule_changes"][0]["tag_id"], tag);
    assert_eq!(tag_ids(&app, &admin, customer).await, vec![tag]);
    // A person giving the tag the rule gave makes it theirs: the rule no longer takes it off.
    app.post(
        &format!("/api/v1/customers/{customer}/tags"),
        Some(&admin.access),
        &json!({"tag_id": tag}),
    )
    .await
    .expect(200);
    app.post(
        &format!("/api/v1/orders/{}/refund", back["id"]),
        Some(&admin.access),
        &json!({}),
    )
    .await
    .expect(200);
    let detail = app.customer(&admin, customer).await;
    assert_eq!(detail["tags"][0]["tag_id"], tag);
    assert_eq!(detail["tags"][0]["source"], "manual");

    // A tag a person gave is never taken off by a rule.
    let other = app
        .create_customer(&admin, &json!({"name": "露西", "tag_ids": [tag]}))
        .await["id"]
        .as_i64()
        .unwrap();
    let small = order(&app, &admin, other, 10, 0).await;
    assert_eq!(small["rule_changes"], json!([]));
    let detail = app.customer(&admin, other).await;
    assert_eq!(detail["tags"][0]["tag_id"], tag);
    assert_eq!(detail["tags"][0]["source"], "manual");
}

async fn rule_id_of(app: &TestApp, admin: &Session, name: &str) -> i64 {
    let rules = app
        .get("/api/v1/rules", Some(&admin.access))
        .await
        .expect(200)
        .body;
    rules["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == name)
        .unwrap()["id"]
        .as_i64()
        .unwrap()
}

#[tokio::test]
async fn a_rule_task_comes_once_per_transition() {
    let app = spawn_app().await;
    let admin = app.tenant_admin("Acme").await;
    let sales = app.invite_staff(&admin, "o-sales", "sales").await;
    let group = app.create_group(&admin, "预警", false).await;
    let tag = app.create_tag(&admin, group, "退款预警").await;
    rule(
        &app,
        &admin,
        json!({"name": "退款预警", "condition": {"metric": {"aggregate": "count", "of": "orders", "where": {"status": "refunded"}}, "op": "gte", "value": 1},
               "actions": [{"type": "add_tag", "tag_id": tag},
                           {"type": "create_task", "assignee": "owner", "title": "回访 {customer_name}", "due_in_days": 2}]}),
    )
    .await;
    let customer = app.create_customer(&sales, &json!({"name": "王芳"})).await["id"]
        .as_i64()
        .unwrap();
    let first = order(&app, &sales, customer, 1_000, 5).await;
    assert!(tasks(&app, &sales).await.is_empty());
    app.post(
        &format!("/api/v1/orders/{}/refund", first["id"]),
        Some(&sales.access),
        &json!({}),
    )
    .await
    .expect(200);
    let raised = tasks(&app, &sales).await;
    assert_eq!(raised.len(), 1);
    assert_eq!(raised[0]["kind"], "rule");
    assert_eq!(raised[0]["title"], "回访 王芳");
    assert_eq!(raised[0]["customer_id"], customer);
    assert!(raised[0]["due_at"].is_string());
    // Still true after another refund: no second task.
    let second = order(&app, &sales, customer, 2_000, 4).await;
    app.post(
        &format!("/api/v1/orders/{}/refund", second["id"]),
        Some(&sales.access),
        &json!({}),
    )
    .await
    .expect(200);
    assert_eq!(tasks(&app, &sales).await.len(), 1);
    // Through false and back to true: one more.
    let rule_id = rule_id_of(&app, &admin, "退款预警").await;
    app.patch(
        &format!("/api/v1/rules/{rule_id}"),
        Some(&admin.access),
        &json!({"condition": {"metric": {"aggregate": "count", "of": "orders", "where": {"status": "refunded"}}, "op": "gte", "value": 3}}),
    )
    .await
    .expect(200);
    assert!(tag_ids(&app, &sales, customer).await.is_empty());
    let third = order(&app, &sales, customer, 3_000, 3).await;
    app.post(
        &format!("/api/v1/orders/{}/refund", third["id"]),
        Some(&sales.access),
        &json!({}),
    )
    .await
    .expect(200);
    assert_eq!(tag_ids(&app, &sales, customer).await, vec![tag]);
    assert_eq!(tasks(&app, &sales).await.len(), 2);
    // The rule's version moved with its condition, and the new link names it.
    let detail = app.customer(&admin, customer).await;
    assert_eq!(detail["tags"][0]["rule_version"], 2);
}

#[tokio::test]
async fn in_an_exclusive_group_the_higher_priority_rule_wins() {
    let app = spawn_app().await;
    let admin = app.tenant_admin("Acme").await;
    let group = app.create_group(&admin, "生命周期", true).await;
    let new = app.create_tag(&admin, group, "新客").await;
    let buyer = app.create_tag(&admin, group, "成长期").await;
    rule(
        &app,
        &admin,
        json!({"name": "新客", "priority": 10, "condition": null,
        "actions": [{"type": "add_tag", "tag_id": new}]}),
    )
    .await;
    let grown = rule(
        &app,
        &admin,
        json!({"name": "成长期", "priority": 20,
        "condition": {"metric": {"aggregate": "count", "of": "orders"}, "op": "gte", "value": 1},
        "actions": [{"type": "add_tag", "tag_id": buyer}]}),
    )
    .await;
    let customer = app.create_customer(&admin, &json!({"name": "赵四"})).await;
    let id = customer["id"].as_i64().unwrap();
    assert_eq!(tag_ids(&app, &admin, id).await, vec![new]);
    order(&app, &admin, id, 100, 1).await;
    assert_eq!(tag_ids(&app, &admin, id).await, vec![buyer]);
    // Disabling the winner hands the group back to the other rule.
    app.patch(
        &format!("/api/v1/rules/{}", grown["id"]),
        Some(&admin.access),
        &json!({"enabled": false}),
    )
    .await
    .expect(200);
    assert_eq!(tag_ids(&app, &admin, id).await, vec![new]);
    // A rule whose tag was archived since can still be changed and disabled (and enabled again).
    app.patch(
        &format!("/api/v1/tags/{buyer}"),
        Some(&admin.access),
        &json!({"status": "archived"}),
    )
    .await
    .expect(200);
    for enabled in [true, false] {
        app.patch(
            &format!("/api/v1/rules/{}", grown["id"]),
            Some(&admin.access),
            &json!({"enabled": enabled, "priority": 21}),
        )
        .await
        .expect(200);
    }
    app.patch(
        &format!("/api/v1/tags/{buyer}"),
        Some(&admin.access),
        &json!({"status": "active"}),
    )
    .await
    .expect(200);
    // A person's choice in the group stands against every rule.
    app.post(
        &format!("/api/v1/customers/{id}/tags"),
        Some(&admin.access),
        &json!({"tag_id": buyer}),
    )
    .await
    .expect(200);
    assert_eq!(tag_ids(&app, &admin, id).await, vec![buyer]);
    app.patch(
        &format!("/api/v1/customers/{id}"),
        Some(&admin.access),
        &json!({"region": "上海"}),
    )
    .await
    .expect(200);
    let detail = app.customer(&admin, id).await;
    assert_eq!(detail["tags"].as_array().unwrap().len(), 1);
    assert_eq!(detail["tags"][0]["source"], "manual");
    // Deleting a rule takes its tags off and says how many.
    let other = app.create_customer(&admin, &json!({"name": "刘能"})).await["id"]
        .as_i64()
        .unwrap();
    assert_eq!(tag_ids(&app, &admin, other).await, vec![new]);
    let removed = app
        .delete(
            &format!("/api/v1/rules/{}", rule_id_of(&app, &admin, "新客").await),
            Some(&admin.access),
        )
        .await
        .expect(200)
        .body;
    assert_eq!(
        removed,
        json!({"tags": [{"tag_id": new, "customers": 1}], "kept": []})
    );
    assert!(tag_ids(&app, &admin, other).await.is_empty());
}

#[tokio::test]
async fn rules_reading_each_others_tags_in_a_circle_are_refused() {
    let app = spawn_app().await;
    let admin = app.tenant_admin("Acme").await;
    let group = app.create_group(&admin, "链", false).await;
    let a = app.create_tag(&admin, group, "甲").await;
    let b = app.create_tag(&admin, group, "乙").await;
    let c = app.create_tag(&admin, group, "丙").await;
    rule(&app, &admin, json!({"name": "甲生乙", "condition": {"has_tag": a}, "actions": [{"type": "add_tag", "tag_id": b}]})).await;
    // A chain settles in one request: a → b → c.
    rule(&app, &admin, json!({"name": "乙生丙", "condition": {"has_tag": b}, "actions": [{"type": "add_tag", "tag_id": c}]})).await;
    let id = app
        .create_customer(&admin, &json!({"name": "链式", "tag_ids": [a]}))
        .await["id"]
        .as_i64()
        .unwrap();
    let mut tags = tag_ids(&app, &admin, id).await;
    tags.sort_unstable();
    assert_eq!(tags, vec![a, b, c]);
    let refused = app
        .post(
            "/api/v1/rules",
            Some(&admin.access),
            &json!({"name": "丙生甲", "condition": {"has_tag": c}, "actions": [{"type": "add_tag", "tag_id": a}]}),
        )
        .await
        .expect(422);
    assert_eq!(refused.code(), "rule_cycle");
    let message = refused.body["errors"][0]["message"].as_str().unwrap();
    for name in ["甲生乙", "乙生丙", "丙生甲"] {
        assert!(message.contains(name), "{message}");
    }
    // A rule reading its own tag is a circle too.
    let own = app
        .post(
            "/api/v1/rules",
            Some(&admin.access),
            &json!({"name": "自己", "condition": {"lacks_tag": a}, "actions": [{"type": "add_tag", "tag_id": a}]}),
        )
        .await
        .expect(422);
    assert_eq!(own.code(), "rule_cycle");
    // Nothing was saved.
    let rules = app
        .get("/api/v1/rules", Some(&admin.access))
        .await
        .expect(200)
        .body;
    assert_eq!(rules["items"].as_array().unwrap().len(), 2);
}

#[tokio::test]
async fn the_evaluation_says_why_a_customer_has_or_lacks_a_tag() {
    let app = spawn_app().await;
    let admin = app.tenant_admin("Acme").await;
    let group = app.create_group(&admin, "客户价值", false).await;
    let tag = app.create_tag(&admin, group, "高价值客户").await;
    let created = rule(&app, &admin, high_value(tag)).await;
    let id = app.create_customer(&admin, &json!({"name": "评估"})).await["id"]
        .as_i64()
        .unwrap();
    let oldest = order(&app, &admin, id, 300_000, 170).await;
    for days in [30, 20] {
        order(&app, &admin, id, 200_000, days).await;
    }
    let check = app
        .get(
            &format!("/api/v1/customers/{id}/rules/{}/evaluation", created["id"]),
            Some(&admin.access),
        )
        .await
        .expect(200)
        .body;
    assert_eq!(check["holds"], false);
    let nodes = check["nodes"].as_array().unwrap();
    assert_eq!(nodes.len(), 3);
    assert_eq!(nodes[0]["path"], "");
    assert_eq!(nodes[1]["path"], "/all/0");
    assert_eq!(nodes[1]["holds"], true);
    assert_eq!(nodes[1]["value"], 700_000);
    assert!(
        nodes[1]["text"]
            .as_str()
            .unwrap()
            .contains("7,000.00 元 > 5,000.00 元")
    );
    assert_eq!(nodes[2]["holds"], false);
    assert_eq!(nodes[2]["value"], 3);
    // The verdict can next change when the oldest order leaves the 180-day window.
    let leaves: DateTime<Utc> =
        serde_json::from_value::<DateTime<Utc>>(oldest["occurred_at"].clone()).unwrap()
            + Duration::days(180);
    let next: DateTime<Utc> = serde_json::from_value(check["next_change_at"].clone()).unwrap();
    assert_eq!(next, leaves);
    // Other tenants' customers and rules are missing.
    let other = app.tenant_admin("Other").await;
    app.get(
        &format!("/api/v1/customers/{id}/rules/{}/evaluation", created["id"]),
        Some(&other.access),
    )
    .await
    .expect(404);
    app.get(
        &format!("/api/v1/rules/{}", created["id"]),
        Some(&other.access),
    )
    .await
    .expect(404);
}

#[tokio::test]
async fn days_since_are_counted_in_the_tenants_local_days() {
    let app = spawn_app().await;
    let admin = app.tenant_admin("Acme").await;
    let group = app.create_group(&admin, "活跃度", false).await;
    let silent = app.create_tag(&admin, group, "沉默").await;
    rule(&app, &admin, json!({"name": "沉默", "condition": {"metric": {"days_since_last": "events", "where": {"kind": "visit"}}, "op": "gte", "value": 30},
        "actions": [{"type": "add_tag", "tag_id": silent}]}))
    .await;
    let today = Utc::now().with_timezone(&shanghai()).date_naive();
    let local = |days_ago: i64, h: u32, m: u32| {
        shanghai()
            .from_local_datetime(
                &(today - Duration::days(days_ago))
                    .and_time(NaiveTime::from_hms_opt(h, m, 0).unwrap()),
            )
            .unwrap()
            .with_timezone(&Utc)
    };
    let visit = |customer: i64, at: DateTime<Utc>| json!({"customer_id": customer, "kind": "visit", "occurred_at": at});
    // 00:30 local 29 days ago is still the previous UTC date: by UTC dates it would be 30 days.
    let a = app.create_customer(&admin, &json!({"name": "凌晨"})).await["id"]
        .as_i64()
        .unwrap();
    app.post(
        "/api/v1/events",
        Some(&admin.access),
        &visit(a, local(29, 0, 30)),
    )
    .await
    .expect(201);
    assert!(tag_ids(&app, &admin, a).await.is_empty());
    // 23:30 local 30 days ago belongs to that local day: exactly 30 days.
    let b = app.create_customer(&admin, &json!({"name": "深夜"})).await["id"]
        .as_i64()
        .unwrap();
    let answer = app
        .post(
            "/api/v1/events",
            Some(&admin.access),
            &visit(b, local(30, 23, 30)),
        )
        .await
        .expect(201)
        .body;
    assert_eq!(answer["rule_changes"][0]["tag_id"], silent);
    // A new visit ends the silence.
    app.post("/api/v1/events", Some(&admin.access), &visit(b, Utc::now()))
        .await
        .expect(201);
    assert!(tag_ids(&app, &admin, b).await.is_empty());
    assert!(app.customer(&admin, b).await["last_active_at"].is_string());
}

#[tokio::test]
async fn the_capture_answer_lists_the_tags_rules_gave() {
    let app = spawn_app().await;
    let admin = app.tenant_admin("Acme").await;
    let group = app.create_group(&admin, "生命周期", false).await;
    let fresh = app.create_tag(&admin, group, "新录入").await;
    let unassigned = app.create_tag(&admin, group, "待分配").await;
    rule(
        &app,
        &admin,
        json!({"name": "新录入", "condition": null,
        "actions": [{"type": "add_tag", "tag_id": fresh}]}),
    )
    .await;
    rule(&app, &admin, json!({"name": "待分配", "condition": {"not": {"field": "owner_id", "op": "is_set"}},
        "actions": [{"type": "add_tag", "tag_id": unassigned},
                    {"type": "create_task", "assignee": "managers", "title": "分配新客户 {customer_name}"}]})).await;
    let manager = app.invite_staff(&admin, "o-manager", "manager").await;
    let channel = app
        .post(
            "/api/v1/channels",
            Some(&admin.access),
            &json!({"name": "展台", "scene": "booth", "owner_policy": {"type": "pool"},
                    "form": [{"key": "phone", "required": true}], "privacy_policy_version": "v1"}),
        )
        .await
        .expect(201)
        .body;
    let visitor = app.visitor("o-visitor", None).await;
    let captured = app
        .post(
            "/api/v1/capture",
            Some(&visitor.access),
            &json!({"scene": channel["qr_scene"], "name": "访客", "phone": "13800138000",
                    "consent": {"accepted": true, "policy_version": "v1"}}),
        )
        .await
        .expect(201)
        .body;
    let mut given: Vec<i64> = captured["rule_changes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["tag_id"].as_i64().unwrap())
        .collect();
    given.sort_unstable();
    assert_eq!(given, vec![fresh, unassigned]);
    let tags = captured["tags"].as_array().unwrap();
    assert_eq!(tags.len(), 2);
    assert!(
        tags.iter()
            .all(|t| t["source"] == "rule" && t["reason"].is_string())
    );
    let customer = captured["customer_id"].as_i64().unwrap();
    let raised = tasks(&app, &manager).await;
    assert_eq!(raised.len(), 1);
    assert_eq!(raised[0]["title"], "分配新客户 访客");
    // 待分配 follows the owner: it goes once someone owns the customer.
    app.patch(
        &format!("/api/v1/customers/{customer}"),
        Some(&admin.access),
        &json!({"owner_id": manager.id}),
    )
    .await
    .expect(200);
    assert_eq!(tag_ids(&app, &admin, customer).await, vec![fresh]);
    // The visitor may send events for their own record, and no one else's.
    app.post(
        "/api/v1/events",
        Some(&visitor.access),
        &json!({"customer_id": customer, "kind": "page_view", "properties": {"page": "/home"}}),
    )
    .await
    .expect(201);
    let stranger = app.create_customer(&admin, &json!({"name": "别人"})).await["id"]
        .as_i64()
        .unwrap();
    app.post(
        "/api/v1/events",
        Some(&visitor.access),
        &json!({"customer_id": stranger, "kind": "visit"}),
    )
    .await
    .expect(404);
}

#[tokio::test]
async fn an_order_sent_again_answers_the_first_and_a_different_one_is_a_conflict() {
    let app = spawn_app().await;
    let admin = app.tenant_admin("Acme").await;
    let customer = app.create_customer(&admin, &json!({"name": "ERP"})).await["id"]
        .as_i64()
        .unwrap();
    let body = json!({"customer_id": customer, "amount_fen": 155000, "product_category": "SaaS",
                      "occurred_at": "2026-11-20T06:30:00Z", "external_ref": "ERP-1"});
    let first = app
        .post("/api/v1/orders", Some(&admin.access), &body)
        .await
        .expect(201)
        .body;
    let again = app
        .post("/api/v1/orders", Some(&admin.access), &body)
        .await
        .expect(200)
        .body;
    assert_eq!(first["id"], again["id"]);
    let mut changed = body.clone();
    changed["amount_fen"] = json!(155001);
    let conflict = app
        .post("/api/v1/orders", Some(&admin.access), &changed)
        .await
        .expect(409);
    assert_eq!(conflict.code(), "external_ref_conflict");
    assert_eq!(conflict.body["existing_id"], first["id"]);
    // In bulk, each item is answered on its own.
    let bulk = app
        .post(
            "/api/v1/orders/bulk",
            Some(&admin.access),
            &json!({"items": [
                body,
                changed,
                {"customer_id": customer, "amount_fen": 100, "external_ref": "ERP-2"},
                {"customer_id": 999_999, "amount_fen": 100},
                {"customer_id": customer, "amount_fen": -1}
            ]}),
        )
        .await
        .expect(200)
        .body;
    let statuses: Vec<u64> = bulk["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["status"].as_u64().unwrap())
        .collect();
    assert_eq!(statuses, vec![200, 409, 201, 404, 422]);
    assert_eq!(bulk["succeeded"], 2);
    assert_eq!(bulk["failed"], 3);
    let listed = app
        .get(
            &format!("/api/v1/customers/{customer}/orders"),
            Some(&admin.access),
        )
        .await
        .expect(200)
        .body;
    assert_eq!(listed["items"].as_array().unwrap().len(), 2);
    assert!(app.customer(&admin, customer).await["last_order_at"].is_string());
}

#[tokio::test]
async fn bad_facts_and_bad_rules_are_refused_with_every_fault_and_write_nothing() {
    let app = spawn_app().await;
    let admin = app.tenant_admin("Acme").await;
    let sales = app.invite_staff(&admin, "o-sales", "sales").await;
    let group = app.create_group(&admin, "组", false).await;
    let tag = app.create_tag(&admin, group, "标签").await;
    let customer = app.create_customer(&admin, &json!({"name": "某人"})).await["id"]
        .as_i64()
        .unwrap();
    // Orders: a negative amount, a fraction, an unknown currency, a future time.
    for (body, field) in [
        (
            json!({"customer_id": customer, "amount_fen": -5}),
            "amount_fen",
        ),
        (
            json!({"customer_id": customer, "amount_fen": 1.5}),
            "amount_fen",
        ),
        (
            json!({"customer_id": customer, "amount_fen": 5, "currency": "XYZ"}),
            "currency",
        ),
        (
            json!({"customer_id": customer, "amount_fen": 5, "occurred_at": Utc::now() + Duration::hours(1)}),
            "occurred_at",
        ),
    ] {
        app.post("/api/v1/orders", Some(&admin.access), &body)
            .await
            .expect(422)
            .expect_field_error(field, None);
    }
    // Facts for a customer the caller does not see, or another tenant's, are 404.
    app.post(
        "/api/v1/orders",
        Some(&sales.access),
        &json!({"customer_id": customer, "amount_fen": 5}),
    )
    .await
    .expect(404);
    app.get(
        &format!("/api/v1/customers/{customer}/orders"),
        Some(&sales.access),
    )
    .await
    .expect(404);
    let other = app.tenant_admin("Other").await;
    app.post(
        "/api/v1/follow-ups",
        Some(&other.access),
        &json!({"customer_id": customer, "kind": "call", "content": "x"}),
    )
    .await
    .expect(404);
    assert!(
        app.get(
            &format!("/api/v1/customers/{customer}/orders"),
            Some(&admin.access)
        )
        .await
        .expect(200)
        .body["items"]
            .as_array()
            .unwrap()
            .is_empty()
    );
    // A sales rep may not keep rules.
    app.post("/api/v1/rules", Some(&sales.access), &json!({}))
        .await
        .expect(403);
    // A malformed tree: each fault at its JSON pointer, all at once.
    let other_tag = app
        .create_tag(
            &other,
            app.create_group(&other, "别组", false).await,
            "别家",
        )
        .await;
    let answer = app
        .post(
            "/api/v1/rules",
            Some(&admin.access),
            &json!({"name": "坏规则",
                "condition": {"all": [
                    {"frob": 1},
                    {"field": "region"},
                    {"field": "region", "op": "gt", "value": "x"},
                    {"has_tag": other_tag},
                    {"any": []},
                    {"metric": {"aggregate": "sum", "of": "orders.product_category"}, "op": "gt", "value": 1},
                    {"metric": {"aggregate": "count", "of": "orders", "within": {"last_days": 0}}, "op": "gt", "value": 1},
                    {"metric": {"aggregate": "count", "of": "orders", "within": {"last_days": 4000}}, "op": "gt", "value": 1},
                    {"field": "nope", "op": "eq", "value": 1}
                ]},
                "actions": [{"type": "add_tag", "tag_id": tag}, {"type": "explode"}]}),
        )
        .await
        .expect(422);
    for (path, code) in [
        ("/condition/all/0", "unknown_node"),
        ("/condition/all/1/op", "required"),
        ("/condition/all/2/op", "op_not_allowed"),
        ("/condition/all/3/has_tag", "unknown_tag"),
        ("/condition/all/4/any", "empty"),
        ("/condition/all/5/metric/of", "not_numeric"),
        ("/condition/all/6/metric/within/last_days", "range"),
        ("/condition/all/7/metric/within/last_days", "range"),
        ("/condition/all/8/field", "unknown_field"),
        ("/actions/1/type", "unknown_action"),
    ] {
        assert_eq!(
            answer.field_error_code(path),
            Some(code),
            "{path}: {}",
            answer.text
        );
    }
    // Too deep, too many nodes.
    let mut deep = json!({"has_tag": tag});
    for _ in 0..21 {
        deep = json!({"not": deep});
    }
    let too_deep = app
        .post("/api/v1/rules", Some(&admin.access), &json!({"name": "深", "condition": deep, "actions": [{"type": "add_tag", "tag_id": tag}]}))
        .await
        .expect(422);
    assert!(
        too_deep.body["errors"][0]["code"] == "too_deep",
        "{}",
        too_deep.text
    );
    let wide: Vec<Value> = (0..201).map(|_| json!({"has_tag": tag})).collect();
    let too_wide = app
        .post("/api/v1/rules", Some(&admin.access), &json!({"name": "宽", "condition": {"any": wide}, "actions": [{"type": "add_tag", "tag_id": tag}]}))
        .await
        .expect(422);
    assert!(
        too_wide.body["errors"][0]["code"] == "too_many_nodes",
        "{}",
        too_wide.text
    );
    let rules = app
        .get("/api/v1/rules", Some(&admin.access))
        .await
        .expect(200)
        .body;
    assert!(rules["items"].as_array().unwrap().is_empty());
}

async fn tag_names(app: &TestApp, who: &Session, customer: i64) -> Vec<String> {
    let mut names: Vec<String> = app.customer(who, customer).await["tags"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap().to_owned())
        .collect();
    names.sort();
    names
}

async fn follow_up_at(app: &TestApp, who: &Session, customer: i64, days_ago: i64) {
    app.post(
        "/api/v1/follow-ups",
        Some(&who.access),
        &json!({"customer_id": customer, "kind": "call", "content": "回访",
                "occurred_at": Utc::now() - Duration::days(days_ago)}),
    )
    .await
    .expect(201);
}

#[tokio::test]
async fn every_template_tags_hand_built_customers_as_the_brief_says() {
    let app = spawn_app().await;
    let admin = app.tenant_admin("Acme").await;
    let manager = app.invite_staff(&admin, "o-manager", "manager").await;
    let listed = app
        .get("/api/v1/rule-templates", Some(&admin.access))
        .await
        .expect(200)
        .body;
    let keys: Vec<&str> = listed["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["key"].as_str().unwrap())
        .collect();
    assert_eq!(
        keys,
        [
            "new_customer",
            "high_intent",
            "high_value",
            "lifecycle",
            "abc_tiers",
            "rfm",
            "first_capture",
            "activity"
        ]
    );
    for key in &keys {
        let made = app
            .post(
                &format!("/api/v1/rule-templates/{key}"),
                Some(&manager.access),
                &json!({}),
            )
            .await
            .expect(201)
            .body;
        assert!(made["created_rules"].as_u64().unwrap() >= 1, "{key}");
        // A second time finds everything and creates nothing.
        let again = app
            .post(
                &format!("/api/v1/rule-templates/{key}"),
                Some(&manager.access),
                &json!({}),
            )
            .await
            .expect(201)
            .body;
        assert_eq!(again["created_rules"], 0, "{key}");
        assert_eq!(again["tags"], made["tags"], "{key}");
    }
    app.post(
        "/api/v1/rule-templates/nope",
        Some(&admin.access),
        &json!({}),
    )
    .await
    .expect(404);
    app.post(
        "/api/v1/rule-templates/rfm",
        Some(&admin.access),
        &json!({"parameters": {"bogus": 1}}),
    )
    .await
    .expect(422)
    .expect_coded_field_error("parameters.bogus", "unknown_parameter");

    // A new customer without an owner: 新录入, 待分配, 潜客, C, 活跃, and a task for the manager.
    let fresh = app.create_customer(&admin, &json!({"name": "新人"})).await["id"]
        .as_i64()
        .unwrap();
    assert_eq!(
        tag_names(&app, &admin, fresh).await,
        ["C类客户", "待分配", "新录入", "活跃", "潜客"]
    );
    let manager_tasks = tasks(&app, &manager).await;
    assert_eq!(manager_tasks.len(), 1);
    assert_eq!(manager_tasks[0]["title"], "分配新客户 新人");
    // Owned, it is no longer 待分配.
    app.patch(
        &format!("/api/v1/customers/{fresh}"),
        Some(&admin.access),
        &json!({"owner_id": admin.id}),
    )
    .await
    .expect(200);
    assert!(
        !tag_names(&app, &admin, fresh)
            .await
            .contains(&"待分配".to_owned())
    );

    // Stage 已报价: 高意向客户.
    app.patch(
        &format!("/api/v1/customers/{fresh}"),
        Some(&admin.access),
        &json!({"project_stage": "已报价"}),
    )
    .await
    .expect(200);
    assert!(
        tag_names(&app, &admin, fresh)
            .await
            .contains(&"高意向客户".to_owned())
    );

    // Exactly 5,000.00 元 over 4 orders, then exactly 3 orders of more: not 高价值客户; more: it is.
    let spender = app
        .create_customer(&admin, &json!({"name": "买家", "owner_id": admin.id}))
        .await["id"]
        .as_i64()
        .unwrap();
    for days in [40, 30, 20, 10] {
        order(&app, &admin, spender, 125_000, days).await;
    }
    let names = tag_names(&app, &admin, spender).await;
    assert!(!names.contains(&"高价值客户".to_owned()), "{names:?}");
    // Four orders in a year: 成长期; score 4 × 10 = 40: B; last order 10 days ago, 4 orders,
    // exactly 5,000 元: recent, frequent, monetary (≥ 5,000): 重要价值客户.
    for expected in ["成长期", "B类客户", "重要价值客户", "活跃"] {
        assert!(
            names.contains(&expected.to_owned()),
            "{expected} not in {names:?}"
        );
    }
    order(&app, &admin, spender, 1, 5).await;
    let names = tag_names(&app, &admin, spender).await;
    for expected in ["高价值客户", "成熟期", "B类客户"] {
        assert!(
            names.contains(&expected.to_owned()),
            "{expected} not in {names:?}"
        );
    }
    let three = app
        .create_customer(&admin, &json!({"name": "三单", "owner_id": admin.id}))
        .await["id"]
        .as_i64()
        .unwrap();
    for days in [3, 2, 1] {
        order(&app, &admin, three, 900_000, days).await;
    }
    assert!(
        !tag_names(&app, &admin, three)
            .await
            .contains(&"高价值客户".to_owned())
    );

    // A buyer whose last follow-up is 31 days old: 流失预警 (above every other lifecycle tag),
    // with one task for the owner; a follow-up today ends it.
    let quiet = app
        .create_customer(&admin, &json!({"name": "沉寂", "owner_id": manager.id}))
        .await["id"]
        .as_i64()
        .unwrap();
    follow_up_at(&app, &manager, quiet, 31).await;
    assert!(
        !tag_names(&app, &admin, quiet)
            .await
            .contains(&"流失预警".to_owned())
    );
    order(&app, &manager, quiet, 100, 40).await;
    let names = tag_names(&app, &admin, quiet).await;
    assert!(names.contains(&"流失预警".to_owned()), "{names:?}");
    assert!(!names.contains(&"新客".to_owned()), "{names:?}");
    let warnings: Vec<Value> = tasks(&app, &manager)
        .await
        .into_iter()
        .filter(|t| t["title"] == "流失预警：回访 沉寂")
        .collect();
    assert_eq!(warnings.len(), 1);
    follow_up_at(&app, &manager, quiet, 0).await;
    let names = tag_names(&app, &admin, quiet).await;
    assert!(!names.contains(&"流失预警".to_owned()), "{names:?}");
    assert!(names.contains(&"新客".to_owned()), "{names:?}");
    // One small order 60 days ago: recency, frequency and money all low.
    assert!(names.contains(&"一般挽留客户".to_owned()), "{names:?}");

    // Tiers from feedback too: 6 orders (60) → A.
    let loyal = app
        .create_customer(&admin, &json!({"name": "常客", "owner_id": admin.id}))
        .await["id"]
        .as_i64()
        .unwrap();
    for days in 1..=6 {
        order(&app, &admin, loyal, 100, days * 30).await;
    }
    assert!(
        tag_names(&app, &admin, loyal)
            .await
            .contains(&"A类客户".to_owned())
    );
    let rated = app
        .create_customer(&admin, &json!({"name": "评价", "owner_id": admin.id}))
        .await["id"]
        .as_i64()
        .unwrap();
    for rating in [5, 7] {
        app.post(
            "/api/v1/events",
            Some(&admin.access),
            &json!({"customer_id": rated, "kind": "custom:feedback", "properties": {"rating": rating}}),
        )
        .await
        .expect(201);
    }
    // Average rating 6 × 5 = 30: B.
    assert!(
        tag_names(&app, &admin, rated)
            .await
            .contains(&"B类客户".to_owned())
    );

    // A visit 31 days ago, and no later one: 沉默.
    let gone = app
        .create_customer(&admin, &json!({"name": "久违", "owner_id": admin.id}))
        .await["id"]
        .as_i64()
        .unwrap();
    app.post(
        "/api/v1/events",
        Some(&admin.access),
        &json!({"customer_id": gone, "kind": "visit", "occurred_at": Utc::now() - Duration::days(31)}),
    )
    .await
    .expect(201);
    let names = tag_names(&app, &admin, gone).await;
    assert!(
        names.contains(&"沉默".to_owned()) && !names.contains(&"活跃".to_owned()),
        "{names:?}"
    );

    // A customer recorded through a channel: 新客户, with a welcome message to them.
    let channel = app
        .post(
            "/api/v1/channels",
            Some(&admin.access),
            &json!({"name": "门店", "scene": "store", "owner_policy": {"type": "fixed", "staff_id": manager.id},
                    "form": [{"key": "phone", "required": true}], "privacy_policy_version": "v1"}),
        )
        .await
        .expect(201)
        .body;
    let visitor = app.visitor("o-walk-in", None).await;
    let captured = app
        .post(
            "/api/v1/capture",
            Some(&visitor.access),
            &json!({"scene": channel["qr_scene"], "name": "到店", "phone": "13900139000",
                    "consent": {"accepted": true, "policy_version": "v1"}}),
        )
        .await
        .expect(201)
        .body;
    let given: Vec<&str> = captured["tags"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert!(
        given.contains(&"新客户") && given.contains(&"新录入") && !given.contains(&"待分配"),
        "{given:?}"
    );
    let welcome = app.messages_to("o-walk-in", 1).await;
    assert_eq!(welcome[0]["template_id"], scantag_e2e::CUSTOMER_TEMPLATE);
    assert_eq!(
        welcome[0]["data"]["thing1"]["value"],
        "欢迎光临，您的专属顾问将尽快联系您"
    );
}

#[tokio::test]
async fn the_same_history_gives_the_same_tags_whatever_order_it_arrives_in() {
    let app = spawn_app().await;
    let admin = app.tenant_admin("Acme").await;
    for key in [
        "high_value",
        "lifecycle",
        "abc_tiers",
        "rfm",
        "high_intent",
        "activity",
    ] {
        app.post(
            &format!("/api/v1/rule-templates/{key}"),
            Some(&admin.access),
            &json!({}),
        )
        .await
        .expect(201);
    }
    // One history: orders, follow-ups moving the stage back and forth, visits.
    let now = Utc::now();
    let mut history: Vec<(&str, Value)> = Vec::new();
    for (i, (days, fen)) in [
        (170, 200_000),
        (90, 150_000),
        (40, 90_000),
        (20, 120_000),
        (3, 80_000),
    ]
    .into_iter()
    .enumerate()
    {
        history.push(("orders", json!({"amount_fen": fen, "occurred_at": now - Duration::days(days), "external_ref": format!("R{i}")})));
    }
    for (days, stage) in [(60, "需求确认"), (10, "已报价"), (45, "初步接触")] {
        history.push(("follow-ups", json!({"kind": "call", "content": "跟进", "stage": stage, "occurred_at": now - Duration::days(days)})));
    }
    for days in [50, 12, 35] {
        history.push((
            "events",
            json!({"kind": "visit", "occurred_at": now - Duration::days(days)}),
        ));
    }
    let mut tag_sets = Vec::new();
    for order in [
        (0..history.len()).collect::<Vec<_>>(),
        (0..history.len()).rev().collect(),
        vec![5, 0, 9, 3, 7, 1, 10, 2, 6, 4, 8],
    ] {
        let customer = app
            .create_customer(&admin, &json!({"name": "同一段历史"}))
            .await["id"]
            .as_i64()
            .unwrap();
        for i in order {
            let (path, body) = &history[i];
            let mut body = body.clone();
            body["customer_id"] = json!(customer);
            if let Some(reference) = body.get("external_ref").and_then(Value::as_str) {
                body["external_ref"] = json!(format!("{customer}-{reference}"));
            }
            app.post(&format!("/api/v1/{path}"), Some(&admin.access), &body)
                .await
                .expect(201);
        }
        let detail = app.customer(&admin, customer).await;
        assert_eq!(detail["project_stage"], "已报价");
        tag_sets.push(tag_names(&app, &admin, customer).await);
    }
    assert!(!tag_sets[0].is_empty());
    assert_eq!(tag_sets[0], tag_sets[1]);
    assert_eq!(tag_sets[0], tag_sets[2]);
}

#[tokio::test]
async fn bad_events_follow_ups_bulks_and_stage_lists_are_refused() {
    let app = spawn_app().await;
    let admin = app.tenant_admin("Acme").await;
    let sales = app.invite_staff(&admin, "o-sales", "sales").await;
    let customer = app.create_customer(&admin, &json!({"name": "某人"})).await["id"]
        .as_i64()
        .unwrap();
    let big: String = "x".repeat(5_000);
    for (body, field, code) in [
        (
            json!({"customer_id": customer, "kind": "jump"}),
            "kind",
            "unknown_kind",
        ),
        (
            json!({"customer_id": customer, "kind": "custom:"}),
            "kind",
            "unknown_kind",
        ),
        (
            json!({"customer_id": customer, "kind": "visit", "properties": {"note": big}}),
            "properties",
            "size",
        ),
        (
            json!({"customer_id": customer, "kind": "visit", "occurred_at": Utc::now() + Duration::hours(2)}),
            "occurred_at",
            "future",
        ),
    ] {
        app.post("/api/v1/events", Some(&admin.access), &body)
            .await
            .expect(422)
            .expect_coded_field_error(field, code);
    }
    for (body, field) in [
        (
            json!({"customer_id": customer, "kind": "call", "content": "  "}),
            "content",
        ),
        (
            json!({"customer_id": customer, "kind": "call", "content": "x", "next_follow_up_on": "1800-01-01"}),
            "next_follow_up_on",
        ),
        (
            json!({"customer_id": customer, "kind": "shout", "content": "x"}),
            "kind",
        ),
    ] {
        app.post("/api/v1/follow-ups", Some(&admin.access), &body)
            .await
            .expect(422)
            .expect_field_error(field, None);
    }
    let too_many: Vec<Value> = (0..1_001)
        .map(|_| json!({"customer_id": customer, "kind": "visit"}))
        .collect();
    app.post(
        "/api/v1/events/bulk",
        Some(&admin.access),
        &json!({"items": too_many}),
    )
    .await
    .expect(422)
    .expect_field_error("items", None);
    app.get(
        &format!("/api/v1/customers/{customer}/orders?cursor=nope"),
        Some(&admin.access),
    )
    .await
    .expect(422)
    .expect_field_error("cursor", None);
    // Nothing of the refused requests was written.
    let events = app
        .get(
            &format!("/api/v1/customers/{customer}/events"),
            Some(&admin.access),
        )
        .await
        .expect(200)
        .body;
    assert!(events["items"].as_array().unwrap().is_empty());

    // Stages: the default list, an admin's own, and refused lists.
    let stages = app
        .get("/api/v1/project-stages", Some(&sales.access))
        .await
        .expect(200)
        .body;
    assert_eq!(stages["stages"][3], "已报价");
    app.put(
        "/api/v1/project-stages",
        Some(&sales.access),
        &json!({"stages": ["甲"]}),
    )
    .await
    .expect(403);
    app.put(
        "/api/v1/project-stages",
        Some(&admin.access),
        &json!({"stages": []}),
    )
    .await
    .expect(422)
    .expect_field_error("stages", None);
    app.put(
        "/api/v1/project-stages",
        Some(&admin.access),
        &json!({"stages": ["线索", "线索"]}),
    )
    .await
    .expect(422)
    .expect_coded_field_error("stages[1]", "duplicate");
    let saved = app
        .put(
            "/api/v1/project-stages",
            Some(&admin.access),
            &json!({"stages": ["线索", "签约"]}),
        )
        .await
        .expect(200)
        .body;
    assert_eq!(saved, json!({"stages": ["线索", "签约"]}));
    let follow_up = |stage: &str| json!({"customer_id": customer, "kind": "call", "content": "x", "stage": stage});
    app.post(
        "/api/v1/follow-ups",
        Some(&admin.access),
        &follow_up("签约"),
    )
    .await
    .expect(201);
    app.post(
        "/api/v1/follow-ups",
        Some(&admin.access),
        &follow_up("已报价"),
    )
    .await
    .expect(422)
    .expect_coded_field_error("stage", "unknown_stage");
}

#[tokio::test]
async fn a_batch_that_gives_a_rules_tag_makes_it_the_persons() {
    let app = spawn_app().await;
    let admin = app.tenant_admin("Acme").await;
    let group = app.create_group(&admin, "客户价值", false).await;
    let tag = app.create_tag(&admin, group, "大客户").await;
    rule(
        &app,
        &admin,
        json!({"name": "大单", "condition": {"metric": {"aggregate": "max", "of": "orders.amount"}, "op": "gte", "value": 100000},
               "actions": [{"type": "add_tag", "tag_id": tag}]}),
    )
    .await;
    let ruled = app.create_customer(&admin, &json!({"name": "甲"})).await["id"]
        .as_i64()
        .unwrap();
    let plain = app.create_customer(&admin, &json!({"name": "乙"})).await["id"]
        .as_i64()
        .unwrap();
    let big = order(&app, &admin, ruled, 200_000, 3).await;
    let batch = app
        .post(
            "/api/v1/customers/batch-tags",
            Some(&admin.access),
            &json!({"customer_ids": [ruled, plain], "add": [tag]}),
        )
        .await
        .expect(200)
        .body;
    assert_eq!(batch["added"], 2, "{batch}");
    for id in [ruled, plain] {
        let detail = app.customer(&admin, id).await;
        assert_eq!(detail["tags"][0]["source"], "manual", "{detail}");
        assert!(detail["tags"][0]["rule_id"].is_null(), "{detail}");
    }
    // The rule no longer holding does not take the person's tag off.
    app.post(
        &format!("/api/v1/orders/{}/refund", big["id"]),
        Some(&admin.access),
        &json!({}),
    )
    .await
    .expect(200);
    assert_eq!(tag_ids(&app, &admin, ruled).await, vec![tag]);
}

#[tokio::test]
async fn a_tag_two_rules_want_names_the_rule_that_keeps_it() {
    let app = spawn_app().await;
    let admin = app.tenant_admin("Acme").await;
    let group = app.create_group(&admin, "客户价值", false).await;
    let tag = app.create_tag(&admin, group, "重点客户").await;
    let big = rule(
        &app,
        &admin,
        json!({"name": "大单", "priority": 10,
               "condition": {"metric": {"aggregate": "max", "of": "orders.amount"}, "op": "gte", "value": 100000},
               "actions": [{"type": "add_tag", "tag_id": tag}]}),
    )
    .await;
    let local = rule(
        &app,
        &admin,
        json!({"name": "上海", "condition": {"field": "region", "op": "eq", "value": "上海"},
               "actions": [{"type": "add_tag", "tag_id": tag}]}),
    )
    .await;
    let customer = app
        .create_customer(&admin, &json!({"name": "丙", "region": "上海"}))
        .await["id"]
        .as_i64()
        .unwrap();
    let link = |detail: Value| detail["tags"][0].clone();
    assert_eq!(
        link(app.customer(&admin, customer).await)["rule_id"],
        local["id"]
    );
    let placed = order(&app, &admin, customer, 200_000, 1).await;
    // The higher priority rule now wants it too: the link names it.
    let detail = link(app.customer(&admin, customer).await);
    assert_eq!(detail["rule_id"], big["id"], "{detail}");
    assert!(
        detail["reason"].as_str().unwrap().contains("大单"),
        "{detail}"
    );
    app.post(
        &format!("/api/v1/orders/{}/refund", placed["id"]),
        Some(&admin.access),
        &json!({}),
    )
    .await
    .expect(200);
    // No longer: the tag stays, kept by the other rule, and says so.
    let detail = link(app.customer(&admin, customer).await);
    assert_eq!(detail["tag_id"], tag);
    assert_eq!(detail["rule_id"], local["id"], "{detail}");
    assert!(
        detail["reason"].as_str().unwrap().contains("上海"),
        "{detail}"
    );
}

#[tokio::test]
async fn versions_are_kept_and_keep_tags_leaves_a_rules_tags_as_manual_ones() {
    let app = spawn_app().await;
    let admin = app.tenant_admin("Acme").await;
    let group = app.create_group(&admin, "地区", false).await;
    let tag = app.create_tag(&admin, group, "华东").await;
    let other_tag = app.create_tag(&admin, group, "华北").await;
    let created = rule(
        &app,
        &admin,
        json!({"name": "华东", "condition": {"field": "region", "op": "eq", "value": "上海"},
               "actions": [{"type": "add_tag", "tag_id": tag}]}),
    )
    .await;
    let id = created["id"].as_i64().unwrap();
    let path = format!("/api/v1/rules/{id}");
    // A new condition: version 2; a rename alone makes none.
    let changed = app
        .patch(
            &path,
            Some(&admin.access),
            &json!({"condition": {"field": "region", "op": "in", "value": ["上海", "杭州"]}}),
        )
        .await
        .expect(200)
        .body;
    assert_eq!(changed["version"], 2);
    app.patch(&path, Some(&admin.access), &json!({"name": "华东地区"}))
        .await
        .expect(200);
    let versions = app
        .get(&format!("{path}/versions"), Some(&admin.access))
        .await
        .expect(200)
        .body;
    let listed: Vec<(i64, Value)> = versions["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| (v["version"].as_i64().unwrap(), v["condition"]["op"].clone()))
        .collect();
    assert_eq!(
        listed,
        vec![(2, json!("in")), (1, json!("eq"))],
        "{versions}"
    );
    // Sales reps see no versions; another tenant's rule is not there.
    let sales = app.invite_staff(&admin, "o-sales", "sales").await;
    app.get(&format!("{path}/versions"), Some(&sales.access))
        .await
        .expect(403);
    let other = app.tenant_admin("Other").await;
    app.get(&format!("{path}/versions"), Some(&other.access))
        .await
        .expect(404);

    let mut customers = Vec::new();
    for region in ["上海", "杭州"] {
        customers.push(
            app.create_customer(&admin, &json!({"name": region, "region": region}))
                .await["id"]
                .as_i64()
                .unwrap(),
        );
    }
    // A person's own tag on the first customer is never touched.
    app.post(
        &format!("/api/v1/customers/{}/tags", customers[0]),
        Some(&admin.access),
        &json!({"tag_id": other_tag}),
    )
    .await
    .expect(200);
    // Disabled with keep_tags: the tags stay, as the caller's manual tags.
    let disabled = app
        .patch(
            &path,
            Some(&admin.access),
            &json!({"enabled": false, "keep_tags": true}),
        )
        .await
        .expect(200)
        .body;
    assert_eq!(
        disabled["disabled_tags"],
        json!({"tags": [], "kept": [{"tag_id": tag, "customers": 2}]}),
        "{disabled}"
    );
    for &c in &customers {
        let detail = app.customer(&admin, c).await;
        let link = detail["tags"]
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["tag_id"] == tag)
            .cloned()
            .unwrap();
        assert_eq!(link["source"], "manual", "{detail}");
    }
    // Enabled again, then deleted without keep_tags: the manual tags stay (they are a
    // person's now), and the person's other tag too.
    app.patch(&path, Some(&admin.access), &json!({"enabled": true}))
        .await
        .expect(200);
    let third = app
        .create_customer(&admin, &json!({"name": "杭州2", "region": "杭州"}))
        .await["id"]
        .as_i64()
        .unwrap();
    assert_eq!(tag_ids(&app, &admin, third).await, vec![tag]);
    let deleted = app
        .delete(&path, Some(&admin.access))
        .await
        .expect(200)
        .body;
    assert_eq!(
        deleted,
        json!({"tags": [{"tag_id": tag, "customers": 1}], "kept": []}),
        "{deleted}"
    );
    assert!(tag_ids(&app, &admin, third).await.is_empty());
    let mut first = tag_ids(&app, &admin, customers[0]).await;
    first.sort_unstable();
    assert_eq!(first, vec![tag, other_tag]);
    app.get(&format!("{path}/versions"), Some(&admin.access))
        .await
        .expect(404);
    app.delete("/api/v1/rules/1?keep_tags=maybe", Some(&admin.access))
        .await
        .expect(422);
}

/// Every customer's tag ids, by customer.
async fn all_tags(app: &TestApp, who: &Session, ids: &[i64]) -> Vec<Vec<i64>> {
    let mut out = Vec::new();
    for &id in ids {
        let mut tags = app.customer_tag_ids(who, id).await;
        tags.sort_unstable();
        out.push(tags);
    }
    out
}

/// `{tag: (gaining, losing)}` between two snapshots, customers sorted.
fn effects(ids: &[i64], before: &[Vec<i64>], after: &[Vec<i64>]) -> Value {
    let mut map: std::collections::BTreeMap<i64, (Vec<i64>, Vec<i64>)> = Default::default();
    for ((id, b), a) in ids.iter().zip(before).zip(after) {
        for t in a.iter().filter(|t| !b.contains(t)) {
            map.entry(*t).or_default().0.push(*id);
        }
        for t in b.iter().filter(|t| !a.contains(t)) {
            map.entry(*t).or_default().1.push(*id);
        }
    }
    json!(map
        .into_iter()
        .map(|(t, (g, l))| json!({"tag_id": t, "gain": g.len(), "lose": l.len(), "gaining": g, "losing": l}))
        .collect::<Vec<_>>())
}

async fn backfilled(app: &TestApp, who: &Session, job: &Value) {
    let Some(id) = job.as_i64() else { return };
    for _ in 0..300 {
        let state = app
            .get(&format!("/api/v1/rule-jobs/{id}"), Some(&who.access))
            .await
            .expect(200)
            .body;
        if state["status"] == "done" {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("backfill {id} did not finish");
}

#[tokio::test]
async fn a_preview_says_exactly_what_saving_the_rule_then_does() {
    let app = spawn_app().await;
    let admin = app.tenant_admin("Acme").await;
    for key in ["lifecycle", "high_value"] {
        app.post(
            &format!("/api/v1/rule-templates/{key}"),
            Some(&admin.access),
            &json!({}),
        )
        .await
        .expect(201);
    }
    let mut ids = Vec::new();
    for i in 0..12 {
        let region = ["上海", "北京", "杭州"][i % 3];
        ids.push(
            app.create_customer(&admin, &json!({"name": format!("客{i}"), "region": region}))
                .await["id"]
                .as_i64()
                .unwrap(),
        );
    }
    // A random history of orders over the last 200 days.
    let mut seed: u64 = 42;
    let mut next = |n: u64| {
        seed = seed
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (seed >> 33) % n
    };
    for _ in 0..60 {
        let customer = ids[next(ids.len() as u64) as usize];
        let fen = 20_000 + next(250_000) as i64;
        let days = next(200) as i64;
        order(&app, &admin, customer, fen, days).await;
    }
    let group = app.create_group(&admin, "地区", false).await;
    let east = app.create_tag(&admin, group, "华东大客户").await;
    let lifecycle = app
        .get("/api/v1/tags", Some(&admin.access))
        .await
        .expect(200)
        .body["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "成熟期")
        .unwrap()["id"]
        .as_i64()
        .unwrap();
    // A new rule: big spenders in 上海 or 杭州 are 华东大客户 and, with a priority above the
    // lifecycle rules, 成熟期 in that exclusive group.
    let draft = json!({
        "priority": 100,
        "condition": {"all": [
            {"field": "region", "op": "in", "value": ["上海", "杭州"]},
            {"metric": {"aggregate": "sum", "of": "orders.amount", "within": {"last_days": 120}}, "op": "gt", "value": 300000}
        ]},
        "actions": [{"type": "add_tag", "tag_id": east}, {"type": "add_tag", "tag_id": lifecycle}]
    });
    let said = app
        .post("/api/v1/rules/preview", Some(&admin.access), &draft)
        .await
        .expect(200)
        .body;
    assert_eq!(said["customers"], ids.len());
    let before = all_tags(&app, &admin, &ids).await;
    let mut body = draft.clone();
    body["name"] = json!("华东大客户");
    let created = rule(&app, &admin, body).await;
    backfilled(&app, &admin, &created["backfill_job_id"]).await;
    let after = all_tags(&app, &admin, &ids).await;
    let done = effects(&ids, &before, &after);
    assert_eq!(said["tags"], done, "preview {said} vs saving {done}");
    assert!(
        done.as_array().unwrap().iter().any(|e| e["tag_id"] == east),
        "the history gives the rule someone to tag: {done}"
    );

    // Disabling the rule: previewed, then done. With keep_tags nobody would lose a tag.
    let id = created["id"].as_i64().unwrap();
    let kept = app
        .post(
            "/api/v1/rules/preview",
            Some(&admin.access),
            &json!({"rule_id": id, "enabled": false, "keep_tags": true}),
        )
        .await
        .expect(200)
        .body;
    assert_eq!(kept["tags"], json!([]), "{kept}");
    let said = app
        .post(
            "/api/v1/rules/preview",
            Some(&admin.access),
            &json!({"rule_id": id, "enabled": false}),
        )
        .await
        .expect(200)
        .body;
    app.patch(
        &format!("/api/v1/rules/{id}"),
        Some(&admin.access),
        &json!({"enabled": false}),
    )
    .await
    .expect(200);
    let disabled = all_tags(&app, &admin, &ids).await;
    assert_eq!(said["tags"], effects(&ids, &after, &disabled));

    // Nothing was written by the previews; bad drafts are refused like saves.
    app.post(
        "/api/v1/rules/preview",
        Some(&admin.access),
        &json!({"condition": {"field": "nope", "op": "eq", "value": 1}, "actions": []}),
    )
    .await
    .expect(422)
    .expect_field_error("/condition/field", None);
    app.post(
        "/api/v1/rules/preview",
        Some(&admin.access),
        &json!({"rule_id": 999_999, "enabled": false}),
    )
    .await
    .expect(404);
    // Another tenant's rule is not there either; sales reps may not preview; a priority out
    // of range and an unknown field are refused.
    let other = app.tenant_admin("Other").await;
    app.post(
        "/api/v1/rules/preview",
        Some(&other.access),
        &json!({"rule_id": id, "enabled": false}),
    )
    .await
    .expect(404);
    let sales = app.invite_staff(&admin, "o-sales", "sales").await;
    app.post("/api/v1/rules/preview", Some(&sales.access), &draft)
        .await
        .expect(403);
    let mut far = draft.clone();
    far["priority"] = json!(5000);
    app.post("/api/v1/rules/preview", Some(&admin.access), &far)
        .await
        .expect(422)
        .expect_field_error("/priority", Some("range"));
    app.post(
        "/api/v1/rules/preview",
        Some(&admin.access),
        &json!({"keep": true}),
    )
    .await
    .expect(422);
}
