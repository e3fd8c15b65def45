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
                .table("customer_tags")
                .col(big_integer("customer_id"))
                .col(big_integer("tag_id"))
                .col(big_integer("tenant_id"))
                .col(string_len("source", 16))
                .col(string_len_null("reason", 200))
                .col(big_integer_null("assigned_by"))
                .col(date_time("created_at"))
                .primary_key(Index::create().col("customer_id").col("tag_id"))
                .to_owned(),
        )
        .await?;
        // The filter index: "who carries tag X" is a range scan of (tenant, tag), already in
        // customer order for keyset pages.
        create_index(
            manager,
            "ix_customer_tags_tenant_tag",
            "customer_tags",
            &["tenant_id", "tag_id", "customer_id"],
            false,
        )
        .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        drop_table(manager, "customer_tags").await
    }
}
