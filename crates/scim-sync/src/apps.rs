//! The Apps service: what the console's Apps pages (and the CLI where it acts on stored
//! jobs) do with an app, as units of work over the engine. The console never touches the
//! store: it calls this.
//!
//! - **create**: a new app and, for an uploaded source file, its file, in one transaction
//!   (both or neither), refused when the name is taken;
//! - **save**: an edited definition (the mapping and scope editors), with a job file's
//!   checks, keeping the app's state and ledger;
//! - **set_enabled**, **delete**, **source_file**, **replace_file** (read in full first:
//!   a bad export never replaces a good one);
//! - **run_now**: a cycle under the job's lease in the background, with a handle to stop
//!   it; [`Apps::shutdown`] stops and waits for every one (a server shutting down);
//! - **send_test_email**: a test notice to the app's addresses through the instance's SMTP
//!   settings (`mail_configured` says whether there are any).

use crate::apply::Halt;
use crate::confine::{Confinement, local_credentials};
use crate::engine::{Check, CycleReport, Engine, JobStatus};
use crate::error::{SyncError, SyncResult};
use crate::job::JobSpec;
use crate::runtime::notify::{Notice, Notifier, SmtpNotifier};
use scim_core::{SourceFile, SourceFileInfo, SyncJobRecord};
use std::sync::{Arc, Mutex};

/// One app in the list: its definition (or why the stored one no longer reads) and status.
pub struct AppSummary {
    pub name: String,
    pub spec: Result<JobSpec, String>,
    pub status: Option<JobStatus>,
}

/// A cycle started from the console.
#[derive(Clone)]
pub struct RunHandle {
    halt: Arc<Halt>,
}

impl RunHandle {
    /// Stops the cycle after the objects in flight.
    pub fn stop(&self, why: &str) {
        self.halt.stop(why);
    }
}

#[derive(Clone)]
pub struct Apps {
    engine: Engine,
    /// What apps made here may name on this server.
    confinement: Confinement,
    /// The lease holder name of cycles started here.
    node: String,
    running: Arc<Mutex<Runs>>,
    /// Where notices are e-mailed through (`smtp_url`); none when SMTP is not set.
    mailer: Option<Arc<SmtpNotifier>>,
}

#[derive(Default)]
struct Runs {
    tasks: tokio::task::JoinSet<()>,
    halts: Vec<Arc<Halt>>,
}

impl Apps {
    pub fn new(engine: Engine, node: impl Into<String>) -> Self {
        Self {
            engine,
            confinement: Confinement::default(),
            node: node.into(),
            running: Arc::default(),
            mailer: None,
        }
    }

    /// The same service e-mailing through `mailer` (the instance's SMTP settings).
    pub fn with_mailer(mut self, mailer: Option<Arc<SmtpNotifier>>) -> Self {
        self.mailer = mailer;
        self
    }

    /// Whether notices can be e-mailed at all (SMTP is configured).
    pub fn mail_configured(&self) -> bool {
        self.mailer.is_some()
    }

    /// A test notice to the app's notification addresses, now; how many it went to.
    pub async fn send_test_email(&self, spec: &JobSpec) -> SyncResult<usize> {
        let Some(m) = &self.mailer else {
            return Err(SyncError::Job(
                "no SMTP server is configured (smtp_url, SCIMD_SMTP_URL): notices cannot be e-mailed".into(),
            ));
        };
        if spec.notify.email.is_empty() {
            return Err(SyncError::Job(
                "the app has no notification address: add one first".into(),
            ));
        }
        m.notify(spec, &Notice::Test).await?;
        Ok(spec.notify.email.len())
    }

    /// The same service letting apps read files inside `dir` (`sync_source_dir`).
    pub fn with_source_dir(mut self, dir: Option<std::path::PathBuf>) -> Self {
        self.confinement.source_dir = dir;
        self
    }

    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// An app definition from the console, checked for what it names on this server
    /// (crate::confine): files only inside the source directory, typed credentials.
    pub fn vet(&self, spec: &JobSpec) -> SyncResult<JobSpec> {
        self.confinement.vet(spec)
    }

    /// Test connection for a new app, after [`vet`](Self::vet).
    pub async fn test(&self, spec: &JobSpec, file: Option<SourceFile>) -> SyncResult<Vec<Check>> {
        let spec = self.vet(spec)?;
        Ok(self.engine.test_with(&spec, None, file).await)
    }

    /// Test source for a new app, after [`vet`](Self::vet).
    pub async fn test_source(&self, spec: &JobSpec, file: Option<SourceFile>) -> SyncResult<Check> {
        let spec = self.vet(spec)?;
        Ok(self.engine.test_source(&spec, None, file).await)
    }

    /// The file of a new app's CSV or JSON source described, after [`vet`](Self::vet)
    /// (its id, groups and status columns may be unset: this is how they are chosen).
    pub async fn sample_file(
        &self,
        spec: &JobSpec,
        file: Option<SourceFile>,
    ) -> SyncResult<crate::source::file_sample::FileSample> {
        let spec = self.vet(spec)?;
        self.engine.sample_file(&spec, file).await
    }

