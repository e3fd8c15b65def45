use sea_orm_migration::{prelude::*, schema::*};

use super::create_index;

#[derive(DeriveMigrationName)]
pub struct Migration;

/// `(column)` added to `rule_states`, one per statement (SQLite adds one column per ALTER).
fn columns() -> Vec<ColumnDef> {
    vec![
        // A scheduler's claim on a due state: until when, and whose.
        date_time_null("lease_until"),
        string_len_null("lease_token", 32),
    ]
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for mut column in columns() {
            manager
                .alter_table(
                    Table::alter()
                        .table(Alias::new("rule_states"))
                        .add_column(&mut column)
                        .to_owned(),
                )
                .await?;
        }
        // The due-time queue across tenants, earliest first.
        create_index(
            manager,
            "ix_rule_states_next_due",
            "rule_states",
            &["next_due_at"],
            false,
        )
        .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_index(
                Index::drop()
                    .name("ix_rule_states_next_due")
                    .table(Alias::new("rule_states"))
                    .to_owned(),
            )
            .await?;
        for column in columns().into_iter().rev() {
            manager
                .alter_table(
                    Table::alter()
                        .table(Alias::new("rule_states"))
                        .drop_column(column.get_column_name())
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }
}
