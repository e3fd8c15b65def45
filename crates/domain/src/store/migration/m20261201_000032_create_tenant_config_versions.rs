use sea_orm_migration::{prelude::*, schema::*};

use super::{create_table, drop_table};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // Bumped with every change of what the rules engine reads besides the customer: the
        // rules, the tag library, custom field definitions, project stages. Kept apart from
        // `tenant_data_versions`, which every customer change bumps.
        create_table(
            manager,
            Table::create()
                .table("tenant_config_versions")
                .col(big_integer("tenant_id").primary_key())
                .col(big_integer("version"))
                .to_owned(),
        )
        .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        drop_table(manager, "tenant_config_versions").await
    }
}
