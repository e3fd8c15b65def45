//! Tasks: to-dos for one staff member, such as following up a customer who just scanned a
//! channel code. Each staff member sees and completes their own.

use crate::kernel::clock;
use chrono::{DateTime, Utc};
use sea_orm::sea_query::{Expr, ExprTrait};
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait, QueryFilter, QueryOrder,
    QuerySelect, Set,
};
use serde::Serialize;

use crate::access::StaffActor;
use crate::kernel::error::{DomainError, DomainResult};
use crate::kernel::ids::{ChannelId, CustomerId, RuleId, StaffId, TaskId, TenantId};
pub use crate::kernel::values::{TaskKind, TaskStatus};
use crate::store::entities::task;
use crate::support::audit::{self, Actor, AuditEntry};

pub const TITLE_MAX: usize = 128;

impl TaskKind {
    pub fn as_str(self) -> &'static str {
        match self {
            TaskKind::NewCustomer => "new_customer",
            TaskKind::RepeatVisit => "repeat_visit",
            TaskKind::Rule => "rule",
        }
    }
}

impl TaskStatus {
    fn as_str(self) -> &'static str {
        match self {
            TaskStatus::Open => "open",
            TaskStatus::Done => "done",
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Task {
    pub id: TaskId,
    pub kind: TaskKind,
    pub title: String,
    pub customer_id: Option<CustomerId>,
    pub channel_id: Option<ChannelId>,
    pub status: TaskStatus,
    pub created_at: DateTime<Utc>,
    pub completed_at: Option<DateTime<Utc>>,
    /// Whether the WeChat subscribe message reached WeChat.
    pub notified: bool,
    /// Visits of the customer the task is about: 1, plus each return counted on it.
    pub visits: u32,
    /// The latest return counted on the task.
    pub last_visit_at: Option<DateTime<Utc>>,
    /// When the task should be done, if it says.
    pub due_at: Option<DateTime<Utc>>,
    /// The rule that raised the task, for `kind = rule`.
    pub rule_id: Option<RuleId>,
}

impl From<task::Model> for Task {
    fn from(m: task::Model) -> Self {
        Task {
            id: m.id,
            kind: m.kind,
            title: m.title,
            customer_id: m.customer_id,
            channel_id: m.channel_id,
            status: m.status,
            created_at: m.created_at,
            completed_at: m.completed_at,
            notified: m.notified_at.is_some(),
            visits: u32::try_from(m.visits).unwrap_or(1),
            last_visit_at: m.last_visit_at,
            due_at: m.due_at,
            rule_id: m.rule_id,
        }
    }
}

pub(crate) struct NewTask<'t> {
    pub tenant: TenantId,
    pub assignee: StaffId,
    pub kind: TaskKind,
    pub title: &'t str,
    pub customer: Option<CustomerId>,
    pub channel: Option<ChannelId>,
    pub due: Option<DateTime<Utc>>,
    pub rule: Option<RuleId>,
    pub now: DateTime<Utc>,
}

pub(crate) async fn create<C: ConnectionTrait>(conn: &C, new: NewTask<'_>) -> DomainResult<TaskId> {
    let inserted = task::Entity::insert(task_row(&new)).exec(conn).await?;
    Ok(inserted.last_insert_id)
}

/// Creates several tasks in a few multi-row statements (the rules engine evaluating many
/// customers at once).
pub(crate) async fn create_many<C: ConnectionTrait>(
    conn: &C,
    news: &[NewTask<'_>],
) -> DomainResult<()> {
    for chunk in news.chunks(1_000) {
        task::Entity::insert_many(chunk.iter().map(task_row))
            .exec_without_returning(conn)
            .await?;
    }
    Ok(())
}

fn task_row(new: &NewTask<'_>) -> task::ActiveModel {
    let title: String = new.title.chars().take(TITLE_MAX).collect();
    task::ActiveModel {
        tenant_id: Set(new.tenant),
        assignee_id: Set(new.assignee),
        kind: Set(new.kind),
        title: Set(title),
        customer_id: Set(new.customer),
        channel_id: Set(new.channel),
        status: Set(TaskStatus::Open),
        created_at: Set(new.now),
        completed_at: Set(None),
        notified_at: Set(None),
        notify_error: Set(None),
        visits: Set(1),
        last_visit_at: Set(None),
        due_at: Set(new.due),
        rule_id: Set(new.rule),
        ..Default::default()
    }
}

/// Counts a visit of `customer` on the open capture task (new or returning customer) that
/// `assignee` was given about them since `since`, if there is one, and returns it. The caller
/// holds the customer's row lock, so two visits cannot both miss the task and raise two.
pub(crate) async fn count_visit<C: ConnectionTrait>(
    conn: &C,
    tenant: TenantId,
    assignee: StaffId,
    customer: CustomerId,
    since: DateTime<Utc>,
    now: DateTime<Utc>,
) -> DomainResult<Option<TaskId>> {
    let open = task::Entity::find()
        .select_only()
        .column(task::Column::Id)
        .filter(task::Column::TenantId.eq(tenant.0))
        .filter(task::Column::CustomerId.eq(customer.0))
        .filter(task::Column::Status.eq(TaskStatus::Open.as_str()))
        .filter(task::Column::AssigneeId.eq(assignee.0))
        .filter(task::Column::Kind.is_in([
            TaskKind::NewCustomer.as_str(),
            TaskKind::RepeatVisit.as_str(),
        ]))
        .filter(task::Column::CreatedAt.gte(since))
        .order_by_desc(task::Column::Id)
        .into_tuple::<i64>()
        .one(conn)
        .await?;
    let Some(id) = open else {
        return Ok(None);
    };
    // The owner may complete the task between the read and this update: then it is done, and
    // the visit is news again.
    let counted = task::Entity::update_many()
        .col_expr(task::Column::Visits, Expr::col(task::Column::Visits).add(1))
        .col_expr(task::Column::LastVisitAt, Expr::value(now))
        .filter(task::Column::Id.eq(id))
        .filter(task::Column::Status.eq(TaskStatus::Open.as_str()))
        .exec(conn)
        .await?;
    Ok((counted.rows_affected == 1).then_some(TaskId(id)))
}

/// Which tasks a listing shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatusFilter {
    Open,
    Done,
    All,
}

/// The tasks of one staff member: everyone sees and completes only the tasks given to them.
pub struct Tasks<'a> {
    db: &'a DatabaseConnection,
    tenant: TenantId,
    assignee: StaffId,
}

