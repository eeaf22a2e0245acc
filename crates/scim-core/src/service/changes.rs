//! Reading the change feed (docs/events.md): the events API, `scimd events` and the webhook
//! deliverer all page through here, from a cursor that is the sequence number of the last
//! event the reader has seen.
//!
//! Long polling: a reader that is caught up waits until a change on this node wakes it
//! ([`ChangeNotifier`], signalled by the resource service after each commit), or until the
//! next poll of the database (changes made through another node), or its deadline.

use crate::Store;
use crate::change::{ChangeBounds, ChangeEvent, TypeFilter, events_of};
use crate::error::{CoreError, CoreResult};
use crate::tenant::Tenant;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::Notify;

/// How often a waiting reader looks at the database for changes made on other nodes.
const POLL: Duration = Duration::from_millis(500);
/// Log rows read per query (a row may hold many member events).
const ROWS_PER_QUERY: u32 = 200;
/// Queries per page before a page that the type filter left empty is answered anyway (with
/// `has_more` and the position reached): a filtered read scans at most 1,000 rows.
const QUERIES_PER_PAGE: usize = 5;
/// The most event bytes in one page; past it the page ends early (`has_more`).
const MAX_PAGE_BYTES: usize = 8 << 20;
/// The most events in one page.
pub const MAX_PAGE: u32 = 1000;

/// Wakes the readers waiting on a tenant's feed (per node).
#[derive(Default)]
pub struct ChangeNotifier {
    tenants: Mutex<HashMap<i64, Arc<Notify>>>,
    /// Woken on every change of any tenant (the webhook deliverer waits on it).
    pub any: Notify,
}

impl ChangeNotifier {
    /// Called after a change to the tenant committed.
    pub fn changed(&self, tenant_id: i64) {
        let n = self.lock().get(&tenant_id).cloned();
        if let Some(n) = n {
            n.notify_waiters();
        }
        self.any.notify_waiters();
    }

    fn handle(&self, tenant_id: i64) -> Arc<Notify> {
        self.lock().entry(tenant_id).or_default().clone()
    }

