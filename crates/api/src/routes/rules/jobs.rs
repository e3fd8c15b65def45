//! The rule jobs: backfills that bring a saved rule to every customer, and full re-checks.

use actix_web::{HttpResponse, get, post, web};
use chrono::{DateTime, Utc};
use scantag_domain::access::policy::Action;
use scantag_domain::customers::automation::jobs::{JobKind, JobStatus, RuleJob};
use scantag_domain::rulebook::RuleBook;
use serde::Serialize;
use utoipa::ToSchema;

use crate::error::{ApiError, Problem};
use crate::extract::StaffCaller;
use crate::state::AppState;

/// A tag a job put on or took off a customer.
#[derive(Debug, Serialize, ToSchema)]
pub struct CorrectionView {
    pub customer_id: i64,
    pub tag_id: i64,
    /// `true`: put on; `false`: taken off.
    pub added: bool,
    pub rule_id: i64,
}

/// A background evaluation of every customer of the tenant.
#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({"id": 12, "kind": "backfill", "rule_id": 3, "status": "done",
    "total": 1000, "processed": 1000, "changed": 87, "corrections": 87, "sample": [],
    "created_at": "2026-12-01T08:00:00Z", "started_at": "2026-12-01T08:00:01Z",
    "finished_at": "2026-12-01T08:00:09Z"}))]
pub struct RuleJobView {
    pub id: i64,
    /// `backfill` (after a rule was saved) or `recheck` (every rule, on request).
    #[schema(value_type = String, example = "backfill")]
    pub kind: &'static str,
    /// The rule whose save queued a backfill.
    pub rule_id: Option<i64>,
    /// `queued`, `running`, `done`, or `superseded` (a backfill a newer one replaced before it
    /// finished: the newer one evaluates every customer with the rules as they are now).
    #[schema(value_type = String, example = "running")]
    pub status: &'static str,
    /// Customers to evaluate, counted when the job starts.
    pub total: Option<i64>,
    /// Customers evaluated so far.
    pub processed: i64,
    /// Customers whose tags the job changed (for a re-check: corrected; normally 0).
    pub changed: i64,
    /// Tags put on or taken off.
    pub corrections: i64,
    /// Up to 20 of those changes.
    pub sample: Vec<CorrectionView>,
    pub created_at: DateTime<Utc>,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
}

impl From<RuleJob> for RuleJobView {
    fn from(j: RuleJob) -> Self {
        RuleJobView {
            id: j.id,
            kind: match j.kind {
                JobKind::Backfill => "backfill",
                JobKind::Recheck => "recheck",
            },
            rule_id: j.rule_id.map(|r| r.0),
            status: match j.status {
                JobStatus::Queued => "queued",
                JobStatus::Running => "running",
                JobStatus::Done => "done",
                JobStatus::Superseded => "superseded",
            },
            total: j.total,
            processed: j.processed,
            changed: j.changed,
            corrections: j.corrections,
            sample: j
                .sample
                .into_iter()
                .map(|c| CorrectionView {
                    customer_id: c.customer_id.0,
                    tag_id: c.tag_id.0,
                    added: c.added,
                    rule_id: c.rule_id.0,
                })
                .collect(),
            created_at: j.created_at,
            started_at: j.started_at,
            finished_at: j.finished_at,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RuleJobList {
    /// The latest 50, newest first.
    pub items: Vec<RuleJobView>,
}

/// Re-check every customer against every rule, in the background. Admins and managers.
///
/// Every change already runs the rules in its own transaction, so the job should correct
/// nothing; `changed`, `corrections` and `sample` say what it did correct.
#[utoipa::path(
    tag = "rules",
    security(("bearer" = [])),
    responses(
        (status = 202, description = "The queued job; follow it at `GET /rule-jobs/{id}`", body = RuleJobView),
        (status = 403, description = "Not an admin or manager (`insufficient_role`)", body = Problem, content_type = "application/problem+json")
    )
)]
#[post("/rules/recheck")]
pub async fn recheck(
    state: web::Data<AppState>,
    caller: StaffCaller,
) -> Result<HttpResponse, ApiError> {
    caller.may(Action::ManageRules)?;
    let job = RuleBook::new(&state.db, &caller.actor()).recheck().await?;
    state.schedule_wake.notify_one();
    Ok(HttpResponse::Accepted().json(RuleJobView::from(job)))
}

/// The tenant's latest rule jobs (backfills and re-checks). Admins and managers.
#[utoipa::path(
    tag = "rules",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The latest 50 jobs, newest first", body = RuleJobList),
        (status = 403, description = "Not an admin or manager (`insufficient_role`)", body = Problem, content_type = "application/problem+json")
    )
)]
#[get("/rule-jobs")]
pub async fn list_jobs(
    state: web::Data<AppState>,
    caller: StaffCaller,
) -> Result<HttpResponse, ApiError> {
    caller.may(Action::ManageRules)?;
    let items = RuleBook::new(&state.db, &caller.actor()).jobs().await?;
    Ok(HttpResponse::Ok().json(RuleJobList {
        items: items.into_iter().map(RuleJobView::from).collect(),
    }))
}

/// One rule job and its progress. Admins and managers.
#[utoipa::path(
    tag = "rules",
    security(("bearer" = [])),
    params(("id" = i64, Path, description = "Job id", example = 12)),
    responses(
        (status = 200, description = "The job", body = RuleJobView),
        (status = 403, description = "Not an admin or manager (`insufficient_role`)", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such job in the tenant", body = Problem, content_type = "application/problem+json")
    )
)]
#[get("/rule-jobs/{id}")]
pub async fn get_job(
    state: web::Data<AppState>,
    caller: StaffCaller,
    id: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    caller.may(Action::ManageRules)?;
    let job = RuleBook::new(&state.db, &caller.actor())
        .job(id.into_inner())
        .await?;
    Ok(HttpResponse::Ok().json(RuleJobView::from(job)))
}
