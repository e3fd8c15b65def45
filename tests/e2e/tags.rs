//! The tag library: tag groups (主标签) and tags (子标签), name normalisation, archiving,
//! ordering and customer counts.

use scantag_e2e::{Session, TestApp, assert_no_mismatches, spawn_app, without_times};
use serde_json::{Value, json};

async fn get_tag(app: &TestApp, session: &Session, id: i64) -> Value {
    app.get(&format!("/api/v1/tags/{id}"), Some(&session.access))
        .await
        .expect(200)
        .body
}

async fn tag_list(app: &TestApp, session: &Session, query: &str) -> Vec<i64> {
    app.get(&format!("/api/v1/tags{query}"), Some(&session.access))
        .await
        .expect(200)
        .item_ids()
}

#[tokio::test]
async fn a_tag_group_and_a_tag_are_created_with_their_defaults_and_listed_together() {
    let app = spawn_app().await;
    let admin = app.tenant_admin("Acme").await;

    let group = app
        .post(
            "/api/v1/tag-groups",
            Some(&admin.access),
            &json!({"name": "客户价值", "dimension": "value"}),
        )
        .await
        .expect(201)
        .body;
    assert_eq!(group["name"], "客户价值");
    assert_eq!(group["dimension"], "value");
    assert_eq!(group["exclusive"], false);
    assert!(group["description"].is_null());
    assert_eq!(group["sort_order"], 0);
    assert_eq!(group["archived"], false);
    assert!(group["created_at"].is_string());
    assert!(group["updated_at"].is_string());
    let group_id = group["id"].as_i64().unwrap();

    let tag = app
        .post(
            "/api/v1/tags",
            Some(&admin.access),
            &json!({"group_id": group_id, "name": "高价值"}),
        )
        .await
        .expect(201)
        .body;
    assert_eq!(tag["group_id"], group_id);
    assert_eq!(tag["group_name"], "客户价值");
    assert_eq!(tag["name"], "高价值");
    assert_eq!(tag["color"], "#1677FF");
    assert!(tag["definition"].is_null());
    assert_eq!(tag["sort_order"], 0);
    assert_eq!(tag["status"], "active");
    assert_eq!(tag["customer_count"], 0);
    assert!(tag["created_at"].is_string());
    let tag_id = tag["id"].as_i64().unwrap();
    assert_eq!(
        without_times(&get_tag(&app, &admin, tag_id).await),
        without_times(&tag)
    );

    let one = app
        .get(
            &format!("/api/v1/tag-groups/{group_id}"),
            Some(&admin.access),
        )
        .await
        .expect(200)
        .body;
    assert_eq!(one["name"], "客户价值");
    let inner: Vec<i64> = one["tags"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["id"].as_i64().unwrap())
        .collect();
    assert_eq!(inner, vec![tag_id]);

    let list = app
        .get("/api/v1/tag-groups", Some(&admin.access))
        .await
        .expect(200);
    assert_eq!(list.item_ids(), vec![group_id]);
    assert_eq!(list.body["items"][0]["tags"][0]["id"], tag_id);
    assert_eq!(list.body["items"][0]["tags"][0]["name"], "高价值");
}