    /// Drops the tenant's entry when no reader holds it any more.
    fn release(&self, tenant_id: i64, handle: Arc<Notify>) {
        let mut map = self.lock();
        drop(handle);
        if map
            .get(&tenant_id)
            .is_some_and(|n| Arc::strong_count(n) == 1)
        {
            map.remove(&tenant_id);
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<i64, Arc<Notify>>> {
        // A panic while holding this lock cannot leave the map inconsistent.
        self.tenants.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Where a reader starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FeedCursor {
    /// After this sequence number (0: from the beginning).
    After(i64),
    /// From now on: the answer is empty, with the current head as its cursor.
    Latest,
}

impl FeedCursor {
    pub fn parse(s: &str) -> CoreResult<Self> {
        let s = s.trim();
        if s.is_empty() {
            return Ok(FeedCursor::After(0));
        }
        if s.eq_ignore_ascii_case("latest") {
            return Ok(FeedCursor::Latest);
        }
        match s.parse::<i64>() {
            Ok(n) if n >= 0 => Ok(FeedCursor::After(n)),
            _ => Err(CoreError::Invalid(format!(
                "after must be an event sequence number (0 for the beginning) or 'latest', not '{}'",
                scim_proto::error::excerpt(s)
            ))),
        }
    }
}

/// One page of the feed.
#[derive(Debug, Clone)]
pub struct ChangePage {
    pub events: Vec<ChangeEvent>,
    /// The cursor for the next page: the last sequence this page covered (events the type
    /// filter left out are covered too).
    pub next: i64,
    /// Whether more events were already there when this page was read.
    pub has_more: bool,
}

#[derive(Clone)]
pub struct ChangeFeed {
    store: Arc<dyn crate::store::EventStore>,
    pub notifier: Arc<ChangeNotifier>,
}

impl ChangeFeed {
    pub fn new(store: Arc<dyn Store>, notifier: Arc<ChangeNotifier>) -> Self {
        Self { store, notifier }
    }

    pub async fn bounds(&self, tenant: &Tenant) -> CoreResult<ChangeBounds> {
        self.store.change_bounds(tenant.id).await
    }

    /// Up to `limit` events after the cursor; when there are none yet, waits up to `wait`
    /// for one. A cursor older than the retention is [`CoreError::Gone`].
    pub async fn page(
        &self,
        tenant: &Tenant,
        cursor: FeedCursor,
        limit: u32,
        types: &TypeFilter,
        wait: Duration,
        base_url: &str,
    ) -> CoreResult<ChangePage> {
        let bounds = self.store.change_bounds(tenant.id).await?;
        let after = match cursor {
            FeedCursor::Latest => {
                return Ok(ChangePage {
                    events: Vec::new(),
                    next: bounds.head,
                    has_more: false,
                });
            }
            FeedCursor::After(n) => n,
        };
        check_cursor(after, bounds)?;
        let limit = limit.clamp(1, MAX_PAGE) as usize;
        let deadline = tokio::time::Instant::now() + wait;
        let handle = self.notifier.handle(tenant.id);
        let result = loop {
            let woken = handle.notified();
            tokio::pin!(woken);
            // Registered before reading, so a commit between the read and the wait wakes us.
            woken.as_mut().enable();
            let page = self.read(tenant, after, limit, types, base_url).await?;
            let now = tokio::time::Instant::now();
            if !page.events.is_empty() || page.next > after || now >= deadline {
                break page;
            }
            tokio::select! {
                () = &mut woken => {}
                () = tokio::time::sleep(POLL) => {}
                () = tokio::time::sleep_until(deadline) => {}
            }
        };
        self.notifier.release(tenant.id, handle);
        Ok(result)
    }

    async fn read(
        &self,
        tenant: &Tenant,
        after: i64,
        limit: usize,
        types: &TypeFilter,
        base_url: &str,
    ) -> CoreResult<ChangePage> {
        let mut events = Vec::new();
        let mut next = after;
        let mut bytes = 0usize;
        for _ in 0..QUERIES_PER_PAGE {
            let rows = self.store.changes(tenant.id, next, ROWS_PER_QUERY).await?;
            let full = rows.len() as u32 == ROWS_PER_QUERY;
            for row in &rows {
                // Sequences are contiguous: a row starting past the next expected number
                // means rows in between were swept (retention), never silently skipped.
                if let Some(c) = &row.change {
                    let first = c.last_seq - c.count(row.operation) + 1;
                    if first > next + 1 {
                        return Err(CoreError::Gone(format!(
                            "events {} to {} are no longer retained: resynchronise through \
                             the SCIM API, then follow from ?after=latest taken before",
                            next + 1,
                            first - 1
                        )));
                    }
                }
                for e in events_of(row, &tenant.slug, base_url) {
                    if e.sequence <= next {
                        continue;
                    }
                    let e_seq = e.sequence;
                    if events.len() == limit {
                        return Ok(ChangePage {
                            events,
                            next,
                            has_more: true,
                        });
                    }
                    if types.allows(e.kind) {
                        // A page ends early past its byte budget (never before one event).
                        let size = serde_json::to_vec(&e).map_or(0, |v| v.len());
                        bytes = bytes.saturating_add(size);
                        if !events.is_empty() && bytes > MAX_PAGE_BYTES {
                            return Ok(ChangePage {
                                events,
                                next,
                                has_more: true,
                            });
                        }
                        events.push(e);
                    }
                    next = e_seq;
                }
            }
            if !full {
                return Ok(ChangePage {
                    events,
                    next,
                    has_more: false,
                });
            }
            if !events.is_empty() {
                break;
            }
        }
        Ok(ChangePage {
            events,
            next,
            has_more: true,
        })
    }
}

/// A cursor must lie within what is retained: not ahead of the head, not before the first
/// retained event (events in between would be lost without the reader knowing).
fn check_cursor(after: i64, b: ChangeBounds) -> CoreResult<()> {
    if after > b.head {
        return Err(CoreError::Invalid(format!(
            "cursor {after} is ahead of this tenant's change feed, whose last event is {}",
            b.head
        )));
    }
    if after + 1 < b.first {
        return Err(CoreError::Gone(format!(
            "events after {after} are no longer retained (the oldest kept is {}): \
             resynchronise through the SCIM API, then follow from ?after=latest taken before",
            b.first
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors() {
        assert_eq!(FeedCursor::parse("").unwrap(), FeedCursor::After(0));
        assert_eq!(FeedCursor::parse("42").unwrap(), FeedCursor::After(42));
        assert_eq!(FeedCursor::parse("latest").unwrap(), FeedCursor::Latest);
        assert!(FeedCursor::parse("-1").is_err());
        assert!(FeedCursor::parse("abc").is_err());
        let b = ChangeBounds {
            first: 10,
            head: 20,
        };
        assert!(check_cursor(9, b).is_ok());
        assert!(check_cursor(20, b).is_ok());
        assert!(matches!(check_cursor(8, b), Err(CoreError::Gone(_))));
        assert!(matches!(check_cursor(21, b), Err(CoreError::Invalid(_))));
        // Nothing retained, nothing lost: any cursor at the head is fine.
        let empty = ChangeBounds {
            first: 21,
            head: 20,
        };
        assert!(check_cursor(20, empty).is_ok());
        assert!(check_cursor(0, ChangeBounds { first: 1, head: 0 }).is_ok());
    }
}
