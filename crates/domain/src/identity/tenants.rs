//! Tenants: the enterprises that use scantag. Created by the operator from the command line.

use crate::kernel::clock;
use chrono::{DateTime, Utc};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait, QueryFilter,
    Set, TransactionTrait,
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
    // Local days of rules are counted in this zone: it must be one the time zone database knows.
    if timezone.len() > 64 || timezone.parse::<chrono_tz::Tz>().is_err() {
        return Err(DomainError::Invalid {
            field: "timezone",
            message: "must be an IANA timezone name such as Asia/Shanghai".into(),
        });
    }
    let txn = db.begin().await?;
    let now = clock::now();
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

/// Most project stages a tenant may have, and the longest stage name.
pub const STAGES_MAX: usize = 20;
pub const STAGE_NAME_MAX: usize = 32;

/// Sets the project stages of the staff member's tenant, in order. Admins only. Stages
/// already on customers stay on them; follow-ups and rules use the new list from now on.
pub async fn set_project_stages(
    db: &DatabaseConnection,
    staff: &crate::access::StaffActor,
    stages: Vec<String>,
) -> DomainResult<Vec<String>> {
    crate::access::policy::permit(staff, crate::access::policy::Action::ConfigureTenant)
        .map_err(|refusal| DomainError::Forbidden(refusal.to_string()))?;
    let mut issues = Vec::new();
    let mut list: Vec<String> = Vec::new();
    if stages.is_empty() || stages.len() > STAGES_MAX {
        issues.push(crate::kernel::error::FieldIssue::new(
            "stages",
            "length",
            format!("1 to {STAGES_MAX} stages"),
        ));
    }
    for (i, stage) in stages.iter().enumerate() {
        match crate::kernel::names::checked_name(&format!("stages[{i}]"), stage, STAGE_NAME_MAX) {
            Ok(name) if list.contains(&name) => issues.push(crate::kernel::error::FieldIssue::new(
                format!("stages[{i}]"),
                "duplicate",
                "each stage once",
            )),
            Ok(name) => list.push(name),
            Err(issue) => issues.push(issue),
        }
    }
    if !issues.is_empty() {
        return Err(DomainError::Rejected {
            code: crate::kernel::error::ErrorCode::ValidationFailed,
            issues,
        });
    }
    let txn = db.begin().await?;
    tenant::Entity::update_many()
        .col_expr(
            tenant::Column::ProjectStages,
            sea_orm::sea_query::Expr::value(crate::kernel::values::StageList(list.clone())),
        )
        .col_expr(
            tenant::Column::UpdatedAt,
            sea_orm::sea_query::Expr::value(clock::now()),
        )
        .filter(tenant::Column::Id.eq(staff.tenant.0))
        .exec(&txn)
        .await?;
    audit::record(
        &txn,
        AuditEntry {
            tenant_id: Some(staff.tenant),
            actor: Actor::Staff(staff.id),
            action: "tenant.project_stages_set",
            target_type: "tenant",
            target_id: Some(staff.tenant.to_string()),
            details: Some(serde_json::json!({ "stages": list })),
        },
    )
    .await?;
    crate::support::config_version::bump(&txn, staff.tenant).await?;
    txn.commit().await?;
    Ok(list)
}
