//! What an app made in the console may name on this server (docs/security.md, "Files").
//!
//! A console operator is not the machine's administrator: an app they make must not read a
//! file the process can read (the TLS key, `scimd.toml`) or a variable it was started with
//! (the database URL), or it would show its lines as "users". So, for apps made or edited in
//! the console:
//! - a file on the server (`source.path`, `source.groups_path`, `source.tls_ca_file`) must
//!   be inside the configured source directory (`sync_source_dir`), after every symlink is
//!   resolved; without one, only uploaded files are accepted;
//! - credentials are typed in (and sealed), never taken from `*_env` or `*_file`.
//!
//! Job files on the command line are the administrator's and are not confined.

use crate::error::{SyncError, SyncResult};
use crate::job::JobSpec;
use crate::source::SourceSpec;
use std::path::{Path, PathBuf};

/// The console's limits on local files.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Confinement {
    /// The only directory whose files console apps may read (`sync_source_dir`).
    pub source_dir: Option<PathBuf>,
}

impl Confinement {
    /// The spec with its local paths checked and made canonical, or why it is refused. No
    /// file is opened: a refused path's contents are never read.
    pub fn vet(&self, spec: &JobSpec) -> SyncResult<JobSpec> {
        if let Some(key) = local_credentials(spec).first() {
            return Err(SyncError::Job(format!(
                "{key} reads a credential from this server: in the console, type the \
                 credential instead (it is sealed); variables and files are for job files \
                 on the command line"
            )));
        }
        let mut out = spec.clone();
        for (key, path) in local_paths(&mut out.source) {
            *path = self.confined(key, path)?;
        }
        Ok(out)
    }

    fn confined(&self, key: &str, path: &Path) -> SyncResult<PathBuf> {
        let Some(dir) = &self.source_dir else {
            return Err(SyncError::Job(format!(
                "{key}: files on the server are off for apps made in the console: upload the \
                 file instead, or set sync_source_dir in scimd.toml to the folder your exports \
                 are written to"
            )));
        };
        let root = dir.canonicalize().map_err(|e| {
            SyncError::Job(format!(
                "the source directory {} cannot be used: {e}",
                dir.display()
            ))
        })?;
        let joined = if path.is_relative() {
            root.join(path)
        } else {
            path.to_path_buf()
        };
        let outside = || {
            SyncError::Job(format!(
                "{key}: only files inside the source directory {} can be read (a name \
                 relative to it, such as people.csv)",
                root.display()
            ))
        };
        if path
            .components()
            .any(|c| matches!(c, std::path::Component::ParentDir))
        {
            return Err(outside());
        }
        // Canonical: every symlink resolved, so nothing points out of the folder.
        let real = joined.canonicalize().map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound if joined.starts_with(&root) => SyncError::Job(format!(
                "{key}: there is no file {} in the source directory",
                joined.strip_prefix(&root).unwrap_or(&joined).display()
            )),
            _ => outside(),
        })?;
        if !real.starts_with(&root) {
            return Err(outside());
        }
        if !real.is_file() {
            return Err(SyncError::Job(format!(
                "{key}: {} is not a file",
                real.display()
            )));
        }
        Ok(real)
    }
}

/// The credential keys a job takes from this server's variables or files.
pub fn local_credentials(spec: &JobSpec) -> Vec<&'static str> {
    let mut keys = Vec::new();
    let mut named = |key: &'static str, set: bool| {
        if set {
            keys.push(key);
        }
    };
    named("target.token_env", spec.target.token_env.is_some());
    named("target.token_file", spec.target.token_file.is_some());
    named(
        "notify.webhook_secret_env",
        spec.notify.webhook_secret_env.is_some(),
    );
    named(
        "notify.webhook_secret_file",
        spec.notify.webhook_secret_file.is_some(),
    );
    match &spec.source {
        SourceSpec::Scim(s) => {
            named("source.token_env", s.token_env.is_some());
            named("source.token_file", s.token_file.is_some());
        }
        SourceSpec::Ldap(l) => {
            named("source.password_env", l.password_env.is_some());
            named("source.password_file", l.password_file.is_some());
        }
        SourceSpec::Google(g) => {
            named("source.credentials_env", g.credentials_env.is_some());
            named("source.credentials_file", g.credentials_file.is_some());
        }
        SourceSpec::Entra(e) => {
            named("source.client_secret_env", e.client_secret_env.is_some());
            named("source.client_secret_file", e.client_secret_file.is_some());
            named(
                "source.certificate_key_env",
                e.certificate_key_env.is_some(),
            );
            named(
                "source.certificate_key_file",
                e.certificate_key_file.is_some(),
            );
        }
        SourceSpec::Csv(_) | SourceSpec::Json(_) | SourceSpec::Tenant(_) => {}
    }
    keys
}

