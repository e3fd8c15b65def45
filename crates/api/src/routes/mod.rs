//! Every route of the API, registered in one place so the OpenAPI document collects them all.

use utoipa_actix_web::scope;
use utoipa_actix_web::service_config::ServiceConfig;

pub mod auth;
pub mod capture;
pub mod channels;
pub mod custom_fields;
pub mod customers;
pub mod dev;
pub mod facts;
pub mod health;
pub mod rules;
pub mod staff;
pub mod tags;
pub mod tasks;

/// Mounts the API on an app or a test harness.
pub fn configure(cfg: &mut ServiceConfig) {
    cfg.service(health::healthz)
        .service(health::readyz)
        .service(dev::get_clock)
        .service(dev::move_clock)
        .service(
            scope("/api/v1")
                .service(auth::login)
                .service(auth::refresh)
                .service(auth::logout)
                .service(auth::me)
                .service(staff::create_invite)
                .service(staff::list_staff)
                .service(staff::update_staff)
                .service(tags::create_group)
                .service(tags::list_groups)
                .service(tags::get_group)
                .service(tags::update_group)
                .service(tags::create_tag)
                .service(tags::list_tags)
                .service(tags::get_tag)
                .service(tags::update_tag)
                .service(custom_fields::create_field)
                .service(custom_fields::list_fields)
                .service(customers::search_customers)
                .service(customers::batch_tags)
                .service(customers::create_customer)
                .service(customers::get_customer)
                .service(customers::update_customer)
                .service(customers::delete_customer)
                .service(customers::add_tag)
                .service(customers::remove_tag)
                .service(customers::tag_history)
                .service(capture::customer_captures)
                .service(channels::create_channel)
                .service(channels::list_channels)
                .service(channels::get_channel)
                .service(channels::update_channel)
                .service(channels::channel_qrcode)
                .service(capture::capture_form)
                .service(capture::submit_capture)
                .service(tasks::list_tasks)
                .service(tasks::complete_task)
                .service(rules::create_rule)
                .service(rules::list_rules)
                .service(rules::get_rule)
                .service(rules::update_rule)
                .service(rules::delete_rule)
                .service(rules::evaluate_rule)
                .service(rules::list_templates)
                .service(rules::jobs::recheck)
                .service(rules::preview::preview_rule)
                .service(rules::versions::rule_versions)
                .service(rules::jobs::list_jobs)
                .service(rules::jobs::get_job)
                .service(rules::instantiate_template)
                .service(rules::project_stages)
                .service(rules::set_project_stages)
                .service(facts::create_order)
                .service(facts::bulk_orders)
                .service(facts::refund_order)
                .service(facts::customer_orders)
                .service(facts::create_follow_up)
                .service(facts::bulk_follow_ups)
                .service(facts::customer_follow_ups)
                .service(facts::create_event)
                .service(facts::bulk_events)
                .service(facts::customer_events),
        );
}
