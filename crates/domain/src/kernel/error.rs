//! Errors the domain reports to its callers.

use sea_orm::{DbErr, SqlErr};

/// What is wrong with one field of a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldIssue {
    /// Path of the field, e.g. `phone`, `custom_fields.size`, `add[2]`.
    pub field: String,
    /// Machine-readable reason, e.g. `phone`, `unknown_tag`, `required`.
    pub code: &'static str,
    pub message: String,
}

impl FieldIssue {
    pub fn new(field: impl Into<String>, code: &'static str, message: impl Into<String>) -> Self {
        FieldIssue {
            field: field.into(),
            code,
            message: message.into(),
        }
    }
}

/// The machine-readable code of a refusal the domain reports as a whole (a field's own
/// reason is [`FieldIssue::code`]). Clients match on [`ErrorCode::as_str`], so a variant's
/// string never changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorCode {
    /// Fields of the request break the rules; the issues say which.
    ValidationFailed,
    /// A tag to assign is archived.
    TagArchived,
    /// A batch's filter matches more customers than a batch may change.
    TooManyCustomers,
    PhoneTaken,
    CustomerIdentityTaken,
    TagNameTaken,
    TagGroupNameTaken,
    SceneTaken,
    CustomFieldKeyTaken,
    IdempotencyKeyClaimed,
    /// A concurrent change won a unique index no rule above names.
    Conflict,
    /// A channel is paused or outside its active window.
    ChannelInactive,
    RuleNameTaken,
    /// Saving the rule would make rules read each other's tags in a circle.
    RuleCycle,
    /// An order's `external_ref` is known with a different body.
    ExternalRefConflict,
}

