use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // Which attempt holds a claim, so that an attempt releases only its own: one whose
        // claim insert may or may not have committed (the connection broke) can then release
        // it safely, even if another request has claimed the key since.
        manager
            .alter_table(
                Table::alter()
                    .table("idempotency_keys")
                    .add_column(string_len_null("claim_token", 32))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table("idempotency_keys")
                    .drop_column(Alias::new("claim_token"))
                    .to_owned(),
            )
            .await
    }
}
