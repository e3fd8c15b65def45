//! The TypeScript mini-program simulator (`miniprogram-mock/simulator`), whose API client is
//! generated from the committed OpenAPI document, plays a visitor against the real server:
//! an API change that breaks the generated client breaks this test (and `make simulator`).

use std::path::PathBuf;
use std::process::{Command, Output};

use scantag_e2e::{Session, TestApp, spawn_app};
use serde_json::{Value, json};

/// The built simulator; `make test` builds it first (`make simulator`), and a plain
/// `cargo test` builds it here when it is missing.
fn simulator() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../miniprogram-mock/simulator");
    let main = dir.join("dist/main.js");
    if !main.exists() {
        for args in [
            &["ci", "--no-audit", "--no-fund"][..],
            &["run", "build"][..],
        ] {
            let status = Command::new("npm")
                .args(args)
                .current_dir(&dir)
                .status()
                .expect("npm must be installed to build the simulator (Node 20 or later)");
            assert!(status.success(), "npm {args:?} failed in {}", dir.display());
        }
    }
    main
}

/// Runs the simulator against `app` with `args`, off the async runtime's threads.
async fn simulate(app: &TestApp, args: &[&str]) -> Output {
    let mut command = Command::new("node");
    command
        .arg(simulator())
        .args([
            "--api",
            &app.base_url,
            "--mock",
            &app.settings.wechat.base_url,
        ])
        .args(args);
    tokio::task::spawn_blocking(move || command.output().expect("node must run"))
        .await
        .unwrap()
}

/// The JSON line `--json` prints last.
fn result(output: &Output) -> Value {
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "the simulator failed: {}\n{stdout}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_str(stdout.lines().last().unwrap_or("")).unwrap()
}

async fn booth(app: &TestApp) -> (Session, i64, String) {
    let admin = app.tenant_admin("星河").await;
    let group = app.create_group(&admin, "来源渠道", false).await;
    let tag = app.create_tag(&admin, group, "车展").await;
    app.post(
        "/api/v1/custom-fields",
        Some(&admin.access),
        &json!({"key": "budget", "label": "预算", "field_type": "number"}),
    )
    .await
    .expect(201);
    let channel = app
        .post(
            "/api/v1/channels",
            Some(&admin.access),
            &json!({
                "name": "2026 上海车展展台", "scene": "expo2026", "default_tag_ids": [tag],
                "owner_policy": {"type": "fixed", "staff_id": admin.id},
                "form": [{"key": "phone", "required": true}, {"key": "company"},
                         {"key": "custom_fields.budget", "required": true}],
                "privacy_policy_version": "2026-10",
            }),
        )
        .await
        .expect(201);
    let scene = channel.body["qr_scene"].as_str().unwrap().to_owned();
    (admin, tag, scene)
}

#[tokio::test]
async fn the_simulator_scans_logs_in_fills_the_form_and_shows_the_assigned_tags() {
    let app = spawn_app().await;
    let (admin, tag, scene) = booth(&app).await;

    let first = simulate(
        &app,
        &[
            "--scene",
            &scene,
            "--openid",
            "o-sim-li",
            "--phone-code",
            "--repeat",
            "2",
            "--json",
        ],
    )
    .await;
    let first = result(&first);
    assert_eq!(first["outcome"], "created");
    assert_eq!(first["owner"]["id"], admin.id);
    assert_eq!(first["replayed"], json!([false, true]));
    assert_eq!(first["tags"][0]["tag_id"], tag);
    assert_eq!(first["tags"][0]["source"], "channel");
    assert_eq!(first["tags"][0]["group_name"], "来源渠道");

    // What the simulator says happened did happen: one customer, with the verified phone,
    // the budget the form asked for, and the channel's tag.
    let id = first["customer_id"].as_i64().unwrap();
    let customer = app.customer(&admin, id).await;
    assert!(customer["phone"].as_str().unwrap().starts_with('1'));
    assert_eq!(customer["custom_fields"]["budget"], 1000);
    assert_eq!(app.customer_tag_ids(&admin, id).await, [tag]);

    let again = simulate(&app, &["--scene", &scene, "--openid", "o-sim-li", "--json"]).await;
    let again = result(&again);
    assert_eq!(again["outcome"], "merged");
    assert_eq!(again["matched_by"], "openid");
    assert_eq!(again["customer_id"], id);
    let total = app.search(&admin, &json!({})).await.expect(200).body["total"].clone();
    assert_eq!(total, 1);
}

#[tokio::test]
async fn the_simulator_reports_the_servers_problem_and_fails() {
    let app = spawn_app().await;
    let (_, _, scene) = booth(&app).await;
    let unknown = simulate(&app, &["--scene", "999.nope"]).await;
    assert_eq!(unknown.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&unknown.stderr).contains("404"));

    let bad_phone = simulate(&app, &["--scene", &scene, "--phone", "12345"]).await;
    assert_eq!(bad_phone.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&bad_phone.stderr);
    assert!(stderr.contains("422 validation_failed"), "{stderr}");
    assert!(stderr.contains("phone: phone"), "{stderr}");
}

#[tokio::test]
async fn the_simulator_prints_the_tags_the_rules_gave() {
    let app = spawn_app().await;
    let (admin, _, scene) = booth(&app).await;
    let group = app.create_group(&admin, "生命周期", false).await;
    let fresh = app.create_tag(&admin, group, "新录入").await;
    app.post(
        "/api/v1/rules",
        Some(&admin.access),
        &json!({"name": "新录入", "condition": {"field": "source_channel_id", "op": "is_set"},
                "actions": [{"type": "add_tag", "tag_id": fresh}]}),
    )
    .await
    .expect(201);
    let json_run = simulate(
        &app,
        &["--scene", &scene, "--openid", "o-sim-rule", "--json"],
    )
    .await;
    let answer = result(&json_run);
    assert_eq!(answer["rule_changes"][0]["tag_id"], fresh);
    assert_eq!(answer["rule_changes"][0]["rule_name"], "新录入");
    let human = simulate(&app, &["--scene", &scene, "--openid", "o-sim-rule-2"]).await;
    assert!(human.status.success());
    let human = String::from_utf8_lossy(&human.stdout);
    assert!(human.contains("rule tags    1"), "{human}");
    assert!(
        human.contains("+ 生命周期 / 新录入  rule \"新录入\" v1"),
        "{human}"
    );
}
