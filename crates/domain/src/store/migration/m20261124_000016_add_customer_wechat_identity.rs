use sea_orm_migration::{prelude::*, schema::*};

use super::create_index;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // The WeChat identity of a customer who captured themselves by scanning a channel code.
        // Like `phone_index`, both are NULL once the customer is deleted, so the unique indexes
        // free the identity for a new record. SQLite adds one column per statement.
        for column in ["openid", "unionid"] {
            manager
                .alter_table(
                    Table::alter()
                        .table("customers")
                        .add_column(string_len_null(column, 64))
                        .to_owned(),
                )
                .await?;
        }
        create_index(
            manager,
            "ux_customers_tenant_openid",
            "customers",
            &["tenant_id", "openid"],
            true,
        )
        .await?;
        create_index(
            manager,
            "ux_customers_tenant_unionid",
            "customers",
            &["tenant_id", "unionid"],
            true,
        )
        .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for index in ["ux_customers_tenant_openid", "ux_customers_tenant_unionid"] {
            manager
                .drop_index(Index::drop().name(index).table("customers").to_owned())
                .await?;
        }
        for column in ["openid", "unionid"] {
            manager
                .alter_table(
                    Table::alter()
                        .table("customers")
                        .drop_column(column)
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }
}
