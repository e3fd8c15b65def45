//! Test harness: starts the real scantag server on a random port against the WeChat mock, with
//! a database of its own.
//!
//! By default every test runs on a fresh SQLite file with the in-process cache. With
//! `SCANTAG_TEST_BACKEND=mysql` the same tests run on MySQL/MariaDB (a fresh database per test,
//! created on `SCANTAG_TEST_MYSQL_URL`) and Redis (`SCANTAG_TEST_REDIS_URL`, with a key prefix
//! per test); a backend that cannot be reached then fails the test rather than skipping it.

#![allow(clippy::unwrap_used, clippy::expect_used)]

pub mod proxy;

use std::time::Duration;

use miniprogram_mock::{MockConfig, MockServer, MockState};
use reqwest::{Method, StatusCode};
use scantag_api::settings::Settings;
use scantag_api::{Application, admin};
use sea_orm::{ConnectionTrait, Database, DatabaseConnection};
use secrecy::{ExposeSecret, SecretString};
use serde_json::{Value, json};

/// The JWT signing key every test server uses, so tests can forge tokens with and without it.
pub const TEST_JWT_SECRET: &str = "test-signing-secret-that-is-long-enough-0123456789";
pub const TEST_JWT_KID: &str = "test-k1";

#[derive(Debug, Clone)]
pub enum Backend {
    Sqlite,
    MySql {
        server_url: String,
        redis_url: String,
    },
}

impl Backend {
    /// The backend selected by the environment.
    pub fn from_env() -> Backend {
        match std::env::var("SCANTAG_TEST_BACKEND").as_deref() {
            Ok("mysql") => Backend::MySql {
                server_url: std::env::var("SCANTAG_TEST_MYSQL_URL")
                    .expect("SCANTAG_TEST_MYSQL_URL must be set with SCANTAG_TEST_BACKEND=mysql"),
                redis_url: std::env::var("SCANTAG_TEST_REDIS_URL")
                    .expect("SCANTAG_TEST_REDIS_URL must be set with SCANTAG_TEST_BACKEND=mysql"),
            },
            Ok("sqlite") | Err(_) => Backend::Sqlite,
            Ok(other) => panic!("unknown SCANTAG_TEST_BACKEND {other}"),
        }
    }

    pub fn name(&self) -> &'static str {
        match self {
            Backend::Sqlite => "sqlite",
            Backend::MySql { .. } => "mysql",
        }
    }
}

/// A running server, its mock, and a client.
///
/// The server, its WeChat mock and its database live on a thread with a runtime of their own,
/// so that dropping the `TestApp` can stop them gracefully (closing every database connection
/// and dropping a MySQL test database) even from inside the test's runtime.
pub struct TestApp {
    pub base_url: String,
    pub client: reqwest::Client,
    pub mock: MockState,
    /// The test's own connection to the server's database (never the server's pool).
    pub db: DatabaseConnection,
    pub backend: Backend,
    pub settings: Settings,
    handle: actix_web::dev::ServerHandle,
    thread: Option<std::thread::JoinHandle<()>>,
    _dir: tempfile::TempDir,
}

/// Settings for a test server, before the backend is filled in.
pub fn base_settings(dir: &std::path::Path, mock_base_url: &str) -> Settings {
    let mut settings = Settings::defaults().unwrap();
    settings.listen = "127.0.0.1:0".parse().unwrap();
    settings.workers = 2;
    settings.data_dir = dir.to_path_buf();
    settings.jwt.secret = Some(SecretString::from(TEST_JWT_SECRET.to_owned()));
    settings.jwt.active_kid = Some(TEST_JWT_KID.to_owned());
    let config = MockConfig::default();
    settings.wechat.appid = Some(config.appid);
    settings.wechat.secret = Some(SecretString::from(config.secret));
    settings.wechat.base_url = mock_base_url.to_owned();
    settings.wechat.timeout_ms = 2_000;
    settings.wechat.task_template_id = Some(TASK_TEMPLATE.to_owned());
    settings.wechat.customer_template_id = Some(CUSTOMER_TEMPLATE.to_owned());
    settings
}

