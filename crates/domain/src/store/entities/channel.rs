use sea_orm::entity::prelude::*;

use crate::kernel::ids::{ChannelId, StaffId, TenantId};

use crate::kernel::values::{FormFields, OwnerPolicy, TagIds};

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "channels")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: ChannelId,
    pub tenant_id: TenantId,
    pub name: String,
    pub scene: String,
    #[sea_orm(column_type = "Text")]
    pub default_tag_ids: TagIds,
    #[sea_orm(column_type = "Text")]
    pub owner_policy: OwnerPolicy,
    #[sea_orm(column_type = "Text")]
    pub form: FormFields,
    pub privacy_policy_version: String,
    pub privacy_policy_url: Option<String>,
    pub starts_at: Option<DateTimeUtc>,
    pub ends_at: Option<DateTimeUtc>,
    pub active: bool,
    pub scans: i64,
    pub created_by: Option<StaffId>,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
