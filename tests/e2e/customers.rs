//! Customers: create, read, update, soft delete, phone numbers and field validation.

use scantag_e2e::{assert_no_mismatches, spawn_app, without_times};
use serde_json::json;

#[tokio::test]
async fn a_customer_is_created_read_updated_and_soft_deleted() {
    let app = spawn_app().await;
    let admin = app.tenant_admin("Acme").await;
    let group = app.create_group(&admin, "行业", false).await;
    let tag = app.create_tag(&admin, group, "制造业").await;

    let created = app
        .create_customer(
            &admin,
            &json!({
                "name": "张三", "phone": "13800138000", "company": "星河科技",
                "industry": "制造", "region": "上海", "owner_id": admin.id,
                "project_stage": "lead", "tag_ids": [tag]
            }),
        )
        .await;
    let id = created["id"].as_i64().unwrap();
    assert_eq!(created["name"], "张三");
    assert_eq!(created["phone"], "13800138000");
    assert_eq!(created["company"], "星河科技");
    assert_eq!(created["industry"], "制造");
    assert_eq!(created["region"], "上海");
    assert_eq!(created["owner_id"], admin.id);
    assert_eq!(created["project_stage"], "lead");
    assert!(created["source_channel_id"].is_null());
    assert_eq!(created["custom_fields"], json!({}));
    assert!(created["created_at"].is_string());
    assert!(created["updated_at"].is_string());
    for key in ["last_active_at", "last_follow_up_at", "last_order_at"] {
        assert!(created[key].is_null(), "{key}");
    }
    let tags = created["tags"].as_array().unwrap();
    assert_eq!(tags.len(), 1);
    assert_eq!(tags[0]["tag_id"], tag);
    assert_eq!(tags[0]["name"], "制造业");
    assert_eq!(tags[0]["color"], "#1677FF");
    assert_eq!(tags[0]["group_id"], group);
    assert_eq!(tags[0]["group_name"], "行业");
    assert!(tags[0]["assigned_at"].is_string());
    let source = tags[0]["source"].as_str().unwrap();
    assert!(
        ["manual", "api", "channel", "rule", "import"].contains(&source),
        "{source}"
    );

    let path = format!("/api/v1/customers/{id}");
    let read = app.customer(&admin, id).await;
    assert_eq!(without_times(&read), without_times(&created));

    let updated = app
        .patch(
            &path,
            Some(&admin.access),
            &json!({"company": "新星河", "phone": null, "project_stage": "proposal"}),
        )
        .await
        .expect(200)
        .body;
    assert_eq!(updated["company"], "新星河");
    assert!(updated["phone"].is_null());
    assert_eq!(updated["project_stage"], "proposal");
    assert_eq!(updated["name"], "张三", "fields not given are kept");
    assert_eq!(updated["region"], "上海");
    assert_eq!(updated["tags"].as_array().unwrap().len(), 1);
    assert_eq!(
        without_times(&app.customer(&admin, id).await),
        without_times(&updated)
    );

    let deleted = app.delete(&path, Some(&admin.access)).await;
    assert_eq!(deleted.status.as_u16(), 204);
    assert_eq!(
        app.get(&path, Some(&admin.access)).await.expect(404).code(),
        "not_found"
    );
    app.patch(&path, Some(&admin.access), &json!({"name": "李四"}))
        .await
        .expect(404);
    app.delete(&path, Some(&admin.access)).await.expect(404);
    let search = app.search(&admin, &json!({})).await.expect(200);
    assert_eq!(search.body["total"], 0);
    assert!(search.item_ids().is_empty());
}

