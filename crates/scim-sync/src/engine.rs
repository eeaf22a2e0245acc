//! The engine's services, used by the CLI (and later the scheduler and the console): job
//! import/export, plan, run, test connection, provision on demand, approve or reject staged
//! deletes, status. `plan` and `run` share one code path ([`Engine::prepare`]); `run`
//! applies the plan `prepare` made.

use crate::SyncKey;
use crate::apply::{Applier, CycleCounts, HALT_UNAUTHORIZED, Halt, Outcome};
use crate::error::{SyncError, SyncResult};
use crate::job::{JobSpec, SourceKind};
use crate::mapping::Mappings;
use crate::plan::{Key, PlanInput, PlannedAction, Planner, SyncPlan};
use crate::source::{
    FileOrigin, FileSource, LdapSource, ObjectKind, ScimSource, Source, SourceBatch, SourceObject,
    TenantReader, TenantSource,
};
use crate::target::{Lookups, TargetIndex, TargetMatcher};
use scim_client::{ClientOptions, ScimClient, TargetProfile};
use scim_core::{
    CoreError, CycleRecord, JobSnapshot, LeaseFence, LedgerEntry, SourceFile, Store, SyncJobRecord,
    SyncLogQuery, SyncLogRecord, Timestamp,
};
use serde::Serialize;
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize};
use std::sync::{Arc, Mutex};

/// Where the engine reads the time (deprovisioning timers); tests move it forward.
pub type Clock = Arc<dyn Fn() -> Timestamp + Send + Sync>;

#[derive(Clone)]
pub struct Engine {
    pub store: Arc<dyn Store>,
    /// Seals inline target tokens; without it, jobs must name their token by variable or file.
    pub key: Option<SyncKey>,
    /// How long the provisioning log keeps events (a tenant source's full-read trigger).
    pub log_retention: time::Duration,
    pub clock: Clock,
    /// How long a node holds a job's lease without renewing it (renewed every sixth of
    /// it while a cycle runs); a dead node's job is taken over after this long.
    pub lease: std::time::Duration,
}

/// Everything a cycle needs, read once.
pub struct Prepared {
    pub spec: JobSpec,
    pub plan: SyncPlan,
    pub client: ScimClient,
    pub profile: TargetProfile,
    pub users: Mappings,
    pub groups: Mappings,
    pub ledger: BTreeMap<Key, LedgerEntry>,
    pub watermark: Option<Value>,
    pub source_counts: (usize, usize),
    /// Of the mappings and scope this plan was made with.
    pub fingerprint: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct CycleReport {
    pub job: String,
    pub cycle_id: String,
    pub mode: &'static str,
    pub status: String,
    pub counts: CycleCounts,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub breaker: Option<String>,
    pub duration_ms: u128,
    pub source_users: usize,
    pub source_groups: usize,
    /// Set when this cycle put the job in quarantine or took it out.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub quarantine: Option<QuarantineChange>,
}

/// A job entering or leaving quarantine (what the notifications say).
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct QuarantineChange {
    pub entered: bool,
    pub reason: String,
    pub detail: String,
}

/// Quarantine reasons (docs/sync.md §7).
pub const QUARANTINE_CREDENTIALS: &str = "credentials";
pub const QUARANTINE_FAILURES: &str = "failures";
pub const QUARANTINE_COMPLIANCE: &str = "compliance";

/// The `last_cycle` of a job's state (`at_us` is what the scheduler reads).
/// A sealing failure (bad key, damaged or foreign sealed text) as the engine reports it.
fn secret_error(e: scim_core::CoreError) -> SyncError {
    match e {
        CoreError::Internal(m) | CoreError::Invalid(m) => SyncError::Secret(m),
        other => SyncError::Store(other),
    }
}

fn last_cycle(cycle_id: &str, status: &str, error: Option<&str>) -> Value {
    let now = Timestamp::now();
    let mut v =
        json!({"id": cycle_id, "at": now.rfc3339(), "at_us": now.as_micros(), "status": status});
    if let Some(e) = error {
        v["error"] = Value::String(e.to_string());
    }
    v
}

/// Entra's compliance probe (engine-behaviour §1.4): a filter on a random value must
/// answer 200 with an empty list, for Users and (when provisioned) Groups.
async fn probe(
    client: &ScimClient,
    profile: &TargetProfile,
    spec: &JobSpec,
) -> Vec<(String, Result<String, String>)> {
    let mut out = Vec::new();
    let probe = uuid::Uuid::new_v4().to_string();
    let kinds: &[(scim_client::ResourceKind, &str, Option<&str>)] =
        if profile.groups && spec.target.groups {
            &[
                (scim_client::ResourceKind::User, "userName", None),
                (
                    scim_client::ResourceKind::Group,
                    "displayName",
                    Some("members"),
                ),
            ]
        } else {
            &[(scim_client::ResourceKind::User, "userName", None)]
        };
    for (kind, attr, excluded) in kinds {
        let name = format!("probe /{}", kind.endpoint());
        let r = match client.find_eq(*kind, attr, &probe, *excluded).await {
            Ok(list) if list.is_empty() => {
                Ok(format!("filter {attr} eq \"{probe}\" → 200, empty list"))
            }
            Ok(list) => Err(format!(
                "filter {attr} eq a random GUID returned {} resources: the target ignores filters",
                list.len()
            )),
            Err(e) => Err(format!("filter {attr} eq a random GUID: {e}")),
        };
        out.push((name, r));
    }
    out
}

/// Writes the quarantine into a job's state; the change, if it is a new one.
fn quarantine_state(
    state: &mut Value,
    reason: &str,
    detail: &str,
    now: Timestamp,
) -> Option<QuarantineChange> {
    let o = state.as_object_mut()?;
    let same = o
        .get("quarantine")
        .and_then(|q| q.get("reason"))
        .and_then(Value::as_str)
        == Some(reason);
    if same {
        return None;
    }
    o.insert(
        "quarantine".into(),
        json!({"reason": reason, "detail": detail, "since": now.rfc3339()}),
    );
    Some(QuarantineChange {
        entered: true,
        reason: reason.into(),
        detail: detail.into(),
    })
}

/// Takes a job out of quarantine; the change, if it was in.
fn lift_quarantine(state: &mut Value) -> Option<QuarantineChange> {
    let q = state.as_object_mut()?.remove("quarantine")?;
    Some(QuarantineChange {
        entered: false,
        reason: q
            .get("reason")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .into(),
        detail: "a cycle completed: quarantine lifted".into(),
    })
}

#[derive(Debug, Clone, Serialize)]
pub struct Check {
    pub name: String,
    pub ok: bool,
    pub detail: String,
}

/// The mapping editor's view of a job's user mappings.
#[derive(Debug, Clone)]
pub struct UserPreview {
    pub mappings: Vec<crate::job::Mapping>,
    /// Matching attributes, in precedence order.
    pub matching: Vec<String>,
    /// The attribute names the source's objects carry.
    pub columns: Vec<String>,
    /// The source's groups by display name (the scope's group picker).
    pub groups: Vec<String>,
    /// What the mappings give the chosen user (target path → value).
    pub values: Option<BTreeMap<String, Value>>,
    /// The tested expression's value for the chosen user, or why it failed.
    pub expression: Option<Result<Value, String>>,
    /// Why the mappings cannot be compiled or evaluated.
    pub error: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct JobStatus {
    pub name: String,
    pub enabled: bool,
    pub state: String,
    pub last_cycle: Option<Value>,
    pub ledger: BTreeMap<String, u64>,
    pub staged_deletes: u64,
    /// Objects in escrow (retried on the ladder) and abandoned (failing past it).
    pub escrowed: u64,
    pub abandoned: u64,
    /// `{reason, detail, since}` while quarantined.
    pub quarantine: Option<Value>,
    /// When `scimd serve` runs the next cycle (none while off or paused).
    pub next_run: Option<String>,
    pub next_timers: Vec<Value>,
}

/// What `restart --scope` clears (Entra's restart options, engine-behaviour §1.6).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RestartScope {
    /// The source position: the next cycle reads the whole source.
    Watermark,
    /// Every object's escrow: failing objects are retried at once.
    Escrows,
    /// The quarantine.
    Quarantine,
    /// The links to target objects: the next cycle is an initial one that matches the
    /// target again (nothing is deleted; linked objects are found and adopted).
    Links,
    /// All of the above.
    Full,
}

impl RestartScope {
    pub fn parse(s: &str) -> SyncResult<Self> {
        Ok(match s {
            "watermark" => Self::Watermark,
            "escrows" => Self::Escrows,
            "quarantine" => Self::Quarantine,
            "links" => Self::Links,
            "full" => Self::Full,
            other => {
                return Err(SyncError::Job(format!(
                    "unknown restart scope '{other}': use watermark, escrows, quarantine, links or full"
                )));
            }
        })
    }
}

/// What the plan depends on besides the source: the job definition and, for a file source,
/// its columns (which choose the default mappings). SHA-256, hex.
fn config_fingerprint(spec: &JobSpec, columns: &BTreeSet<String>) -> SyncResult<String> {
    use sha2::Digest;
    let mut h = sha2::Sha256::new();
    h.update(spec.to_stored_toml()?.as_bytes());
    for c in columns {
        h.update([0]);
        h.update(c.as_bytes());
    }
    Ok(h.finalize().iter().map(|b| format!("{b:02x}")).collect())
}

fn counts_json(c: &CycleCounts) -> Value {
    serde_json::to_value(c).unwrap_or(Value::Null)
}

impl Engine {
    pub fn new(store: Arc<dyn Store>, key: Option<SyncKey>, log_retention: time::Duration) -> Self {
        Self {
            store,
            key,
            log_retention,
            clock: Arc::new(Timestamp::now),
            lease: crate::schedule::LEASE,
        }
    }

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
        let record = self.store.job(name_or_file).await?.ok_or_else(|| {
            SyncError::NotFound(format!(
                "no job file or stored job named '{name_or_file}' (scimd sync job list)"
            ))
        })?;
        let spec = JobSpec::parse(&record.spec, None)?;
        Ok((spec, Some(record)))
    }

