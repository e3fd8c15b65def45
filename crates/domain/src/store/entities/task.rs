use sea_orm::entity::prelude::*;

use crate::kernel::ids::{ChannelId, CustomerId, RuleId, StaffId, TaskId, TenantId};

use crate::kernel::values::{TaskKind, TaskStatus};

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "tasks")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: TaskId,
    pub tenant_id: TenantId,
    pub assignee_id: StaffId,
    pub kind: TaskKind,
    pub title: String,
    pub customer_id: Option<CustomerId>,
    pub channel_id: Option<ChannelId>,
    pub status: TaskStatus,
    pub created_at: DateTimeUtc,
    pub completed_at: Option<DateTimeUtc>,
    pub notified_at: Option<DateTimeUtc>,
    pub notify_error: Option<String>,
    pub visits: i32,
    pub last_visit_at: Option<DateTimeUtc>,
    pub due_at: Option<DateTimeUtc>,
    pub rule_id: Option<RuleId>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
