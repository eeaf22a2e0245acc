//! A real OpenLDAP for the engine's LDAP source tests: Debian's `slapd`, started on a
//! loopback port with an mdb database under a temp dir (suffix `dc=example,dc=com`, root
//! `cn=admin,dc=example,dc=com` / `secret`, the core, cosine, inetorgperson and nis
//! schemas), changed with `ldapmodify` as an admin would. `scripts/test.sh` installs
//! `slapd` and `ldap-utils`; without them the tests skip (and fail when
//! `SCIMD_REQUIRE_PEERS` is set).

use std::io::Write;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const SUFFIX: &str = "dc=example,dc=com";
pub const ADMIN_DN: &str = "cn=admin,dc=example,dc=com";
pub const ADMIN_PASSWORD: &str = "secret";

pub struct Slapd {
    /// `ldap://127.0.0.1:PORT`
    pub url: String,
    /// With [`Slapd::start_tls`]: `ldaps://127.0.0.1:PORT` and the CA (PEM) that signed the
    /// server's certificate (for 127.0.0.1; StartTLS on `url` works too).
    pub ldaps_url: Option<String>,
    pub ca_file: Option<std::path::PathBuf>,
    _dir: tempfile::TempDir,
    child: Child,
}

const SLAPD: &str = "/usr/sbin/slapd";

impl Slapd {
    /// `None` when slapd is not installed (and the peers are not required).
    pub fn start() -> Option<Self> {
        Self::start_with(false, None)
    }

    /// With the syncprov overlay, so syncrepl (RFC 4533) consumers can sync: with a session
    /// log the server reports deletes itself (the delete phase), without one it lists what is
    /// still present (the present phase).
    pub fn start_syncrepl(session_log: bool) -> Option<Self> {
        Self::start_with(false, Some(session_log))
    }

    /// Also TLS: a throwaway CA and a certificate for 127.0.0.1 (made with openssl),
    /// ldaps:// on a second port and StartTLS on the first.
    pub fn start_tls() -> Option<Self> {
        Self::start_with(true, None)
    }

    fn start_with(tls: bool, syncprov: Option<bool>) -> Option<Self> {
        if !std::path::Path::new(SLAPD).exists() || which("ldapmodify").is_none() {
            assert!(
                std::env::var_os("SCIMD_REQUIRE_PEERS").is_none(),
                "slapd or ldap-utils missing but SCIMD_REQUIRE_PEERS is set"
            );
            eprintln!("skipping: no slapd (apt-get install slapd ldap-utils)");
            return None;
        }
        let dir = tempfile::tempdir().expect("temp dir");
        let db = dir.path().join("db");
        std::fs::create_dir_all(&db).expect("db dir");
        let conf = dir.path().join("slapd.conf");
        let tls_lines = if tls {
            make_certificates(dir.path());
            let p = |f: &str| dir.path().join(f).display().to_string();
            format!(
                "TLSCACertificateFile {}\nTLSCertificateFile {}\nTLSCertificateKeyFile {}\n",
                p("ca.pem"),
                p("server.pem"),
                p("server.key")
            )
        } else {
            String::new()
        };
        std::fs::write(
            &conf,
            format!(
                "{tls_lines}include /etc/ldap/schema/core.schema\n\
                 include /etc/ldap/schema/cosine.schema\n\
                 include /etc/ldap/schema/inetorgperson.schema\n\
                 include /etc/ldap/schema/nis.schema\n\
                 modulepath /usr/lib/ldap\n\
                 moduleload back_mdb\n\
                 moduleload syncprov\n\
                 pidfile {dir}/slapd.pid\n\
                 database mdb\n\
                 maxsize 104857600\n\
                 suffix \"{SUFFIX}\"\n\
                 rootdn \"{ADMIN_DN}\"\n\
                 rootpw {ADMIN_PASSWORD}\n\
                 directory {db}\n\
                 index objectClass eq\n\
                 index entryUUID eq\n\
                 {overlay}",
                dir = dir.path().display(),
                db = db.display(),
                overlay = match syncprov {
                    None => "",
                    Some(true) => "index entryCSN eq\noverlay syncprov\nsyncprov-checkpoint 100 10\nsyncprov-sessionlog 1000\n",
                    Some(false) => "index entryCSN eq\noverlay syncprov\nsyncprov-checkpoint 100 10\n",
                }
            ),
        )
        .expect("write slapd.conf");
        // A port from `free_port` can be taken by another test's server before slapd binds
        // it; slapd then exits, and the port answers for someone else. So the base entries
        // are added and our slapd must still be running afterwards; otherwise it starts
        // again on other ports with an empty database.
        for attempt in 1..=5 {
            let mut s = Self::launch(&conf, dir.path(), tls);
            let base = format!(
                "dn: {SUFFIX}\nobjectClass: dcObject\nobjectClass: organization\ndc: example\no: Example\n\n\
                 dn: ou=People,{SUFFIX}\nobjectClass: organizationalUnit\nou: People\n\n\
                 dn: ou=Groups,{SUFFIX}\nobjectClass: organizationalUnit\nou: Groups\n"
            );
            let added = s.try_ldif("ldapadd", &base);
            match (added, s.child.try_wait()) {
                (Ok(()), Ok(None)) => {
                    s._dir = dir;
                    return Some(s);
                }
                (added, exited) => {
                    eprintln!("slapd start {attempt} failed ({added:?}, {exited:?}); again");
                    drop(s);
                    std::fs::remove_dir_all(&db).expect("clear db dir");
                    std::fs::create_dir_all(&db).expect("db dir");
                }
            }
        }
        panic!("slapd did not start on a free port in 5 attempts");
    }

