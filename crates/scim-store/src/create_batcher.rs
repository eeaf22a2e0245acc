//! Group commit for creates on PostgreSQL: creates that arrive while earlier ones are being
//! written go to the database together, as one statement (`resources::create_many`).
//!
//! Why: on PostgreSQL each create is a statement and a commit of its own, and most of the
//! database's time per create is the cost of a statement and a commit (the round trip, the
//! executor's start, the WAL flush it waits for), not the rows. Here at most
//! [`MAX_RUNNING`] statements are in flight per node; a create that finds them all busy
//! queues, and the next free one takes the whole queue. Nothing waits for company: a
//! create on an idle node is written at once, alone (`create_in_one_statement`), and
//! batches only form under load. Every caller is answered after its statement returned,
//! so acknowledged still means durable.
//!
//! A resource that a unique index refuses inside a batch (a taken userName) is skipped by
//! the statement and created alone, which gives it the exact error; if the batch statement
//! fails as a whole, every one of its creates is tried alone the same way, so one bad
//! request never fails the others. The batches run on tasks of their own: a caller that
//! goes away never strands the rest.

use crate::StoreError;
use crate::conn::Conn;
use crate::resources::write::{NewResource, create_in_one_statement, create_many};
use scim_core::StoredResource;
use std::sync::{Arc, Mutex};
use tokio::sync::oneshot;

type Reply = oneshot::Sender<Result<StoredResource, StoreError>>;

/// Statements in flight at once from one node (each on its own connection).
const MAX_RUNNING: usize = 2;
/// The most creates one statement carries.
const MAX_BATCH: usize = 128;

#[derive(Default)]
struct Queue {
    running: usize,
    waiting: Vec<(NewResource, Reply)>,
}

#[derive(Clone)]
pub(crate) struct CreateBatcher {
    pool: sqlx::PgPool,
    queue: Arc<Mutex<Queue>>,
}

impl CreateBatcher {
    pub fn new(pool: sqlx::PgPool) -> Self {
        Self {
            pool,
            queue: Arc::default(),
        }
    }

    /// Creates `item` in the next statement.
    pub async fn create(&self, item: NewResource) -> Result<StoredResource, StoreError> {
        let (reply, answer) = oneshot::channel();
        let start = {
            let mut q = self.queue.lock().unwrap_or_else(|p| p.into_inner());
            q.waiting.push((item, reply));
            let start = q.running < MAX_RUNNING;
            q.running += usize::from(start);
            start
        };
        if start {
            let this = self.clone();
            tokio::spawn(async move { this.drain().await });
        }
        answer.await.unwrap_or(Err(StoreError::WriterStopped))
    }

    /// Writes what is queued, batch after batch, until the queue is empty.
    async fn drain(&self) {
        loop {
            let batch = {
                let mut q = self.queue.lock().unwrap_or_else(|p| p.into_inner());
                if q.waiting.is_empty() {
                    q.running -= 1;
                    return;
                }
                let n = q.waiting.len().min(MAX_BATCH);
                q.waiting.drain(..n).collect::<Vec<_>>()
            };
            self.run(batch).await;
        }
    }

    async fn run(&self, mut batch: Vec<(NewResource, Reply)>) {
        if batch.len() == 1 {
            if let Some((item, reply)) = batch.pop() {
                let _ = reply.send(self.alone(&item).await);
            }
            return;
        }
        let (items, replies): (Vec<_>, Vec<_>) = batch.into_iter().unzip();
        let written = async {
            let mut conn = self.pool.acquire().await?;
            create_many(&mut Conn::Pg(&mut conn), &items).await
        }
        .await;
        let answers = match written {
            Ok(answers) => answers,
            Err(e) => {
                // Nothing of the statement was written: each create on its own.
                tracing::debug!(error = %e, creates = items.len(), "a batch of creates failed");
                vec![None; items.len()]
            }
        };
        for ((item, reply), answer) in items.into_iter().zip(replies).zip(answers) {
            match answer {
                Some(stored) => {
                    let _ = reply.send(Ok(stored));
                }
                None => {
                    let this = self.clone();
                    tokio::spawn(async move {
                        let _ = reply.send(this.alone(&item).await);
                    });
                }
            }
        }
    }

    /// One create in a statement of its own (its own error, if it has one).
    async fn alone(&self, item: &NewResource) -> Result<StoredResource, StoreError> {
        let mut conn = self.pool.acquire().await?;
        create_in_one_statement(
            &mut Conn::Pg(&mut conn),
            item.tenant_id,
            item.kind,
            &item.id,
            &item.write,
            item.now,
        )
        .await
    }
}
