//! Black-box HTTP tests: a real scimd app on a loopback port, over real SQLite files and a
//! real PostgreSQL database (one fresh database per test), driven with reqwest.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

mod console_browser;
mod console_http;
mod golden;
mod harness;
mod hostile;
mod provisioning_log;
mod scim_auth;
mod scim_bulk;
mod scim_errors;
mod scim_groups;
mod scim_lists;
mod scim_users;
mod tenant_isolation;

/// Runs an async test body once on SQLite and once on PostgreSQL.
#[macro_export]
macro_rules! both_backends {
    ($($name:ident => $body:path;)*) => {
        $(
            mod $name {
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn sqlite() {
                    $body($crate::harness::Backend::Sqlite).await
                }
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn postgres() {
                    $body($crate::harness::Backend::Postgres).await
                }
            }
        )*
    };
}