    /// Stores a job (a new definition keeps the job's state, ledger and enabled flag).
    /// An inline target token is sealed; the stored TOML never holds it.
    pub async fn import(&self, spec: &JobSpec) -> SyncResult<bool> {
        let existing = self.store.job(&spec.name).await?;
        // Inline tokens (target and source) are sealed together, as one JSON object.
        let mut secrets = serde_json::Map::new();
        if let Some(t) = &spec.target.token {
            secrets.insert("target".into(), Value::String(t.clone()));
        }
        if let Some(t) = &spec.source.token {
            secrets.insert("source".into(), Value::String(t.clone()));
        }
        let sealed = match (secrets.is_empty(), &self.key) {
            (false, Some(k)) => Some(
                k.seal(&spec.name, &Value::Object(secrets).to_string())
                    .map_err(secret_error)?,
            ),
            (false, None) => {
                return Err(SyncError::Secret(
                    "the job has an inline token but no sync key is configured to seal it (set SCIMD_SYNC_KEY_FILE, or use token_env / token_file)".into(),
                ));
            }
            (true, _) => existing.as_ref().and_then(|e| e.sealed_secret.clone()),
        };
        let mut stored = spec.clone();
        // Relative paths are kept absolute, so a stored job works from any directory.
        if let Some(p) = &spec.source.path {
            stored.source.path = Some(spec.resolve_path(p));
        }
        if let Some(p) = &spec.source.groups_path {
            stored.source.groups_path = Some(spec.resolve_path(p));
        }
        if let Some(p) = &spec.target.token_file {
            stored.target.token_file = Some(spec.resolve_path(p));
        }
        if let Some(p) = &spec.source.token_file {
            stored.source.token_file = Some(spec.resolve_path(p));
        }
        if let Some(p) = &spec.source.tls_ca_file {
            stored.source.tls_ca_file = Some(spec.resolve_path(p));
        }
        if let Some(p) = &spec.notify.webhook_secret_file {
            stored.notify.webhook_secret_file = Some(spec.resolve_path(p));
        }
        let now = Timestamp::now();
        let record = SyncJobRecord {
            name: spec.name.clone(),
            spec: stored.to_stored_toml()?,
            sealed_secret: sealed,
            enabled: existing.as_ref().is_some_and(|e| e.enabled),
            state: existing
                .as_ref()
                .map_or_else(|| json!({}), |e| e.state.clone()),
            created_at: existing.as_ref().map_or(now, |e| e.created_at),
            updated_at: now,
        };
        self.store.put_job(&record).await?;
        Ok(existing.is_none())
    }

