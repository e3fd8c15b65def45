//! End-to-end tests: the real server on a random port, spoken to over HTTP, against the WeChat
//! mock. Run on SQLite by default and on MariaDB + Redis with `SCANTAG_TEST_BACKEND=mysql`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod auth;
mod conventions;
mod jwt_attacks;
mod openapi;
mod staff;
mod tls;
mod wechat_errors;
