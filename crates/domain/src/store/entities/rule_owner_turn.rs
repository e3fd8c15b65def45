use sea_orm::entity::prelude::*;

use crate::kernel::ids::RuleId;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "rule_owner_turns")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub rule_id: RuleId,
    pub tenant_id: i64,
    pub taken: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
