use sea_orm::entity::prelude::*;

use crate::kernel::ids::{TagGroupId, TenantId};

use crate::kernel::values::Dimension;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "tag_groups")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: TagGroupId,
    pub tenant_id: TenantId,
    pub name: String,
    pub name_key: String,
    pub dimension: Dimension,
    pub exclusive: bool,
    pub description: Option<String>,
    pub sort_order: i32,
    pub archived: bool,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
