//! The real scantag server, started in-process (on an actix system and thread of its own, as the
//! binary runs it) on a random port against the bench database and Redis, with the bundled
//! WeChat mock standing in for WeChat; and the JSON client that talks to it as the tenant's
//! admin.

use std::time::Duration;

use anyhow::{Context, bail};
use miniprogram_mock::MockState;
use rand::Rng;
use rand::distr::Alphanumeric;
use reqwest::header::HeaderMap;
use scantag_api::Application;
use scantag_api::settings::Settings;
use secrecy::SecretString;
use serde_json::{Value, json};

/// The WeChat identity of the bench tenant's admin.
const ADMIN_OPENID: &str = "bench-admin";

pub struct BenchServer {
    pub api: Api,
    pub tenant_id: i64,
    /// The bundled WeChat mock, for minting login codes.
    pub mock: MockState,
    handle: actix_web::dev::ServerHandle,
    thread: std::thread::JoinHandle<std::io::Result<()>>,
    // Holds the server's data directory until the server is gone.
    _data_dir: tempfile::TempDir,
}

impl BenchServer {
    /// Builds and starts the server (with `adjust` applied to its settings), creates the bench
    /// tenant and logs its admin in.
    pub async fn start(
        database_url: &SecretString,
        redis_url: &SecretString,
        cache_prefix: &str,
        adjust: impl FnOnce(&mut Settings),
    ) -> anyhow::Result<BenchServer> {
        let data_dir = tempfile::tempdir().context("creating a data directory")?;
        let mut settings = settings(database_url, redis_url, cache_prefix, data_dir.path())?;
        adjust(&mut settings);
        // The server runs as the binary runs it: on an actix system of its own (its scheduler
        // and outbox on that system's thread), not on the bench's runtime beside the load.
        let (ready, started) = tokio::sync::oneshot::channel();
        let thread = std::thread::Builder::new()
            .name("scantag-server".to_owned())
            .spawn(move || {
                actix_web::rt::System::new().block_on(async move {
                    let app = match boot(settings).await {
                        Ok((app, boot)) => {
                            let _ = ready.send(Ok(boot));
                            app
                        }
                        Err(err) => {
                            let _ = ready.send(Err(err));
                            return Ok(());
                        }
                    };
                    app.run().await
                })
            })
            .context("starting the server's thread")?;
        let Booted {
            base_url,
            tenant_id,
            invite_code,
            mock,
            handle,
        } = started
            .await
            .context("the server's thread ended before the server started")??;
        let code = mock
            .mint_login_code(Some(ADMIN_OPENID.to_owned()), None)
            .code;

        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(300))
            .pool_max_idle_per_host(1)
            .build()
            .context("building the HTTP client")?;
        let mut api = Api {
            client,
            base_url,
            token: None,
        };
        let login = api
            .post(
                "/api/v1/auth/wechat/login",
                &json!({ "code": code, "invite": invite_code, "display_name": "bench" }),
            )
            .await
            .context("logging in the bench admin")?;
        api.token = Some(
            login["access_token"]
                .as_str()
                .context("the login answer has no access_token")?
                .to_owned(),
        );
        Ok(BenchServer {
            api,
            tenant_id,
            mock,
            handle,
            thread,
            _data_dir: data_dir,
        })
    }

    /// Creates another tenant (through `db`, as the operator would) and logs its admin in.
    pub async fn another_tenant(
        &self,
        db: &sea_orm::DatabaseConnection,
        name: &str,
    ) -> anyhow::Result<(Api, i64)> {
        let (tenant, invite) =
            scantag_api::admin::create_tenant(db, name, None, chrono::Duration::hours(1))
                .await
                .with_context(|| format!("creating the tenant {name}"))?;
        let code = self
            .mock
            .mint_login_code(Some(format!("{ADMIN_OPENID}-{name}")), None)
            .code;
        let mut api = Api {
            client: self.api.client.clone(),
            base_url: self.api.base_url.clone(),
            token: None,
        };
        let login = api
            .post(
                "/api/v1/auth/wechat/login",
                &json!({ "code": code, "invite": invite.code, "display_name": name }),
            )
            .await
            .with_context(|| format!("logging in the admin of {name}"))?;
        api.token = Some(
            login["access_token"]
                .as_str()
                .context("the login answer has no access_token")?
                .to_owned(),
        );
        Ok((api, tenant.id.0))
    }

    /// Invites `count` sales reps (openids `{prefix}-{i}`) and logs each in; their staff ids.
    pub async fn invite_reps(&self, count: usize, prefix: &str) -> anyhow::Result<Vec<i64>> {
        let mut reps = Vec::with_capacity(count);
        for i in 0..count {
            let invite = self
                .api
                .post("/api/v1/invites", &json!({"role": "sales"}))
                .await?;
            let code = self
                .mock
                .mint_login_code(Some(format!("{prefix}-{i}")), None)
                .code;
            let login = self
                .api
                .post(
                    "/api/v1/auth/wechat/login",
                    &json!({"code": code, "invite": invite["code"], "display_name": format!("销售{i}")}),
                )
                .await?;
            reps.push(login["principal"]["id"].as_i64().context("rep id")?);
        }
        Ok(reps)
    }

    /// Stops the server gracefully and waits until it has closed its database pool.
    pub async fn stop(self) {
        self.handle.stop(true).await;
        let thread = self.thread;
        match tokio::task::spawn_blocking(move || thread.join()).await {
            Ok(Ok(Ok(()))) => {}
            Ok(Ok(Err(err))) => eprintln!("scantag-bench: the server stopped with an error: {err}"),
            Ok(Err(_)) | Err(_) => eprintln!("scantag-bench: the server's thread panicked"),
        }
    }
}

