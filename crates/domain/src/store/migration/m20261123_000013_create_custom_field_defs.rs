use sea_orm_migration::{prelude::*, schema::*};

use super::{create_index, create_table, drop_table};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        create_table(
            manager,
            Table::create()
                .table("custom_field_defs")
                .col(big_pk_auto("id"))
                .col(big_integer("tenant_id"))
                .col(string_len("field_key", 32))
                .col(string_len("label", 32))
                .col(string_len("field_type", 16))
                .col(text("options"))
                .col(boolean("required"))
                .col(date_time("created_at"))
                .to_owned(),
        )
        .await?;
        create_index(
            manager,
            "ux_custom_field_defs_key",
            "custom_field_defs",
            &["tenant_id", "field_key"],
            true,
        )
        .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        drop_table(manager, "custom_field_defs").await
    }
}
