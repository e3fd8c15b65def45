use sea_orm_migration::{prelude::*, schema::*};

use super::{create_index, create_table, drop_table};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // A claimed `Idempotency-Key`: `response` is NULL while the first request runs and
        // holds its answer afterwards, written in the same transaction as its effects.
        create_table(
            manager,
            Table::create()
                .table("idempotency_keys")
                .col(big_pk_auto("id"))
                .col(string_len("scope", 64))
                .col(string_len("idem_key", 128))
                .col(string_len("request_hash", 64))
                .col(text_null("response"))
                .col(date_time("created_at"))
                .to_owned(),
        )
        .await?;
        create_index(
            manager,
            "ux_idempotency_keys_scope_key",
            "idempotency_keys",
            &["scope", "idem_key"],
            true,
        )
        .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        drop_table(manager, "idempotency_keys").await
    }
}