/// The subscribe-message template the test servers notify task owners with.
pub const TASK_TEMPLATE: &str = "scantag-task-notice";

/// Starts a server with the default test settings.
pub async fn spawn_app() -> TestApp {
    spawn_app_with(|_| {}).await
}

/// A second server process beside `first`: the same database, Redis and WeChat mock, its
/// own pool, caches, scheduler and search index; `adjust` changes its other settings.
pub async fn spawn_beside(
    first: &TestApp,
    adjust: impl FnOnce(&mut Settings) + Send + 'static,
) -> TestApp {
    let (database, redis, wechat) = (
        first.settings.database_url.clone(),
        first.settings.redis_url.clone(),
        first.settings.wechat.base_url.clone(),
    );
    spawn_app_with(move |s| {
        s.database_url = database;
        s.redis_url = redis;
        s.wechat.base_url = wechat;
        adjust(s);
    })
    .await
}

struct Started {
    base_url: String,
    mock: MockState,
    settings: Settings,
    handle: actix_web::dev::ServerHandle,
}

/// Starts a server after `adjust` has changed its settings.
pub async fn spawn_app_with(adjust: impl FnOnce(&mut Settings) + Send + 'static) -> TestApp {
    init_logging();
    let backend = Backend::from_env();
    let dir = tempfile::tempdir().unwrap();
    let dir_path = dir.path().to_path_buf();
    let thread_backend = backend.clone();
    let (tx, rx) = tokio::sync::oneshot::channel::<Started>();
    let thread = std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(serve(thread_backend, dir_path, adjust, tx));
    });
    let started = rx
        .await
        .expect("the test server must start (see its panic above)");
    // The test's own pool, opened on the test's runtime: a connection the server's pool
    // opened for the test would be driven by the test's runtime, and the server, closing it
    // while the test waits for the server to stop, would wait forever.
    let url = started
        .settings
        .database_url
        .as_ref()
        .map(|u| u.expose_secret().to_owned())
        .expect("the test server has a database URL");
    let db = scantag_domain::store::db::connect(
        &url,
        2,
        Duration::from_secs(10),
        scantag_domain::store::db::STATEMENT_CACHE_DEFAULT,
    )
    .await
    .expect("the test's connection to the server's database");
    TestApp {
        base_url: started.base_url,
        client: reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .unwrap(),
        mock: started.mock,
        db,
        backend,
        settings: started.settings,
        handle: started.handle,
        thread: Some(thread),
        _dir: dir,
    }
}

/// Runs on the server thread: prepares the backend, serves until stopped, cleans up.
async fn serve(
    backend: Backend,
    dir: std::path::PathBuf,
    adjust: impl FnOnce(&mut Settings),
    started: tokio::sync::oneshot::Sender<Started>,
) {
    let mock = MockServer::start("127.0.0.1:0", MockConfig::default())
        .await
        .unwrap();
    let mut settings = base_settings(&dir, &mock.base_url());
    let mut mysql_database = None;
    match &backend {
        Backend::Sqlite => {
            settings.database_url = Some(SecretString::from(format!(
                "sqlite://{}?mode=rwc",
                dir.join("test.db").display()
            )));
        }
        Backend::MySql {
            server_url,
            redis_url,
        } => {
            let name = format!("scantag_t_{}", uuid::Uuid::new_v4().simple());
            let server = Database::connect(server_url.as_str())
                .await
                .expect("MySQL must be reachable at SCANTAG_TEST_MYSQL_URL");
            server
                .execute_unprepared(&format!(
                    "CREATE DATABASE `{name}` CHARACTER SET utf8mb4 COLLATE utf8mb4_bin"
                ))
                .await
                .unwrap();
            server.close().await.ok();
            settings.database_url = Some(SecretString::from(format!(
                "{}/{name}",
                server_url.trim_end_matches('/')
            )));
            settings.database_max_connections = 10;
            settings.redis_url = Some(SecretString::from(redis_url.clone()));
            settings.cache_prefix = format!("scantag-test-{}", uuid::Uuid::new_v4().simple());
            mysql_database = Some((server_url.clone(), name));
        }
    }
    adjust(&mut settings);
    let app = Application::build(settings.clone())
        .await
        .expect("the server must start");
    let scheme = if settings.tls.is_some() {
        "https"
    } else {
        "http"
    };
    let info = Started {
        base_url: format!("{scheme}://127.0.0.1:{}", app.port()),
        mock: mock.state().clone(),
        settings,
        handle: app.handle(),
    };
    if started.send(info).is_err() {
        return;
    }
    app.run().await.ok();
    mock.stop().await;
    if let Some((server_url, name)) = mysql_database
        && let Ok(server) = Database::connect(server_url.as_str()).await
    {
        let _ = server
            .execute_unprepared(&format!("DROP DATABASE IF EXISTS `{name}`"))
            .await;
        server.close().await.ok();
    }
}

