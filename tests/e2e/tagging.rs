//! Manual tagging of one customer: adding, removing, exclusive groups, archived tags and the
//! tag history.

use scantag_e2e::{Session, TestApp, assert_no_mismatches, spawn_app};
use serde_json::{Value, json};

async fn add_tag(app: &TestApp, session: &Session, customer: i64, body: &Value) -> Value {
    app.post(
        &format!("/api/v1/customers/{customer}/tags"),
        Some(&session.access),
        body,
    )
    .await
    .expect(200)
    .body
}

async fn history(app: &TestApp, session: &Session, customer: i64) -> Vec<Value> {
    let answer = app
        .get(
            &format!("/api/v1/customers/{customer}/tag-history"),
            Some(&session.access),
        )
        .await
        .expect(200);
    assert!(answer.body["next_cursor"].is_null());
    answer.body["items"].as_array().unwrap().clone()
}

/// (tag_id, action) of each history row, in the order given.
fn events(rows: &[Value]) -> Vec<(i64, String)> {
    rows.iter()
        .map(|r| {
            (
                r["tag_id"].as_i64().unwrap(),
                r["action"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

fn tag_ids_of(tags: &Value) -> Vec<i64> {
    let mut ids: Vec<i64> = tags
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["tag_id"].as_i64().unwrap())
        .collect();
    ids.sort_unstable();
    ids
}

#[tokio::test]
async fn tagging_a_customer_records_who_added_the_tag_and_why() {
    let app = spawn_app().await;
    let admin = app.tenant_admin("Acme").await;
    let sales = app.invite_staff(&admin, "o-sales", "sales").await;
    let group = app.create_group(&admin, "兴趣", false).await;
    let tag = app.create_tag(&admin, group, "高尔夫").await;
    let other = app.create_tag(&admin, group, "茶").await;
    let customer = app.create_tagged_customer(&sales, "张三", &[]).await;

    let answer = add_tag(
        &app,
        &sales,
        customer,
        &json!({"tag_id": tag, "note": "展会上聊到打球"}),
    )
    .await;
    let tags = answer["tags"].as_array().unwrap();
    assert_eq!(tags.len(), 1);
    assert_eq!(tags[0]["tag_id"], tag);
    assert_eq!(tags[0]["name"], "高尔夫");
    assert_eq!(tags[0]["group_id"], group);
    assert_eq!(tags[0]["group_name"], "兴趣");
    assert_eq!(tags[0]["color"], "#1677FF");
    assert_eq!(tags[0]["source"], "manual");
    assert_eq!(tags[0]["assigned_by"], sales.id);
    assert!(tags[0]["assigned_at"].is_string());

    let rows = history(&app, &sales, customer).await;
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0]["tag_id"], tag);
    assert_eq!(rows[0]["tag_name"], "高尔夫");
    assert_eq!(rows[0]["action"], "add");
    assert_eq!(rows[0]["source"], "manual");
    assert_eq!(rows[0]["actor_id"], sales.id);
    assert_eq!(rows[0]["note"], "展会上聊到打球");
    assert!(rows[0]["id"].is_i64());
    assert!(rows[0]["created_at"].is_string());

    // A second tag of a non-exclusive group adds to the first.
    let answer = add_tag(&app, &admin, customer, &json!({"tag_id": other})).await;
    let mut expected = vec![tag, other];
    expected.sort_unstable();
    assert_eq!(tag_ids_of(&answer["tags"]), expected);
    assert_eq!(app.customer_tag_ids(&admin, customer).await, expected);
    let rows = history(&app, &admin, customer).await;
    assert_eq!(
        events(&rows),
        vec![(other, "add".to_owned()), (tag, "add".to_owned())]
    );
    assert_eq!(rows[0]["actor_id"], admin.id);
    assert!(rows[0]["note"].is_null());
}

#[tokio::test]
async fn adding_a_tag_already_present_changes_nothing_and_writes_no_history() {
    let app = spawn_app().await;
    let admin = app.tenant_admin("Acme").await;
    let group = app.create_group(&admin, "兴趣", false).await;
    let tag = app.create_tag(&admin, group, "高尔夫").await;
    let customer = app.create_tagged_customer(&admin, "张三", &[]).await;
    let first = add_tag(
        &app,
        &admin,
        customer,
        &json!({"tag_id": tag, "note": "一"}),
    )
    .await;

    let second = add_tag(
        &app,
        &admin,
        customer,
        &json!({"tag_id": tag, "note": "二"}),
    )
    .await;

    assert_eq!(second["tags"], first["tags"]);
    let rows = history(&app, &admin, customer).await;
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0]["note"], "一");
}

