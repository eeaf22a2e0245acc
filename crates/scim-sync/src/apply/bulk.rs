//! User creates in Bulk requests (RFC 7644 §3.7), as many operations per request as the
//! target's `maxOperations` and `maxPayloadSize` allow. Each operation's answer is that
//! object's outcome, as if it had been sent alone. A request whose answer was lost (the
//! connection closed, a timeout, a gateway error) may have been processed, all or part:
//! each of its objects is looked up before anything is sent again, and the operations per
//! request are halved for the rest of the cycle. Only a request the target refused as a
//! whole (it was not processed) makes the cycle send its creates one by one.

use super::record::{Outcome, export_step};
use super::{Applier, Done};
use crate::error::SyncResult;
use crate::model::{ObjectKind, client_kind};
use crate::plan::PlannedAction;
use scim_client::ClientError;
use scim_core::Status;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::time::Instant;

impl Applier {
    /// A Bulk answer was lost: smaller requests for the rest of the cycle.
    fn shrink_bulk(&self, sent: usize) {
        let half = (sent / 2).max(1);
        let before = self.bulk.limit.fetch_min(half, Ordering::Relaxed);
        if half < before {
            tracing::warn!(job = %self.spec().name, operations = half,
                "a Bulk answer was lost: smaller Bulk requests for the rest of this cycle");
        }
    }

    /// User creates in Bulk requests (RFC 7644 §3.7), as many operations per request as
    /// the target's `maxOperations` and `maxPayloadSize` allow. Each operation's answer is
    /// that object's outcome, as if it had been sent alone: a 409 is adopted, a missing or
    /// 5xx answer is looked up before anything is sent again, other errors fail only that
    /// object. A Bulk request the target refuses as a whole (a 403 included: the token may
    /// not use Bulk) was not processed: its creates are sent one by one, and Bulk is not
    /// used again this cycle. A 401 is the credentials, as for any request.
    pub(super) async fn create_in_bulk(&self, batch: Vec<PlannedAction>) -> Vec<SyncResult<Done>> {
        let started = Instant::now();
        let prepared: Vec<Prepared> = batch
            .into_iter()
            .map(|a| {
                let (values, unresolved, body) = self.create_body(&a);
                Prepared {
                    a,
                    values,
                    unresolved,
                    body,
                }
            })
            .collect();
        let limit = self.cfg.profile.bulk_max_payload.saturating_mul(9) / 10;
        let mut outcomes: Vec<(usize, Result<Outcome, ClientError>)> = Vec::new();
        for part in requests(&prepared, limit) {
            outcomes.extend(self.bulk_request(&prepared, part).await);
        }
        let mut results = Vec::with_capacity(outcomes.len());
        for (i, r) in outcomes {
            let a = &prepared[i].a;
            let out = match r {
                Ok(out) => out,
                Err(e) => self.failed(a, &e),
            };
            let out = self.settle(a, out);
            results.push(self.finish(a, out, started).await);
        }
        results
    }

    /// One Bulk request of the operations `part` (indexes into `prepared`), and each
    /// object's outcome. Each object's follow-up (a lookup, an adoption, a create on its
    /// own) is a future; they run together, bounded by the client's in-flight limit, so one
    /// faulty Bulk answer does not serialise a hundred lookups.
    async fn bulk_request(
        &self,
        prepared: &[Prepared],
        part: Vec<usize>,
    ) -> Vec<(usize, Result<Outcome, ClientError>)> {
        let rk = client_kind(ObjectKind::User);
        let ops: Vec<Value> = part
            .iter()
            .map(|i| {
                json!({"method": "POST", "path": format!("/{}", rk.endpoint()),
                       "bulkId": format!("c{i}"), "data": prepared[*i].body})
            })
            .collect();
        let n = ops.len();
        let answer = self.cfg.client.bulk(ops).await;
        let bulk_error = answer.as_ref().err().cloned();
        if bulk_error
            .as_ref()
            .is_some_and(ClientError::may_have_been_processed)
        {
            self.shrink_bulk(n);
        }
        let mut answers = match answer {
            Ok(results) => by_bulk_id(results, &part),
            Err(_) => HashMap::new(),
        };
        if let Some(e) = &bulk_error
            && !e.may_have_been_processed()
            && !matches!(e.status(), Some(401 | 429 | 503))
            && !self.bulk.refused.swap(true, Ordering::Relaxed)
        {
            tracing::warn!(job = %self.spec().name, error = %e,
                "the target refused a Bulk request: creates are sent one by one");
        }
        let follow_ups = part.into_iter().map(|i| {
            let answer = answers.remove(&format!("c{i}"));
            let bulk_error = bulk_error.clone();
            async move { (i, self.follow_up(&prepared[i], n, bulk_error, answer).await) }
        });
        futures_util::future::join_all(follow_ups).await
    }

