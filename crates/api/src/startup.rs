//! Building and running the server. `Application::build` binds the listener and reports the
//! port, so tests run the real server on port 0.

use std::io::BufReader;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use actix_web::dev::Server;
use actix_web::middleware::{Compress, from_fn};
use actix_web::{App, HttpServer, web};
use anyhow::Context;
use miniprogram_mock::{MockConfig, MockServer};
use scantag_auth::jwt::JwtKeys;
use scantag_auth::wechat::{WeChatApi, WeChatClient, WeChatConfig};
use scantag_cache::Cache;
use scantag_domain::DatabaseConnection;
use scantag_domain::kernel::clock::{self, Clock};
use scantag_domain::search::index::{IndexSettings, Indexes};
use scantag_domain::support::housekeeping::{self, Retention};
use secrecy::{ExposeSecret, SecretString};
use tracing_actix_web::TracingLogger;
use utoipa_actix_web::AppExt;
use utoipa_swagger_ui::SwaggerUi;

use crate::error::ApiError;
use crate::extract::{JSON_LIMIT, resolve_caller};
use crate::fallback::{KnownPaths, fallback};
use crate::request_context::{RequestSpan, assign_request_id, on_server_clock};
use crate::settings::{HousekeepingSettings, OutboxSettings, SchedulerSettings, Settings};
use crate::state::{AppState, CaptureSettings};
use crate::{app, keys, openapi, routes};

/// How long in-flight requests get to finish after a shutdown signal.
const SHUTDOWN_GRACE_SECS: u64 = 30;

pub struct Application {
    server: Server,
    addr: SocketAddr,
    db: DatabaseConnection,
    cache: Cache,
    mock: Option<MockServer>,
    tls: bool,
    housekeeping: HousekeepingSettings,
    outbox: OutboxSettings,
    scheduler: SchedulerSettings,
    state: web::Data<AppState>,
}

/// The templates used with the bundled WeChat mock.
const MOCK_TASK_TEMPLATE: &str = "scantag-task-notice";
const MOCK_CUSTOMER_TEMPLATE: &str = "scantag-customer-notice";

