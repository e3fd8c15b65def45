use sea_orm_migration::{prelude::*, schema::*};

use super::{create_index, create_table, drop_table};

#[derive(DeriveMigrationName)]
pub struct Migration;

/// Columns of `rule_states` the due-time queue leaves behind, last added first.
const MOVED: [&str; 3] = ["lease_token", "lease_until", "next_due_at"];

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // The due-time queue: per customer, the earliest instant any rule's verdict can change
        // with no new fact, and a scheduler's claim on it. One row per customer with something
        // due, instead of one per (customer, rule).
        create_table(
            manager,
            Table::create()
                .table("rule_due")
                .col(big_integer("customer_id").primary_key())
                .col(big_integer("tenant_id"))
                .col(date_time("next_due_at"))
                .col(date_time_null("lease_until"))
                .col(string_len_null("lease_token", 32))
                .to_owned(),
        )
        .await?;
        create_index(
            manager,
            "ix_rule_due_next",
            "rule_due",
            &["next_due_at"],
            false,
        )
        .await?;
        manager
            .get_connection()
            .execute_unprepared(
                "INSERT INTO rule_due (customer_id, tenant_id, next_due_at) \
                 SELECT customer_id, MAX(tenant_id), MIN(next_due_at) FROM rule_states \
                 WHERE next_due_at IS NOT NULL GROUP BY customer_id",
            )
            .await?;
        for index in ["ix_rule_states_next_due", "ix_rule_states_due"] {
            manager
                .drop_index(
                    Index::drop()
                        .name(index)
                        .table(Alias::new("rule_states"))
                        .to_owned(),
                )
                .await?;
        }
        for column in MOVED {
            manager
                .alter_table(
                    Table::alter()
                        .table(Alias::new("rule_states"))
                        .drop_column(Alias::new(column))
                        .to_owned(),
                )
                .await?;
        }
        // A rule that only tags needs no state of its own any more, except while it holds for
        // the tasks of an edge: rows of verdicts that no longer hold go.
        manager
            .get_connection()
            .execute_unprepared("DELETE FROM rule_states WHERE holds = FALSE")
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // The columns and indexes back, each state due when its customer was (a state gone
        // comes back on the customer's next evaluation).
        for mut column in [
            date_time_null("next_due_at"),
            date_time_null("lease_until"),
            string_len_null("lease_token", 32),
        ] {
            manager
                .alter_table(
                    Table::alter()
                        .table(Alias::new("rule_states"))
                        .add_column(&mut column)
                        .to_owned(),
                )
                .await?;
        }
        manager
            .get_connection()
            .execute_unprepared(
                "UPDATE rule_states SET next_due_at = \
                 (SELECT d.next_due_at FROM rule_due d WHERE d.customer_id = rule_states.customer_id)",
            )
            .await?;
        create_index(
            manager,
            "ix_rule_states_due",
            "rule_states",
            &["tenant_id", "next_due_at"],
            false,
        )
        .await?;
        create_index(
            manager,
            "ix_rule_states_next_due",
            "rule_states",
            &["next_due_at"],
            false,
        )
        .await?;
        drop_table(manager, "rule_due").await
    }
}