    /// The target token: inline, from a file, from a variable, or sealed in the database.
    pub fn token(&self, spec: &JobSpec, record: Option<&SyncJobRecord>) -> SyncResult<String> {
        let t = &spec.target;
        if let Some(tok) = &t.token {
            return Ok(tok.clone());
        }
        if let Some(f) = &t.token_file {
            let path = spec.resolve_path(f);
            return std::fs::read_to_string(&path)
                .map(|s| s.trim().to_string())
                .map_err(|e| {
                    SyncError::Job(format!(
                        "cannot read target.token_file {}: {e}",
                        path.display()
                    ))
                });
        }
        if let Some(v) = &t.token_env {
            return std::env::var(v)
                .map(|s| s.trim().to_string())
                .ok()
                .filter(|s| !s.is_empty())
                .ok_or_else(|| {
                    SyncError::Job(format!("target.token_env: the variable {v} is not set"))
                });
        }
        if let Some(t) = self.sealed(record, "target")? {
            return Ok(t);
        }
        Err(SyncError::Job(
            "no target token: set target.token_env or target.token_file, or import the job with target.token".into(),
        ))
    }

    /// A sealed inline token of the stored job (`target` or `source`).
    fn sealed(&self, record: Option<&SyncJobRecord>, which: &str) -> SyncResult<Option<String>> {
        let (Some(r), Some(sealed)) = (record, record.and_then(|r| r.sealed_secret.as_ref()))
        else {
            return Ok(None);
        };
        let key = self.key.as_ref().ok_or_else(|| {
            SyncError::Secret("a sealed token is stored but no sync key is configured".into())
        })?;
        let text = key.open(&r.name, sealed).map_err(secret_error)?;
        let v: Value = serde_json::from_str(&text)
            .map_err(|_| SyncError::Secret("the stored credential is damaged".into()))?;
        Ok(v.get(which).and_then(Value::as_str).map(str::to_string))
    }

    fn source_token(&self, spec: &JobSpec, record: Option<&SyncJobRecord>) -> SyncResult<String> {
        let s = &spec.source;
        if let Some(t) = &s.token {
            return Ok(t.clone());
        }
        if let Some(f) = &s.token_file {
            return std::fs::read_to_string(spec.resolve_path(f))
                .map(|s| s.trim().to_string())
                .map_err(|e| SyncError::Job(format!("cannot read source.token_file: {e}")));
        }
        if let Some(v) = &s.token_env {
            return std::env::var(v).map_err(|_| {
                SyncError::Job(format!("source.token_env: the variable {v} is not set"))
            });
        }
        if let Some(t) = self.sealed(record, "source")? {
            return Ok(t);
        }
        Err(SyncError::Job(
            "a scim source needs source.token_env, source.token_file or source.token".into(),
        ))
    }

    pub fn client(&self, spec: &JobSpec, token: &str) -> SyncResult<ScimClient> {
        let timeout = crate::job::duration(&spec.target.timeout, "target.timeout")?;
        let options = ClientOptions {
            max_in_flight: spec.target.max_in_flight,
            rate_limit: spec.target.rate_limit,
            attempts: spec.target.attempts,
            timeout: timeout
                .try_into()
                .unwrap_or(std::time::Duration::from_secs(30)),
            ..ClientOptions::default()
        };
        Ok(ScimClient::new(&spec.target.url, token, options)?)
    }

    fn source(
        &self,
        spec: &JobSpec,
        record: Option<&SyncJobRecord>,
    ) -> SyncResult<Box<dyn Source>> {
        Ok(match spec.source.kind {
            SourceKind::Csv | SourceKind::Json => {
                let origin = match &spec.source.path {
                    Some(p) => FileOrigin::Path(spec.resolve_path(p)),
                    None => FileOrigin::Stored {
                        job: spec.name.clone(),
                        store: self.store.clone(),
                    },
                };
                Box::new(FileSource::new(&spec.source, origin, |p| {
                    spec.resolve_path(p)
                })?)
            }
            SourceKind::Scim => {
                let url = spec.source.url.clone().unwrap_or_default();
                Box::new(ScimSource::new(ScimClient::new(
                    &url,
                    &self.source_token(spec, record)?,
                    ClientOptions::default(),
                )?))
            }
            SourceKind::Ldap => {
                let s = &spec.source;
                let named = s.token.is_some() || s.token_env.is_some() || s.token_file.is_some();
                let password = match (&s.bind_dn, self.source_token(spec, record)) {
                    (None, _) => None,
                    (Some(_), Ok(p)) => Some(p),
                    // A variable or file that is named but cannot be read says so itself.
                    (Some(_), Err(e)) if named => return Err(e),
                    (Some(dn), Err(_)) => {
                        return Err(SyncError::Job(format!(
                            "source.bind_dn '{dn}' needs a password: source.password_env, source.password_file or source.password"
                        )));
                    }
                };
                let ca = spec
                    .source
                    .tls_ca_file
                    .as_ref()
                    .map(|p| spec.resolve_path(p));
                Box::new(LdapSource::new(&spec.source, password, ca)?)
            }
            SourceKind::Tenant => Box::new(TenantSource::new(
                TenantReader {
                    store: self.store.clone(),
                    tenant: spec.source.tenant.clone().unwrap_or_default(),
                },
                self.log_retention,
            )),
        })
    }

