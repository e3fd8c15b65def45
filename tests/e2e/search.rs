//! Tag-filtered customer lists: each operator, their combinations with the other filters,
//! keyset pagination (also under concurrent inserts) and invalid filters.

use std::collections::HashSet;
use std::time::Duration;

use chrono::{DateTime, SubsecRound, Utc};
use scantag_e2e::{Session, TestApp, assert_no_mismatches, spawn_app};
use serde_json::{Value, json};

/// One customer of the fixture as the test knows it.
#[derive(Debug, Clone)]
struct Known {
    id: i64,
    tags: Vec<i64>,
    owner: i64,
    stage: &'static str,
}

/// Four tags (A, B, C, D of one group) and customers carrying known combinations of them,
/// owned alternately by the admin and a sales rep, at one of three project stages.
struct Fixture {
    admin: Session,
    sales: Session,
    tags: [i64; 4],
    customers: Vec<Known>,
}

const COMBINATIONS: [&[usize]; 12] = [
    &[0],
    &[0, 1],
    &[1],
    &[0, 1, 2],
    &[2],
    &[],
    &[0, 2],
    &[3],
    &[0, 1, 3],
    &[1, 2],
    &[0],
    &[0, 1, 2, 3],
];
const STAGES: [&str; 3] = ["lead", "proposal", "won"];

async fn fixture(app: &TestApp) -> Fixture {
    let admin = app.tenant_admin("Acme").await;
    let sales = app.invite_staff(&admin, "o-sales", "sales").await;
    let group = app.create_group(&admin, "兴趣", false).await;
    let mut tags = [0; 4];
    for (slot, name) in tags.iter_mut().zip(["A", "B", "C", "D"]) {
        *slot = app.create_tag(&admin, group, name).await;
    }
    let mut customers = Vec::new();
    for (i, combination) in COMBINATIONS.iter().enumerate() {
        let tag_ids: Vec<i64> = combination.iter().map(|&t| tags[t]).collect();
        let owner = if i % 2 == 0 { admin.id } else { sales.id };
        let stage = STAGES[i % 3];
        let created = app
            .create_customer(
                &admin,
                &json!({"name": format!("客户{i}"), "tag_ids": tag_ids,
                        "owner_id": owner, "project_stage": stage}),
            )
            .await;
        customers.push(Known {
            id: created["id"].as_i64().unwrap(),
            tags: tag_ids,
            owner,
            stage,
        });
    }
    Fixture {
        admin,
        sales,
        tags,
        customers,
    }
}

impl Fixture {
    /// The ids of the customers `keep` accepts, newest (highest id) first.
    fn expected(&self, keep: impl Fn(&Known) -> bool) -> Vec<i64> {
        let mut ids: Vec<i64> = self
            .customers
            .iter()
            .filter(|c| keep(c))
            .map(|c| c.id)
            .collect();
        ids.sort_unstable_by(|a, b| b.cmp(a));
        ids
    }
}

/// A test of which customers of the fixture a filter should find.
type Predicate<'a> = dyn Fn(&Known) -> bool + 'a;

fn has(c: &Known, tag: i64) -> bool {
    c.tags.contains(&tag)
}

/// Checks a filter against the expected ids: in one page of up to 200, and walked three at a
/// time. The expectation must be a proper, non-empty subset so that the filter is exercised.
async fn assert_finds(
    app: &TestApp,
    session: &Session,
    filter: Value,
    expected: &[i64],
    of: usize,
) {
    assert!(
        !expected.is_empty() && expected.len() < of,
        "fixture check for {filter}: {expected:?}"
    );
    assert_finds_exactly(app, session, filter, expected).await;
}

async fn assert_finds_exactly(app: &TestApp, session: &Session, filter: Value, expected: &[i64]) {
    let mut one_page = filter.clone();
    one_page["limit"] = json!(200);
    let page = app.search(session, &one_page).await.expect(200);
    assert_eq!(page.item_ids(), expected, "{filter}");
    assert_eq!(page.body["total"], expected.len() as i64, "{filter}");
    assert!(page.body["next_cursor"].is_null(), "{filter}");
    let (walked, total) = app.search_all(session, &filter, 3).await;
    assert_eq!(walked, expected, "{filter} walked 3 at a time");
    assert_eq!(total, expected.len() as i64, "{filter} walked 3 at a time");
}