#[tokio::test]
async fn every_dimension_is_accepted_and_a_group_can_be_updated() {
    let app = spawn_app().await;
    let admin = app.tenant_admin("Acme").await;
    for dimension in ["basic", "behaviour", "value", "lifecycle", "custom"] {
        let group = app
            .post(
                "/api/v1/tag-groups",
                Some(&admin.access),
                &json!({"name": format!("组-{dimension}"), "dimension": dimension,
                        "exclusive": true, "description": "说明", "sort_order": -3}),
            )
            .await
            .expect(201)
            .body;
        assert_eq!(group["dimension"], dimension);
        assert_eq!(group["exclusive"], true);
        assert_eq!(group["description"], "说明");
        assert_eq!(group["sort_order"], -3);
    }
    let id = app.create_group(&admin, "生命周期", false).await;

    let updated = app
        .patch(
            &format!("/api/v1/tag-groups/{id}"),
            Some(&admin.access),
            &json!({"name": "客户生命周期", "description": "从线索到流失", "sort_order": 7, "exclusive": true}),
        )
        .await
        .expect(200)
        .body;
    assert_eq!(updated["name"], "客户生命周期");
    assert_eq!(updated["description"], "从线索到流失");
    assert_eq!(updated["sort_order"], 7);
    assert_eq!(updated["exclusive"], true);
    assert_eq!(updated["dimension"], "custom", "unchanged");
    let again = app
        .get(&format!("/api/v1/tag-groups/{id}"), Some(&admin.access))
        .await
        .expect(200)
        .body;
    assert_eq!(again["name"], "客户生命周期");
    assert_eq!(again["sort_order"], 7);
    assert_eq!(again["exclusive"], true);
}

#[tokio::test]
async fn tag_groups_are_listed_by_sort_order_then_id() {
    let app = spawn_app().await;
    let admin = app.tenant_admin("Acme").await;
    let mut made = Vec::new();
    for (name, sort) in [("甲", 5), ("乙", 1), ("丙", 1), ("丁", -2), ("戊", 3)] {
        let id = app
            .post(
                "/api/v1/tag-groups",
                Some(&admin.access),
                &json!({"name": name, "dimension": "basic", "sort_order": sort}),
            )
            .await
            .expect(201)
            .body["id"]
            .as_i64()
            .unwrap();
        made.push((sort, id));
    }
    made.sort_unstable();
    let expected: Vec<i64> = made.iter().map(|(_, id)| *id).collect();

    let list = app
        .get("/api/v1/tag-groups", Some(&admin.access))
        .await
        .expect(200);
    assert_eq!(list.item_ids(), expected);
}

#[tokio::test]
async fn tags_are_listed_by_group_order_then_their_own_order_and_filtered_by_group() {
    let app = spawn_app().await;
    let admin = app.tenant_admin("Acme").await;
    let mut groups = Vec::new();
    for (name, sort) in [("后组", 2), ("前组", 1)] {
        let id = app
            .post(
                "/api/v1/tag-groups",
                Some(&admin.access),
                &json!({"name": name, "dimension": "basic", "sort_order": sort}),
            )
            .await
            .expect(201)
            .body["id"]
            .as_i64()
            .unwrap();
        groups.push((sort, id));
    }
    // (group sort, group id, tag sort, tag id) for every tag made.
    let mut made = Vec::new();
    for (gi, name, sort) in [
        (0, "t1", 0),
        (0, "t2", -1),
        (1, "t3", 5),
        (1, "t4", 5),
        (0, "t5", 0),
        (1, "t6", 1),
    ] {
        let (gsort, gid) = groups[gi];
        let id = app
            .post(
                "/api/v1/tags",
                Some(&admin.access),
                &json!({"group_id": gid, "name": name, "sort_order": sort}),
            )
            .await
            .expect(201)
            .body["id"]
            .as_i64()
            .unwrap();
        made.push((gsort, gid, sort, id));
    }
    made.sort_unstable();
    let expected: Vec<i64> = made.iter().map(|m| m.3).collect();
    assert_eq!(tag_list(&app, &admin, "").await, expected);

    let first_group = groups[0].1;
    let in_group: Vec<i64> = made
        .iter()
        .filter(|m| m.1 == first_group)
        .map(|m| m.3)
        .collect();
    assert_eq!(
        tag_list(&app, &admin, &format!("?group_id={first_group}")).await,
        in_group
    );
}

