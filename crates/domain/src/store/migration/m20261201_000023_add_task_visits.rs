use sea_orm_migration::{prelude::*, schema::*};

use super::create_index;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // A customer who keeps coming back within the follow-up window is counted on the one
        // open task instead of raising a new one each visit. SQLite adds one column per
        // statement.
        manager
            .alter_table(
                Table::alter()
                    .table("tasks")
                    .add_column(integer("visits").default(1))
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table("tasks")
                    .add_column(date_time_null("last_visit_at"))
                    .to_owned(),
            )
            .await?;
        create_index(
            manager,
            "ix_tasks_customer_status",
            "tasks",
            &["tenant_id", "customer_id", "status", "created_at"],
            false,
        )
        .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_index(
                Index::drop()
                    .name("ix_tasks_customer_status")
                    .table("tasks")
                    .to_owned(),
            )
            .await?;
        for column in ["visits", "last_visit_at"] {
            manager
                .alter_table(
                    Table::alter()
                        .table("tasks")
                        .drop_column(Alias::new(column))
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }
}