#[tokio::test]
async fn a_tag_of_an_exclusive_group_replaces_the_previous_one() {
    let app = spawn_app().await;
    let admin = app.tenant_admin("Acme").await;
    let lifecycle = app.create_group(&admin, "生命周期", true).await;
    let new = app.create_tag(&admin, lifecycle, "新客").await;
    let returning = app.create_tag(&admin, lifecycle, "老客").await;
    let interests = app.create_group(&admin, "兴趣", false).await;
    let golf = app.create_tag(&admin, interests, "高尔夫").await;
    let customer = app.create_tagged_customer(&admin, "张三", &[]).await;
    let bystander = app.create_tagged_customer(&admin, "李四", &[]).await;
    add_tag(&app, &admin, bystander, &json!({"tag_id": new})).await;
    add_tag(&app, &admin, customer, &json!({"tag_id": golf})).await;
    add_tag(&app, &admin, customer, &json!({"tag_id": new})).await;

    let answer = add_tag(
        &app,
        &admin,
        customer,
        &json!({"tag_id": returning, "note": "复购"}),
    )
    .await;

    let mut expected = vec![golf, returning];
    expected.sort_unstable();
    assert_eq!(tag_ids_of(&answer["tags"]), expected);
    assert_eq!(app.customer_tag_ids(&admin, customer).await, expected);
    assert_eq!(
        app.customer_tag_ids(&admin, bystander).await,
        vec![new],
        "other customers keep theirs"
    );

    let rows = history(&app, &admin, customer).await;
    assert_eq!(rows.len(), 4, "{rows:?}");
    let mut replacement = events(&rows[..2]);
    replacement.sort();
    let mut expected_replacement = vec![(new, "remove".to_owned()), (returning, "add".to_owned())];
    expected_replacement.sort();
    assert_eq!(
        replacement, expected_replacement,
        "the replacement is the two newest rows"
    );
    assert_eq!(
        events(&rows[2..]),
        vec![(new, "add".to_owned()), (golf, "add".to_owned())]
    );
    for row in &rows[..2] {
        assert_eq!(row["actor_id"], admin.id);
        assert_eq!(row["source"], "manual");
    }
    let added = rows.iter().find(|r| r["tag_id"] == returning).unwrap();
    assert_eq!(added["note"], "复购");

    let new_tag = app
        .get(&format!("/api/v1/tags/{new}"), Some(&admin.access))
        .await
        .expect(200);
    assert_eq!(new_tag.body["customer_count"], 1);
}

#[tokio::test]
async fn removing_a_tag_writes_a_history_row_and_removing_it_again_is_not_found() {
    let app = spawn_app().await;
    let admin = app.tenant_admin("Acme").await;
    let group = app.create_group(&admin, "兴趣", false).await;
    let tag = app.create_tag(&admin, group, "高尔夫").await;
    let never = app.create_tag(&admin, group, "茶").await;
    let customer = app.create_tagged_customer(&admin, "张三", &[]).await;
    add_tag(&app, &admin, customer, &json!({"tag_id": tag})).await;
    let path = format!("/api/v1/customers/{customer}/tags/{tag}");

    let removed = app.delete(&path, Some(&admin.access)).await;
    assert_eq!(removed.status.as_u16(), 204);

    assert!(app.customer_tag_ids(&admin, customer).await.is_empty());
    let rows = history(&app, &admin, customer).await;
    assert_eq!(
        events(&rows),
        vec![(tag, "remove".to_owned()), (tag, "add".to_owned())]
    );
    assert_eq!(rows[0]["actor_id"], admin.id);
    assert_eq!(rows[0]["tag_name"], "高尔夫");
    assert!(rows[0]["note"].is_null());

    let again = app.delete(&path, Some(&admin.access)).await.expect(404);
    assert_eq!(again.code(), "not_found");
    app.delete(
        &format!("/api/v1/customers/{customer}/tags/{never}"),
        Some(&admin.access),
    )
    .await
    .expect(404);
    app.delete(
        &format!("/api/v1/customers/{customer}/tags/999999"),
        Some(&admin.access),
    )
    .await
    .expect(404);
    assert_eq!(history(&app, &admin, customer).await.len(), 2);
}

