//! Telling someone when a job needs attention (docs/sync.md §7): entering and leaving
//! quarantine, a tripped deletion breaker, and a digest of each cycle with failures — the
//! Entra guide's "Notification Email". What a notice says is decided here, how it travels
//! (SMTP, a signed webhook) by a [`Notifier`].

use crate::engine::{CycleReport, QuarantineChange};
use crate::error::{SyncError, SyncResult};
use crate::job::JobSpec;
use async_trait::async_trait;
use serde::Serialize;
use std::sync::Arc;

/// Something a job's owners should hear about.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Notice {
    Quarantine(QuarantineChange),
    /// The breaker held deletes for approval.
    Breaker {
        detail: String,
    },
    /// A cycle ended with failures: the first ones, by object.
    Failures {
        cycle_id: String,
        count: u64,
        /// `display: error code: detail`, at most [`DIGEST_LINES`].
        lines: Vec<String>,
    },
    /// An administrator asked for a test (the console's "Send a test e-mail").
    Test,
}

/// Failures listed in one digest.
pub const DIGEST_LINES: usize = 50;

impl Notice {
    /// The notices a finished cycle gives, apart from quarantine changes (the scheduler
    /// compares the job's state before and after, so those come from one place).
    pub fn of_report(r: &CycleReport) -> Vec<Notice> {
        let mut out = Vec::new();
        if let Some(b) = &r.breaker {
            out.push(Notice::Breaker { detail: b.clone() });
        }
        out
    }

    /// The e-mail subject.
    pub fn subject(&self, job: &str) -> String {
        match self {
            Notice::Quarantine(q) if q.entered => {
                format!(
                    "[scimd] {job}: provisioning quarantined ({})",
                    q.reason.as_str()
                )
            }
            Notice::Quarantine(_) => format!("[scimd] {job}: quarantine lifted"),
            Notice::Breaker { .. } => format!("[scimd] {job}: deletes held for approval"),
            Notice::Failures { count, .. } => {
                format!("[scimd] {job}: {count} object(s) failed to provision")
            }
            Notice::Test => format!("[scimd] {job}: test notice"),
        }
    }

    /// The plain-text body.
    pub fn body(&self, job: &str) -> String {
        match self {
            Notice::Quarantine(q) if q.entered => format!(
                "The provisioning job '{job}' is in quarantine: {}.\n\n{}\n\nWhile quarantined it runs once a day. Fix the cause, then run\n  scimd sync reauthorize {job}   (for a refused token)\n  scimd sync restart {job} --scope quarantine\n",
                q.reason.as_str(),
                q.detail
            ),
            Notice::Quarantine(q) => {
                format!(
                    "The provisioning job '{job}' is out of quarantine: {}.\n",
                    q.detail
                )
            }
            Notice::Breaker { detail } => format!(
                "The deletion breaker of '{job}' held deletes: {detail}\n\nReview them with `scimd sync plan {job}`, then\n  scimd sync approve-deletes {job}\nor\n  scimd sync reject-deletes {job}\n"
            ),
            Notice::Failures {
                cycle_id,
                count,
                lines,
            } => {
                let mut b = format!(
                    "Cycle {cycle_id} of '{job}' ended with {count} failure(s). Failing objects are retried on the escrow ladder.\n\n"
                );
                for l in lines {
                    b.push_str("- ");
                    b.push_str(l);
                    b.push('\n');
                }
                if *count > lines.len() as u64 {
                    b.push_str(&format!(
                        "… and {} more: scimd sync log {job} --cycle {cycle_id} --status Failure\n",
                        *count - lines.len() as u64
                    ));
                }
                b
            }
            Notice::Test => format!(
                "This is a test notice for the provisioning app '{job}', sent from the console.\n\nThis address receives its notices: quarantine entered and lifted, deletes held for approval, and a digest of each cycle that ended with failures.\n"
            ),
        }
    }
}

/// Delivers notices for a job (to its `notify.email` addresses, a webhook, …).
#[async_trait]
pub trait Notifier: Send + Sync {
    async fn notify(&self, spec: &JobSpec, notice: &Notice) -> SyncResult<()>;
}

/// Sends notices by e-mail to the job's `notify.email` addresses.
pub struct SmtpNotifier {
    mailer: Arc<scim_net::Mailer>,
}

impl SmtpNotifier {
    /// Through `mailer` (`scim_net::Mailer::new` checks the settings).
    pub fn new(mailer: Arc<scim_net::Mailer>) -> Self {
        Self { mailer }
    }
}

#[async_trait]
impl Notifier for SmtpNotifier {
    async fn notify(&self, spec: &JobSpec, notice: &Notice) -> SyncResult<()> {
        if spec.notify.email.is_empty() {
            return Ok(());
        }
        let to: Vec<&str> = spec.notify.email.iter().map(String::as_str).collect();
        self.mailer
            .send(&to, &notice.subject(&spec.name), notice.body(&spec.name))
            .await
            .map_err(|e| SyncError::Job(format!("notify.email: {e}")))
    }
}

/// Every notifier in turn (e-mail and webhook); one failing does not stop the others.
pub struct Notifiers(pub Vec<Arc<dyn Notifier>>);

#[async_trait]
impl Notifier for Notifiers {
    async fn notify(&self, spec: &JobSpec, notice: &Notice) -> SyncResult<()> {
        let mut first_error = None;
        for n in &self.0 {
            if let Err(e) = n.notify(spec, notice).await {
                first_error.get_or_insert(e);
            }
        }
        first_error.map_or(Ok(()), Err)
    }
}