#[tokio::test]
async fn a_phone_number_is_normalised_and_bad_ones_are_refused() {
    let app = spawn_app().await;
    let admin = app.tenant_admin("Acme").await;

    let created = app
        .create_customer(
            &admin,
            &json!({"name": "张三", "phone": "+86 138-0013-8000"}),
        )
        .await;
    assert_eq!(created["phone"], "13800138000");

    for phone in [
        "12345",
        "12800138000",
        "1380013800",
        "138001380000",
        "23800138000",
        "1380013800a",
        "+1 138-0013-8001",
    ] {
        app.post(
            "/api/v1/customers",
            Some(&admin.access),
            &json!({"name": "李四", "phone": phone}),
        )
        .await
        .expect_field_error("phone", Some("phone"));
    }
    let id = created["id"].as_i64().unwrap();
    app.patch(
        &format!("/api/v1/customers/{id}"),
        Some(&admin.access),
        &json!({"phone": "110"}),
    )
    .await
    .expect_field_error("phone", Some("phone"));
    assert_eq!(app.customer(&admin, id).await["phone"], "13800138000");
    let all = app.search(&admin, &json!({})).await.expect(200);
    assert_eq!(all.item_ids(), vec![id], "no refused customer was written");
}

#[tokio::test]
async fn a_phone_number_is_unique_among_live_customers_and_freed_by_deletion() {
    let app = spawn_app().await;
    let admin = app.tenant_admin("Acme").await;
    let first = app
        .create_customer(&admin, &json!({"name": "张三", "phone": "13800138000"}))
        .await["id"]
        .as_i64()
        .unwrap();

    for phone in ["13800138000", "+86 138 0013 8000"] {
        let taken = app
            .post(
                "/api/v1/customers",
                Some(&admin.access),
                &json!({"name": "李四", "phone": phone}),
            )
            .await
            .expect(409);
        assert_eq!(taken.code(), "phone_taken");
        let detail = taken.body["detail"].as_str().unwrap();
        assert!(
            detail.contains(&first.to_string()),
            "the detail names the customer: {detail}"
        );
    }
    let second = app
        .create_customer(&admin, &json!({"name": "李四", "phone": "13900139000"}))
        .await["id"]
        .as_i64()
        .unwrap();
    // A customer's own number is not taken from itself.
    app.patch(
        &format!("/api/v1/customers/{first}"),
        Some(&admin.access),
        &json!({"phone": "+86 138-0013-8000", "company": "星河"}),
    )
    .await
    .expect(200);
    let moved = app
        .patch(
            &format!("/api/v1/customers/{second}"),
            Some(&admin.access),
            &json!({"phone": "138-0013-8000"}),
        )
        .await
        .expect(409);
    assert_eq!(moved.code(), "phone_taken");
    assert_eq!(app.customer(&admin, second).await["phone"], "13900139000");

    // Another tenant's customers do not count.
    let globex = app.tenant_admin("Globex").await;
    app.create_customer(&globex, &json!({"name": "王五", "phone": "13800138000"}))
        .await;

    // Clearing the number on the second customer frees it; deleting the first frees its own.
    app.patch(
        &format!("/api/v1/customers/{second}"),
        Some(&admin.access),
        &json!({"phone": null}),
    )
    .await
    .expect(200);
    app.create_customer(&admin, &json!({"name": "赵六", "phone": "13900139000"}))
        .await;
    app.delete(&format!("/api/v1/customers/{first}"), Some(&admin.access))
        .await
        .expect(204);
    let reused = app
        .create_customer(&admin, &json!({"name": "孙七", "phone": "+86 13800138000"}))
        .await;
    assert_eq!(reused["phone"], "13800138000");
    app.patch(
        &format!("/api/v1/customers/{second}"),
        Some(&admin.access),
        &json!({"phone": "13800138000"}),
    )
    .await
    .expect(409);
}

