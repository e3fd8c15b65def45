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
                .table("audit_log")
                .col(big_pk_auto("id"))
                .col(big_integer_null("tenant_id"))
                .col(string_len("actor_kind", 16))
                .col(big_integer_null("actor_id"))
                .col(string_len("action", 64))
                .col(string_len("target_type", 32))
                .col(string_len_null("target_id", 64))
                .col(text_null("details"))
                .col(date_time("created_at"))
                .to_owned(),
        )
        .await?;
        create_index(
            manager,
            "ix_audit_log_tenant_time",
            "audit_log",
            &["tenant_id", "created_at"],
            false,
        )
        .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        drop_table(manager, "audit_log").await
    }
}