/// Delivery attempts of one webhook notice, and the waits between them (1 s, 2 s, 4 s,
/// 8 s, 16 s): the notice is retried within the process, not stored.
const WEBHOOK_ATTEMPTS: u32 = 6;

/// Posts notices to the job's `notify.webhook`, signed per the Standard Webhooks scheme:
/// `webhook-id`, `webhook-timestamp` and `webhook-signature: v1,<base64 HMAC-SHA256 of
/// "{id}.{timestamp}.{body}">`, keyed with the base64 part of a `whsec_…` secret.
pub struct WebhookNotifier {
    http: reqwest::Client,
    /// Where notice webhooks may be (docs/security.md).
    outbound: scim_net::Policy,
    /// The first retry's wait (doubled each time); tests shorten it.
    pub backoff: std::time::Duration,
}

impl WebhookNotifier {
    pub fn new(outbound: scim_net::Policy) -> SyncResult<Self> {
        let http = scim_net::builder(&outbound)
            .timeout(std::time::Duration::from_secs(15))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| SyncError::Job(format!("webhook client: {e}")))?;
        Ok(Self {
            http,
            outbound,
            backoff: std::time::Duration::from_secs(1),
        })
    }
}

/// The payload's `type`.
fn webhook_type(n: &Notice) -> &'static str {
    match n {
        Notice::Quarantine(q) if q.entered => "sync.quarantine.entered",
        Notice::Quarantine(_) => "sync.quarantine.lifted",
        Notice::Breaker { .. } => "sync.breaker.tripped",
        Notice::Failures { .. } => "sync.cycle.failures",
        Notice::Test => "sync.test",
    }
}

/// The job's webhook signing secret, checked: `whsec_` and base64 of at least 16 bytes
/// (Standard Webhooks). Signing itself is scim-core's, the same as the events API's.
pub fn webhook_secret(spec: &JobSpec) -> SyncResult<String> {
    let secret = spec
        .notify
        .webhook_secret()
        .require(spec.base_dir.as_deref(), None)?;
    scim_core::webhook::check_secret(&secret).map_err(|e| SyncError::Job(e.to_string()))?;
    Ok(secret)
}

#[async_trait]
impl Notifier for WebhookNotifier {
    async fn notify(&self, spec: &JobSpec, notice: &Notice) -> SyncResult<()> {
        let Some(url) = &spec.notify.webhook else {
            return Ok(());
        };
        let secret = webhook_secret(spec)?;
        let parsed = reqwest::Url::parse(url)
            .map_err(|e| SyncError::Job(format!("notify.webhook '{url}': {e}")))?;
        self.outbound
            .check_url(&parsed)
            .map_err(|e| SyncError::Job(format!("notify.webhook refused: {e}")))?;
        let id = format!("msg_{}", uuid::Uuid::new_v4().simple());
        let body = serde_json::json!({
            "type": webhook_type(notice),
            "timestamp": scim_core::Timestamp::now().rfc3339(),
            "data": {"job": spec.name, "subject": notice.subject(&spec.name), "notice": notice},
        })
        .to_string();
        let mut wait = self.backoff;
        let mut last = String::new();
        for attempt in 1..=WEBHOOK_ATTEMPTS {
            // Signed per attempt: the timestamp is the attempt's, as receivers check it.
            let ts = time::OffsetDateTime::now_utc().unix_timestamp();
            let r = self
                .http
                .post(url)
                .header("content-type", "application/json")
                .header("webhook-id", &id)
                .header("webhook-timestamp", ts.to_string())
                .header(
                    "webhook-signature",
                    scim_core::webhook::sign(&secret, &id, ts, body.as_bytes())
                        .map_err(|e| SyncError::Job(e.to_string()))?,
                )
                .body(body.clone())
                .send()
                .await;
            match r {
                Ok(resp) if resp.status().is_success() => return Ok(()),
                Ok(resp) => last = format!("answered {}", resp.status().as_u16()),
                Err(e) => {
                    if let Some(r) = scim_net::refusal_in(&e) {
                        return Err(SyncError::Job(format!("notify.webhook refused: {r}")));
                    }
                    // The error names the URL, never the secret.
                    last = format!("not delivered: {e}");
                }
            }
            if attempt < WEBHOOK_ATTEMPTS {
                tracing::debug!(job = %spec.name, attempt, %last, "webhook retry");
                tokio::time::sleep(wait).await;
                wait *= 2;
            }
        }
        Err(SyncError::Job(format!(
            "webhook {url}: {last} after {WEBHOOK_ATTEMPTS} attempts"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notices_say_what_to_do() {
        let q = Notice::Quarantine(QuarantineChange {
            entered: true,
            reason: scim_core::QuarantineReason::Credentials,
            detail: "401".into(),
        });
        assert!(
            q.subject("hr").contains("quarantined (credentials)"),
            "{}",
            q.subject("hr")
        );
        assert!(q.body("hr").contains("scimd sync reauthorize hr"));
        let f = Notice::Failures {
            cycle_id: "c1".into(),
            count: 3,
            lines: vec!["User a: TargetRejected: 400".into()],
        };
        assert!(f.body("hr").contains("and 2 more"));
        assert!(f.subject("hr").contains("3 object(s) failed"));
    }
}