#[tokio::test]
async fn a_tag_name_differing_only_in_width_case_or_spacing_is_taken() {
    let app = spawn_app().await;
    let admin = app.tenant_admin("Acme").await;
    let group = app.create_group(&admin, "会员", false).await;
    let other_group = app.create_group(&admin, "活动", false).await;
    let existing = app.create_tag(&admin, group, "vip 客户").await;

    for (group_id, name) in [
        (group, "ＶＩＰ  客户"),
        (group, "  VIP\u{3000}客户 "),
        (other_group, "Vip 客户"),
    ] {
        let answer = app
            .post(
                "/api/v1/tags",
                Some(&admin.access),
                &json!({"group_id": group_id, "name": name}),
            )
            .await
            .expect(409);
        assert_eq!(answer.code(), "tag_name_taken", "{name}");
        let detail = answer.body["detail"].as_str().unwrap();
        assert!(
            detail.contains("vip 客户") && detail.contains(&existing.to_string()),
            "the detail names the existing tag and its id: {detail}"
        );
    }

    // Spacing is collapsed, not removed: this one is a different name.
    let distinct = app.create_tag(&admin, group, "VIP客户").await;
    let renamed = app
        .patch(
            &format!("/api/v1/tags/{distinct}"),
            Some(&admin.access),
            &json!({"name": "ｖｉｐ 客户"}),
        )
        .await
        .expect(409);
    assert_eq!(renamed.code(), "tag_name_taken");
    assert_eq!(get_tag(&app, &admin, distinct).await["name"], "VIP客户");

    let all = tag_list(&app, &admin, "?status=all").await;
    assert_eq!(all.len(), 2, "no near-duplicate was written");

    // Groups and tags are separate name spaces, and another tenant has its own.
    app.create_group(&admin, "VIP 客户", false).await;
    let globex = app.tenant_admin("Globex").await;
    let their_group = app.create_group(&globex, "会员", false).await;
    app.create_tag(&globex, their_group, "ＶＩＰ  客户").await;
}

#[tokio::test]
async fn a_group_name_differing_only_in_width_case_or_spacing_is_taken() {
    let app = spawn_app().await;
    let admin = app.tenant_admin("Acme").await;
    let existing = app.create_group(&admin, "VIP Level", false).await;

    for name in ["ｖｉｐ\u{3000}ｌｅｖｅｌ", " vip   LEVEL ", "ＶＩＰ Level"] {
        let answer = app
            .post(
                "/api/v1/tag-groups",
                Some(&admin.access),
                &json!({"name": name, "dimension": "basic"}),
            )
            .await
            .expect(409);
        assert_eq!(answer.code(), "tag_group_name_taken", "{name}");
        let detail = answer.body["detail"].as_str().unwrap();
        assert!(
            detail.contains("VIP Level") && detail.contains(&existing.to_string()),
            "the detail names the existing group and its id: {detail}"
        );
    }
    let other = app.create_group(&admin, "VIPLevel", false).await;
    let renamed = app
        .patch(
            &format!("/api/v1/tag-groups/{other}"),
            Some(&admin.access),
            &json!({"name": "vip level"}),
        )
        .await
        .expect(409);
    assert_eq!(renamed.code(), "tag_group_name_taken");
    let list = app
        .get(
            "/api/v1/tag-groups?include_archived=true",
            Some(&admin.access),
        )
        .await
        .expect(200);
    assert_eq!(list.item_ids().len(), 2, "no near-duplicate was written");
}

#[tokio::test]
async fn a_tag_cannot_be_created_in_an_unknown_or_archived_group() {
    let app = spawn_app().await;
    let admin = app.tenant_admin("Acme").await;
    let group = app.create_group(&admin, "旧分组", false).await;
    app.patch(
        &format!("/api/v1/tag-groups/{group}"),
        Some(&admin.access),
        &json!({"archived": true}),
    )
    .await
    .expect(200);

    for group_id in [group, 999_999] {
        app.post(
            "/api/v1/tags",
            Some(&admin.access),
            &json!({"group_id": group_id, "name": "新标签"}),
        )
        .await
        .expect_field_error("group_id", None);
    }
    assert!(tag_list(&app, &admin, "?status=all").await.is_empty());
}

