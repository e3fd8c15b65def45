use sea_orm::entity::prelude::*;

use crate::kernel::ids::{RuleId, StaffId, TenantId};

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "rule_versions")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub rule_id: RuleId,
    #[sea_orm(primary_key, auto_increment = false)]
    pub version: i32,
    pub tenant_id: TenantId,
    pub name: String,
    pub priority: i32,
    pub condition: String,
    pub actions: String,
    pub created_by: Option<StaffId>,
    pub created_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
