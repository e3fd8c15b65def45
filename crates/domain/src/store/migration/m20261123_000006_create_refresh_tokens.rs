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
                .table("refresh_tokens")
                .col(big_pk_auto("id"))
                .col(big_integer("session_id"))
                .col(char_len("token_hash", 64))
                .col(date_time("expires_at"))
                .col(date_time_null("used_at"))
                .col(date_time("created_at"))
                .foreign_key(
                    ForeignKey::create()
                        .name("fk_refresh_tokens_session")
                        .from("refresh_tokens", "session_id")
                        .to("auth_sessions", "id"),
                )
                .to_owned(),
        )
        .await?;
        create_index(
            manager,
            "ux_refresh_tokens_hash",
            "refresh_tokens",
            &["token_hash"],
            true,
        )
        .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        drop_table(manager, "refresh_tokens").await
    }
}
