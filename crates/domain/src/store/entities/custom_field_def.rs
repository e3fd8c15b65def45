use sea_orm::entity::prelude::*;

use crate::kernel::ids::{CustomFieldId, TenantId};

use crate::kernel::values::{FieldOptions, FieldType};

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "custom_field_defs")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: CustomFieldId,
    pub tenant_id: TenantId,
    pub field_key: String,
    pub label: String,
    pub field_type: FieldType,
    /// JSON array of option labels (empty for non-select fields).
    #[sea_orm(column_type = "Text")]
    pub options: FieldOptions,
    pub required: bool,
    pub created_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