    /// Reads the source, the ledger and (to match) the target; plans. Writes nothing.
    pub async fn prepare(
        &self,
        spec: &JobSpec,
        record: Option<&SyncJobRecord>,
    ) -> SyncResult<Prepared> {
        let token = self.token(spec, record)?;
        let client = self.client(spec, &token)?;
        let profile = client.discover().await?;
        let ledger: BTreeMap<Key, LedgerEntry> = self
            .store
            .ledger(&spec.name)
            .await?
            .into_iter()
            .filter_map(|e| Some(((ObjectKind::parse(&e.kind)?, e.source_id.clone()), e)))
            .collect();
        let watermark = record
            .and_then(|r| r.state.get("watermark"))
            .filter(|w| !w.is_null());
        // A job whose ledger is empty starts from scratch, whatever its state says.
        let watermark = if ledger.is_empty() { None } else { watermark };
        let batch = self.source(spec, record)?.read(watermark).await?;
        let mut objects: BTreeMap<Key, SourceObject> = BTreeMap::new();
        if !batch.full {
            for e in ledger.values() {
                if let Ok(o) = serde_json::from_value::<SourceObject>(e.source.clone())
                    && e.state != "deleted"
                {
                    objects.insert((o.kind, o.id.clone()), o);
                }
            }
            for (k, id) in &batch.deleted {
                objects.remove(&(*k, id.clone()));
            }
            objects.retain(|k, _| batch.present.get(&k.0).is_none_or(|ids| ids.contains(&k.1)));
        }
        for o in batch.objects {
            objects.insert((o.kind, o.id.clone()), o);
        }
        let columns: BTreeSet<String> = objects
            .values()
            .filter(|o| o.kind == ObjectKind::User)
            .flat_map(|o| o.attributes.keys().cloned())
            .collect();
        let users = Mappings::compile(spec, ObjectKind::User, &columns)?;
        let groups = Mappings::compile(spec, ObjectKind::Group, &columns)?;
        let missing: Vec<&String> = profile
            .required_user_attributes
            .iter()
            .filter(|r| {
                !users
                    .targets()
                    .iter()
                    .any(|t| t.eq_ignore_ascii_case(r) || t.starts_with(&format!("{r}.")))
            })
            .collect();
        if !missing.is_empty() {
            return Err(SyncError::Job(format!(
                "the target requires {} but no user mapping writes it (mandatory attributes)",
                missing
                    .iter()
                    .map(|s| s.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            )));
        }
        let source_counts = (
            objects.keys().filter(|k| k.0 == ObjectKind::User).count(),
            objects.keys().filter(|k| k.0 == ObjectKind::Group).count(),
        );
        // Initial until one initial cycle went through its whole plan: a resumed initial
        // cycle still matches against one read of the target.
        let initial = match record.and_then(|r| r.state.get("initial_done")) {
            Some(Value::Bool(done)) => !done || ledger.is_empty(),
            _ => !ledger.values().any(|e| e.target_id.is_some()),
        };
        // Initial cycle: read the target once and match locally; later: lookups.
        let index;
        let lookups = Lookups {
            client: client.clone(),
        };
        let matcher: &dyn TargetMatcher = if initial {
            index = TargetIndex::read(
                &client,
                &profile,
                &[
                    (ObjectKind::User, users.matching.clone()),
                    (ObjectKind::Group, groups.matching.clone()),
                ],
            )
            .await?;
            &index
        } else {
            &lookups
        };
        let fingerprint = config_fingerprint(spec, &columns)?;
        let planner = Planner {
            spec,
            users: &users,
            groups: &groups,
            now: (self.clock)(),
            config_unchanged: record
                .and_then(|r| r.state.get("fingerprint"))
                .and_then(Value::as_str)
                == Some(fingerprint.as_str()),
        };
        let plan = planner
            .plan(&PlanInput {
                objects: &objects,
                ledger: &ledger,
                matcher,
                initial,
            })
            .await?;
        Ok(Prepared {
            spec: spec.clone(),
            plan,
            client,
            profile,
            users,
            groups,
            ledger,
            watermark: batch.watermark,
            source_counts,
            fingerprint,
        })
    }

    fn applier(&self, p: &Prepared, cycle_id: &str, halt: Arc<Halt>) -> Arc<Applier> {
        let live: HashMap<Key, String> = p
            .ledger
            .iter()
            .filter_map(|(k, e)| Some((k.clone(), e.target_id.clone()?)))
            .collect();
        let owned: HashSet<String> = live.values().cloned().collect();
        Arc::new(Applier {
            spec: p.spec.clone(),
            users: p.users.clone(),
            groups: p.groups.clone(),
            client: p.client.clone(),
            profile: p.profile.clone(),
            store: self.store.clone(),
            cycle_id: cycle_id.to_string(),
            live: Mutex::new(live),
            owned: Mutex::new(owned),
            outbox: Mutex::new(Vec::new()),
            halt,
            now: (self.clock)(),
            bulk_refused: AtomicBool::new(false),
            bulk_limit: AtomicUsize::new(p.spec.target.bulk),
        })
    }

    /// One cycle: plan, apply, record. A job run from a file is stored under its name.
    pub async fn run(
        &self,
        spec: &JobSpec,
        record: Option<&SyncJobRecord>,
    ) -> SyncResult<CycleReport> {
        self.run_with(spec, record, Arc::default()).await
    }

    /// One cycle that stops early when `halt` is set (pause, lease lost): the objects in
    /// flight finish and are recorded, the watermark stays, and the next cycle carries on
    /// where this one stopped. Quarantine is entered or lifted by the outcome.
    pub async fn run_with(
        &self,
        spec: &JobSpec,
        record: Option<&SyncJobRecord>,
        halt: Arc<Halt>,
    ) -> SyncResult<CycleReport> {
        if record.is_none() {
            self.import(spec).await?;
        }
        let record = self.store.job(&spec.name).await?;
        let started = std::time::Instant::now();
        let cycle_id = uuid::Uuid::new_v4().to_string();
        let fence = halt.fence().cloned();
        let fence = fence.as_ref();
        self.edit_state(fence, &spec.name, |o| {
            o.insert(
                "running".into(),
                json!({"cycle_id": cycle_id, "started_us": Timestamp::now().as_micros()}),
            );
        })
        .await?;
        let mut prepared = match self.prepare(spec, record.as_ref()).await {
            Ok(p) => p,
            Err(e) => {
                self.mark_failed(fence, &spec.name, &cycle_id, &e).await?;
                return Err(e);
            }
        };
        let mode = prepared.plan.mode;
        if mode == "initial" {
            // Said before any write: a cycle killed after its first creates resumes as the
            // initial cycle it was (one read of the target, local matching), not as an
            // incremental one that trusts a half-built ledger.
            self.edit_state(fence, &spec.name, |o| {
                o.insert("initial_done".into(), Value::Bool(false));
            })
            .await?;
        }
        // The probe runs before an initial cycle and while quarantined for failing it.
        let probe_due = mode == "initial"
            || record
                .as_ref()
                .and_then(|r| r.state.get("quarantine"))
                .and_then(|q| q.get("reason"))
                .and_then(Value::as_str)
                == Some(QUARANTINE_COMPLIANCE);
        if probe_due {
            let failed: Vec<String> = probe(&prepared.client, &prepared.profile, spec)
                .await
                .into_iter()
                .filter_map(|(name, r)| r.err().map(|e| format!("{name}: {e}")))
                .collect();
            if !failed.is_empty() {
                let e = SyncError::Compliance(failed.join("; "));
                self.mark_failed(fence, &spec.name, &cycle_id, &e).await?;
                return Err(e);
            }
        }
        let breaker = prepared.plan.breaker.clone();
        let mut cycle = CycleRecord {
            job: spec.name.clone(),
            cycle_id: cycle_id.clone(),
            started_at: Timestamp::now(),
            finished_at: None,
            mode: mode.into(),
            status: "running".into(),
            counts: json!({"planned": prepared.plan.actions.len()}),
        };
        self.store.save_cycle(&cycle).await?;
        let (users, groups) = prepared.source_counts;
        let plan = std::mem::replace(
            &mut prepared.plan,
            SyncPlan {
                job: spec.name.clone(),
                mode,
                actions: Vec::new(),
                totals: BTreeMap::new(),
                breaker: None,
                ledger_only: Vec::new(),
            },
        );
        let counts = {
            let applier = self.applier(&prepared, &cycle_id, halt);
            applier.apply(plan).await
        };
        let counts = match counts {
            Ok(c) => c,
            Err(e) => {
                cycle.finished_at = Some(Timestamp::now());
                cycle.status = "failed".into();
                cycle.counts = json!({"error": e.to_string()});
                self.store.save_cycle(&cycle).await?;
                self.mark_failed(fence, &spec.name, &cycle_id, &e).await?;
                return Err(e);
            }
        };
        let failures = counts.statuses.get("Failure").copied().unwrap_or(0);
        let status = if counts.stopped.is_some() {
            "stopped"
        } else if failures > 0 {
            "completed-with-failures"
        } else {
            "completed"
        };
        cycle.finished_at = Some(Timestamp::now());
        cycle.status = status.into();
        cycle.counts = counts_json(&counts);
        // The state is read again: a pause or a restart may have changed it meanwhile.
        let mut state = self
            .store
            .job(&spec.name)
            .await?
            .map_or_else(|| json!({}), |r| r.state);
        let quarantine = self.quarantine_verdict(spec, &counts);
        if let Some(o) = state.as_object_mut() {
            if counts.stopped.is_none() {
                // Only a cycle that went through its whole plan moves the position.
                o.insert(
                    "watermark".into(),
                    prepared.watermark.clone().unwrap_or(Value::Null),
                );
                o.insert(
                    "fingerprint".into(),
                    Value::String(prepared.fingerprint.clone()),
                );
                o.insert("initial_done".into(), Value::Bool(true));
            }
            o.insert("last_cycle".into(), last_cycle(&cycle_id, status, None));
            o.remove("running");
        }
        let change = match quarantine {
            Some((reason, detail)) => quarantine_state(&mut state, reason, &detail, (self.clock)()),
            None if counts.stopped.is_none() => lift_quarantine(&mut state),
            None => None,
        };
        // The cycle's record and the job's state together: no reader sees one without
        // the other. A run fenced out at this point still did its work: the record says
        // so, and the new holder plans from the ledger this run wrote.
        if let Err(e) = self
            .store
            .finish_cycle(fence, &cycle, &state, Timestamp::now())
            .await
        {
            if matches!(e, CoreError::LeaseLost(_)) {
                self.store.save_cycle(&cycle).await?;
            }
            return Err(e.into());
        }
        Ok(CycleReport {
            job: spec.name.clone(),
            cycle_id,
            mode,
            status: status.into(),
            counts,
            breaker,
            duration_ms: started.elapsed().as_millis(),
            source_users: users,
            source_groups: groups,
            quarantine: change,
        })
    }

    /// Whether this cycle's outcome quarantines the job (docs/sync.md §7): the target
    /// refused the credentials, or failures passed both the share and the floor.
    fn quarantine_verdict(
        &self,
        spec: &JobSpec,
        counts: &CycleCounts,
    ) -> Option<(&'static str, String)> {
        if counts.stopped.as_deref() == Some(HALT_UNAUTHORIZED) {
            return Some((QUARANTINE_CREDENTIALS, HALT_UNAUTHORIZED.into()));
        }
        let failures = counts.statuses.get("Failure").copied().unwrap_or(0);
        let attempted: u64 = counts
            .statuses
            .iter()
            .filter(|(k, _)| k.as_str() != "Skipped")
            .map(|(_, v)| v)
            .sum();
        let q = &spec.quarantine;
        #[allow(clippy::cast_precision_loss)]
        let share = if attempted == 0 {
            0.0
        } else {
            failures as f64 * 100.0 / attempted as f64
        };
        (failures >= q.min_failures && share >= q.failure_percent).then(|| {
            (
                QUARANTINE_FAILURES,
                format!("{failures} of {attempted} objects failed ({share:.0} %)"),
            )
        })
    }

    /// A cycle that failed as a whole: remembered (the scheduler tries again later), and
    /// a refused credential quarantines the job.
    async fn mark_failed(
        &self,
        fence: Option<&LeaseFence>,
        name: &str,
        cycle_id: &str,
        e: &SyncError,
    ) -> SyncResult<()> {
        if matches!(e, SyncError::Store(CoreError::LeaseLost(_))) {
            // The job's state is the new holder's now.
            return Ok(());
        }
        let now = (self.clock)();
        let mut state = match self.store.job(name).await? {
            Some(r) => r.state,
            None => return Ok(()),
        };
        match e {
            SyncError::Target(c) if c.is_auth() => {
                quarantine_state(&mut state, QUARANTINE_CREDENTIALS, &e.to_string(), now);
            }
            SyncError::Compliance(_) => {
                quarantine_state(&mut state, QUARANTINE_COMPLIANCE, &e.to_string(), now);
            }
            _ => {}
        }
        if let Some(o) = state.as_object_mut() {
            o.remove("running");
            o.insert(
                "last_cycle".into(),
                last_cycle(cycle_id, "failed", Some(&e.to_string())),
            );
        }
        self.store
            .set_job_state(fence, name, &state, Timestamp::now())
            .await?;
        Ok(())
    }

    /// Provisions one source object now (and, for a user, nothing else), returning the
    /// planned action and what happened.
    pub async fn provision_one(
        &self,
        spec: &JobSpec,
        record: Option<&SyncJobRecord>,
        source_id: &str,
    ) -> SyncResult<(PlannedAction, Outcome)> {
        if record.is_none() {
            self.import(spec).await?;
        }
        let record = self.store.job(&spec.name).await?;
        let mut prepared = self.prepare(spec, record.as_ref()).await?;
        let Some(action) = prepared
            .plan
            .actions
            .iter()
            .find(|a| a.source_id == source_id && a.kind == ObjectKind::User)
            .cloned()
        else {
            let known = prepared
                .ledger
                .contains_key(&(ObjectKind::User, source_id.to_string()));
            return Err(SyncError::NotFound(if known {
                format!("user '{source_id}' is already up to date on the target: nothing to do")
            } else {
                format!("no user '{source_id}' in the source")
            }));
        };
        // The watermark is not moved: the next cycle still sees every change.
        prepared.plan.actions.clear();
        let cycle_id = format!("on-demand-{}", uuid::Uuid::new_v4());
        let applier = self.applier(&prepared, &cycle_id, Arc::default());
        let started = std::time::Instant::now();
        let out = applier.execute(&action).await;
        let mut entry = out.entry.clone();
        entry.updated_at = Timestamp::now();
        let mut steps = action.steps.clone();
        steps.extend(out.steps.iter().cloned());
        self.store
            .record_sync(
                None,
                &[entry],
                &[SyncLogRecord {
                    seq: 0,
                    job: spec.name.clone(),
                    cycle_id,
                    change_id: uuid::Uuid::new_v4().to_string(),
                    at: Timestamp::now(),
                    kind: "User".into(),
                    source_id: source_id.into(),
                    target_id: out.target_id.clone(),
                    display: action.display.clone(),
                    action: action.action.as_str().into(),
                    status: out.status.into(),
                    steps: serde_json::to_value(&steps).unwrap_or(Value::Null),
                    changes: json!({"attributes": serde_json::to_value(out.changes.iter().map(crate::plan::PropertyChange::masked).collect::<Vec<_>>()).unwrap_or(Value::Null)}),
                    error_code: out.error_code.clone(),
                    duration_ms: i64::try_from(started.elapsed().as_millis()).unwrap_or(i64::MAX),
                }],
            )
            .await?;
        Ok((action, out))
    }

    /// The user mappings in force and, for `source_id`, what they give that source user
    /// now as for a create (the mapping editor's preview). Reads the source, not the target.
    pub async fn preview_user(
        &self,
        spec: &JobSpec,
        record: Option<&SyncJobRecord>,
        source_id: Option<&str>,
        expression: Option<&str>,
    ) -> SyncResult<UserPreview> {
        let batch = self.source(spec, record)?.read(None).await?;
        let columns: BTreeSet<String> = batch
            .objects
            .iter()
            .flat_map(|o| o.attributes.keys().cloned())
            .collect();
        let mappings = crate::mapping::Mappings::effective(spec, ObjectKind::User, &columns);
        let compiled = crate::mapping::Mappings::compile(spec, ObjectKind::User, &columns);
        let matching = match &compiled {
            Ok(m) => m.matching.iter().map(|p| p.text.clone()).collect(),
            Err(_) => spec.users.matching.clone(),
        };
        let mut preview = UserPreview {
            mappings,
            matching,
            columns: columns.into_iter().collect(),
            groups: batch
                .objects
                .iter()
                .filter(|o| o.kind == ObjectKind::Group)
                .map(SourceObject::display)
                .collect(),
            values: None,
            expression: None,
            error: compiled.as_ref().err().map(ToString::to_string),
        };
        if let (Some(id), Ok(m)) = (source_id.filter(|i| !i.is_empty()), &compiled) {
            let obj = batch
                .objects
                .iter()
                .find(|o| o.kind == ObjectKind::User && o.id == id)
                .ok_or_else(|| SyncError::NotFound(format!("no user '{id}' in the source")))?;
            let now = (self.clock)().to_datetime();
            match m.evaluate(obj, now, true) {
                Ok(mapped) => preview.values = Some(mapped.values),
                Err(e) => preview.error = Some(e),
            }
            if let Some(text) = expression.filter(|t| !t.trim().is_empty()) {
                preview.expression = Some(match crate::expr::parse(text) {
                    Ok(e) => crate::expr::evaluate(&e, &crate::expr::EvalContext::new(obj, now))
                        .map(|v| v.to_json())
                        .map_err(|e| e.to_string()),
                    Err(e) => Err(format!("at {}: {}", e.pos, e.message)),
                });
            }
        }
        Ok(preview)
    }

    /// Discovery plus Entra's probe (engine-behaviour §1.4), each with a verdict.
    pub async fn test(&self, spec: &JobSpec, record: Option<&SyncJobRecord>) -> Vec<Check> {
        self.test_with(spec, record, None).await
    }

    /// [`Engine::test`], reading `file` (a CSV or JSON file in hand: uploaded in the
    /// console, not stored yet) instead of the job's stored or named file.
    pub async fn test_with(
        &self,
        spec: &JobSpec,
        record: Option<&SyncJobRecord>,
        file: Option<SourceFile>,
    ) -> Vec<Check> {
        let mut checks = Vec::new();
        let mut check = |name: &str, r: Result<String, String>| {
            let ok = r.is_ok();
            checks.push(Check {
                name: name.into(),
                ok,
                detail: r.unwrap_or_else(|e| e),
            });
            ok
        };
        let client = match self.token(spec, record).and_then(|t| self.client(spec, &t)) {
            Ok(c) => {
                check(
                    "credentials",
                    Ok(format!("token found for {}", spec.target.url)),
                );
                c
            }
            Err(e) => {
                check("credentials", Err(e.to_string()));
                return checks;
            }
        };
        let profile = match client.discover().await {
            Ok(p) => {
                let d = if p.discovered {
                    format!(
                        "ServiceProviderConfig: patch {}, bulk {}, filter {} (max {}), groups {}",
                        p.patch, p.bulk, p.filter, p.max_results, p.groups
                    )
                } else {
                    "no ServiceProviderConfig: assuming PATCH and filtering".into()
                };
                check("discovery", Ok(d));
                p
            }
            Err(e) => {
                let hint = if e.is_auth() {
                    " (the token was refused)"
                } else {
                    ""
                };
                check("discovery", Err(format!("{e}{hint}")));
                return checks;
            }
        };
        for (name, r) in probe(&client, &profile, spec).await {
            check(&name, r);
        }
        let (source, batch) = self.read_source(spec, record, file).await;
        let detail = source.detail;
        check("source", if source.ok { Ok(detail) } else { Err(detail) });
        if let Some(b) = batch {
            let columns: BTreeSet<String> = b
                .objects
                .iter()
                .flat_map(|o| o.attributes.keys().cloned())
                .collect();
            let r = Mappings::compile(spec, ObjectKind::User, &columns)
                .map_err(|e| e.to_string())
                .and_then(|m| {
                    let missing: Vec<&String> = profile
                        .required_user_attributes
                        .iter()
                        .filter(|r| !m.targets().iter().any(|t| t.eq_ignore_ascii_case(r)))
                        .collect();
                    if missing.is_empty() {
                        Ok(format!(
                            "{} mappings; required target attributes mapped",
                            m.list.len()
                        ))
                    } else {
                        Err(format!(
                            "required target attributes not mapped: {missing:?}"
                        ))
                    }
                });
            check("mappings", r);
        }
        checks
    }

    /// The source check alone (the console's "Test source"): it connects, reads everything
    /// once and counts users and groups; nothing is written anywhere. `file`: as in
    /// [`Engine::test_with`].
    pub async fn test_source(
        &self,
        spec: &JobSpec,
        record: Option<&SyncJobRecord>,
        file: Option<SourceFile>,
    ) -> Check {
        self.read_source(spec, record, file).await.0
    }

    async fn read_source(
        &self,
        spec: &JobSpec,
        record: Option<&SyncJobRecord>,
        file: Option<SourceFile>,
    ) -> (Check, Option<SourceBatch>) {
        let source = match file {
            Some(f) => FileSource::new(&spec.source, FileOrigin::Given(Arc::new(f)), |p| {
                spec.resolve_path(p)
            })
            .map(|s| Box::new(s) as Box<dyn Source>),
            None => self.source(spec, record),
        };
        Self::read_from(source).await
    }

    /// Reads a source once: a check that says what it found (or why not), and what it read.
    async fn read_from(source: SyncResult<Box<dyn Source>>) -> (Check, Option<SourceBatch>) {
        let result = |ok: bool, detail: String| Check {
            name: "source".into(),
            ok,
            detail,
        };
        let s = match source {
            Ok(s) => s,
            Err(e) => return (result(false, e.to_string()), None),
        };
        let d = s.describe();
        match s.read(None).await {
            Ok(b) => {
                let users = b
                    .objects
                    .iter()
                    .filter(|o| o.kind == ObjectKind::User)
                    .count();
                let groups = b.objects.len() - users;
                (
                    result(true, format!("{d}: {users} users, {groups} groups")),
                    Some(b),
                )
            }
            Err(e) => (result(false, format!("{d}: {e}")), None),
        }
    }

    /// Approves (or rejects) every delete the breaker staged for this job.
    pub async fn decide_staged(&self, name: &str, approve: bool) -> SyncResult<u64> {
        let ledger = self.store.ledger(name).await?;
        let mut changed = Vec::new();
        for mut e in ledger {
            let Some(p) = e.pending.as_deref().and_then(crate::plan::Pending::parse) else {
                continue;
            };
            if p.step != "staged" {
                continue;
            }
            let next = crate::plan::Pending {
                step: if approve { "approved" } else { "rejected" }.into(),
                ..p
            };
            e.pending = Some(next.render());
            e.updated_at = Timestamp::now();
            changed.push(e);
        }
        self.store.record_sync(None, &changed, &[]).await?;
        Ok(changed.len() as u64)
    }

    pub async fn status(&self, name: &str) -> SyncResult<JobStatus> {
        Ok(self.status_with_cycles(name, 1).await?.0)
    }

    /// The job's status with the job and its `cycles` newest cycles, all from one read
    /// snapshot: a cycle shown as completed has every outcome in the ledger counts and
    /// its final state in the badge (they are written in that order, in separate
    /// transactions, while it runs).
    pub async fn status_with_cycles(
        &self,
        name: &str,
        cycles: u32,
    ) -> SyncResult<(JobStatus, JobSnapshot)> {
        let snapshot = self
            .store
            .job_snapshot(name, cycles.max(1))
            .await?
            .ok_or_else(|| SyncError::NotFound(format!("no stored job named '{name}'")))?;
        let (record, ledger) = (&snapshot.record, &snapshot.ledger);
        let mut counts = BTreeMap::new();
        let mut staged = 0;
        let mut timers = Vec::new();
        let (mut escrowed, mut abandoned) = (0, 0);
        let now = (self.clock)();
        let spec = JobSpec::parse(&record.spec, None)?;
        for e in ledger {
            *counts.entry(format!("{} {}", e.kind, e.state)).or_insert(0) += 1;
            if let Some(x) = e.escrow {
                if now - x.since >= spec.escrow.abandon() {
                    abandoned += 1;
                } else {
                    escrowed += 1;
                }
            }
            match e.pending.as_deref().and_then(crate::plan::Pending::parse) {
                Some(p) if p.step == "staged" => staged += 1,
                Some(p) if p.step == "timer" => timers.push((e.due_at, json!({
                    "kind": e.kind, "source_id": e.source_id, "action": p.action, "trigger": p.trigger,
                    "due": e.due_at.map(|d| d.rfc3339()),
                }))),
                _ => {}
            }
        }
        timers.sort_by_key(|(d, _)| *d);
        let last = snapshot.cycles.first().map(|c| {
            json!({
                "cycle_id": c.cycle_id, "mode": c.mode, "status": c.status,
                "started": c.started_at.rfc3339(), "finished": c.finished_at.map(|f| f.rfc3339()),
                "duration_ms": c.finished_at.map(|f| (f - c.started_at).whole_milliseconds()),
                "counts": c.counts,
            })
        });
        let quarantine = record.state.get("quarantine").cloned();
        let paused = record.state.get("paused").and_then(Value::as_bool) == Some(true);
        // What needs the operator first: held deletes, then quarantine.
        let state = if staged > 0 {
            "waiting for delete approval"
        } else if quarantine.is_some() {
            "quarantined"
        } else if !record.enabled {
            "off"
        } else if paused {
            "paused"
        } else if record.state.get("initial_done").and_then(Value::as_bool) != Some(true) {
            "initial"
        } else {
            "active"
        };
        let next_run = crate::schedule::next_run(&spec, record, now).map(|t| t.rfc3339());
        let status = JobStatus {
            name: name.into(),
            enabled: record.enabled,
            state: state.into(),
            last_cycle: last,
            ledger: counts,
            staged_deletes: staged,
            escrowed,
            abandoned,
            quarantine,
            next_run,
            next_timers: timers.into_iter().take(10).map(|(_, v)| v).collect(),
        };
        Ok((status, snapshot))
    }

    fn stored(&self, name: &str) -> impl Future<Output = SyncResult<SyncJobRecord>> + '_ {
        let name = name.to_string();
        async move {
            self.store
                .job(&name)
                .await?
                .ok_or_else(|| SyncError::NotFound(format!("no stored job named '{name}'")))
        }
    }

