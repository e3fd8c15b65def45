//! The scantag HTTP API: routes, request/response types, extractors, errors, the OpenAPI
//! document, settings and start-up. The `scantag` binary is a thin shell around this crate.

pub mod admin;
pub mod app;
pub mod error;
pub mod extract;
pub mod fallback;
pub mod keys;
pub mod openapi;
pub mod request_context;
pub mod routes;
pub mod settings;
pub mod startup;
pub mod state;
pub mod telemetry;

pub use settings::Settings;
pub use startup::Application;
