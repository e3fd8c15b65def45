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
                .table("activity_events")
                .col(big_pk_auto("id"))
                .col(big_integer("tenant_id"))
                .col(big_integer("customer_id"))
                // visit, page_view, login, or custom:<name>.
                .col(string_len("kind", 64))
                // A small JSON object, as text.
                .col(text_null("properties"))
                .col(date_time("occurred_at"))
                // Who sent it: a staff member, or the visitor (then NULL).
                .col(big_integer_null("sent_by"))
                .col(date_time("created_at"))
                .to_owned(),
        )
        .await?;
        create_index(
            manager,
            "ix_activity_events_customer_kind_time",
            "activity_events",
            &["customer_id", "kind", "occurred_at"],
            false,
        )
        .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        drop_table(manager, "activity_events").await
    }
}