impl ErrorCode {
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::ValidationFailed => "validation_failed",
            ErrorCode::TagArchived => "tag_archived",
            ErrorCode::TooManyCustomers => "too_many_customers",
            ErrorCode::PhoneTaken => "phone_taken",
            ErrorCode::CustomerIdentityTaken => "customer_identity_taken",
            ErrorCode::TagNameTaken => "tag_name_taken",
            ErrorCode::TagGroupNameTaken => "tag_group_name_taken",
            ErrorCode::SceneTaken => "scene_taken",
            ErrorCode::CustomFieldKeyTaken => "custom_field_key_taken",
            ErrorCode::IdempotencyKeyClaimed => "idempotency_key_claimed",
            ErrorCode::Conflict => "conflict",
            ErrorCode::ChannelInactive => "channel_inactive",
            ErrorCode::RuleNameTaken => "rule_name_taken",
            ErrorCode::RuleCycle => "rule_cycle",
            ErrorCode::ExternalRefConflict => "external_ref_conflict",
        }
    }
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, thiserror::Error)]
pub enum DomainError {
    #[error("{0} not found")]
    NotFound(&'static str),
    /// The actor's role does not allow the action (`access::policy` says which would).
    #[error("{0}")]
    Forbidden(String),
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
    #[error("{0}")]
    Conflict(String),
    /// A uniqueness rule was broken; `code` names the rule (`tag_name_taken`, `phone_taken`,
    /// …), `detail` and `existing_id` the record already holding the value (when known: a
    /// race lost on a unique index does not say).
    #[error("{detail}")]
    Taken {
        code: ErrorCode,
        detail: String,
        existing_id: Option<i64>,
    },
    /// The request is well-formed but refers to things that cannot be used; `code` is the
    /// problem code (`validation_failed`, `tag_archived`, `too_many_customers`, …).
    #[error("{code}: {issues:?}")]
    Rejected {
        code: ErrorCode,
        issues: Vec<FieldIssue>,
    },
    #[error("{field}: {message}")]
    Invalid {
        field: &'static str,
        message: String,
    },
    /// The thing exists but can no longer (or not yet) be used, e.g. a channel outside its
    /// active window.
    #[error("{detail}")]
    Gone { code: ErrorCode, detail: String },
    /// The database cannot be reached or dropped the connection: the request may succeed
    /// when retried shortly (with the same Idempotency-Key, where it has one).
    #[error("the database is unavailable")]
    Unavailable(#[source] DbErr),
    /// The database refused a statement; `step` says which step of the operation it was.
    #[error("database error while {step}")]
    Database {
        step: &'static str,
        #[source]
        source: DbErr,
    },
}

pub type DomainResult<T> = Result<T, DomainError>;

impl DomainError {
    /// A 422-style rejection of one field.
    pub fn field(field: impl Into<String>, code: &'static str, message: impl Into<String>) -> Self {
        DomainError::Rejected {
            code: ErrorCode::ValidationFailed,
            issues: vec![FieldIssue::new(field, code, message)],
        }
    }
}

impl From<FieldIssue> for DomainError {
    fn from(issue: FieldIssue) -> Self {
        DomainError::Rejected {
            code: ErrorCode::ValidationFailed,
            issues: vec![issue],
        }
    }
}

/// Unique indexes and what breaking each means to a client. A check-then-insert can lose a
/// race with a concurrent request; the index then decides, and the loser gets the same 409 it
/// would have got a moment later.
const UNIQUE_RULES: &[(&str, &str, ErrorCode, &str)] = &[
    (
        "ux_customers_tenant_phone",
        "customers.tenant_id, customers.phone_index",
        ErrorCode::PhoneTaken,
        "another customer already has this phone number",
    ),
    (
        "ux_tags_tenant_name",
        "tags.tenant_id, tags.name_key",
        ErrorCode::TagNameTaken,
        "a tag with this name already exists",
    ),
    (
        "ux_tag_groups_tenant_name",
        "tag_groups.tenant_id, tag_groups.name_key",
        ErrorCode::TagGroupNameTaken,
        "a tag group with this name already exists",
    ),
    (
        "ux_channels_tenant_scene",
        "channels.tenant_id, channels.scene",
        ErrorCode::SceneTaken,
        "another channel already uses this scene",
    ),
    (
        "ux_customers_tenant_openid",
        "customers.tenant_id, customers.openid",
        ErrorCode::CustomerIdentityTaken,
        "another customer already has this WeChat identity",
    ),
    (
        "ux_customers_tenant_unionid",
        "customers.tenant_id, customers.unionid",
        ErrorCode::CustomerIdentityTaken,
        "another customer already has this WeChat identity",
    ),
    (
        "ux_idempotency_keys_scope_key",
        "idempotency_keys.scope, idempotency_keys.idem_key",
        ErrorCode::IdempotencyKeyClaimed,
        "another request holds this idempotency key",
    ),
    (
        "ux_orders_external_ref",
        "orders.tenant_id, orders.external_ref",
        ErrorCode::ExternalRefConflict,
        "another order already has this external_ref",
    ),
    (
        "ux_rules_name",
        "rules.tenant_id, rules.name_key",
        ErrorCode::RuleNameTaken,
        "a rule with this name already exists",
    ),
    (
        "ux_custom_field_defs_key",
        "custom_field_defs.tenant_id, custom_field_defs.field_key",
        ErrorCode::CustomFieldKeyTaken,
        "a custom field with this key already exists",
    ),
];

/// Whether `err` says the database is out of reach rather than that the statement failed: no
/// connection could be had in time, or the one in use broke (reset, closed, server shutting
/// down; SQLSTATE class 08 is "connection exception").
fn database_unreachable(err: &DbErr) -> bool {
    use sea_orm::RuntimeErr;
    use sea_orm::sqlx::Error as SqlxError;
    match err {
        DbErr::ConnectionAcquire(_) | DbErr::Conn(_) => true,
        DbErr::Exec(RuntimeErr::SqlxError(e)) | DbErr::Query(RuntimeErr::SqlxError(e)) => {
            match e.as_ref() {
                SqlxError::Io(_)
                | SqlxError::Tls(_)
                | SqlxError::PoolTimedOut
                | SqlxError::PoolClosed
                | SqlxError::WorkerCrashed => true,
                SqlxError::Database(db) => db
                    .code()
                    .is_some_and(|code| code.starts_with("08") || code == "70100"),
                _ => false,
            }
        }
        _ => false,
    }
}

impl From<DbErr> for DomainError {
    fn from(err: DbErr) -> Self {
        if database_unreachable(&err) {
            return DomainError::Unavailable(err);
        }
        let Some(SqlErr::UniqueConstraintViolation(message)) = err.sql_err() else {
            return DomainError::Database {
                step: "running a statement",
                source: err,
            };
        };
        // MySQL names the index, SQLite the columns.
        let rule = UNIQUE_RULES
            .iter()
            .find(|(index, columns, _, _)| message.contains(index) || message.contains(columns));
        match rule {
            Some((_, _, code, detail)) => DomainError::Taken {
                code: *code,
                detail: (*detail).to_owned(),
                existing_id: None,
            },
            None => DomainError::Taken {
                code: ErrorCode::Conflict,
                detail: "a concurrent change conflicted with this one; retry".to_owned(),
                existing_id: None,
            },
        }
    }
}

/// Names the step of an operation a database call is, so that a failure's log says which one
/// failed (`.step("locking the customer")?`). Errors the domain reads (an unreachable
/// database, a broken unique rule) convert exactly as without it.
pub trait Step<T> {
    fn step(self, step: &'static str) -> DomainResult<T>;
}

impl<T> Step<T> for Result<T, DbErr> {
    fn step(self, step: &'static str) -> DomainResult<T> {
        self.map_err(|err| match DomainError::from(err) {
            DomainError::Database { source, .. } => DomainError::Database { step, source },
            other => other,
        })
    }
}
