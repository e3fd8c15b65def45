use sea_orm::entity::prelude::*;

use crate::kernel::ids::{CustomFieldId, CustomerId, TenantId};

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "customer_field_values")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub customer_id: CustomerId,
    #[sea_orm(primary_key, auto_increment = false)]
    pub field_id: CustomFieldId,
    #[sea_orm(primary_key, auto_increment = false)]
    pub value: String,
    pub tenant_id: TenantId,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
