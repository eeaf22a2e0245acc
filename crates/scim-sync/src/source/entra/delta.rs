//! Graph delta queries (`/users/delta`, `/groups/delta`): every page followed through
//! `@odata.nextLink` to the `@odata.deltaLink` that is the next read's start, each page
//! through the REST client (429 with `Retry-After`, 5xx, one refused token). A `410 Gone`,
//! or `syncStateNotFound`/`resyncRequired` (a delta token older than Graph keeps, seven days),
//! asks for a full resync. Links are opaque but must stay on Graph's origin.

use crate::error::{SyncError, SyncResult};
use crate::source::rest::{Auth, Refusal, Rest, Verdict};
use serde_json::Value;

/// Pages of one delta read at most.
const MAX_PAGES: usize = 200_000;

/// What a delta read came to.
#[derive(Debug)]
pub enum Outcome {
    /// Every item, in the order sent (replays included), and the next read's start.
    Done { items: Vec<Value>, link: String },
    /// Graph asks for a full resync, for this reason.
    Resync(String),
}

/// Graph's error code (`{"error": {"code", "message"}}`).
fn code_of(body: &Value) -> Option<&str> {
    body.get("error")?.get("code")?.as_str()
}

pub fn classify(status: u16, _body: &Value) -> Verdict {
    match status {
        401 => Verdict::Reauth,
        429 => Verdict::Retry { throttled: true },
        500 | 502 | 503 | 504 => Verdict::Retry { throttled: false },
        _ => Verdict::Fail,
    }
}

/// Whether a refused page means "start again with a full sync".
pub fn asks_resync(status: u16, body: &Value) -> bool {
    status == 410
        || code_of(body).is_some_and(|c| {
            c.eq_ignore_ascii_case("syncStateNotFound") || c.eq_ignore_ascii_case("resyncRequired")
        })
}

/// A refusal no retry helps, in words an administrator can act on.
pub fn explain(status: u16, body: &Value, what: &str) -> String {
    let code = code_of(body).unwrap_or_default();
    let message = body
        .get("error")
        .and_then(|e| e.get("message"))
        .and_then(Value::as_str)
        .map(|m| format!(": {}", scim_proto::error::excerpt(m)))
        .unwrap_or_default();
    let hint = match (status, code) {
        (401, _) => "the access token was refused twice: check the app registration's secret",
        (403, _) => {
            "grant the app registration the application permissions User.Read.All and \
                     GroupMember.Read.All (or Directory.Read.All) and give admin consent"
        }
        (400, _) => "Graph refused the request as invalid",
        _ => "Graph refused the read",
    };
    format!("Microsoft Graph, {what}: {status} {code}{message}: {hint}")
}

/// Whether `link` is on the same origin as `graph` (scheme, host, port).
pub fn same_origin(graph: &str, link: &str) -> bool {
    match (scim_net::Url::parse(graph), scim_net::Url::parse(link)) {
        (Ok(a), Ok(b)) => a.origin() == b.origin(),
        _ => false,
    }
}

/// Reads one delta stream from `start` (the first query, or the last read's delta link).
pub async fn read(
    rest: &Rest,
    auth: &dyn Auth,
    graph: &str,
    start: String,
    what: &str,
) -> SyncResult<Outcome> {
    let mut url = start;
    let mut items = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for _ in 0..MAX_PAGES {
        if !seen.insert(url.clone()) {
            return Err(SyncError::Source(format!(
                "Microsoft Graph, {what}: a paging link repeated after {} pages; the read is \
                 abandoned and nothing is deprovisioned",
                seen.len()
            )));
        }
        if !same_origin(graph, &url) {
            return Err(SyncError::Source(format!(
                "Microsoft Graph, {what}: a paging link leads away from {graph}; the read is \
                 abandoned"
            )));
        }
        let page = match rest.get(&url, &[], auth).await? {
            Ok(p) => p,
            Err(Refusal { status, body, .. }) if asks_resync(status, &body) => {
                let code = code_of(&body).unwrap_or("410 Gone");
                return Ok(Outcome::Resync(format!(
                    "Graph asked for a full resync of {what} ({code})"
                )));
            }
            Err(Refusal { status, body, .. }) => {
                return Err(SyncError::Source(explain(status, &body, what)));
            }
        };
        match page.get("value") {
            Some(Value::Array(v)) => items.extend(v.iter().cloned()),
            None => {}
            Some(_) => {
                return Err(SyncError::Source(format!(
                    "Microsoft Graph, {what}: 'value' is not a list; the read is abandoned"
                )));
            }
        }
        let link = |k: &str| page.get(k).and_then(Value::as_str).map(str::to_string);
        match (link("@odata.nextLink"), link("@odata.deltaLink")) {
            (Some(next), _) => url = next,
            (None, Some(delta)) => return Ok(Outcome::Done { items, link: delta }),
            (None, None) => {
                return Err(SyncError::Source(format!(
                    "Microsoft Graph, {what}: a page with neither a next nor a delta link; \
                     the read is abandoned and nothing is deprovisioned"
                )));
            }
        }
    }
    Err(SyncError::Source(format!(
        "Microsoft Graph, {what}: more than {MAX_PAGES} pages; the read is abandoned"
    )))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn what_a_refusal_means() {
        let gone = json!({"error": {"code": "syncStateNotFound", "message": "expired"}});
        let cases = [
            (410, json!(null), true),
            (400, gone.clone(), true),
            (404, json!({"error": {"code": "ResyncRequired"}}), true),
            (
                403,
                json!({"error": {"code": "Authorization_RequestDenied"}}),
                false,
            ),
        ];
        for (status, body, resync) in cases {
            assert_eq!(asks_resync(status, &body), resync, "{status} {body}");
        }
        assert_eq!(
            classify(429, &json!(null)),
            Verdict::Retry { throttled: true }
        );
        assert_eq!(
            classify(503, &json!(null)),
            Verdict::Retry { throttled: false }
        );
        assert_eq!(classify(401, &json!(null)), Verdict::Reauth);
        assert_eq!(classify(403, &json!(null)), Verdict::Fail);
        let text = explain(
            403,
            &json!({"error": {"code": "Authorization_RequestDenied",
            "message": "Insufficient privileges to complete the operation."}}),
            "users",
        );
        assert!(
            text.contains("GroupMember.Read.All") && text.contains("admin consent"),
            "{text}"
        );
    }

    #[test]
    fn links_stay_on_graph() {
        let g = "https://graph.microsoft.com";
        assert!(same_origin(
            g,
            "https://graph.microsoft.com/v1.0/users/delta?$skiptoken=x"
        ));
        assert!(!same_origin(
            g,
            "https://graph.microsoft.com.evil.example/v1.0/users/delta"
        ));
        assert!(!same_origin(
            g,
            "http://graph.microsoft.com/v1.0/users/delta"
        ));
        assert!(!same_origin(g, "not a url"));
    }
}