fn init_logging() {
    if std::env::var_os("TEST_LOG").is_some() {
        scantag_api::telemetry::init(&scantag_api::settings::LogSettings {
            format: scantag_api::settings::LogFormat::Pretty,
            level: "debug".into(),
        });
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        // The stop command is sent at once; the server thread then shuts the server down,
        // closes the pool and drops the test database while this thread waits.
        drop(self.handle.stop(true));
        if let Some(thread) = self.thread.take() {
            thread.join().ok();
        }
    }
}

/// Fails with every entry of `mismatches` (one line per failed case of a table-driven test).
#[track_caller]
pub fn assert_no_mismatches(mismatches: &[String]) {
    assert!(
        mismatches.is_empty(),
        "{} case(s) failed:\n{}",
        mismatches.len(),
        mismatches.join("\n")
    );
}

/// `value` without its timestamps (`*_at` keys, at any depth), for comparing an answer written
/// from memory with one read back, which may render times with a different precision.
pub fn without_times(value: &Value) -> Value {
    match value {
        Value::Object(map) => Value::Object(
            map.iter()
                .filter(|(k, _)| !k.ends_with("_at"))
                .map(|(k, v)| (k.clone(), without_times(v)))
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(without_times).collect()),
        other => other.clone(),
    }
}

/// A logged-in principal's tokens.
#[derive(Debug, Clone)]
pub struct Session {
    pub access: String,
    pub refresh: String,
    pub id: i64,
    pub tenant_id: Option<i64>,
    pub body: Value,
}

impl Session {
    fn from_body(body: Value) -> Session {
        Session {
            access: body["access_token"].as_str().unwrap().to_owned(),
            refresh: body["refresh_token"].as_str().unwrap().to_owned(),
            id: body["principal"]["id"].as_i64().unwrap(),
            tenant_id: body["principal"]["tenant_id"].as_i64(),
            body,
        }
    }
}

/// An HTTP answer, read whole.
#[derive(Debug)]
pub struct Answer {
    pub status: StatusCode,
    pub headers: reqwest::header::HeaderMap,
    pub body: Value,
    pub text: String,
}

impl Answer {
    /// The problem `code` of an error answer.
    pub fn code(&self) -> &str {
        self.body["code"].as_str().unwrap_or("")
    }

