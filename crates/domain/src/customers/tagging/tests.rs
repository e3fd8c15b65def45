//! The tagging writer against a real database: every path that changes tags leaves a history
//! that replays to exactly the links in place, and the exclusive-group rules hold.

use std::collections::BTreeSet;

use sea_orm::{EntityTrait, QueryOrder};

use super::*;
use crate::access::{Role, StaffActor, SystemTask};
use crate::kernel::ids::ChannelId;
use crate::kernel::tagging::TagAction;
use crate::library::tags::{Dimension, NewTag, NewTagGroup, TagLibrary};
use crate::store::testing::{self, TestDb};

async fn group(db: &TestDb, admin: &StaffActor, name: &str, exclusive: bool) -> Vec<TagId> {
    let library = TagLibrary::new(&db.db, admin);
    let group = library
        .create_group(NewTagGroup {
            name: name.to_owned(),
            dimension: Dimension::Basic,
            exclusive,
            description: None,
            sort_order: 0,
        })
        .await
        .expect("create group");
    let mut tags = Vec::new();
    for i in 0..3 {
        let tag = library
            .create_tag(NewTag {
                group_id: group.id,
                name: format!("{name} {i}"),
                color: None,
                definition: None,
                sort_order: i,
            })
            .await
            .expect("create tag");
        tags.push(tag.id);
    }
    tags
}

async fn customer(customers: &Customers<'_>, name: &str, tags: &[TagId]) -> CustomerId {
    customers
        .create(NewCustomer {
            name: name.to_owned(),
            tag_ids: tags.to_vec(),
            ..Default::default()
        })
        .await
        .expect("create customer")
        .id
}

/// Attaches `tags` to one customer as an automatic source would, in a transaction of its own.
async fn attach(
    system: &Customers<'_>,
    db: &TestDb,
    id: CustomerId,
    tags: &[TagId],
    source: TagSource,
) {
    let txn = db.db.begin().await.expect("begin");
    system.lock(&txn, id).await.expect("lock");
    let mut issues = Vec::new();
    let assignable = system
        .assignable_tags(&txn, tags, "tags", &mut issues)
        .await
        .expect("assignable");
    assert!(issues.is_empty(), "{issues:?}");
    system
        .attach_all(
            &txn,
            id,
            &assignable,
            source,
            Some("automatic"),
            None,
            false,
        )
        .await
        .expect("attach");
    txn.commit().await.expect("commit");
}

/// The links in place, and the links the history says should be in place.
async fn links_and_replay(db: &TestDb) -> (BTreeSet<(i64, i64)>, BTreeSet<(i64, i64)>) {
    let links: BTreeSet<(i64, i64)> = customer_tag::Entity::find()
        .all(&db.db)
        .await
        .expect("read links")
        .into_iter()
        .map(|l| (l.customer_id.0, l.tag_id.0))
        .collect();
    let mut replay = BTreeSet::new();
    for row in tag_history::Entity::find()
        .order_by_asc(tag_history::Column::Id)
        .all(&db.db)
        .await
        .expect("read history")
    {
        let pair = (row.customer_id.0, row.tag_id.0);
        match row.action {
            TagAction::Add => assert!(replay.insert(pair), "added twice: {pair:?}"),
            TagAction::Remove => assert!(replay.remove(&pair), "removed while absent: {pair:?}"),
        }
    }
    (links, replay)
}