#[tokio::test]
async fn renaming_and_recolouring_a_tag_shows_on_the_customers_carrying_it() {
    let app = spawn_app().await;
    let admin = app.tenant_admin("Acme").await;
    let group = app.create_group(&admin, "兴趣", false).await;
    let tag = app.create_tag(&admin, group, "高尔夫").await;
    let customer = app.create_tagged_customer(&admin, "张三", &[tag]).await;

    let updated = app
        .patch(
            &format!("/api/v1/tags/{tag}"),
            Some(&admin.access),
            &json!({"name": "高尔夫球", "color": "#FF4D4F", "definition": "打球的客户", "sort_order": 2}),
        )
        .await
        .expect(200)
        .body;
    assert_eq!(updated["name"], "高尔夫球");
    assert_eq!(updated["color"], "#FF4D4F");
    assert_eq!(updated["definition"], "打球的客户");
    assert_eq!(updated["sort_order"], 2);

    let seen = app.customer(&admin, customer).await;
    let on_customer = &seen["tags"][0];
    assert_eq!(on_customer["tag_id"], tag);
    assert_eq!(on_customer["name"], "高尔夫球");
    assert_eq!(on_customer["color"], "#FF4D4F");
    assert_eq!(on_customer["group_id"], group);
    assert_eq!(on_customer["group_name"], "兴趣");
}

#[tokio::test]
async fn archived_tags_are_hidden_from_the_library_unless_asked_for() {
    let app = spawn_app().await;
    let admin = app.tenant_admin("Acme").await;
    let group = app.create_group(&admin, "渠道", false).await;
    let kept = app.create_tag(&admin, group, "线上").await;
    let archived = app.create_tag(&admin, group, "展会").await;
    let answer = app
        .patch(
            &format!("/api/v1/tags/{archived}"),
            Some(&admin.access),
            &json!({"status": "archived"}),
        )
        .await
        .expect(200);
    assert_eq!(answer.body["status"], "archived");

    assert_eq!(tag_list(&app, &admin, "").await, vec![kept]);
    assert_eq!(tag_list(&app, &admin, "?status=active").await, vec![kept]);
    assert_eq!(
        tag_list(&app, &admin, "?status=archived").await,
        vec![archived]
    );
    let mut all = tag_list(&app, &admin, "?status=all").await;
    all.sort_unstable();
    assert_eq!(all, vec![kept, archived]);
    assert_eq!(get_tag(&app, &admin, archived).await["status"], "archived");

    let inner = |body: &Value| -> Vec<i64> {
        let mut ids: Vec<i64> = body["items"][0]["tags"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["id"].as_i64().unwrap())
            .collect();
        ids.sort_unstable();
        ids
    };
    let plain = app
        .get("/api/v1/tag-groups", Some(&admin.access))
        .await
        .expect(200);
    assert_eq!(inner(&plain.body), vec![kept]);
    let with_archived = app
        .get(
            "/api/v1/tag-groups?include_archived=true",
            Some(&admin.access),
        )
        .await
        .expect(200);
    assert_eq!(inner(&with_archived.body), vec![kept, archived]);

    // And back again.
    app.patch(
        &format!("/api/v1/tags/{archived}"),
        Some(&admin.access),
        &json!({"status": "active"}),
    )
    .await
    .expect(200);
    assert_eq!(tag_list(&app, &admin, "").await.len(), 2);
}

#[tokio::test]
async fn an_archived_group_is_listed_only_when_asked_for() {
    let app = spawn_app().await;
    let admin = app.tenant_admin("Acme").await;
    let group = app.create_group(&admin, "旧分组", false).await;
    let updated = app
        .patch(
            &format!("/api/v1/tag-groups/{group}"),
            Some(&admin.access),
            &json!({"archived": true}),
        )
        .await
        .expect(200);
    assert_eq!(updated.body["archived"], true);
    let with_archived = app
        .get(
            "/api/v1/tag-groups?include_archived=true",
            Some(&admin.access),
        )
        .await
        .expect(200);
    assert_eq!(with_archived.item_ids(), vec![group]);
    assert_eq!(with_archived.body["items"][0]["archived"], true);
}

