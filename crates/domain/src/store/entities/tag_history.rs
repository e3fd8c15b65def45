use sea_orm::entity::prelude::*;

use crate::kernel::ids::{CustomerId, RuleId, StaffId, TagId, TenantId};

use crate::kernel::tagging::{TagAction, TagSource};

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "tag_history")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub tenant_id: TenantId,
    pub customer_id: CustomerId,
    pub tag_id: TagId,
    pub action: TagAction,
    pub source: TagSource,
    pub actor_id: Option<StaffId>,
    pub note: Option<String>,
    pub created_at: DateTimeUtc,
    pub rule_id: Option<RuleId>,
    pub rule_version: Option<i32>,
    pub reason: Option<String>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
