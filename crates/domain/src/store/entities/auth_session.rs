use sea_orm::entity::prelude::*;

use crate::kernel::ids::{SessionId, TenantId};

use crate::kernel::values::SubjectKind;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "auth_sessions")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: SessionId,
    pub kind: SubjectKind,
    pub subject_id: i64,
    pub tenant_id: Option<TenantId>,
    pub created_at: DateTimeUtc,
    pub expires_at: DateTimeUtc,
    pub revoked_at: Option<DateTimeUtc>,
    pub revoked_reason: Option<String>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
