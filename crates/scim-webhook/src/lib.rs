//! # scim-webhook: delivering each tenant's change feed to its webhook endpoints
//!
//! Guarantees (docs/events.md, "Webhooks"):
//! - **In order, per endpoint**: one event at a time, in sequence order; the endpoint's
//!   cursor (its checkpoint, in the database) moves past an event only after a 2xx.
//! - **At least once**: a node that dies mid-delivery has not moved the cursor, so the event
//!   goes again, with the same `webhook-id` (the event id), from whichever node takes over.
//! - **One node at a time**: an endpoint is delivered under a lease (`webhook:{id}`), and the
//!   cursor is only moved by a write fenced by that lease, so a node that lost its lease while
//!   stalled cannot move the cursor under the new holder.
//! - **Retries** with exponential backoff ([`RetryPolicy`]) while the endpoint fails; after
//!   the retry window (3 days by default) the endpoint is disabled with the reason, which
//!   the console shows, and nothing after the cursor is lost: replay resumes from it.

use scim_core::change::ChangeEvent;
use scim_core::service::{ChangeFeed, FeedCursor, WebhookService};
use scim_core::tenant::scim_base_url;
use scim_core::webhook::{EndpointProgress, RetryPolicy, WebhookDelivery, WebhookEndpoint, sign};
use scim_core::{CoreError, CoreResult, LeaseFence, Store, Tenant, Timestamp};
use serde_json::json;
use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Events read per feed query while an endpoint catches up.
const BATCH: u32 = 100;
/// The most of an answer kept with an attempt.
const RESPONSE_EXCERPT: usize = 500;
/// How often due endpoints are looked for when nothing wakes the deliverer.
const TICK: Duration = Duration::from_secs(1);
/// The shortest gap between two looks (a burst of changes wakes the deliverer once).
const MIN_GAP: Duration = Duration::from_millis(50);
/// Successful attempts recorded per transaction at most, and the longest they wait.
const FLUSH_EVERY: usize = 50;
const FLUSH_AFTER: Duration = Duration::from_millis(200);

/// Delivers for every tenant; one per `scimd serve` node.
pub struct Deliverer {
    store: Arc<dyn Store>,
    feed: ChangeFeed,
    webhooks: WebhookService,
    client: reqwest::Client,
    /// Where endpoints may be (checked before every attempt, and at connect time).
    outbound: scim_net::Policy,
    policy: RetryPolicy,
    /// How long an endpoint's lease lasts unless renewed.
    lease: Duration,
    /// This process's name in the leases (unique per process).
    node: String,
    public_url: String,
    /// Endpoints this node is delivering right now.
    busy: Mutex<HashSet<String>>,
}

/// What one HTTP attempt gave.
struct Answer {
    status: Option<u16>,
    latency_ms: i64,
    error: Option<String>,
    response: Option<String>,
}

impl Answer {
    fn ok(&self) -> bool {
        self.status.is_some_and(|s| (200..300).contains(&s))
    }

    /// Why the attempt failed, for the log and the disable reason.
    fn why(&self) -> String {
        match (&self.error, self.status) {
            (Some(e), _) => e.clone(),
            (None, Some(s)) => format!("answered {s}"),
            (None, None) => "no answer".into(),
        }
    }
}