#[tokio::test]
async fn tag_history_is_newest_first_and_pages_with_a_cursor() {
    let app = spawn_app().await;
    let admin = app.tenant_admin("Acme").await;
    let group = app.create_group(&admin, "兴趣", false).await;
    let a = app.create_tag(&admin, group, "A").await;
    let b = app.create_tag(&admin, group, "B").await;
    let c = app.create_tag(&admin, group, "C").await;
    let customer = app.create_tagged_customer(&admin, "张三", &[]).await;
    let mut log = Vec::new();
    for (tag, action) in [
        (a, "add"),
        (b, "add"),
        (a, "remove"),
        (c, "add"),
        (a, "add"),
    ] {
        if action == "add" {
            add_tag(&app, &admin, customer, &json!({"tag_id": tag})).await;
        } else {
            app.delete(
                &format!("/api/v1/customers/{customer}/tags/{tag}"),
                Some(&admin.access),
            )
            .await
            .expect(204);
        }
        log.push((tag, action.to_owned()));
    }
    log.reverse();

    let mut rows = Vec::new();
    let mut cursor: Option<String> = None;
    let mut pages = 0;
    loop {
        pages += 1;
        assert!(pages <= 10, "the history ends");
        let mut path = format!("/api/v1/customers/{customer}/tag-history?limit=2");
        if let Some(cursor) = &cursor {
            path.push_str(&format!("&cursor={cursor}"));
        }
        let page = app.get(&path, Some(&admin.access)).await.expect(200);
        let items = page.body["items"].as_array().unwrap();
        assert!(items.len() <= 2);
        rows.extend(items.iter().cloned());
        match page.body["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => break,
        }
    }
    assert_eq!(events(&rows), log);
    let ids: Vec<i64> = rows.iter().map(|r| r["id"].as_i64().unwrap()).collect();
    assert!(ids.windows(2).all(|w| w[0] > w[1]), "newest first: {ids:?}");
    assert_eq!(history(&app, &admin, customer).await.len(), 5);
}

#[tokio::test]
async fn archived_tags_stay_on_customers_but_cannot_be_newly_assigned() {
    let app = spawn_app().await;
    let admin = app.tenant_admin("Acme").await;
    let group = app.create_group(&admin, "渠道", false).await;
    let tag = app.create_tag(&admin, group, "展会").await;
    let carrier = app.create_tagged_customer(&admin, "张三", &[tag]).await;
    let other = app.create_tagged_customer(&admin, "李四", &[]).await;
    app.patch(
        &format!("/api/v1/tags/{tag}"),
        Some(&admin.access),
        &json!({"status": "archived"}),
    )
    .await
    .expect(200);

    let kept = app.customer(&admin, carrier).await;
    assert_eq!(tag_ids_of(&kept["tags"]), vec![tag]);
    assert_eq!(kept["tags"][0]["name"], "展会");

    app.post(
        &format!("/api/v1/customers/{other}/tags"),
        Some(&admin.access),
        &json!({"tag_id": tag}),
    )
    .await
    .expect_coded_field_error("tag_id", "tag_archived");
    app.post(
        "/api/v1/customers/batch-tags",
        Some(&admin.access),
        &json!({"customer_ids": [other], "add": [tag]}),
    )
    .await
    .expect_coded_field_error("add[0]", "tag_archived");
    let created = app
        .post(
            "/api/v1/customers",
            Some(&admin.access),
            &json!({"name": "王五", "tag_ids": [tag]}),
        )
        .await
        .expect(422);
    assert!(
        created
            .error_fields()
            .iter()
            .any(|f| f.starts_with("tag_ids")),
        "{}",
        created.text
    );
    assert!(app.customer_tag_ids(&admin, other).await.is_empty());
    assert!(history(&app, &admin, other).await.is_empty());

    // Archived tags still filter, and still count.
    let with = app
        .search(&admin, &json!({"all_of": [tag]}))
        .await
        .expect(200);
    assert_eq!(with.item_ids(), vec![carrier]);
    let without = app
        .search(&admin, &json!({"none_of": [tag]}))
        .await
        .expect(200);
    assert_eq!(without.item_ids(), vec![other]);
    let any = app
        .search(&admin, &json!({"any_of": [tag]}))
        .await
        .expect(200);
    assert_eq!(any.body["total"], 1);
    let archived = app
        .get(&format!("/api/v1/tags/{tag}"), Some(&admin.access))
        .await
        .expect(200);
    assert_eq!(archived.body["customer_count"], 1);

    // An archived tag can still be taken off.
    app.delete(
        &format!("/api/v1/customers/{carrier}/tags/{tag}"),
        Some(&admin.access),
    )
    .await
    .expect(204);

    // Reactivated, it can be assigned again.
    app.patch(
        &format!("/api/v1/tags/{tag}"),
        Some(&admin.access),
        &json!({"status": "active"}),
    )
    .await
    .expect(200);
    add_tag(&app, &admin, other, &json!({"tag_id": tag})).await;
}

