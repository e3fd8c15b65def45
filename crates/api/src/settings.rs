//! Typed settings: defaults, then an optional TOML file, then `SCANTAG_*` environment variables.
//!
//! Nested keys use a double underscore (`SCANTAG_JWT__ACCESS_TTL_SECS`). Unknown keys, from the
//! file or the environment, are refused at start-up so that a typo cannot silently fall back to a
//! default. Secrets are wrapped so they never appear in logs or `Debug` output.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use secrecy::SecretString;
use serde::{Deserialize, Serialize};

/// The variable naming a settings file; read before everything else.
pub const CONFIG_FILE_VAR: &str = "SCANTAG_CONFIG";
/// Upper bounds of duration settings: a year in hours, ten years in days, a minute.
const HOURS_MAX: u64 = 24 * 366;
const DAYS_MAX: u64 = 3660;
const ACQUIRE_TIMEOUT_MS_MAX: u64 = 60_000;
/// Environment variables with this prefix (after `SCANTAG_`) belong to the test harness.
const TEST_VAR_PREFIX: &str = "TEST_";

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// Address the API listens on.
    pub listen: SocketAddr,
    /// `mysql://user:pass@host/db` or `sqlite://path?mode=rwc`; defaults to a SQLite file in
    /// `data_dir`.
    pub database_url: Option<SecretString>,
    pub database_max_connections: u32,
    /// How long a request waits for a database connection before it is answered 503 (MySQL;
    /// SQLite's one connection is only ever busy, never down, and waits up to 10 s).
    pub database_acquire_timeout_ms: u64,
    /// Prepared statements each MySQL connection keeps (see `store::db::STATEMENT_CACHE_DEFAULT`).
    pub database_statement_cache: usize,
    /// `redis://host:port/db`; without it an in-process cache is used.
    pub redis_url: Option<SecretString>,
    /// Prefix of every cache key, so several deployments can share one Redis.
    pub cache_prefix: String,
    /// Where the embedded defaults keep their files (SQLite database, generated signing keys).
    pub data_dir: PathBuf,
    /// Apply pending migrations when the server starts.
    pub run_migrations: bool,
    /// HTTP worker threads; 0 means one per CPU core.
    pub workers: usize,
    pub log: LogSettings,
    pub tls: Option<TlsSettings>,
    pub jwt: JwtSettings,
    pub wechat: WeChatSettings,
    /// How long an invite stays valid, in hours.
    pub invite_ttl_hours: u32,
    /// A customer captured again within this many hours of the owner's open task about them is
    /// counted on that task instead of raising a new one (and a new message).
    pub returning_customer_window_hours: u32,
    pub housekeeping: HousekeepingSettings,
    pub outbox: OutboxSettings,
    pub scheduler: SchedulerSettings,
    pub search_index: SearchIndexSettings,
    pub dev: DevSettings,
}

/// The in-process bitmap index of tag-filtered lists (`domain::search::index`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SearchIndexSettings {
    /// Answer tag filters from the index; off, every list is answered by SQL.
    pub enabled: bool,
    /// Memory the indexes of all tenants may take together, in MiB; the least recently used
    /// tenant's index goes first when a build would pass it.
    pub max_mib: u64,
    /// A tenant's index unused for this many seconds is dropped (0: kept).
    pub idle_secs: u64,
}

/// The scheduler that applies the rules' transitions that come with time alone (a window
/// passing, "30 days since" arriving), when they are due.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SchedulerSettings {
    /// Milliseconds between looks for due transitions; 0 turns the scheduler off in this
    /// process.
    pub interval_ms: u64,
    /// Rule states claimed per look.
    pub batch: u64,
    /// Seconds a claim lasts: a process that dies leaves its customers to another after this.
    pub lease_secs: u64,
}

/// Settings for testing a server from outside. Never on in production.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DevSettings {
    /// A manual clock: the server's time starts at real time and `POST /__dev/clock` moves it
    /// forward. Refused unless WeChat is the bundled mock or a mock on a loopback address.
    pub manual_clock: bool,
}

