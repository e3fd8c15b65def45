use sea_orm::entity::prelude::*;

use crate::kernel::ids::{TagGroupId, TagId, TenantId};

use crate::kernel::values::TagStatus;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "tags")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: TagId,
    pub tenant_id: TenantId,
    pub group_id: TagGroupId,
    pub name: String,
    pub name_key: String,
    pub color: String,
    pub definition: Option<String>,
    pub sort_order: i32,
    pub status: TagStatus,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
