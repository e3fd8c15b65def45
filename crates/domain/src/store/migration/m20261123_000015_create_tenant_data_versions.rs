use sea_orm_migration::{prelude::*, schema::*};

use super::{create_table, drop_table};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // Bumped in the same transaction as every change to a tenant's customers or tag
        // library; cached lists are keyed by it, so a committed change can never be answered
        // from a cache entry computed before it.
        create_table(
            manager,
            Table::create()
                .table("tenant_data_versions")
                .col(big_integer("tenant_id").primary_key())
                .col(big_integer("version"))
                .to_owned(),
        )
        .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        drop_table(manager, "tenant_data_versions").await
    }
}