impl Deliverer {
    pub fn new(
        store: Arc<dyn Store>,
        feed: ChangeFeed,
        webhooks: WebhookService,
        public_url: &str,
        policy: RetryPolicy,
        lease: Duration,
        outbound: scim_net::Policy,
    ) -> CoreResult<Self> {
        let client = scim_net::builder(&outbound)
            .timeout(policy.timeout)
            .connect_timeout(policy.timeout)
            // A receiver answers; it does not send the event elsewhere.
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("scimd-webhooks/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| CoreError::Internal(format!("the webhook HTTP client: {e}")))?;
        Ok(Self {
            store,
            feed,
            webhooks,
            client,
            outbound,
            policy,
            // Renewed every third of the lease, between attempts of at most `timeout`.
            lease: lease.max(Duration::from_secs(3)).max(policy.timeout * 3),
            node: format!("webhooks-{}", uuid::Uuid::new_v4().simple()),
            public_url: public_url.trim_end_matches('/').to_string(),
            busy: Mutex::default(),
        })
    }

    /// Delivers until the task is aborted: on every change (this node's), and every second.
    pub async fn run(self: Arc<Self>) {
        loop {
            let woken = self.feed.notifier.any.notified();
            tokio::pin!(woken);
            woken.as_mut().enable();
            if let Err(e) = self.tick().await {
                tracing::warn!(error = %e, "webhook delivery: could not look for due endpoints");
            }
            tokio::select! {
                () = &mut woken => {}
                () = tokio::time::sleep(TICK) => {}
            }
            tokio::time::sleep(MIN_GAP).await;
        }
    }

    /// Starts a delivery task for each due endpoint this node is not already delivering.
    pub async fn tick(self: &Arc<Self>) -> CoreResult<()> {
        let due = self.store.due_endpoints(Timestamp::now()).await?;
        if due.is_empty() {
            return Ok(());
        }
        let tenants = self.store.tenants().await?;
        for ep in due {
            let Some(tenant) = tenants.iter().find(|t| t.id == ep.tenant_id).cloned() else {
                continue;
            };
            if !self.lock_busy().insert(ep.id.clone()) {
                continue;
            }
            let me = self.clone();
            tokio::spawn(async move {
                let id = ep.id.clone();
                if let Err(e) = me.drain(&tenant, ep).await {
                    tracing::warn!(endpoint = %id, error = %e, "webhook delivery stopped");
                }
                me.lock_busy().remove(&id);
            });
        }
        Ok(())
    }

    fn lock_busy(&self) -> std::sync::MutexGuard<'_, HashSet<String>> {
        self.busy.lock().unwrap_or_else(|p| p.into_inner())
    }

    async fn take_lease(&self, name: &str) -> CoreResult<bool> {
        let now = Timestamp::now();
        let until = now + time::Duration::try_from(self.lease).unwrap_or(time::Duration::MINUTE);
        self.store.try_lease(name, &self.node, now, until).await
    }

    /// Delivers one endpoint's events in order until it is caught up, fails, or the lease
    /// is lost.
    async fn drain(&self, tenant: &Tenant, ep: WebhookEndpoint) -> CoreResult<()> {
        // Caught up: nothing to do, and no lease write for it.
        if self.store.change_bounds(tenant.id).await?.head <= ep.cursor {
            return Ok(());
        }
        let lease = format!("webhook:{}", ep.id);
        if !self.take_lease(&lease).await? {
            return Ok(());
        }
        let fence = LeaseFence {
            lease: lease.clone(),
            holder: self.node.clone(),
        };
        let mut renewed = Instant::now();
        let base = scim_base_url(&self.public_url, &tenant.slug);
        loop {
            if renewed.elapsed() > self.lease / 3 {
                if !self.take_lease(&lease).await? {
                    return Ok(());
                }
                renewed = Instant::now();
            }
            // Read again each round: an operator may have replayed, disabled or rotated.
            let Some(mut ep) = self.store.endpoint(tenant.id, &ep.id).await? else {
                return Ok(());
            };
            let now = Timestamp::now();
            if !ep.enabled || ep.next_attempt_at.is_some_and(|t| t > now) {
                return Ok(());
            }
            let Some(page) = self.next_page(tenant, &ep, &base).await? else {
                return Ok(());
            };
            if page.events.is_empty() {
                if page.next > ep.cursor {
                    // Only events the endpoint's type filter leaves out: pass over them.
                    self.advance(&fence, &ep, page.next).await?;
                    continue;
                }
                return Ok(());
            }
            let secrets = self.webhooks.signing_secrets(&ep, now)?;
            // Successes are recorded in batches (one transaction per FLUSH_EVERY events or
            // FLUSH_AFTER): a crash before a flush re-sends those events, with their ids.
            let mut stored = ep.cursor;
            let mut pending: Vec<WebhookDelivery> = Vec::new();
            let mut since = Instant::now();
            for e in &page.events {
                // Renewed before each attempt too: a page to a slow receiver outlasts the
                // lease, and a node that lost it must not send (another node delivers now).
                // Unrecorded successes are then sent again by that node, with their ids.
                if renewed.elapsed() > self.lease / 3 {
                    if !self.take_lease(&lease).await? {
                        return Ok(());
                    }
                    renewed = Instant::now();
                }
                let body = serde_json::to_vec(e)
                    .map_err(|err| CoreError::Internal(format!("event serialisation: {err}")))?;
                let answer = self.post(&ep.url, &secrets, &e.id, &body).await;
                pending.push(attempt_record(&ep, e, &answer));
                if answer.ok() {
                    ep.cursor = e.sequence;
                    ep.attempts = 0;
                    ep.failing_since = None;
                    if pending.len() >= FLUSH_EVERY || since.elapsed() >= FLUSH_AFTER {
                        if !self.flush(&fence, &ep, &mut stored, &mut pending).await? {
                            break;
                        }
                        since = Instant::now();
                    }
                    continue;
                }
                let mut progress = self
                    .policy
                    .after_failure(&ep, Timestamp::now(), &answer.why());
                if answer.status == Some(410) {
                    // Standard Webhooks: 410 Gone means "stop sending".
                    progress.disable = Some("the endpoint answered 410 Gone".into());
                }
                self.store
                    .record_delivery(
                        Some(&fence),
                        tenant.id,
                        &ep.id,
                        stored,
                        &pending,
                        Some(&progress),
                    )
                    .await?;
                tracing::info!(endpoint = %ep.id, sequence = e.sequence, why = %answer.why(), "webhook delivery failed; retrying later");
                return Ok(());
            }
            if !pending.is_empty() && !self.flush(&fence, &ep, &mut stored, &mut pending).await? {
                continue;
            }
            if page.next > ep.cursor && page.events.last().is_some_and(|l| l.sequence == ep.cursor)
            {
                self.advance(&fence, &ep, page.next).await?;
            }
        }
    }

