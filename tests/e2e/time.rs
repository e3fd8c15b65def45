//! Time, driven only through the public API and the manual clock (`POST /__dev/clock`):
//! transitions that come with time alone are applied by the scheduler within seconds of
//! their due time — 活跃 → 沉默 and back, 流失预警 with one task per transition, 高价值客户
//! leaving with its oldest order — once each, however many server processes share the
//! database; and tokens expire on the server's clock.

use std::time::{Duration as StdDuration, Instant};

use chrono::{DateTime, Duration, Utc};
use scantag_e2e::{Session, TestApp, spawn_app_with};
use serde_json::{Value, json};

const DAY: i64 = 24 * 3600;
/// The staff of the tests' tenant. Tokens do not survive a month of the clock: after a move
/// the tests log in again, as a client would.
const ADMIN: &str = "admin-of-Acme";
const REP: &str = "o-rep";

async fn clocked() -> TestApp {
    spawn_app_with(|s| s.dev.manual_clock = true).await
}

async fn advance(app: &TestApp, secs: i64) -> DateTime<Utc> {
    let moved = app
        .post("/__dev/clock", None, &json!({"advance_secs": secs}))
        .await
        .expect(200)
        .body;
    moved["now"].as_str().unwrap().parse().unwrap()
}

async fn template(app: &TestApp, admin: &Session, key: &str) {
    app.post(
        &format!("/api/v1/rule-templates/{key}"),
        Some(&admin.access),
        &json!({}),
    )
    .await
    .expect(201);
}

async fn tag_names(app: &TestApp, who: &Session, customer: i64) -> Vec<String> {
    app.customer(who, customer).await["tags"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap().to_owned())
        .collect()
}

/// Waits (up to 8 s) until `customer` carries `name` (or no longer does); returns how long.
async fn until_tag(
    app: &TestApp,
    who: &Session,
    customer: i64,
    name: &str,
    present: bool,
) -> StdDuration {
    let started = Instant::now();
    while started.elapsed() < StdDuration::from_secs(8) {
        if tag_names(app, who, customer)
            .await
            .contains(&name.to_owned())
            == present
        {
            return started.elapsed();
        }
        tokio::time::sleep(StdDuration::from_millis(50)).await;
    }
    panic!(
        "{name} {} on customer {customer} after 8 s: {:?}",
        if present { "not" } else { "still" },
        tag_names(app, who, customer).await
    );
}

async fn history(app: &TestApp, who: &Session, customer: i64) -> Vec<Value> {
    app.get(
        &format!("/api/v1/customers/{customer}/tag-history?limit=100"),
        Some(&who.access),
    )
    .await
    .expect(200)
    .body["items"]
        .as_array()
        .unwrap()
        .clone()
}

