use sea_orm_migration::{prelude::*, schema::*};

use super::{create_index, create_table, drop_table};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // The change feed of the search index: which customers the change that moved a
        // tenant's data version to `version` touched. Rows are written after the version's
        // bump, in its transaction, so versions commit in order and a reader that has seen
        // version V has seen every row up to V.
        create_table(
            manager,
            Table::create()
                .table("customer_changes")
                .col(big_integer("tenant_id"))
                .col(big_integer("version"))
                .col(big_integer("customer_id"))
                .col(date_time("recorded_at"))
                .primary_key(
                    Index::create()
                        .col("tenant_id")
                        .col("version")
                        .col("customer_id"),
                )
                .to_owned(),
        )
        .await?;
        create_index(
            manager,
            "ix_customer_changes_recorded",
            "customer_changes",
            &["recorded_at"],
            false,
        )
        .await?;
        // The newest version whose feed rows may have been pruned: an index older than it
        // cannot catch up from the feed and is built again.
        manager
            .alter_table(
                Table::alter()
                    .table("tenant_data_versions")
                    .add_column(big_integer("feed_from").default(0))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table("tenant_data_versions")
                    .drop_column(Alias::new("feed_from"))
                    .to_owned(),
            )
            .await?;
        drop_table(manager, "customer_changes").await
    }
}