#[tokio::test]
async fn customer_count_counts_the_live_customers_carrying_the_tag() {
    let app = spawn_app().await;
    let admin = app.tenant_admin("Acme").await;
    let group = app.create_group(&admin, "兴趣", false).await;
    let tag = app.create_tag(&admin, group, "茶").await;
    let other = app.create_tag(&admin, group, "酒").await;
    let a = app.create_tagged_customer(&admin, "甲", &[tag]).await;
    let b = app.create_tagged_customer(&admin, "乙", &[]).await;
    let c = app
        .create_tagged_customer(&admin, "丙", &[tag, other])
        .await;
    app.post(
        &format!("/api/v1/customers/{b}/tags"),
        Some(&admin.access),
        &json!({"tag_id": tag}),
    )
    .await
    .expect(200);
    assert_eq!(get_tag(&app, &admin, tag).await["customer_count"], 3);
    assert_eq!(get_tag(&app, &admin, other).await["customer_count"], 1);

    app.delete(&format!("/api/v1/customers/{c}"), Some(&admin.access))
        .await
        .expect(204);
    assert_eq!(get_tag(&app, &admin, tag).await["customer_count"], 2);
    assert_eq!(get_tag(&app, &admin, other).await["customer_count"], 0);

    app.delete(
        &format!("/api/v1/customers/{a}/tags/{tag}"),
        Some(&admin.access),
    )
    .await
    .expect(204);
    assert_eq!(get_tag(&app, &admin, tag).await["customer_count"], 1);
    let list = app
        .get("/api/v1/tags", Some(&admin.access))
        .await
        .expect(200);
    let listed = list.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["id"] == tag)
        .unwrap()
        .clone();
    assert_eq!(listed["customer_count"], 1);
}

#[tokio::test]
async fn sales_reps_read_the_tag_library_but_only_admins_and_managers_change_it() {
    let app = spawn_app().await;
    let admin = app.tenant_admin("Acme").await;
    let manager = app.invite_staff(&admin, "o-manager", "manager").await;
    let sales = app.invite_staff(&admin, "o-sales", "sales").await;

    let group = app.create_group(&manager, "经理的分组", false).await;
    let tag = app.create_tag(&manager, group, "经理的标签").await;
    app.patch(
        &format!("/api/v1/tags/{tag}"),
        Some(&manager.access),
        &json!({"color": "#00AA11"}),
    )
    .await
    .expect(200);
    app.patch(
        &format!("/api/v1/tag-groups/{group}"),
        Some(&manager.access),
        &json!({"sort_order": 3}),
    )
    .await
    .expect(200);

    app.get("/api/v1/tag-groups", Some(&sales.access))
        .await
        .expect(200);
    assert_eq!(tag_list(&app, &sales, "").await, vec![tag]);
    get_tag(&app, &sales, tag).await;
    app.get(&format!("/api/v1/tag-groups/{group}"), Some(&sales.access))
        .await
        .expect(200);

    let refused = [
        app.post(
            "/api/v1/tag-groups",
            Some(&sales.access),
            &json!({"name": "销售的分组", "dimension": "basic"}),
        )
        .await,
        app.post(
            "/api/v1/tags",
            Some(&sales.access),
            &json!({"group_id": group, "name": "销售的标签"}),
        )
        .await,
        app.patch(
            &format!("/api/v1/tags/{tag}"),
            Some(&sales.access),
            &json!({"name": "改名"}),
        )
        .await,
        app.patch(
            &format!("/api/v1/tag-groups/{group}"),
            Some(&sales.access),
            &json!({"archived": true}),
        )
        .await,
    ];
    for answer in refused {
        assert_eq!(answer.expect(403).code(), "insufficient_role");
    }
    assert_eq!(get_tag(&app, &admin, tag).await["name"], "经理的标签");
    assert_eq!(tag_list(&app, &admin, "?status=all").await, vec![tag]);
}