    /// Every app, with its status.
    pub async fn list(&self) -> SyncResult<Vec<AppSummary>> {
        let mut out = Vec::new();
        for r in self.engine.jobs().await? {
            let spec = JobSpec::parse(&r.spec, None).map_err(|e| e.to_string());
            let status = match &spec {
                Ok(_) => Some(self.engine.status(&r.name).await?),
                Err(_) => None,
            };
            out.push(AppSummary {
                name: r.name,
                spec,
                status,
            });
        }
        Ok(out)
    }

    /// A stored app: its definition and record.
    pub async fn get(&self, name: &str) -> SyncResult<(JobSpec, SyncJobRecord)> {
        let record = self.engine.stored(name).await?;
        let spec = JobSpec::parse(&record.spec, None)?;
        Ok((spec, record))
    }

    /// A new app, off, with its uploaded file if it reads one. The name must be free.
    pub async fn create(&self, spec: &JobSpec, file: Option<SourceFile>) -> SyncResult<()> {
        let spec = &self.vet(spec)?;
        let record = self.engine.record_of(spec, None)?;
        match self.engine.store().create_job(&record, file.as_ref()).await {
            Ok(()) => Ok(()),
            Err(scim_core::CoreError::Conflict(_)) => Err(SyncError::Conflict(format!(
                "an app named '{}' exists already: choose another name",
                spec.name
            ))),
            Err(e) => Err(e.into()),
        }
    }

    /// An edited definition, checked as a job file is; the app's state and ledger stay.
    /// What it names on this server is vetted when it differs from the stored definition
    /// (an app imported from a job file keeps its own paths and variables).
    pub async fn save(&self, spec: &JobSpec) -> SyncResult<()> {
        let (stored, _) = self.get(&spec.name).await?;
        let same_locals = stored.source == spec.source
            && local_credentials(&stored) == local_credentials(spec)
            && stored.target.token_file == spec.target.token_file
            && stored.target.token_env == spec.target.token_env
            && stored.notify.webhook_secret_env == spec.notify.webhook_secret_env
            && stored.notify.webhook_secret_file == spec.notify.webhook_secret_file;
        let spec = &if same_locals {
            spec.clone()
        } else {
            self.vet(spec)?
        };
        let checked = spec.as_stored()?;
        self.engine.import(&checked).await?;
        Ok(())
    }

    pub async fn set_enabled(&self, name: &str, on: bool) -> SyncResult<()> {
        self.engine.set_enabled(name, on).await
    }

    pub async fn delete(&self, name: &str) -> SyncResult<()> {
        self.engine.delete(name).await
    }

    /// The name, size and time of the app's uploaded file.
    pub async fn source_file(&self, name: &str) -> SyncResult<Option<SourceFileInfo>> {
        Ok(self.engine.store().source_file_info(name).await?)
    }

    /// A new export of an uploaded source file: read in full as a cycle would read it, and
    /// stored only if that worked. The check says what was read; `Err` with it when the
    /// file was refused (the app keeps reading its current file).
    pub async fn replace_file(
        &self,
        spec: &JobSpec,
        file: SourceFile,
    ) -> SyncResult<Result<Check, Check>> {
        if spec.source.file().is_none_or(|f| f.upload.is_none()) {
            return Err(SyncError::Job(
                "this app does not read an uploaded file".into(),
            ));
        }
        let check = self
            .engine
            .test_source(spec, None, Some(file.clone()))
            .await;
        if !check.ok {
            return Ok(Err(check));
        }
        self.engine
            .store()
            .put_source_file(&spec.name, &file)
            .await?;
        Ok(Ok(check))
    }

    /// Runs one cycle in the background, under the job's lease like any other node's
    /// cycle. Refused while the app is off: turn it on, or run it with `scimd sync run`.
    pub async fn run_now(&self, name: &str) -> SyncResult<RunHandle> {
        let (spec, record) = self.get(name).await?;
        if !record.enabled {
            return Err(SyncError::Job(
                "the app is off: turn provisioning on to run it".into(),
            ));
        }
        let halt = Arc::new(Halt::default());
        let handle = RunHandle { halt: halt.clone() };
        let (engine, node) = (self.engine.clone(), self.node.clone());
        let mut runs = self
            .running
            .lock()
            .map_err(|_| SyncError::Internal("the run list lock is poisoned".into()))?;
        // Finished runs are collected here; the list never grows past what runs.
        while runs.tasks.try_join_next().is_some() {}
        runs.halts.retain(|h| Arc::strong_count(h) > 1);
        runs.halts.push(halt.clone());
        runs.tasks.spawn(async move {
            log_run(
                &spec.name,
                crate::runtime::schedule::run_leased(&engine, &spec, &node, halt).await,
            );
        });
        Ok(handle)
    }

    /// Stops every cycle started here after its objects in flight, and waits for them.
    pub async fn shutdown(&self) {
        let mut tasks = match self.running.lock() {
            Ok(mut runs) => {
                for h in &runs.halts {
                    h.stop("the server is shutting down");
                }
                std::mem::take(&mut runs.tasks)
            }
            Err(_) => return,
        };
        while tasks.join_next().await.is_some() {}
    }
}

fn log_run(name: &str, r: SyncResult<Option<CycleReport>>) {
    match r {
        Ok(Some(r)) => {
            tracing::info!(job = %name, cycle = %r.cycle_id, status = r.status.as_str(), "console cycle ended");
        }
        Ok(None) => {
            tracing::info!(job = %name, "console cycle not started: another node runs the job");
        }
        Err(e) => tracing::warn!(job = %name, error = %e, "console cycle failed"),
    }
}
