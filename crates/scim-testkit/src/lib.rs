//! # scim-testkit: the one test kit
//!
//! - [`server`]: scimd's app on a loopback port over a fresh SQLite file or PostgreSQL
//!   database, with a small SCIM client ([`server::TestServer`]).
//! - [`process`]: the scimd binary as a process (`scimd serve`, CLI runs).
//! - [`pg`]: the local PostgreSQL: whether tests run on it, and fresh databases.
//! - [`faults`]: a SCIM target that forwards to scimd and injects faults (429, 500, slow,
//!   reset, a revoked token).
//! - [`entra`]: a Microsoft Entra ID emulator (token endpoint and Graph delta queries).
//! - [`google`]: a Google Workspace emulator (token endpoint and Directory API reads).
//! - [`loopback`]: a router served on a loopback port while its handle lives.
//! - [`ldap`]: a real OpenLDAP (slapd) on loopback, changed with ldapmodify.
//! - [`mail`]: a real SMTP server (aiosmtpd) on loopback and the messages it received.
//! - [`contract`]: the store contract, run against both backends.
//! - [`both_backends!`]: runs a test body once on SQLite and once on PostgreSQL (skipped,
//!   saying so, when PostgreSQL is absent and not required).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

pub mod contract;
pub mod contract_access;
pub mod contract_sync;
pub mod entra;
pub mod faults;
pub mod google;
pub mod ldap;
pub mod loopback;
pub mod mail;
pub mod pg;
pub mod process;
pub mod server;
pub mod webhook;

pub use server::{Backend, Resp, TestServer};

/// Runs an async test body once on SQLite and once on PostgreSQL.
#[macro_export]
macro_rules! both_backends {
    ($($name:ident => $body:path;)*) => {
        $(
            mod $name {
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn sqlite() {
                    $body($crate::Backend::Sqlite).await
                }
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn postgres() {
                    if $crate::pg::available() {
                        $body($crate::Backend::Postgres).await
                    }
                }
            }
        )*
    };
}
