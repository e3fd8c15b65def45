//! Who may reach the customer and tag endpoints: visitors and anonymous callers are refused,
//! other tenants' records do not exist, and sales reps see only their own customers.

use reqwest::Method;
use scantag_e2e::{Session, TestApp, spawn_app};
use serde_json::{Value, json};

/// A tenant's admin with one group, one tag and one customer carrying it.
struct Tenant {
    admin: Session,
    group: i64,
    tag: i64,
    customer: i64,
}

async fn tenant(app: &TestApp, name: &str) -> Tenant {
    let admin = app.tenant_admin(name).await;
    let group = app.create_group(&admin, "兴趣", false).await;
    let tag = app.create_tag(&admin, group, "高尔夫").await;
    let customer = app
        .create_customer(
            &admin,
            &json!({"name": format!("{name}的客户"), "phone": "13800138000", "tag_ids": [tag]}),
        )
        .await["id"]
        .as_i64()
        .unwrap();
    Tenant {
        admin,
        group,
        tag,
        customer,
    }
}

/// Every endpoint of the area, with a valid body where one is needed.
fn endpoints(t: &Tenant, other_tag: i64) -> Vec<(Method, String, Option<Value>)> {
    let (g, tag, c) = (t.group, t.tag, t.customer);
    vec![
        (
            Method::POST,
            "/api/v1/tag-groups".into(),
            Some(json!({"name": "新分组", "dimension": "basic"})),
        ),
        (Method::GET, "/api/v1/tag-groups".into(), None),
        (Method::GET, format!("/api/v1/tag-groups/{g}"), None),
        (
            Method::PATCH,
            format!("/api/v1/tag-groups/{g}"),
            Some(json!({"name": "改名"})),
        ),
        (
            Method::POST,
            "/api/v1/tags".into(),
            Some(json!({"group_id": g, "name": "新标签"})),
        ),
        (Method::GET, "/api/v1/tags".into(), None),
        (Method::GET, format!("/api/v1/tags/{tag}"), None),
        (
            Method::PATCH,
            format!("/api/v1/tags/{tag}"),
            Some(json!({"status": "archived"})),
        ),
        (
            Method::POST,
            "/api/v1/custom-fields".into(),
            Some(json!({"key": "city", "label": "城市", "field_type": "text"})),
        ),
        (Method::GET, "/api/v1/custom-fields".into(), None),
        (
            Method::POST,
            "/api/v1/customers".into(),
            Some(json!({"name": "新客户"})),
        ),
        (
            Method::POST,
            "/api/v1/customers/search".into(),
            Some(json!({})),
        ),
        (Method::GET, format!("/api/v1/customers/{c}"), None),
        (
            Method::PATCH,
            format!("/api/v1/customers/{c}"),
            Some(json!({"name": "改名"})),
        ),
        (
            Method::POST,
            format!("/api/v1/customers/{c}/tags"),
            Some(json!({"tag_id": other_tag})),
        ),
        (
            Method::DELETE,
            format!("/api/v1/customers/{c}/tags/{tag}"),
            None,
        ),
        (
            Method::GET,
            format!("/api/v1/customers/{c}/tag-history"),
            None,
        ),
        (
            Method::POST,
            "/api/v1/customers/batch-tags".into(),
            Some(json!({"customer_ids": [c], "remove": [tag]})),
        ),
        (Method::DELETE, format!("/api/v1/customers/{c}"), None),
    ]
}

/// Checks that the tenant's data is as `tenant` made it.
async fn assert_untouched(app: &TestApp, t: &Tenant) {
    let customer = app.customer(&t.admin, t.customer).await;
    assert!(customer["name"].as_str().unwrap().ends_with("的客户"));
    assert_eq!(
        app.customer_tag_ids(&t.admin, t.customer).await,
        vec![t.tag]
    );
    let tag = app
        .get(&format!("/api/v1/tags/{}", t.tag), Some(&t.admin.access))
        .await
        .expect(200);
    assert_eq!(tag.body["name"], "高尔夫");
    assert_eq!(tag.body["status"], "active");
    let group = app
        .get(
            &format!("/api/v1/tag-groups/{}", t.group),
            Some(&t.admin.access),
        )
        .await
        .expect(200);
    assert_eq!(group.body["name"], "兴趣");
    let search = app.search(&t.admin, &json!({})).await.expect(200);
    assert_eq!(search.item_ids(), vec![t.customer]);
    let fields = app
        .get("/api/v1/custom-fields", Some(&t.admin.access))
        .await
        .expect(200);
    assert!(fields.item_ids().is_empty());
    let tags = app
        .get("/api/v1/tags?status=all", Some(&t.admin.access))
        .await
        .expect(200);
    assert_eq!(tags.item_ids(), vec![t.tag]);
}

