//! The search cache: repeated searches are served from it, every change is visible to the
//! next search, `Cache-Control: no-cache` bypasses it, answers never leak between tenants or
//! visibility scopes, and an unreachable Redis degrades to the database.

use std::time::Duration;

use scantag_e2e::{Answer, Session, TestApp, spawn_app, spawn_app_with};
use secrecy::SecretString;
use serde_json::{Value, json};

fn x_cache(answer: &Answer) -> &str {
    answer.header("x-cache").unwrap_or("")
}

/// Repeats a search until it is answered from the cache (a bounded number of times, in case
/// the cache is filled after the answer is sent) and returns that answer.
async fn search_until_hit(app: &TestApp, session: &Session, filter: &Value) -> Answer {
    for _ in 0..20 {
        let answer = app.search(session, filter).await.expect(200);
        if x_cache(&answer) == "hit" {
            return answer;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("a repeated search {filter} was never served from the cache");
}

async fn tag(app: &TestApp, session: &Session, customer: i64, tag: i64) {
    app.post(
        &format!("/api/v1/customers/{customer}/tags"),
        Some(&session.access),
        &json!({"tag_id": tag}),
    )
    .await
    .expect(200);
}

#[tokio::test]
async fn a_repeated_search_is_served_from_the_cache_and_a_tagging_is_visible_at_once() {
    let app = spawn_app().await;
    let admin = app.tenant_admin("Acme").await;
    let group = app.create_group(&admin, "兴趣", false).await;
    let a = app.create_tag(&admin, group, "A").await;
    let first = app.create_tagged_customer(&admin, "甲", &[a]).await;
    let second = app.create_tagged_customer(&admin, "乙", &[]).await;
    let filter = json!({"all_of": [a]});

    let miss = app.search(&admin, &filter).await.expect(200);
    assert_eq!(x_cache(&miss), "miss");
    assert_eq!(miss.item_ids(), vec![first]);
    let hit = search_until_hit(&app, &admin, &filter).await;
    assert_eq!(hit.body, miss.body, "the cached answer is the same answer");

    tag(&app, &admin, second, a).await;
    let after = app.search(&admin, &filter).await.expect(200);
    assert_eq!(after.item_ids(), vec![second, first], "{}", after.text);
    assert_eq!(after.body["total"], 2);
    assert_eq!(x_cache(&after), "miss");
    let cached = search_until_hit(&app, &admin, &filter).await;
    assert_eq!(cached.item_ids(), vec![second, first]);

    app.delete(
        &format!("/api/v1/customers/{first}/tags/{a}"),
        Some(&admin.access),
    )
    .await
    .expect(204);
    let removed = app.search(&admin, &filter).await.expect(200);
    assert_eq!(removed.item_ids(), vec![second]);
    assert_eq!(x_cache(&removed), "miss");
}

#[tokio::test]
async fn a_deleted_customer_is_gone_from_the_next_search() {
    let app = spawn_app().await;
    let admin = app.tenant_admin("Acme").await;
    let kept = app.create_tagged_customer(&admin, "甲", &[]).await;
    let doomed = app.create_tagged_customer(&admin, "乙", &[]).await;
    let filter = json!({"keyword": "乙"});
    let everyone = json!({});
    assert_eq!(
        app.search(&admin, &filter).await.expect(200).item_ids(),
        vec![doomed]
    );
    search_until_hit(&app, &admin, &filter).await;
    search_until_hit(&app, &admin, &everyone).await;

    app.delete(&format!("/api/v1/customers/{doomed}"), Some(&admin.access))
        .await
        .expect(204);

    let gone = app.search(&admin, &filter).await.expect(200);
    assert_eq!(gone.body["total"], 0, "{}", gone.text);
    assert!(gone.item_ids().is_empty());
    assert_eq!(x_cache(&gone), "miss");
    let rest = app.search(&admin, &everyone).await.expect(200);
    assert_eq!(rest.item_ids(), vec![kept]);
}

#[tokio::test]
async fn cache_control_no_cache_bypasses_the_cache() {
    let app = spawn_app().await;
    let admin = app.tenant_admin("Acme").await;
    let id = app.create_tagged_customer(&admin, "甲", &[]).await;
    let filter = json!({"keyword": "甲"});
    search_until_hit(&app, &admin, &filter).await;

    let bypass = app
        .send(
            app.client
                .post(app.url("/api/v1/customers/search"))
                .bearer_auth(&admin.access)
                .header("cache-control", "no-cache")
                .json(&filter),
        )
        .await
        .expect(200);
    assert_eq!(x_cache(&bypass), "bypass");
    assert_eq!(bypass.item_ids(), vec![id]);
    assert_eq!(bypass.body["total"], 1);
}

#[tokio::test]
async fn every_kind_of_change_is_visible_in_the_next_search() {
    let app = spawn_app().await;
    let admin = app.tenant_admin("Acme").await;
    let group = app.create_group(&admin, "兴趣", false).await;
    let a = app.create_tag(&admin, group, "A").await;
    let b = app.create_tag(&admin, group, "B").await;
    let first = app.create_tagged_customer(&admin, "甲", &[a]).await;
    let everyone = json!({});
    let by_stage = json!({"project_stage": "won"});
    let with_b = json!({"all_of": [b]});
    for filter in [&everyone, &by_stage, &with_b] {
        search_until_hit(&app, &admin, filter).await;
    }

    // A new customer.
    let second = app.create_tagged_customer(&admin, "乙", &[]).await;
    assert_eq!(
        app.search(&admin, &everyone).await.expect(200).item_ids(),
        vec![second, first]
    );

    // A customer's fields.
    app.patch(
        &format!("/api/v1/customers/{second}"),
        Some(&admin.access),
        &json!({"project_stage": "won"}),
    )
    .await
    .expect(200);
    assert_eq!(
        app.search(&admin, &by_stage).await.expect(200).item_ids(),
        vec![second]
    );

    // A batch.
    search_until_hit(&app, &admin, &with_b).await;
    app.post(
        "/api/v1/customers/batch-tags",
        Some(&admin.access),
        &json!({"customer_ids": [first, second], "add": [b]}),
    )
    .await
    .expect(200);
    assert_eq!(
        app.search(&admin, &with_b).await.expect(200).item_ids(),
        vec![second, first]
    );

    // A tag's name and colour, shown on the customers in the list.
    search_until_hit(&app, &admin, &everyone).await;
    app.patch(
        &format!("/api/v1/tags/{a}"),
        Some(&admin.access),
        &json!({"name": "A 改名", "color": "#FF4D4F"}),
    )
    .await
    .expect(200);
    let listed = app.search(&admin, &everyone).await.expect(200);
    let on_first = listed.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == first)
        .unwrap()["tags"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["tag_id"] == a)
        .unwrap()
        .clone();
    assert_eq!(on_first["name"], "A 改名");
    assert_eq!(on_first["color"], "#FF4D4F");

    // A group's name, shown on the customers' tags too.
    search_until_hit(&app, &admin, &everyone).await;
    app.patch(
        &format!("/api/v1/tag-groups/{group}"),
        Some(&admin.access),
        &json!({"name": "爱好"}),
    )
    .await
    .expect(200);
    let listed = app.search(&admin, &everyone).await.expect(200);
    for customer in listed.body["items"].as_array().unwrap() {
        for tag in customer["tags"].as_array().unwrap() {
            assert_eq!(tag["group_name"], "爱好", "{}", listed.text);
        }
    }

    // A deleted customer.
    search_until_hit(&app, &admin, &everyone).await;
    app.delete(&format!("/api/v1/customers/{first}"), Some(&admin.access))
        .await
        .expect(204);
    assert_eq!(
        app.search(&admin, &everyone).await.expect(200).item_ids(),
        vec![second]
    );
}

#[tokio::test]
async fn identical_searches_of_two_tenants_never_share_an_answer() {
    let app = spawn_app().await;
    let acme = app.tenant_admin("Acme").await;
    let globex = app.tenant_admin("Globex").await;
    let ours = app.create_tagged_customer(&acme, "甲", &[]).await;
    let everyone = json!({});
    search_until_hit(&app, &acme, &everyone).await;

    let theirs = app.search(&globex, &everyone).await.expect(200);
    assert_eq!(theirs.body["total"], 0, "{}", theirs.text);
    assert!(theirs.item_ids().is_empty());

    let their_customer = app.create_tagged_customer(&globex, "乙", &[]).await;
    let theirs = app.search(&globex, &everyone).await.expect(200);
    assert_eq!(theirs.item_ids(), vec![their_customer]);
    let again = app.search(&acme, &everyone).await.expect(200);
    assert_eq!(again.item_ids(), vec![ours]);
}

#[tokio::test]
async fn a_sales_reps_search_is_never_served_from_an_admins_cached_answer() {
    let app = spawn_app().await;
    let admin = app.tenant_admin("Acme").await;
    let sales = app.invite_staff(&admin, "o-sales", "sales").await;
    let own = app.create_tagged_customer(&sales, "我的", &[]).await;
    let admins = app.create_tagged_customer(&admin, "公司的", &[]).await;
    let everyone = json!({});
    let cached = search_until_hit(&app, &admin, &everyone).await;
    assert_eq!(cached.item_ids(), vec![admins, own]);

    let seen = app.search(&sales, &everyone).await.expect(200);
    assert_eq!(seen.item_ids(), vec![own], "{}", seen.text);
    assert_eq!(seen.body["total"], 1);
    let seen_again = app.search(&sales, &everyone).await.expect(200);
    assert_eq!(seen_again.item_ids(), vec![own]);
    let admin_again = app.search(&admin, &everyone).await.expect(200);
    assert_eq!(admin_again.item_ids(), vec![admins, own]);
}

#[tokio::test]
async fn with_redis_unreachable_creating_tagging_and_searching_still_work_and_agree() {
    let app = spawn_app_with(|s| {
        s.redis_url = Some(SecretString::from("redis://127.0.0.1:1/".to_owned()));
    })
    .await;
    let admin = app.tenant_admin("Acme").await;
    let group = app.create_group(&admin, "兴趣", false).await;
    let a = app.create_tag(&admin, group, "A").await;
    let first = app.create_tagged_customer(&admin, "甲", &[a]).await;
    let second = app.create_tagged_customer(&admin, "乙", &[]).await;
    let filter = json!({"all_of": [a]});

    for _ in 0..2 {
        let answer = app.search(&admin, &filter).await.expect(200);
        assert_eq!(answer.item_ids(), vec![first]);
        assert_ne!(
            x_cache(&answer),
            "hit",
            "nothing can come from a dead cache"
        );
    }
    tag(&app, &admin, second, a).await;
    let after = app.search(&admin, &filter).await.expect(200);
    assert_eq!(after.item_ids(), vec![second, first]);

    let batch = app
        .post(
            "/api/v1/customers/batch-tags",
            Some(&admin.access),
            &json!({"filter": {"all_of": [a]}, "remove": [a]}),
        )
        .await
        .expect(200);
    assert_eq!(batch.body["matched"], 2);
    assert_eq!(batch.body["removed"], 2);
    let emptied = app.search(&admin, &filter).await.expect(200);
    assert_eq!(emptied.body["total"], 0);

    app.delete(&format!("/api/v1/customers/{first}"), Some(&admin.access))
        .await
        .expect(204);
    let rest = app.search(&admin, &json!({})).await.expect(200);
    assert_eq!(rest.item_ids(), vec![second]);
    let tag_now = app
        .get(&format!("/api/v1/tags/{a}"), Some(&admin.access))
        .await
        .expect(200);
    assert_eq!(tag_now.body["customer_count"], 0);
}
