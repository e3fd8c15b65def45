use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

/// `(table, column)` added, one per statement (SQLite adds one column per ALTER).
fn columns() -> Vec<(&'static str, ColumnDef)> {
    vec![
        // The rule (and its version) that assigned a link, and the values that satisfied it.
        ("customer_tags", big_integer_null("rule_id")),
        ("customer_tags", integer_null("rule_version")),
        ("customer_tags", text_null("evidence")),
        // The same on each history row, with the sentence that explains it.
        ("tag_history", big_integer_null("rule_id")),
        ("tag_history", integer_null("rule_version")),
        ("tag_history", string_len_null("reason", 200)),
        // The project stages a tenant uses, as a JSON list; NULL for the default list.
        ("tenants", text_null("project_stages")),
        // A task a rule raised: when it is due, and which rule raised it.
        ("tasks", date_time_null("due_at")),
        ("tasks", big_integer_null("rule_id")),
    ]
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for (table, mut column) in columns() {
            manager
                .alter_table(
                    Table::alter()
                        .table(Alias::new(table))
                        .add_column(&mut column)
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for (table, column) in columns().into_iter().rev() {
            manager
                .alter_table(
                    Table::alter()
                        .table(Alias::new(table))
                        .drop_column(column.get_column_name())
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }
}