#[tokio::test]
async fn every_way_of_changing_tags_leaves_a_history_that_replays_to_the_links() {
    let db = testing::database().await;
    let tenant = db.tenant("Replay").await;
    let admin = db.staff(tenant, Role::Admin, "admin").await;
    let plain = group(&db, &admin, "Interests", false).await;
    let tiers = group(&db, &admin, "Tier", true).await;
    let customers = Customers::new(&db.db, &admin);

    let a = customer(&customers, "A", &[plain[0], tiers[0]]).await;
    let b = customer(&customers, "B", &[plain[1]]).await;
    let c = customer(&customers, "C", &[]).await;
    customers
        .add_tag(a, tiers[1], Some("upgraded".into()))
        .await
        .expect("add");
    customers
        .remove_tag(a, plain[0], None)
        .await
        .expect("remove");
    customers
        .batch_tags(BatchTagging {
            add: vec![plain[2], tiers[2]],
            remove: vec![plain[1]],
            target: BatchTarget::Ids(vec![a, b, c]),
            note: Some("campaign".into()),
        })
        .await
        .expect("batch");
    let system = Customers::system(
        &db.db,
        tenant,
        SystemTask::Capture {
            channel: ChannelId(1),
        },
    );
    attach(&system, &db, c, &[plain[0], tiers[0]], TagSource::Channel).await;
    customers.delete(b).await.expect("delete");

    let (links, replay) = links_and_replay(&db).await;
    assert_eq!(links, replay);
    let expected: BTreeSet<(i64, i64)> = [
        (a.0, tiers[2].0),
        (a.0, plain[2].0),
        (c.0, plain[2].0),
        (c.0, tiers[2].0),
        (c.0, plain[0].0),
    ]
    .into_iter()
    .collect();
    assert_eq!(links, expected);
    db.finish().await;
}

#[tokio::test]
async fn an_automatic_source_never_replaces_a_tag_a_person_chose_in_an_exclusive_group() {
    let db = testing::database().await;
    let tenant = db.tenant("Choices").await;
    let admin = db.staff(tenant, Role::Admin, "admin").await;
    let tiers = group(&db, &admin, "Tier", true).await;
    let customers = Customers::new(&db.db, &admin);
    let chosen = customer(&customers, "Chosen", &[tiers[0]]).await;
    let channel_only = customer(&customers, "Channel only", &[]).await;
    let system = Customers::system(
        &db.db,
        tenant,
        SystemTask::Capture {
            channel: ChannelId(1),
        },
    );

    attach(&system, &db, chosen, &[tiers[1]], TagSource::Channel).await;
    attach(&system, &db, channel_only, &[tiers[1]], TagSource::Channel).await;
    attach(&system, &db, channel_only, &[tiers[2]], TagSource::Rule).await;

    let tags_of = |id: CustomerId| {
        let customers = &customers;
        async move {
            customers
                .get(id)
                .await
                .expect("get")
                .tags
                .into_iter()
                .map(|t| (t.tag_id, t.source))
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(tags_of(chosen).await, vec![(tiers[0], TagSource::Manual)]);
    // Automatic sources replace each other.
    assert_eq!(
        tags_of(channel_only).await,
        vec![(tiers[2], TagSource::Rule)]
    );
    let (links, replay) = links_and_replay(&db).await;
    assert_eq!(links, replay);
    db.finish().await;
}

#[tokio::test]
async fn removing_a_tag_the_customer_lacks_is_not_found_and_records_nothing() {
    let db = testing::database().await;
    let tenant = db.tenant("Nothing").await;
    let admin = db.staff(tenant, Role::Admin, "admin").await;
    let plain = group(&db, &admin, "Interests", false).await;
    let customers = Customers::new(&db.db, &admin);
    let id = customer(&customers, "A", &[plain[0]]).await;
    let before = tag_history::Entity::find()
        .all(&db.db)
        .await
        .expect("history")
        .len();

    let err = customers.remove_tag(id, plain[1], None).await.unwrap_err();

    assert!(matches!(err, DomainError::NotFound(_)), "{err:?}");
    let after = tag_history::Entity::find()
        .all(&db.db)
        .await
        .expect("history")
        .len();
    assert_eq!(before, after);
    db.finish().await;
}

#[tokio::test]
async fn a_stored_source_the_code_does_not_know_is_an_error_not_a_manual_tag() {
    use sea_orm::ConnectionTrait;

    let db = testing::database().await;
    let tenant = db.tenant("Unknown").await;
    let admin = db.staff(tenant, Role::Admin, "admin").await;
    let plain = group(&db, &admin, "Interests", false).await;
    let customers = Customers::new(&db.db, &admin);
    let id = customer(&customers, "A", &[plain[0]]).await;
    db.db
        .execute_unprepared("UPDATE customer_tags SET source = 'robot'")
        .await
        .expect("update");

    let err = customers.get(id).await.unwrap_err();

    assert!(matches!(err, DomainError::Database { .. }), "{err:?}");
    db.finish().await;
}