    /// One operation's outcome from the Bulk request's answer (or its failure).
    async fn follow_up(
        &self,
        p: &Prepared,
        n: usize,
        bulk_error: Option<ClientError>,
        answer: Option<scim_client::BulkResult>,
    ) -> Result<Outcome, ClientError> {
        let a = &p.a;
        match (bulk_error, answer) {
            // Lost answer: some operations may have been applied.
            (Some(e), _) if e.may_have_been_processed() => {
                self.create_after_lost_answer(a, &format!("Bulk: {e}"))
                    .await
            }
            // Not processed, and not Bulk's fault: the credentials, or the target
            // throttling or down (the object fails, retried later).
            (Some(e), _) if matches!(e.status(), Some(401 | 429 | 503)) => Err(e),
            // Refused as a whole (400, 404, 413, 501…), or 403: this token may not use Bulk
            // (scimd's `bulk` scope). Not processed: one by one, where a token that may not
            // write at all is refused again.
            (Some(_), _) => self.create(a).await,
            (None, Some(r)) if r.is_success() => match r.id() {
                Some(id) => {
                    let step = export_step(
                        Status::Success,
                        format!("POST /Bulk ({n} operations) → {id}"),
                    );
                    self.created(a, p.values.clone(), p.unresolved, id, vec![step])
                        .await
                }
                None => {
                    self.create_after_lost_answer(a, "the Bulk answer named no id")
                        .await
                }
            },
            (None, Some(r)) => self.create_refused(a, r.error()).await,
            (None, None) => {
                self.create_after_lost_answer(a, "the Bulk answer had nothing for it")
                    .await
            }
        }
    }
}

/// A create ready to send: the action, the values it sends, whether a reference was left
/// out, its body.
struct Prepared {
    a: PlannedAction,
    values: std::collections::BTreeMap<String, Value>,
    unresolved: bool,
    body: Value,
}

/// The creates as Bulk requests within the payload limit: greedy, in order.
fn requests(prepared: &[Prepared], limit: usize) -> Vec<Vec<usize>> {
    let mut requests: Vec<Vec<usize>> = vec![Vec::new()];
    let mut size = 0;
    for (i, p) in prepared.iter().enumerate() {
        let n = p.body.to_string().len() + 96;
        if let Some(last) = requests.last_mut()
            && !last.is_empty()
            && size + n > limit
        {
            requests.push(Vec::new());
            size = 0;
        }
        size += n;
        if let Some(last) = requests.last_mut() {
            last.push(i);
        }
    }
    requests
}

/// The answers by bulkId; a target that echoes none is read in order, if it answered every
/// operation.
fn by_bulk_id(
    results: Vec<scim_client::BulkResult>,
    part: &[usize],
) -> HashMap<String, scim_client::BulkResult> {
    let in_order = results.len() == part.len() && results.iter().all(|r| r.bulk_id.is_none());
    results
        .into_iter()
        .enumerate()
        .filter_map(|(k, r)| {
            let key = match &r.bulk_id {
                Some(b) => b.clone(),
                None if in_order => format!("c{}", part[k]),
                None => return None,
            };
            Some((key, r))
        })
        .collect()
}
