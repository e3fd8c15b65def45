//! End-to-end tests: the real server on a random port, spoken to over HTTP, against the WeChat
//! mock. Run on SQLite by default and on MariaDB + Redis with `SCANTAG_TEST_BACKEND=mysql`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod access;
mod auth;
mod batch;
mod cache;
mod channels;
mod concurrency;
mod conventions;
mod custom_fields;
mod customers;
mod hardening;
mod jwt_attacks;
mod openapi;
mod rule_actions;
mod rules;
mod scan_to_record;
mod search;
mod search_index;
mod simulator;
mod staff;
mod tagging;
mod tags;
mod time;
mod tls;
mod wechat_errors;