#[tokio::test]
async fn tag_groups_with_bad_fields_are_refused_and_nothing_is_created() {
    let app = spawn_app().await;
    let admin = app.tenant_admin("Acme").await;
    let cases = [
        (json!({"dimension": "basic"}), "name"),
        (json!({"name": "分组"}), "dimension"),
        (json!({"name": "", "dimension": "basic"}), "name"),
        (
            json!({"name": "标".repeat(33), "dimension": "basic"}),
            "name",
        ),
        (json!({"name": 5, "dimension": "basic"}), "name"),
        (json!({"name": "分组", "dimension": "size"}), "dimension"),
        (
            json!({"name": "分组", "dimension": "basic", "exclusive": "yes"}),
            "exclusive",
        ),
        (
            json!({"name": "分组", "dimension": "basic", "description": "x".repeat(501)}),
            "description",
        ),
        (
            json!({"name": "分组", "dimension": "basic", "sort_order": "1"}),
            "sort_order",
        ),
        (
            json!({"name": "分组", "dimension": "basic", "sort_order": 1.5}),
            "sort_order",
        ),
        (
            json!({"name": "分组", "dimension": "basic", "sort_order": 4_294_967_296_i64}),
            "sort_order",
        ),
        (
            json!({"name": "分组", "dimension": "basic", "colour": "red"}),
            "colour",
        ),
    ];
    let mut mismatches = Vec::new();
    for (body, field) in cases {
        let answer = app
            .post("/api/v1/tag-groups", Some(&admin.access), &body)
            .await;
        if let Some(m) = answer.field_error_mismatch(field, None, true) {
            mismatches.push(format!("{body}: {m}"));
        }
    }
    assert_no_mismatches(&mismatches);
    let list = app
        .get(
            "/api/v1/tag-groups?include_archived=true",
            Some(&admin.access),
        )
        .await
        .expect(200);
    assert!(list.item_ids().is_empty(), "nothing was written");

    // The limits are in characters, not bytes.
    app.post(
        "/api/v1/tag-groups",
        Some(&admin.access),
        &json!({"name": "标".repeat(32), "dimension": "basic", "description": "说".repeat(500)}),
    )
    .await
    .expect(201);
}

#[tokio::test]
async fn tag_group_updates_with_bad_fields_change_nothing() {
    let app = spawn_app().await;
    let admin = app.tenant_admin("Acme").await;
    let group = app.create_group(&admin, "分组", false).await;
    let path = format!("/api/v1/tag-groups/{group}");
    let before = app.get(&path, Some(&admin.access)).await.expect(200).body;
    let cases = [
        (json!({}), "body"),
        (json!({"name": ""}), "name"),
        (json!({"name": "x".repeat(33)}), "name"),
        (json!({"archived": "x"}), "archived"),
        (json!({"exclusive": 1}), "exclusive"),
        (json!({"sort_order": "top"}), "sort_order"),
        (json!({"description": "x".repeat(501)}), "description"),
        (json!({"dimension": "value"}), "dimension"),
    ];
    let mut mismatches = Vec::new();
    for (body, field) in cases {
        let answer = app.patch(&path, Some(&admin.access), &body).await;
        if let Some(m) = answer.field_error_mismatch(field, None, true) {
            mismatches.push(format!("{body}: {m}"));
        }
    }
    assert_no_mismatches(&mismatches);
    app.patch(
        "/api/v1/tag-groups/999999",
        Some(&admin.access),
        &json!({"name": "无"}),
    )
    .await
    .expect(404);
    app.get("/api/v1/tag-groups/abc", Some(&admin.access))
        .await
        .expect(404);
    let after = app.get(&path, Some(&admin.access)).await.expect(200).body;
    assert_eq!(after, before);
}

