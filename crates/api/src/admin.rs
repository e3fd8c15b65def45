//! Operator commands (`scantag admin …`): creating tenants and invites from the command line,
//! for the first admin of a tenant, before anyone can log in.

use scantag_domain::identity::staff::{self, IssuedInvite, Role};
use scantag_domain::identity::tenants::{self, Tenant};
use scantag_domain::support::audit::Actor;
use scantag_domain::{DatabaseConnection, TenantId};

/// Creates a tenant and an admin invite for it.
pub async fn create_tenant(
    db: &DatabaseConnection,
    name: &str,
    timezone: Option<&str>,
    invite_ttl: chrono::Duration,
) -> Result<(Tenant, IssuedInvite), scantag_domain::DomainError> {
    let tenant = tenants::create(db, name, timezone).await?;
    let invite = staff::create_invite(
        db,
        tenant.id,
        Actor::Operator,
        Role::Admin,
        None,
        invite_ttl,
    )
    .await?;
    Ok((tenant, invite))
}

/// Creates one more invite for an existing tenant.
pub async fn create_invite(
    db: &DatabaseConnection,
    tenant: TenantId,
    role: Role,
    display_name: Option<&str>,
    invite_ttl: chrono::Duration,
) -> Result<IssuedInvite, scantag_domain::DomainError> {
    staff::create_invite(db, tenant, Actor::Operator, role, display_name, invite_ttl).await
}
