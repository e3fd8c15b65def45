use sea_orm::entity::prelude::*;

use crate::kernel::ids::{ChannelId, CustomerId, StaffId, TenantId};

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "customers")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: CustomerId,
    pub tenant_id: TenantId,
    pub name: String,
    pub phone: Option<String>,
    pub phone_index: Option<String>,
    pub company: Option<String>,
    pub industry: Option<String>,
    pub region: Option<String>,
    pub owner_id: Option<StaffId>,
    pub source_channel_id: Option<ChannelId>,
    pub project_stage: Option<String>,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
    pub last_active_at: Option<DateTimeUtc>,
    pub last_follow_up_at: Option<DateTimeUtc>,
    pub last_order_at: Option<DateTimeUtc>,
    pub deleted_at: Option<DateTimeUtc>,
    pub openid: Option<String>,
    pub unionid: Option<String>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