#[tokio::test]
async fn tags_with_bad_fields_are_refused_and_nothing_is_created() {
    let app = spawn_app().await;
    let admin = app.tenant_admin("Acme").await;
    let group = app.create_group(&admin, "分组", false).await;
    let cases = [
        (json!({"name": "标签"}), "group_id"),
        (json!({"group_id": group}), "name"),
        (json!({"group_id": "1", "name": "标签"}), "group_id"),
        (json!({"group_id": group, "name": ""}), "name"),
        (json!({"group_id": group, "name": "标".repeat(33)}), "name"),
        (
            json!({"group_id": group, "name": "标签", "color": "red"}),
            "color",
        ),
        (
            json!({"group_id": group, "name": "标签", "color": "#12345"}),
            "color",
        ),
        (
            json!({"group_id": group, "name": "标签", "color": "#1234567"}),
            "color",
        ),
        (
            json!({"group_id": group, "name": "标签", "color": "#GGGGGG"}),
            "color",
        ),
        (
            json!({"group_id": group, "name": "标签", "color": "1677FF"}),
            "color",
        ),
        (
            json!({"group_id": group, "name": "标签", "definition": "x".repeat(501)}),
            "definition",
        ),
        (
            json!({"group_id": group, "name": "标签", "sort_order": "x"}),
            "sort_order",
        ),
        (
            json!({"group_id": group, "name": "标签", "weight": 3}),
            "weight",
        ),
    ];
    let mut mismatches = Vec::new();
    for (body, field) in cases {
        let answer = app.post("/api/v1/tags", Some(&admin.access), &body).await;
        if let Some(m) = answer.field_error_mismatch(field, None, true) {
            mismatches.push(format!("{body}: {m}"));
        }
    }
    assert_no_mismatches(&mismatches);
    assert!(tag_list(&app, &admin, "?status=all").await.is_empty());

    let ok = app
        .post(
            "/api/v1/tags",
            Some(&admin.access),
            &json!({"group_id": group, "name": "标".repeat(32), "color": "#00AA11",
                    "definition": "定".repeat(500)}),
        )
        .await
        .expect(201);
    assert_eq!(ok.body["color"], "#00AA11");
}

#[tokio::test]
async fn tag_updates_with_bad_fields_change_nothing() {
    let app = spawn_app().await;
    let admin = app.tenant_admin("Acme").await;
    let group = app.create_group(&admin, "分组", false).await;
    let tag = app.create_tag(&admin, group, "标签").await;
    let path = format!("/api/v1/tags/{tag}");
    let before = get_tag(&app, &admin, tag).await;
    let cases = [
        (json!({}), "body"),
        (json!({"name": ""}), "name"),
        (json!({"name": "x".repeat(33)}), "name"),
        (json!({"color": "blue"}), "color"),
        (json!({"status": "deleted"}), "status"),
        (json!({"status": 1}), "status"),
        (json!({"sort_order": "1"}), "sort_order"),
        (json!({"definition": "x".repeat(501)}), "definition"),
        (json!({"group": group}), "group"),
    ];
    let mut mismatches = Vec::new();
    for (body, field) in cases {
        let answer = app.patch(&path, Some(&admin.access), &body).await;
        if let Some(m) = answer.field_error_mismatch(field, None, true) {
            mismatches.push(format!("{body}: {m}"));
        }
    }
    assert_no_mismatches(&mismatches);
    app.patch(
        "/api/v1/tags/999999",
        Some(&admin.access),
        &json!({"name": "无"}),
    )
    .await
    .expect(404);
    app.get("/api/v1/tags/999999", Some(&admin.access))
        .await
        .expect(404);
    assert_eq!(get_tag(&app, &admin, tag).await, before);
}

#[tokio::test]
async fn bad_tag_and_group_list_queries_are_client_errors() {
    let app = spawn_app().await;
    let admin = app.tenant_admin("Acme").await;
    for (path, query) in [
        ("/api/v1/tags", "?status=deleted"),
        ("/api/v1/tags", "?group_id=abc"),
        ("/api/v1/tag-groups", "?include_archived=maybe"),
    ] {
        let answer = app
            .get(&format!("{path}{query}"), Some(&admin.access))
            .await;
        assert!(
            answer.status.is_client_error(),
            "{query}: {} {}",
            answer.status,
            answer.text
        );
        if answer.status.as_u16() == 422 {
            let field = query[1..].split('=').next().unwrap();
            assert_eq!(answer.error_fields(), vec![field.to_owned()], "{query}");
        }
    }
}

