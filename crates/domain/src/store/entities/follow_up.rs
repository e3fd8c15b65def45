use sea_orm::entity::prelude::*;

use crate::kernel::ids::{CustomerId, FollowUpId, StaffId, TenantId};
use crate::kernel::values::FollowUpKind;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "follow_ups")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: FollowUpId,
    pub tenant_id: TenantId,
    pub customer_id: CustomerId,
    pub author_id: Option<StaffId>,
    pub kind: FollowUpKind,
    #[sea_orm(column_type = "Text")]
    pub content: String,
    pub stage: Option<String>,
    pub next_follow_up_on: Option<Date>,
    pub occurred_at: DateTimeUtc,
    pub created_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
