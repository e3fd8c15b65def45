use sea_orm::entity::prelude::*;

use crate::kernel::ids::{CustomerId, RuleId, TenantId};

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "rule_states")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub customer_id: CustomerId,
    #[sea_orm(primary_key, auto_increment = false)]
    pub rule_id: RuleId,
    pub tenant_id: TenantId,
    pub holds: bool,
    pub rule_version: i32,
    pub since: DateTimeUtc,
    pub evaluated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
