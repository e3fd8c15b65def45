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
                .table("rules")
                .col(big_pk_auto("id"))
                .col(big_integer("tenant_id"))
                .col(string_len("name", 64))
                .col(string_len("name_key", 64))
                .col(integer("priority"))
                .col(boolean("enabled"))
                // Starts at 1 and grows with every change of the condition or the actions.
                .col(integer("version"))
                // The condition tree and the action list, as JSON text.
                .col(text("condition"))
                .col(text("actions"))
                .col(big_integer_null("created_by"))
                .col(date_time("created_at"))
                .col(date_time("updated_at"))
                .to_owned(),
        )
        .await?;
        create_index(
            manager,
            "ux_rules_name",
            "rules",
            &["tenant_id", "name_key"],
            true,
        )
        .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        drop_table(manager, "rules").await
    }
}
