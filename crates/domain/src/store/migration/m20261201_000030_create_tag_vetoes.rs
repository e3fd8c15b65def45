use sea_orm_migration::{prelude::*, schema::*};

use super::{create_table, drop_table};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // A tag a person took off a customer: no rule puts it back while the rules that want it
        // keep wanting it. The row goes when no rule wants the tag any more.
        create_table(
            manager,
            Table::create()
                .table("tag_vetoes")
                .col(big_integer("customer_id"))
                .col(big_integer("tag_id"))
                .col(big_integer("tenant_id"))
                .col(big_integer_null("staff_id"))
                .col(date_time("created_at"))
                .primary_key(Index::create().col("customer_id").col("tag_id"))
                .to_owned(),
        )
        .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        drop_table(manager, "tag_vetoes").await
    }
}
