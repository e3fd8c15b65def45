use sea_orm_migration::{prelude::*, schema::*};

use super::{create_table, drop_table};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        create_table(
            manager,
            Table::create()
                .table("tenants")
                .col(big_pk_auto("id"))
                .col(string_len("name", 100))
                .col(string_len("timezone", 64))
                .col(boolean("active"))
                .col(date_time("created_at"))
                .col(date_time("updated_at"))
                .to_owned(),
        )
        .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        drop_table(manager, "tenants").await
    }
}
