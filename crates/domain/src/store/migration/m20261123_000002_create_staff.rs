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
                .table("staff")
                .col(big_pk_auto("id"))
                .col(big_integer("tenant_id"))
                .col(string_len("openid", 64))
                .col(string_len_null("unionid", 64))
                .col(string_len("display_name", 64))
                .col(string_len("role", 16))
                .col(boolean("active"))
                .col(date_time_null("last_login_at"))
                .col(date_time("created_at"))
                .col(date_time("updated_at"))
                .foreign_key(
                    ForeignKey::create()
                        .name("fk_staff_tenant")
                        .from("staff", "tenant_id")
                        .to("tenants", "id"),
                )
                .to_owned(),
        )
        .await?;
        create_index(
            manager,
            "ux_staff_tenant_openid",
            "staff",
            &["tenant_id", "openid"],
            true,
        )
        .await?;
        create_index(manager, "ix_staff_openid", "staff", &["openid"], false).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        drop_table(manager, "staff").await
    }
}
