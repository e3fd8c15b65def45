//! An in-memory stand-in for the WeChat mini-program server APIs that scantag
//! calls: login code exchange, access tokens, unlimited mini-program codes,
//! phone numbers and subscribe messages.
//!
//! Like the real servers, business failures are HTTP 200 responses carrying
//! `{"errcode", "errmsg"}`. A control API under `/__mock/` (and the matching
//! [`MockState`] methods) mints codes, injects faults, expires tokens and
//! exposes recorded messages and call counters.
//!
//! The mock can run as the `wechat-mock` binary, inside a test through
//! [`MockServer::start`], or mounted into another actix `App` with
//! [`configure`].

mod qrcode;
mod routes;
mod state;

use std::net::SocketAddr;

use actix_web::dev::ServerHandle;
use actix_web::{App, HttpServer};

pub use routes::configure;
pub use state::{MintedCode, MockConfig, MockState, UnknownEndpoint};

/// A mock listening on its own socket, served by the current tokio runtime.
#[derive(Debug)]
pub struct MockServer {
    addr: SocketAddr,
    state: MockState,
    handle: ServerHandle,
    task: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
}

impl MockServer {
    /// Binds `listen` (e.g. `"127.0.0.1:0"` for a free port), spawns the
    /// server on the current tokio runtime and returns once it is bound.
    pub async fn start(listen: &str, config: MockConfig) -> std::io::Result<MockServer> {
        let state = MockState::new(config);
        let app_state = state.clone();
        let server = HttpServer::new(move || App::new().configure(configure(app_state.clone())))
            .workers(1)
            // The host process owns signal handling; a test runner must not
            // have its Ctrl-C swallowed by an embedded mock.
            .disable_signals()
            .shutdown_timeout(1)
            .bind(listen)?;
        let addr = server.addrs().first().copied().ok_or_else(|| {
            std::io::Error::new(
                std::io::ErrorKind::AddrNotAvailable,
                format!("{listen} resolved to no address"),
            )
        })?;
        let server = server.run();
        let handle = server.handle();
        let task = tokio::spawn(server);
        tracing::info!(%addr, "WeChat mock listening");
        Ok(MockServer {
            addr,
            state,
            handle,
            task: Some(task),
        })
    }

    /// Base URL to configure as the WeChat API host, e.g.
    /// `http://127.0.0.1:8090`.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn state(&self) -> &MockState {
        &self.state
    }

    /// Stops accepting connections, lets in-flight requests finish and waits
    /// for the server to shut down.
    pub async fn stop(mut self) {
        self.handle.stop(true).await;
        if let Some(task) = self.task.take()
            && let Err(err) = task.await
        {
            tracing::warn!(%err, "WeChat mock task ended abnormally");
        }
    }
}

impl Drop for MockServer {
    fn drop(&mut self) {
        // Without an explicit stop the worker thread would outlive the
        // handle; the stop command is sent as soon as this future is created.
        if self.task.is_some() {
            drop(self.handle.stop(false));
        }
    }
}
