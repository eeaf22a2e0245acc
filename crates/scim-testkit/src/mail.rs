//! A real SMTP server for the notification tests: PyPI's aiosmtpd, started on a loopback
//! port with its Maildir handler, so a test reads the messages exactly as delivered.
//! `scripts/test.sh` installs it and names its Python in `SCIMD_AIOSMTPD_PYTHON`; without
//! it the tests that need it skip (and fail when `SCIMD_REQUIRE_PEERS` is set).

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct SmtpServer {
    /// `smtp://127.0.0.1:PORT` (plain SMTP, lettre's form).
    pub url: String,
    dir: tempfile::TempDir,
    child: Child,
}

/// A delivered message: its headers and body as text.
#[derive(Debug, Clone)]
pub struct Mail {
    pub to: String,
    pub subject: String,
    pub text: String,
}

impl SmtpServer {
    /// `None` when aiosmtpd is not installed (and the peers are not required).
    pub fn start() -> Option<Self> {
        let python = match std::env::var("SCIMD_AIOSMTPD_PYTHON") {
            Ok(p) if !p.is_empty() => p,
            _ => {
                assert!(
                    std::env::var_os("SCIMD_REQUIRE_PEERS").is_none(),
                    "SCIMD_AIOSMTPD_PYTHON is not set but SCIMD_REQUIRE_PEERS is"
                );
                eprintln!("skipping: no aiosmtpd (set SCIMD_AIOSMTPD_PYTHON)");
                return None;
            }
        };
        let dir = tempfile::tempdir().expect("temp dir");
        let maildir = dir.path().join("mail");
        let port = crate::process::free_port();
        let child = Command::new(python)
            .args(["-m", "aiosmtpd", "-n", "-l"])
            .arg(format!("127.0.0.1:{port}"))
            .args(["-c", "aiosmtpd.handlers.Mailbox"])
            .arg(&maildir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start aiosmtpd");
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "aiosmtpd did not listen");
            std::thread::sleep(Duration::from_millis(100));
        }
        Some(Self {
            url: format!("smtp://127.0.0.1:{port}"),
            dir,
            child,
        })
    }

    /// The messages delivered so far.
    pub fn messages(&self) -> Vec<Mail> {
        let mut out = Vec::new();
        for sub in ["new", "cur"] {
            let Ok(entries) = std::fs::read_dir(self.dir.path().join("mail").join(sub)) else {
                continue;
            };
            for e in entries.flatten() {
                let Ok(raw) = std::fs::read_to_string(e.path()) else {
                    continue;
                };
                let header = |name: &str| {
                    raw.lines()
                        .find_map(|l| {
                            l.strip_prefix(name)
                                .and_then(|r| r.strip_prefix(':'))
                                .map(|v| v.trim().to_string())
                        })
                        .unwrap_or_default()
                };
                out.push(Mail {
                    to: header("To"),
                    subject: header("Subject"),
                    text: raw.clone(),
                });
            }
        }
        out
    }

    /// Waits up to `timeout` for a message whose subject contains `needle`.
    pub async fn wait_for(&self, needle: &str, timeout: Duration) -> Option<Mail> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(m) = self
                .messages()
                .into_iter()
                .find(|m| m.subject.contains(needle))
            {
                return Some(m);
            }
            if Instant::now() > deadline {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

impl Drop for SmtpServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
