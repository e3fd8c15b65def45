//! The WeChat messages the outbox's events ask for, read when they are delivered: the owner's
//! message about the task a capture gave them, and the messages of rules that turned true (to
//! the owner or to the customer). Reading at delivery means a message goes to whoever the
//! recipient is then, and never to a deactivated member of staff.
//!
//! Delivery is at least once, so what can be made idempotent is: a task's message is not sent
//! again once the task records it as sent. Writes nothing but, through `tasks`, the record of a
//! task's message.

use chrono::{DateTime, Utc};
use sea_orm::{ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter};
use serde_json::Value;

use crate::kernel::error::DomainResult;
use crate::kernel::ids::{CustomerId, StaffId, TaskId, TenantId};
use crate::kernel::values::TaskStatus;
use crate::store::entities::{channel, customer, staff, task};
use crate::support::outbox::{Claimed, EventKind};
use crate::tasks;

/// A message to send.
#[derive(Debug, Clone)]
pub enum Notice {
    /// The owner's message about the new task a capture gave them.
    Task {
        task: TaskId,
        openid: String,
        channel_name: String,
        customer_name: String,
        at: DateTime<Utc>,
    },
    /// A rule's message to the customer's owner.
    ToOwner {
        openid: String,
        message: String,
        customer: CustomerId,
        customer_name: String,
        at: DateTime<Utc>,
    },
    /// A rule's message to the customer.
    ToCustomer {
        openid: String,
        message: String,
        at: DateTime<Utc>,
    },
}

/// The message `event` asks for now; `None` when there is nothing (more) to send: no task,
/// a task already told, a recipient gone or deactivated, a customer deleted.
pub async fn prepare(db: &DatabaseConnection, event: &Claimed) -> DomainResult<Option<Notice>> {
    let tenant = event.tenant;
    let at = event.created_at;
    match event.kind {
        Some(EventKind::CustomerCaptured) => {
            let Some(id) = event.payload.get("task_id").and_then(Value::as_i64) else {
                return Ok(None);
            };
            let Some(task) = task::Entity::find_by_id(TaskId(id))
                .filter(task::Column::TenantId.eq(tenant.0))
                .one(db)
                .await?
                .filter(|t| t.notified_at.is_none() && t.status == TaskStatus::Open)
            else {
                return Ok(None);
            };
            let Some(openid) = active_openid(db, tenant, task.assignee_id).await? else {
                return Ok(None);
            };
            let channel_name = match task.channel_id {
                Some(channel) => channel::Entity::find_by_id(channel)
                    .one(db)
                    .await?
                    .map(|c| c.name)
                    .unwrap_or_default(),
                None => String::new(),
            };
            let customer_name = match task.customer_id {
                Some(customer) => live_customer(db, tenant, customer)
                    .await?
                    .map(|c| c.name)
                    .unwrap_or_default(),
                None => String::new(),
            };
            Ok(Some(Notice::Task {
                task: task.id,
                openid,
                channel_name,
                customer_name,
                at,
            }))
        }
        Some(EventKind::RuleNotification) => {
            let Some(customer) = event.customer else {
                return Ok(None);
            };
            let Some(row) = live_customer(db, tenant, customer).await? else {
                return Ok(None);
            };
            let message = event
                .payload
                .get("message")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned();
            match event.payload.get("to").and_then(Value::as_str) {
                Some("owner") => {
                    // The owner the rule meant, if they still own the customer.
                    let meant = event.payload.get("staff_id").and_then(Value::as_i64);
                    let Some(owner) = row.owner_id.filter(|o| Some(o.0) == meant) else {
                        return Ok(None);
                    };
                    Ok(active_openid(db, tenant, owner)
                        .await?
                        .map(|openid| Notice::ToOwner {
                            openid,
                            message,
                            customer,
                            customer_name: row.name,
                            at,
                        }))
                }
                Some("customer") => Ok(row.openid.map(|openid| Notice::ToCustomer {
                    openid,
                    message,
                    at,
                })),
                _ => Ok(None),
            }
        }
        None => Ok(None),
    }
}

/// Records how sending `notice` went, where something keeps the record (a task).
pub async fn delivered(
    db: &DatabaseConnection,
    notice: &Notice,
    outcome: Result<(), String>,
) -> DomainResult<()> {
    match notice {
        Notice::Task { task, .. } => tasks::record_notification(db, *task, outcome).await,
        Notice::ToOwner { .. } | Notice::ToCustomer { .. } => Ok(()),
    }
}

async fn active_openid(
    db: &DatabaseConnection,
    tenant: TenantId,
    id: StaffId,
) -> DomainResult<Option<String>> {
    Ok(staff::Entity::find_by_id(id)
        .filter(staff::Column::TenantId.eq(tenant.0))
        .filter(staff::Column::Active.eq(true))
        .one(db)
        .await?
        .map(|s| s.openid))
}

async fn live_customer(
    db: &DatabaseConnection,
    tenant: TenantId,
    id: CustomerId,
) -> DomainResult<Option<customer::Model>> {
    Ok(customer::Entity::find_by_id(id)
        .filter(customer::Column::TenantId.eq(tenant.0))
        .filter(customer::Column::DeletedAt.is_null())
        .one(db)
        .await?)
}
