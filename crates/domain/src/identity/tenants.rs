//! Tenants: the enterprises that use scantag. Created by the operator from the command line.

use chrono::{DateTime, Utc};
use sea_orm::{
    ActiveModelTrait, ConnectionTrait, DatabaseConnection, EntityTrait, Set, TransactionTrait,
};
use serde::Serialize;

use crate::kernel::error::{DomainError, DomainResult};
use crate::kernel::ids::TenantId;
use crate::store::entities::tenant;
use crate::support::audit::{self, Actor, AuditEntry};

/// The timezone "days since" rules are computed in unless a tenant says otherwise.
pub const DEFAULT_TIMEZONE: &str = "Asia/Shanghai";

#[derive(Debug, Clone, Serialize)]
pub struct Tenant {
    pub id: TenantId,
    pub name: String,
    pub timezone: String,
    pub active: bool,
    pub created_at: DateTime<Utc>,
}

impl From<tenant::Model> for Tenant {
    fn from(m: tenant::Model) -> Self {
        Tenant {
            id: m.id,
            name: m.name,
            timezone: m.timezone,
            active: m.active,
            created_at: m.created_at,
        }
    }
}

/// Creates a tenant. `name` is trimmed and must be 1–100 characters; `timezone` must look like
/// an IANA zone name ("Asia/Shanghai").
pub async fn create(
    db: &DatabaseConnection,
    name: &str,
    timezone: Option<&str>,
) -> DomainResult<Tenant> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 100 {
        return Err(DomainError::Invalid {
            field: "name",
            message: "must be 1 to 100 characters".into(),
        });
    }
    let timezone = timezone.unwrap_or(DEFAULT_TIMEZONE).trim();
    let plausible_zone = !timezone.is_empty()
        && timezone.len() <= 64
        && timezone
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '/' | '_' | '-' | '+'));
    if !plausible_zone {
        return Err(DomainError::Invalid {
            field: "timezone",
            message: "must be an IANA timezone name such as Asia/Shanghai".into(),
        });
    }
    let txn = db.begin().await?;
    let now = Utc::now();
    let model = tenant::ActiveModel {
        name: Set(name.to_owned()),
        timezone: Set(timezone.to_owned()),
        active: Set(true),
        created_at: Set(now),
        updated_at: Set(now),
        ..Default::default()
    }
    .insert(&txn)
    .await?;
    audit::record(
        &txn,
        AuditEntry {
            tenant_id: Some(model.id),
            actor: Actor::Operator,
            action: "tenant.created",
            target_type: "tenant",
            target_id: Some(model.id.to_string()),
            details: Some(serde_json::json!({ "name": name, "timezone": timezone })),
        },
    )
    .await?;
    txn.commit().await?;
    Ok(model.into())
}

/// The tenant with `id`, if it exists.
pub async fn find<C: ConnectionTrait>(db: &C, id: TenantId) -> DomainResult<Option<Tenant>> {
    Ok(tenant::Entity::find_by_id(id)
        .one(db)
        .await?
        .map(Tenant::from))
}
