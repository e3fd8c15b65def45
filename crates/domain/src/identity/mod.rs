//! Who people are: tenants (created by the operator), staff bound by invites, visitors (WeChat
//! users of the one mini-program, platform-wide) and login sessions with their refresh tokens.
//!
//! Owns the tables `tenants`, `invites`, `staff`, `visitors`, `auth_sessions` and
//! `refresh_tokens`; nothing else writes them.

pub mod sessions;
pub mod staff;
pub mod tenants;
pub mod visitors;