#[tokio::test]
async fn customers_with_bad_fields_are_refused_and_nothing_is_created() {
    let app = spawn_app().await;
    let admin = app.tenant_admin("Acme").await;
    let too_many_tags: Vec<i64> = (1..=51).collect();
    let cases = [
        (json!({}), "name"),
        (json!({"name": ""}), "name"),
        (json!({"name": "客".repeat(65)}), "name"),
        (json!({"name": 42}), "name"),
        (
            json!({"name": "客户", "phone": 13_800_138_000_i64}),
            "phone",
        ),
        (
            json!({"name": "客户", "company": "c".repeat(101)}),
            "company",
        ),
        (
            json!({"name": "客户", "industry": "i".repeat(65)}),
            "industry",
        ),
        (json!({"name": "客户", "region": "r".repeat(65)}), "region"),
        (
            json!({"name": "客户", "project_stage": "p".repeat(33)}),
            "project_stage",
        ),
        (json!({"name": "客户", "owner_id": 999_999}), "owner_id"),
        (json!({"name": "客户", "owner_id": "me"}), "owner_id"),
        (json!({"name": "客户", "tag_ids": too_many_tags}), "tag_ids"),
        (json!({"name": "客户", "tag_ids": "1,2"}), "tag_ids"),
        (
            json!({"name": "客户", "custom_fields": []}),
            "custom_fields",
        ),
        (json!({"name": "客户", "nickname": "x"}), "nickname"),
    ];
    let mut mismatches = Vec::new();
    for (body, field) in cases {
        let answer = app
            .post("/api/v1/customers", Some(&admin.access), &body)
            .await;
        if let Some(m) = answer.field_error_mismatch(field, None, true) {
            mismatches.push(format!("{body}: {m}"));
        }
    }
    assert_no_mismatches(&mismatches);
    // An unknown tag refuses the whole customer.
    let unknown_tag = app
        .post(
            "/api/v1/customers",
            Some(&admin.access),
            &json!({"name": "客户", "tag_ids": [999_999]}),
        )
        .await
        .expect(422);
    assert!(
        unknown_tag
            .error_fields()
            .iter()
            .any(|f| f.starts_with("tag_ids")),
        "{}",
        unknown_tag.text
    );
    let search = app.search(&admin, &json!({})).await.expect(200);
    assert_eq!(search.body["total"], 0, "nothing was written");

    // The limits are in characters, not bytes.
    app.create_customer(
        &admin,
        &json!({"name": "客".repeat(64), "company": "司".repeat(100), "industry": "业".repeat(64),
                "region": "区".repeat(64), "project_stage": "阶".repeat(32)}),
    )
    .await;
}

#[tokio::test]
async fn customer_updates_with_bad_fields_change_nothing() {
    let app = spawn_app().await;
    let admin = app.tenant_admin("Acme").await;
    let id = app
        .create_customer(
            &admin,
            &json!({"name": "张三", "phone": "13800138000", "company": "星河"}),
        )
        .await["id"]
        .as_i64()
        .unwrap();
    let path = format!("/api/v1/customers/{id}");
    let before = app.customer(&admin, id).await;
    let cases = [
        (json!({"name": ""}), "name"),
        (json!({"name": "x".repeat(65)}), "name"),
        (json!({"phone": "abc"}), "phone"),
        (json!({"company": "c".repeat(101)}), "company"),
        (json!({"region": 5}), "region"),
        (json!({"owner_id": 999_999}), "owner_id"),
        (
            json!({"custom_fields": {"nokey": 1}}),
            "custom_fields.nokey",
        ),
        (json!({"tags": []}), "tags"),
    ];
    let mut mismatches = Vec::new();
    for (body, field) in cases {
        let answer = app.patch(&path, Some(&admin.access), &body).await;
        if let Some(m) = answer.field_error_mismatch(field, None, true) {
            mismatches.push(format!("{body}: {m}"));
        }
    }
    assert_no_mismatches(&mismatches);
    // A valid change together with an invalid one is not half applied.
    app.patch(
        &path,
        Some(&admin.access),
        &json!({"company": "新公司", "phone": "123"}),
    )
    .await
    .expect(422);
    app.patch(
        "/api/v1/customers/999999",
        Some(&admin.access),
        &json!({"name": "无"}),
    )
    .await
    .expect(404);
    app.get("/api/v1/customers/abc", Some(&admin.access))
        .await
        .expect(404);
    assert_eq!(app.customer(&admin, id).await, before);
}
