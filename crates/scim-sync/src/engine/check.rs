//! The checks an administrator runs before turning a job on (Entra's Test Connection and
//! Provision on demand): the credentials, discovery, the compliance probe, the source and
//! the mappings, each with a verdict; the mapping editor's preview (provision on demand
//! is `on_demand`).

use super::Engine;
use super::cycle::probe;
use super::on_demand::names_exactly;
use super::prepare::missing_required;
use crate::error::{SyncError, SyncResult};
use crate::job::{JobSpec, Mapping};
use crate::mapping::Mappings;
use crate::model::client_kind;
use crate::model::{ObjectKind, SourceObject};
use crate::source::{Source, SourceBatch};
use scim_client::{ScimClient, TargetProfile};
use scim_core::{SourceFile, SyncJobRecord};
use serde::Serialize;
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};

#[derive(Debug, Clone, Serialize)]
pub struct Check {
    pub name: String,
    /// Passed, or could not be tested (see `untested`): nothing found wrong.
    pub ok: bool,
    pub detail: String,
    /// The check could not tell (the target's answer said neither yes nor no): never shown
    /// as a pass.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub untested: bool,
}

/// Source users offered to preview the mappings by.
pub const PREVIEW_USERS: usize = 50;

/// The mapping editor's view of a job's user mappings.
#[derive(Debug, Clone)]
pub struct UserPreview {
    pub mappings: Vec<Mapping>,
    /// Matching attributes, in precedence order.
    pub matching: Vec<String>,
    /// The attribute names the source's objects carry.
    pub columns: Vec<String>,
    /// The source's groups by display name (the scope's group picker).
    pub groups: Vec<String>,
    /// The first [`PREVIEW_USERS`] source users (id, name), to preview by.
    pub users: Vec<(String, String)>,
    /// The previewed user's source id and name (the form may name it by userName or
    /// e-mail).
    pub user: Option<(String, String)>,
    /// What the mappings give the chosen user (target path → value).
    pub values: Option<BTreeMap<String, Value>>,
    /// The tested expression's value for the chosen user, or why it failed.
    pub expression: Option<Result<Value, String>>,
    /// Why the mappings cannot be compiled or evaluated.
    pub error: Option<String>,
    /// The group mappings in force (Entra's second mapping), their matching attributes
    /// and why they cannot be compiled.
    pub group_mappings: Vec<Mapping>,
    pub group_matching: Vec<String>,
    pub group_error: Option<String>,
}

fn columns_of(objects: &[SourceObject]) -> BTreeSet<String> {
    objects
        .iter()
        .filter(|o| o.kind == ObjectKind::User)
        .flat_map(|o| o.attributes.keys().cloned())
        .collect()
}

