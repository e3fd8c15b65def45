use sea_orm::entity::prelude::*;

use crate::kernel::values::{Conflicts, MatchedBy, Outcome};

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "captures")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub tenant_id: i64,
    pub channel_id: i64,
    pub customer_id: i64,
    pub visitor_id: i64,
    pub outcome: Outcome,
    pub matched_by: Option<MatchedBy>,
    #[sea_orm(column_type = "Text")]
    pub conflicts: Conflicts,
    pub consent_policy_version: String,
    pub consented_at: DateTimeUtc,
    pub created_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
