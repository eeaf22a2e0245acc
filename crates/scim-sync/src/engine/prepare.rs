//! One cycle's inputs, read once: the source (a full read, or what changed since the
//! watermark laid over the ledger's live snapshots), the ledger, the mappings, and the
//! target (one paged read on an initial cycle, lookups after); then the plan. Nothing is
//! written.

use super::Engine;
use crate::error::{SyncError, SyncResult};
use crate::job::JobSpec;
use crate::mapping::Mappings;
use crate::model::{Key, ObjectKind, SourceObject};
use crate::plan::{PlanInput, Planner, SyncPlan};
use crate::source::SourceBatch;
use crate::target::{Lookups, TargetIndex, TargetMatcher};
use scim_client::{ScimClient, TargetProfile};
use scim_core::{LedgerEntry, SyncJobRecord};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};

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

/// The source as it is now: a full read as it is; an incremental one laid over the
/// ledger's live snapshots (never over an object the source reported gone, or one the
/// engine deleted: only the source itself brings those back).
pub fn objects_now(
    batch: SourceBatch,
    ledger: &BTreeMap<Key, LedgerEntry>,
) -> BTreeMap<Key, SourceObject> {
    let mut objects: BTreeMap<Key, SourceObject> = BTreeMap::new();
    if !batch.full {
        for e in ledger.values() {
            if let Some(o) = e.live_snapshot() {
                objects.insert((o.kind, o.id.clone()), o.clone());
            }
        }
        for (k, id) in &batch.deleted {
            objects.remove(&(*k, id.clone()));
        }
        objects.retain(|k, _| batch.present.get(&k.0).is_none_or(|ids| ids.contains(&k.1)));
    }
    for mut o in batch.objects {
        let key = (o.kind, o.id.clone());
        // The base a change is laid over: the live snapshot. An object that comes back
        // after it was gone (a restored or re-created one) starts from what the change
        // says: Graph lists a returning group's members again.
        let base = batch.merge.then(|| objects.get(&key)).flatten();
        if let Some(old) = base {
            let mut attributes = old.attributes.clone();
            for (k, v) in std::mem::take(&mut o.attributes) {
                if v.is_null() {
                    attributes.remove(&k);
                } else {
                    attributes.insert(k, v);
                }
            }
            o.attributes = attributes;
            o.members = old.members.clone();
        }
        objects.insert(key, o);
    }
    for (id, change) in &batch.member_changes {
        if let Some(g) = objects.get_mut(&(ObjectKind::Group, id.clone())) {
            g.members = change.apply(&g.members);
        }
    }
    for id in &batch.suspended {
        if let Some(u) = objects.get_mut(&(ObjectKind::User, id.clone())) {
            u.suspended = true;
        }
    }
    objects
}

impl Engine {
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
            .map(|e| ((e.kind, e.source_id.clone()), e))
            .collect();
        let state = record.map(|r| &r.state);
        // A job whose ledger is empty starts from scratch, whatever its state says.
        let watermark = state
            .and_then(|s| s.watermark.as_ref())
            .filter(|_| !ledger.is_empty());
        let batch = self.source(spec, record, None)?.read(watermark).await?;
        let next_watermark = batch.watermark.clone();
        let guarded = batch.guarded;
        let objects = objects_now(batch, &ledger);
        let mut columns: BTreeSet<String> = objects
            .values()
            .filter(|o| o.kind == ObjectKind::User)
            .flat_map(|o| o.attributes.keys().cloned())
            .collect();
        if columns.is_empty() {
            // No user read (an export with only its header): the mappings stay those of
            // the last read, so that the complete-read guard holds the deletes, rather
            // than the default mappings failing for want of columns.
            columns = ledger
                .values()
                .filter(|e| e.kind == ObjectKind::User)
                .filter_map(|e| e.source.as_ref())
                .flat_map(|o| o.attributes.keys().cloned())
                .collect();
        }
        let users = Mappings::compile(spec, ObjectKind::User, &columns)?;
        let groups = Mappings::compile(spec, ObjectKind::Group, &columns)?;
        let missing = missing_required(&profile, &users);
        if !missing.is_empty() {
            return Err(SyncError::Job(format!(
                "the target requires {} but no user mapping writes it (mandatory attributes)",
                missing.join(", ")
            )));
        }
        let source_counts = (
            objects.keys().filter(|k| k.0 == ObjectKind::User).count(),
            objects.keys().filter(|k| k.0 == ObjectKind::Group).count(),
        );
        // Initial until one initial cycle went through its whole plan: a resumed initial
        // cycle still matches against one read of the target.
        let initial = match state.and_then(|s| s.initial_done) {
            Some(done) => !done || ledger.is_empty(),
            None => !ledger.values().any(|e| e.target_id.is_some()),
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
            now: self.now(),
            config_unchanged: state.and_then(|s| s.fingerprint.as_deref())
                == Some(fingerprint.as_str()),
        };
        let plan = planner
            .plan(&PlanInput {
                objects: &objects,
                ledger: &ledger,
                matcher,
                initial,
                guarded,
            })
            .await?;
        let held_read = guarded && plan.breaker.is_some();
        Ok(Prepared {
            spec: spec.clone(),
            plan,
            client,
            profile,
            users,
            groups,
            ledger,
            // A guarded read whose disables and deletes were held is read whole again next
            // cycle: a delta source's position must not move past what it may have missed.
            watermark: if held_read { None } else { next_watermark },
            source_counts,
            fingerprint,
        })
    }
}

