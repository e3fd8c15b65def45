//! Every route of the API, registered in one place so the OpenAPI document collects them all.

use utoipa_actix_web::scope;
use utoipa_actix_web::service_config::ServiceConfig;

pub mod auth;
pub mod health;
pub mod staff;

/// Mounts the API on an app or a test harness.
pub fn configure(cfg: &mut ServiceConfig) {
    cfg.service(health::healthz)
        .service(health::readyz)
        .service(
            scope("/api/v1")
                .service(auth::login)
                .service(auth::refresh)
                .service(auth::logout)
                .service(auth::me)
                .service(staff::create_invite)
                .service(staff::list_staff)
                .service(staff::update_staff),
        );
}