    async fn edit_state(
        &self,
        fence: Option<&LeaseFence>,
        name: &str,
        f: impl FnOnce(&mut serde_json::Map<String, Value>),
    ) -> SyncResult<()> {
        let r = self.stored(name).await?;
        let mut state = r.state;
        if !state.is_object() {
            state = json!({});
        }
        if let Some(o) = state.as_object_mut() {
            f(o);
        }
        self.store
            .set_job_state(fence, name, &state, Timestamp::now())
            .await?;
        Ok(())
    }

    /// Pauses (or resumes) a job. A cycle in flight stops after the objects it is sending
    /// and keeps its position; a resumed job carries on from there.
    pub async fn set_paused(&self, name: &str, paused: bool) -> SyncResult<()> {
        self.edit_state(None, name, |o| {
            if paused {
                o.insert("paused".into(), Value::Bool(true));
            } else {
                o.remove("paused");
            }
        })
        .await
    }

    /// Clears what `scope` names; returns what was cleared, for the operator.
    pub async fn restart(&self, name: &str, scope: RestartScope) -> SyncResult<String> {
        use RestartScope as R;
        let mut done = Vec::new();
        let all = scope == R::Full;
        if all || matches!(scope, R::Watermark | R::Quarantine | R::Links) {
            let links = all || scope == R::Links;
            self.edit_state(None, name, |o| {
                if all || scope == R::Watermark || links {
                    o.remove("watermark");
                    o.remove("fingerprint");
                }
                if all || scope == R::Quarantine {
                    o.remove("quarantine");
                }
                if links {
                    o.insert("initial_done".into(), Value::Bool(false));
                }
            })
            .await?;
            done.push(
                match scope {
                    R::Watermark | R::Links => "watermark",
                    R::Quarantine => "quarantine",
                    _ => "watermark, quarantine",
                }
                .to_string(),
            );
        } else {
            self.stored(name).await?;
        }
        if all || matches!(scope, R::Escrows | R::Links) {
            let mut changed = Vec::new();
            for mut e in self.store.ledger(name).await? {
                let unlink = (all || scope == R::Links) && e.target_id.is_some();
                if e.escrow.is_none() && !unlink {
                    continue;
                }
                e.escrow = None;
                if unlink {
                    // Forgotten, not deleted: the next cycle finds the object by matching
                    // and adopts it, so nothing is created twice.
                    e.target_id = None;
                    e.state = "creating".into();
                    e.exported = crate::plan::Exported::default().to_json();
                    e.pending = None;
                    e.due_at = None;
                }
                e.updated_at = Timestamp::now();
                changed.push(e);
            }
            for chunk in changed.chunks(500) {
                self.store.record_sync(None, chunk, &[]).await?;
            }
            let what = if all || scope == R::Links {
                "links and escrows"
            } else {
                "escrows"
            };
            done.push(format!("{what} of {} object(s)", changed.len()));
        }
        Ok(format!("cleared: {}", done.join("; ")))
    }

