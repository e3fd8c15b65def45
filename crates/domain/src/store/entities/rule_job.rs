use sea_orm::entity::prelude::*;

use crate::kernel::ids::{RuleId, StaffId, TenantId};

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "rule_jobs")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub tenant_id: TenantId,
    pub kind: String,
    pub rule_id: Option<RuleId>,
    pub status: String,
    pub total: Option<i64>,
    pub processed: i64,
    pub changed: i64,
    pub corrections: i64,
    pub sample: Option<String>,
    pub cursor: i64,
    pub created_by: Option<StaffId>,
    pub created_at: DateTimeUtc,
    pub started_at: Option<DateTimeUtc>,
    pub finished_at: Option<DateTimeUtc>,
    pub lease_until: Option<DateTimeUtc>,
    pub lease_token: Option<String>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
