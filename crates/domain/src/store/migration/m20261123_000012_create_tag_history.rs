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
                .table("tag_history")
                .col(big_pk_auto("id"))
                .col(big_integer("tenant_id"))
                .col(big_integer("customer_id"))
                .col(big_integer("tag_id"))
                .col(string_len("action", 8))
                .col(string_len("source", 16))
                .col(big_integer_null("actor_id"))
                .col(string_len_null("note", 200))
                .col(date_time("created_at"))
                .to_owned(),
        )
        .await?;
        create_index(
            manager,
            "ix_tag_history_customer",
            "tag_history",
            &["customer_id", "id"],
            false,
        )
        .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        drop_table(manager, "tag_history").await
    }
}