/// The delivery of the outbox's events (owners' task messages, rules' messages) after their
/// change commits.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OutboxSettings {
    /// Milliseconds between looks for waiting events when nothing wakes the consumer earlier
    /// (a capture does); 0 turns delivery off in this process.
    pub interval_ms: u64,
    /// Events claimed per look.
    pub batch: u64,
    /// Seconds a claim lasts: a process that dies leaves its events to another after this.
    pub lease_secs: u64,
    /// Tries of a message WeChat refuses for a passing reason (busy, throttled, unreachable)
    /// before it is given up; the waits between them double from 2 seconds.
    pub max_attempts: u32,
}

/// The periodic clean-up of rows that have served their purpose.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HousekeepingSettings {
    /// Seconds between clean-up rounds; 0 turns the clean-up off.
    pub interval_secs: u64,
    /// Hours an idempotency key (and its stored answer) is kept after it was claimed.
    pub idempotency_retention_hours: u32,
    /// Days a session is kept after it ended (revoked, or its last refresh token expired);
    /// spent refresh tokens go with it or once they are this old.
    pub session_retention_days: u32,
    /// Days a delivered (or given up) outbox event is kept.
    pub event_retention_days: u32,
    /// Hours a row of the search index's change feed is kept (real time); a server whose
    /// index is older than that builds it again.
    pub change_feed_retention_hours: u32,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogSettings {
    pub format: LogFormat,
    /// A tracing filter, e.g. `info` or `scantag_api=debug,info`.
    pub level: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LogFormat {
    Json,
    Pretty,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsSettings {
    /// PEM certificate chain.
    pub cert_path: PathBuf,
    /// PEM private key (PKCS#8, PKCS#1 or SEC1).
    pub key_path: PathBuf,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JwtSettings {
    /// A single signing secret (at least 32 bytes); its kid is `active_kid`.
    pub secret: Option<SecretString>,
    /// A TOML file with `active_kid` and `[[keys]]` entries (`kid`, `secret`) for rotation.
    pub keys_file: Option<PathBuf>,
    /// The kid that signs new tokens.
    pub active_kid: Option<String>,
    pub issuer: String,
    pub audience: String,
    pub access_ttl_secs: u64,
    pub refresh_ttl_secs: u64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WeChatSettings {
    /// The mini-program's AppID. Without it scantag starts the bundled WeChat mock.
    pub appid: Option<String>,
    pub secret: Option<SecretString>,
    /// Base URL of the WeChat server API.
    pub base_url: String,
    pub timeout_ms: u64,
    pub max_retries: u32,
    /// Seconds an idle connection to WeChat is kept for reuse. Keep it below the server's own
    /// idle timeout, or a request can meet a connection the server is closing.
    pub pool_idle_secs: u64,
    /// Where the bundled mock listens when no AppID is configured.
    pub mock_listen: SocketAddr,
    /// The mini-program page a channel's code opens; it reads the scene and shows the form.
    pub capture_page: String,
    /// The subscribe-message template that tells staff about a new task. Without it no
    /// message is sent (the bundled mock uses `scantag-task-notice`).
    pub task_template_id: Option<String>,
    /// The page a task message opens; `?id=<task id>` is appended.
    pub task_page: String,
    /// The page a rule's message to the owner opens; `?id=<customer id>` is appended.
    pub customer_page: String,
    /// The subscribe-message template of a rule's message to a customer (`thing1`: the
    /// message, `time2`: when). Without it no such message is sent (the bundled mock uses
    /// `scantag-customer-notice`).
    pub customer_template_id: Option<String>,
}

/// The defaults, as a serializable tree figment can merge files and variables into.
fn defaults() -> serde_json::Value {
    serde_json::json!({
        "listen": "127.0.0.1:8080",
        "database_max_connections": 20,
        "database_acquire_timeout_ms": 3000,
        "database_statement_cache": scantag_domain::store::db::STATEMENT_CACHE_DEFAULT,
        "cache_prefix": "scantag",
        "data_dir": "./data",
        "run_migrations": true,
        "workers": 0,
        "log": { "format": "json", "level": "info" },
        "jwt": {
            "issuer": "scantag",
            "audience": "scantag-api",
            "access_ttl_secs": 900,
            "refresh_ttl_secs": 30 * 24 * 3600,
        },
        "wechat": {
            "base_url": "https://api.weixin.qq.com",
            "timeout_ms": 5000,
            "max_retries": 2,
            "pool_idle_secs": scantag_auth::wechat::DEFAULT_POOL_IDLE_TIMEOUT.as_secs(),
            "mock_listen": "127.0.0.1:8090",
            "capture_page": "pages/capture/index",
            "task_page": "pages/tasks/index",
            "customer_page": "pages/customers/detail",
        },
        "invite_ttl_hours": 72,
        "returning_customer_window_hours": 24,
        "housekeeping": {
            "interval_secs": 3600,
            "idempotency_retention_hours": 24,
            "session_retention_days": 30,
            "event_retention_days": 7,
            "change_feed_retention_hours": 24,
        },
        "search_index": {
            "enabled": true,
            "max_mib": 2048,
            "idle_secs": 3600,
        },
        "scheduler": {
            "interval_ms": 1000,
            "batch": 1000,
            "lease_secs": 30,
        },
        "dev": { "manual_clock": false },
        "outbox": {
            "interval_ms": 1000,
            "batch": 50,
            "lease_secs": 60,
            "max_attempts": 8,
        },
    })
}

#[derive(Debug, thiserror::Error)]
#[error("invalid settings: {0}")]
pub struct SettingsError(String);

impl Settings {
    /// Loads settings from the defaults, the file named by `SCANTAG_CONFIG` (or `scantag.toml`
    /// in the working directory, if present) and the `SCANTAG_*` environment.
    pub fn load() -> Result<Settings, SettingsError> {
        let file = std::env::var_os(CONFIG_FILE_VAR)
            .map(PathBuf::from)
            .or_else(|| Some(PathBuf::from("scantag.toml")).filter(|p| p.exists()));
        Self::load_from(file.as_deref(), true)
    }

    /// Loads settings from the defaults and `file`, and from the environment if `with_env`.
    pub fn load_from(file: Option<&Path>, with_env: bool) -> Result<Settings, SettingsError> {
        let mut figment = Figment::from(Serialized::defaults(defaults()));
        if let Some(file) = file {
            if !file.exists() {
                return Err(SettingsError(format!(
                    "settings file {} does not exist",
                    file.display()
                )));
            }
            figment = figment.merge(Toml::file(file));
        }
        if with_env {
            figment = figment.merge(
                Env::prefixed("SCANTAG_")
                    .filter(|key| {
                        key.as_str() != "config"
                            && !key.as_str().starts_with(&TEST_VAR_PREFIX.to_lowercase())
                    })
                    .split("__"),
            );
        }
        let settings: Settings = figment
            .extract()
            .map_err(|e| SettingsError(e.to_string()))?;
        settings.check_bounds()?;
        Ok(settings)
    }

    /// Refuses durations no deployment means, which would overflow date arithmetic.
    fn check_bounds(&self) -> Result<(), SettingsError> {
        let bounds = [
            (
                "returning_customer_window_hours",
                u64::from(self.returning_customer_window_hours),
                HOURS_MAX,
            ),
            (
                "housekeeping.idempotency_retention_hours",
                u64::from(self.housekeeping.idempotency_retention_hours),
                HOURS_MAX,
            ),
            (
                "housekeeping.session_retention_days",
                u64::from(self.housekeeping.session_retention_days),
                DAYS_MAX,
            ),
            (
                "housekeeping.event_retention_days",
                u64::from(self.housekeeping.event_retention_days),
                DAYS_MAX,
            ),
            (
                "housekeeping.change_feed_retention_hours",
                u64::from(self.housekeeping.change_feed_retention_hours),
                HOURS_MAX,
            ),
            ("search_index.max_mib", self.search_index.max_mib, 1 << 20),
            (
                "search_index.idle_secs",
                self.search_index.idle_secs,
                DAYS_MAX * 86_400,
            ),
            (
                "outbox.lease_secs",
                self.outbox.lease_secs,
                HOURS_MAX * 3600,
            ),
            ("outbox.batch", self.outbox.batch, 1_000),
            (
                "outbox.max_attempts",
                u64::from(self.outbox.max_attempts),
                30,
            ),
            (
                "database_acquire_timeout_ms",
                self.database_acquire_timeout_ms,
                ACQUIRE_TIMEOUT_MS_MAX,
            ),
            (
                "database_statement_cache",
                self.database_statement_cache as u64,
                16_382,
            ),
        ];
        let floors = [
            ("outbox.batch", self.outbox.batch, 1),
            ("outbox.lease_secs", self.outbox.lease_secs, 10),
            ("scheduler.batch", self.scheduler.batch, 1),
            ("scheduler.lease_secs", self.scheduler.lease_secs, 10),
            (
                "database_statement_cache",
                self.database_statement_cache as u64,
                1,
            ),
            (
                "housekeeping.change_feed_retention_hours",
                u64::from(self.housekeeping.change_feed_retention_hours),
                1,
            ),
        ];
        for (name, value, min) in floors {
            if value < min {
                return Err(SettingsError(format!("{name} must be at least {min}")));
            }
        }
        for (name, value, max) in bounds {
            if value > max {
                return Err(SettingsError(format!("{name} must be at most {max}")));
            }
        }
        if self.database_acquire_timeout_ms == 0 {
            return Err(SettingsError(
                "database_acquire_timeout_ms must be at least 1".to_owned(),
            ));
        }
        Ok(())
    }

    /// Settings with only the defaults; a starting point for embedding and tests.
    pub fn defaults() -> Result<Settings, SettingsError> {
        Self::load_from(None, false)
    }

    /// The database URL in effect: the configured one, or the embedded SQLite file.
    pub fn effective_database_url(&self) -> SecretString {
        match &self.database_url {
            Some(url) => url.clone(),
            None => SecretString::from(format!(
                "sqlite://{}?mode=rwc",
                self.data_dir.join("scantag.db").display()
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn defaults_describe_the_embedded_setup() {
        let s = Settings::defaults().unwrap();
        assert!(s.database_url.is_none());
        assert!(s.redis_url.is_none());
        assert!(s.wechat.appid.is_none());
        assert_eq!(s.listen.port(), 8080);
        use secrecy::ExposeSecret;
        assert_eq!(
            s.effective_database_url().expose_secret(),
            "sqlite://./data/scantag.db?mode=rwc"
        );
    }

    #[test]
    fn a_file_overrides_defaults_and_unknown_keys_are_refused() {
        let dir = std::env::temp_dir().join(format!("scantag-settings-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let good = dir.join("good.toml");
        let mut f = std::fs::File::create(&good).unwrap();
        writeln!(f, "listen = \"0.0.0.0:9000\"\n[jwt]\naccess_ttl_secs = 60").unwrap();
        let s = Settings::load_from(Some(&good), false).unwrap();
        assert_eq!(s.listen.port(), 9000);
        assert_eq!(s.jwt.access_ttl_secs, 60);
        assert_eq!(s.jwt.refresh_ttl_secs, 30 * 24 * 3600);

        let bad = dir.join("bad.toml");
        std::fs::write(&bad, "lisen = \"0.0.0.0:9000\"\n").unwrap();
        let err = Settings::load_from(Some(&bad), false).unwrap_err();
        assert!(err.to_string().contains("lisen"), "{err}");
    }

    #[test]
    fn durations_beyond_their_bounds_are_refused() {
        let dir = std::env::temp_dir().join(format!("scantag-bounds-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("b.toml");
        std::fs::write(&file, "returning_customer_window_hours = 4294967295\n").unwrap();
        let err = Settings::load_from(Some(&file), false).unwrap_err();
        assert!(
            err.to_string().contains("returning_customer_window_hours"),
            "{err}"
        );
    }

    #[test]
    fn secrets_do_not_print() {
        let dir = std::env::temp_dir().join(format!("scantag-secret-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("s.toml");
        std::fs::write(
            &file,
            "[wechat]\nappid = \"wx1\"\nsecret = \"topsecretvalue\"\n",
        )
        .unwrap();
        let s = Settings::load_from(Some(&file), false).unwrap();
        assert!(!format!("{s:?}").contains("topsecretvalue"));
    }
}
