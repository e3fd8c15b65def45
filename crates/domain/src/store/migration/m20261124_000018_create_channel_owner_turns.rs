use sea_orm_migration::{prelude::*, schema::*};

use super::{create_table, drop_table};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // The round-robin cursor of a channel, in a row of its own: a capture locks it to take
        // the next turn. Kept out of `channels` because every capture's foreign keys take a
        // shared lock on its channel row, and a shared lock held by two captures that both
        // want the exclusive one is a deadlock on InnoDB.
        create_table(
            manager,
            Table::create()
                .table("channel_owner_turns")
                .col(big_integer("channel_id").primary_key())
                .col(big_integer("tenant_id"))
                // Turns taken so far: the next capture goes to member `taken % members`.
                .col(big_integer("taken").default(0))
                .foreign_key(
                    ForeignKey::create()
                        .name("fk_channel_owner_turns_channel")
                        .from("channel_owner_turns", "channel_id")
                        .to("channels", "id"),
                )
                .to_owned(),
        )
        .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        drop_table(manager, "channel_owner_turns").await
    }
}
