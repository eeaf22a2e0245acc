//! What a run measured: HDR histograms per request kind, and the report they become.

use crate::Workload;
use hdrhistogram::Histogram;
use serde::Serialize;
use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Latency and outcome statistics of one request kind.
#[derive(Debug, Clone, Serialize)]
pub struct KindReport {
    pub kind: String,
    pub requests: u64,
    pub per_second: f64,
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
    /// Non-2xx responses by status ("transport" for connection failures).
    pub errors: BTreeMap<String, u64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub workload: Workload,
    pub target: String,
    pub concurrency: usize,
    pub elapsed_seconds: f64,
    pub requests: u64,
    pub per_second: f64,
    pub kinds: Vec<KindReport>,
}

impl Report {
    /// A human-readable table.
    pub fn to_text(&self) -> String {
        let mut out = format!(
            "workload {:?} against {} with concurrency {}: {} requests in {:.1} s = {:.0} req/s\n",
            self.workload,
            self.target,
            self.concurrency,
            self.requests,
            self.elapsed_seconds,
            self.per_second
        );
        out += &format!(
            "{:<16} {:>9} {:>9} {:>8} {:>8} {:>8} {:>8}  errors\n",
            "kind", "requests", "req/s", "p50 ms", "p90 ms", "p99 ms", "max ms"
        );
        for k in &self.kinds {
            let errors = if k.errors.is_empty() {
                "-".to_string()
            } else {
                k.errors
                    .iter()
                    .map(|(s, n)| format!("{s}×{n}"))
                    .collect::<Vec<_>>()
                    .join(" ")
            };
            out += &format!(
                "{:<16} {:>9} {:>9.0} {:>8.2} {:>8.2} {:>8.2} {:>8.2}  {errors}\n",
                k.kind, k.requests, k.per_second, k.p50_ms, k.p90_ms, k.p99_ms, k.max_ms
            );
        }
        out
    }
}

pub(crate) struct KindRec {
    pub(crate) hist: Histogram<u64>,
    pub(crate) errors: BTreeMap<String, u64>,
}

#[derive(Default)]
pub(crate) struct Recorder {
    pub(crate) kinds: Mutex<BTreeMap<&'static str, KindRec>>,
    pub(crate) total: AtomicU64,
}

impl Recorder {
    pub(crate) fn record(&self, kind: &'static str, status: Option<u16>, elapsed: Duration) {
        self.total.fetch_add(1, Ordering::Relaxed);
        let Ok(mut kinds) = self.kinds.lock() else {
            return;
        };
        let rec = match kinds.entry(kind) {
            std::collections::btree_map::Entry::Occupied(e) => e.into_mut(),
            std::collections::btree_map::Entry::Vacant(v) => {
                // 1 µs to 60 s at 3 significant digits: constant, valid bounds.
                let Ok(hist) = Histogram::new_with_bounds(1, 60_000_000, 3) else {
                    return;
                };
                v.insert(KindRec {
                    hist,
                    errors: BTreeMap::new(),
                })
            }
        };
        let micros = u64::try_from(elapsed.as_micros())
            .unwrap_or(u64::MAX)
            .clamp(1, 60_000_000);
        let _ = rec.hist.record(micros);
        match status {
            Some(s) if (200..300).contains(&s) => {}
            Some(s) => *rec.errors.entry(s.to_string()).or_default() += 1,
            None => *rec.errors.entry("transport".into()).or_default() += 1,
        }
    }
}