#[tokio::test]
async fn visitors_are_refused_on_every_customer_and_tag_endpoint() {
    let app = spawn_app().await;
    let acme = tenant(&app, "Acme").await;
    let visitor = app.login("o-passer-by", None).await;
    assert_eq!(visitor.body["principal"]["kind"], "visitor");

    for (method, path, body) in endpoints(&acme, acme.tag) {
        let answer = app
            .request(method.clone(), &path, Some(&visitor.access), body.as_ref())
            .await
            .expect(403);
        assert_eq!(answer.code(), "staff_only", "{method} {path}");
    }
    assert_untouched(&app, &acme).await;
}

#[tokio::test]
async fn requests_without_a_token_are_unauthenticated() {
    let app = spawn_app().await;
    let acme = tenant(&app, "Acme").await;
    for (method, path, body) in endpoints(&acme, acme.tag) {
        let answer = app
            .request(method.clone(), &path, None, body.as_ref())
            .await
            .expect(401);
        assert_eq!(answer.code(), "unauthenticated", "{method} {path}");
    }
    assert_untouched(&app, &acme).await;
}

#[tokio::test]
async fn another_tenants_groups_tags_and_customers_are_not_found() {
    let app = spawn_app().await;
    let acme = tenant(&app, "Acme").await;
    let globex = tenant(&app, "Globex").await;
    let missing = app
        .get("/api/v1/customers/999999", Some(&globex.admin.access))
        .await
        .expect(404);

    for (method, path, body) in endpoints(&acme, globex.tag) {
        // Only the requests that name one of Acme's records by id in the path.
        if !path.split('/').any(|s| s.parse::<i64>().is_ok()) {
            continue;
        }
        let answer = app
            .request(
                method.clone(),
                &path,
                Some(&globex.admin.access),
                body.as_ref(),
            )
            .await
            .expect(404);
        assert_eq!(answer.code(), "not_found", "{method} {path}");
    }
    // Indistinguishable from a record that never existed.
    let foreign = app
        .get(
            &format!("/api/v1/customers/{}", acme.customer),
            Some(&globex.admin.access),
        )
        .await
        .expect(404);
    assert_eq!(foreign.body["detail"], missing.body["detail"]);

    // Lists show only one's own.
    let tags = app
        .get("/api/v1/tags?status=all", Some(&globex.admin.access))
        .await
        .expect(200);
    assert_eq!(tags.item_ids(), vec![globex.tag]);
    let groups = app
        .get(
            "/api/v1/tag-groups?include_archived=true",
            Some(&globex.admin.access),
        )
        .await
        .expect(200);
    assert_eq!(groups.item_ids(), vec![globex.group]);
    let customers = app.search(&globex.admin, &json!({})).await.expect(200);
    assert_eq!(customers.item_ids(), vec![globex.customer]);

    assert_untouched(&app, &acme).await;
    assert_untouched(&app, &globex).await;
}

