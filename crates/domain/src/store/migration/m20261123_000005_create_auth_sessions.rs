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
                .table("auth_sessions")
                .col(big_pk_auto("id"))
                .col(string_len("kind", 16))
                .col(big_integer("subject_id"))
                .col(big_integer_null("tenant_id"))
                .col(date_time("created_at"))
                .col(date_time("expires_at"))
                .col(date_time_null("revoked_at"))
                .col(string_len_null("revoked_reason", 32))
                .to_owned(),
        )
        .await?;
        create_index(
            manager,
            "ix_auth_sessions_subject",
            "auth_sessions",
            &["kind", "subject_id"],
            false,
        )
        .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        drop_table(manager, "auth_sessions").await
    }
}
