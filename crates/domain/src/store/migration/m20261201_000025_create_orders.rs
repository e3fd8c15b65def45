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
                .table("orders")
                .col(big_pk_auto("id"))
                .col(big_integer("tenant_id"))
                .col(big_integer("customer_id"))
                // The sender's own id for the order; unique per tenant, so a re-sent order is
                // recognised.
                .col(string_len_null("external_ref", 64))
                // Integer fen (1 元 = 100 fen): sums stay exact.
                .col(big_integer("amount_fen"))
                .col(string_len("currency", 3))
                .col(string_len_null("product_category", 64))
                .col(string_len("status", 16))
                .col(date_time("occurred_at"))
                // SHA-256 of the order as first received, to tell a re-send from a conflict.
                .col(string_len("body_digest", 64))
                .col(big_integer_null("created_by"))
                .col(date_time("created_at"))
                .to_owned(),
        )
        .await?;
        create_index(
            manager,
            "ux_orders_external_ref",
            "orders",
            &["tenant_id", "external_ref"],
            true,
        )
        .await?;
        create_index(
            manager,
            "ix_orders_customer_time",
            "orders",
            &["customer_id", "occurred_at"],
            false,
        )
        .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        drop_table(manager, "orders").await
    }
}
