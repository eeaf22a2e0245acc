//! The Admin SDK Directory API's read calls (`users.list`, `groups.list`, `members.list`)
//! over the sources' REST client (`source::rest`): Google's throttling answers (403
//! `userRateLimitExceeded`/`quotaExceeded`, 429 `rateLimitExceeded`) and 5xx retried with
//! backoff as the limits page prescribes, a refused token fetched again once, and paging
//! checked: a page token seen twice, or more pages than any directory has, fails the read
//! rather than shortening it.

use super::auth::TokenSource;
use crate::error::{SyncError, SyncResult};
use crate::source::rest::{Refusal, Rest, Verdict};
use serde_json::Value;
use std::collections::HashSet;

/// Pages of one list at most (500 users a page: 50 million users).
const MAX_PAGES: usize = 100_000;

pub struct Directory {
    pub rest: Rest,
    /// `https://admin.googleapis.com`, or the job's `api_url`.
    pub api_url: String,
    pub tokens: TokenSource,
}

/// Google's error envelope: `{"error": {"code", "message", "errors": [{"reason", …}]}}`.
fn reason_of(body: &Value) -> (Option<String>, Option<String>) {
    let e = body.get("error");
    let reason = e
        .and_then(|e| e.get("errors"))
        .and_then(Value::as_array)
        .and_then(|a| a.first())
        .and_then(|x| x.get("reason"))
        .and_then(Value::as_str)
        .map(str::to_string);
    let message = e
        .and_then(|e| e.get("message"))
        .and_then(Value::as_str)
        .map(|m| scim_proto::error::excerpt(m).to_string());
    (reason, message)
}

/// Whether an error answer is Google's throttling (or a server fault) that a later try can
/// get past.
pub fn is_transient(status: u16, reason: Option<&str>) -> bool {
    match status {
        429 | 500 | 502 | 503 | 504 => true,
        403 => matches!(
            reason,
            Some("userRateLimitExceeded" | "quotaExceeded" | "rateLimitExceeded")
        ),
        _ => false,
    }
}

/// [`is_transient`] as the REST client asks it.
pub fn classify(status: u16, body: &Value) -> Verdict {
    let (reason, _) = reason_of(body);
    if status == 401 {
        Verdict::Reauth
    } else if is_transient(status, reason.as_deref()) {
        Verdict::Retry {
            throttled: matches!(status, 403 | 429),
        }
    } else {
        Verdict::Fail
    }
}

/// An error answer that no retry fixes, in words an administrator can act on.
pub fn explain(status: u16, reason: Option<&str>, message: Option<&str>, what: &str) -> String {
    let said = match (reason, message) {
        (Some(r), Some(m)) => format!("{status} {r}: {m}"),
        (None, Some(m)) => format!("{status}: {m}"),
        (Some(r), None) => format!("{status} {r}"),
        (None, None) => format!("{status}"),
    };
    let hint = match (status, reason) {
        (401, _) => "the access token was refused twice: check the service account's key and \
                     that domain-wide delegation is granted"
            .to_string(),
        (403, Some("forbidden")) | (403, None) => "source.subject must be a super administrator \
             (or hold the Groups Reader and User Management Admin roles), and domain-wide \
             delegation must grant the read-only directory scopes"
            .to_string(),
        (403, Some("accessNotConfigured")) => "enable the Admin SDK API in the service \
             account's Google Cloud project (APIs & Services → Library → Admin SDK API)"
            .to_string(),
        (404, _) => {
            "check source.customer (my_customer, or the customer ID) or source.domain".to_string()
        }
        (400, _) => "the request was refused as invalid (check source.customer or source.domain)"
            .to_string(),
        _ => "the Directory API refused the read".to_string(),
    };
    format!("Google Directory API, {what}: {said}: {hint}")
}

impl Directory {
    /// One page: GET `path` under the API with `query`.
    pub async fn get(&self, path: &str, query: &[(&str, String)]) -> SyncResult<Value> {
        let url = format!(
            "{}/admin/directory/v1/{path}",
            self.api_url.trim_end_matches('/')
        );
        self.rest.get(&url, query, &self.tokens).await?.map_err(
            |Refusal { status, body, .. }| {
                let (reason, message) = reason_of(&body);
                SyncError::Source(explain(status, reason.as_deref(), message.as_deref(), path))
            },
        )
    }

    /// Every item of a paged list (`items` under `key`), page by page.
    pub async fn list(
        &self,
        path: &str,
        query: &[(&str, String)],
        key: &str,
    ) -> SyncResult<Vec<Value>> {
        let mut out = Vec::new();
        let mut seen = HashSet::new();
        let mut token: Option<String> = None;
        for _ in 0..MAX_PAGES {
            let mut q = query.to_vec();
            if let Some(t) = &token {
                q.push(("pageToken", t.clone()));
            }
            let page = self.get(path, &q).await?;
            match page.get(key) {
                Some(Value::Array(items)) => out.extend(items.iter().cloned()),
                None | Some(Value::Null) => {}
                Some(_) => {
                    return Err(SyncError::Source(format!(
                        "Google Directory API, {path}: '{key}' is not a list; the read is \
                         abandoned and nothing is deprovisioned"
                    )));
                }
            }
            match page.get("nextPageToken").and_then(Value::as_str) {
                None | Some("") => return Ok(out),
                Some(t) => {
                    if !seen.insert(t.to_string()) {
                        return Err(SyncError::Source(format!(
                            "Google Directory API, {path}: the page token repeated after {} \
                             pages; the read is abandoned and nothing is deprovisioned",
                            seen.len()
                        )));
                    }
                    token = Some(t.to_string());
                }
            }
        }
        Err(SyncError::Source(format!(
            "Google Directory API, {path}: more than {MAX_PAGES} pages; the read is abandoned"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn throttling_and_faults_are_retried_the_rest_is_not() {
        let cases = [
            (403, Some("userRateLimitExceeded"), true),
            (403, Some("quotaExceeded"), true),
            (429, Some("rateLimitExceeded"), true),
            (429, None, true),
            (503, None, true),
            (403, Some("forbidden"), false),
            (403, None, false),
            (404, Some("notFound"), false),
            (400, Some("invalid"), false),
        ];
        for (status, reason, retried) in cases {
            assert_eq!(is_transient(status, reason), retried, "{status} {reason:?}");
        }
    }

    #[test]
    fn refusals_say_what_to_do() {
        let cases = [
            (403, Some("forbidden"), "super administrator"),
            (403, Some("accessNotConfigured"), "enable the Admin SDK API"),
            (404, Some("notFound"), "source.customer"),
            (401, None, "refused twice"),
        ];
        for (status, reason, expect) in cases {
            let text = explain(status, reason, Some("Not Authorized"), "users");
            assert!(text.contains(expect), "{text}");
        }
    }

    #[test]
    fn the_error_envelope_is_read() {
        let body = serde_json::json!({"error": {"code": 403, "message": "Rate limit",
            "errors": [{"message": "m", "domain": "usageLimits", "reason": "userRateLimitExceeded"}],
            "status": "PERMISSION_DENIED"}});
        let (reason, message) = reason_of(&body);
        assert_eq!(reason.as_deref(), Some("userRateLimitExceeded"));
        assert_eq!(message.as_deref(), Some("Rate limit"));
        assert_eq!(reason_of(&Value::Null), (None, None));
    }
}