/// What the bench needs of a server started on its own thread.
struct Booted {
    base_url: String,
    tenant_id: i64,
    invite_code: String,
    mock: MockState,
    handle: actix_web::dev::ServerHandle,
}

/// Builds the server and creates the bench tenant, on the server's own system.
async fn boot(settings: Settings) -> anyhow::Result<(Application, Booted)> {
    let app = Application::build(settings)
        .await
        .context("starting the scantag server")?;
    let (tenant, invite) =
        scantag_api::admin::create_tenant(app.db(), "bench", None, chrono::Duration::hours(1))
            .await
            .context("creating the bench tenant")?;
    let booted = Booted {
        base_url: format!("http://{}", app.addr()),
        tenant_id: tenant.id.0,
        invite_code: invite.code,
        mock: app
            .wechat_mock()
            .context("the server did not start its bundled WeChat mock")?
            .state()
            .clone(),
        handle: app.handle(),
    };
    Ok((app, booted))
}

/// The default settings, changed the way the end-to-end test harness changes them.
fn settings(
    database_url: &SecretString,
    redis_url: &SecretString,
    cache_prefix: &str,
    data_dir: &std::path::Path,
) -> anyhow::Result<Settings> {
    let mut settings = Settings::defaults()?;
    settings.listen = "127.0.0.1:0".parse().context("listen address")?;
    settings.database_url = Some(database_url.clone());
    settings.redis_url = Some(redis_url.clone());
    settings.cache_prefix = cache_prefix.to_owned();
    settings.data_dir = data_dir.to_path_buf();
    settings.log.level = "warn".to_owned();
    let secret: String = rand::rng()
        .sample_iter(&Alphanumeric)
        .take(48)
        .map(char::from)
        .collect();
    settings.jwt.secret = Some(SecretString::from(secret));
    // Seeding a million customers can outlast the default 15 minutes; one token serves the
    // whole run.
    settings.jwt.access_ttl_secs = 24 * 3600;
    settings.wechat.appid = None;
    settings.wechat.mock_listen = "127.0.0.1:0".parse().context("mock address")?;
    Ok(settings)
}

/// One keep-alive HTTP client for the server, with the admin's token once logged in.
#[derive(Clone)]
pub struct Api {
    client: reqwest::Client,
    base_url: String,
    token: Option<String>,
}

/// A successful answer: its headers and raw body.
pub struct Answer {
    pub headers: HeaderMap,
    pub body: Vec<u8>,
}

impl Api {
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// GETs `path` and returns the parsed JSON answer; anything but 2xx is an error.
    pub async fn get(&self, path: &str) -> anyhow::Result<Value> {
        let mut request = self.client.get(format!("{}{path}", self.base_url));
        if let Some(token) = &self.token {
            request = request.bearer_auth(token);
        }
        let response = request
            .send()
            .await
            .with_context(|| format!("GET {path}"))?;
        let status = response.status();
        let body = response
            .bytes()
            .await
            .with_context(|| format!("GET {path}"))?;
        if !status.is_success() {
            bail!(
                "GET {path} answered {status}: {}",
                String::from_utf8_lossy(&body)
            );
        }
        serde_json::from_slice(&body).with_context(|| format!("GET {path}: not JSON"))
    }

    /// The access token of the tenant's admin.
    pub fn token(&self) -> &str {
        self.token.as_deref().unwrap_or_default()
    }

    /// POSTs `body` and returns the parsed JSON answer; anything but 2xx is an error.
    pub async fn post(&self, path: &str, body: &Value) -> anyhow::Result<Value> {
        let answer = self.send(path, body, &[]).await?;
        serde_json::from_slice(&answer.body).with_context(|| format!("POST {path}: not JSON"))
    }

    /// POSTs `body` with extra headers and returns the answer unparsed, so that a caller timing
    /// the request does not time JSON parsing.
    pub async fn send(
        &self,
        path: &str,
        body: &Value,
        headers: &[(&str, &str)],
    ) -> anyhow::Result<Answer> {
        let mut request = self
            .client
            .post(format!("{}{path}", self.base_url))
            .json(body);
        if let Some(token) = &self.token {
            request = request.bearer_auth(token);
        }
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let response = request
            .send()
            .await
            .with_context(|| format!("POST {path}"))?;
        let status = response.status();
        let headers = response.headers().clone();
        let answer = response
            .bytes()
            .await
            .with_context(|| format!("POST {path}: reading the answer"))?;
        if !status.is_success() {
            bail!(
                "POST {path} {body} answered {status}: {}",
                String::from_utf8_lossy(&answer)
            );
        }
        Ok(Answer {
            headers,
            body: Vec::from(answer),
        })
    }
}
