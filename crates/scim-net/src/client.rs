//! reqwest clients under the policy, and reads with a byte limit.

use crate::policy::{GuardedResolver, Policy};
use std::sync::Arc;

/// Redirects followed at most (within the origin).
const MAX_REDIRECTS: usize = 5;

/// A client builder whose connections go through the policy's resolver, following
/// redirects only within the origin (a target cannot bounce a request, or with 307/308 its
/// body, to another host). Callers still check the URL itself with
/// [`Policy::check_url`]: literal addresses are not resolved. A proxy from the environment
/// (`HTTPS_PROXY`) is still used (egress through a proxy is common); names are then resolved
/// by the proxy, whose own rules apply (docs/security.md).
pub fn builder(policy: &Policy) -> reqwest::ClientBuilder {
    let mut b = reqwest::Client::builder()
        .dns_resolver(Arc::new(GuardedResolver::new(policy.clone())))
        .redirect(redirect_policy());
    for (name, addr) in policy.own_loopback_names() {
        b = b.resolve(&name, addr);
    }
    b
}

/// Follows a redirect only to the same scheme, host and port, at most five times.
pub fn redirect_policy() -> reqwest::redirect::Policy {
    reqwest::redirect::Policy::custom(|attempt| {
        let same = attempt
            .previous()
            .first()
            .is_some_and(|first| first.origin() == attempt.url().origin());
        if attempt.previous().len() > MAX_REDIRECTS || !same {
            attempt.stop()
        } else {
            attempt.follow()
        }
    })
}

#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("the answer is larger than {limit} bytes")]
    TooLarge { limit: usize },
    #[error(transparent)]
    Http(#[from] reqwest::Error),
}

/// The body, refused past `limit` bytes: at once when `Content-Length` says so, else as
/// soon as the streamed bytes pass it (nothing past the limit is kept).
pub async fn read_capped(mut resp: reqwest::Response, limit: usize) -> Result<Vec<u8>, ReadError> {
    if resp.content_length().is_some_and(|n| n > limit as u64) {
        return Err(ReadError::TooLarge { limit });
    }
    let mut out = Vec::new();
    while let Some(chunk) = resp.chunk().await? {
        if out.len() + chunk.len() > limit {
            return Err(ReadError::TooLarge { limit });
        }
        out.extend_from_slice(&chunk);
    }
    Ok(out)
}
