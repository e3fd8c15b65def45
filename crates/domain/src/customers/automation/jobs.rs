//! Background evaluations of every customer of a tenant: a **backfill** after a rule is
//! created, changed or enabled (so it reaches the customers who do not change), and a
//! **re-check** that evaluates everything and reports what it corrected — which should be
//! nothing, since every change already ran the rules in its own transaction.
//!
//! A job is a `rule_jobs` row; every server process's scheduler takes one batch of one job per
//! round, under a lease (so processes share jobs, and a dead one's job resumes elsewhere), and
//! records its progress per batch (the last customer id, counts), so a restart continues where
//! the job stopped. A batch is evaluated in one transaction under its customers' row locks
//! (see `react_many`); evaluating a customer twice changes nothing the second time. Saves in a row share
//! one queued backfill.

use sea_orm::PaginatorTrait;

use super::due::{EVALUATE_BATCH, evaluate_side_by_side};
use super::*;
use crate::store::entities::rule_job;
use crate::store::lease;

/// Customers evaluated per batch (one transaction).
pub const JOB_BATCH: u64 = EVALUATE_BATCH as u64;
/// Tag changes a job keeps as examples.
const SAMPLE: usize = 20;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JobKind {
    Backfill,
    Recheck,
}

impl JobKind {
    fn as_str(self) -> &'static str {
        match self {
            JobKind::Backfill => "backfill",
            JobKind::Recheck => "recheck",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JobStatus {
    Queued,
    Running,
    Done,
    /// A backfill a newer one replaced before it finished (the newer one evaluates every
    /// customer with the rules as they are now).
    Superseded,
}

/// A job and its progress.
#[derive(Debug, Clone, Serialize)]
pub struct RuleJob {
    pub id: i64,
    pub kind: JobKind,
    /// The rule whose save queued a backfill.
    pub rule_id: Option<RuleId>,
    pub status: JobStatus,
    /// Customers to evaluate, counted when the job starts.
    pub total: Option<i64>,
    pub processed: i64,
    /// Customers whose tags the job changed.
    pub changed: i64,
    /// Tags the job put on or took off.
    pub corrections: i64,
    /// Up to 20 of those changes.
    pub sample: Vec<Correction>,
    pub created_at: DateTime<Utc>,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
}

/// A tag a job put on or took off a customer.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Correction {
    pub customer_id: CustomerId,
    pub tag_id: TagId,
    pub added: bool,
    pub rule_id: RuleId,
}

impl From<rule_job::Model> for RuleJob {
    fn from(m: rule_job::Model) -> Self {
        RuleJob {
            id: m.id,
            kind: if m.kind == "recheck" {
                JobKind::Recheck
            } else {
                JobKind::Backfill
            },
            rule_id: m.rule_id,
            status: match m.status.as_str() {
                "done" => JobStatus::Done,
                "running" => JobStatus::Running,
                "superseded" => JobStatus::Superseded,
                _ => JobStatus::Queued,
            },
            total: m.total,
            processed: m.processed,
            changed: m.changed,
            corrections: m.corrections,
            sample: m
                .sample
                .and_then(|s| serde_json::from_str(&s).ok())
                .unwrap_or_default(),
            created_at: m.created_at,
            started_at: m.started_at,
            finished_at: m.finished_at,
        }
    }
}

/// Queues a backfill of the tenant's customers after `rule` was saved, in the save's
/// transaction; a backfill still waiting to start covers it (and names the latest rule), and
/// one already under way is superseded by the new one (it would finish with customers it
/// evaluated before this save), so that saves in a row cost one pass over the customers, not
/// one each. Returns the job's id.
pub(crate) async fn queue_backfill(
    txn: &DatabaseTransaction,
    tenant: TenantId,
    rule: RuleId,
    by: Option<StaffId>,
    now: DateTime<Utc>,
) -> DomainResult<i64> {
    let waiting = rule_job::Entity::find()
        .filter(rule_job::Column::TenantId.eq(tenant.0))
        .filter(rule_job::Column::Kind.eq(JobKind::Backfill.as_str()))
        .filter(rule_job::Column::Status.eq("queued"))
        .filter(rule_job::Column::Cursor.eq(0))
        .one(txn)
        .await
        .step("finding a waiting backfill")?;
    if let Some(job) = waiting {
        // Still waiting when this save writes to it: a scheduler's claim of the job then waits
        // for the save's commit (and evaluates with the rule); a claim that came first leaves
        // nothing to update, and the save gets a backfill of its own.
        let kept = rule_job::Entity::update_many()
            .col_expr(rule_job::Column::RuleId, Expr::value(rule.0))
            .filter(rule_job::Column::Id.eq(job.id))
            .filter(rule_job::Column::Status.eq("queued"))
            .filter(rule_job::Column::Cursor.eq(0))
            .exec(txn)
            .await
            .step("joining a waiting backfill")?
            .rows_affected;
        if kept == 1 {
            return Ok(job.id);
        }
    }
    let id = queue(txn, tenant, JobKind::Backfill, Some(rule), by, now).await?;
    // The process running it finds its lease gone when it records its batch's progress.
    rule_job::Entity::update_many()
        .col_expr(rule_job::Column::Status, Expr::value("superseded"))
        .col_expr(rule_job::Column::FinishedAt, Expr::value(now))
        .col_expr(
            rule_job::Column::LeaseUntil,
            Expr::value(None::<DateTime<Utc>>),
        )
        .col_expr(rule_job::Column::LeaseToken, Expr::value(None::<String>))
        .filter(rule_job::Column::TenantId.eq(tenant.0))
        .filter(rule_job::Column::Kind.eq(JobKind::Backfill.as_str()))
        .filter(rule_job::Column::Status.is_in(["queued", "running"]))
        .filter(rule_job::Column::Id.ne(id))
        .exec(txn)
        .await
        .step("superseding the backfill under way")?;
    Ok(id)
}

/// Queues a job; returns its id.
pub(crate) async fn queue<C: ConnectionTrait>(
    conn: &C,
    tenant: TenantId,
    kind: JobKind,
    rule: Option<RuleId>,
    by: Option<StaffId>,
    now: DateTime<Utc>,
) -> DomainResult<i64> {
    Ok(rule_job::Entity::insert(rule_job::ActiveModel {
        tenant_id: Set(tenant),
        kind: Set(kind.as_str().to_owned()),
        rule_id: Set(rule),
        status: Set("queued".to_owned()),
        total: Set(None),
        processed: Set(0),
        changed: Set(0),
        corrections: Set(0),
        sample: Set(None),
        cursor: Set(0),
        created_by: Set(by),
        created_at: Set(now),
        started_at: Set(None),
        finished_at: Set(None),
        lease_until: Set(None),
        lease_token: Set(None),
        ..Default::default()
    })
    .exec(conn)
    .await
    .step("queueing a rule job")?
    .last_insert_id)
}

/// One of the tenant's jobs.
pub(crate) async fn job<C: ConnectionTrait>(
    conn: &C,
    tenant: TenantId,
    id: i64,
) -> DomainResult<RuleJob> {
    rule_job::Entity::find_by_id(id)
        .filter(rule_job::Column::TenantId.eq(tenant.0))
        .one(conn)
        .await?
        .map(RuleJob::from)
        .ok_or(DomainError::NotFound("rule job"))
}

/// The tenant's latest jobs, newest first.
pub(crate) async fn latest<C: ConnectionTrait>(
    conn: &C,
    tenant: TenantId,
    limit: u64,
) -> DomainResult<Vec<RuleJob>> {
    Ok(rule_job::Entity::find()
        .filter(rule_job::Column::TenantId.eq(tenant.0))
        .order_by_desc(rule_job::Column::Id)
        .limit(limit)
        .all(conn)
        .await?
        .into_iter()
        .map(RuleJob::from)
        .collect())
}

/// Takes one batch of the oldest job no other process holds and evaluates it; returns the
/// customers evaluated (0: no job waiting).
pub async fn run_jobs(
    db: &DatabaseConnection,
    now: DateTime<Utc>,
    lease: Duration,
) -> DomainResult<u64> {
    let free = || lease::free(rule_job::Column::LeaseUntil, now);
    let Some(candidate) = rule_job::Entity::find()
        .filter(rule_job::Column::Status.is_in(["queued", "running"]))
        .filter(free())
        .order_by_asc(rule_job::Column::Id)
        .one(db)
        .await
        .step("finding a rule job")?
    else {
        return Ok(0);
    };
    let token = lease::token();
    let claimed = rule_job::Entity::update_many()
        .col_expr(rule_job::Column::LeaseUntil, Expr::value(now + lease))
        .col_expr(rule_job::Column::LeaseToken, Expr::value(token.clone()))
        .col_expr(rule_job::Column::Status, Expr::value("running"))
        .filter(rule_job::Column::Id.eq(candidate.id))
        .filter(rule_job::Column::Status.is_in(["queued", "running"]))
        .filter(free())
        .exec(db)
        .await
        .step("claiming a rule job")?
        .rows_affected;
    if claimed == 0 {
        return Ok(0);
    }
    let tenant = candidate.tenant_id;
    let live = || {
        customer::Entity::find()
            .filter(customer::Column::TenantId.eq(tenant.0))
            .filter(customer::Column::DeletedAt.is_null())
    };
    let total = match candidate.total {
        Some(total) => total,
        None => i64::try_from(live().count(db).await?).unwrap_or(i64::MAX),
    };
    let batch: Vec<i64> = live()
        .select_only()
        .column(customer::Column::Id)
        .filter(customer::Column::Id.gt(candidate.cursor))
        .order_by_asc(customer::Column::Id)
        .limit(JOB_BATCH)
        .into_tuple()
        .all(db)
        .await
        .step("reading a batch of customers")?;
    let mut sample: Vec<Correction> = candidate
        .sample
        .as_deref()
        .and_then(|s| serde_json::from_str(s).ok())
        .unwrap_or_default();
    let (mut changed, mut corrections) = (0_i64, 0_i64);
    // A customer that cannot be evaluated holds up no other; it is evaluated again on its
    // next change.
    let (evaluated, _failed) = evaluate_side_by_side(db, tenant, &batch, now, "rules.job").await;
    for (customer, changes) in evaluated {
        if !changes.is_empty() {
            changed += 1;
            corrections += changes.len() as i64;
            for change in changes {
                if sample.len() < SAMPLE {
                    sample.push(Correction {
                        customer_id: customer,
                        tag_id: change.tag_id,
                        added: change.added,
                        rule_id: change.rule_id,
                    });
                }
            }
        }
    }
    let finished = (batch.len() as u64) < JOB_BATCH;
    let mut update = rule_job::Entity::update_many()
        .col_expr(rule_job::Column::Total, Expr::value(total))
        .col_expr(
            rule_job::Column::Processed,
            Expr::col(rule_job::Column::Processed).add(batch.len() as i64),
        )
        .col_expr(
            rule_job::Column::Changed,
            Expr::col(rule_job::Column::Changed).add(changed),
        )
        .col_expr(
            rule_job::Column::Corrections,
            Expr::col(rule_job::Column::Corrections).add(corrections),
        )
        .col_expr(
            rule_job::Column::Sample,
            Expr::value(
                (!sample.is_empty()).then(|| serde_json::to_string(&sample).unwrap_or_default()),
            ),
        )
        .col_expr(
            rule_job::Column::Cursor,
            Expr::value(batch.last().copied().unwrap_or(candidate.cursor)),
        )
        .col_expr(
            rule_job::Column::StartedAt,
            Expr::value(candidate.started_at.unwrap_or(now)),
        );
    if finished {
        update = update
            .col_expr(rule_job::Column::Status, Expr::value("done"))
            .col_expr(rule_job::Column::FinishedAt, Expr::value(now));
    }
    // The lease is given back with the progress: the next batch may start at once, here or
    // in another process.
    let recorded = update
        .col_expr(
            rule_job::Column::LeaseUntil,
            Expr::value(None::<DateTime<Utc>>),
        )
        .filter(rule_job::Column::Id.eq(candidate.id))
        .filter(rule_job::Column::LeaseToken.eq(token))
        .exec(db)
        .await
        .step("recording a rule job's progress")?
        .rows_affected;
    if recorded == 0 {
        // A newer backfill superseding this one is the common case (rules saved in a row);
        // a lease run out is worth a warning.
        let status: Option<String> = rule_job::Entity::find_by_id(candidate.id)
            .select_only()
            .column(rule_job::Column::Status)
            .into_tuple()
            .one(db)
            .await
            .ok()
            .flatten();
        if status.as_deref() == Some("superseded") {
            tracing::debug!(job = candidate.id, "a newer backfill superseded a rule job");
        } else {
            tracing::warn!(
                job = candidate.id,
                "a rule job's batch ended after its lease: another process took the job over and runs the batch again"
            );
        }
    }
    Ok(batch.len() as u64)
}

/// Queues a re-check of `tenant` and runs rule jobs in this process until it is done (the
/// operator's `scantag rules recheck`); servers running meanwhile share the work.
pub async fn recheck_now(db: &DatabaseConnection, tenant: TenantId) -> DomainResult<RuleJob> {
    tenant::Entity::find_by_id(tenant)
        .one(db)
        .await?
        .ok_or(DomainError::NotFound("tenant"))?;
    let id = queue(db, tenant, JobKind::Recheck, None, None, clock::now()).await?;
    loop {
        let current = job(db, tenant, id).await?;
        if matches!(current.status, JobStatus::Done | JobStatus::Superseded) {
            return Ok(current);
        }
        if run_jobs(db, clock::now(), Duration::seconds(60)).await? == 0 {
            tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        }
    }
}
