//! Provision on demand (Entra's): find a source user by id, name or e-mail with what the
//! scope says of them, and provision one user alone now.

use super::Engine;
use crate::apply::{Applier, ApplyConfig, Outcome};
use crate::error::{SyncError, SyncResult};
use crate::job::JobSpec;
use crate::model::{Key, ObjectKind, SourceObject};
use crate::plan::PlannedAction;
use crate::plan::scoping::Scoping;
use scim_core::{LedgerEntry, LedgerState, PendingStep, SyncJobRecord};
use serde_json::Value;
use std::collections::BTreeMap;
use std::sync::Arc;

/// A source user that matches what the administrator typed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    pub id: String,
    pub display: String,
    pub email: Option<String>,
    pub suspended: bool,
    /// Why the user is in scope, or `Err(why not)`.
    pub scope: Result<String, String>,
    /// What was typed is this user's id, userName or e-mail (not a part of a name): the
    /// console provisions it at once; anything looser is offered to pick from.
    pub exact: bool,
}

/// What provisioning one user did.
pub enum OnDemand {
    /// Its action ran; the log row (an `on-demand-` cycle) records it.
    Done(Box<PlannedAction>, Box<Outcome>),
    /// Nothing to send, and why, from the ledger's state.
    NothingToDo(String),
}

/// How many candidates a search returns at most.
pub const CANDIDATES: usize = 20;

/// The user's e-mail, as the usual attributes carry it (a userName that is an address
/// counts).
fn email_of(o: &SourceObject) -> Option<String> {
    [
        "mail",
        "email",
        "primaryEmail",
        "emails.value",
        "userPrincipalName",
        "userName",
    ]
    .iter()
    .filter_map(|k| o.attributes.get(*k).and_then(Value::as_str))
    .find(|v| v.contains('@'))
    .map(str::to_string)
}

/// A name for people: the display name, else given and family name, else the log's name.
pub(super) fn name_of(o: &SourceObject) -> String {
    let text = |k: &str| {
        o.attributes
            .get(k)
            .and_then(Value::as_str)
            .filter(|v| !v.trim().is_empty())
    };
    if let Some(d) = text("displayName") {
        return d.to_string();
    }
    match (text("givenName"), text("familyName").or(text("surname"))) {
        (Some(g), Some(f)) => format!("{g} {f}"),
        _ => o.display(),
    }
}

/// Whether `query` names `o` exactly: its id, or its userName or e-mail in any case.
pub(super) fn names_exactly(o: &SourceObject, query: &str) -> bool {
    let q = query.trim();
    let user_name = o.attributes.get("userName").and_then(Value::as_str);
    o.id == q
        || user_name.is_some_and(|u| u.eq_ignore_ascii_case(q))
        || email_of(o).is_some_and(|e| e.eq_ignore_ascii_case(q))
}

/// Whether `o` answers `q` (lower case): its id exactly, or its display name, e-mail or
/// any text attribute containing it.
fn answers(o: &SourceObject, q: &str) -> bool {
    o.id.to_lowercase() == q
        || o.display().to_lowercase().contains(q)
        || o.attributes
            .values()
            .filter_map(Value::as_str)
            .any(|v| v.to_lowercase().contains(q))
}

/// The users answering `query`, best first: an exact id alone if there is one, else up to
/// [`CANDIDATES`] by display name, and one more when there are more (so a caller can say
/// so). Pure.
pub fn search<'a>(objects: &'a BTreeMap<Key, SourceObject>, query: &str) -> Vec<&'a SourceObject> {
    let q = query.trim().to_lowercase();
    if q.is_empty() {
        return Vec::new();
    }
    let users = || objects.values().filter(|o| o.kind == ObjectKind::User);
    if let Some(exact) = users().find(|o| o.id == query.trim()) {
        return vec![exact];
    }
    let mut found: Vec<&SourceObject> = users().filter(|o| answers(o, &q)).collect();
    found.sort_by_key(|o| (o.display().to_lowercase(), o.id.clone()));
    found.truncate(CANDIDATES + 1);
    found
}

/// Why nothing was sent for a user the plan left alone, from its ledger row.
pub fn nothing_to_do(id: &str, entry: Option<&LedgerEntry>) -> String {
    let Some(e) = entry else {
        return format!("user '{id}' is not provisioned, and the plan has nothing to send");
    };
    if let Some(p) = e.pending {
        let verb = p.verb.as_str();
        return match p.step {
            PendingStep::Timer => format!(
                "user '{id}' has a {verb} scheduled for {} ({}): see Scheduled deprovisioning",
                e.due_at
                    .map_or_else(|| "later".to_string(), |d| d.minutes_text()),
                p.trigger.as_str()
            ),
            PendingStep::Staged => format!(
                "user '{id}' has a {verb} held by the deletion breaker: approve or reject it"
            ),
            PendingStep::Rejected => format!(
                "an operator chose to keep user '{id}' on the target ({verb} rejected or cancelled): nothing to send until its state at the source changes"
            ),
            PendingStep::Approved => {
                format!("user '{id}' has an approved {verb}: the next cycle sends it")
            }
        };
    }
    if let Some(x) = e.escrow {
        return format!(
            "user '{id}' is in escrow after failing since {}: it is retried at {}",
            x.since.minutes_text(),
            x.retry_at.minutes_text()
        );
    }
    match e.state {
        LedgerState::OutOfScope => {
            format!("user '{id}' is out of scope and not on the target: nothing to send")
        }
        LedgerState::Deleted => {
            format!("user '{id}' was deleted from the target and is not provisioned again")
        }
        LedgerState::Disabled => {
            format!("user '{id}' is disabled on the target and stays so: nothing to send")
        }
        LedgerState::Conflict => format!(
            "user '{id}' matches several objects on the target (a conflict): nothing is sent until it is resolved"
        ),
        _ if e.target_id.is_some() => {
            format!("user '{id}' is already up to date on the target: nothing to send")
        }
        _ => format!(
            "user '{id}' is not linked to a target object, and the plan has nothing to send"
        ),
    }
}

