//! The client's one error type.

use std::sync::Arc;
use std::time::Duration;

pub type ClientResult<T> = Result<T, ClientError>;

/// Cloneable, so that one failed Bulk request can be every one of its operations' outcome
/// with its class intact (a lost answer stays a lost answer).
#[derive(Debug, Clone, thiserror::Error)]
pub enum ClientError {
    /// The target answered with an error status (its SCIM error body, when it sent one).
    #[error("{status}{}{}", .scim_type.as_ref().map(|t| format!(" {t}")).unwrap_or_default(), .detail.as_ref().map(|d| format!(": {d}")).unwrap_or_default())]
    Status {
        status: u16,
        scim_type: Option<String>,
        detail: Option<String>,
        /// From `Retry-After` (seconds or an HTTP date), on 429/503.
        retry_after: Option<Duration>,
    },
    /// No answer: connection refused, reset, timed out.
    #[error("transport: {0}")]
    Transport(#[source] Arc<reqwest::Error>),
    /// An answer that is not the JSON SCIM says it is.
    #[error("unexpected response: {0}")]
    Protocol(String),
    /// A URL or setting that cannot work.
    #[error("{0}")]
    Config(String),
    /// A destination the outbound policy refuses (never sent).
    #[error("refused: {0}")]
    Refused(String),
    /// An answer over the client's byte limit (not read past it).
    #[error("the answer is larger than {limit} bytes")]
    TooLarge { limit: usize },
}

impl ClientError {
    /// Whether sending the same request again later can succeed.
    pub fn is_transient(&self) -> bool {
        match self {
            ClientError::Status { status, .. } => {
                matches!(status, 408 | 429) || (500..600).contains(status)
            }
            ClientError::Transport(_) => true,
            ClientError::Protocol(_)
            | ClientError::Config(_)
            | ClientError::Refused(_)
            | ClientError::TooLarge { .. } => false,
        }
    }

    pub fn status(&self) -> Option<u16> {
        match self {
            ClientError::Status { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// 409 `uniqueness` (RFC 7644 §3.3): the object already exists.
    pub fn is_conflict(&self) -> bool {
        self.status() == Some(409)
    }

    /// A write that failed this way may still have been applied by the target: no answer
    /// came, or a gateway error or timeout (not 429/503, which mean "not processed").
    pub fn may_have_been_processed(&self) -> bool {
        match self {
            // An answer too large to read came from a request that was processed.
            ClientError::Transport(_) | ClientError::TooLarge { .. } => true,
            ClientError::Status { status, .. } => matches!(status, 408 | 500 | 502 | 504),
            _ => false,
        }
    }

    /// The wait the target asked for (`Retry-After` on a 429 or 503).
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            ClientError::Status { retry_after, .. } => *retry_after,
            _ => None,
        }
    }

    /// 401/403: the credentials do not work (a quarantine reason, not an object's fault).
    pub fn is_auth(&self) -> bool {
        matches!(self.status(), Some(401 | 403))
    }
}

impl From<reqwest::Error> for ClientError {
    fn from(e: reqwest::Error) -> Self {
        // The outbound policy refused the address a name resolved to: nothing was sent,
        // and sending again cannot help.
        if let Some(r) = scim_net::refusal_in(&e) {
            return ClientError::Refused(r.to_string());
        }
        ClientError::Transport(Arc::new(e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A lost answer cloned (one per operation of a Bulk request) is still a lost answer:
    /// it may have been processed, so each object is looked up, never re-sent blind.
    #[tokio::test]
    async fn a_cloned_transport_error_keeps_its_class() {
        let e = reqwest::Client::new()
            .get("http://127.0.0.1:9/")
            .send()
            .await
            .expect_err("nothing listens on the discard port");
        let e = ClientError::from(e);
        let copy = e.clone();
        assert!(
            copy.may_have_been_processed() && copy.is_transient(),
            "{copy:?}"
        );
    }
}
