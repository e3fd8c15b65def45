use sea_orm_migration::{prelude::*, schema::*};

use super::{create_index, create_table, drop_table};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // The outbox: facts written in the transaction that made them true, for consumers
        // such as the rules engine and webhooks to process in id order.
        create_table(
            manager,
            Table::create()
                .table("domain_events")
                .col(big_pk_auto("id"))
                .col(big_integer("tenant_id"))
                .col(string_len("kind", 64))
                .col(big_integer_null("customer_id"))
                .col(text("payload"))
                .col(date_time("created_at"))
                .col(date_time_null("processed_at"))
                .to_owned(),
        )
        .await?;
        create_index(
            manager,
            "ix_domain_events_tenant",
            "domain_events",
            &["tenant_id", "id"],
            false,
        )
        .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        drop_table(manager, "domain_events").await
    }
}