impl Engine {
    /// The source users answering `query` (id, name or e-mail), each with its scoping
    /// verdict. Reads the source; writes nothing.
    pub async fn find_users(
        &self,
        spec: &JobSpec,
        record: Option<&SyncJobRecord>,
        query: &str,
    ) -> SyncResult<Vec<Candidate>> {
        if query.trim().is_empty() {
            return Err(SyncError::Job(
                "type a source user's id, name or e-mail".into(),
            ));
        }
        let batch = self.source(spec, record, None)?.read(None).await?;
        let objects: BTreeMap<Key, SourceObject> = batch
            .objects
            .into_iter()
            .map(|o| ((o.kind, o.id.clone()), o))
            .collect();
        let scoping = Scoping::new(spec, &objects).map_err(SyncError::Job)?;
        Ok(search(&objects, query)
            .into_iter()
            .map(|o| Candidate {
                id: o.id.clone(),
                display: name_of(o),
                email: email_of(o),
                suspended: o.suspended,
                scope: scoping.user(o),
                exact: names_exactly(o, query),
            })
            .collect())
    }

    /// Provisions one source user now (and nothing else). The watermark does not move: the
    /// next cycle still sees every change.
    pub async fn provision_one(
        &self,
        spec: &JobSpec,
        record: Option<&SyncJobRecord>,
        source_id: &str,
    ) -> SyncResult<OnDemand> {
        if record.is_none() {
            self.import(spec).await?;
        }
        let record = self.stored(&spec.name).await?;
        let prepared = self.prepare(spec, Some(&record)).await?;
        let Some(action) = prepared
            .plan
            .actions
            .iter()
            .find(|a| a.source_id == source_id && a.kind == ObjectKind::User)
            .cloned()
        else {
            let key = (ObjectKind::User, source_id.to_string());
            return match prepared.ledger.get(&key) {
                None => Err(SyncError::NotFound(format!(
                    "no user '{source_id}' in the source"
                ))),
                entry => Ok(OnDemand::NothingToDo(nothing_to_do(source_id, entry))),
            };
        };
        let applier = Applier::new(
            ApplyConfig {
                spec: prepared.spec.clone(),
                users: prepared.users,
                groups: prepared.groups,
                client: prepared.client,
                profile: prepared.profile,
                cycle_id: format!("on-demand-{}", uuid::Uuid::new_v4()),
            },
            &prepared.ledger,
            self.store.clone(),
            self.clock.clone(),
            Arc::default(),
        );
        let started = std::time::Instant::now();
        let out = applier.execute(&action).await;
        applier.record_now(&action, &out, started).await?;
        Ok(OnDemand::Done(Box::new(action), Box::new(out)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn user(id: &str, attrs: Value) -> ((ObjectKind, String), SourceObject) {
        let mut o = SourceObject::new(ObjectKind::User, id);
        o.attributes = attrs.as_object().cloned().unwrap_or_default();
        ((ObjectKind::User, id.to_string()), o)
    }

    #[test]
    fn search_by_id_name_or_email() {
        let objects: BTreeMap<Key, SourceObject> = [
            user(
                "E1",
                json!({"userName": "ada@example.com", "displayName": "Ada Lovelace"}),
            ),
            user(
                "E2",
                json!({"userName": "alan@example.com", "displayName": "Alan Turing"}),
            ),
            user(
                "E12",
                json!({"userName": "grace@example.com", "department": "Navy"}),
            ),
        ]
        .into_iter()
        .collect();
        let ids =
            |q: &str| -> Vec<String> { search(&objects, q).iter().map(|o| o.id.clone()).collect() };
        let cases: [(&str, &[&str]); 7] = [
            ("E1", &["E1"]),           // an exact id alone, though E12 contains it
            (" E2 ", &["E2"]),         // trimmed
            ("ada", &["E1"]),          // by name
            ("ALAN@EXAMPLE", &["E2"]), // by e-mail, any case
            ("example.com", &["E1", "E2", "E12"]),
            ("navy", &["E12"]), // any text attribute
            ("", &[]),
        ];
        for (q, want) in cases {
            assert_eq!(
                ids(q),
                want.iter().map(|s| s.to_string()).collect::<Vec<_>>(),
                "{q}"
            );
        }
    }

    #[test]
    fn nothing_to_do_says_why() {
        let entry = |state, linked: bool| {
            let mut e = LedgerEntry::new("j", ObjectKind::User, "u", scim_core::Timestamp::now());
            e.state = state;
            e.target_id = linked.then(|| "t".to_string());
            e
        };
        let cases = [
            (
                Some(entry(LedgerState::OutOfScope, false)),
                "out of scope and not on the target",
            ),
            (Some(entry(LedgerState::Active, true)), "already up to date"),
            (
                Some(entry(LedgerState::Disabled, true)),
                "disabled on the target",
            ),
            (
                Some(entry(LedgerState::Deleted, false)),
                "deleted from the target",
            ),
            (Some(entry(LedgerState::Conflict, false)), "a conflict"),
            (
                Some(LedgerEntry {
                    pending: Some(scim_core::Pending::timer(
                        scim_core::Verb::Delete,
                        scim_core::Trigger::Deleted,
                    )),
                    ..entry(LedgerState::Active, true)
                }),
                "a delete scheduled for",
            ),
            (None, "not provisioned"),
        ];
        for (e, want) in cases {
            let text = nothing_to_do("u", e.as_ref());
            assert!(text.contains(want), "{text}");
        }
    }
}