    /// Starts slapd with `conf` on fresh ports and waits until its port accepts connections.
    /// Its temp dir is a placeholder until the caller hands over the real one.
    fn launch(conf: &std::path::Path, dir: &std::path::Path, tls: bool) -> Self {
        let port = crate::process::free_port();
        let url = format!("ldap://127.0.0.1:{port}");
        let ldaps_port = tls.then(crate::process::free_port);
        let ldaps_url = ldaps_port.map(|p| format!("ldaps://127.0.0.1:{p}"));
        let listen = match &ldaps_url {
            Some(s) => format!("{url}/ {s}/"),
            None => format!("{url}/"),
        };
        // `-d 0`: stay in the foreground (so the test owns the process), log nothing.
        let child = Command::new(SLAPD)
            .arg("-f")
            .arg(conf)
            .arg("-h")
            .arg(listen)
            .args(["-d", "0"])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start slapd");
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "slapd did not listen");
            std::thread::sleep(Duration::from_millis(100));
        }
        Self {
            url,
            ldaps_url,
            ca_file: tls.then(|| dir.join("ca.pem")),
            _dir: tempfile::tempdir().expect("temp dir"),
            child,
        }
    }

    /// Runs `ldapadd` or `ldapmodify` (or `ldapdelete`, one DN per line) with `ldif` on
    /// stdin, as the admin; panics with its output when it fails.
    pub fn ldif(&self, tool: &str, ldif: &str) {
        if let Err(e) = self.try_ldif(tool, ldif) {
            panic!("{e}");
        }
    }

    /// [`Slapd::ldif`], with the tool's output as the error when it fails.
    fn try_ldif(&self, tool: &str, ldif: &str) -> Result<(), String> {
        let mut child = Command::new(tool)
            .args(["-x", "-H", &self.url, "-D", ADMIN_DN, "-w", ADMIN_PASSWORD])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("{tool}: {e}"));
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(ldif.as_bytes())
            .expect("write ldif");
        let out = child.wait_with_output().expect("wait");
        match out.status.success() {
            true => Ok(()),
            false => Err(format!(
                "{tool} failed: {}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            )),
        }
    }

    pub fn add(&self, ldif: &str) {
        self.ldif("ldapadd", ldif);
    }

    pub fn modify(&self, ldif: &str) {
        self.ldif("ldapmodify", ldif);
    }

    pub fn delete(&self, dn: &str) {
        self.ldif("ldapdelete", &format!("{dn}\n"));
    }
}

/// ca.pem / ca.key, and server.pem / server.key for IP 127.0.0.1 signed by it.
fn make_certificates(dir: &std::path::Path) {
    let run = |args: &[&str]| {
        let out = Command::new("openssl")
            .args(args)
            .current_dir(dir)
            .output()
            .expect("openssl");
        assert!(
            out.status.success(),
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    std::fs::write(
        dir.join("server.ext"),
        "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n",
    )
    .expect("write server.ext");
    run(&[
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
        "-days",
        "2",
        "-subj",
        "/CN=scimd test CA",
        "-addext",
        "basicConstraints=critical,CA:TRUE",
        "-addext",
        "keyUsage=critical,keyCertSign,cRLSign",
    ]);
    run(&[
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "server.key",
        "-out",
        "server.csr",
        "-subj",
        "/CN=127.0.0.1",
    ]);
    run(&[
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        "server.pem",
        "-days",
        "2",
        "-extfile",
        "server.ext",
    ]);
}

fn which(tool: &str) -> Option<std::path::PathBuf> {
    std::env::var_os("PATH").and_then(|p| {
        std::env::split_paths(&p)
            .map(|d| d.join(tool))
            .find(|f| f.exists())
    })
}

impl Drop for Slapd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
