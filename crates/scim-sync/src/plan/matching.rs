//! Matching a new source object to a target object (docs/sync.md §5.3): one unowned
//! candidate is adopted, several are a conflict, none is a create; `on_conflict` decides
//! what one candidate means. Pure: the planner looks the candidates up.

use crate::job::ConflictPolicy;
use serde_json::Value;

#[derive(Debug, Clone, PartialEq)]
pub enum Match {
    /// No target object has the value (or matching is off): create.
    Create,
    /// Exactly one unowned target object has it: adopt it.
    Adopt { id: String, object: Value },
    /// One has it and the policy is `report`: leave it alone, log a conflict.
    Report { id: String },
    /// One has it, but it holds an administrator's role and `adopt_privileged` is off:
    /// left alone, logged (an identity named like an admin must not take the account over).
    Privileged { id: String },
    /// Several have it: none is adopted.
    Duplicates { ids: Vec<String> },
}

/// The outcome for `candidates` (target objects with the matching value that no other
/// source object owns; `None` when matching is off). `ours`: the object may already have
/// been created by this job (an interrupted cycle, a lost answer), so a match is its own
/// whatever the policy.
pub fn decide(
    candidates: Option<Vec<Value>>,
    policy: ConflictPolicy,
    ours: bool,
    adopt_privileged: bool,
) -> Match {
    let Some(mut c) = candidates else {
        return Match::Create;
    };
    let id_of = |v: &Value| {
        v.get("id")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string()
    };
    match c.len() {
        0 => Match::Create,
        1 => {
            let object = c.remove(0);
            let id = id_of(&object);
            if !ours && policy == ConflictPolicy::Report {
                Match::Report { id }
            } else if !ours && !adopt_privileged && privileged(&object) {
                Match::Privileged { id }
            } else {
                Match::Adopt { id, object }
            }
        }
        _ => Match::Duplicates {
            ids: c.iter().map(id_of).collect(),
        },
    }
}

/// Whether a role's text names an administrator's: `admin` anywhere (Admins, GlobalAdmin,
/// sysadmin; a rare false positive such as "badminton" only means a report instead of an
/// adoption), or the words owner, root, superuser.
fn privileged_text(text: &str) -> bool {
    let t = text.to_lowercase();
    t.contains("admin")
        || t.split(|c: char| !c.is_alphanumeric())
            .any(|w| matches!(w, "owner" | "owners" | "root" | "superuser" | "superusers"))
}

/// Whether a target object holds an administrator's role: a `roles` or `entitlements`
/// value, display or type, or a group it is in (`groups[].display`), naming one. Such an
/// account pre-dates the job (someone made it by hand) and is not adopted by matching unless
/// the job says so (docs/security.md, "Adoption").
pub fn privileged(object: &Value) -> bool {
    let items = |attr: &str| {
        object
            .get(attr)
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default()
    };
    let named = |v: &Value, keys: &[&str]| {
        keys.iter()
            .filter_map(|k| v.get(*k).and_then(Value::as_str))
            .any(privileged_text)
    };
    let role_like = ["roles", "entitlements"]
        .iter()
        .flat_map(|a| items(a))
        .any(|v| named(&v, &["value", "display", "type"]));
    role_like || items("groups").iter().any(|g| named(g, &["display"]))
}

/// Whether the planner looks candidates up at all.
pub fn looks_up(policy: ConflictPolicy, ours: bool) -> bool {
    ours || policy != ConflictPolicy::CreateOnly
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_outcomes() {
        use ConflictPolicy as P;
        let one = || Some(vec![json!({"id": "t1"})]);
        let two = || Some(vec![json!({"id": "t1"}), json!({"id": "t2"})]);
        let adopt = Match::Adopt {
            id: "t1".into(),
            object: json!({"id": "t1"}),
        };
        let cases = [
            (None, P::CreateOnly, false, Match::Create),
            (Some(vec![]), P::Adopt, false, Match::Create),
            (one(), P::Adopt, false, adopt.clone()),
            (one(), P::Report, false, Match::Report { id: "t1".into() }),
            (one(), P::Report, true, adopt.clone()),
            (one(), P::CreateOnly, true, adopt),
            (
                two(),
                P::Adopt,
                true,
                Match::Duplicates {
                    ids: vec!["t1".into(), "t2".into()],
                },
            ),
        ];
        for (c, p, ours, want) in cases {
            assert_eq!(
                decide(c.clone(), p, ours, false),
                want,
                "{c:?} {p:?} {ours}"
            );
        }
        let admin = || {
            Some(vec![
                json!({"id": "t1", "roles": [{"value": "Global Admin"}]}),
            ])
        };
        assert_eq!(
            decide(admin(), P::Adopt, false, false),
            Match::Privileged { id: "t1".into() }
        );
        assert!(matches!(
            decide(admin(), P::Adopt, false, true),
            Match::Adopt { .. }
        ));
        assert!(
            matches!(decide(admin(), P::Adopt, true, false), Match::Adopt { .. }),
            "our own"
        );
        for (object, want) in [
            (json!({"roles": [{"value": "tenant-owner"}]}), true),
            (json!({"entitlements": [{"display": "Root access"}]}), true),
            (json!({"roles": [{"value": "reader"}]}), false),
            (json!({"roles": [{"value": "GlobalAdmin"}]}), true),
            (json!({"roles": [{"display": "Administrators"}]}), true),
            (
                json!({"groups": [{"value": "g1", "display": "Domain Admins"}]}),
                true,
            ),
            (
                json!({"groups": [{"value": "admin-id", "display": "Sales"}]}),
                false,
            ),
            (json!({"userName": "admin@example.com"}), false),
        ] {
            assert_eq!(privileged(&object), want, "{object}");
        }
        assert!(!looks_up(P::CreateOnly, false));
        assert!(looks_up(P::CreateOnly, true));
        assert!(looks_up(P::Report, false));
    }
}
