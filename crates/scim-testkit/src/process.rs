//! Driving the scimd binary: CLI runs and a `serve` process. Integration tests of the binary
//! pass its path (`env!("CARGO_BIN_EXE_scimd")`, which Cargo sets only for them).

use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Command, Stdio};

/// The tests' receivers, emulators and peers listen on loopback, which scimd's outbound
/// policy refuses by default: test processes allow it (the security tests set it back).
const ALLOW_LOOPBACK: (&str, &str) = ("SCIMD_OUTBOUND_ALLOW_LOOPBACK", "true");

/// Runs a CLI command in `dir`; returns (success, stdout, stderr).
pub fn scimd(bin: &str, dir: &std::path::Path, args: &[&str]) -> (bool, String, String) {
    let out = Command::new(bin)
        .args(args)
        .current_dir(dir)
        .env_remove("SCIMD_DATABASE_URL")
        .env(ALLOW_LOOPBACK.0, ALLOW_LOOPBACK.1)
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into(),
        String::from_utf8_lossy(&out.stderr).into(),
    )
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Runs SQL on the local PostgreSQL's `postgres` database.
pub fn psql(sql: &str) {
    let ok = Command::new("psql")
        .args(["-h", "127.0.0.1", "-U", "postgres", "-qc", sql, "postgres"])
        .status()
        .unwrap();
    assert!(ok.success(), "psql {sql}");
}

/// A running `scimd serve`.
pub struct Server {
    pub child: Child,
    /// The tenant `default`'s SCIM base URL.
    pub url: String,
    /// The address it listens on (`127.0.0.1:port`).
    pub listen: String,
    /// The bootstrap secret, printed on the first start only.
    pub secret: Option<String>,
    /// What it printed on stdout up to "Listening on".
    pub printed: String,
    stderr: std::thread::JoinHandle<String>,
}

impl Server {
    /// Starts `scimd serve` in `dir` on a free port, optionally on `database_url`, with extra
    /// environment variables; returns once it listens.
    pub fn start(
        bin: &str,
        dir: &std::path::Path,
        database_url: Option<&str>,
        env: &[(&str, &str)],
    ) -> Self {
        let listen = format!("127.0.0.1:{}", free_port());
        let mut args = vec!["serve".to_string(), "--listen".into(), listen.clone()];
        if let Some(u) = database_url {
            args.extend(["--database-url".to_string(), u.to_string()]);
        }
        let mut cmd = Command::new(bin);
        cmd.args(&args)
            .current_dir(dir)
            .env_remove("SCIMD_DATABASE_URL")
            .env(ALLOW_LOOPBACK.0, ALLOW_LOOPBACK.1)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().unwrap();
        let err = child.stderr.take().unwrap();
        let stderr = std::thread::spawn(move || {
            let mut s = String::new();
            let _ = BufReader::new(err).read_to_string(&mut s);
            s
        });
        let (mut secret, mut printed) = (None, String::new());
        for line in BufReader::new(child.stdout.take().unwrap()).lines() {
            let line = line.unwrap();
            printed.push_str(&line);
            printed.push('\n');
            if let Some(s) = line.strip_prefix("Secret:") {
                secret = Some(s.trim().to_string());
            }
            if line.starts_with("Listening on") {
                break;
            }
        }
        assert!(
            printed.contains("Listening on"),
            "scimd did not start: {printed}"
        );
        let url = format!("http://{listen}/t/default/scim/v2");
        Self {
            child,
            url,
            listen,
            secret,
            printed,
            stderr,
        }
    }

    /// SIGTERM; asserts a clean exit; returns what it logged on stderr.
    pub fn stop(mut self) -> String {
        Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        let code = self.child.wait().unwrap();
        assert!(code.success(), "{code:?}");
        self.stderr.join().unwrap()
    }

    /// SIGKILL: no chance to clean up.
    pub fn kill(mut self) {
        Command::new("kill")
            .args(["-KILL", &self.child.id().to_string()])
            .status()
            .unwrap();
        self.child.wait().unwrap();
    }
}
