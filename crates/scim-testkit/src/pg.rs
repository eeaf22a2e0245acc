//! The local PostgreSQL for tests: is it there, and a fresh database per test.
//!
//! Plain `cargo test` on a machine without PostgreSQL passes: PostgreSQL tests are skipped,
//! each saying so on stderr. The README's test command (`scripts/test.sh`) and CI set
//! `SCIMD_REQUIRE_POSTGRES=1`, which turns a missing server into a failure.

use sqlx::{Connection, Executor};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, Ordering};

pub const ADMIN_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";

/// Whether PostgreSQL tests run here. Panics when they must (`SCIMD_REQUIRE_POSTGRES=1`) and
/// the server does not answer.
pub fn available() -> bool {
    static UP: OnceLock<bool> = OnceLock::new();
    let up = *UP.get_or_init(|| {
        std::net::TcpStream::connect_timeout(
            &std::net::SocketAddr::from(([127, 0, 0, 1], 5432)),
            std::time::Duration::from_secs(2),
        )
        .is_ok()
    });
    if !up && std::env::var_os("SCIMD_REQUIRE_POSTGRES").is_some_and(|v| v != "0") {
        panic!(
            "PostgreSQL is required (SCIMD_REQUIRE_POSTGRES=1) but nothing answers on 127.0.0.1:5432"
        );
    }
    if !up {
        eprintln!("skipped: PostgreSQL is not reachable on 127.0.0.1:5432");
    }
    up
}

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// A new, empty database; returns its name and URL.
pub async fn fresh_database() -> (String, String) {
    let name = format!(
        "scimd_it_{}_{}_{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::SeqCst),
        scim_core::Timestamp::now().as_micros() % 1_000_000
    );
    let mut admin = sqlx::PgConnection::connect(ADMIN_URL)
        .await
        .expect("PostgreSQL must be running on 127.0.0.1:5432 (scripts/test.sh starts it)");
    admin
        .execute(format!("CREATE DATABASE {name}").as_str())
        .await
        .unwrap();
    let url = format!("postgres://postgres@127.0.0.1:5432/{name}");
    (name, url)
}

/// Drops a database made by [`fresh_database`].
pub async fn drop_database(name: &str) {
    if let Ok(mut admin) = sqlx::PgConnection::connect(ADMIN_URL).await {
        let _ = admin
            .execute(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)").as_str())
            .await;
    }
}
