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
                .table("follow_ups")
                .col(big_pk_auto("id"))
                .col(big_integer("tenant_id"))
                .col(big_integer("customer_id"))
                .col(big_integer_null("author_id"))
                .col(string_len("kind", 16))
                .col(text("content"))
                // The project stage the customer is at after this follow-up, if it says.
                .col(string_len_null("stage", 32))
                .col(date_null("next_follow_up_on"))
                .col(date_time("occurred_at"))
                .col(date_time("created_at"))
                .to_owned(),
        )
        .await?;
        create_index(
            manager,
            "ix_follow_ups_customer_time",
            "follow_ups",
            &["customer_id", "occurred_at"],
            false,
        )
        .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        drop_table(manager, "follow_ups").await
    }
}
