//! The bitmap search index: answers equal a brute-force answer over a random population for
//! every operator and combination, before and after writes; SQL answers while an index builds;
//! writes through one process are seen by the next list through another; tenants never see
//! each other; pages have no gaps or repeats while writes happen; tag counts are scoped.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use scantag_e2e::{Answer, Session, TestApp, spawn_app, spawn_app_with, spawn_beside};
use serde_json::{Value, json};

/// A small deterministic generator (xorshift64*), so a failure can be replayed.
struct Dice(u64);

impl Dice {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }
    /// Up to `max` distinct items of `from`.
    fn some<T: Copy + PartialEq>(&mut self, from: &[T], max: usize) -> Vec<T> {
        let mut out = Vec::new();
        for _ in 0..self.below(max + 1) {
            let item = from[self.below(from.len())];
            if !out.contains(&item) {
                out.push(item);
            }
        }
        out
    }
}

/// One customer as the test made it.
#[derive(Debug, Clone)]
struct Person {
    id: i64,
    name: String,
    tags: HashSet<i64>,
    owner: Option<i64>,
    stage: Option<&'static str>,
    level: Option<&'static str>,
    interests: Vec<&'static str>,
    city: Option<&'static str>,
    deleted: bool,
}

const STAGES: [&str; 3] = ["lead", "proposal", "won"];
const LEVELS: [&str; 3] = ["gold", "silver", "bronze"];
const INTERESTS: [&str; 3] = ["golf", "tea", "wine"];
const CITIES: [&str; 2] = ["上海", "北京"];

/// A random population of one tenant: an admin, two sales reps, eight tags in two groups,
/// custom fields of every kind the filters use.
struct Population {
    admin: Session,
    reps: [Session; 2],
    tags: Vec<i64>,
    people: Vec<Person>,
}

async fn populate(app: &TestApp, dice: &mut Dice, tenant: &str, size: usize) -> Population {
    let admin = app.tenant_admin(tenant).await;
    let reps = [
        app.invite_staff(&admin, &format!("{tenant}-rep1"), "sales")
            .await,
        app.invite_staff(&admin, &format!("{tenant}-rep2"), "sales")
            .await,
    ];
    for field in [
        json!({"key": "level", "label": "等级", "field_type": "single_select", "options": LEVELS}),
        json!({"key": "interests", "label": "兴趣", "field_type": "multi_select", "options": INTERESTS}),
        json!({"key": "city", "label": "城市", "field_type": "text"}),
    ] {
        app.post("/api/v1/custom-fields", Some(&admin.access), &field)
            .await
            .expect(201);
    }
    let mut tags = Vec::new();
    for group in ["兴趣", "阶段"] {
        let group_id = app.create_group(&admin, group, false).await;
        for i in 0..4 {
            tags.push(
                app.create_tag(&admin, group_id, &format!("{group}{i}"))
                    .await,
            );
        }
    }
    let owners = [Some(admin.id), Some(reps[0].id), Some(reps[1].id), None];
    let mut people = Vec::new();
    for i in 0..size {
        let person = Person {
            id: 0,
            name: format!("{tenant}客户{i}"),
            // Skewed: the first tags are common, the last rare.
            tags: tags
                .iter()
                .enumerate()
                .filter(|(t, _)| dice.chance(60 / (*t as u64 + 1)))
                .map(|(_, id)| *id)
                .collect(),
            owner: owners[dice.below(owners.len())],
            stage: dice.chance(80).then(|| STAGES[dice.below(3)]),
            level: dice.chance(70).then(|| LEVELS[dice.below(3)]),
            interests: dice.some(&INTERESTS, 2),
            city: dice.chance(50).then(|| CITIES[dice.below(2)]),
            deleted: false,
        };
        let id = app.create_customer(&admin, &body_of(&person)).await["id"]
            .as_i64()
            .unwrap();
        people.push(Person { id, ..person });
    }
    Population {
        admin,
        reps,
        tags,
        people,
    }
}