    /// The endpoint's next page of events; `None` (and the endpoint disabled, with the
    /// reason) when undelivered events have expired.
    async fn next_page(
        &self,
        tenant: &Tenant,
        ep: &WebhookEndpoint,
        base: &str,
    ) -> CoreResult<Option<scim_core::service::ChangePage>> {
        let page = self
            .feed
            .page(
                tenant,
                FeedCursor::After(ep.cursor),
                BATCH,
                &ep.type_filter(),
                Duration::ZERO,
                base,
            )
            .await;
        match page {
            Ok(p) => Ok(Some(p)),
            Err(CoreError::Gone(why)) => {
                let reason = format!("undelivered events expired: {why}");
                self.store
                    .set_endpoint_enabled(tenant.id, &ep.id, false, Some(&reason))
                    .await?;
                tracing::warn!(endpoint = %ep.id, %reason, "webhook endpoint disabled");
                Ok(None)
            }
            Err(e) => Err(e),
        }
    }

    /// Records the pending successes and moves the stored cursor to `ep.cursor`. False if
    /// the endpoint was replayed, disabled or deleted meanwhile (start over from the store).
    async fn flush(
        &self,
        fence: &LeaseFence,
        ep: &WebhookEndpoint,
        stored: &mut i64,
        pending: &mut Vec<WebhookDelivery>,
    ) -> CoreResult<bool> {
        let expected = *stored;
        let progress = EndpointProgress {
            cursor: ep.cursor,
            attempts: 0,
            failing_since: None,
            next_attempt_at: None,
            disable: None,
        };
        let moved = self
            .store
            .record_delivery(
                Some(fence),
                ep.tenant_id,
                &ep.id,
                expected,
                pending,
                Some(&progress),
            )
            .await?;
        pending.clear();
        if moved {
            *stored = ep.cursor;
        }
        Ok(moved)
    }

    /// Moves the cursor past events the type filter leaves out.
    async fn advance(&self, fence: &LeaseFence, ep: &WebhookEndpoint, to: i64) -> CoreResult<()> {
        let progress = EndpointProgress {
            cursor: to,
            attempts: 0,
            failing_since: None,
            next_attempt_at: None,
            disable: None,
        };
        self.store
            .record_delivery(
                Some(fence),
                ep.tenant_id,
                &ep.id,
                ep.cursor,
                &[],
                Some(&progress),
            )
            .await?;
        Ok(())
    }