impl<'a> Tasks<'a> {
    pub fn new(db: &'a DatabaseConnection, staff: &StaffActor) -> Self {
        Tasks {
            db,
            tenant: staff.tenant,
            assignee: staff.id,
        }
    }

    /// Newest first; `before` is the id of the last task seen. Returns the page and the id to
    /// continue before, when there is more.
    pub async fn list(
        &self,
        status: StatusFilter,
        limit: u64,
        before: Option<i64>,
    ) -> DomainResult<(Vec<Task>, Option<i64>)> {
        let mut query = task::Entity::find()
            .filter(task::Column::TenantId.eq(self.tenant.0))
            .filter(task::Column::AssigneeId.eq(self.assignee.0));
        query = match status {
            StatusFilter::Open => query.filter(task::Column::Status.eq(TaskStatus::Open)),
            StatusFilter::Done => query.filter(task::Column::Status.eq(TaskStatus::Done)),
            StatusFilter::All => query,
        };
        if let Some(before) = before {
            query = query.filter(task::Column::Id.lt(before));
        }
        let mut rows = query
            .order_by_desc(task::Column::Id)
            .limit(limit + 1)
            .all(self.db)
            .await?;
        let more = rows.len() as u64 > limit;
        rows.truncate(usize::try_from(limit).unwrap_or(usize::MAX));
        let next = if more {
            rows.last().map(|r| r.id.0)
        } else {
            None
        };
        Ok((rows.into_iter().map(Task::from).collect(), next))
    }

    /// Marks the task done; a task already done is returned as it is.
    #[tracing::instrument(skip_all, fields(tenant = %self.tenant, task = %id))]
    pub async fn complete(&self, id: TaskId) -> DomainResult<Task> {
        let now = clock::now();
        let changed = task::Entity::update_many()
            .col_expr(task::Column::Status, Expr::value(TaskStatus::Done))
            .col_expr(task::Column::CompletedAt, Expr::value(now))
            .filter(task::Column::Id.eq(id.0))
            .filter(task::Column::TenantId.eq(self.tenant.0))
            .filter(task::Column::AssigneeId.eq(self.assignee.0))
            .filter(task::Column::Status.eq(TaskStatus::Open))
            .exec(self.db)
            .await?;
        if changed.rows_affected > 0 {
            audit::record(
                self.db,
                AuditEntry {
                    tenant_id: Some(self.tenant),
                    actor: Actor::Staff(self.assignee),
                    action: "task.completed",
                    target_type: "task",
                    target_id: Some(id.to_string()),
                    details: None,
                },
            )
            .await?;
        }
        task::Entity::find_by_id(id)
            .filter(task::Column::TenantId.eq(self.tenant.0))
            .filter(task::Column::AssigneeId.eq(self.assignee.0))
            .one(self.db)
            .await?
            .map(Task::from)
            .ok_or(DomainError::NotFound("task"))
    }
}

/// Records whether the task's WeChat message went out.
pub async fn record_notification(
    db: &DatabaseConnection,
    id: TaskId,
    outcome: Result<(), String>,
) -> DomainResult<()> {
    let update = task::Entity::update_many().filter(task::Column::Id.eq(id.0));
    let update = match outcome {
        Ok(()) => update.col_expr(task::Column::NotifiedAt, Expr::value(clock::now())),
        Err(error) => update.col_expr(
            task::Column::NotifyError,
            Expr::value(error.chars().take(255).collect::<String>()),
        ),
    };
    update.exec(db).await?;
    Ok(())
}
