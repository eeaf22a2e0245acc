//! Black-box HTTP tests: a real scimd app on a loopback port, over real SQLite files and a
//! real PostgreSQL database (one fresh database per test), driven with reqwest. The server
//! and the backends come from `scim-testkit`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

mod console_app_journeys;
mod console_apps_browser;
mod console_apps_http;
mod console_audit;
mod console_browser;
mod console_directory_browser;
mod console_http;
mod console_roles;
mod console_second_factor;
mod console_setup_browser;
mod console_setup_links;
mod console_source_step;
mod console_webhooks;
mod console_webhooks_browser;
mod console_wizard_sources;
mod events_api;
mod golden;
mod hardening;
mod hostile;
mod provisioning_log;
mod scim_auth;
mod scim_bulk;
mod scim_errors;
mod scim_groups;
mod scim_lists;
mod scim_users;
mod security;
mod security_signin;
mod storage_failure;
mod tenant_isolation;