async fn rule_tasks(app: &TestApp, who: &Session) -> Vec<Value> {
    app.get("/api/v1/tasks?status=all&limit=100", Some(&who.access))
        .await
        .expect(200)
        .body["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| t["kind"] == "rule")
        .cloned()
        .collect()
}

async fn follow_up(app: &TestApp, who: &Session, customer: i64) -> Value {
    app.post(
        "/api/v1/follow-ups",
        Some(&who.access),
        &json!({"customer_id": customer, "kind": "call", "content": "回访"}),
    )
    .await
    .expect(201)
    .body
}

async fn order(app: &TestApp, who: &Session, customer: i64, fen: i64, at: Option<DateTime<Utc>>) {
    let mut body = json!({"customer_id": customer, "amount_fen": fen});
    if let Some(at) = at {
        body["occurred_at"] = json!(at);
    }
    app.post("/api/v1/orders", Some(&who.access), &body)
        .await
        .expect(201);
}

#[tokio::test]
async fn active_turns_silent_after_30_days_without_a_visit_and_back_on_a_visit() {
    let app = clocked().await;
    let mut admin = app.tenant_admin("Acme").await;
    template(&app, &admin, "activity").await;
    let id = app.create_customer(&admin, &json!({"name": "甲"})).await["id"]
        .as_i64()
        .unwrap();
    app.post(
        "/api/v1/events",
        Some(&admin.access),
        &json!({"customer_id": id, "kind": "visit"}),
    )
    .await
    .expect(201);
    assert!(
        tag_names(&app, &admin, id)
            .await
            .contains(&"活跃".to_owned())
    );

    // 29 days: still 活跃.
    advance(&app, 29 * DAY).await;
    admin = app.login(ADMIN, None).await;
    tokio::time::sleep(StdDuration::from_millis(1_500)).await;
    assert!(
        tag_names(&app, &admin, id)
            .await
            .contains(&"活跃".to_owned())
    );
    // Two more: 沉默, applied by the scheduler within seconds of the clock's move.
    advance(&app, 2 * DAY).await;
    let started = Instant::now();
    admin = app.login(ADMIN, None).await;
    until_tag(&app, &admin, id, "沉默", true).await;
    let took = started.elapsed();
    assert!(took < StdDuration::from_secs(5), "applied after {took:?}");
    assert!(
        !tag_names(&app, &admin, id)
            .await
            .contains(&"活跃".to_owned())
    );
    let silent = history(&app, &admin, id).await;
    let entry = silent
        .iter()
        .find(|h| h["tag_name"] == "沉默" && h["action"] == "add")
        .unwrap();
    assert_eq!(entry["rule_version"], 1, "{entry}");
    assert!(entry["rule_id"].is_i64(), "{entry}");

    // A visit now brings 活跃 back in the same request.
    app.post(
        "/api/v1/events",
        Some(&admin.access),
        &json!({"customer_id": id, "kind": "visit"}),
    )
    .await
    .expect(201);
    let names = tag_names(&app, &admin, id).await;
    assert!(
        names.contains(&"活跃".to_owned()) && !names.contains(&"沉默".to_owned()),
        "{names:?}"
    );
}

#[tokio::test]
async fn churn_warning_comes_after_30_days_without_a_follow_up_with_one_task_each_time() {
    let app = clocked().await;
    let admin = app.tenant_admin("Acme").await;
    let mut rep = app.invite_staff(&admin, "o-rep", "sales").await;
    template(&app, &admin, "lifecycle").await;
    let id = app
        .create_customer(&admin, &json!({"name": "乙", "owner_id": rep.id}))
        .await["id"]
        .as_i64()
        .unwrap();
    order(&app, &admin, id, 10_000, None).await;
    follow_up(&app, &rep, id).await;
    assert!(
        !tag_names(&app, &rep, id)
            .await
            .contains(&"流失预警".to_owned())
    );

    let now = advance(&app, 31 * DAY).await;
    rep = app.login(REP, None).await;
    until_tag(&app, &rep, id, "流失预警", true).await;
    let tasks = rule_tasks(&app, &rep).await;
    assert_eq!(tasks.len(), 1, "{tasks:?}");
    assert_eq!(tasks[0]["title"], "流失预警：回访 乙");
    // Due three days after the moved clock's now.
    let due: DateTime<Utc> = tasks[0]["due_at"].as_str().unwrap().parse().unwrap();
    assert!(
        (due - (now + Duration::days(3))).num_seconds().abs() < 60,
        "{due} vs {now}"
    );

    // Still true a day later: no second task.
    advance(&app, DAY).await;
    rep = app.login(REP, None).await;
    tokio::time::sleep(StdDuration::from_millis(1_500)).await;
    assert_eq!(rule_tasks(&app, &rep).await.len(), 1);

    // A follow-up ends it at once; 30 more silent days bring it back, with a second task.
    let answer = follow_up(&app, &rep, id).await;
    assert!(
        answer["rule_changes"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["added"] == false),
        "{answer}"
    );
    assert!(
        !tag_names(&app, &rep, id)
            .await
            .contains(&"流失预警".to_owned())
    );
    advance(&app, 31 * DAY).await;
    rep = app.login(REP, None).await;
    until_tag(&app, &rep, id, "流失预警", true).await;
    assert_eq!(rule_tasks(&app, &rep).await.len(), 2);
}

#[tokio::test]
async fn high_value_goes_when_its_oldest_order_leaves_the_window() {
    let app = clocked().await;
    let mut admin = app.tenant_admin("Acme").await;
    template(&app, &admin, "high_value").await;
    let id = app.create_customer(&admin, &json!({"name": "丙"})).await["id"]
        .as_i64()
        .unwrap();
    let clock: DateTime<Utc> = app.get("/__dev/clock", None).await.expect(200).body["now"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    // 2,000 元 170 days ago and three of 1,500 元 now: 6,500 元 over 4 orders.
    order(&app, &admin, id, 200_000, Some(clock - Duration::days(170))).await;
    for _ in 0..3 {
        order(&app, &admin, id, 150_000, None).await;
    }
    assert!(
        tag_names(&app, &admin, id)
            .await
            .contains(&"高价值客户".to_owned())
    );
    // Eleven days on, the oldest order is out of the 180 days: 4,500 元 over 3 orders.
    advance(&app, 11 * DAY).await;
    admin = app.login(ADMIN, None).await;
    until_tag(&app, &admin, id, "高价值客户", false).await;
    let removed = history(&app, &admin, id).await;
    let entry = removed
        .iter()
        .find(|h| h["tag_name"] == "高价值客户" && h["action"] == "remove")
        .unwrap();
    assert_eq!(entry["source"], "rule");
    assert_eq!(entry["rule_version"], 1, "{entry}");
    assert!(
        entry["reason"]
            .as_str()
            .unwrap()
            .contains("no longer holds"),
        "{entry}"
    );
}

#[tokio::test]
async fn two_processes_on_one_database_apply_each_due_transition_once() {
    let first = clocked().await;
    let (database, redis, wechat) = (
        first.settings.database_url.clone(),
        first.settings.redis_url.clone(),
        first.settings.wechat.base_url.clone(),
    );
    let second = spawn_app_with(move |s| {
        s.database_url = database;
        s.redis_url = redis;
        s.wechat.base_url = wechat;
        s.dev.manual_clock = true;
    })
    .await;
    let admin = first.tenant_admin("Acme").await;
    let rep = first.invite_staff(&admin, "o-rep", "sales").await;
    template(&first, &admin, "lifecycle").await;
    let mut ids = Vec::new();
    for i in 0..6 {
        let id = first
            .create_customer(
                &admin,
                &json!({"name": format!("客{i}"), "owner_id": rep.id}),
            )
            .await["id"]
            .as_i64()
            .unwrap();
        order(&first, &admin, id, 10_000, None).await;
        ids.push(id);
    }
    // Both processes' clocks move; both schedulers look at once.
    tokio::join!(advance(&first, 31 * DAY), advance(&second, 31 * DAY));
    let (admin, rep) = (first.login(ADMIN, None).await, first.login(REP, None).await);
    for &id in &ids {
        until_tag(&second, &rep, id, "流失预警", true).await;
    }
    tokio::time::sleep(StdDuration::from_millis(2_000)).await;
    assert_eq!(rule_tasks(&first, &rep).await.len(), ids.len());
    for &id in &ids {
        let added = history(&first, &admin, id)
            .await
            .into_iter()
            .filter(|h| h["tag_name"] == "流失预警" && h["action"] == "add")
            .count();
        assert_eq!(added, 1, "customer {id}");
    }
}

#[tokio::test]
async fn tokens_expire_on_the_servers_clock_and_the_clock_only_moves_forward() {
    let app = clocked().await;
    let admin = app.tenant_admin("Acme").await;
    app.get("/api/v1/me", Some(&admin.access)).await.expect(200);
    advance(&app, 16 * 60).await;
    let expired = app.get("/api/v1/me", Some(&admin.access)).await;
    assert_eq!(expired.status, 401, "{}", expired.text);
    app.post(
        "/__dev/clock",
        None,
        &json!({"now": "2020-01-01T00:00:00Z"}),
    )
    .await
    .expect(422)
    .expect_coded_field_error("now", "backwards");
    app.post("/__dev/clock", None, &json!({})).await.expect(422);
    // A server on real time has no clock to move.
    let real = scantag_e2e::spawn_app().await;
    real.post("/__dev/clock", None, &json!({"advance_secs": 60}))
        .await
        .expect(404);
    real.get("/__dev/clock", None).await.expect(404);
}