    /// One signed POST.
    async fn post(&self, url: &str, secrets: &[String], msg_id: &str, body: &[u8]) -> Answer {
        let ts = Timestamp::now().as_micros() / 1_000_000;
        let mut sigs = Vec::with_capacity(secrets.len());
        for s in secrets {
            match sign(s, msg_id, ts, body) {
                Ok(sig) => sigs.push(sig),
                Err(e) => {
                    return Answer {
                        status: None,
                        latency_ms: 0,
                        error: Some(format!("signing: {e}")),
                        response: None,
                    };
                }
            }
        }
        // Refused destinations get no request (and so show no answer): the check runs here
        // for literal addresses and again at connect time for names.
        if let Err(e) = reqwest::Url::parse(url)
            .map_err(|e| e.to_string())
            .and_then(|u| self.outbound.check_url(&u).map_err(|e| e.to_string()))
        {
            return Answer {
                status: None,
                latency_ms: 0,
                error: Some(format!("refused: {e}")),
                response: None,
            };
        }
        let started = Instant::now();
        let sent = self
            .client
            .post(url)
            .header("content-type", "application/json")
            .header("webhook-id", msg_id)
            .header("webhook-timestamp", ts.to_string())
            .header("webhook-signature", sigs.join(" "))
            .body(body.to_vec())
            .send()
            .await;
        let mut resp = match sent {
            Ok(r) => r,
            Err(e) => {
                return Answer {
                    status: None,
                    latency_ms: elapsed_ms(started),
                    error: Some(transport_error(e)),
                    response: None,
                };
            }
        };
        let status = resp.status().as_u16();
        let mut excerpt = Vec::new();
        let mut error = None;
        while excerpt.len() < RESPONSE_EXCERPT {
            match resp.chunk().await {
                Ok(Some(c)) => excerpt.extend_from_slice(&c),
                Ok(None) => break,
                Err(e) => {
                    error = Some(transport_error(e));
                    break;
                }
            }
        }
        excerpt.truncate(RESPONSE_EXCERPT);
        let text = String::from_utf8_lossy(&excerpt).into_owned();
        Answer {
            status: Some(status),
            latency_ms: elapsed_ms(started),
            // A 2xx whose body broke off still counts: the receiver has answered.
            error: error.filter(|_| !(200..300).contains(&status)),
            response: (!text.is_empty()).then_some(text),
        }
    }

    /// Sends a `webhook.test` event (outside the feed; the cursor does not move) and records
    /// the attempt.
    pub async fn send_test(&self, tenant: &Tenant, id: &str) -> CoreResult<WebhookDelivery> {
        let ep = self.webhooks.get(tenant, id).await?;
        let secrets = self.webhooks.signing_secrets(&ep, Timestamp::now())?;
        let msg_id = format!("test_{}", uuid::Uuid::new_v4().simple());
        let body = json!({
            "id": msg_id,
            "type": "webhook.test",
            "time": Timestamp::now().rfc3339(),
            "tenant": tenant.slug,
            "data": {"message": "a test event from scimd; it is not part of the change feed"},
        });
        let bytes = serde_json::to_vec(&body)
            .map_err(|e| CoreError::Internal(format!("event serialisation: {e}")))?;
        let answer = self.post(&ep.url, &secrets, &msg_id, &bytes).await;
        let d = WebhookDelivery {
            id: 0,
            endpoint_id: ep.id.clone(),
            event_id: msg_id,
            sequence: None,
            event_type: "webhook.test".into(),
            attempt: 1,
            at: Timestamp::now(),
            status: answer.status,
            latency_ms: answer.latency_ms,
            error: answer
                .error
                .clone()
                .or_else(|| (!answer.ok()).then(|| answer.why())),
            response: answer.response,
        };
        self.store
            .record_delivery(
                None,
                tenant.id,
                &ep.id,
                ep.cursor,
                std::slice::from_ref(&d),
                None,
            )
            .await?;
        Ok(d)
    }
}

fn attempt_record(ep: &WebhookEndpoint, e: &ChangeEvent, a: &Answer) -> WebhookDelivery {
    WebhookDelivery {
        id: 0,
        endpoint_id: ep.id.clone(),
        event_id: e.id.clone(),
        sequence: Some(e.sequence),
        event_type: e.kind.as_str().into(),
        attempt: ep.attempts + 1,
        at: Timestamp::now(),
        status: a.status,
        latency_ms: a.latency_ms,
        error: if a.ok() { None } else { Some(a.why()) },
        response: a.response.clone(),
    }
}

fn elapsed_ms(t: Instant) -> i64 {
    i64::try_from(t.elapsed().as_millis()).unwrap_or(i64::MAX)
}

/// A transport failure in words (never the URL's query, which may hold a token).
fn transport_error(e: reqwest::Error) -> String {
    if let Some(r) = scim_net::refusal_in(&e) {
        format!("refused: {r}")
    } else if e.is_timeout() {
        "timed out".into()
    } else if e.is_connect() {
        "could not connect".into()
    } else {
        format!("{}", e.without_url())
    }
}
