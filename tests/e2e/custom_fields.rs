//! Custom field definitions and the values customers carry for them.

use scantag_e2e::{Session, TestApp, assert_no_mismatches, spawn_app};
use serde_json::{Value, json};

const FIELDS: &str = "/api/v1/custom-fields";

/// Defines one field of every type: `city` (text), `budget` (number), `signed_on` (date),
/// `level` (single select of gold/silver), `interests` (multi select of golf/tea/wine).
async fn define_every_type(app: &TestApp, admin: &Session) {
    for body in [
        json!({"key": "city", "label": "城市", "field_type": "text"}),
        json!({"key": "budget", "label": "预算", "field_type": "number"}),
        json!({"key": "signed_on", "label": "签约日", "field_type": "date"}),
        json!({"key": "level", "label": "等级", "field_type": "single_select", "options": ["gold", "silver"]}),
        json!({"key": "interests", "label": "兴趣", "field_type": "multi_select", "options": ["golf", "tea", "wine"]}),
    ] {
        app.post(FIELDS, Some(&admin.access), &body)
            .await
            .expect(201);
    }
}

fn sorted_strings(value: &Value) -> Vec<String> {
    let mut items: Vec<String> = value
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_owned())
        .collect();
    items.sort();
    items
}

#[tokio::test]
async fn custom_fields_of_every_type_are_defined_and_listed() {
    let app = spawn_app().await;
    let admin = app.tenant_admin("Acme").await;
    let created = app
        .post(
            FIELDS,
            Some(&admin.access),
            &json!({"key": "level", "label": "等级", "field_type": "single_select",
                    "options": ["gold", "silver"], "required": false}),
        )
        .await
        .expect(201)
        .body;
    assert!(created["id"].is_i64());
    assert_eq!(created["key"], "level");
    assert_eq!(created["label"], "等级");
    assert_eq!(created["field_type"], "single_select");
    assert_eq!(created["options"], json!(["gold", "silver"]));
    assert_eq!(created["required"], false);
    assert!(created["created_at"].is_string());
    for body in [
        json!({"key": "city", "label": "城市", "field_type": "text", "required": true}),
        json!({"key": "budget", "label": "预算", "field_type": "number"}),
        json!({"key": "signed_on", "label": "签约日", "field_type": "date"}),
        json!({"key": "interests", "label": "兴趣", "field_type": "multi_select", "options": ["golf", "tea"]}),
        json!({"key": format!("a{}", "b".repeat(31)), "label": "标".repeat(32), "field_type": "text"}),
    ] {
        let answer = app
            .post(FIELDS, Some(&admin.access), &body)
            .await
            .expect(201);
        assert_eq!(answer.body["key"], body["key"]);
        assert_eq!(answer.body["field_type"], body["field_type"]);
        assert_eq!(
            answer.body["required"],
            body["required"].as_bool().unwrap_or(false)
        );
    }

    let sales = app.invite_staff(&admin, "o-sales", "sales").await;
    let list = app.get(FIELDS, Some(&sales.access)).await.expect(200);
    let mut keys: Vec<String> = list.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["key"].as_str().unwrap().to_owned())
        .collect();
    keys.sort();
    let mut expected = vec![
        "budget".to_owned(),
        "city".to_owned(),
        "interests".to_owned(),
        "level".to_owned(),
        "signed_on".to_owned(),
        format!("a{}", "b".repeat(31)),
    ];
    expected.sort();
    assert_eq!(keys, expected);
}