#[tokio::test]
async fn another_tenants_ids_cannot_be_used_in_filters_assignments_or_batches() {
    let app = spawn_app().await;
    let acme = tenant(&app, "Acme").await;
    let globex = tenant(&app, "Globex").await;
    app.post(
        "/api/v1/custom-fields",
        Some(&acme.admin.access),
        &json!({"key": "acme_only", "label": "专属", "field_type": "text"}),
    )
    .await
    .expect(201);
    let g = &globex.admin;
    let owner_before = app.customer(g, globex.customer).await["owner_id"].clone();

    let filters = [
        (json!({"all_of": [acme.tag]}), "all_of[0]"),
        (json!({"any_of": [globex.tag, acme.tag]}), "any_of[1]"),
        (json!({"none_of": [acme.tag]}), "none_of[0]"),
    ];
    for (filter, field) in filters {
        app.search(g, &filter)
            .await
            .expect_field_error(field, Some("unknown_tag"));
    }
    app.search(g, &json!({"custom_fields": {"acme_only": "x"}}))
        .await
        .expect_field_error("custom_fields.acme_only", None);

    app.post(
        &format!("/api/v1/customers/{}/tags", globex.customer),
        Some(&g.access),
        &json!({"tag_id": acme.tag}),
    )
    .await
    .expect_field_error("tag_id", None);
    app.post(
        "/api/v1/tags",
        Some(&g.access),
        &json!({"group_id": acme.group, "name": "偷来的分组"}),
    )
    .await
    .expect_field_error("group_id", None);
    let created = app
        .post(
            "/api/v1/customers",
            Some(&g.access),
            &json!({"name": "新客户", "tag_ids": [acme.tag]}),
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
    app.post(
        "/api/v1/customers",
        Some(&g.access),
        &json!({"name": "新客户", "owner_id": acme.admin.id}),
    )
    .await
    .expect_field_error("owner_id", None);
    app.post(
        "/api/v1/customers",
        Some(&g.access),
        &json!({"name": "新客户", "custom_fields": {"acme_only": "x"}}),
    )
    .await
    .expect_field_error("custom_fields.acme_only", Some("unknown_field"));
    app.patch(
        &format!("/api/v1/customers/{}", globex.customer),
        Some(&g.access),
        &json!({"owner_id": acme.admin.id}),
    )
    .await
    .expect_field_error("owner_id", None);
    app.post(
        "/api/v1/customers/batch-tags",
        Some(&g.access),
        &json!({"customer_ids": [globex.customer, acme.customer], "add": [globex.tag]}),
    )
    .await
    .expect_field_error("customer_ids[1]", None);
    app.post(
        "/api/v1/customers/batch-tags",
        Some(&g.access),
        &json!({"customer_ids": [globex.customer], "add": [acme.tag]}),
    )
    .await
    .expect_field_error("add[0]", None);

    let search = app.search(g, &json!({})).await.expect(200);
    assert_eq!(
        search.item_ids(),
        vec![globex.customer],
        "nothing was created"
    );
    assert_eq!(
        app.customer_tag_ids(g, globex.customer).await,
        vec![globex.tag]
    );
    assert_eq!(
        app.customer(g, globex.customer).await["owner_id"],
        owner_before
    );
    let acme_tag = app
        .get(
            &format!("/api/v1/tags/{}", acme.tag),
            Some(&acme.admin.access),
        )
        .await
        .expect(200);
    assert_eq!(acme_tag.body["customer_count"], 1);
}

#[tokio::test]
async fn a_sales_rep_sees_and_changes_only_their_own_customers() {
    let app = spawn_app().await;
    let admin = app.tenant_admin("Acme").await;
    let manager = app.invite_staff(&admin, "o-manager", "manager").await;
    let rep = app.invite_staff(&admin, "o-rep", "sales").await;
    let colleague = app.invite_staff(&admin, "o-colleague", "sales").await;
    let group = app.create_group(&admin, "兴趣", false).await;
    let tag = app.create_tag(&admin, group, "高尔夫").await;

    let created = app
        .create_customer(&rep, &json!({"name": "我的客户", "tag_ids": [tag]}))
        .await;
    assert_eq!(created["owner_id"], rep.id, "a rep's customer is theirs");
    let own = created["id"].as_i64().unwrap();
    let explicit = app
        .create_customer(&rep, &json!({"name": "我的另一个", "owner_id": rep.id}))
        .await;
    assert_eq!(explicit["owner_id"], rep.id);
    let own2 = explicit["id"].as_i64().unwrap();
    let theirs = app
        .create_customer(
            &admin,
            &json!({"name": "同事的客户", "owner_id": colleague.id, "tag_ids": [tag]}),
        )
        .await["id"]
        .as_i64()
        .unwrap();
    let company = app
        .create_customer(&admin, &json!({"name": "公司的客户", "tag_ids": [tag]}))
        .await["id"]
        .as_i64()
        .unwrap();

    let (seen, total) = app.search_all(&rep, &json!({}), 50).await;
    assert_eq!(seen, vec![own2, own]);
    assert_eq!(total, 2);
    let (tagged, _) = app.search_all(&rep, &json!({"all_of": [tag]}), 50).await;
    assert_eq!(tagged, vec![own]);
    let (by_name, _) = app.search_all(&rep, &json!({"keyword": "同事"}), 50).await;
    assert!(by_name.is_empty());
    let (colleague_sees, _) = app.search_all(&colleague, &json!({}), 50).await;
    assert_eq!(colleague_sees, vec![theirs]);
    for boss in [&admin, &manager] {
        let (everyone, total) = app.search_all(boss, &json!({}), 50).await;
        assert_eq!(everyone, vec![company, theirs, own2, own]);
        assert_eq!(total, 4);
        app.customer(boss, theirs).await;
    }

    for other in [theirs, company] {
        let requests: Vec<(Method, String, Option<Value>)> = vec![
            (Method::GET, format!("/api/v1/customers/{other}"), None),
            (
                Method::PATCH,
                format!("/api/v1/customers/{other}"),
                Some(json!({"name": "抢来的"})),
            ),
            (
                Method::POST,
                format!("/api/v1/customers/{other}/tags"),
                Some(json!({"tag_id": tag})),
            ),
            (
                Method::DELETE,
                format!("/api/v1/customers/{other}/tags/{tag}"),
                None,
            ),
            (
                Method::GET,
                format!("/api/v1/customers/{other}/tag-history"),
                None,
            ),
            (Method::DELETE, format!("/api/v1/customers/{other}"), None),
        ];
        for (method, path, body) in requests {
            let answer = app
                .request(method.clone(), &path, Some(&rep.access), body.as_ref())
                .await
                .expect(404);
            assert_eq!(answer.code(), "not_found", "{method} {path}");
        }
        let still = app.customer(&admin, other).await;
        assert_ne!(still["name"], "抢来的");
        assert_eq!(app.customer_tag_ids(&admin, other).await, vec![tag]);
    }

    // Their own customers they may edit and tag.
    app.patch(
        &format!("/api/v1/customers/{own}"),
        Some(&rep.access),
        &json!({"company": "星河"}),
    )
    .await
    .expect(200);
    app.delete(
        &format!("/api/v1/customers/{own}/tags/{tag}"),
        Some(&rep.access),
    )
    .await
    .expect(204);

    // Handing a customer over moves it out of the rep's sight.
    app.patch(
        &format!("/api/v1/customers/{own2}"),
        Some(&manager.access),
        &json!({"owner_id": colleague.id}),
    )
    .await
    .expect(200);
    app.get(&format!("/api/v1/customers/{own2}"), Some(&rep.access))
        .await
        .expect(404);
    app.get(
        &format!("/api/v1/customers/{own2}"),
        Some(&colleague.access),
    )
    .await
    .expect(200);
    let (seen, _) = app.search_all(&rep, &json!({}), 50).await;
    assert_eq!(seen, vec![own]);
}

#[tokio::test]
async fn a_sales_rep_can_neither_create_customers_for_others_nor_give_theirs_away() {
    let app = spawn_app().await;
    let admin = app.tenant_admin("Acme").await;
    let rep = app.invite_staff(&admin, "o-rep", "sales").await;
    let colleague = app.invite_staff(&admin, "o-colleague", "sales").await;

    for owner in [colleague.id, admin.id] {
        let answer = app
            .post(
                "/api/v1/customers",
                Some(&rep.access),
                &json!({"name": "替别人建", "owner_id": owner}),
            )
            .await;
        assert!(
            [403, 422].contains(&answer.status.as_u16()),
            "{}: {}",
            answer.status,
            answer.text
        );
    }
    let own = app
        .create_customer(&rep, &json!({"name": "我的客户"}))
        .await["id"]
        .as_i64()
        .unwrap();
    let answer = app
        .patch(
            &format!("/api/v1/customers/{own}"),
            Some(&rep.access),
            &json!({"owner_id": colleague.id}),
        )
        .await;
    assert!(
        [403, 422].contains(&answer.status.as_u16()),
        "{}: {}",
        answer.status,
        answer.text
    );
    let (everyone, _) = app.search_all(&admin, &json!({}), 50).await;
    assert_eq!(everyone, vec![own], "nothing else was created");
    assert_eq!(app.customer(&admin, own).await["owner_id"], rep.id);
}
