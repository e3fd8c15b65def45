//! What every handler can reach: the database, the cache, the WeChat client, the JWT keys,
//! the search indexes.

use std::sync::Arc;

use scantag_auth::jwt::JwtKeys;
use scantag_auth::wechat::WeChatApi;
use scantag_cache::Cache;
use scantag_domain::DatabaseConnection;
use scantag_domain::kernel::clock::Clock;
use scantag_domain::search::index::Indexes;

pub struct AppState {
    pub db: DatabaseConnection,
    pub cache: Cache,
    pub wechat: Arc<dyn WeChatApi>,
    pub jwt: JwtKeys,
    pub refresh_ttl: chrono::Duration,
    pub invite_ttl: chrono::Duration,
    pub capture: CaptureSettings,
    /// Wakes the outbox's consumer when a change wrote events (a capture does).
    pub outbox_wake: Arc<tokio::sync::Notify>,
    /// Wakes the scheduler of due rule transitions (when the manual clock moves).
    pub schedule_wake: Arc<tokio::sync::Notify>,
    /// The server's clock: real time, or the manual clock of `SCANTAG_DEV__MANUAL_CLOCK`.
    pub clock: Clock,
    /// This process's bitmap indexes of tag-filtered lists.
    pub indexes: Arc<Indexes>,
}

/// Where channel codes and messages lead in the mini-program, and the message templates.
pub struct CaptureSettings {
    pub capture_page: String,
    pub task_template_id: Option<String>,
    pub task_page: String,
    pub customer_page: String,
    pub customer_template_id: Option<String>,
    /// A returning customer is counted on the owner's open task about them from this window.
    pub returning_customer_window: chrono::Duration,
}