#[tokio::test]
async fn all_of_matches_customers_carrying_every_tag() {
    let app = spawn_app().await;
    let f = fixture(&app).await;
    let [a, b, c, _] = f.tags;
    let n = f.customers.len();
    assert_finds(
        &app,
        &f.admin,
        json!({"all_of": [a]}),
        &f.expected(|k| has(k, a)),
        n,
    )
    .await;
    assert_finds(
        &app,
        &f.admin,
        json!({"all_of": [a, b]}),
        &f.expected(|k| has(k, a) && has(k, b)),
        n,
    )
    .await;
    assert_finds(
        &app,
        &f.admin,
        json!({"all_of": [a, b, c]}),
        &f.expected(|k| has(k, a) && has(k, b) && has(k, c)),
        n,
    )
    .await;
}

#[tokio::test]
async fn any_of_matches_customers_carrying_at_least_one_tag() {
    let app = spawn_app().await;
    let f = fixture(&app).await;
    let [_, b, c, d] = f.tags;
    let n = f.customers.len();
    assert_finds(
        &app,
        &f.admin,
        json!({"any_of": [d]}),
        &f.expected(|k| has(k, d)),
        n,
    )
    .await;
    assert_finds(
        &app,
        &f.admin,
        json!({"any_of": [b, c]}),
        &f.expected(|k| has(k, b) || has(k, c)),
        n,
    )
    .await;
    assert_finds(
        &app,
        &f.admin,
        json!({"any_of": [c, d, b]}),
        &f.expected(|k| has(k, b) || has(k, c) || has(k, d)),
        n,
    )
    .await;
}

#[tokio::test]
async fn none_of_excludes_customers_carrying_any_of_the_tags() {
    let app = spawn_app().await;
    let f = fixture(&app).await;
    let [a, b, _, d] = f.tags;
    let n = f.customers.len();
    assert_finds(
        &app,
        &f.admin,
        json!({"none_of": [a]}),
        &f.expected(|k| !has(k, a)),
        n,
    )
    .await;
    assert_finds(
        &app,
        &f.admin,
        json!({"none_of": [a, b]}),
        &f.expected(|k| !has(k, a) && !has(k, b)),
        n,
    )
    .await;
    assert_finds(
        &app,
        &f.admin,
        json!({"none_of": [d]}),
        &f.expected(|k| !has(k, d)),
        n,
    )
    .await;
}

#[tokio::test]
async fn all_three_operators_combine_as_a_conjunction() {
    let app = spawn_app().await;
    let f = fixture(&app).await;
    let [a, b, c, d] = f.tags;
    let n = f.customers.len();
    assert_finds(
        &app,
        &f.admin,
        json!({"all_of": [a], "any_of": [b, d], "none_of": [c]}),
        &f.expected(|k| has(k, a) && (has(k, b) || has(k, d)) && !has(k, c)),
        n,
    )
    .await;
    assert_finds(
        &app,
        &f.admin,
        json!({"all_of": [b], "any_of": [a, c], "none_of": [d]}),
        &f.expected(|k| has(k, b) && (has(k, a) || has(k, c)) && !has(k, d)),
        n,
    )
    .await;
}