impl Engine {
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
        let mut check = |name: &str, v: Verdict| {
            let (ok, untested, detail) = match v {
                Verdict::Pass(d) => (true, false, d),
                Verdict::Untested(d) => (true, true, d),
                Verdict::Fail(d) => (false, false, d),
            };
            checks.push(Check {
                name: name.into(),
                ok,
                detail,
                untested,
            });
        };
        let client = match self.token(spec, record).and_then(|t| self.client(spec, &t)) {
            Ok(c) => {
                check(
                    "token",
                    Verdict::Pass(format!(
                        "a token is set for {} (discovery below tries it)",
                        spec.target.url
                    )),
                );
                c
            }
            Err(e) => {
                check("token", Verdict::Fail(e.to_string()));
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
                check("discovery", Verdict::Pass(d));
                p
            }
            Err(e) => {
                let hint = match e.status() {
                    Some(401) => {
                        " — the target refused the token: check that the URL names the right \
                         tenant (a scimd target: …/t/<tenant>/scim/v2, and the tenant exists) \
                         and that the token was made for that tenant and is not revoked or expired"
                    }
                    Some(403) => {
                        " — the token may not read users: give it users:rw (and groups:rw)"
                    }
                    Some(404) => " — no SCIM endpoint at this URL: check its path (…/scim/v2)",
                    _ => "",
                };
                check("discovery", Verdict::Fail(format!("{e}{hint}")));
                return checks;
            }
        };
        for (name, r) in probe(&client, &profile, spec).await {
            check(&name, r.into());
        }
        for (name, v) in write_access(&client, &profile, spec).await {
            check(&name, v);
        }
        let (source, batch) = self.read_source(spec, record, file).await;
        let detail = source.detail;
        check(
            "source",
            if source.ok {
                Verdict::Pass(detail)
            } else {
                Verdict::Fail(detail)
            },
        );
        if let Some(b) = batch {
            let r = Mappings::compile(spec, ObjectKind::User, &columns_of(&b.objects))
                .map_err(|e| e.to_string())
                .and_then(|m| {
                    let missing = missing_required(&profile, &m);
                    if missing.is_empty() {
                        Ok(format!(
                            "{} mappings; required target attributes mapped",
                            m.list.len()
                        ))
                    } else {
                        Err(format!(
                            "required target attributes not mapped: {}",
                            missing.join(", ")
                        ))
                    }
                });
            check("mappings", r.into());
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

    /// Reads a source once: a check that says what it found (or why not), and what it read.
    async fn read_source(
        &self,
        spec: &JobSpec,
        record: Option<&SyncJobRecord>,
        file: Option<SourceFile>,
    ) -> (Check, Option<SourceBatch>) {
        let result = |ok: bool, detail: String| Check {
            name: "source".into(),
            ok,
            detail,
            untested: false,
        };
        let s: Box<dyn Source> = match self.source(spec, record, file) {
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
                let suspended = b.objects.iter().filter(|o| o.suspended).count();
                let groups = b.objects.len() - users;
                let mut detail = format!("{d}: {users} users, {groups} groups");
                if suspended > 0 {
                    detail.push_str(&format!(" ({suspended} users suspended)"));
                }
                (result(true, detail), Some(b))
            }
            Err(e) => (result(false, format!("{d}: {e}")), None),
        }
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
        let batch = self.source(spec, record, None)?.read(None).await?;
        let columns = columns_of(&batch.objects);
        let mappings = Mappings::effective(spec, ObjectKind::User, &columns);
        let compiled = Mappings::compile(spec, ObjectKind::User, &columns);
        let matching = match &compiled {
            Ok(m) => m.matching.iter().map(|p| p.text.clone()).collect(),
            Err(_) => spec.users.matching.clone(),
        };
        let group_columns: BTreeSet<String> = batch
            .objects
            .iter()
            .filter(|o| o.kind == ObjectKind::Group)
            .flat_map(|o| o.attributes.keys().cloned())
            .collect();
        let groups_compiled = Mappings::compile(spec, ObjectKind::Group, &group_columns);
        let mut preview = UserPreview {
            group_mappings: Mappings::effective(spec, ObjectKind::Group, &group_columns),
            group_matching: match &groups_compiled {
                Ok(m) => m.matching.iter().map(|p| p.text.clone()).collect(),
                Err(_) => spec.groups.matching.clone(),
            },
            group_error: groups_compiled.err().map(|e| e.to_string()),
            mappings,
            matching,
            columns: columns.into_iter().collect(),
            groups: batch
                .objects
                .iter()
                .filter(|o| o.kind == ObjectKind::Group)
                .map(SourceObject::display)
                .collect(),
            users: batch
                .objects
                .iter()
                .filter(|o| o.kind == ObjectKind::User)
                .take(PREVIEW_USERS)
                .map(|o| (o.id.clone(), super::on_demand::name_of(o)))
                .collect(),
            user: None,
            values: None,
            expression: None,
            error: compiled.as_ref().err().map(ToString::to_string),
        };
        let (Some(id), Ok(m)) = (source_id.filter(|i| !i.is_empty()), &compiled) else {
            return Ok(preview);
        };
        let users = || batch.objects.iter().filter(|o| o.kind == ObjectKind::User);
        let obj = users()
            .find(|o| o.id == id)
            .or_else(|| users().find(|o| names_exactly(o, id)))
            .ok_or_else(|| {
                SyncError::NotFound(format!(
                    "no user with the id, userName or e-mail '{id}' in the source"
                ))
            })?
            .clone();
        preview.user = Some((obj.id.clone(), super::on_demand::name_of(&obj)));
        let now = self.now().to_datetime();
        let (m, text) = (m.clone(), expression.map(str::to_string));
        // CPU work with a bounded cost (expr::budget), kept off the async workers all the
        // same: the console's tester is where hostile expressions are typed first.
        let (mapped, tested) = tokio::task::spawn_blocking(move || {
            let mapped = m.evaluate(&obj, now, true);
            let tested =
                text.filter(|t| !t.trim().is_empty())
                    .map(|text| match crate::expr::parse(&text) {
                        Ok(e) => {
                            crate::expr::evaluate(&e, &crate::expr::EvalContext::new(&obj, now))
                                .map(|v| v.to_json())
                                .map_err(|e| e.to_string())
                        }
                        Err(e) => Err(format!("at {}: {}", e.pos, e.message)),
                    });
            (mapped, tested)
        })
        .await
        .map_err(|e| SyncError::Internal(format!("the preview task failed: {e}")))?;
        match mapped {
            Ok(mapped) => preview.values = Some(mapped.values),
            Err(e) => preview.error = Some(e),
        }
        preview.expression = tested;
        Ok(preview)
    }
}

