use sea_orm_migration::{prelude::*, schema::*};

use super::{create_index, create_table, drop_table};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // One row per accepted capture form: the visit, the consent given, and the submitted
        // values that differed from what the customer record already held.
        create_table(
            manager,
            Table::create()
                .table("captures")
                .col(big_pk_auto("id"))
                .col(big_integer("tenant_id"))
                .col(big_integer("channel_id"))
                .col(big_integer("customer_id"))
                .col(big_integer("visitor_id"))
                .col(string_len("outcome", 16))
                .col(string_len_null("matched_by", 16))
                .col(text("conflicts"))
                .col(string_len("consent_policy_version", 32))
                .col(date_time("consented_at"))
                .col(date_time("created_at"))
                .foreign_key(
                    ForeignKey::create()
                        .name("fk_captures_channel")
                        .from("captures", "channel_id")
                        .to("channels", "id"),
                )
                .foreign_key(
                    ForeignKey::create()
                        .name("fk_captures_customer")
                        .from("captures", "customer_id")
                        .to("customers", "id"),
                )
                .to_owned(),
        )
        .await?;
        create_index(
            manager,
            "ix_captures_customer",
            "captures",
            &["tenant_id", "customer_id"],
            false,
        )
        .await?;
        create_index(
            manager,
            "ix_captures_channel_outcome",
            "captures",
            &["tenant_id", "channel_id", "outcome"],
            false,
        )
        .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        drop_table(manager, "captures").await
    }
}
