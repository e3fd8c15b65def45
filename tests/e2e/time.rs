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
    let second = scantag_e2e::spawn_beside(&first, |s| s.dev.manual_clock = true).await;
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

async fn job_done(app: &TestApp, who: &Session, id: i64) -> Value {
    for _ in 0..300 {
        let job = app
            .get(&format!("/api/v1/rule-jobs/{id}"), Some(&who.access))
            .await
            .expect(200)
            .body;
        if job["status"] == "done" {
            return job;
        }
        tokio::time::sleep(StdDuration::from_millis(50)).await;
    }
    panic!("rule job {id} did not finish in 15 s");
}

#[tokio::test]
async fn a_new_rule_reaches_existing_customers_through_a_backfill_with_progress() {
    let app = clocked().await;
    let admin = app.tenant_admin("Acme").await;
    let sales = app.invite_staff(&admin, "o-sales", "sales").await;
    let group = app.create_group(&admin, "地区", false).await;
    let tag = app.create_tag(&admin, group, "上海客户").await;
    let mut shanghai = Vec::new();
    for i in 0..5 {
        let region = if i < 3 { "上海" } else { "北京" };
        let id = app
            .create_customer(&admin, &json!({"name": format!("客{i}"), "region": region}))
            .await["id"]
            .as_i64()
            .unwrap();
        if i < 3 {
            shanghai.push(id);
        }
    }
    let created = app
        .post(
            "/api/v1/rules",
            Some(&admin.access),
            &json!({"name": "上海", "condition": {"field": "region", "op": "eq", "value": "上海"},
                    "actions": [{"type": "add_tag", "tag_id": tag}]}),
        )
        .await
        .expect(201)
        .body;
    let job_id = created["backfill_job_id"].as_i64().expect("a backfill job");
    let job = job_done(&app, &admin, job_id).await;
    assert_eq!(job["kind"], "backfill");
    assert_eq!(job["rule_id"], created["id"]);
    assert_eq!(
        (job["total"].as_i64(), job["processed"].as_i64()),
        (Some(5), Some(5)),
        "{job}"
    );
    assert_eq!(job["changed"], 3, "{job}");
    for id in shanghai {
        assert_eq!(app.customer_tag_ids(&admin, id).await, vec![tag]);
    }
    // The jobs are listed; a re-check now corrects nothing.
    let listed = app
        .get("/api/v1/rule-jobs", Some(&admin.access))
        .await
        .expect(200)
        .body;
    assert_eq!(listed["items"][0]["id"], job_id);
    let recheck = app
        .post("/api/v1/rules/recheck", Some(&admin.access), &json!({}))
        .await
        .expect(202)
        .body;
    let done = job_done(&app, &admin, recheck["id"].as_i64().unwrap()).await;
    assert_eq!(
        (
            done["kind"].as_str(),
            done["processed"].as_i64(),
            done["changed"].as_i64()
        ),
        (Some("recheck"), Some(5), Some(0)),
        "{done}"
    );
    // Sales reps do not see or start jobs; another tenant's job is not there.
    app.post("/api/v1/rules/recheck", Some(&sales.access), &json!({}))
        .await
        .expect(403);
    app.get(&format!("/api/v1/rule-jobs/{job_id}"), Some(&sales.access))
        .await
        .expect(403);
    let other = app.tenant_admin("Other").await;
    app.get(&format!("/api/v1/rule-jobs/{job_id}"), Some(&other.access))
        .await
        .expect(404);
}

/// A small deterministic generator, so a failing history can be replayed.
struct Lcg(u64);

impl Lcg {
    fn below(&mut self, n: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 33) % n
    }
}