/// A check's verdict, with what it found: "not tested" is never shown as a pass.
enum Verdict {
    Pass(String),
    Fail(String),
    Untested(String),
}

impl From<Result<String, String>> for Verdict {
    fn from(r: Result<String, String>) -> Self {
        r.map_or_else(Verdict::Fail, Verdict::Pass)
    }
}

/// Whether the token may write, without writing anything: a PATCH (and, where the engine
/// would use Bulk, a Bulk request holding one) of a random id that exists nowhere. A target
/// that checks permissions first answers 403 when the token may only read, 404 when it may
/// write. An answer that says neither is "not tested". The target logs the 404s.
async fn write_access(
    client: &ScimClient,
    profile: &TargetProfile,
    spec: &JobSpec,
) -> Vec<(String, Verdict)> {
    let probe = uuid::Uuid::new_v4().to_string();
    let user_op = json!({"op": "replace", "path": "active", "value": true});
    let mut kinds = vec![(ObjectKind::User, user_op.clone())];
    if profile.groups && spec.target.groups {
        kinds.push((
            ObjectKind::Group,
            json!({"op": "replace", "path": "displayName", "value": "scimd write check"}),
        ));
    }
    let mut out = Vec::new();
    for (kind, op) in kinds {
        let rk = client_kind(kind);
        let name = format!("write /{}", rk.endpoint());
        let v = if profile.patch {
            let r = client.patch(rk, &probe, std::slice::from_ref(&op)).await;
            write_verdict(rk.endpoint(), r.map(|a| a.found))
        } else {
            Verdict::Untested(
                "write access not tested: the target does not support PATCH".to_string(),
            )
        };
        out.push((name, v));
    }
    if profile.bulk && profile.patch && spec.target.bulk > 0 {
        let op = json!({
            "method": "PATCH",
            "path": format!("/Users/{probe}"),
            "data": {"schemas": [scim_client::PATCH_OP], "Operations": [user_op]},
        });
        let fallback = "the engine sends one request per object instead (slower)";
        let v = match client.bulk(vec![op]).await {
            Ok(r) => match r.first().map(|o| o.status) {
                Some(404) => Verdict::Pass(
                    "a Bulk request (one PATCH of a random id → 404) was accepted".to_string(),
                ),
                Some(403) => Verdict::Untested(format!(
                    "Bulk refused this token's PATCH (403): {fallback}; give the token Bulk write access to use it"
                )),
                other => Verdict::Untested(format!(
                    "Bulk not tested (the PATCH inside answered {}): {fallback} if Bulk fails",
                    other.map_or_else(|| "nothing".to_string(), |s| s.to_string())
                )),
            },
            Err(e) if e.status() == Some(401) => Verdict::Fail(format!("Bulk: {e}")),
            Err(e) => Verdict::Untested(format!("Bulk not tested ({e}): {fallback}")),
        };
        out.push(("write /Bulk".to_string(), v));
    }
    out
}

/// What a PATCH of a random id says of the token's write access. Pure.
fn write_verdict(endpoint: &str, r: Result<bool, scim_client::ClientError>) -> Verdict {
    match r {
        Ok(false) => Verdict::Pass(format!(
            "PATCH of a random id → 404: the token may write {endpoint} (nothing was changed)"
        )),
        Ok(true) => Verdict::Untested(
            "write access not tested: a PATCH of a random id answered 2xx (the target did not say the id is unknown)"
                .to_string(),
        ),
        Err(e) => match e.status() {
            Some(403) => Verdict::Fail(format!(
                "PATCH of a random id → {e} — the token may read but not write {endpoint}: give it write access (for scimd, an Identity provider token)"
            )),
            Some(401) => Verdict::Fail(format!(
                "PATCH of a random id → {e} — the target refused the token"
            )),
            _ => Verdict::Untested(format!(
                "write access not tested: PATCH of a random id → {e}"
            )),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(status: u16) -> scim_client::ClientError {
        scim_client::ClientError::Status {
            status,
            scim_type: None,
            detail: Some("no".into()),
            retry_after: None,
        }
    }

    #[test]
    fn what_a_patch_of_a_random_id_says() {
        let kind = |v: Verdict| match v {
            Verdict::Pass(_) => "pass",
            Verdict::Fail(_) => "fail",
            Verdict::Untested(_) => "untested",
        };
        let cases = [
            (Ok(false), "pass"),
            (Ok(true), "untested"),
            (Err(refused(403)), "fail"),
            (Err(refused(401)), "fail"),
            (Err(refused(405)), "untested"),
            (Err(refused(400)), "untested"),
            (Err(refused(500)), "untested"),
        ];
        for (r, want) in cases {
            assert_eq!(kind(write_verdict("Users", r)), want);
        }
    }
}
