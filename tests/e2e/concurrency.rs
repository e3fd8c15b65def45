//! Simultaneous requests that race for one name, one phone number, one customer's tags: the
//! rules hold and the loser gets the documented answer, never a server error.

use scantag_e2e::{Answer, Session, TestApp, spawn_app};
use serde_json::json;

/// The number of rounds each race is run for.
const ROUNDS: usize = 8;

fn statuses(a: &Answer, b: &Answer) -> [u16; 2] {
    let mut s = [a.status.as_u16(), b.status.as_u16()];
    s.sort_unstable();
    s
}

async fn history_len(app: &TestApp, session: &Session, customer: i64) -> usize {
    app.get(
        &format!("/api/v1/customers/{customer}/tag-history"),
        Some(&session.access),
    )
    .await
    .expect(200)
    .body["items"]
        .as_array()
        .unwrap()
        .len()
}

#[tokio::test]
async fn two_customers_racing_for_one_phone_number_get_one_201_and_one_409() {
    let app = spawn_app().await;
    let admin = app.tenant_admin("Acme").await;
    for round in 0..ROUNDS {
        let phone = format!("1380013{round:04}");
        let one = json!({"name": "甲", "phone": phone});
        let other = json!({"name": "乙", "phone": format!("+86 {phone}")});
        let (a, b) = tokio::join!(
            app.post("/api/v1/customers", Some(&admin.access), &one),
            app.post("/api/v1/customers", Some(&admin.access), &other)
        );
        assert_eq!(statuses(&a, &b), [201, 409], "{} / {}", a.text, b.text);
        let loser = if a.status.as_u16() == 409 { &a } else { &b };
        assert_eq!(loser.code(), "phone_taken");
    }
    let all = app.search(&admin, &json!({})).await.expect(200);
    assert_eq!(all.body["total"], ROUNDS as i64);
}

#[tokio::test]
async fn two_tags_racing_for_one_normalised_name_get_one_201_and_one_409() {
    let app = spawn_app().await;
    let admin = app.tenant_admin("Acme").await;
    let group = app.create_group(&admin, "分组", false).await;
    for round in 0..ROUNDS {
        let one = json!({"group_id": group, "name": format!("vip {round}")});
        let other = json!({"group_id": group, "name": format!("ＶＩＰ  {round}")});
        let (a, b) = tokio::join!(
            app.post("/api/v1/tags", Some(&admin.access), &one),
            app.post("/api/v1/tags", Some(&admin.access), &other)
        );
        assert_eq!(statuses(&a, &b), [201, 409], "{} / {}", a.text, b.text);
        let loser = if a.status.as_u16() == 409 { &a } else { &b };
        assert_eq!(loser.code(), "tag_name_taken");
    }
    let tags = app
        .get("/api/v1/tags?status=all", Some(&admin.access))
        .await
        .expect(200);
    assert_eq!(tags.item_ids().len(), ROUNDS);
}

#[tokio::test]
async fn two_groups_racing_for_one_normalised_name_get_one_201_and_one_409() {
    let app = spawn_app().await;
    let admin = app.tenant_admin("Acme").await;
    for round in 0..ROUNDS {
        let one = json!({"name": format!("Group {round}"), "dimension": "basic"});
        let other = json!({"name": format!("group  {round}"), "dimension": "basic"});
        let (a, b) = tokio::join!(
            app.post("/api/v1/tag-groups", Some(&admin.access), &one),
            app.post("/api/v1/tag-groups", Some(&admin.access), &other)
        );
        assert_eq!(statuses(&a, &b), [201, 409], "{} / {}", a.text, b.text);
        let loser = if a.status.as_u16() == 409 { &a } else { &b };
        assert_eq!(loser.code(), "tag_group_name_taken");
    }
    let groups = app
        .get(
            "/api/v1/tag-groups?include_archived=true",
            Some(&admin.access),
        )
        .await
        .expect(200);
    assert_eq!(groups.item_ids().len(), ROUNDS);
}

