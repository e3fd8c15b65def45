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
                .table("visitors")
                .col(big_pk_auto("id"))
                .col(string_len("openid", 64))
                .col(string_len_null("unionid", 64))
                .col(date_time("created_at"))
                .col(date_time("last_login_at"))
                .to_owned(),
        )
        .await?;
        create_index(manager, "ux_visitors_openid", "visitors", &["openid"], true).await?;
        create_index(
            manager,
            "ix_visitors_unionid",
            "visitors",
            &["unionid"],
            false,
        )
        .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        drop_table(manager, "visitors").await
    }
}
