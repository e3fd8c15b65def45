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
                .table("channels")
                .col(big_pk_auto("id"))
                .col(big_integer("tenant_id"))
                .col(string_len("name", 64))
                .col(string_len("scene", 32))
                // JSON documents: the tag ids, the owner policy and the form fields.
                .col(text("default_tag_ids"))
                .col(text("owner_policy"))
                .col(text("form"))
                .col(string_len("privacy_policy_version", 32))
                .col(string_len_null("privacy_policy_url", 512))
                .col(date_time_null("starts_at"))
                .col(date_time_null("ends_at"))
                .col(boolean("active"))
                .col(big_integer("scans").default(0))
                .col(big_integer_null("created_by"))
                .col(date_time("created_at"))
                .col(date_time("updated_at"))
                .foreign_key(
                    ForeignKey::create()
                        .name("fk_channels_tenant")
                        .from("channels", "tenant_id")
                        .to("tenants", "id"),
                )
                .to_owned(),
        )
        .await?;
        create_index(
            manager,
            "ux_channels_tenant_scene",
            "channels",
            &["tenant_id", "scene"],
            true,
        )
        .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        drop_table(manager, "channels").await
    }
}
