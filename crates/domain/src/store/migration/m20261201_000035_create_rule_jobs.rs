use sea_orm_migration::{prelude::*, schema::*};

use super::{create_index, create_table, drop_table};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // Background evaluations of a tenant's customers: a backfill after a rule is saved,
        // or a full re-check. Progress is kept per batch, so a job resumes where it stopped.
        create_table(
            manager,
            Table::create()
                .table("rule_jobs")
                .col(big_pk_auto("id"))
                .col(big_integer("tenant_id"))
                .col(string_len("kind", 16))
                .col(big_integer_null("rule_id"))
                .col(string_len("status", 16))
                .col(big_integer_null("total"))
                .col(big_integer("processed").default(0))
                .col(big_integer("changed").default(0))
                .col(big_integer("corrections").default(0))
                // Up to 20 of the tag changes made, as JSON.
                .col(text_null("sample"))
                // The last customer id evaluated.
                .col(big_integer("cursor").default(0))
                .col(big_integer_null("created_by"))
                .col(date_time("created_at"))
                .col(date_time_null("started_at"))
                .col(date_time_null("finished_at"))
                .col(date_time_null("lease_until"))
                .col(string_len_null("lease_token", 32))
                .to_owned(),
        )
        .await?;
        create_index(
            manager,
            "ix_rule_jobs_tenant",
            "rule_jobs",
            &["tenant_id", "id"],
            false,
        )
        .await?;
        create_index(
            manager,
            "ix_rule_jobs_status",
            "rule_jobs",
            &["status", "id"],
            false,
        )
        .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        drop_table(manager, "rule_jobs").await
    }
}
