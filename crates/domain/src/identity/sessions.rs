//! Login sessions and their rotating refresh tokens.
//!
//! A session is one chain ("family") of refresh tokens. Each refresh spends the presented token
//! and issues the next; presenting a spent token means the chain was copied, so the whole
//! session is revoked. Access tokens name their session, so revoking a session (logout, reuse,
//! deactivation) also stops its access tokens at once.

use crate::kernel::clock;
use chrono::{DateTime, Duration, Utc};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait, QueryFilter,
    Set, TransactionTrait,
};

use crate::kernel::error::{DomainError, DomainResult};
use crate::kernel::ids::{SessionId, TenantId};
use crate::kernel::secret;
pub use crate::kernel::values::SubjectKind;
use crate::store::entities::{auth_session, refresh_token};

impl SubjectKind {
    pub fn as_str(self) -> &'static str {
        match self {
            SubjectKind::Staff => "staff",
            SubjectKind::Visitor => "visitor",
        }
    }
}

#[derive(Debug, Clone)]
pub struct Session {
    pub id: SessionId,
    pub kind: SubjectKind,
    pub subject_id: i64,
    pub tenant_id: Option<TenantId>,
    pub expires_at: DateTime<Utc>,
}

impl TryFrom<auth_session::Model> for Session {
    type Error = DomainError;

    fn try_from(m: auth_session::Model) -> Result<Self, Self::Error> {
        Ok(Session {
            id: m.id,
            kind: m.kind,
            subject_id: m.subject_id,
            tenant_id: m.tenant_id,
            expires_at: m.expires_at,
        })
    }
}

/// A refresh token as handed to the client: shown once, stored only as a digest.
#[derive(Debug, Clone)]
pub struct IssuedRefreshToken {
    pub token: String,
    pub expires_at: DateTime<Utc>,
}

/// Starts a session for a subject and issues its first refresh token.
pub async fn start(
    db: &DatabaseConnection,
    kind: SubjectKind,
    subject_id: i64,
    tenant_id: Option<TenantId>,
    refresh_ttl: Duration,
) -> DomainResult<(Session, IssuedRefreshToken)> {
    let txn = db.begin().await?;
    let now = clock::now();
    let expires_at = now + refresh_ttl;
    let session = auth_session::ActiveModel {
        kind: Set(kind),
        subject_id: Set(subject_id),
        tenant_id: Set(tenant_id),
        created_at: Set(now),
        expires_at: Set(expires_at),
        ..Default::default()
    }
    .insert(&txn)
    .await?;
    let issued = issue_token(&txn, session.id.0, now, expires_at).await?;
    txn.commit().await?;
    Ok((session.try_into()?, issued))
}

/// Spends `presented` and issues the next refresh token of its session.
///
/// Errors: [`DomainError::RefreshInvalid`] for an unknown, expired or revoked token;
/// [`DomainError::RefreshReused`] when the token was already spent, in which case the
/// session has been revoked.
pub async fn rotate(
    db: &DatabaseConnection,
    presented: &str,
    refresh_ttl: Duration,
) -> DomainResult<(Session, IssuedRefreshToken)> {
    let now = clock::now();
    let txn = db.begin().await?;
    let token = refresh_token::Entity::find()
        .filter(refresh_token::Column::TokenHash.eq(secret::digest(presented)))
        .one(&txn)
        .await?
        .ok_or(DomainError::RefreshInvalid)?;
    let session = auth_session::Entity::find_by_id(token.session_id)
        .one(&txn)
        .await?
        .ok_or(DomainError::RefreshInvalid)?;
    if session.revoked_at.is_some() {
        return Err(DomainError::RefreshInvalid);
    }
    let spent = refresh_token::Entity::update_many()
        .col_expr(refresh_token::Column::UsedAt, Expr::value(now))
        .filter(refresh_token::Column::Id.eq(token.id))
        .filter(refresh_token::Column::UsedAt.is_null())
        .exec(&txn)
        .await?;
    if spent.rows_affected != 1 {
        revoke_on(&txn, session.id, "refresh_token_reused").await?;
        txn.commit().await?;
        tracing::warn!(
            session_id = session.id.0,
            "spent refresh token presented again; session revoked"
        );
        return Err(DomainError::RefreshReused);
    }
    if token.expires_at <= now {
        return Err(DomainError::RefreshInvalid);
    }
    let expires_at = now + refresh_ttl;
    let issued = issue_token(&txn, session.id.0, now, expires_at).await?;
    let mut active: auth_session::ActiveModel = session.into();
    active.expires_at = Set(expires_at);
    let session = active.update(&txn).await?;
    txn.commit().await?;
    Ok((session.try_into()?, issued))
}

/// Session `id`, if it exists and has been neither revoked nor left to expire.
pub async fn find_active(db: &DatabaseConnection, id: SessionId) -> DomainResult<Option<Session>> {
    let found = auth_session::Entity::find_by_id(id)
        .filter(auth_session::Column::RevokedAt.is_null())
        .filter(auth_session::Column::ExpiresAt.gt(clock::now()))
        .one(db)
        .await?;
    found.map(Session::try_from).transpose()
}

/// Revokes session `id` (logout). Revoking twice is harmless.
pub async fn revoke(db: &DatabaseConnection, id: SessionId, reason: &str) -> DomainResult<()> {
    revoke_on(db, id, reason).await
}

/// Revokes every open session of a subject (deactivation, role change).
pub async fn revoke_all_for<C: ConnectionTrait>(
    conn: &C,
    kind: SubjectKind,
    subject_id: i64,
    reason: &str,
) -> DomainResult<()> {
    auth_session::Entity::update_many()
        .col_expr(auth_session::Column::RevokedAt, Expr::value(clock::now()))
        .col_expr(auth_session::Column::RevokedReason, Expr::value(reason))
        .filter(auth_session::Column::Kind.eq(kind.as_str()))
        .filter(auth_session::Column::SubjectId.eq(subject_id))
        .filter(auth_session::Column::RevokedAt.is_null())
        .exec(conn)
        .await?;
    Ok(())
}

async fn revoke_on<C: ConnectionTrait>(conn: &C, id: SessionId, reason: &str) -> DomainResult<()> {
    auth_session::Entity::update_many()
        .col_expr(auth_session::Column::RevokedAt, Expr::value(clock::now()))
        .col_expr(auth_session::Column::RevokedReason, Expr::value(reason))
        .filter(auth_session::Column::Id.eq(id.0))
        .filter(auth_session::Column::RevokedAt.is_null())
        .exec(conn)
        .await?;
    Ok(())
}

async fn issue_token<C: ConnectionTrait>(
    conn: &C,
    session_id: i64,
    now: DateTime<Utc>,
    expires_at: DateTime<Utc>,
) -> DomainResult<IssuedRefreshToken> {
    let token = secret::generate();
    refresh_token::ActiveModel {
        session_id: Set(SessionId(session_id)),
        token_hash: Set(secret::digest(&token)),
        expires_at: Set(expires_at),
        created_at: Set(now),
        ..Default::default()
    }
    .insert(conn)
    .await?;
    Ok(IssuedRefreshToken { token, expires_at })
}