#[tokio::test]
async fn custom_field_definitions_with_bad_fields_are_refused() {
    let app = spawn_app().await;
    let admin = app.tenant_admin("Acme").await;
    let cases = [
        (json!({"label": "L", "field_type": "text"}), "key"),
        (
            json!({"key": "", "label": "L", "field_type": "text"}),
            "key",
        ),
        (
            json!({"key": "Bad", "label": "L", "field_type": "text"}),
            "key",
        ),
        (
            json!({"key": "1abc", "label": "L", "field_type": "text"}),
            "key",
        ),
        (
            json!({"key": "a-b", "label": "L", "field_type": "text"}),
            "key",
        ),
        (
            json!({"key": "_ab", "label": "L", "field_type": "text"}),
            "key",
        ),
        (
            json!({"key": format!("a{}", "b".repeat(32)), "label": "L", "field_type": "text"}),
            "key",
        ),
        (json!({"key": "k", "field_type": "text"}), "label"),
        (
            json!({"key": "k", "label": "", "field_type": "text"}),
            "label",
        ),
        (
            json!({"key": "k", "label": "标".repeat(33), "field_type": "text"}),
            "label",
        ),
        (json!({"key": "k", "label": "L"}), "field_type"),
        (
            json!({"key": "k", "label": "L", "field_type": "bool"}),
            "field_type",
        ),
        (
            json!({"key": "k", "label": "L", "field_type": "text", "options": ["a"]}),
            "options",
        ),
        (
            json!({"key": "k", "label": "L", "field_type": "number", "options": ["a"]}),
            "options",
        ),
        (
            json!({"key": "k", "label": "L", "field_type": "single_select"}),
            "options",
        ),
        (
            json!({"key": "k", "label": "L", "field_type": "single_select", "options": []}),
            "options",
        ),
        (
            json!({"key": "k", "label": "L", "field_type": "text", "required": "yes"}),
            "required",
        ),
        (
            json!({"key": "k", "label": "L", "field_type": "text", "default": "x"}),
            "default",
        ),
    ];
    let mut mismatches = Vec::new();
    for (body, field) in cases {
        let answer = app.post(FIELDS, Some(&admin.access), &body).await;
        if let Some(m) = answer.field_error_mismatch(field, None, true) {
            mismatches.push(format!("{body}: {m}"));
        }
    }
    assert_no_mismatches(&mismatches);
    // Duplicate options: the error may point at the list or at the repeated entry.
    let duplicate = app
        .post(
            FIELDS,
            Some(&admin.access),
            &json!({"key": "k", "label": "L", "field_type": "multi_select", "options": ["a", "b", "a"]}),
        )
        .await
        .expect(422);
    let fields = duplicate.error_fields();
    assert!(
        !fields.is_empty() && fields.iter().all(|f| f.starts_with("options")),
        "{}",
        duplicate.text
    );
    let list = app.get(FIELDS, Some(&admin.access)).await.expect(200);
    assert!(list.item_ids().is_empty(), "nothing was written");

    app.post(
        FIELDS,
        Some(&admin.access),
        &json!({"key": "city", "label": "城市", "field_type": "text"}),
    )
    .await
    .expect(201);
    let taken = app
        .post(
            FIELDS,
            Some(&admin.access),
            &json!({"key": "city", "label": "所在城市", "field_type": "single_select", "options": ["上海"]}),
        )
        .await
        .expect(409);
    assert_eq!(taken.code(), "custom_field_key_taken");
    let list = app.get(FIELDS, Some(&admin.access)).await.expect(200);
    assert_eq!(list.item_ids().len(), 1);
    assert_eq!(list.body["items"][0]["label"], "城市");
}

#[tokio::test]
async fn only_admins_define_custom_fields() {
    let app = spawn_app().await;
    let admin = app.tenant_admin("Acme").await;
    let manager = app.invite_staff(&admin, "o-manager", "manager").await;
    let sales = app.invite_staff(&admin, "o-sales", "sales").await;
    for who in [&manager, &sales] {
        let answer = app
            .post(
                FIELDS,
                Some(&who.access),
                &json!({"key": "city", "label": "城市", "field_type": "text"}),
            )
            .await
            .expect(403);
        assert_eq!(answer.code(), "insufficient_role");
        app.get(FIELDS, Some(&who.access)).await.expect(200);
    }
    let list = app.get(FIELDS, Some(&admin.access)).await.expect(200);
    assert!(list.item_ids().is_empty());
}

