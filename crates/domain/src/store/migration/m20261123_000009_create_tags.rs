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
                .table("tags")
                .col(big_pk_auto("id"))
                .col(big_integer("tenant_id"))
                .col(big_integer("group_id"))
                .col(string_len("name", 32))
                .col(string_len("name_key", 64))
                .col(string_len("color", 7))
                .col(text_null("definition"))
                .col(integer("sort_order"))
                .col(string_len("status", 16))
                .col(date_time("created_at"))
                .col(date_time("updated_at"))
                .foreign_key(
                    ForeignKey::create()
                        .name("fk_tags_group")
                        .from("tags", "group_id")
                        .to("tag_groups", "id"),
                )
                .to_owned(),
        )
        .await?;
        create_index(
            manager,
            "ux_tags_tenant_name",
            "tags",
            &["tenant_id", "name_key"],
            true,
        )
        .await?;
        create_index(manager, "ix_tags_group", "tags", &["group_id"], false).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        drop_table(manager, "tags").await
    }
}