fn body_of(p: &Person) -> Value {
    let mut fields = json!({});
    if let Some(level) = p.level {
        fields["level"] = json!(level);
    }
    if !p.interests.is_empty() {
        fields["interests"] = json!(p.interests);
    }
    if let Some(city) = p.city {
        fields["city"] = json!(city);
    }
    let mut body = json!({"name": p.name, "tag_ids": p.tags.iter().collect::<Vec<_>>(),
                          "custom_fields": fields});
    if let Some(owner) = p.owner {
        body["owner_id"] = json!(owner);
    }
    if let Some(stage) = p.stage {
        body["project_stage"] = json!(stage);
    }
    body
}

/// A random filter over the population's tags, owners and fields.
fn random_filter(dice: &mut Dice, pop: &Population) -> Value {
    let all_of = dice.some(&pop.tags, 2);
    let any_of = dice.some(&pop.tags, 2);
    let none_of: Vec<i64> = dice
        .some(&pop.tags, 2)
        .into_iter()
        .filter(|t| !all_of.contains(t) && !any_of.contains(t))
        .collect();
    let mut filter = json!({"all_of": all_of, "any_of": any_of, "none_of": none_of});
    if dice.chance(25) {
        let owners = [pop.admin.id, pop.reps[0].id, pop.reps[1].id];
        filter["owner_id"] = json!(owners[dice.below(3)]);
    }
    if dice.chance(25) {
        filter["project_stage"] = json!(STAGES[dice.below(3)]);
    }
    let mut fields = json!({});
    if dice.chance(20) {
        fields["level"] = json!(LEVELS[dice.below(3)]);
    }
    if dice.chance(20) {
        fields["interests"] = json!(INTERESTS[dice.below(3)]);
    }
    if dice.chance(15) {
        fields["city"] = json!(CITIES[dice.below(2)]);
    }
    if fields.as_object().is_some_and(|f| !f.is_empty()) {
        filter["custom_fields"] = fields;
    }
    if dice.chance(15) {
        // Names end in their number: a digit matches about a tenth of them.
        filter["keyword"] = json!(format!("客户{}", dice.below(10)));
    }
    filter
}

/// The ids (newest first) a filter must find among `people`, as `viewer` sees them.
fn brute_force(people: &[Person], filter: &Value, viewer: Option<i64>) -> Vec<i64> {
    let ids = |key: &str| -> Vec<i64> {
        filter[key]
            .as_array()
            .map(|a| a.iter().filter_map(Value::as_i64).collect())
            .unwrap_or_default()
    };
    let (all_of, any_of, none_of) = (ids("all_of"), ids("any_of"), ids("none_of"));
    let fields = &filter["custom_fields"];
    let mut found: Vec<i64> = people
        .iter()
        .filter(|p| !p.deleted)
        .filter(|p| viewer.is_none() || p.owner == viewer)
        .filter(|p| all_of.iter().all(|t| p.tags.contains(t)))
        .filter(|p| any_of.is_empty() || any_of.iter().any(|t| p.tags.contains(t)))
        .filter(|p| !none_of.iter().any(|t| p.tags.contains(t)))
        .filter(|p| {
            filter["owner_id"]
                .as_i64()
                .is_none_or(|o| p.owner == Some(o))
        })
        .filter(|p| {
            filter["project_stage"]
                .as_str()
                .is_none_or(|s| p.stage == Some(s))
        })
        .filter(|p| fields["level"].as_str().is_none_or(|l| p.level == Some(l)))
        .filter(|p| {
            fields["interests"]
                .as_str()
                .is_none_or(|i| p.interests.contains(&i))
        })
        .filter(|p| fields["city"].as_str().is_none_or(|c| p.city == Some(c)))
        .filter(|p| {
            filter["keyword"]
                .as_str()
                .is_none_or(|k| p.name.contains(k))
        })
        .map(|p| p.id)
        .collect();
    found.sort_unstable_by(|a, b| b.cmp(a));
    found
}

/// A search past the response cache.
async fn fresh_search(app: &TestApp, session: &Session, body: &Value) -> Answer {
    let req = app
        .client
        .post(app.url("/api/v1/customers/search"))
        .bearer_auth(&session.access)
        .header("Cache-Control", "no-cache")
        .json(body);
    app.send(req).await.expect(200)
}