#[tokio::test]
async fn after_a_long_random_history_a_recheck_corrects_nothing() {
    let app = clocked().await;
    let mut admin = app.tenant_admin("Acme").await;
    for key in [
        "high_value",
        "lifecycle",
        "activity",
        "rfm",
        "abc_tiers",
        "high_intent",
        "new_customer",
    ] {
        template(&app, &admin, key).await;
    }
    let mut ids = Vec::new();
    for i in 0..8 {
        let id = app
            .create_customer(&admin, &json!({"name": format!("客{i}")}))
            .await["id"]
            .as_i64()
            .unwrap();
        ids.push(id);
    }
    let stages = [
        "初步接触",
        "需求确认",
        "方案沟通中",
        "已报价",
        "谈判",
        "成交",
        "输单",
    ];
    let mut rng = Lcg(20_261_201);
    let mut orders: Vec<Value> = Vec::new();
    for _ in 0..120 {
        let customer = ids[rng.below(ids.len() as u64) as usize];
        match rng.below(10) {
            0..=3 => {
                let at = clock_now(&app).await - Duration::days(rng.below(200) as i64);
                let body = json!({"customer_id": customer, "amount_fen": 10_000 + rng.below(300_000) as i64, "occurred_at": at});
                let placed = app
                    .post("/api/v1/orders", Some(&admin.access), &body)
                    .await
                    .expect(201)
                    .body;
                orders.push(placed);
            }
            4 if !orders.is_empty() => {
                let order = &orders[rng.below(orders.len() as u64) as usize];
                app.post(
                    &format!("/api/v1/orders/{}/refund", order["id"]),
                    Some(&admin.access),
                    &json!({}),
                )
                .await
                .expect(200);
            }
            5 | 6 => {
                let stage = stages[rng.below(stages.len() as u64) as usize];
                app.post(
                    "/api/v1/follow-ups",
                    Some(&admin.access),
                    &json!({"customer_id": customer, "kind": "call", "content": "跟进", "stage": stage}),
                )
                .await
                .expect(201);
            }
            7 => {
                app.post(
                    "/api/v1/events",
                    Some(&admin.access),
                    &json!({"customer_id": customer, "kind": "visit"}),
                )
                .await
                .expect(201);
            }
            _ => {
                advance(
                    &app,
                    rng.below(20) as i64 * DAY + rng.below(DAY as u64) as i64,
                )
                .await;
                admin = app.login(ADMIN, None).await;
            }
        }
    }
    // Let the scheduler apply what the last moves made due, then check everything.
    tokio::time::sleep(StdDuration::from_millis(2_500)).await;
    let recheck = app
        .post("/api/v1/rules/recheck", Some(&admin.access), &json!({}))
        .await
        .expect(202)
        .body;
    let done = job_done(&app, &admin, recheck["id"].as_i64().unwrap()).await;
    assert_eq!(done["processed"], ids.len(), "{done}");
    assert_eq!(
        (done["changed"].as_i64(), done["corrections"].as_i64()),
        (Some(0), Some(0)),
        "{done}"
    );
}

async fn clock_now(app: &TestApp) -> DateTime<Utc> {
    app.get("/__dev/clock", None).await.expect(200).body["now"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap()
}

#[tokio::test]
async fn the_manual_clock_is_refused_with_any_wechat_but_a_mock() {
    let dir = tempfile::tempdir().unwrap();
    let refused = |appid: &str, base_url: &str| {
        let mut settings = scantag_e2e::base_settings(dir.path(), base_url);
        settings.database_url = Some(secrecy::SecretString::from(format!(
            "sqlite://{}?mode=rwc",
            dir.path().join("clock.db").display()
        )));
        settings.listen = "127.0.0.1:0".parse().unwrap();
        settings.wechat.appid = Some(appid.to_owned());
        settings.dev.manual_clock = true;
        settings
    };
    for (appid, url) in [
        ("wx-a-real-app", "http://127.0.0.1:9"),
        (
            miniprogram_mock::MockConfig::default().appid.as_str(),
            "https://api.weixin.qq.com",
        ),
    ] {
        let built = scantag_api::Application::build(refused(appid, url)).await;
        let err = built.err().map(|e| format!("{e:#}")).unwrap_or_default();
        assert!(err.contains("manual_clock"), "{appid} at {url}: {err}");
    }
}

#[tokio::test]
async fn transitions_a_dead_scheduler_had_claimed_are_applied_once_its_claim_runs_out() {
    use sea_orm::{ConnectionTrait, Statement};
    let app = clocked().await;
    let mut admin = app.tenant_admin("Acme").await;
    template(&app, &admin, "activity").await;
    let id = app.create_customer(&admin, &json!({"name": "丁"})).await["id"]
        .as_i64()
        .unwrap();
    // The template's backfill is over (it evaluates every customer, claimed or not).
    let jobs = app
        .get("/api/v1/rule-jobs", Some(&admin.access))
        .await
        .expect(200)
        .body;
    for job in jobs["items"].as_array().unwrap() {
        job_done(&app, &admin, job["id"].as_i64().unwrap()).await;
    }
    // A process claimed the customer's states at the moment they fell due, then died: its
    // claim (30 s) outlives it in the database.
    let due_at = clock_now(&app).await + Duration::days(31);
    let claimed_until = due_at + Duration::seconds(30);
    let backend = app.db.get_database_backend();
    app.db
        .execute_raw(Statement::from_sql_and_values(
            backend,
            "UPDATE rule_due SET lease_until = ?, lease_token = 'a-dead-process' WHERE customer_id = ?",
            [claimed_until.into(), id.into()],
        ))
        .await
        .unwrap();
    advance(&app, 31 * DAY).await;
    admin = app.login(ADMIN, None).await;
    // Due, but claimed: nobody else touches it yet.
    tokio::time::sleep(StdDuration::from_millis(1_500)).await;
    assert!(
        tag_names(&app, &admin, id)
            .await
            .contains(&"活跃".to_owned())
    );
    // The claim runs out: the next round takes the states and applies the transition, once.
    advance(&app, 40).await;
    until_tag(&app, &admin, id, "沉默", true).await;
    tokio::time::sleep(StdDuration::from_millis(1_500)).await;
    let added = history(&app, &admin, id)
        .await
        .into_iter()
        .filter(|h| h["tag_name"] == "沉默" && h["action"] == "add")
        .count();
    assert_eq!(added, 1);
}