#[tokio::test]
async fn a_filter_matching_nothing_is_an_empty_page_with_total_zero() {
    let app = spawn_app().await;
    let f = fixture(&app).await;
    let [a, b, c, d] = f.tags;
    let cases: [(Value, &Predicate<'_>); 4] = [
        (json!({"all_of": [a, d], "none_of": [b]}), &|k| {
            has(k, a) && has(k, d) && !has(k, b)
        }),
        (
            json!({"all_of": [c], "any_of": [d], "none_of": [a]}),
            &|k| has(k, c) && has(k, d) && !has(k, a),
        ),
        (
            json!({"any_of": [d], "project_stage": "没有这个阶段"}),
            &|_| false,
        ),
        // No customer of the fixture came through a channel.
        (json!({"source_channel_id": 1}), &|_| false),
    ];
    for (filter, keep) in cases {
        assert!(f.expected(keep).is_empty(), "fixture check for {filter}");
        let page = app.search(&f.admin, &filter).await.expect(200);
        assert_eq!(page.body["total"], 0, "{filter}: {}", page.text);
        assert_eq!(page.body["items"], json!([]));
        assert!(page.body["next_cursor"].is_null());
    }
}

#[tokio::test]
async fn an_empty_filter_lists_every_live_customer_newest_first() {
    let app = spawn_app().await;
    let f = fixture(&app).await;
    let gone = f.customers[3].id;
    app.delete(&format!("/api/v1/customers/{gone}"), Some(&f.admin.access))
        .await
        .expect(204);
    let expected = f.expected(|k| k.id != gone);
    assert_finds_exactly(&app, &f.admin, json!({}), &expected).await;
    let default_page = app.search(&f.admin, &json!({})).await.expect(200);
    assert_eq!(default_page.item_ids(), expected, "the default limit is 50");
}

#[tokio::test]
async fn tag_operators_combine_with_owner_and_project_stage() {
    let app = spawn_app().await;
    let f = fixture(&app).await;
    let [a, b, _, d] = f.tags;
    let n = f.customers.len();
    let sales = f.sales.id;
    assert_finds(
        &app,
        &f.admin,
        json!({"owner_id": sales}),
        &f.expected(|k| k.owner == sales),
        n,
    )
    .await;
    assert_finds(
        &app,
        &f.admin,
        json!({"all_of": [a], "owner_id": sales}),
        &f.expected(|k| has(k, a) && k.owner == sales),
        n,
    )
    .await;
    assert_finds(
        &app,
        &f.admin,
        json!({"any_of": [b, d], "project_stage": "lead"}),
        &f.expected(|k| (has(k, b) || has(k, d)) && k.stage == "lead"),
        n,
    )
    .await;
    assert_finds(
        &app,
        &f.admin,
        json!({"none_of": [a], "project_stage": "proposal", "owner_id": sales}),
        &f.expected(|k| !has(k, a) && k.stage == "proposal" && k.owner == sales),
        n,
    )
    .await;
}

/// The start of the second of `at`, minus half a second: a bound strictly between anything
/// created two seconds before `at` and anything created from `at` on, whether the database
/// keeps, truncates or rounds fractional seconds.
fn bound_before(at: &Value) -> String {
    let at: DateTime<Utc> = at.as_str().unwrap().parse().unwrap();
    (at.trunc_subsecs(0) - chrono::Duration::milliseconds(500))
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

#[tokio::test]
async fn created_and_updated_ranges_bound_the_results() {
    let app = spawn_app().await;
    let admin = app.tenant_admin("Acme").await;
    let group = app.create_group(&admin, "兴趣", false).await;
    let tag = app.create_tag(&admin, group, "A").await;
    let mut early = Vec::new();
    for i in 0..3 {
        early.push(
            app.create_customer(
                &admin,
                &json!({"name": format!("早{i}"), "tag_ids": if i == 0 { vec![tag] } else { vec![] }}),
            )
            .await,
        );
    }
    tokio::time::sleep(Duration::from_millis(2_100)).await;
    let mut late = Vec::new();
    for i in 0..3 {
        late.push(
            app.create_customer(
                &admin,
                &json!({"name": format!("晚{i}"), "tag_ids": if i == 0 { vec![tag] } else { vec![] }}),
            )
            .await,
        );
    }
    let ids_desc = |list: &[&Value]| -> Vec<i64> {
        let mut ids: Vec<i64> = list.iter().map(|c| c["id"].as_i64().unwrap()).collect();
        ids.sort_unstable_by(|a, b| b.cmp(a));
        ids
    };
    let early_ids = ids_desc(&early.iter().collect::<Vec<_>>());
    let late_ids = ids_desc(&late.iter().collect::<Vec<_>>());
    let split = bound_before(&late[0]["created_at"]);
    let long_ago = "2000-01-01T00:00:00Z";

    assert_finds_exactly(&app, &admin, json!({"created_from": split}), &late_ids).await;
    assert_finds_exactly(&app, &admin, json!({"created_to": split}), &early_ids).await;
    assert_finds_exactly(
        &app,
        &admin,
        json!({"created_from": long_ago, "created_to": split}),
        &early_ids,
    )
    .await;
    assert_finds_exactly(
        &app,
        &admin,
        json!({"created_from": split, "all_of": [tag]}),
        &[late[0]["id"].as_i64().unwrap()],
    )
    .await;
    let far_future = "2999-01-01T00:00:00+08:00";
    assert_finds_exactly(&app, &admin, json!({"created_from": far_future}), &[]).await;

    // Updated ranges: only the customer changed after the pause is recent.
    tokio::time::sleep(Duration::from_millis(2_100)).await;
    let touched = early[1]["id"].as_i64().unwrap();
    let updated = app
        .patch(
            &format!("/api/v1/customers/{touched}"),
            Some(&admin.access),
            &json!({"project_stage": "won"}),
        )
        .await
        .expect(200);
    let recent = bound_before(&updated.body["updated_at"]);
    assert_finds_exactly(&app, &admin, json!({"updated_from": recent}), &[touched]).await;
    let mut rest: Vec<i64> = early_ids
        .iter()
        .chain(late_ids.iter())
        .copied()
        .filter(|id| *id != touched)
        .collect();
    rest.sort_unstable_by(|a, b| b.cmp(a));
    assert_finds_exactly(&app, &admin, json!({"updated_to": recent}), &rest).await;

    app.search(
        &admin,
        &json!({"created_from": split, "created_to": long_ago}),
    )
    .await
    .expect_field_error("created_from", Some("range"));
}

/// A customer of the custom-field filter test.
#[derive(Debug, Clone)]
struct Row {
    id: i64,
    city: Option<&'static str>,
    level: Option<&'static str>,
    interests: &'static [&'static str],
    tagged: bool,
}

impl Row {
    fn new(
        city: Option<&'static str>,
        level: Option<&'static str>,
        interests: &'static [&'static str],
        tagged: bool,
    ) -> Row {
        Row {
            id: 0,
            city,
            level,
            interests,
            tagged,
        }
    }
}

