use sea_orm::entity::prelude::*;

use crate::kernel::ids::{CustomerId, OrderId, StaffId, TenantId};
use crate::kernel::values::OrderStatus;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "orders")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: OrderId,
    pub tenant_id: TenantId,
    pub customer_id: CustomerId,
    pub external_ref: Option<String>,
    pub amount_fen: i64,
    pub currency: String,
    pub product_category: Option<String>,
    pub status: OrderStatus,
    pub occurred_at: DateTimeUtc,
    pub body_digest: String,
    pub created_by: Option<StaffId>,
    pub created_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
