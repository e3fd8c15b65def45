use sea_orm_migration::{prelude::*, schema::*};

use super::{create_index, create_table, drop_table};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // One row per value (a multi-select has one per option), so equality filters are
        // indexed lookups on both backends.
        create_table(
            manager,
            Table::create()
                .table("customer_field_values")
                .col(big_integer("customer_id"))
                .col(big_integer("field_id"))
                .col(string_len("value", 200))
                .col(big_integer("tenant_id"))
                .primary_key(
                    Index::create()
                        .col("customer_id")
                        .col("field_id")
                        .col("value"),
                )
                .to_owned(),
        )
        .await?;
        create_index(
            manager,
            "ix_customer_field_values_lookup",
            "customer_field_values",
            &["tenant_id", "field_id", "value", "customer_id"],
            false,
        )
        .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        drop_table(manager, "customer_field_values").await
    }
}
