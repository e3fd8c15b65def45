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
                .table("customers")
                .col(big_pk_auto("id"))
                .col(big_integer("tenant_id"))
                .col(string_len("name", 64))
                .col(string_len_null("phone", 20))
                // The phone while the customer is live, NULL once deleted: the unique index
                // below then frees the number for a new record.
                .col(string_len_null("phone_index", 20))
                .col(string_len_null("company", 100))
                .col(string_len_null("industry", 64))
                .col(string_len_null("region", 64))
                .col(big_integer_null("owner_id"))
                .col(big_integer_null("source_channel_id"))
                .col(string_len_null("project_stage", 32))
                .col(date_time("created_at"))
                .col(date_time("updated_at"))
                .col(date_time_null("last_active_at"))
                .col(date_time_null("last_follow_up_at"))
                .col(date_time_null("last_order_at"))
                .col(date_time_null("deleted_at"))
                .foreign_key(
                    ForeignKey::create()
                        .name("fk_customers_tenant")
                        .from("customers", "tenant_id")
                        .to("tenants", "id"),
                )
                .to_owned(),
        )
        .await?;
        create_index(
            manager,
            "ux_customers_tenant_phone",
            "customers",
            &["tenant_id", "phone_index"],
            true,
        )
        .await?;
        create_index(
            manager,
            "ix_customers_tenant_owner",
            "customers",
            &["tenant_id", "owner_id"],
            false,
        )
        .await?;
        create_index(
            manager,
            "ix_customers_tenant_created",
            "customers",
            &["tenant_id", "created_at"],
            false,
        )
        .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        drop_table(manager, "customers").await
    }
}