#[tokio::test]
async fn custom_field_values_are_validated_by_type_and_kept_with_their_type() {
    let app = spawn_app().await;
    let admin = app.tenant_admin("Acme").await;
    define_every_type(&app, &admin).await;

    let cases = [
        ("city", json!("x".repeat(201))),
        ("city", json!(5)),
        ("budget", json!("12")),
        ("budget", json!(true)),
        ("signed_on", json!("2024-13-01")),
        ("signed_on", json!("2024/01/02")),
        ("signed_on", json!("20240102")),
        ("signed_on", json!("2023-02-29")),
        ("signed_on", json!("2024-01-02T00:00:00Z")),
        ("signed_on", json!(20_240_102)),
        ("level", json!("bronze")),
        ("level", json!("Gold")),
        ("level", json!(["gold"])),
        ("level", json!(1)),
        ("interests", json!("tea")),
        ("interests", json!(["tea", "beer"])),
        ("interests", json!([1])),
    ];
    let mut mismatches = Vec::new();
    for (key, value) in cases {
        let body = json!({"name": "客户", "custom_fields": {key: value}});
        let field = format!("custom_fields.{key}");
        let answer = app
            .post("/api/v1/customers", Some(&admin.access), &body)
            .await;
        if let Some(m) = answer.field_error_mismatch(&field, None, true) {
            mismatches.push(format!("{body}: {m}"));
        }
    }
    assert_no_mismatches(&mismatches);
    let unknown = app
        .post(
            "/api/v1/customers",
            Some(&admin.access),
            &json!({"name": "客户", "custom_fields": {"city": "上海", "nokey": "x"}}),
        )
        .await
        .expect_field_error("custom_fields.nokey", Some("unknown_field"));
    assert_eq!(
        unknown.error_fields(),
        vec!["custom_fields.nokey".to_owned()]
    );
    let search = app.search(&admin, &json!({})).await.expect(200);
    assert_eq!(search.body["total"], 0, "nothing was written");

    let city = "城".repeat(200);
    let created = app
        .create_customer(
            &admin,
            &json!({"name": "客户", "custom_fields": {
                "city": city, "budget": 12.5, "signed_on": "2024-02-29",
                "level": "gold", "interests": ["golf", "tea"]
            }}),
        )
        .await;
    let id = created["id"].as_i64().unwrap();
    for fields in [
        created["custom_fields"].clone(),
        app.customer(&admin, id).await["custom_fields"].clone(),
    ] {
        assert_eq!(fields["city"], json!(city));
        assert_eq!(fields["budget"].as_f64(), Some(12.5), "{fields}");
        assert_eq!(fields["signed_on"], "2024-02-29");
        assert_eq!(fields["level"], "gold");
        assert_eq!(sorted_strings(&fields["interests"]), vec!["golf", "tea"]);
    }
}

#[tokio::test]
async fn a_required_custom_field_must_be_given_on_create() {
    let app = spawn_app().await;
    let admin = app.tenant_admin("Acme").await;
    app.post(
        FIELDS,
        Some(&admin.access),
        &json!({"key": "contract_no", "label": "合同号", "field_type": "text", "required": true}),
    )
    .await
    .expect(201);
    for body in [
        json!({"name": "客户"}),
        json!({"name": "客户", "custom_fields": {}}),
    ] {
        app.post("/api/v1/customers", Some(&admin.access), &body)
            .await
            .expect_field_error("custom_fields.contract_no", Some("required"));
    }
    let search = app.search(&admin, &json!({})).await.expect(200);
    assert_eq!(search.body["total"], 0);

    let created = app
        .create_customer(
            &admin,
            &json!({"name": "客户", "custom_fields": {"contract_no": "HT-001"}}),
        )
        .await;
    assert_eq!(created["custom_fields"]["contract_no"], "HT-001");
    let id = created["id"].as_i64().unwrap();
    let updated = app
        .patch(
            &format!("/api/v1/customers/{id}"),
            Some(&admin.access),
            &json!({"company": "星河"}),
        )
        .await
        .expect(200);
    assert_eq!(updated.body["custom_fields"]["contract_no"], "HT-001");
}

#[tokio::test]
async fn custom_field_updates_are_merged_and_null_removes_a_value() {
    let app = spawn_app().await;
    let admin = app.tenant_admin("Acme").await;
    define_every_type(&app, &admin).await;
    let id = app
        .create_customer(
            &admin,
            &json!({"name": "客户", "custom_fields": {"city": "上海", "level": "gold", "budget": 3}}),
        )
        .await["id"]
        .as_i64()
        .unwrap();
    let path = format!("/api/v1/customers/{id}");

    let merged = app
        .patch(
            &path,
            Some(&admin.access),
            &json!({"custom_fields": {"city": "北京", "interests": ["wine"]}}),
        )
        .await
        .expect(200)
        .body;
    let fields = &merged["custom_fields"];
    assert_eq!(fields["city"], "北京");
    assert_eq!(fields["level"], "gold", "keys not given are kept");
    assert_eq!(fields["budget"].as_f64(), Some(3.0));
    assert_eq!(fields["interests"], json!(["wine"]));

    let removed = app
        .patch(
            &path,
            Some(&admin.access),
            &json!({"custom_fields": {"level": null}}),
        )
        .await
        .expect(200)
        .body;
    assert!(
        removed["custom_fields"]
            .get("level")
            .is_none_or(Value::is_null),
        "{}",
        removed["custom_fields"]
    );
    assert_eq!(removed["custom_fields"]["city"], "北京");

    // A bad value among good ones changes nothing.
    let before = app.customer(&admin, id).await;
    app.patch(
        &path,
        Some(&admin.access),
        &json!({"name": "新名字", "custom_fields": {"city": "广州", "level": "bronze"}}),
    )
    .await
    .expect_field_error("custom_fields.level", None);
    assert_eq!(app.customer(&admin, id).await, before);
}
