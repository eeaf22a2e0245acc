//! Prometheus metrics on a listener of their own (`--metrics-listen`): the request, sign-in,
//! rate-limit and SQLite writer figures the server records, plus gauges sampled every 15 s
//! here (tenants, users, groups, database connections). Served through the main listener's
//! code (header timeout, connection caps), with a cap of its own: it is for a scraper.

use anyhow::{Context, Result};
use metrics_exporter_prometheus::PrometheusBuilder;
use scim_core::{Query, ResourceKind, ResourceStore, TenantStore};
use scim_store::SqlStore;
use std::sync::Arc;

/// Connections the metrics listener accepts at once.
const MAX_CONNECTIONS: usize = 16;

/// Installs the recorder, serves `/metrics` on `addr`, and samples the gauges.
pub async fn start(
    addr: &str,
    store: Arc<SqlStore>,
    listen: &scim_server::listener::ListenOptions,
) -> Result<()> {
    let handle = PrometheusBuilder::new()
        .install_recorder()
        .context("cannot install the metrics recorder")?;
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot listen for metrics on {addr}"))?;
    let render = handle.clone();
    let app = axum::Router::new().route(
        "/metrics",
        axum::routing::get(move || {
            let h = render.clone();
            async move { h.render() }
        }),
    );
    let opts = scim_server::listener::ListenOptions {
        max_connections: MAX_CONNECTIONS,
        max_connections_per_address: MAX_CONNECTIONS / 2,
        tls: None,
        ..listen.clone()
    };
    tokio::spawn(async move {
        let forever = std::future::pending::<()>();
        if let Err(e) = scim_server::listener::serve(listener, app, opts, forever).await {
            tracing::error!(error = %e, "the metrics listener stopped");
        }
    });
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(std::time::Duration::from_secs(15));
        loop {
            tick.tick().await;
            handle.run_upkeep();
            store.record_pool_gauges();
            if let Err(e) = sample(&store).await {
                tracing::warn!(error = %e, "metrics sampling failed");
            }
        }
    });
    println!("Metrics:    http://{addr}/metrics");
    Ok(())
}

async fn sample(store: &SqlStore) -> scim_core::CoreResult<()> {
    let tenants = store.tenants().await?;
    metrics::gauge!("scimd_tenants").set(tenants.len() as f64);
    for kind in [ResourceKind::User, ResourceKind::Group] {
        let mut total = 0u64;
        for t in &tenants {
            total += store.query(t.id, kind, &Query::default()).await?.total;
        }
        metrics::gauge!("scimd_resources", "kind" => kind.as_str()).set(total as f64);
    }
    Ok(())
}
