use sea_orm::entity::prelude::*;

use crate::kernel::ids::{CaptureId, ChannelId, CustomerId, TenantId, VisitorId};

use crate::kernel::values::{Conflicts, MatchedBy, Outcome};

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "captures")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: CaptureId,
    pub tenant_id: TenantId,
    pub channel_id: ChannelId,
    pub customer_id: CustomerId,
    pub visitor_id: VisitorId,
    pub outcome: Outcome,
    pub matched_by: Option<MatchedBy>,
    #[sea_orm(column_type = "Text")]
    pub conflicts: Conflicts,
    pub consent_policy_version: String,
    pub consented_at: DateTimeUtc,
    pub created_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
