use sea_orm::entity::prelude::*;

use crate::kernel::ids::{CustomerId, RuleId, StaffId, TagId, TenantId};

use crate::kernel::tagging::TagSource;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "customer_tags")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub customer_id: CustomerId,
    #[sea_orm(primary_key, auto_increment = false)]
    pub tag_id: TagId,
    pub tenant_id: TenantId,
    pub source: TagSource,
    pub reason: Option<String>,
    pub assigned_by: Option<StaffId>,
    pub created_at: DateTimeUtc,
    pub rule_id: Option<RuleId>,
    pub rule_version: Option<i32>,
    #[sea_orm(column_type = "Text", nullable)]
    pub evidence: Option<String>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
