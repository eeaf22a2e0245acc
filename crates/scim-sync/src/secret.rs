//! Credentials, one way for all of them (the target's token, a SCIM source's token, an LDAP
//! bind password, a notification webhook's signing secret): given inline in the job file
//! (sealed in the database at import, never stored or shown in clear), in a file, or in an
//! environment variable. Precedence, trimming and messages are the same for every one.

use crate::error::{SyncError, SyncResult};
use std::path::{Path, PathBuf};

/// Where one credential comes from, as the job file names it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SecretRef<'a> {
    /// The job-file key it is known by (`target.token`, `source.password`), for messages.
    pub key: &'static str,
    pub inline: Option<&'a str>,
    pub env: Option<&'a str>,
    pub file: Option<&'a Path>,
}

impl SecretRef<'_> {
    /// Whether the job names this credential at all.
    pub fn is_named(&self) -> bool {
        self.inline.is_some() || self.env.is_some() || self.file.is_some()
    }

    /// The credential: inline first, then the file (relative paths against `base`), then the
    /// variable, then what was sealed at import (`sealed`). Surrounding whitespace (a file's
    /// final newline) is never part of it; an empty one is an error that names its key.
    /// `Ok(None)` when the job names none and nothing is sealed.
    pub fn resolve(
        &self,
        base: Option<&Path>,
        sealed: Option<String>,
    ) -> SyncResult<Option<String>> {
        self.resolve_with(base, sealed, &|var| std::env::var(var).ok())
    }

    /// [`resolve`](Self::resolve) with the environment read through `env`.
    pub fn resolve_with(
        &self,
        base: Option<&Path>,
        sealed: Option<String>,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> SyncResult<Option<String>> {
        let key = self.key;
        let found = if let Some(v) = self.inline {
            Some((v.to_string(), key.to_string()))
        } else if let Some(f) = self.file {
            let path: PathBuf = match base {
                Some(b) if f.is_relative() => b.join(f),
                _ => f.to_path_buf(),
            };
            let text = std::fs::read_to_string(&path).map_err(|e| {
                SyncError::Job(format!("cannot read {key}_file {}: {e}", path.display()))
            })?;
            Some((text, format!("{key}_file {}", path.display())))
        } else if let Some(var) = self.env {
            let text = env(var).ok_or_else(|| {
                SyncError::Job(format!("{key}_env: the variable {var} is not set"))
            })?;
            Some((text, format!("{key}_env {var}")))
        } else {
            sealed.map(|s| (s, format!("{key} (sealed)")))
        };
        match found {
            None => Ok(None),
            Some((text, from)) => {
                let t = text.trim();
                if t.is_empty() {
                    return Err(SyncError::Job(format!("{from} is empty")));
                }
                Ok(Some(t.to_string()))
            }
        }
    }

    /// [`resolve`](Self::resolve), where a missing credential is an error saying how to
    /// give one.
    pub fn require(&self, base: Option<&Path>, sealed: Option<String>) -> SyncResult<String> {
        self.resolve(base, sealed)?.ok_or_else(|| {
            let k = self.key;
            SyncError::Job(format!(
                "no {k}: set {k}_env or {k}_file (or {k}, sealed when the job is imported)"
            ))
        })
    }
}

/// The inline credentials of a job, sealed together with the instance key when the job is
/// stored (the stored TOML never holds them).
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Sealed {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
}

impl Sealed {
    pub fn is_empty(&self) -> bool {
        self.target.is_none() && self.source.is_none()
    }

    /// Sealed for the job `owner` with `key`.
    pub fn seal(&self, key: &scim_core::SealingKey, owner: &str) -> SyncResult<String> {
        let text = serde_json::to_string(self)
            .map_err(|e| SyncError::Internal(format!("cannot write credentials: {e}")))?;
        key.seal(owner, &text).map_err(secret_error)
    }

    pub fn open(key: &scim_core::SealingKey, owner: &str, sealed: &str) -> SyncResult<Self> {
        let text = key.open(owner, sealed).map_err(secret_error)?;
        serde_json::from_str(&text)
            .map_err(|_| SyncError::Secret("the stored credential is damaged".into()))
    }
}

/// A sealing failure (bad key, damaged or foreign sealed text) as the engine reports it.
pub fn secret_error(e: scim_core::CoreError) -> SyncError {
    match e {
        scim_core::CoreError::Internal(m) | scim_core::CoreError::Invalid(m) => {
            SyncError::Secret(m)
        }
        other => SyncError::Store(other),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_precedence_and_one_trimming_for_every_credential() {
        let dir = tempfile::tempdir().expect("dir");
        std::fs::write(dir.path().join("tok"), "from-file\n").expect("write");
        std::fs::write(dir.path().join("blank"), " \n").expect("write");
        let file = Path::new("tok");
        let r = |inline, env, file| SecretRef {
            key: "target.token",
            inline,
            env,
            file,
        };
        let base = Some(dir.path());
        let var = "APP_TOKEN";
        let env = |v: &str| (v == var).then(|| "  from-env\n".to_string());
        type Case<'a> = (
            SecretRef<'a>,
            Option<&'a str>,
            Result<Option<&'a str>, &'a str>,
        );
        let cases: Vec<Case<'_>> = vec![
            (
                r(Some(" inline "), Some(var), Some(file)),
                None,
                Ok(Some("inline")),
            ),
            (r(None, Some(var), Some(file)), None, Ok(Some("from-file"))),
            (
                r(None, Some(var), None),
                Some("sealed"),
                Ok(Some("from-env")),
            ),
            (r(None, None, None), Some(" sealed "), Ok(Some("sealed"))),
            (r(None, None, None), None, Ok(None)),
            (r(None, Some("UNSET"), None), None, Err("is not set")),
            (
                r(None, None, Some(Path::new("blank"))),
                None,
                Err("is empty"),
            ),
            (
                r(None, None, Some(Path::new("missing"))),
                None,
                Err("cannot read target.token_file"),
            ),
        ];
        for (i, (s, sealed, want)) in cases.into_iter().enumerate() {
            let got = s.resolve_with(base, sealed.map(str::to_string), &env);
            match want {
                Ok(v) => assert_eq!(got.ok().flatten().as_deref(), v, "case {i}"),
                Err(m) => {
                    let e = got.expect_err("an error").to_string();
                    assert!(e.contains(m), "case {i}: {e}");
                    assert!(!e.contains("from-"), "case {i} leaks: {e}");
                }
            }
        }
        let missing = r(None, None, None)
            .require(base, None)
            .expect_err("missing");
        assert!(
            missing.to_string().contains("target.token_env"),
            "{missing}"
        );
    }
}
