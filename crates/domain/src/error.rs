//! Errors the domain reports to its callers.

use sea_orm::DbErr;

#[derive(Debug, thiserror::Error)]
pub enum DomainError {
    #[error("{0} not found")]
    NotFound(&'static str),
    #[error("invite code is not valid")]
    InviteInvalid,
    #[error("invite code has already been used")]
    InviteUsed,
    #[error("invite code has expired")]
    InviteExpired,
    #[error("this WeChat account is already a member of the tenant")]
    AlreadyMember,
    #[error("refresh token is not valid")]
    RefreshInvalid,
    #[error("refresh token was already used; the session has been revoked")]
    RefreshReused,
    #[error("the session has ended")]
    SessionRevoked,
    #[error("{0}")]
    Conflict(String),
    #[error("{field}: {message}")]
    Invalid {
        field: &'static str,
        message: String,
    },
    #[error("database error")]
    Database(#[from] DbErr),
}

pub type DomainResult<T> = Result<T, DomainError>;
