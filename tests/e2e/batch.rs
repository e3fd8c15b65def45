//! Batch tagging by customer ids and by filter: counts, history, all-or-nothing.

use std::collections::{BTreeMap, BTreeSet};

use scantag_e2e::{Session, TestApp, assert_no_mismatches, spawn_app};
use serde_json::{Value, json};

const BATCH: &str = "/api/v1/customers/batch-tags";

async fn history(app: &TestApp, session: &Session, customer: i64) -> Vec<Value> {
    app.get(
        &format!("/api/v1/customers/{customer}/tag-history"),
        Some(&session.access),
    )
    .await
    .expect(200)
    .body["items"]
        .as_array()
        .unwrap()
        .clone()
}

/// Every customer's tag ids and history length, to check that nothing changed.
async fn snapshot(
    app: &TestApp,
    session: &Session,
    customers: &[i64],
) -> BTreeMap<i64, (Vec<i64>, usize)> {
    let mut state = BTreeMap::new();
    for &id in customers {
        let tags = app.customer_tag_ids(session, id).await;
        let rows = history(app, session, id).await.len();
        state.insert(id, (tags, rows));
    }
    state
}

/// Tags a customer one tag at a time through the single-customer endpoint.
async fn tag(app: &TestApp, session: &Session, customer: i64, tags: &[i64]) {
    for tag in tags {
        app.post(
            &format!("/api/v1/customers/{customer}/tags"),
            Some(&session.access),
            &json!({"tag_id": tag}),
        )
        .await
        .expect(200);
    }
}

/// Expected (added, removed) link counts of applying `add` and `remove` to `state`, which is
/// updated to the state afterwards.
fn apply(state: &mut BTreeMap<i64, BTreeSet<i64>>, add: &[i64], remove: &[i64]) -> (i64, i64) {
    let (mut added, mut removed) = (0, 0);
    for tags in state.values_mut() {
        for t in add {
            if tags.insert(*t) {
                added += 1;
            }
        }
        for t in remove {
            if tags.remove(t) {
                removed += 1;
            }
        }
    }
    (added, removed)
}