#[tokio::test]
async fn custom_field_equality_filters_and_multi_select_contains() {
    let app = spawn_app().await;
    let admin = app.tenant_admin("Acme").await;
    for body in [
        json!({"key": "city", "label": "城市", "field_type": "text"}),
        json!({"key": "level", "label": "等级", "field_type": "single_select", "options": ["gold", "silver"]}),
        json!({"key": "interests", "label": "兴趣", "field_type": "multi_select", "options": ["golf", "tea", "wine"]}),
    ] {
        app.post("/api/v1/custom-fields", Some(&admin.access), &body)
            .await
            .expect(201);
    }
    let group = app.create_group(&admin, "兴趣", false).await;
    let tag = app.create_tag(&admin, group, "A").await;
    let rows = [
        Row::new(Some("上海"), Some("gold"), &["golf", "tea"], true),
        Row::new(Some("北京"), Some("gold"), &["tea"], false),
        Row::new(Some("上海"), Some("silver"), &["wine"], true),
        Row::new(None, None, &[], false),
        Row::new(Some("上海市"), Some("silver"), &["tea", "wine"], false),
        Row::new(Some("北京"), None, &["golf"], true),
    ];
    let mut known = Vec::new();
    for (i, row) in rows.iter().enumerate() {
        let mut fields = json!({});
        if let Some(city) = row.city {
            fields["city"] = json!(city);
        }
        if let Some(level) = row.level {
            fields["level"] = json!(level);
        }
        if !row.interests.is_empty() {
            fields["interests"] = json!(row.interests);
        }
        let tag_ids = if row.tagged { vec![tag] } else { vec![] };
        let id = app
            .create_customer(
                &admin,
                &json!({"name": format!("客户{i}"), "custom_fields": fields, "tag_ids": tag_ids}),
            )
            .await["id"]
            .as_i64()
            .unwrap();
        known.push(Row { id, ..row.clone() });
    }
    let expected = |keep: &dyn Fn(&Row) -> bool| {
        let mut ids: Vec<i64> = known.iter().filter(|k| keep(k)).map(|k| k.id).collect();
        ids.sort_unstable_by(|a, b| b.cmp(a));
        assert!(!ids.is_empty() && ids.len() < known.len());
        ids
    };

    let cases: Vec<(Value, Vec<i64>)> = vec![
        (
            json!({"custom_fields": {"city": "上海"}}),
            expected(&|k| k.city == Some("上海")),
        ),
        (
            json!({"custom_fields": {"level": "gold"}}),
            expected(&|k| k.level == Some("gold")),
        ),
        (
            json!({"custom_fields": {"interests": "tea"}}),
            expected(&|k| k.interests.contains(&"tea")),
        ),
        (
            json!({"custom_fields": {"city": "上海", "level": "silver"}}),
            expected(&|k| k.city == Some("上海") && k.level == Some("silver")),
        ),
        (
            json!({"custom_fields": {"interests": "golf"}, "all_of": [tag]}),
            expected(&|k| k.interests.contains(&"golf") && k.tagged),
        ),
        (
            json!({"custom_fields": {"city": "北京"}, "none_of": [tag]}),
            expected(&|k| k.city == Some("北京") && !k.tagged),
        ),
    ];
    for (filter, ids) in cases {
        assert_finds_exactly(&app, &admin, filter, &ids).await;
    }
    app.search(&admin, &json!({"custom_fields": {"nokey": "x"}}))
        .await
        .expect_field_error("custom_fields.nokey", None);
}

