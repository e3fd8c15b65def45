use sea_orm_migration::{prelude::*, schema::*};

use super::{create_table, drop_table};

#[derive(DeriveMigrationName)]
pub struct Migration;

const COLUMNS: [&str; 8] = [
    "tenant_id",
    "name",
    "priority",
    "condition",
    "actions",
    "created_by",
    "version",
    "created_at",
];

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // Every version of every rule: what the condition and actions were, so that a tag's
        // explanation ("rule 3, v2") can be read back after the rule changed.
        create_table(
            manager,
            Table::create()
                .table("rule_versions")
                .col(big_integer("rule_id"))
                .col(integer("version"))
                .col(big_integer("tenant_id"))
                .col(string_len("name", 64))
                .col(integer("priority"))
                .col(text("condition"))
                .col(text("actions"))
                .col(big_integer_null("created_by"))
                .col(date_time("created_at"))
                .primary_key(Index::create().col("rule_id").col("version"))
                .to_owned(),
        )
        .await?;
        // The rules already there: their current version.
        let mut select = Query::select();
        select.column(Alias::new("id")).from(Alias::new("rules"));
        for column in COLUMNS {
            let source = if column == "created_at" {
                "updated_at"
            } else {
                column
            };
            select.column(Alias::new(source));
        }
        let mut insert = Query::insert();
        insert
            .into_table(Alias::new("rule_versions"))
            .columns(std::iter::once(Alias::new("rule_id")).chain(COLUMNS.map(Alias::new)));
        insert
            .select_from(select)
            .map_err(|e| DbErr::Custom(e.to_string()))?;
        manager.exec_stmt(insert).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        drop_table(manager, "rule_versions").await
    }
}