#[tokio::test]
async fn batch_tagging_by_ids_adds_and_removes_and_counts_the_changes() {
    let app = spawn_app().await;
    let admin = app.tenant_admin("Acme").await;
    let group = app.create_group(&admin, "兴趣", false).await;
    let a = app.create_tag(&admin, group, "A").await;
    let b = app.create_tag(&admin, group, "B").await;
    let c = app.create_tag(&admin, group, "C").await;
    let starting: [&[i64]; 4] = [&[c], &[a], &[], &[a, b, c]];
    let mut model = BTreeMap::new();
    for (i, tags) in starting.iter().enumerate() {
        let id = app
            .create_tagged_customer(&admin, &format!("客户{i}"), &[])
            .await;
        tag(&app, &admin, id, tags).await;
        model.insert(id, tags.iter().copied().collect::<BTreeSet<i64>>());
    }
    let outsider = app.create_tagged_customer(&admin, "局外人", &[]).await;
    tag(&app, &admin, outsider, &[c]).await;
    let ids: Vec<i64> = model.keys().copied().collect();
    let before = snapshot(&app, &admin, &ids).await;

    let (added, removed) = apply(&mut model, &[a, b], &[c]);
    assert!(added > 0 && removed > 0, "the fixture exercises both");
    let answer = app
        .post(
            BATCH,
            Some(&admin.access),
            &json!({"customer_ids": ids, "add": [a, b], "remove": [c], "note": "春季活动"}),
        )
        .await
        .expect(200);
    assert_eq!(answer.body["matched"], ids.len() as i64);
    assert_eq!(answer.body["added"], added);
    assert_eq!(answer.body["removed"], removed);

    for (id, tags) in &model {
        let expected: Vec<i64> = tags.iter().copied().collect();
        assert_eq!(
            app.customer_tag_ids(&admin, *id).await,
            expected,
            "customer {id}"
        );
    }
    assert_eq!(
        app.customer_tag_ids(&admin, outsider).await,
        vec![c],
        "customers not named are untouched"
    );

    // One history row per change, noted and attributed.
    let mut rows_written = 0;
    for id in &ids {
        let rows = history(&app, &admin, *id).await;
        let new_rows = rows.len() - before[id].1;
        rows_written += new_rows;
        for row in &rows[..new_rows] {
            assert_eq!(row["note"], "春季活动");
            assert_eq!(row["actor_id"], admin.id);
            assert_eq!(row["source"], "manual");
        }
    }
    assert_eq!(rows_written as i64, added + removed);
    let first = ids[0];
    let mut first_rows: Vec<(i64, String)> = history(&app, &admin, first).await[..3]
        .iter()
        .map(|r| {
            (
                r["tag_id"].as_i64().unwrap(),
                r["action"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    first_rows.sort();
    let mut expected_rows = vec![
        (a, "add".to_owned()),
        (b, "add".to_owned()),
        (c, "remove".to_owned()),
    ];
    expected_rows.sort();
    assert_eq!(first_rows, expected_rows);

    // The same batch again matches the same customers and changes nothing.
    let after = snapshot(&app, &admin, &ids).await;
    let again = app
        .post(
            BATCH,
            Some(&admin.access),
            &json!({"customer_ids": ids, "add": [a, b], "remove": [c]}),
        )
        .await
        .expect(200);
    assert_eq!(again.body["matched"], ids.len() as i64);
    assert_eq!(again.body["added"], 0);
    assert_eq!(again.body["removed"], 0);
    assert_eq!(snapshot(&app, &admin, &ids).await, after);
}

#[tokio::test]
async fn batch_tagging_by_filter_tags_every_customer_the_filter_matched() {
    let app = spawn_app().await;
    let admin = app.tenant_admin("Acme").await;
    let group = app.create_group(&admin, "兴趣", false).await;
    let x = app.create_tag(&admin, group, "X").await;
    let y = app.create_tag(&admin, group, "Y").await;
    let mut model = BTreeMap::new();
    for i in 0..9 {
        let mut tags = Vec::new();
        if i % 3 != 0 {
            tags.push(x);
        }
        if i % 4 == 0 {
            tags.push(y);
        }
        let id = app
            .create_tagged_customer(&admin, &format!("客户{i}"), &tags)
            .await;
        model.insert(id, tags.into_iter().collect::<BTreeSet<i64>>());
    }

    // all_of X, add Y.
    let mut matched: BTreeMap<i64, BTreeSet<i64>> = model
        .iter()
        .filter(|(_, t)| t.contains(&x))
        .map(|(id, t)| (*id, t.clone()))
        .collect();
    let (added, _) = apply(&mut matched, &[y], &[]);
    let answer = app
        .post(
            BATCH,
            Some(&admin.access),
            &json!({"filter": {"all_of": [x]}, "add": [y], "note": "筛选打标"}),
        )
        .await
        .expect(200);
    assert_eq!(answer.body["matched"], matched.len() as i64);
    assert_eq!(answer.body["added"], added);
    assert_eq!(answer.body["removed"], 0);
    model.extend(matched);
    for (id, tags) in &model {
        let expected: Vec<i64> = tags.iter().copied().collect();
        assert_eq!(app.customer_tag_ids(&admin, *id).await, expected);
    }

    // A filter its own change falls out of: every customer without Y gets Y.
    let without_y = model.values().filter(|t| !t.contains(&y)).count() as i64;
    assert!(without_y > 0);
    let answer = app
        .post(
            BATCH,
            Some(&admin.access),
            &json!({"filter": {"none_of": [y]}, "add": [y]}),
        )
        .await
        .expect(200);
    assert_eq!(answer.body["matched"], without_y);
    assert_eq!(answer.body["added"], without_y);
    let left = app
        .search(&admin, &json!({"none_of": [y]}))
        .await
        .expect(200);
    assert_eq!(left.body["total"], 0);

    // Removing both tags from the X customers.
    let with_x = model.values().filter(|t| t.contains(&x)).count() as i64;
    let answer = app
        .post(
            BATCH,
            Some(&admin.access),
            &json!({"filter": {"all_of": [x]}, "remove": [x, y]}),
        )
        .await
        .expect(200);
    assert_eq!(answer.body["matched"], with_x);
    assert_eq!(answer.body["added"], 0);
    assert_eq!(answer.body["removed"], 2 * with_x);
    let tag = app
        .get(&format!("/api/v1/tags/{x}"), Some(&admin.access))
        .await
        .expect(200);
    assert_eq!(tag.body["customer_count"], 0);
    let tag = app
        .get(&format!("/api/v1/tags/{y}"), Some(&admin.access))
        .await
        .expect(200);
    assert_eq!(tag.body["customer_count"], model.len() as i64 - with_x);

    // A filter that matches nobody is not an error.
    let none = app
        .post(
            BATCH,
            Some(&admin.access),
            &json!({"filter": {"all_of": [x]}, "add": [y]}),
        )
        .await
        .expect(200);
    assert_eq!(none.body["matched"], 0);
    assert_eq!(none.body["added"], 0);
}

#[tokio::test]
async fn one_foreign_unknown_or_deleted_customer_refuses_the_whole_batch() {
    let app = spawn_app().await;
    let admin = app.tenant_admin("Acme").await;
    let group = app.create_group(&admin, "兴趣", false).await;
    let a = app.create_tag(&admin, group, "A").await;
    let first = app.create_tagged_customer(&admin, "甲", &[]).await;
    let second = app.create_tagged_customer(&admin, "乙", &[]).await;
    let gone = app.create_tagged_customer(&admin, "丙", &[]).await;
    app.delete(&format!("/api/v1/customers/{gone}"), Some(&admin.access))
        .await
        .expect(204);
    let globex = app.tenant_admin("Globex").await;
    let foreign = app.create_tagged_customer(&globex, "外人", &[]).await;
    let before = snapshot(&app, &admin, &[first, second]).await;

    for bad in [foreign, gone, 999_999] {
        app.post(
            BATCH,
            Some(&admin.access),
            &json!({"customer_ids": [first, bad, second], "add": [a]}),
        )
        .await
        .expect_field_error("customer_ids[1]", None);
    }
    assert_eq!(snapshot(&app, &admin, &[first, second]).await, before);
    assert!(app.customer_tag_ids(&globex, foreign).await.is_empty());
    let tag = app
        .get(&format!("/api/v1/tags/{a}"), Some(&admin.access))
        .await
        .expect(200);
    assert_eq!(tag.body["customer_count"], 0);
}

#[tokio::test]
async fn an_unknown_or_archived_tag_refuses_the_whole_batch() {
    let app = spawn_app().await;
    let admin = app.tenant_admin("Acme").await;
    let group = app.create_group(&admin, "兴趣", false).await;
    let a = app.create_tag(&admin, group, "A").await;
    let b = app.create_tag(&admin, group, "B").await;
    let archived = app.create_tag(&admin, group, "旧").await;
    app.patch(
        &format!("/api/v1/tags/{archived}"),
        Some(&admin.access),
        &json!({"status": "archived"}),
    )
    .await
    .expect(200);
    let globex = app.tenant_admin("Globex").await;
    let their_group = app.create_group(&globex, "兴趣", false).await;
    let theirs = app.create_tag(&globex, their_group, "外").await;
    let customer = app.create_tagged_customer(&admin, "甲", &[]).await;
    tag(&app, &admin, customer, &[b]).await;
    let before = snapshot(&app, &admin, &[customer]).await;

    let cases = [
        (json!({"add": [a, 999_999]}), "add[1]"),
        (json!({"add": [a, theirs]}), "add[1]"),
        (json!({"add": [a], "remove": [999_999]}), "remove[0]"),
        (json!({"add": [a], "remove": [b, theirs]}), "remove[1]"),
    ];
    let mut mismatches = Vec::new();
    for (mut body, field) in cases {
        body["customer_ids"] = json!([customer]);
        let answer = app.post(BATCH, Some(&admin.access), &body).await;
        if let Some(m) = answer.field_error_mismatch(field, None, false) {
            mismatches.push(format!("{body}: {m}"));
        }
    }
    assert_no_mismatches(&mismatches);
    app.post(
        BATCH,
        Some(&admin.access),
        &json!({"customer_ids": [customer], "add": [a, archived]}),
    )
    .await
    .expect_coded_field_error("add[1]", "tag_archived");
    assert_eq!(snapshot(&app, &admin, &[customer]).await, before);
}

#[tokio::test]
async fn a_batch_needs_exactly_one_of_customer_ids_and_filter_and_something_to_do() {
    let app = spawn_app().await;
    let admin = app.tenant_admin("Acme").await;
    let group = app.create_group(&admin, "兴趣", false).await;
    let a = app.create_tag(&admin, group, "A").await;
    let customer = app.create_tagged_customer(&admin, "甲", &[]).await;

    for body in [
        json!({"add": [a]}),
        json!({"customer_ids": [customer], "filter": {}, "add": [a]}),
        json!({"customer_ids": [customer], "filter": {"all_of": [a]}, "add": [a]}),
    ] {
        let answer = app
            .post(BATCH, Some(&admin.access), &body)
            .await
            .expect_field_error("body", None);
        assert_eq!(answer.error_fields(), vec!["body".to_owned()], "{body}");
    }
    for body in [
        json!({"customer_ids": [customer]}),
        json!({"customer_ids": [customer], "add": [], "remove": []}),
        json!({"filter": {}, "add": []}),
    ] {
        let answer = app
            .post(BATCH, Some(&admin.access), &body)
            .await
            .expect(422);
        assert_eq!(answer.code(), "validation_failed", "{body}");
    }
    assert!(app.customer_tag_ids(&admin, customer).await.is_empty());
}

#[tokio::test]
async fn batches_with_bad_fields_are_refused_and_change_nothing() {
    let app = spawn_app().await;
    let admin = app.tenant_admin("Acme").await;
    let group = app.create_group(&admin, "兴趣", false).await;
    let a = app.create_tag(&admin, group, "A").await;
    let customer = app.create_tagged_customer(&admin, "甲", &[]).await;
    let many_ids: Vec<i64> = (1..=1001).collect();
    let many_tags: Vec<i64> = (1..=21).collect();
    let cases = [
        (json!({"customer_ids": [], "add": [a]}), "customer_ids"),
        (
            json!({"customer_ids": many_ids, "add": [a]}),
            "customer_ids",
        ),
        (json!({"customer_ids": "all", "add": [a]}), "customer_ids"),
        (json!({"customer_ids": [customer], "add": many_tags}), "add"),
        (
            json!({"customer_ids": [customer], "remove": many_tags}),
            "remove",
        ),
        (json!({"customer_ids": [customer], "add": a}), "add"),
        (json!({"customer_ids": [customer], "add": ["a"]}), "add[0]"),
        (
            json!({"customer_ids": [customer], "add": [a], "tag": a}),
            "tag",
        ),
    ];
    let mut mismatches = Vec::new();
    for (body, field) in cases {
        let answer = app.post(BATCH, Some(&admin.access), &body).await;
        if let Some(m) = answer.field_error_mismatch(field, None, true) {
            mismatches.push(format!("{body}: {m}"));
        }
    }
    assert_no_mismatches(&mismatches);
    // An invalid filter is refused too.
    let globex = app.tenant_admin("Globex").await;
    let their_group = app.create_group(&globex, "兴趣", false).await;
    let theirs = app.create_tag(&globex, their_group, "外").await;
    // Field paths name the field within the body, as everywhere: `filter.…`.
    let mut mismatches = Vec::new();
    for (filter, field) in [
        (json!({"all_of": [theirs]}), "filter.all_of[0]"),
        (json!({"all_of": [a], "none_of": [a]}), "filter.none_of[0]"),
        (json!({"created_from": "yesterday"}), "filter.created_from"),
    ] {
        let answer = app
            .post(
                BATCH,
                Some(&admin.access),
                &json!({"filter": filter, "add": [a]}),
            )
            .await;
        if let Some(m) = answer.field_error_mismatch(field, None, false) {
            mismatches.push(format!("{filter}: {m}"));
        }
    }
    assert_no_mismatches(&mismatches);
    assert!(app.customer_tag_ids(&admin, customer).await.is_empty());
    assert!(history(&app, &admin, customer).await.is_empty());
}

#[tokio::test]
async fn sales_reps_batch_tag_only_their_own_customers() {
    let app = spawn_app().await;
    let admin = app.tenant_admin("Acme").await;
    let sales = app.invite_staff(&admin, "o-sales", "sales").await;
    let group = app.create_group(&admin, "兴趣", false).await;
    let a = app.create_tag(&admin, group, "A").await;
    let own = app.create_tagged_customer(&sales, "我的客户", &[]).await;
    let others = app.create_tagged_customer(&admin, "别人的客户", &[]).await;

    app.post(
        BATCH,
        Some(&sales.access),
        &json!({"customer_ids": [own, others], "add": [a]}),
    )
    .await
    .expect_field_error("customer_ids[1]", None);
    assert!(app.customer_tag_ids(&admin, own).await.is_empty());

    let answer = app
        .post(
            BATCH,
            Some(&sales.access),
            &json!({"filter": {}, "add": [a]}),
        )
        .await
        .expect(200);
    assert_eq!(answer.body["matched"], 1);
    assert_eq!(answer.body["added"], 1);
    assert_eq!(app.customer_tag_ids(&admin, own).await, vec![a]);
    assert!(app.customer_tag_ids(&admin, others).await.is_empty());
    let rows = history(&app, &sales, own).await;
    assert_eq!(rows[0]["actor_id"], sales.id);
}
