//! Staff tasks: each staff member lists and completes their own.

use actix_web::{HttpResponse, get, post, web};
use chrono::{DateTime, Utc};
use scantag_domain::TaskId;
use scantag_domain::search;
use scantag_domain::tasks::{StatusFilter, Task, TaskKind, TaskStatus, Tasks};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use validator::Validate;

use crate::error::{ApiError, Problem};
use crate::extract::{StaffCaller, ValidQuery};
use crate::state::AppState;

#[derive(Debug, Clone, Copy, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum TaskKindView {
    /// Follow up a customer recorded for the first time.
    NewCustomer,
    /// Follow up a customer who came back through a channel.
    RepeatVisit,
    /// A rule's condition became true for the customer (`rule_id` names the rule).
    Rule,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum TaskStatusView {
    Open,
    Done,
}

#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({
    "id": 9, "kind": "new_customer", "title": "New customer from 2026 上海车展展台",
    "customer_id": 1024, "channel_id": 5, "status": "open",
    "created_at": "2026-11-23T02:00:00Z", "completed_at": null, "notified": true,
    "visits": 3, "last_visit_at": "2026-11-23T09:30:00Z", "due_at": null, "rule_id": null
}))]
pub struct TaskView {
    pub id: i64,
    pub kind: TaskKindView,
    pub title: String,
    pub customer_id: Option<i64>,
    pub channel_id: Option<i64>,
    pub status: TaskStatusView,
    pub created_at: DateTime<Utc>,
    pub completed_at: Option<DateTime<Utc>>,
    /// Whether the WeChat subscribe message about the task was delivered to WeChat.
    pub notified: bool,
    /// How many times the customer came: 1, plus every return within the follow-up window
    /// (`SCANTAG_RETURNING_CUSTOMER_WINDOW_HOURS`, default 24) while the task is open, which is
    /// counted here instead of raising another task and message.
    #[schema(minimum = 1, example = 3)]
    pub visits: u32,
    /// When the latest return counted on the task happened.
    pub last_visit_at: Option<DateTime<Utc>>,
    /// When the task should be done (rule tasks with `due_in_days`).
    pub due_at: Option<DateTime<Utc>>,
    /// The rule that raised the task, for `kind = rule`.
    pub rule_id: Option<i64>,
}

impl From<Task> for TaskView {
    fn from(t: Task) -> Self {
        TaskView {
            id: t.id.0,
            kind: match t.kind {
                TaskKind::NewCustomer => TaskKindView::NewCustomer,
                TaskKind::RepeatVisit => TaskKindView::RepeatVisit,
                TaskKind::Rule => TaskKindView::Rule,
            },
            title: t.title,
            customer_id: t.customer_id.map(|c| c.0),
            channel_id: t.channel_id.map(|c| c.0),
            status: match t.status {
                TaskStatus::Open => TaskStatusView::Open,
                TaskStatus::Done => TaskStatusView::Done,
            },
            created_at: t.created_at,
            completed_at: t.completed_at,
            notified: t.notified,
            visits: t.visits,
            last_visit_at: t.last_visit_at,
            due_at: t.due_at,
            rule_id: t.rule_id.map(|r| r.0),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TaskPage {
    pub items: Vec<TaskView>,
    /// Pass as `cursor` for the next page; `null` on the last one.
    pub next_cursor: Option<String>,
}

#[derive(Debug, Clone, Copy, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum TaskStatusQuery {
    Open,
    Done,
    All,
}

#[derive(Debug, Deserialize, Validate, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct TaskListQuery {
    /// `open` (default), `done` or `all`.
    #[param(inline)]
    pub status: Option<TaskStatusQuery>,
    /// Page size, 1–100 (default 50).
    #[validate(range(min = 1, max = 100))]
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<u64>,
    /// `next_cursor` of the previous page.
    #[validate(length(min = 1, max = 64))]
    #[param(min_length = 1, max_length = 64)]
    pub cursor: Option<String>,
}

/// The caller's own tasks, newest first.
#[utoipa::path(
    tag = "tasks",
    security(("bearer" = [])),
    params(TaskListQuery),
    responses(
        (status = 200, description = "A page of tasks", body = TaskPage),
        (status = 403, description = "A visitor token (`staff_only`)", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid `status`, `limit` or `cursor`", body = Problem, content_type = "application/problem+json")
    )
)]
#[get("/tasks")]
pub async fn list_tasks(
    state: web::Data<AppState>,
    caller: StaffCaller,
    query: ValidQuery<TaskListQuery>,
) -> Result<HttpResponse, ApiError> {
    let q = query.into_inner()?;
    let before = q.cursor.as_deref().map(search::decode_cursor).transpose()?;
    let status = match q.status.unwrap_or(TaskStatusQuery::Open) {
        TaskStatusQuery::Open => StatusFilter::Open,
        TaskStatusQuery::Done => StatusFilter::Done,
        TaskStatusQuery::All => StatusFilter::All,
    };
    let (items, next) = Tasks::new(&state.db, &caller.actor())
        .list(status, q.limit.unwrap_or(50), before)
        .await?;
    Ok(HttpResponse::Ok().json(TaskPage {
        items: items.into_iter().map(TaskView::from).collect(),
        next_cursor: next.map(search::encode_cursor),
    }))
}

/// Mark one of the caller's tasks done. Completing a done task returns it unchanged.
#[utoipa::path(
    tag = "tasks",
    security(("bearer" = [])),
    params(("id" = i64, Path, description = "Task id", example = 9)),
    responses(
        (status = 200, description = "The task, done", body = TaskView),
        (status = 403, description = "A visitor token (`staff_only`)", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such task of the caller", body = Problem, content_type = "application/problem+json")
    )
)]
#[post("/tasks/{id}/complete")]
pub async fn complete_task(
    state: web::Data<AppState>,
    caller: StaffCaller,
    id: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    let task = Tasks::new(&state.db, &caller.actor())
        .complete(TaskId(id.into_inner()))
        .await?;
    Ok(HttpResponse::Ok().json(TaskView::from(task)))
}
