//! A webhook receiver on loopback for delivery tests, with faults it can be switched into:
//! answering an error status, hanging past the sender's time limit, or being down (its
//! listener closed, then opened again on the same port). It runs on a thread and runtime of
//! its own, so blocking tests can drive it too.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use serde_json::Value;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// What the receiver does with the next request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// 204, and the delivery is recorded.
    Accept,
    /// This status, not recorded.
    Status(u16),
    /// Waits this long, then records and answers 204: unless the sender gave up first (its
    /// time limit is shorter), which cuts the request off unrecorded.
    Hang(Duration),
}

/// One accepted delivery.
#[derive(Debug, Clone)]
pub struct Received {
    pub id: String,
    pub timestamp: String,
    pub signature: String,
    pub body: String,
    pub json: Value,
}

impl Received {
    pub fn sequence(&self) -> i64 {
        self.json["sequence"].as_i64().unwrap_or(-1)
    }
}

#[derive(Clone)]
struct Shared {
    mode: Arc<Mutex<Mode>>,
    got: Arc<Mutex<Vec<Received>>>,
    /// Requests seen in any mode.
    hits: Arc<Mutex<u64>>,
}

pub struct Receiver {
    pub port: u16,
    pub url: String,
    shared: Shared,
    stop: Option<(
        tokio::sync::oneshot::Sender<()>,
        std::thread::JoinHandle<()>,
    )>,
}

async fn receive(State(s): State<Shared>, headers: HeaderMap, body: Bytes) -> StatusCode {
    *s.hits.lock().unwrap() += 1;
    let mode = *s.mode.lock().unwrap();
    if let Mode::Hang(d) = mode {
        // A sender that gives up first drops the connection, and this future with it.
        tokio::time::sleep(d).await;
    }
    match mode {
        Mode::Status(code) => StatusCode::from_u16(code).unwrap(),
        Mode::Hang(_) | Mode::Accept => {
            let h = |k: &str| {
                headers
                    .get(k)
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or_default()
                    .to_string()
            };
            let text = String::from_utf8_lossy(&body).into_owned();
            s.got.lock().unwrap().push(Received {
                id: h("webhook-id"),
                timestamp: h("webhook-timestamp"),
                signature: h("webhook-signature"),
                json: serde_json::from_str(&text).unwrap_or(Value::Null),
                body: text,
            });
            StatusCode::NO_CONTENT
        }
    }
}

impl Receiver {
    /// Starts on a free port.
    pub fn start() -> Self {
        let port = crate::process::free_port();
        let shared = Shared {
            mode: Arc::new(Mutex::new(Mode::Accept)),
            got: Arc::default(),
            hits: Arc::default(),
        };
        let mut r = Self {
            port,
            url: format!("http://127.0.0.1:{port}/hook"),
            shared,
            stop: None,
        };
        r.up();
        r
    }

    /// Opens the listener (again).
    pub fn up(&mut self) {
        if self.stop.is_some() {
            return;
        }
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let shared = self.shared.clone();
        let port = self.port;
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
                    .await
                    .unwrap();
                ready_tx.send(()).unwrap();
                let app = axum::Router::new()
                    .route("/hook", axum::routing::post(receive))
                    .with_state(shared);
                axum::serve(listener, app)
                    .with_graceful_shutdown(async {
                        let _ = rx.await;
                    })
                    .await
                    .unwrap();
            });
        });
        ready_rx.recv().unwrap();
        self.stop = Some((tx, thread));
    }

    /// Closes the listener: the sender's connections are refused until [`Receiver::up`].
    /// (A request hanging in [`Mode::Hang`] is cut off.)
    pub fn down(&mut self) {
        if let Some((tx, thread)) = self.stop.take() {
            let _ = tx.send(());
            // Graceful shutdown waits for in-flight requests; a hanging one ends with its
            // sleep, which the sender has given up on by then.
            thread.join().unwrap();
        }
    }

    pub fn set_mode(&self, m: Mode) {
        *self.shared.mode.lock().unwrap() = m;
    }

    pub fn received(&self) -> Vec<Received> {
        self.shared.got.lock().unwrap().clone()
    }

    pub fn hits(&self) -> u64 {
        *self.shared.hits.lock().unwrap()
    }

    /// Waits until `pred` holds for what was received (panics after `limit`).
    pub fn wait_for(&self, limit: Duration, what: &str, pred: impl Fn(&[Received]) -> bool) {
        let start = std::time::Instant::now();
        loop {
            if pred(&self.received()) {
                return;
            }
            assert!(
                start.elapsed() < limit,
                "waited {limit:?} for {what}; received {} deliveries",
                self.received().len()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Receiver {
    /// [`Receiver::wait_for`] for async tests (it yields instead of blocking a worker).
    pub async fn until(&self, limit: Duration, what: &str, pred: impl Fn(&[Received]) -> bool) {
        let start = std::time::Instant::now();
        while !pred(&self.received()) {
            assert!(
                start.elapsed() < limit,
                "waited {limit:?} for {what}; received {} deliveries",
                self.received().len()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.down();
    }
}
