//! Which failed transactions may simply be run again, read from the database's own error
//! codes (never from message text): an InnoDB deadlock (1213) or lock-wait timeout (1205) on
//! MySQL/MariaDB, `SQLITE_BUSY` or `SQLITE_LOCKED` (any extended code of either) on SQLite.
//! Callers give up the transaction on such an error (it is dropped and rolled back; a
//! lock-wait timeout alone would undo only its statement), so running the whole transaction
//! again is safe. What follows the commit, such as reading the result back, stays outside.

use std::future::Future;

use sea_orm::sqlx::error::DatabaseError;
use sea_orm::sqlx::mysql::MySqlDatabaseError;
use sea_orm::{DbErr, RuntimeErr};

use crate::kernel::error::{DomainError, DomainResult};

/// How many times [`retrying`] runs a transaction in all.
pub(crate) const ATTEMPTS: usize = 4;

const MYSQL_LOCK_WAIT_TIMEOUT: u16 = 1205;
const MYSQL_DEADLOCK: u16 = 1213;
const SQLITE_BUSY: i32 = 5;
const SQLITE_LOCKED: i32 = 6;

/// The error the database itself reported, if `err` carries one.
pub(crate) fn database_error(err: &DbErr) -> Option<&(dyn DatabaseError + 'static)> {
    match err {
        DbErr::Exec(RuntimeErr::SqlxError(e)) | DbErr::Query(RuntimeErr::SqlxError(e)) => {
            match e.as_ref() {
                sea_orm::sqlx::Error::Database(db) => Some(db.as_ref()),
                _ => None,
            }
        }
        _ => None,
    }
}

/// Whether the database rolled the transaction back because of other transactions (a deadlock
/// victim, a lock wait given up, a busy SQLite file), so the same work may succeed when run
/// again.
pub(crate) fn transient(err: &DbErr) -> bool {
    let Some(db) = database_error(err) else {
        return false;
    };
    if let Some(mysql) = db.try_downcast_ref::<MySqlDatabaseError>() {
        return matches!(mysql.number(), MYSQL_DEADLOCK | MYSQL_LOCK_WAIT_TIMEOUT);
    }
    // SQLite reports extended result codes; the primary code is the low byte.
    db.code()
        .and_then(|code| code.parse::<i32>().ok())
        .is_some_and(|code| matches!(code & 0xff, SQLITE_BUSY | SQLITE_LOCKED))
}

/// [`transient`] for an error already converted to the domain's.
pub(crate) fn transient_domain(err: &DomainError) -> bool {
    matches!(err, DomainError::Database { source, .. } if transient(source))
}

/// Runs `attempt` (one whole transaction) until it succeeds, fails for a reason other than
/// [`transient_domain`], or has run [`ATTEMPTS`] times.
pub(crate) async fn retrying<T, F, Fut>(what: &'static str, mut attempt: F) -> DomainResult<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = DomainResult<T>>,
{
    let mut tries = 0;
    loop {
        tries += 1;
        match attempt().await {
            Err(err) if tries < ATTEMPTS && transient_domain(&err) => {
                tracing::debug!(what, attempt = tries, error = %err, "transaction rolled back by the database; retrying");
            }
            other => return other,
        }
    }
}
