use sea_orm_migration::{prelude::*, schema::*};

use super::{create_index, create_table, drop_table};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // The last verdict of each rule on each customer: what makes tasks and messages fire
        // once per transition, and when the verdict can next change with time alone.
        create_table(
            manager,
            Table::create()
                .table("rule_states")
                .col(big_integer("customer_id"))
                .col(big_integer("rule_id"))
                .col(big_integer("tenant_id"))
                .col(boolean("holds"))
                .col(integer("rule_version"))
                // When the current verdict began.
                .col(date_time("since"))
                .col(date_time("evaluated_at"))
                // The earliest instant the verdict can change with no new fact; NULL for never.
                .col(date_time_null("next_due_at"))
                .primary_key(Index::create().col("customer_id").col("rule_id"))
                .to_owned(),
        )
        .await?;
        create_index(
            manager,
            "ix_rule_states_due",
            "rule_states",
            &["tenant_id", "next_due_at"],
            false,
        )
        .await?;
        create_index(
            manager,
            "ix_rule_states_rule",
            "rule_states",
            &["rule_id", "holds"],
            false,
        )
        .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        drop_table(manager, "rule_states").await
    }
}