#[tokio::test]
async fn tagging_with_bad_input_is_refused_and_changes_nothing() {
    let app = spawn_app().await;
    let admin = app.tenant_admin("Acme").await;
    let group = app.create_group(&admin, "兴趣", false).await;
    let tag = app.create_tag(&admin, group, "高尔夫").await;
    let customer = app.create_tagged_customer(&admin, "张三", &[]).await;
    let path = format!("/api/v1/customers/{customer}/tags");
    let cases = [
        (json!({}), "tag_id"),
        (json!({"tag_id": "x"}), "tag_id"),
        (json!({"tag_id": tag, "note": "n".repeat(201)}), "note"),
        (json!({"tag_id": tag, "note": 5}), "note"),
        (json!({"tag_id": tag, "source": "api"}), "source"),
    ];
    let mut mismatches = Vec::new();
    for (body, field) in cases {
        let answer = app.post(&path, Some(&admin.access), &body).await;
        if let Some(m) = answer.field_error_mismatch(field, None, true) {
            mismatches.push(format!("{body}: {m}"));
        }
    }
    assert_no_mismatches(&mismatches);
    app.post(&path, Some(&admin.access), &json!({"tag_id": 999_999}))
        .await
        .expect_field_error("tag_id", None);
    app.post(
        "/api/v1/customers/999999/tags",
        Some(&admin.access),
        &json!({"tag_id": tag}),
    )
    .await
    .expect(404);
    app.get("/api/v1/customers/999999/tag-history", Some(&admin.access))
        .await
        .expect(404);
    assert!(app.customer_tag_ids(&admin, customer).await.is_empty());
    assert!(history(&app, &admin, customer).await.is_empty());

    let ok = add_tag(
        &app,
        &admin,
        customer,
        &json!({"tag_id": tag, "note": "注".repeat(200)}),
    )
    .await;
    assert_eq!(tag_ids_of(&ok["tags"]), vec![tag]);
}

#[tokio::test]
async fn a_deleted_customer_can_no_longer_be_tagged() {
    let app = spawn_app().await;
    let admin = app.tenant_admin("Acme").await;
    let group = app.create_group(&admin, "兴趣", false).await;
    let tag = app.create_tag(&admin, group, "高尔夫").await;
    let customer = app.create_tagged_customer(&admin, "张三", &[tag]).await;
    app.delete(
        &format!("/api/v1/customers/{customer}"),
        Some(&admin.access),
    )
    .await
    .expect(204);
    app.post(
        &format!("/api/v1/customers/{customer}/tags"),
        Some(&admin.access),
        &json!({"tag_id": tag}),
    )
    .await
    .expect(404);
    app.delete(
        &format!("/api/v1/customers/{customer}/tags/{tag}"),
        Some(&admin.access),
    )
    .await
    .expect(404);
    app.get(
        &format!("/api/v1/customers/{customer}/tag-history"),
        Some(&admin.access),
    )
    .await
    .expect(404);
}

#[tokio::test]
async fn a_bad_tag_history_query_is_a_client_error_naming_the_parameter() {
    let app = spawn_app().await;
    let admin = app.tenant_admin("Acme").await;
    let customer = app.create_tagged_customer(&admin, "张三", &[]).await;
    let mut mismatches = Vec::new();
    for (query, field) in [
        ("cursor=garbage", "cursor"),
        ("limit=0", "limit"),
        ("limit=abc", "limit"),
    ] {
        let answer = app
            .get(
                &format!("/api/v1/customers/{customer}/tag-history?{query}"),
                Some(&admin.access),
            )
            .await;
        let named =
            answer.status.as_u16() != 422 || answer.error_fields().contains(&field.to_owned());
        if !answer.status.is_client_error() || !named {
            mismatches.push(format!("{query}: {} {}", answer.status, answer.text));
        }
    }
    assert_no_mismatches(&mismatches);
}