/// Every page of a filter, `limit` at a time, past the cache.
async fn pages(app: &TestApp, session: &Session, filter: &Value, limit: u32) -> Vec<Answer> {
    let (mut pages, mut cursor) = (Vec::new(), None::<String>);
    for _ in 0..500 {
        let mut body = filter.clone();
        body["limit"] = json!(limit);
        if let Some(cursor) = &cursor {
            body["cursor"] = json!(cursor);
        }
        let page = fresh_search(app, session, &body).await;
        let next = page.body["next_cursor"].as_str().map(str::to_owned);
        pages.push(page);
        match next {
            Some(next) => cursor = Some(next),
            None => return pages,
        }
    }
    panic!("the walk did not end");
}

/// Every id a filter finds, walking pages of `limit` past the cache, with the total (the same
/// on every page) and the paths that answered.
async fn walk(
    app: &TestApp,
    session: &Session,
    filter: &Value,
    limit: u32,
) -> (Vec<i64>, i64, HashSet<String>) {
    let (mut ids, mut paths, mut total) = (Vec::new(), HashSet::new(), None);
    for page in pages(app, session, filter, limit).await {
        paths.insert(page.header("x-search-path").unwrap_or("none").to_owned());
        let page_total = page.body["total"].as_i64().unwrap();
        assert_eq!(*total.get_or_insert(page_total), page_total, "{filter}");
        ids.extend(page.item_ids());
    }
    (ids, total.unwrap_or(0), paths)
}