    /// Stores a new target token (sealed), tests the connection with it, and lifts the
    /// quarantine if every check passes (the Google guide's Reauthorize).
    pub async fn reauthorize(&self, name: &str, token: &str) -> SyncResult<Vec<Check>> {
        let record = self.stored(name).await?;
        let mut spec = JobSpec::parse(&record.spec, None)?;
        if token.trim().is_empty() {
            return Err(SyncError::Job("the new token is empty".into()));
        }
        let key = self.key.as_ref().ok_or_else(|| {
            SyncError::Secret("no sync key is configured to seal the new token".into())
        })?;
        let mut secrets = match self.sealed(Some(&record), "source")? {
            Some(src) => json!({"source": src}),
            None => json!({}),
        };
        secrets["target"] = Value::String(token.trim().to_string());
        spec.target.token_env = None;
        spec.target.token_file = None;
        let updated = SyncJobRecord {
            spec: spec.to_stored_toml()?,
            sealed_secret: Some(key.seal(name, &secrets.to_string()).map_err(secret_error)?),
            updated_at: Timestamp::now(),
            ..record
        };
        self.store.put_job(&updated).await?;
        let checks = self.test(&spec, Some(&updated)).await;
        if checks.iter().all(|c| c.ok) {
            self.edit_state(None, name, |o| {
                o.remove("quarantine");
            })
            .await?;
        }
        Ok(checks)
    }

    pub async fn log(&self, name: &str, q: &SyncLogQuery) -> SyncResult<Vec<SyncLogRecord>> {
        Ok(self.store.sync_log(name, q).await?)
    }
}
