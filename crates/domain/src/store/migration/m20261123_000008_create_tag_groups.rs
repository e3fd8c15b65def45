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
                .table("tag_groups")
                .col(big_pk_auto("id"))
                .col(big_integer("tenant_id"))
                .col(string_len("name", 32))
                .col(string_len("name_key", 64))
                .col(string_len("dimension", 16))
                .col(boolean("exclusive"))
                .col(text_null("description"))
                .col(integer("sort_order"))
                .col(boolean("archived"))
                .col(date_time("created_at"))
                .col(date_time("updated_at"))
                .foreign_key(
                    ForeignKey::create()
                        .name("fk_tag_groups_tenant")
                        .from("tag_groups", "tenant_id")
                        .to("tenants", "id"),
                )
                .to_owned(),
        )
        .await?;
        create_index(
            manager,
            "ux_tag_groups_tenant_name",
            "tag_groups",
            &["tenant_id", "name_key"],
            true,
        )
        .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        drop_table(manager, "tag_groups").await
    }
}