#[tokio::test]
async fn adding_one_tag_twice_at_once_links_it_once_with_one_history_row() {
    let app = spawn_app().await;
    let admin = app.tenant_admin("Acme").await;
    let group = app.create_group(&admin, "兴趣", false).await;
    let tag = app.create_tag(&admin, group, "高尔夫").await;
    for round in 0..ROUNDS {
        let customer = app
            .create_tagged_customer(&admin, &format!("客户{round}"), &[])
            .await;
        let path = format!("/api/v1/customers/{customer}/tags");
        let body = json!({"tag_id": tag});
        let (a, b) = tokio::join!(
            app.post(&path, Some(&admin.access), &body),
            app.post(&path, Some(&admin.access), &body)
        );
        assert_eq!(statuses(&a, &b), [200, 200], "{} / {}", a.text, b.text);
        assert_eq!(app.customer_tag_ids(&admin, customer).await, vec![tag]);
        assert_eq!(history_len(&app, &admin, customer).await, 1);
    }
    let counted = app
        .get(&format!("/api/v1/tags/{tag}"), Some(&admin.access))
        .await
        .expect(200);
    assert_eq!(counted.body["customer_count"], ROUNDS as i64);
}

#[tokio::test]
async fn racing_assignments_in_an_exclusive_group_leave_exactly_one_tag() {
    let app = spawn_app().await;
    let admin = app.tenant_admin("Acme").await;
    let group = app.create_group(&admin, "生命周期", true).await;
    let new = app.create_tag(&admin, group, "新客").await;
    let returning = app.create_tag(&admin, group, "老客").await;
    for round in 0..ROUNDS {
        let customer = app
            .create_tagged_customer(&admin, &format!("客户{round}"), &[])
            .await;
        let path = format!("/api/v1/customers/{customer}/tags");
        let (one, other) = (json!({"tag_id": new}), json!({"tag_id": returning}));
        let (a, b) = tokio::join!(
            app.post(&path, Some(&admin.access), &one),
            app.post(&path, Some(&admin.access), &other)
        );
        // Both may succeed (one replacing the other) or one may be told to retry; never two
        // tags of the group.
        for answer in [&a, &b] {
            assert!(
                [200, 409].contains(&answer.status.as_u16()),
                "{}",
                answer.text
            );
        }
        let tags = app.customer_tag_ids(&admin, customer).await;
        assert_eq!(tags.len(), 1, "round {round}: {tags:?}");
    }
}

#[tokio::test]
async fn racing_batches_on_the_same_customers_keep_counts_and_links_consistent() {
    let app = spawn_app().await;
    let admin = app.tenant_admin("Acme").await;
    let group = app.create_group(&admin, "兴趣", false).await;
    let tag = app.create_tag(&admin, group, "活动").await;
    let mut ids = Vec::new();
    for i in 0..10 {
        ids.push(
            app.create_tagged_customer(&admin, &format!("客户{i}"), &[])
                .await,
        );
    }
    let body = json!({"customer_ids": ids, "add": [tag]});
    let (a, b) = tokio::join!(
        app.post("/api/v1/customers/batch-tags", Some(&admin.access), &body),
        app.post("/api/v1/customers/batch-tags", Some(&admin.access), &body)
    );
    let mut added = 0;
    for answer in [&a, &b] {
        match answer.status.as_u16() {
            200 => added += answer.body["added"].as_i64().unwrap(),
            409 => {}
            _ => panic!("unexpected answer: {}", answer.text),
        }
    }
    assert_eq!(added, ids.len() as i64, "each link is counted once");
    let mut rows = 0;
    for id in &ids {
        assert_eq!(app.customer_tag_ids(&admin, *id).await, vec![tag]);
        rows += history_len(&app, &admin, *id).await;
    }
    assert_eq!(rows, ids.len(), "one history row per link created");
}