    /// The fields named in a 422 answer.
    pub fn error_fields(&self) -> Vec<String> {
        self.body["errors"]
            .as_array()
            .map(|a| {
                a.iter()
                    .map(|e| e["field"].as_str().unwrap_or("").to_owned())
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The `code` of the first field error naming `field`, if any.
    pub fn field_error_code(&self, field: &str) -> Option<&str> {
        self.body["errors"]
            .as_array()?
            .iter()
            .find(|e| e["field"] == field)
            .map(|e| e["code"].as_str().unwrap_or(""))
    }

    /// `None` when this is a 422 `validation_failed` naming `field` (with `code`, when given)
    /// among its field errors, and with `only`, naming no other field; else what differs.
    pub fn field_error_mismatch(
        &self,
        field: &str,
        code: Option<&str>,
        only: bool,
    ) -> Option<String> {
        let problem = if self.status.as_u16() != 422 || self.code() != "validation_failed" {
            Some("not a 422 validation_failed")
        } else {
            match (self.field_error_code(field), code) {
                (None, _) => Some("no error on the field"),
                (Some(found), Some(code)) if found != code => Some("another error code"),
                _ if only && self.error_fields().iter().any(|f| f != field) => {
                    Some("other fields named too")
                }
                _ => None,
            }
        };
        problem.map(|p| {
            format!(
                "expected an error on `{field}`{}: {p}; got {} {}",
                code.map(|c| format!(" with code `{c}`"))
                    .unwrap_or_default(),
                self.status.as_u16(),
                self.text
            )
        })
    }

    /// Asserts a 422 `validation_failed` naming `field` (with `code`, when given) among its
    /// field errors, and returns self.
    #[track_caller]
    pub fn expect_field_error(self, field: &str, code: Option<&str>) -> Self {
        if let Some(mismatch) = self.field_error_mismatch(field, code, false) {
            panic!("{mismatch}");
        }
        self
    }

    /// Asserts a 422 problem whose `code`, either the problem's own or that of the error on
    /// `field`, is `code` (for errors a contract names by a code without saying which of the
    /// two carries it), and returns self.
    #[track_caller]
    pub fn expect_coded_field_error(self, field: &str, code: &str) -> Self {
        let answer = self.expect(422);
        let on_field = answer.field_error_code(field);
        assert!(
            on_field.is_some(),
            "expected an error on `{field}`; body: {}",
            answer.text
        );
        assert!(
            answer.code() == code || on_field == Some(code),
            "expected the code `{code}` on the problem or on `{field}`; body: {}",
            answer.text
        );
        answer
    }

    /// The `id` of every entry of the answer's `items` array, in order.
    pub fn item_ids(&self) -> Vec<i64> {
        self.body["items"]
            .as_array()
            .map(|a| a.iter().map(|i| i["id"].as_i64().unwrap()).collect())
            .unwrap_or_default()
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// Asserts the status and returns self, printing the body when it differs.
    #[track_caller]
    pub fn expect(self, status: u16) -> Self {
        assert_eq!(
            self.status.as_u16(),
            status,
            "unexpected status; body: {}",
            self.text
        );
        if !self.status.is_success() {
            assert_eq!(
                self.header("content-type"),
                Some("application/problem+json"),
                "errors are problem documents"
            );
        }
        self
    }
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base_url, path)
    }

    /// Sends a request and reads the answer. Any 5xx other than 503 fails the test: no request
    /// of the suite may produce one.
    pub async fn request(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<&Value>,
    ) -> Answer {
        let mut req = self.client.request(method, self.url(path));
        if let Some(token) = token {
            req = req.bearer_auth(token);
        }
        if let Some(body) = body {
            req = req.json(body);
        }
        self.send(req).await
    }

    pub async fn send(&self, req: reqwest::RequestBuilder) -> Answer {
        let res = req.send().await.expect("the server must answer");
        let status = res.status();
        let headers = res.headers().clone();
        let text = res.text().await.unwrap();
        let body = serde_json::from_str(&text).unwrap_or(Value::Null);
        assert!(
            !status.is_server_error() || status == StatusCode::SERVICE_UNAVAILABLE,
            "server error {status}: {text}"
        );
        Answer {
            status,
            headers,
            body,
            text,
        }
    }

    pub async fn get(&self, path: &str, token: Option<&str>) -> Answer {
        self.request(Method::GET, path, token, None).await
    }

    pub async fn post(&self, path: &str, token: Option<&str>, body: &Value) -> Answer {
        self.request(Method::POST, path, token, Some(body)).await
    }

    pub async fn patch(&self, path: &str, token: Option<&str>, body: &Value) -> Answer {
        self.request(Method::PATCH, path, token, Some(body)).await
    }

    pub async fn put(&self, path: &str, token: Option<&str>, body: &Value) -> Answer {
        self.request(Method::PUT, path, token, Some(body)).await
    }

    pub async fn delete(&self, path: &str, token: Option<&str>) -> Answer {
        self.request(Method::DELETE, path, token, None).await
    }

    /// Creates a tag group (主标签) as `session`; expects 201 and returns its id.
    pub async fn create_group(&self, session: &Session, name: &str, exclusive: bool) -> i64 {
        let answer = self
            .post(
                "/api/v1/tag-groups",
                Some(&session.access),
                &json!({"name": name, "dimension": "custom", "exclusive": exclusive}),
            )
            .await
            .expect(201);
        answer.body["id"].as_i64().unwrap()
    }

    /// Creates a tag (子标签) in `group_id` as `session`; expects 201 and returns its id.
    pub async fn create_tag(&self, session: &Session, group_id: i64, name: &str) -> i64 {
        let answer = self
            .post(
                "/api/v1/tags",
                Some(&session.access),
                &json!({"group_id": group_id, "name": name}),
            )
            .await
            .expect(201);
        answer.body["id"].as_i64().unwrap()
    }

    /// Creates a customer from a full request body as `session`; expects 201 and returns the
    /// customer.
    pub async fn create_customer(&self, session: &Session, body: &Value) -> Value {
        self.post("/api/v1/customers", Some(&session.access), body)
            .await
            .expect(201)
            .body
    }

    /// Creates a customer named `name` carrying `tag_ids`; expects 201 and returns its id.
    pub async fn create_tagged_customer(
        &self,
        session: &Session,
        name: &str,
        tag_ids: &[i64],
    ) -> i64 {
        self.create_customer(session, &json!({"name": name, "tag_ids": tag_ids}))
            .await["id"]
            .as_i64()
            .unwrap()
    }

    /// One page of `POST /api/v1/customers/search`: `filter` is the request body (a filter
    /// object, with `limit` and `cursor` when wanted). The answer is not checked.
    pub async fn search(&self, session: &Session, filter: &Value) -> Answer {
        self.post("/api/v1/customers/search", Some(&session.access), filter)
            .await
    }

    /// Walks every page of a search with page size `limit` and returns the ids in the order
    /// received and the `total` of the first page. Checks on the way that each page succeeds,
    /// holds at most `limit` items, reports the same `total`, and that the walk ends with a
    /// null `next_cursor` within a bounded number of pages.
    pub async fn search_all(
        &self,
        session: &Session,
        filter: &Value,
        limit: u32,
    ) -> (Vec<i64>, i64) {
        let mut ids = Vec::new();
        let mut total = None;
        let mut cursor: Option<String> = None;
        for _ in 0..1_000 {
            let mut body = filter.clone();
            body["limit"] = json!(limit);
            if let Some(cursor) = &cursor {
                body["cursor"] = json!(cursor);
            }
            let page = self.search(session, &body).await.expect(200);
            let page_total = page.body["total"].as_i64().unwrap();
            assert_eq!(
                *total.get_or_insert(page_total),
                page_total,
                "total changed between pages"
            );
            let page_ids = page.item_ids();
            assert!(
                page_ids.len() <= limit as usize,
                "a page holds at most `limit` items"
            );
            ids.extend(page_ids);
            match page.body["next_cursor"].as_str() {
                Some(next) => cursor = Some(next.to_owned()),
                None => {
                    assert!(
                        page.body["next_cursor"].is_null(),
                        "next_cursor is a string or null"
                    );
                    return (ids, total.unwrap_or(0));
                }
            }
        }
        panic!("the search did not end within 1000 pages");
    }

    /// The current state of a customer (expects 200).
    pub async fn customer(&self, session: &Session, id: i64) -> Value {
        self.get(&format!("/api/v1/customers/{id}"), Some(&session.access))
            .await
            .expect(200)
            .body
    }

    /// The ids of the tags a customer carries now, sorted.
    pub async fn customer_tag_ids(&self, session: &Session, id: i64) -> Vec<i64> {
        let customer = self.customer(session, id).await;
        let mut ids: Vec<i64> = customer["tags"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["tag_id"].as_i64().unwrap())
            .collect();
        ids.sort_unstable();
        ids
    }

    /// A fresh `wx.login()` code for `openid` (a new WeChat user when `None`).
    pub fn login_code(&self, openid: Option<&str>) -> String {
        self.mock
            .mint_login_code(openid.map(str::to_owned), None)
            .code
    }

    /// Logs in with a new code for `openid`, optionally with an invite; expects success.
    pub async fn login(&self, openid: &str, invite: Option<&str>) -> Session {
        let code = self.login_code(Some(openid));
        let mut body = json!({ "code": code });
        if let Some(invite) = invite {
            body["invite"] = json!(invite);
        }
        let answer = self
            .post("/api/v1/auth/wechat/login", None, &body)
            .await
            .expect(200);
        Session::from_body(answer.body)
    }

    /// Creates a tenant the way the operator CLI does and returns it with its admin invite.
    pub async fn create_tenant(&self, name: &str) -> (i64, String) {
        let (tenant, invite) =
            admin::create_tenant(&self.db, name, None, chrono::Duration::hours(1))
                .await
                .unwrap();
        (tenant.id.0, invite.code)
    }

    /// A tenant with a logged-in first admin.
    pub async fn tenant_admin(&self, name: &str) -> Session {
        let (_, invite) = self.create_tenant(name).await;
        self.login(&format!("admin-of-{name}"), Some(&invite)).await
    }

    /// Invites a staff member with `role` through the API and logs them in.
    pub async fn invite_staff(&self, admin: &Session, openid: &str, role: &str) -> Session {
        let invite = self
            .post(
                "/api/v1/invites",
                Some(&admin.access),
                &json!({ "role": role }),
            )
            .await
            .expect(201);
        self.login(openid, invite.body["code"].as_str()).await
    }

    /// A visitor session: a WeChat user who logs in without an invite.
    pub async fn visitor(&self, openid: &str, unionid: Option<&str>) -> Session {
        let code = self
            .mock
            .mint_login_code(Some(openid.to_owned()), unionid.map(str::to_owned))
            .code;
        let answer = self
            .post("/api/v1/auth/wechat/login", None, &json!({ "code": code }))
            .await
            .expect(200);
        assert_eq!(answer.body["principal"]["kind"], "visitor");
        Session::from_body(answer.body)
    }

    /// The WeChat messages the mock received for `openid`, once there are at least `n`
    /// (messages go out after the change commits).
    pub async fn messages_to(&self, openid: &str, n: usize) -> Vec<Value> {
        for _ in 0..400 {
            let got: Vec<Value> = self
                .mock
                .sent_messages()
                .into_iter()
                .filter(|m| m["touser"] == openid)
                .collect();
            if got.len() >= n {
                return got;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!("fewer than {n} messages reached {openid}");
    }

    /// The messages the mock received for `openid` so far.
    pub fn messages_so_far(&self, openid: &str) -> Vec<Value> {
        self.mock
            .sent_messages()
            .into_iter()
            .filter(|m| m["touser"] == openid)
            .collect()
    }
}

/// The subscribe-message template of rules' messages to customers, as the server uses it
/// with the bundled mock.
pub const CUSTOMER_TEMPLATE: &str = "scantag-customer-notice";
