use sea_orm::entity::prelude::*;

use crate::kernel::ids::{CustomerId, EventId, StaffId, TenantId};

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "activity_events")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: EventId,
    pub tenant_id: TenantId,
    pub customer_id: CustomerId,
    pub kind: String,
    #[sea_orm(column_type = "Text", nullable)]
    pub properties: Option<String>,
    pub occurred_at: DateTimeUtc,
    pub sent_by: Option<StaffId>,
    pub created_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