#[tokio::test]
async fn names_equal_under_unicode_compatibility_folding_are_duplicates_and_others_are_not() {
    let app = spawn_app().await;
    let admin = app.tenant_admin("Acme").await;
    let group = app.create_group(&admin, "分级", false).await;
    // Names are compared under NFKC, so circled digits and half-width katakana fold into their
    // plain forms just as full-width letters do.
    let mut mismatches = Vec::new();
    for (first, second) in [("①类客户", "1类客户"), ("ｶ级", "カ级")] {
        let created = app
            .post(
                "/api/v1/tags",
                Some(&admin.access),
                &json!({"group_id": group, "name": first}),
            )
            .await;
        if created.status.as_u16() != 201 {
            mismatches.push(format!("{first}: {} {}", created.status, created.text));
        }
        let duplicate = app
            .post(
                "/api/v1/tags",
                Some(&admin.access),
                &json!({"group_id": group, "name": second}),
            )
            .await;
        if duplicate.status.as_u16() != 409 || duplicate.code() != "tag_name_taken" {
            mismatches.push(format!("{second}: {} {}", duplicate.status, duplicate.text));
        } else if !duplicate.body["detail"]
            .as_str()
            .unwrap_or("")
            .contains(first)
        {
            mismatches.push(format!(
                "{second}: the 409 does not name {first}: {}",
                duplicate.text
            ));
        }
    }
    for distinct in ["2类客户", "キ级"] {
        let answer = app
            .post(
                "/api/v1/tags",
                Some(&admin.access),
                &json!({"group_id": group, "name": distinct}),
            )
            .await;
        if answer.status.as_u16() != 201 {
            mismatches.push(format!("{distinct}: {} {}", answer.status, answer.text));
        }
    }
    assert_no_mismatches(&mismatches);
}

#[tokio::test]
async fn an_exclusive_group_holds_at_most_one_tag_per_customer_whatever_the_route() {
    let app = spawn_app().await;
    let admin = app.tenant_admin("Acme").await;
    let lifecycle = app.create_group(&admin, "生命周期", true).await;
    let new = app.create_tag(&admin, lifecycle, "新客").await;
    let returning = app.create_tag(&admin, lifecycle, "老客").await;
    let first = app.create_tagged_customer(&admin, "甲", &[new]).await;
    let second = app.create_tagged_customer(&admin, "乙", &[new]).await;

    // A batch replaces the group's previous tag as a single assignment does.
    let answer = app
        .post(
            "/api/v1/customers/batch-tags",
            Some(&admin.access),
            &json!({"customer_ids": [first, second], "add": [returning]}),
        )
        .await
        .expect(200);
    assert_eq!(answer.body["matched"], 2);
    assert_eq!(answer.body["added"], 2);
    for id in [first, second] {
        assert_eq!(app.customer_tag_ids(&admin, id).await, vec![returning]);
        let history = app
            .get(
                &format!("/api/v1/customers/{id}/tag-history"),
                Some(&admin.access),
            )
            .await
            .expect(200);
        let removed = history.body["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["tag_id"] == new && r["action"] == "remove");
        assert!(
            removed,
            "the replaced tag has a remove row: {}",
            history.text
        );
    }

    // Two tags of one exclusive group at once cannot both stay.
    let both = app
        .post(
            "/api/v1/customers",
            Some(&admin.access),
            &json!({"name": "丙", "tag_ids": [new, returning]}),
        )
        .await;
    if both.status.as_u16() == 201 {
        let tags = app
            .customer_tag_ids(&admin, both.body["id"].as_i64().unwrap())
            .await;
        assert_eq!(tags.len(), 1, "{tags:?}");
    } else {
        assert_eq!(both.status.as_u16(), 422, "{}", both.text);
    }
}
