//! Jobs as stored: resolving a name or a file, importing (inline credentials sealed, paths
//! made absolute), the credentials, the target's client and the source.

use super::Engine;
use crate::error::{SyncError, SyncResult};
use crate::job::JobSpec;
use crate::secret::{Sealed, secret_error};
use crate::source::{BuildContext, Source};
use scim_client::{ClientOptions, ScimClient};
use scim_core::{JobState, SourceFile, SyncJobRecord};
use std::path::Path;
use std::sync::Arc;

impl Engine {
    /// A job by file path (if such a file exists) or by stored name.
    pub async fn resolve(
        &self,
        name_or_file: &str,
    ) -> SyncResult<(JobSpec, Option<SyncJobRecord>)> {
        let p = Path::new(name_or_file);
        if p.is_file() {
            let spec = JobSpec::load(p)?;
            let record = self.store.job(&spec.name).await?;
            return Ok((spec, record));
        }
        let record = self.stored(name_or_file).await.map_err(|_| {
            SyncError::NotFound(format!(
                "no job file or stored job named '{name_or_file}' (scimd sync job list)"
            ))
        })?;
        let spec = JobSpec::parse(&record.spec, None)?;
        Ok((spec, Some(record)))
    }

    /// A stored job by name.
    pub async fn stored(&self, name: &str) -> SyncResult<SyncJobRecord> {
        self.store
            .job(name)
            .await?
            .ok_or_else(|| SyncError::NotFound(format!("no stored job named '{name}'")))
    }

    /// The record a job is stored as: its TOML without inline credentials, those sealed
    /// (or, when the job gives none, the ones already sealed for it).
    pub(crate) fn record_of(
        &self,
        spec: &JobSpec,
        existing: Option<&SyncJobRecord>,
    ) -> SyncResult<SyncJobRecord> {
        let (stored, inline) = spec.to_stored();
        let sealed = match (inline.is_empty(), &self.key) {
            (false, Some(k)) => Some(inline.seal(k, &spec.name)?),
            (false, None) => {
                return Err(SyncError::Secret(
                    "the job has an inline credential but no sync key is configured to seal it (set SCIMD_SYNC_KEY_FILE, or use token_env / token_file)".into(),
                ));
            }
            (true, _) => existing.and_then(|e| e.sealed_secret.clone()),
        };
        let now = self.now();
        Ok(SyncJobRecord {
            name: spec.name.clone(),
            spec: toml::to_string_pretty(&stored)
                .map_err(|e| SyncError::Job(format!("cannot write job: {e}")))?,
            sealed_secret: sealed,
            enabled: existing.is_some_and(|e| e.enabled),
            state: existing.map_or_else(JobState::default, |e| e.state.clone()),
            created_at: existing.map_or(now, |e| e.created_at),
            updated_at: now,
        })
    }

    /// Stores a job (a new definition keeps the job's state, ledger and enabled flag).
    /// Inline credentials are sealed; the stored TOML never holds them. True when new.
    pub async fn import(&self, spec: &JobSpec) -> SyncResult<bool> {
        let existing = self.store.job(&spec.name).await?;
        let record = self.record_of(spec, existing.as_ref())?;
        self.store.put_job(&record).await?;
        if existing
            .as_ref()
            .is_some_and(|e| e.state.reauthorized_at.is_some())
        {
            // Imported again: the job's own token (or the one sealed now) counts again.
            self.edit_state(None, &spec.name, |s| s.reauthorized_at = None)
                .await?;
        }
        Ok(existing.is_none())
    }

    /// What is sealed for the stored job.
    pub(crate) fn sealed(&self, record: Option<&SyncJobRecord>) -> SyncResult<Sealed> {
        let (Some(r), Some(sealed)) = (record, record.and_then(|r| r.sealed_secret.as_ref()))
        else {
            return Ok(Sealed::default());
        };
        let key = self.key.as_ref().ok_or_else(|| {
            SyncError::Secret("a sealed credential is stored but no sync key is configured".into())
        })?;
        Sealed::open(key, &r.name, sealed)
    }

    /// The target token: inline, from a file, from a variable, or sealed in the database.
    /// A token stored by `reauthorize` wins over the one a job file names, until the file
    /// is imported again.
    pub fn token(&self, spec: &JobSpec, record: Option<&SyncJobRecord>) -> SyncResult<String> {
        let sealed = self.sealed(record)?.target;
        if record.is_some_and(|r| r.state.reauthorized_at.is_some())
            && let Some(t) = &sealed
        {
            return Ok(t.clone());
        }
        spec.target
            .token_ref()
            .require(spec.base_dir.as_deref(), sealed)
    }

    pub fn client(&self, spec: &JobSpec, token: &str) -> SyncResult<ScimClient> {
        let options = ClientOptions {
            max_in_flight: spec.target.max_in_flight,
            rate_limit: spec.target.rate_limit,
            attempts: spec.target.attempts,
            timeout: spec.target.timeout.std(),
            outbound: self.outbound.clone(),
            ..ClientOptions::default()
        };
        Ok(ScimClient::new(&spec.target.url, token, options)?)
    }

    /// The job's source; `file`: a CSV or JSON file in hand instead of the job's own (the
    /// console's Test source, before the upload is stored).
    pub(crate) fn source(
        &self,
        spec: &JobSpec,
        record: Option<&SyncJobRecord>,
        file: Option<SourceFile>,
    ) -> SyncResult<Box<dyn Source>> {
        spec.source.build(&self.build_context(spec, record, file)?)
    }

    /// What building the job's source needs besides its keys.
    pub(crate) fn build_context(
        &self,
        spec: &JobSpec,
        record: Option<&SyncJobRecord>,
        file: Option<SourceFile>,
    ) -> SyncResult<BuildContext> {
        Ok(BuildContext {
            job: spec.name.clone(),
            base_dir: spec.base_dir.clone(),
            sealed: self.sealed(record)?.source,
            store: self.store.clone(),
            clock: self.clock.clone(),
            log_retention: self.log_retention,
            file: file.map(Arc::new),
            outbound: self.outbound.clone(),
        })
    }

    /// Replaces the target token of a stored job (sealed), keeping the source's.
    pub(crate) fn with_target_token(
        &self,
        record: &SyncJobRecord,
        token: &str,
    ) -> SyncResult<SyncJobRecord> {
        let key = self.key.as_ref().ok_or_else(|| {
            SyncError::Secret("no sync key is configured to seal the new token".into())
        })?;
        let mut spec = JobSpec::parse(&record.spec, None)?;
        spec.target.token_env = None;
        spec.target.token_file = None;
        let mut sealed = self.sealed(Some(record))?;
        sealed.target = Some(token.to_string());
        Ok(SyncJobRecord {
            spec: spec.to_stored_toml()?,
            sealed_secret: Some(sealed.seal(key, &record.name).map_err(|e| match e {
                SyncError::Store(c) => secret_error(c),
                other => other,
            })?),
            updated_at: self.now(),
            ..record.clone()
        })
    }

    /// Reads the stored job's state, changes it with `f`, stores it (with a fence, only
    /// while the fence's lease is held).
    pub(crate) async fn edit_state(
        &self,
        fence: Option<&scim_core::LeaseFence>,
        name: &str,
        f: impl FnOnce(&mut JobState),
    ) -> SyncResult<()> {
        let mut state = self.stored(name).await?.state;
        f(&mut state);
        self.store
            .set_job_state(fence, name, &state, self.now())
            .await?;
        Ok(())
    }
}
