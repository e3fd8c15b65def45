//! The index against a real database: a build holds exactly its tenant's customers, catching
//! up follows every change, and a pruned feed makes the index be built again.

use std::collections::BTreeSet;

use chrono::Utc;

use super::*;
use crate::access::{Role, StaffActor};
use crate::customers::{Customers, NewCustomer};
use crate::kernel::ids::TagId;
use crate::library::tags::{Dimension, NewTag, NewTagGroup, TagLibrary};
use crate::store::testing::{self, TestDb};

async fn tag(db: &TestDb, admin: &StaffActor, name: &str) -> TagId {
    let library = TagLibrary::new(&db.db, admin);
    let group = library
        .create_group(NewTagGroup {
            name: format!("{name} group"),
            dimension: Dimension::Basic,
            exclusive: false,
            description: None,
            sort_order: 0,
        })
        .await
        .expect("create group");
    library
        .create_tag(NewTag {
            group_id: group.id,
            name: name.to_owned(),
            color: None,
            definition: None,
            sort_order: 0,
        })
        .await
        .expect("create tag")
        .id
}

async fn customer(customers: &Customers<'_>, name: &str, tags: &[TagId]) -> i64 {
    customers
        .create(NewCustomer {
            name: name.to_owned(),
            tag_ids: tags.to_vec(),
            ..Default::default()
        })
        .await
        .expect("create customer")
        .id
        .0
}

fn members(held: &Held) -> BTreeSet<i64> {
    held.read(|ix| ix.live.iter().map(i64::from).collect())
}

fn tagged(held: &Held, tag: TagId) -> BTreeSet<i64> {
    held.read(|ix| {
        ix.tags
            .get(&tag.0)
            .map(|b| b.iter().map(i64::from).collect())
            .unwrap_or_default()
    })
}

#[tokio::test]
async fn an_index_holds_its_tenants_customers_only_and_follows_their_changes() {
    let db = testing::database().await;
    let (acme, globex) = (db.tenant("Acme").await, db.tenant("Globex").await);
    let (a_admin, g_admin) = (
        db.staff(acme, Role::Admin, "a").await,
        db.staff(globex, Role::Admin, "g").await,
    );
    let (a_tag, g_tag) = (
        tag(&db, &a_admin, "VIP").await,
        tag(&db, &g_admin, "VIP").await,
    );
    let (a_people, g_people) = (
        Customers::new(&db.db, &a_admin),
        Customers::new(&db.db, &g_admin),
    );
    let (mut mine, mut theirs) = (BTreeSet::new(), BTreeSet::new());
    for i in 0..5 {
        mine.insert(customer(&a_people, &format!("a{i}"), &[a_tag]).await);
        theirs.insert(customer(&g_people, &format!("g{i}"), &[g_tag]).await);
    }
    let held = build_now(&db.db, acme).await.expect("build");
    assert_eq!(members(&held), mine);
    assert_eq!(tagged(&held, a_tag), mine);
    assert!(tagged(&held, g_tag).is_empty());

    // Changes in both tenants; the index follows its own.
    let gone = *mine.iter().next().expect("a customer");
    a_people.delete(CustomerId(gone)).await.expect("delete");
    mine.remove(&gone);
    let newcomer = customer(&a_people, "a-new", &[]).await;
    mine.insert(newcomer);
    a_people
        .add_tag(CustomerId(newcomer), a_tag, None)
        .await
        .expect("tag");
    customer(&g_people, "g-new", &[g_tag]).await;
    let at = data_version::read(&db.db, acme).await.expect("versions");
    assert!(held.catch_up(&db.db, at).await.expect("catch up"));
    assert_eq!(held.read(TenantIndex::version), at.version);
    assert_eq!(members(&held), mine);
    assert_eq!(tagged(&held, a_tag), mine);
    assert!(members(&held).is_disjoint(&theirs));
    db.finish().await;
}

#[tokio::test]
async fn an_index_older_than_the_pruned_feed_is_built_again_instead_of_caught_up() {
    let db = testing::database().await;
    let tenant = db.tenant("Acme").await;
    let admin = db.staff(tenant, Role::Admin, "a").await;
    let vip = tag(&db, &admin, "VIP").await;
    let people = Customers::new(&db.db, &admin);
    customer(&people, "first", &[vip]).await;
    let held = build_now(&db.db, tenant).await.expect("build");
    let later = customer(&people, "later", &[vip]).await;
    // Everything recorded so far is older than an hour from now.
    let pruned = data_version::prune(&db.db, Utc::now() + chrono::Duration::hours(1))
        .await
        .expect("prune");
    assert!(pruned >= 1);
    let at = data_version::read(&db.db, tenant).await.expect("versions");
    assert_eq!(at.feed_from, at.version);
    assert!(!held.catch_up(&db.db, at).await.expect("catch up"));
    assert!(!members(&held).contains(&later));
    let rebuilt = build_now(&db.db, tenant).await.expect("build again");
    assert!(members(&rebuilt).contains(&later));
    db.finish().await;
}