#[tokio::test]
async fn keyword_matches_name_or_company_substring_and_phone_suffix() {
    let app = spawn_app().await;
    let admin = app.tenant_admin("Acme").await;
    let group = app.create_group(&admin, "兴趣", false).await;
    let tag = app.create_tag(&admin, group, "A").await;
    // (name, company, phone, tagged)
    let rows: [(&str, Option<&str>, Option<&str>, bool); 7] = [
        ("张三丰", Some("武当科技"), Some("13800138000"), true),
        ("李四", Some("三一重工"), Some("13900139001"), false),
        ("王五", None, Some("13700130013"), true),
        ("折扣50%客户", None, None, false),
        ("500强企业", Some("Acme"), None, true),
        ("赵六", Some("Acme Trading"), Some("13600136666"), false),
        ("钱七", Some("七星_贸易"), None, false),
    ];
    let mut known = Vec::new();
    for (name, company, phone, tagged) in rows {
        let tag_ids = if tagged { vec![tag] } else { vec![] };
        let id = app
            .create_customer(
                &admin,
                &json!({"name": name, "company": company, "phone": phone, "tag_ids": tag_ids}),
            )
            .await["id"]
            .as_i64()
            .unwrap();
        known.push((id, name, company, phone, tagged));
    }
    let matches = |keyword: &str, tagged_only: bool| -> Vec<i64> {
        let digits = keyword.chars().all(|c| c.is_ascii_digit());
        let mut ids: Vec<i64> = known
            .iter()
            .filter(|(_, name, company, phone, tagged)| {
                (name.contains(keyword)
                    || company.is_some_and(|c| c.contains(keyword))
                    || (digits && phone.is_some_and(|p| p.ends_with(keyword))))
                    && (!tagged_only || *tagged)
            })
            .map(|k| k.0)
            .collect();
        ids.sort_unstable_by(|a, b| b.cmp(a));
        ids
    };

    for keyword in [
        "三",
        "8000",
        "0013",
        "13800138000",
        "Acme",
        "50%",
        "Trading",
        "_",
        "%",
        "丰",
    ] {
        let expected = matches(keyword, false);
        assert_finds_exactly(&app, &admin, json!({"keyword": keyword}), &expected).await;
    }
    // The fixture makes the cases above mean something.
    assert_eq!(
        matches("0013", false).len(),
        1,
        "a suffix, not any substring"
    );
    assert_eq!(
        matches("50%", false).len(),
        1,
        "% is a character, not a wildcard"
    );
    assert_eq!(matches("%", false).len(), 1);
    assert_eq!(
        matches("_", false).len(),
        1,
        "_ is a character, not a wildcard"
    );
    assert_eq!(matches("三", false).len(), 2, "name or company");

    for keyword in ["三", "Acme", "0013"] {
        let expected = matches(keyword, true);
        assert_finds_exactly(
            &app,
            &admin,
            json!({"keyword": keyword, "all_of": [tag]}),
            &expected,
        )
        .await;
    }
}