/// Waits until the tenant's lists are answered by its index.
async fn until_indexed(app: &TestApp, session: &Session) {
    for _ in 0..200 {
        let answer = fresh_search(app, session, &json!({"limit": 1})).await;
        if answer.header("x-search-path") == Some("index") {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the tenant's index was not built within 10 s");
}

/// Checks `rounds` random filters for the admin and each rep against the brute force.
async fn check_filters(app: &TestApp, dice: &mut Dice, pop: &Population, rounds: usize) {
    for round in 0..rounds {
        let filter = random_filter(dice, pop);
        let viewers = [
            (&pop.admin, None),
            (&pop.reps[0], Some(pop.reps[0].id)),
            (&pop.reps[1], Some(pop.reps[1].id)),
        ];
        let (session, scope) = viewers[round % viewers.len()];
        let expected = brute_force(&pop.people, &filter, scope);
        let (ids, total, paths) = walk(app, session, &filter, 7).await;
        assert_eq!(paths, HashSet::from(["index".to_owned()]), "{filter}");
        assert_eq!(ids, expected, "round {round}: {filter}");
        assert_eq!(total, expected.len() as i64, "round {round}: {filter}");
    }
}

#[tokio::test]
async fn every_operator_and_combination_equals_a_brute_force_answer_before_and_after_writes() {
    let app = spawn_app().await;
    let mut dice = Dice(0x5eed_0001);
    let mut pop = populate(&app, &mut dice, "Acme", 48).await;
    until_indexed(&app, &pop.admin).await;
    check_filters(&app, &mut dice, &pop, 45).await;

    // Writes of every kind after the build: the index catches up with each.
    for i in 0..6 {
        let p = &mut pop.people[i * 7];
        app.delete(
            &format!("/api/v1/customers/{}", p.id),
            Some(&pop.admin.access),
        )
        .await
        .expect(204);
        p.deleted = true;
    }
    for i in 0..8 {
        let slot = i * 5 + 1;
        let tag = pop.tags[i % pop.tags.len()];
        let p = &mut pop.people[slot];
        if p.deleted {
            continue;
        }
        if p.tags.contains(&tag) {
            app.delete(
                &format!("/api/v1/customers/{}/tags/{tag}", p.id),
                Some(&pop.admin.access),
            )
            .await
            .expect(204);
            p.tags.remove(&tag);
        } else {
            app.post(
                &format!("/api/v1/customers/{}/tags", p.id),
                Some(&pop.admin.access),
                &json!({"tag_id": tag}),
            )
            .await
            .expect(200);
            p.tags.insert(tag);
        }
    }
    for i in 0..6 {
        let slot = i * 6 + 3;
        let p = &mut pop.people[slot];
        if p.deleted {
            continue;
        }
        let owner = [pop.reps[1].id, pop.admin.id][i % 2];
        let stage = STAGES[i % 3];
        let level = LEVELS[(i + 1) % 3];
        app.patch(
            &format!("/api/v1/customers/{}", p.id),
            Some(&pop.admin.access),
            &json!({"owner_id": owner, "project_stage": stage,
                    "custom_fields": {"level": level, "interests": ["wine"]}}),
        )
        .await
        .expect(200);
        p.owner = Some(owner);
        p.stage = Some(stage);
        p.level = Some(level);
        p.interests = vec!["wine"];
    }
    // An archived tag stays on its customers and can still be filtered by.
    let archived = pop.tags[0];
    app.patch(
        &format!("/api/v1/tags/{archived}"),
        Some(&pop.admin.access),
        &json!({"status": "archived"}),
    )
    .await
    .expect(200);
    let newcomer = Person {
        id: 0,
        name: "Acme客户新".into(),
        tags: HashSet::from([pop.tags[1], pop.tags[5]]),
        owner: Some(pop.reps[0].id),
        stage: Some("lead"),
        level: Some("gold"),
        interests: vec!["tea"],
        city: Some("上海"),
        deleted: false,
    };
    let id = app.create_customer(&pop.admin, &body_of(&newcomer)).await["id"]
        .as_i64()
        .unwrap();
    pop.people.push(Person { id, ..newcomer });

    check_filters(&app, &mut dice, &pop, 45).await;
    let by_archived = json!({"all_of": [archived]});
    let (ids, _, _) = walk(&app, &pop.admin, &by_archived, 50).await;
    assert_eq!(ids, brute_force(&pop.people, &by_archived, None));
    // Filters whose bitmaps are empty: a stage nobody has, a rep with no customers.
    let nobody = json!({"project_stage": "nobody-has-this", "all_of": [pop.tags[2]]});
    assert_eq!(walk(&app, &pop.admin, &nobody, 5).await.1, 0);
}

#[tokio::test]
async fn sql_answers_while_the_index_builds_and_both_agree() {
    let app = spawn_app().await;
    let mut dice = Dice(0x5eed_0002);
    let pop = populate(&app, &mut dice, "Acme", 30).await;
    let filters: Vec<Value> = (0..12).map(|_| random_filter(&mut dice, &pop)).collect();
    // The tenant's first list starts the build and is answered by SQL.
    let first = fresh_search(&app, &pop.admin, &filters[0]).await;
    assert_eq!(first.header("x-search-path"), Some("sql"));
    let mut from_sql = vec![first.body];
    for filter in &filters[1..] {
        from_sql.push(fresh_search(&app, &pop.admin, filter).await.body);
    }
    until_indexed(&app, &pop.admin).await;
    for (filter, sql) in filters.iter().zip(&from_sql) {
        let indexed = fresh_search(&app, &pop.admin, filter).await;
        assert_eq!(indexed.header("x-search-path"), Some("index"));
        assert_eq!(&indexed.body, sql, "{filter}");
        assert_eq!(
            indexed.item_ids(),
            brute_force(&pop.people, filter, None)
                .into_iter()
                .take(50)
                .collect::<Vec<_>>()
        );
    }
    let ready = app.get("/readyz", None).await.expect(200).body;
    let index = &ready["search_index"];
    assert_eq!(index["enabled"], true, "{ready}");
    assert!(index["tenants"].as_u64() >= Some(1), "{ready}");
    assert!(index["customers"].as_u64() >= Some(30), "{ready}");
    assert!(index["bytes"].as_u64() > Some(0), "{ready}");
}

#[tokio::test]
async fn with_the_index_turned_off_sql_answers_every_list() {
    let app = spawn_app_with(|s| s.search_index.enabled = false).await;
    let mut dice = Dice(0x5eed_0003);
    let pop = populate(&app, &mut dice, "Acme", 20).await;
    for _ in 0..6 {
        let filter = random_filter(&mut dice, &pop);
        let (ids, _, paths) = walk(&app, &pop.admin, &filter, 6).await;
        assert_eq!(paths, HashSet::from(["sql".to_owned()]));
        assert_eq!(ids, brute_force(&pop.people, &filter, None), "{filter}");
    }
    let ready = app.get("/readyz", None).await.expect(200).body;
    assert_eq!(ready["search_index"]["enabled"], false);
    assert_eq!(ready["search_index"]["tenants"], 0);
}

#[tokio::test]
async fn a_write_through_one_process_is_in_the_next_list_of_another() {
    let first = spawn_app().await;
    let second = spawn_beside(&first, |_| {}).await;
    let admin = first.tenant_admin("Acme").await;
    let group = first.create_group(&admin, "意向", false).await;
    let (hot, cold) = (
        first.create_tag(&admin, group, "高意向").await,
        first.create_tag(&admin, group, "冷").await,
    );
    let mut ids = Vec::new();
    for i in 0..10 {
        let created = first
            .create_customer(
                &admin,
                &json!({"name": format!("客户{i}"), "tag_ids": [cold]}),
            )
            .await;
        ids.push(created["id"].as_i64().unwrap());
    }
    until_indexed(&first, &admin).await;
    until_indexed(&second, &admin).await;
    let hot_filter = json!({"all_of": [hot], "none_of": [cold]});
    let mut expected: Vec<i64> = Vec::new();
    for (n, &id) in ids.iter().enumerate() {
        // Alternate the writing process; the other lists at once, through the cache too.
        let (writer, reader) = if n % 2 == 0 {
            (&first, &second)
        } else {
            (&second, &first)
        };
        writer
            .post(
                &format!("/api/v1/customers/{id}/tags"),
                Some(&admin.access),
                &json!({"tag_id": hot}),
            )
            .await
            .expect(200);
        writer
            .delete(
                &format!("/api/v1/customers/{id}/tags/{cold}"),
                Some(&admin.access),
            )
            .await
            .expect(204);
        expected.insert(0, id);
        let cached = reader.search(&admin, &hot_filter).await.expect(200);
        assert_eq!(cached.item_ids(), expected, "after write {n}");
        let fresh = fresh_search(reader, &admin, &hot_filter).await;
        assert_eq!(fresh.header("x-search-path"), Some("index"));
        assert_eq!(fresh.item_ids(), expected, "after write {n}");
        assert_eq!(fresh.body["total"], expected.len());
    }
}

#[tokio::test]
async fn a_tenants_index_never_holds_another_tenants_customers() {
    let app = spawn_app().await;
    let mut dice = Dice(0x5eed_0004);
    let acme = populate(&app, &mut dice, "Acme", 16).await;
    let mut globex = populate(&app, &mut dice, "Globex", 16).await;
    until_indexed(&app, &acme.admin).await;
    until_indexed(&app, &globex.admin).await;
    // A write in one tenant after both are built.
    let (first, rare) = (globex.people[0].id, globex.tags[7]);
    if !globex.people[0].tags.contains(&rare) {
        app.post(
            &format!("/api/v1/customers/{first}/tags"),
            Some(&globex.admin.access),
            &json!({"tag_id": rare}),
        )
        .await
        .expect(200);
        globex.people[0].tags.insert(rare);
    }
    for (pop, other) in [(&acme, &globex), (&globex, &acme)] {
        let own: HashSet<i64> = pop.people.iter().map(|p| p.id).collect();
        let (ids, total, paths) = walk(&app, &pop.admin, &json!({}), 9).await;
        assert_eq!(paths, HashSet::from(["index".to_owned()]));
        assert_eq!(total as usize, own.len());
        assert_eq!(ids.iter().copied().collect::<HashSet<_>>(), own);
        for tag in &pop.tags {
            let filter = json!({"any_of": [tag]});
            let (ids, _, _) = walk(&app, &pop.admin, &filter, 50).await;
            assert_eq!(ids, brute_force(&pop.people, &filter, None));
        }
        // Another tenant's tag ids are unknown here.
        fresh_search_refused(&app, &pop.admin, other.tags[0]).await;
        let tags = app
            .get("/api/v1/tags", Some(&pop.admin.access))
            .await
            .expect(200)
            .body;
        let listed: i64 = tags["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["customer_count"].as_i64().unwrap())
            .sum();
        let links: usize = pop.people.iter().map(|p| p.tags.len()).sum();
        assert_eq!(listed, links as i64, "{tags}");
    }
}

async fn fresh_search_refused(app: &TestApp, session: &Session, foreign_tag: i64) {
    let req = app
        .client
        .post(app.url("/api/v1/customers/search"))
        .bearer_auth(&session.access)
        .json(&json!({"all_of": [foreign_tag]}));
    app.send(req)
        .await
        .expect(422)
        .expect_coded_field_error("all_of[0]", "unknown_tag");
}

#[tokio::test]
async fn pages_have_no_gaps_or_repeats_while_tags_change_around_them() {
    let app = spawn_app().await;
    let admin = app.tenant_admin("Acme").await;
    let group = app.create_group(&admin, "意向", false).await;
    let (a, b) = (
        app.create_tag(&admin, group, "A").await,
        app.create_tag(&admin, group, "B").await,
    );
    // Customers carrying A throughout, interleaved with ones whose tags change meanwhile.
    let (mut stable, mut moving) = (Vec::new(), Vec::new());
    for i in 0..36 {
        let tags = if i % 3 == 0 { json!([b]) } else { json!([a]) };
        let id = app
            .create_customer(
                &admin,
                &json!({"name": format!("客户{i}"), "tag_ids": tags}),
            )
            .await["id"]
            .as_i64()
            .unwrap();
        if i % 3 == 0 {
            moving.push(id)
        } else {
            stable.push(id)
        }
    }
    until_indexed(&app, &admin).await;
    let writer = async {
        for round in 0..3 {
            for &id in &moving {
                let path = format!("/api/v1/customers/{id}/tags");
                if round % 2 == 0 {
                    app.post(&path, Some(&admin.access), &json!({"tag_id": a}))
                        .await
                        .expect(200);
                } else {
                    app.delete(&format!("{path}/{a}"), Some(&admin.access))
                        .await
                        .expect(204);
                }
            }
        }
    };
    let reader = async {
        let mut walks = Vec::new();
        for _ in 0..4 {
            walks.push(walk_loosely(&app, &admin, &json!({"all_of": [a]}), 4).await);
        }
        walks
    };
    let ((), walks) = tokio::join!(writer, reader);
    for ids in walks {
        assert!(
            ids.windows(2).all(|w| w[0] > w[1]),
            "newest first, no repeats: {ids:?}"
        );
        for id in &stable {
            assert_eq!(
                ids.iter().filter(|x| *x == id).count(),
                1,
                "{id} in {ids:?}"
            );
        }
    }
}

/// Every id of a walk whose total may change between pages (writes happen meanwhile).
async fn walk_loosely(app: &TestApp, session: &Session, filter: &Value, limit: u32) -> Vec<i64> {
    let pages = pages(app, session, filter, limit).await;
    pages.iter().flat_map(Answer::item_ids).collect()
}

#[tokio::test]
async fn tag_counts_are_those_of_the_customers_the_caller_sees() {
    let app = spawn_app().await;
    let mut dice = Dice(0x5eed_0005);
    let pop = populate(&app, &mut dice, "Acme", 30).await;
    let expect = |viewer: Option<i64>| -> HashMap<i64, i64> {
        pop.tags
            .iter()
            .map(|t| {
                let n = pop
                    .people
                    .iter()
                    .filter(|p| viewer.is_none() || p.owner == viewer)
                    .filter(|p| p.tags.contains(t))
                    .count();
                (*t, n as i64)
            })
            .collect()
    };
    let counts = |body: &Value| -> HashMap<i64, i64> {
        body["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| {
                (
                    t["id"].as_i64().unwrap(),
                    t["customer_count"].as_i64().unwrap(),
                )
            })
            .collect()
    };
    // Before the index is ready (SQL) and after (the bitmaps): the same scoped counts.
    for _ in 0..2 {
        for (session, scope) in [
            (&pop.admin, None),
            (&pop.reps[0], Some(pop.reps[0].id)),
            (&pop.reps[1], Some(pop.reps[1].id)),
        ] {
            let listed = app
                .get("/api/v1/tags", Some(&session.access))
                .await
                .expect(200)
                .body;
            assert_eq!(counts(&listed), expect(scope), "{listed}");
            let groups = app
                .get("/api/v1/tag-groups", Some(&session.access))
                .await
                .expect(200)
                .body;
            let in_groups: HashMap<i64, i64> = groups["items"]
                .as_array()
                .unwrap()
                .iter()
                .flat_map(|g| counts(&json!({"items": g["tags"].clone()})))
                .collect();
            assert_eq!(in_groups, expect(scope), "{groups}");
        }
        until_indexed(&app, &pop.admin).await;
    }
}
