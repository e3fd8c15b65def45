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
                .table("tasks")
                .col(big_pk_auto("id"))
                .col(big_integer("tenant_id"))
                .col(big_integer("assignee_id"))
                .col(string_len("kind", 32))
                .col(string_len("title", 128))
                .col(big_integer_null("customer_id"))
                .col(big_integer_null("channel_id"))
                .col(string_len("status", 16))
                .col(date_time("created_at"))
                .col(date_time_null("completed_at"))
                // When the WeChat subscribe message went out, or why it did not.
                .col(date_time_null("notified_at"))
                .col(string_len_null("notify_error", 255))
                .foreign_key(
                    ForeignKey::create()
                        .name("fk_tasks_assignee")
                        .from("tasks", "assignee_id")
                        .to("staff", "id"),
                )
                .to_owned(),
        )
        .await?;
        create_index(
            manager,
            "ix_tasks_assignee_status",
            "tasks",
            &["tenant_id", "assignee_id", "status", "id"],
            false,
        )
        .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        drop_table(manager, "tasks").await
    }
}
