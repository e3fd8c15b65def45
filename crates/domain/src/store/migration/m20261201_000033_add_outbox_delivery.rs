use sea_orm_migration::{prelude::*, schema::*};

use super::{create_index, create_table, drop_table};

#[derive(DeriveMigrationName)]
pub struct Migration;

/// `(column)` added to `domain_events`, one per statement (SQLite adds one column per ALTER).
fn columns() -> Vec<ColumnDef> {
    vec![
        // A consumer's claim on the row: until when, and whose.
        date_time_null("lease_until"),
        string_len_null("lease_token", 32),
        // How many times delivery was tried, and how the last try ended.
        integer("attempts").default(0).to_owned(),
        string_len_null("outcome", 255),
    ]
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for mut column in columns() {
            manager
                .alter_table(
                    Table::alter()
                        .table(Alias::new("domain_events"))
                        .add_column(&mut column)
                        .to_owned(),
                )
                .await?;
        }
        // What is waiting, in id order.
        create_index(
            manager,
            "ix_domain_events_pending",
            "domain_events",
            &["processed_at", "id"],
            false,
        )
        .await?;
        // The events written before they had a consumer were acted on when they were written.
        manager
            .exec_stmt(
                Query::update()
                    .table(Alias::new("domain_events"))
                    .value(
                        Alias::new("processed_at"),
                        Expr::col(Alias::new("created_at")),
                    )
                    .value(Alias::new("outcome"), "written before delivery existed")
                    .and_where(Expr::col(Alias::new("processed_at")).is_null())
                    .to_owned(),
            )
            .await?;
        // A rule's round-robin turns when it assigns owners, like a channel's.
        create_table(
            manager,
            Table::create()
                .table("rule_owner_turns")
                .col(big_integer("rule_id").primary_key())
                .col(big_integer("tenant_id"))
                .col(big_integer("taken").default(0))
                .to_owned(),
        )
        .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        drop_table(manager, "rule_owner_turns").await?;
        manager
            .drop_index(
                Index::drop()
                    .name("ix_domain_events_pending")
                    .table(Alias::new("domain_events"))
                    .to_owned(),
            )
            .await?;
        for column in columns().into_iter().rev() {
            manager
                .alter_table(
                    Table::alter()
                        .table(Alias::new("domain_events"))
                        .drop_column(column.get_column_name())
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }
}
