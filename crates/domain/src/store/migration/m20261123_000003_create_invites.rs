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
                .table("invites")
                .col(big_pk_auto("id"))
                .col(big_integer("tenant_id"))
                .col(char_len("code_hash", 64))
                .col(string_len("role", 16))
                .col(string_len_null("display_name", 64))
                .col(big_integer_null("created_by"))
                .col(date_time("expires_at"))
                .col(date_time_null("used_at"))
                .col(big_integer_null("used_by"))
                .col(date_time("created_at"))
                .foreign_key(
                    ForeignKey::create()
                        .name("fk_invites_tenant")
                        .from("invites", "tenant_id")
                        .to("tenants", "id"),
                )
                .to_owned(),
        )
        .await?;
        create_index(
            manager,
            "ux_invites_code_hash",
            "invites",
            &["code_hash"],
            true,
        )
        .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        drop_table(manager, "invites").await
    }
}
