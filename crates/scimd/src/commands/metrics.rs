//! Prometheus metrics on a listener of their own (`--metrics-listen`): the request, sign-in,
//! rate-limit and SQLite writer figures the server records, plus gauges sampled every 15 s
//! here (tenants, users, groups, database connections).

use anyhow::{Context, Result};
use metrics_exporter_prometheus::PrometheusBuilder;
use scim_core::{Query, ResourceKind, ResourceStore, TenantStore};
use scim_store::SqlStore;
use std::sync::Arc;

/// Installs the recorder, serves `/metrics` on `addr`, and samples the gauges.
pub async fn start(addr: &str, store: Arc<SqlStore>) -> Result<()> {
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
    tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app).await {
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
