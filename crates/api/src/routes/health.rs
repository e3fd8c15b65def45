//! Liveness and readiness probes.

use actix_web::{HttpResponse, get, web};
use serde::Serialize;
use utoipa::ToSchema;

use crate::state::AppState;

#[derive(Serialize, ToSchema)]
#[schema(example = json!({"status": "ok"}))]
pub struct Health {
    /// Always `ok` when the process answers.
    pub status: &'static str,
}

/// Status of one dependency.
#[derive(Serialize, ToSchema)]
pub struct Dependency {
    /// `ok` or `unavailable`.
    pub status: &'static str,
    /// Which implementation is in use (`sqlite`, `mysql`, `redis`, `memory`).
    pub backend: String,
}

/// What this process's search index holds (tag-filtered lists are answered from it).
#[derive(Serialize, ToSchema)]
pub struct SearchIndexReport {
    /// Whether lists are answered from the index (otherwise from SQL only).
    pub enabled: bool,
    /// Tenants whose index is ready in this process.
    pub tenants: u64,
    /// Tenants whose index is being built (their lists are answered by SQL meanwhile).
    pub building: u64,
    /// Customers the ready indexes hold.
    pub customers: u64,
    /// Bytes the ready indexes take.
    pub bytes: u64,
    /// The bytes all indexes may take; the least recently used tenant's goes first.
    pub max_bytes: u64,
}

#[derive(Serialize, ToSchema)]
#[schema(example = json!({
    "status": "ready",
    "database": {"status": "ok", "backend": "mysql"},
    "cache": {"status": "ok", "backend": "redis"},
    "search_index": {"enabled": true, "tenants": 3, "building": 0, "customers": 1000000,
                     "bytes": 9437184, "max_bytes": 2147483648u64}
}))]
pub struct Readiness {
    /// `ready`, `degraded` (the cache is down: answers come from the database) or `unavailable`.
    pub status: &'static str,
    pub database: Dependency,
    pub cache: Dependency,
    pub search_index: SearchIndexReport,
}

/// Liveness: the process is up and answering.
#[utoipa::path(
    tag = "health",
    responses((status = 200, description = "The process is alive", body = Health))
)]
#[get("/healthz")]
pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(Health { status: "ok" })
}

/// How long readiness waits for the database: a probe must answer promptly even when the
/// database does not.
const DATABASE_PING_TIMEOUT: std::time::Duration = std::time::Duration::from_millis(800);
const SQLITE_PING_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// Readiness: whether the database and the cache answer. A cache outage only degrades the
/// service (200, `degraded`); a database outage makes it unavailable (503).
#[utoipa::path(
    tag = "health",
    responses(
        (status = 200, description = "Ready to serve (possibly without the cache)", body = Readiness),
        (status = 503, description = "The database cannot be reached", body = Readiness)
    )
)]
#[get("/readyz")]
pub async fn readyz(state: web::Data<AppState>) -> HttpResponse {
    // SQLite's one connection can be busy but not unreachable: waiting for it is the answer.
    let ping_timeout = match state.db.get_database_backend() {
        sea_orm::DatabaseBackend::Sqlite => SQLITE_PING_TIMEOUT,
        _ => DATABASE_PING_TIMEOUT,
    };
    let (db, cache) = tokio::join!(
        scantag_domain::store::db::ping(&state.db, ping_timeout),
        state.cache.ping()
    );
    let (db_ok, cache_ok) = (db.is_ok(), cache.is_ok());
    let backend = match state.db.get_database_backend() {
        sea_orm::DatabaseBackend::MySql => "mysql",
        sea_orm::DatabaseBackend::Sqlite => "sqlite",
        _ => "other",
    };
    let body = Readiness {
        status: match (db_ok, cache_ok) {
            (true, true) => "ready",
            (true, false) => "degraded",
            (false, _) => "unavailable",
        },
        database: Dependency {
            status: if db_ok { "ok" } else { "unavailable" },
            backend: backend.to_owned(),
        },
        cache: Dependency {
            status: if cache_ok { "ok" } else { "unavailable" },
            backend: state.cache.backend().as_str().to_owned(),
        },
        search_index: {
            let stats = state.indexes.stats();
            SearchIndexReport {
                enabled: stats.enabled,
                tenants: stats.tenants,
                building: stats.building,
                customers: stats.customers,
                bytes: stats.bytes,
                max_bytes: stats.max_bytes,
            }
        },
    };
    if db_ok {
        HttpResponse::Ok().json(body)
    } else {
        HttpResponse::ServiceUnavailable().json(body)
    }
}
