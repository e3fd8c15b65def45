use sea_orm::entity::prelude::*;

use crate::kernel::ids::{StaffId, TenantId};

use crate::kernel::values::Role;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "staff")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: StaffId,
    pub tenant_id: TenantId,
    pub openid: String,
    pub unionid: Option<String>,
    pub display_name: String,
    pub role: Role,
    pub active: bool,
    pub last_login_at: Option<DateTimeUtc>,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