impl Application {
    /// Connects to the database and cache, migrates, starts the WeChat mock if no AppID is
    /// configured, and binds the listener. The server runs once [`Application::run`] is awaited.
    ///
    /// Long because it is the one place the server is assembled, middleware in order.
    pub async fn build(settings: Settings) -> anyhow::Result<Application> {
        let db = connect_database(&settings).await?;
        let cache = build_cache(&settings)?;
        let (wechat_config, mock) = wechat_config(&settings).await?;
        let wechat: Arc<dyn WeChatApi> = Arc::new(
            WeChatClient::new(wechat_config, cache.clone())
                .context("building the WeChat client")?,
        );
        let jwt_config = keys::jwt_config(&settings)?;
        tracing::info!(keys = %keys::describe(&jwt_config), "JWT keys loaded");
        let jwt = JwtKeys::new(&jwt_config).context("loading JWT keys")?;
        let clock = server_clock(&settings, mock.is_some())?;
        let state = web::Data::new(AppState {
            db: db.clone(),
            cache: cache.clone(),
            wechat,
            jwt,
            refresh_ttl: chrono::Duration::seconds(
                i64::try_from(settings.jwt.refresh_ttl_secs).context("jwt.refresh_ttl_secs")?,
            ),
            invite_ttl: chrono::Duration::hours(i64::from(settings.invite_ttl_hours)),
            capture: CaptureSettings {
                capture_page: settings.wechat.capture_page.clone(),
                task_template_id: settings
                    .wechat
                    .task_template_id
                    .clone()
                    .or_else(|| mock.is_some().then(|| MOCK_TASK_TEMPLATE.to_owned())),
                task_page: settings.wechat.task_page.clone(),
                customer_page: settings.wechat.customer_page.clone(),
                customer_template_id: settings
                    .wechat
                    .customer_template_id
                    .clone()
                    .or_else(|| mock.is_some().then(|| MOCK_CUSTOMER_TEMPLATE.to_owned())),
                returning_customer_window: chrono::Duration::hours(i64::from(
                    settings.returning_customer_window_hours,
                )),
            },
            outbox_wake: Arc::new(tokio::sync::Notify::new()),
            schedule_wake: Arc::new(tokio::sync::Notify::new()),
            clock,
            indexes: Indexes::new(
                db.clone(),
                IndexSettings {
                    enabled: settings.search_index.enabled,
                    max_bytes: settings.search_index.max_mib.saturating_mul(1 << 20),
                    idle: (settings.search_index.idle_secs > 0)
                        .then(|| Duration::from_secs(settings.search_index.idle_secs)),
                },
            ),
        });
        let consumer = state.clone();

        // Built once: the document is the same for every worker. It is mounted before the
        // `/api/v1` scope, which would otherwise claim its path.
        let document = openapi::document();
        let known_paths = web::Data::new(KnownPaths::from_document(&document));
        let mut server = HttpServer::new(move || {
            let (app, _) = App::new()
                .service(
                    SwaggerUi::new("/docs/{_:.*}").url("/api/v1/openapi.json", document.clone()),
                )
                .into_utoipa_app()
                .app_data(state.clone())
                .app_data(known_paths.clone())
                .app_data(web::PayloadConfig::new(JSON_LIMIT))
                .app_data(
                    web::PathConfig::default()
                        .error_handler(|_, _| ApiError::not_found("resource").into()),
                )
                .configure(routes::configure)
                .split_for_parts();
            app.default_service(web::to(fallback))
                .wrap(from_fn(resolve_caller))
                .wrap(from_fn(on_server_clock))
                .wrap(Compress::default())
                .wrap(TracingLogger::<RequestSpan>::new())
                .wrap(from_fn(assign_request_id))
        })
        .shutdown_timeout(SHUTDOWN_GRACE_SECS);
        if settings.workers > 0 {
            server = server.workers(settings.workers);
        }
        let server = match &settings.tls {
            Some(tls) => server
                .bind_rustls_0_23(settings.listen, tls_config(tls)?)
                .with_context(|| format!("binding {} (TLS)", settings.listen))?,
            None => server
                .bind(settings.listen)
                .with_context(|| format!("binding {}", settings.listen))?,
        };
        let addr = server
            .addrs()
            .first()
            .copied()
            .context("the server bound no address")?;
        Ok(Application {
            server: server.run(),
            addr,
            db,
            cache,
            mock,
            tls: settings.tls.is_some(),
            housekeeping: settings.housekeeping.clone(),
            outbox: settings.outbox.clone(),
            scheduler: settings.scheduler.clone(),
            state: consumer,
        })
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn db(&self) -> &DatabaseConnection {
        &self.db
    }

    pub fn cache(&self) -> &Cache {
        &self.cache
    }

    /// The bundled WeChat mock, when the server started one.
    pub fn wechat_mock(&self) -> Option<&MockServer> {
        self.mock.as_ref()
    }

    /// A handle that stops the server gracefully.
    pub fn handle(&self) -> actix_web::dev::ServerHandle {
        self.server.handle()
    }

    /// Serves until the process receives SIGINT/SIGTERM or the handle stops it; in-flight
    /// requests get up to 30 seconds to finish.
    pub async fn run(self) -> std::io::Result<()> {
        let scheme = if self.tls { "https" } else { "http" };
        tracing::info!(address = %format!("{scheme}://{}", self.addr), "scantag is listening");
        let housekeeping = spawn_housekeeping(self.state.clone(), &self.housekeeping);
        let delivery = app::outbox::spawn(self.state.clone(), &self.outbox);
        let schedule = app::schedule::spawn(self.state.clone(), &self.scheduler);
        let indexes = spawn_index_sweeper(self.state.clone());
        let result = self.server.await;
        for task in [housekeeping, delivery, schedule, indexes]
            .into_iter()
            .flatten()
        {
            task.abort();
        }
        if let Some(mock) = self.mock {
            mock.stop().await;
        }
        self.db.clone().close().await.ok();
        result
    }
}

/// Runs the clean-up of [`scantag_domain::support::housekeeping`] every `interval_secs` (the first
/// round after a random part of it, so that processes started together do not sweep in
/// step).
fn spawn_housekeeping(
    state: web::Data<AppState>,
    settings: &HousekeepingSettings,
) -> Option<tokio::task::JoinHandle<()>> {
    if settings.interval_secs == 0 {
        return None;
    }
    let interval = Duration::from_secs(settings.interval_secs);
    let retention = Retention {
        idempotency_keys: chrono::Duration::hours(i64::from(settings.idempotency_retention_hours)),
        ended_sessions: chrono::Duration::days(i64::from(settings.session_retention_days)),
        processed_events: chrono::Duration::days(i64::from(settings.event_retention_days)),
        change_feed: chrono::Duration::hours(i64::from(settings.change_feed_retention_hours)),
    };
    let (db, clock) = (state.db.clone(), state.clock.clone());
    Some(tokio::spawn(clock::scope(clock, async move {
        let first = interval.mul_f64(rand::random::<f64>());
        tokio::time::sleep(first).await;
        loop {
            match housekeeping::sweep(&db, retention, clock::now()).await {
                Ok(swept) => tracing::info!(
                    idempotency_keys = swept.idempotency_keys,
                    sessions = swept.sessions,
                    refresh_tokens = swept.refresh_tokens,
                    events = swept.events,
                    feed_rows = swept.feed_rows,
                    "housekeeping done"
                ),
                Err(err) => {
                    tracing::warn!(error = %err, "housekeeping failed; trying again next round")
                }
            }
            tokio::time::sleep(interval).await;
        }
    })))
}

/// Drops the search indexes of tenants idle for longer than their setting, once a minute.
fn spawn_index_sweeper(state: web::Data<AppState>) -> Option<tokio::task::JoinHandle<()>> {
    Some(tokio::spawn(async move {
        loop {
            tokio::time::sleep(Duration::from_secs(60)).await;
            state.indexes.evict_idle();
        }
    }))
}

/// The server's clock: real time, or with `dev.manual_clock` a manual one — refused unless
/// WeChat is the bundled mock, or a mock on a loopback address with the mock's AppID, so that
/// a server talking to the real WeChat can never run on a moved clock.
fn server_clock(settings: &Settings, bundled_mock: bool) -> anyhow::Result<Clock> {
    if !settings.dev.manual_clock {
        return Ok(Clock::real());
    }
    let loopback = url::Url::parse(&settings.wechat.base_url)
        .ok()
        .and_then(|u| u.host_str().map(str::to_owned))
        .is_some_and(|host| {
            host == "localhost"
                || host
                    .trim_matches(|c| c == '[' || c == ']')
                    .parse::<std::net::IpAddr>()
                    .is_ok_and(|ip| ip.is_loopback())
        });
    // A mock elsewhere answers for the mock's own AppID; the real WeChat never does.
    let mock_appid = settings
        .wechat
        .appid
        .as_deref()
        .is_none_or(|appid| appid == MockConfig::default().appid);
    let allowed = bundled_mock || (loopback && mock_appid);
    if !allowed {
        anyhow::bail!(
            "dev.manual_clock (SCANTAG_DEV__MANUAL_CLOCK) is only allowed with the bundled WeChat mock, or a mock on a loopback address with the mock's AppID"
        );
    }
    tracing::warn!("the manual clock is on: POST /__dev/clock moves the server's time");
    Ok(Clock::manual())
}

async fn connect_database(settings: &Settings) -> anyhow::Result<DatabaseConnection> {
    let url = settings.effective_database_url();
    let db = scantag_domain::store::db::connect(
        url.expose_secret(),
        settings.database_max_connections,
        Duration::from_millis(settings.database_acquire_timeout_ms),
        settings.database_statement_cache,
    )
    .await
    .context("connecting to the database")?;
    if settings.run_migrations {
        scantag_domain::store::db::migrate(&db)
            .await
            .context("applying database migrations")?;
    }
    Ok(db)
}

fn build_cache(settings: &Settings) -> anyhow::Result<Cache> {
    match &settings.redis_url {
        Some(url) => Cache::redis(url.expose_secret(), &settings.cache_prefix)
            .context("configuring the Redis cache"),
        None => Ok(Cache::memory(&settings.cache_prefix, 100_000)),
    }
}

async fn wechat_config(settings: &Settings) -> anyhow::Result<(WeChatConfig, Option<MockServer>)> {
    let wechat = &settings.wechat;
    let timeout = Duration::from_millis(wechat.timeout_ms);
    match &wechat.appid {
        Some(appid) => {
            let secret = wechat
                .secret
                .clone()
                .context("wechat.secret (SCANTAG_WECHAT__SECRET) is required with wechat.appid")?;
            Ok((
                WeChatConfig {
                    base_url: wechat.base_url.clone(),
                    appid: appid.clone(),
                    secret,
                    timeout,
                    max_retries: wechat.max_retries,
                    pool_idle_timeout: Duration::from_secs(wechat.pool_idle_secs),
                },
                None,
            ))
        }
        None => {
            let mock_config = MockConfig::default();
            let mock = MockServer::start(&wechat.mock_listen.to_string(), mock_config.clone())
                .await
                .with_context(|| format!("starting the WeChat mock on {}", wechat.mock_listen))?;
            tracing::warn!(
                base_url = %mock.base_url(),
                "no WeChat AppID configured: using the bundled WeChat mock (control API under /__mock/)"
            );
            Ok((
                WeChatConfig {
                    base_url: mock.base_url(),
                    appid: mock_config.appid,
                    secret: SecretString::from(mock_config.secret),
                    timeout,
                    max_retries: wechat.max_retries,
                    pool_idle_timeout: Duration::from_secs(wechat.pool_idle_secs),
                },
                Some(mock),
            ))
        }
    }
}

fn tls_config(tls: &crate::settings::TlsSettings) -> anyhow::Result<rustls::ServerConfig> {
    use rustls_pki_types::pem::PemObject;
    use rustls_pki_types::{CertificateDer, PrivateKeyDer};

    // Several crates link rustls; pick the provider explicitly (a second install is a no-op).
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let cert_file = std::fs::File::open(&tls.cert_path)
        .with_context(|| format!("opening {}", tls.cert_path.display()))?;
    let certs = CertificateDer::pem_reader_iter(BufReader::new(cert_file))
        .collect::<Result<Vec<_>, _>>()
        .with_context(|| format!("reading certificates from {}", tls.cert_path.display()))?;
    let key = PrivateKeyDer::from_pem_file(&tls.key_path)
        .with_context(|| format!("reading the private key from {}", tls.key_path.display()))?;
    rustls::ServerConfig::builder()
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .context("building the TLS configuration")
}