/// The source's paths to local files, by key.
fn local_paths(source: &mut SourceSpec) -> Vec<(&'static str, &mut PathBuf)> {
    match source {
        SourceSpec::Csv(f) | SourceSpec::Json(f) => [
            ("source.path", f.path.as_mut()),
            ("source.groups_path", f.groups_path.as_mut()),
        ]
        .into_iter()
        .filter_map(|(k, p)| p.map(|p| (k, p)))
        .collect(),
        SourceSpec::Ldap(l) => l
            .tls_ca_file
            .as_mut()
            .map(|p| ("source.tls_ca_file", p))
            .into_iter()
            .collect(),
        SourceSpec::Entra(e) => e
            .certificate_file
            .as_mut()
            .map(|p| ("source.certificate_file", p))
            .into_iter()
            .collect(),
        SourceSpec::Scim(_) | SourceSpec::Tenant(_) | SourceSpec::Google(_) => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(source: &str) -> JobSpec {
        JobSpec::parse(
            &format!(
                "name = \"hr\"\n[source]\n{source}\n[target]\nurl = \"https://app.example/scim/v2\"\ntoken = \"t\"\n"
            ),
            None,
        )
        .unwrap()
    }

    #[test]
    fn console_paths_stay_in_the_source_directory() {
        let dir = tempfile::tempdir().unwrap();
        let exports = dir.path().join("exports");
        std::fs::create_dir(&exports).unwrap();
        std::fs::write(exports.join("people.csv"), "id\n1\n").unwrap();
        std::fs::write(dir.path().join("secret.key"), "KEY").unwrap();
        #[cfg(unix)]
        std::os::unix::fs::symlink(dir.path().join("secret.key"), exports.join("link.csv"))
            .unwrap();
        let c = Confinement {
            source_dir: Some(exports.clone()),
        };
        let csv = |p: &str| spec(&format!("kind = \"csv\"\npath = \"{p}\"\nid = \"id\""));
        let ok = c.vet(&csv("people.csv")).unwrap();
        assert_eq!(
            ok.source.file().unwrap().path.as_deref(),
            Some(exports.canonicalize().unwrap().join("people.csv").as_path())
        );
        for bad in [
            "../secret.key".to_string(),
            dir.path().join("secret.key").display().to_string(),
            "/etc/passwd".into(),
            #[cfg(unix)]
            "link.csv".into(),
        ] {
            let e = c.vet(&csv(&bad)).expect_err(&bad).to_string();
            assert!(e.contains("only files inside"), "{bad}: {e}");
            assert!(!e.contains("KEY"));
        }
        assert!(
            c.vet(&csv("missing.csv"))
                .unwrap_err()
                .to_string()
                .contains("no file")
        );
        let off = Confinement::default().vet(&csv("people.csv")).unwrap_err();
        assert!(off.to_string().contains("upload the file"), "{off}");
    }

    #[test]
    fn console_credentials_are_typed_not_read_from_the_server() {
        let c = Confinement::default();
        let scim = spec(
            "kind = \"scim\"\nurl = \"https://idp.example/scim\"\ntoken_env = \"SCIMD_DATABASE_URL\"",
        );
        assert!(
            c.vet(&scim)
                .unwrap_err()
                .to_string()
                .contains("source.token_env")
        );
        let ldap = spec(
            "kind = \"ldap\"\nurl = \"ldap://dir.example\"\nbase_dn = \"dc=x\"\nbind_dn = \"cn=a\"\npassword_file = \"/etc/scimd/scimd.toml\"",
        );
        assert!(
            c.vet(&ldap)
                .unwrap_err()
                .to_string()
                .contains("source.password_file")
        );
        let tenant = spec("kind = \"tenant\"\ntenant = \"a\"");
        assert!(c.vet(&tenant).is_ok());
    }
}