#[tokio::test]
async fn walking_every_page_sees_each_customer_once_in_descending_id_order() {
    let app = spawn_app().await;
    let admin = app.tenant_admin("Acme").await;
    let group = app.create_group(&admin, "兴趣", false).await;
    let tag = app.create_tag(&admin, group, "A").await;
    let mut expected = Vec::new();
    for i in 0..45 {
        // Every ninth customer is untagged, so the filter has something to skip.
        let tags = if i % 9 == 4 { vec![] } else { vec![tag] };
        let id = app
            .create_tagged_customer(&admin, &format!("客户{i}"), &tags)
            .await;
        if !tags.is_empty() {
            expected.push(id);
        }
    }
    expected.sort_unstable_by(|a, b| b.cmp(a));
    assert_eq!(expected.len(), 40);

    let mut pages = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        assert!(pages.len() < 20, "the walk ends");
        let mut body = json!({"all_of": [tag], "limit": 7});
        if let Some(cursor) = &cursor {
            body["cursor"] = json!(cursor);
        }
        let page = app.search(&admin, &body).await.expect(200);
        assert_eq!(page.body["total"], 40, "total ignores the cursor");
        let ids = page.item_ids();
        let next = page.body["next_cursor"].as_str().map(str::to_owned);
        pages.push(ids);
        match next {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    let sizes: Vec<usize> = pages.iter().map(Vec::len).collect();
    assert_eq!(sizes, vec![7, 7, 7, 7, 7, 5]);
    let walked: Vec<i64> = pages.concat();
    assert!(
        walked.windows(2).all(|w| w[0] > w[1]),
        "ids strictly descending, hence no repeats: {walked:?}"
    );
    assert_eq!(walked, expected, "no gaps");

    // The whole list in pages of another size agrees.
    let (by_ten, total) = app.search_all(&admin, &json!({"all_of": [tag]}), 10).await;
    assert_eq!(by_ten, expected);
    assert_eq!(total, 40);
}

#[tokio::test]
async fn pages_stay_consistent_while_customers_are_added_concurrently() {
    let app = spawn_app().await;
    let admin = app.tenant_admin("Acme").await;
    let group = app.create_group(&admin, "兴趣", false).await;
    let tag = app.create_tag(&admin, group, "A").await;
    let mut before = HashSet::new();
    for i in 0..30 {
        before.insert(
            app.create_tagged_customer(&admin, &format!("老客户{i}"), &[tag])
                .await,
        );
    }

    // A writer adds customers with the same tag, as fast as it can, until the walk is over
    // (at most 200 of them); it reports each id it created.
    let (sent, mut created) = tokio::sync::mpsc::unbounded_channel::<i64>();
    let client = app.client.clone();
    let url = app.url("/api/v1/customers");
    let token = admin.access.clone();
    let writer = tokio::spawn(async move {
        for i in 0..200 {
            let res = client
                .post(&url)
                .bearer_auth(&token)
                .json(&json!({"name": format!("新客户{i}"), "tag_ids": [tag]}))
                .send()
                .await
                .unwrap();
            let status = res.status().as_u16();
            let body: Value = res.json().await.unwrap();
            assert_eq!(status, 201, "{body}");
            if sent.send(body["id"].as_i64().unwrap()).is_err() {
                break;
            }
        }
    });

    let mut written = HashSet::new();
    let mut walked = Vec::new();
    let mut cursor: Option<String> = None;
    let mut pages = 0;
    loop {
        pages += 1;
        assert!(pages <= 100, "the walk ends");
        // Each page is read after at least one more customer was written (while the writer
        // has any left to write).
        if let Some(id) = created.recv().await {
            written.insert(id);
        }
        let mut body = json!({"all_of": [tag], "limit": 4});
        if let Some(cursor) = &cursor {
            body["cursor"] = json!(cursor);
        }
        let page = app.search(&admin, &body).await.expect(200);
        assert!(page.body["total"].as_i64().unwrap() >= 30);
        let ids = page.item_ids();
        assert!(ids.len() <= 4);
        walked.extend(ids);
        match page.body["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => break,
        }
    }
    drop(created);
    writer.await.unwrap();

    assert!(
        walked.windows(2).all(|w| w[0] > w[1]),
        "ids strictly descending across pages, hence no repeats: {walked:?}"
    );
    let seen: HashSet<i64> = walked.iter().copied().collect();
    let missing: Vec<_> = before.difference(&seen).collect();
    assert!(
        missing.is_empty(),
        "customers missed by the walk: {missing:?}"
    );

    // Once the writer has stopped, a walk finds every customer exactly once.
    let (all, total) = app.search_all(&admin, &json!({"all_of": [tag]}), 50).await;
    let all_set: HashSet<i64> = all.iter().copied().collect();
    assert_eq!(all_set.len(), all.len(), "no repeats");
    assert!(before.is_subset(&all_set));
    assert!(written.is_subset(&all_set));
    assert!(!written.is_empty(), "the writer ran during the walk");
    assert_eq!(total, all.len() as i64);
    assert!(seen.is_subset(&all_set), "the walk saw only real customers");
}

#[tokio::test]
async fn invalid_filters_are_refused_with_field_errors() {
    let app = spawn_app().await;
    let admin = app.tenant_admin("Acme").await;
    let group = app.create_group(&admin, "兴趣", false).await;
    let a = app.create_tag(&admin, group, "A").await;
    let b = app.create_tag(&admin, group, "B").await;
    app.create_tagged_customer(&admin, "张三", &[a]).await;
    let many: Vec<i64> = (0..21).map(|_| a).collect();
    let cases: Vec<(Value, &str, Option<&str>)> = vec![
        (json!({"limit": 0}), "limit", None),
        (json!({"limit": 201}), "limit", None),
        (json!({"limit": -1}), "limit", None),
        (json!({"limit": "10"}), "limit", None),
        (
            json!({"cursor": "garbage"}),
            "cursor",
            Some("invalid_cursor"),
        ),
        (json!({"cursor": ""}), "cursor", None),
        (json!({"all_of": many}), "all_of", Some("length")),
        (json!({"any_of": many}), "any_of", Some("length")),
        (json!({"none_of": many}), "none_of", Some("length")),
        (
            json!({"all_of": [999_999]}),
            "all_of[0]",
            Some("unknown_tag"),
        ),
        (
            json!({"any_of": [a, 999_999]}),
            "any_of[1]",
            Some("unknown_tag"),
        ),
        (
            json!({"none_of": [b, 999_999]}),
            "none_of[1]",
            Some("unknown_tag"),
        ),
        (
            json!({"all_of": [a, b], "none_of": [b]}),
            "none_of[0]",
            Some("contradictory"),
        ),
        (
            json!({"created_from": "2025-02-01T00:00:00Z", "created_to": "2025-01-01T00:00:00Z"}),
            "created_from",
            Some("range"),
        ),
        (json!({"created_from": "yesterday"}), "created_from", None),
        (
            json!({"updated_to": "2025-13-01T00:00:00Z"}),
            "updated_to",
            None,
        ),
        (json!({"keyword": ""}), "keyword", None),
        (json!({"keyword": "k".repeat(65)}), "keyword", None),
        (
            json!({"custom_fields": {"nokey": "x"}}),
            "custom_fields.nokey",
            None,
        ),
        (json!({"all_of": ["a"]}), "all_of[0]", None),
        (json!({"owner_id": "me"}), "owner_id", None),
        (json!({"tags": [a]}), "tags", None),
    ];
    let mut mismatches = Vec::new();
    for (body, field, code) in cases {
        let answer = app.search(&admin, &body).await;
        if let Some(m) = answer.field_error_mismatch(field, code, false) {
            mismatches.push(format!("{body}: {m}"));
        }
    }
    assert_no_mismatches(&mismatches);
    let unchanged = app.search(&admin, &json!({})).await.expect(200);
    assert_eq!(unchanged.body["total"], 1, "nothing was written");
}

#[tokio::test]
async fn a_keyword_of_64_characters_is_accepted_and_limit_bounds_the_page() {
    let app = spawn_app().await;
    let admin = app.tenant_admin("Acme").await;
    let name = "名".repeat(64);
    let id = app.create_customer(&admin, &json!({"name": name})).await["id"]
        .as_i64()
        .unwrap();
    app.create_customer(&admin, &json!({"name": "别人"})).await;
    let found = app
        .search(&admin, &json!({"keyword": name}))
        .await
        .expect(200);
    assert_eq!(found.item_ids(), vec![id]);
    let limits = app.search(&admin, &json!({"limit": 200})).await.expect(200);
    assert_eq!(limits.body["total"], 2);
    let one = app.search(&admin, &json!({"limit": 1})).await.expect(200);
    assert_eq!(one.item_ids().len(), 1);
    assert!(one.body["next_cursor"].is_string());
}

#[tokio::test]
async fn a_keyword_of_one_or_two_digits_matches_phone_suffixes_too() {
    let app = spawn_app().await;
    let admin = app.tenant_admin("Acme").await;
    let mut known = Vec::new();
    for (name, phone) in [
        ("张三", "13800138000"),
        ("李四", "13900139001"),
        ("王五", "13600136666"),
    ] {
        let id = app
            .create_customer(&admin, &json!({"name": name, "phone": phone}))
            .await["id"]
            .as_i64()
            .unwrap();
        known.push((id, phone));
    }
    let mut mismatches = Vec::new();
    for keyword in ["00", "1", "66", "6"] {
        let mut expected: Vec<i64> = known
            .iter()
            .filter(|(_, phone)| phone.ends_with(keyword))
            .map(|(id, _)| *id)
            .collect();
        expected.sort_unstable_by(|a, b| b.cmp(a));
        assert_eq!(expected.len(), 1, "fixture check for {keyword}");
        let page = app
            .search(&admin, &json!({"keyword": keyword}))
            .await
            .expect(200);
        if page.item_ids() != expected {
            mismatches.push(format!(
                "keyword {keyword:?}: expected {expected:?}, got {:?}",
                page.item_ids()
            ));
        }
    }
    assert_no_mismatches(&mismatches);
}

#[tokio::test]
async fn number_and_date_custom_fields_filter_by_equal_value() {
    let app = spawn_app().await;
    let admin = app.tenant_admin("Acme").await;
    for body in [
        json!({"key": "budget", "label": "预算", "field_type": "number"}),
        json!({"key": "signed_on", "label": "签约日", "field_type": "date"}),
    ] {
        app.post("/api/v1/custom-fields", Some(&admin.access), &body)
            .await
            .expect(201);
    }
    let rows = [
        (Some(json!(3)), Some("2024-02-29")),
        (Some(json!(12.5)), Some("2024-03-01")),
        (Some(json!(30)), None),
        (None, Some("2024-02-29")),
    ];
    let mut known = Vec::new();
    for (i, (budget, signed_on)) in rows.iter().enumerate() {
        let mut fields = json!({});
        if let Some(budget) = budget {
            fields["budget"] = budget.clone();
        }
        if let Some(signed_on) = signed_on {
            fields["signed_on"] = json!(signed_on);
        }
        let id = app
            .create_customer(
                &admin,
                &json!({"name": format!("客户{i}"), "custom_fields": fields}),
            )
            .await["id"]
            .as_i64()
            .unwrap();
        known.push((id, budget.as_ref().and_then(|b| b.as_f64()), *signed_on));
    }
    let expected = |keep: &dyn Fn(Option<f64>, Option<&str>) -> bool| -> Vec<i64> {
        let mut ids: Vec<i64> = known
            .iter()
            .filter(|(_, b, d)| keep(*b, *d))
            .map(|(id, _, _)| *id)
            .collect();
        ids.sort_unstable_by(|a, b| b.cmp(a));
        assert!(!ids.is_empty());
        ids
    };
    let cases = [
        (json!({"budget": 3}), expected(&|b, _| b == Some(3.0))),
        (json!({"budget": 12.5}), expected(&|b, _| b == Some(12.5))),
        (json!({"budget": 3.0}), expected(&|b, _| b == Some(3.0))),
        (
            json!({"signed_on": "2024-02-29"}),
            expected(&|_, d| d == Some("2024-02-29")),
        ),
        (
            json!({"budget": 3, "signed_on": "2024-02-29"}),
            expected(&|b, d| b == Some(3.0) && d == Some("2024-02-29")),
        ),
    ];
    let mut mismatches = Vec::new();
    for (fields, ids) in cases {
        let page = app.search(&admin, &json!({"custom_fields": fields})).await;
        if page.status.as_u16() != 200 || page.item_ids() != ids {
            mismatches.push(format!(
                "{fields}: expected {ids:?}, got {} {}",
                page.status, page.text
            ));
        }
    }
    assert_no_mismatches(&mismatches);
}

#[tokio::test]
async fn without_a_limit_a_page_holds_fifty_customers() {
    let app = spawn_app().await;
    let admin = app.tenant_admin("Acme").await;
    let mut ids = Vec::new();
    for i in 0..51 {
        ids.push(
            app.create_tagged_customer(&admin, &format!("客户{i}"), &[])
                .await,
        );
    }
    ids.reverse();
    let first = app.search(&admin, &json!({})).await.expect(200);
    assert_eq!(first.item_ids(), ids[..50].to_vec());
    assert_eq!(first.body["total"], 51);
    let cursor = first.body["next_cursor"].as_str().unwrap().to_owned();
    let second = app
        .search(&admin, &json!({"cursor": cursor}))
        .await
        .expect(200);
    assert_eq!(second.item_ids(), ids[50..].to_vec());
    assert!(second.body["next_cursor"].is_null());
}
