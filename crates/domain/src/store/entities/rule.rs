use sea_orm::entity::prelude::*;

use crate::kernel::ids::{RuleId, StaffId, TenantId};

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "rules")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: RuleId,
    pub tenant_id: TenantId,
    pub name: String,
    pub name_key: String,
    pub priority: i32,
    pub enabled: bool,
    pub version: i32,
    /// The condition tree as JSON text (`null` for a rule that applies to every customer).
    #[sea_orm(column_type = "Text")]
    pub condition: String,
    /// The action list as JSON text.
    #[sea_orm(column_type = "Text")]
    pub actions: String,
    pub created_by: Option<StaffId>,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