/// Attributes the target's schema requires that no user mapping writes.
pub(super) fn missing_required(profile: &TargetProfile, users: &Mappings) -> Vec<String> {
    profile
        .required_user_attributes
        .iter()
        .filter(|r| {
            !users
                .targets()
                .iter()
                .any(|t| t.eq_ignore_ascii_case(r) || t.starts_with(&format!("{r}.")))
        })
        .cloned()
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use scim_core::Timestamp;

    fn user(id: &str) -> SourceObject {
        SourceObject::new(ObjectKind::User, id)
    }

    /// An incremental read builds on the ledger's snapshots, but never on the snapshot of
    /// an object the source reported gone: a leaver never comes back from the ledger.
    #[test]
    fn a_gone_object_is_not_rebuilt_from_its_snapshot() {
        let mut ledger = BTreeMap::new();
        for (id, gone) in [("a", false), ("b", true), ("c", false)] {
            let mut e = LedgerEntry::new("j", ObjectKind::User, id, Timestamp::EPOCH);
            e.source = Some(user(id));
            e.gone_since = gone.then_some(Timestamp::EPOCH);
            ledger.insert((ObjectKind::User, id.to_string()), e);
        }
        let batch = SourceBatch {
            full: false,
            deleted: vec![(ObjectKind::User, "c".into())],
            ..SourceBatch::default()
        };
        let now: Vec<String> = objects_now(batch, &ledger)
            .into_values()
            .map(|o| o.id)
            .collect();
        assert_eq!(now, ["a"]);
        let restored = SourceBatch {
            full: false,
            objects: vec![user("b")],
            ..SourceBatch::default()
        };
        let now: Vec<String> = objects_now(restored, &ledger)
            .into_values()
            .map(|o| o.id)
            .collect();
        assert_eq!(now, ["a", "b", "c"], "the source itself brings b back");
    }

    /// A delta source's objects carry what changed: laid over the snapshot (null clears),
    /// members through their changes, a suspension alone as a flag.
    #[test]
    fn a_delta_is_laid_over_the_snapshot() {
        use crate::source::MemberChange;
        use serde_json::json;
        let mut ledger = BTreeMap::new();
        let mut u = user("u");
        u.attributes.insert("mail".into(), json!("u@x.com"));
        u.attributes.insert("jobTitle".into(), json!("Engineer"));
        u.attributes.insert("manager".into(), json!("m"));
        let mut g = SourceObject::new(ObjectKind::Group, "g");
        g.members = vec!["u".into(), "v".into()];
        for o in [u, g, user("v")] {
            let mut e = LedgerEntry::new("j", o.kind, &o.id, Timestamp::EPOCH);
            e.source = Some(o.clone());
            ledger.insert((o.kind, o.id.clone()), e);
        }
        let mut changed = user("u");
        changed.attributes.insert("jobTitle".into(), json!("Lead"));
        changed
            .attributes
            .insert("manager".into(), serde_json::Value::Null);
        let batch = SourceBatch {
            objects: vec![changed, SourceObject::new(ObjectKind::Group, "g")],
            merge: true,
            member_changes: [(
                "g".to_string(),
                MemberChange {
                    added: vec!["w".into(), "u".into()],
                    removed: vec!["v".into()],
                },
            )]
            .into(),
            suspended: vec!["v".into()],
            ..SourceBatch::default()
        };
        let now = objects_now(batch, &ledger);
        let u = &now[&(ObjectKind::User, "u".to_string())];
        assert_eq!(u.attributes["mail"], "u@x.com", "kept");
        assert_eq!(u.attributes["jobTitle"], "Lead", "changed");
        assert!(!u.attributes.contains_key("manager"), "cleared");
        assert_eq!(
            now[&(ObjectKind::Group, "g".to_string())].members,
            ["u", "w"]
        );
        assert!(now[&(ObjectKind::User, "v".to_string())].suspended);
    }
}
