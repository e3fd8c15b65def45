//! The schema, as one ordered set of migrations that runs on SQLite and on MySQL/MariaDB.
//!
//! One migration per file, named `mYYYYMMDD_NNNNNN_what`. Tables on MySQL are created as
//! InnoDB with `utf8mb4` and a binary collation, so that string comparison behaves as it does
//! on SQLite (byte-wise); names that must compare loosely are normalised by the domain code.

use sea_orm_migration::prelude::*;

mod m20261123_000001_create_tenants;
mod m20261123_000002_create_staff;
mod m20261123_000003_create_invites;
mod m20261123_000004_create_visitors;
mod m20261123_000005_create_auth_sessions;
mod m20261123_000006_create_refresh_tokens;
mod m20261123_000007_create_audit_log;
mod m20261123_000008_create_tag_groups;
mod m20261123_000009_create_tags;
mod m20261123_000010_create_customers;
mod m20261123_000011_create_customer_tags;
mod m20261123_000012_create_tag_history;
mod m20261123_000013_create_custom_field_defs;
mod m20261123_000014_create_customer_field_values;
mod m20261123_000015_create_tenant_data_versions;
mod m20261124_000016_add_customer_wechat_identity;
mod m20261124_000017_create_channels;
mod m20261124_000018_create_channel_owner_turns;
mod m20261124_000019_create_captures;
mod m20261124_000020_create_tasks;
mod m20261124_000021_create_idempotency_keys;
mod m20261124_000022_create_domain_events;
mod m20261201_000023_add_task_visits;
mod m20261201_000024_add_idempotency_claim_token;
mod m20261201_000025_create_orders;
mod m20261201_000026_create_follow_ups;
mod m20261201_000027_create_activity_events;
mod m20261201_000028_create_rules;
mod m20261201_000029_create_rule_states;
mod m20261201_000030_create_tag_vetoes;
mod m20261201_000031_add_rule_attribution;
mod m20261201_000032_create_tenant_config_versions;
mod m20261201_000033_add_outbox_delivery;
mod m20261201_000034_add_rule_state_leases;
mod m20261201_000035_create_rule_jobs;
mod m20261201_000036_create_rule_versions;
mod m20261201_000037_create_rule_due;
mod m20261202_000038_create_customer_changes;

pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20261123_000001_create_tenants::Migration),
            Box::new(m20261123_000002_create_staff::Migration),
            Box::new(m20261123_000003_create_invites::Migration),
            Box::new(m20261123_000004_create_visitors::Migration),
            Box::new(m20261123_000005_create_auth_sessions::Migration),
            Box::new(m20261123_000006_create_refresh_tokens::Migration),
            Box::new(m20261123_000007_create_audit_log::Migration),
            Box::new(m20261123_000008_create_tag_groups::Migration),
            Box::new(m20261123_000009_create_tags::Migration),
            Box::new(m20261123_000010_create_customers::Migration),
            Box::new(m20261123_000011_create_customer_tags::Migration),
            Box::new(m20261123_000012_create_tag_history::Migration),
            Box::new(m20261123_000013_create_custom_field_defs::Migration),
            Box::new(m20261123_000014_create_customer_field_values::Migration),
            Box::new(m20261123_000015_create_tenant_data_versions::Migration),
            Box::new(m20261124_000016_add_customer_wechat_identity::Migration),
            Box::new(m20261124_000017_create_channels::Migration),
            Box::new(m20261124_000018_create_channel_owner_turns::Migration),
            Box::new(m20261124_000019_create_captures::Migration),
            Box::new(m20261124_000020_create_tasks::Migration),
            Box::new(m20261124_000021_create_idempotency_keys::Migration),
            Box::new(m20261124_000022_create_domain_events::Migration),
            Box::new(m20261201_000023_add_task_visits::Migration),
            Box::new(m20261201_000024_add_idempotency_claim_token::Migration),
            Box::new(m20261201_000025_create_orders::Migration),
            Box::new(m20261201_000026_create_follow_ups::Migration),
            Box::new(m20261201_000027_create_activity_events::Migration),
            Box::new(m20261201_000028_create_rules::Migration),
            Box::new(m20261201_000029_create_rule_states::Migration),
            Box::new(m20261201_000030_create_tag_vetoes::Migration),
            Box::new(m20261201_000031_add_rule_attribution::Migration),
            Box::new(m20261201_000032_create_tenant_config_versions::Migration),
            Box::new(m20261201_000033_add_outbox_delivery::Migration),
            Box::new(m20261201_000034_add_rule_state_leases::Migration),
            Box::new(m20261201_000035_create_rule_jobs::Migration),
            Box::new(m20261201_000036_create_rule_versions::Migration),
            Box::new(m20261201_000037_create_rule_due::Migration),
            Box::new(m20261202_000038_create_customer_changes::Migration),
        ]
    }
}

/// Creates a table, adding the MySQL storage options where they apply.
async fn create_table(
    manager: &SchemaManager<'_>,
    mut statement: TableCreateStatement,
) -> Result<(), DbErr> {
    if manager.get_database_backend() == sea_orm::DatabaseBackend::MySql {
        statement
            .engine("InnoDB")
            .character_set("utf8mb4")
            .collate("utf8mb4_bin");
    }
    manager.create_table(statement).await
}

/// Creates a (possibly unique) index named `name` on `table(columns)`.
async fn create_index(
    manager: &SchemaManager<'_>,
    name: &str,
    table: &str,
    columns: &[&str],
    unique: bool,
) -> Result<(), DbErr> {
    let mut index = Index::create();
    index.name(name).table(Alias::new(table));
    for column in columns {
        index.col(Alias::new(*column));
    }
    if unique {
        index.unique();
    }
    manager.create_index(index).await
}

async fn drop_table(manager: &SchemaManager<'_>, table: &str) -> Result<(), DbErr> {
    manager
        .drop_table(Table::drop().table(Alias::new(table)).to_owned())
        .await
}
