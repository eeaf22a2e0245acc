//! Attribute mappings: what each target attribute gets from a source object. Kinds, as in
//! Entra (engine-behaviour §1.3): direct, constant, expression, none; "default value if
//! null" on create only; "apply always | only on create". The defaults equal Entra's default
//! user and group mappings for a SCIM app, translated to SCIM source attributes (docs/sync.md
//! §3); for a CSV or JSON source, every column named by a SCIM attribute path maps to it.

use crate::error::{SyncError, SyncResult};
use crate::expr::{self, EvalContext, Expr, Val};
use crate::job::{Apply, JobSpec, Mapping, SourceKind};
use crate::model::{ObjectKind, SourceObject};
use crate::path::TargetPath;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use time::OffsetDateTime;

const ENTERPRISE: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";
/// Entra's default `active` mapping for non-gallery apps (docs/interop.md §1.7).
const ACTIVE_EXPRESSION: &str = r#"Switch([IsSoftDeleted], , "False", "True", "True", "False")"#;

#[derive(Debug, Clone)]
enum ValueRule {
    Direct(String),
    Constant(String),
    Expression(Expr),
    None,
}

#[derive(Debug, Clone)]
pub struct CompiledMapping {
    pub target: TargetPath,
    rule: ValueRule,
    default: Option<String>,
    pub apply: Apply,
    pub reference: bool,
    pub redact: bool,
    /// The source attributes it reads (for the mapping editor and checks).
    pub reads: Vec<String>,
}

/// The mappings of one object kind.
#[derive(Debug, Clone)]
pub struct Mappings {
    pub kind: ObjectKind,
    pub list: Vec<CompiledMapping>,
    /// Target paths to match existing objects by, in precedence order.
    pub matching: Vec<TargetPath>,
}

/// What the mappings give for one object.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Mapped {
    /// Target path → value (nulls left out).
    pub values: BTreeMap<String, Value>,
    /// Paths whose value is masked in logs.
    pub redacted: BTreeSet<String>,
    /// Paths whose value is a source id to resolve to a target id.
    pub references: BTreeSet<String>,
    /// Paths with `SelectUniqueValue` candidates (in order); resolved against the target.
    pub candidates: BTreeMap<String, Vec<String>>,
    /// Paths set only on create.
    pub on_create: BTreeSet<String>,
}

fn direct(target: &str, source: &str) -> Mapping {
    Mapping {
        target: target.into(),
        source: Some(source.into()),
        ..Default::default()
    }
}

fn expression(target: &str, e: &str) -> Mapping {
    Mapping {
        target: target.into(),
        expression: Some(e.into()),
        ..Default::default()
    }
}

/// Entra's default user mappings, with SCIM source attribute names.
fn default_user_mappings() -> Vec<Mapping> {
    let mut v = vec![
        direct("userName", "userName"),
        expression("active", ACTIVE_EXPRESSION),
        direct("displayName", "displayName"),
        direct("title", "title"),
        direct(
            r#"emails[type eq "work"].value"#,
            r#"emails[type eq "work"].value"#,
        ),
        direct("preferredLanguage", "preferredLanguage"),
        direct("name.givenName", "name.givenName"),
        direct("name.familyName", "name.familyName"),
        direct("name.formatted", "name.formatted"),
        direct(
            r#"phoneNumbers[type eq "work"].value"#,
            r#"phoneNumbers[type eq "work"].value"#,
        ),
        direct(
            r#"phoneNumbers[type eq "mobile"].value"#,
            r#"phoneNumbers[type eq "mobile"].value"#,
        ),
        direct(
            r#"addresses[type eq "work"].streetAddress"#,
            r#"addresses[type eq "work"].streetAddress"#,
        ),
        direct(
            r#"addresses[type eq "work"].locality"#,
            r#"addresses[type eq "work"].locality"#,
        ),
        direct(
            r#"addresses[type eq "work"].region"#,
            r#"addresses[type eq "work"].region"#,
        ),
        direct(
            r#"addresses[type eq "work"].postalCode"#,
            r#"addresses[type eq "work"].postalCode"#,
        ),
        direct(
            r#"addresses[type eq "work"].country"#,
            r#"addresses[type eq "work"].country"#,
        ),
        expression("externalId", "Coalesce([externalId], [objectId])"),
    ];
    for a in [
        "employeeNumber",
        "department",
        "costCenter",
        "organization",
        "division",
    ] {
        let p = format!("{ENTERPRISE}:{a}");
        v.push(direct(&p, &p));
    }
    v.push(Mapping {
        reference: true,
        ..direct(
            &format!("{ENTERPRISE}:manager.value"),
            &format!("{ENTERPRISE}:manager.value"),
        )
    });
    v
}

/// For an LDAP source: the usual inetOrgPerson and Active Directory attribute names
/// (docs/sync.md §11). `userName` is the UPN where there is one (AD), else the mail, else
/// the uid.
fn ldap_user_mappings() -> Vec<Mapping> {
    vec![
        expression("userName", "Coalesce([userPrincipalName], [mail], [uid])"),
        expression("active", ACTIVE_EXPRESSION),
        expression("displayName", "Coalesce([displayName], [cn])"),
        direct("title", "title"),
        direct(r#"emails[type eq "work"].value"#, "mail"),
        direct("preferredLanguage", "preferredLanguage"),
        direct("name.givenName", "givenName"),
        direct("name.familyName", "sn"),
        direct(r#"phoneNumbers[type eq "work"].value"#, "telephoneNumber"),
        direct(r#"phoneNumbers[type eq "mobile"].value"#, "mobile"),
        direct(r#"addresses[type eq "work"].streetAddress"#, "street"),
        direct(r#"addresses[type eq "work"].locality"#, "l"),
        direct(r#"addresses[type eq "work"].region"#, "st"),
        direct(r#"addresses[type eq "work"].postalCode"#, "postalCode"),
        direct("externalId", "objectId"),
        direct(&format!("{ENTERPRISE}:employeeNumber"), "employeeNumber"),
        // The LDAP source reads `manager` as the manager's source id (its DN resolved).
        Mapping {
            reference: true,
            ..direct(&format!("{ENTERPRISE}:manager.value"), "manager")
        },
        expression(
            &format!("{ENTERPRISE}:department"),
            "Coalesce([department], [departmentNumber], [ou])",
        ),
        direct(&format!("{ENTERPRISE}:organization"), "o"),
    ]
}

fn ldap_group_mappings() -> Vec<Mapping> {
    vec![
        direct("displayName", "cn"),
        direct("externalId", "objectId"),
    ]
}

/// Google Workspace users as the Directory API sends them (`source/google`), mapped as
/// Google's own SCIM apps map them.
fn google_user_mappings() -> Vec<Mapping> {
    vec![
        direct("userName", "primaryEmail"),
        expression("active", ACTIVE_EXPRESSION),
        expression(
            "displayName",
            "Coalesce([name.displayName], [name.fullName], [primaryEmail])",
        ),
        direct("name.givenName", "name.givenName"),
        direct("name.familyName", "name.familyName"),
        direct("name.formatted", "name.fullName"),
        direct(r#"emails[type eq "work"].value"#, "primaryEmail"),
        direct("title", "organizations[primary eq true].title"),
        direct(
            r#"phoneNumbers[type eq "work"].value"#,
            r#"phones[type eq "work"].value"#,
        ),
        direct(
            r#"phoneNumbers[type eq "mobile"].value"#,
            r#"phones[type eq "mobile"].value"#,
        ),
        direct("externalId", "id"),
        direct(
            &format!("{ENTERPRISE}:employeeNumber"),
            r#"externalIds[type eq "organization"].value"#,
        ),
        direct(
            &format!("{ENTERPRISE}:department"),
            "organizations[primary eq true].department",
        ),
        direct(
            &format!("{ENTERPRISE}:costCenter"),
            "organizations[primary eq true].costCenter",
        ),
        // The Google source reads `manager` as the manager's source id (its address resolved).
        Mapping {
            reference: true,
            ..direct(&format!("{ENTERPRISE}:manager.value"), "manager")
        },
    ]
}

fn google_group_mappings() -> Vec<Mapping> {
    vec![direct("displayName", "name"), direct("externalId", "id")]
}

/// Entra ID users as Graph sends them (`source/entra`), mapped as Entra's own provisioning
/// maps them to a SCIM app (`userName` is the UPN, a guest's address for B2B guests).
fn entra_user_mappings() -> Vec<Mapping> {
    vec![
        direct("userName", "userName"),
        expression("active", ACTIVE_EXPRESSION),
        direct("displayName", "displayName"),
        direct("title", "jobTitle"),
        direct(r#"emails[type eq "work"].value"#, "mail"),
        direct("preferredLanguage", "preferredLanguage"),
        direct("name.givenName", "givenName"),
        direct("name.familyName", "surname"),
        direct(r#"phoneNumbers[type eq "mobile"].value"#, "mobilePhone"),
        direct(
            r#"addresses[type eq "work"].streetAddress"#,
            "streetAddress",
        ),
        direct(r#"addresses[type eq "work"].locality"#, "city"),
        direct(r#"addresses[type eq "work"].region"#, "state"),
        direct(r#"addresses[type eq "work"].postalCode"#, "postalCode"),
        direct(r#"addresses[type eq "work"].country"#, "country"),
        direct("externalId", "mailNickname"),
        direct(&format!("{ENTERPRISE}:employeeNumber"), "employeeId"),
        direct(&format!("{ENTERPRISE}:department"), "department"),
        direct(&format!("{ENTERPRISE}:organization"), "companyName"),
        // The Entra source reads `manager` as the manager's id (from `manager@delta`).
        Mapping {
            reference: true,
            ..direct(&format!("{ENTERPRISE}:manager.value"), "manager")
        },
    ]
}

fn entra_group_mappings() -> Vec<Mapping> {
    vec![
        direct("displayName", "displayName"),
        direct("externalId", "id"),
    ]
}

fn default_group_mappings() -> Vec<Mapping> {
    vec![
        direct("displayName", "displayName"),
        expression("externalId", "Coalesce([externalId], [objectId])"),
    ]
}

/// For a file source: every column whose header is a SCIM attribute path (besides the id,
/// groups, status and roles columns), `active` from the state when no column says it, and
/// `externalId` from the source id when no column gives it.
fn file_user_mappings(spec: &JobSpec, columns: &BTreeSet<String>) -> Vec<Mapping> {
    let f = spec.source.file();
    let skip: BTreeSet<&str> = [
        f.and_then(|f| f.id.as_deref()),
        f.and_then(|f| f.groups.as_deref()),
        f.and_then(|f| f.status.as_deref()),
        // The roles column flows to `roles` through the roles mapping (split, as values).
        spec.scope.roles.as_deref(),
        Some("id"),
        Some("groups"),
    ]
    .into_iter()
    .flatten()
    .collect();
    let mut v: Vec<Mapping> = columns
        .iter()
        .filter(|c| !skip.contains(c.as_str()))
        .filter(|c| TargetPath::parse(c, ObjectKind::User).is_ok_and(|p| p.is_known()))
        .map(|c| direct(c, c))
        .collect();
    let has = |v: &[Mapping], t: &str| v.iter().any(|m| m.target.eq_ignore_ascii_case(t));
    if !has(&v, "active") {
        v.push(expression("active", ACTIVE_EXPRESSION));
    }
    if !has(&v, "externalId") {
        v.push(expression("externalId", "[objectId]"));
    }
    v
}

/// `m` in the place of the mapping with its target (in any case), or last; one mapping
/// per target.
pub fn replace_or_push(list: &mut Vec<Mapping>, m: Mapping) {
    let target = m.target.clone();
    let same = |x: &Mapping| x.target.eq_ignore_ascii_case(&target);
    match list.iter().position(same) {
        Some(i) => {
            list[i] = m;
            let mut at = 0;
            list.retain(|x| {
                at += 1;
                at - 1 == i || !same(x)
            });
        }
        None => list.push(m),
    }
}

impl CompiledMapping {
    fn compile(m: &Mapping, kind: ObjectKind) -> SyncResult<Self> {
        let target = TargetPath::parse(&m.target, kind)?;
        let err = |e: String| SyncError::Job(format!("mapping '{}': {e}", m.target));
        let (rule, reads) = if let Some(s) = &m.source {
            (ValueRule::Direct(s.clone()), vec![s.clone()])
        } else if let Some(c) = &m.constant {
            (ValueRule::Constant(c.clone()), Vec::new())
        } else if let Some(e) = &m.expression {
            let parsed = expr::parse(e).map_err(|e| err(format!("expression error {e}")))?;
            let mut reads = Vec::new();
            expr::attributes(&parsed, &mut reads);
            (ValueRule::Expression(parsed), reads)
        } else {
            (ValueRule::None, Vec::new())
        };
        Ok(Self {
            target,
            rule,
            default: m.default.clone(),
            apply: m.apply,
            reference: m.reference,
            redact: m.redact,
            reads,
        })
    }
}

impl Mappings {
    /// The mappings for `kind`; `columns` are the attribute names a file source's users
    /// carry (for its default mappings).
    pub fn compile(
        spec: &JobSpec,
        kind: ObjectKind,
        columns: &BTreeSet<String>,
    ) -> SyncResult<Self> {
        let list = Self::effective(spec, kind, columns);
        Self::compile_list(spec, kind, &list)
    }

    /// The mappings in force for `kind`, as written: the job's own list or the defaults,
    /// with its `extra` ones on top (what the console's mapping editor shows).
    pub fn effective(spec: &JobSpec, kind: ObjectKind, columns: &BTreeSet<String>) -> Vec<Mapping> {
        let own = match kind {
            ObjectKind::User => &spec.users,
            ObjectKind::Group => &spec.groups,
        };
        let file = spec.source.file().is_some();
        let mut list: Vec<Mapping> = if !own.mappings.is_empty() {
            own.mappings.clone()
        } else {
            match (kind, file, spec.source.kind()) {
                (ObjectKind::User, true, _) => file_user_mappings(spec, columns),
                (ObjectKind::User, false, SourceKind::Ldap) => ldap_user_mappings(),
                (ObjectKind::User, false, SourceKind::Google) => google_user_mappings(),
                (ObjectKind::User, false, SourceKind::Entra) => entra_user_mappings(),
                (ObjectKind::User, false, _) => default_user_mappings(),
                (ObjectKind::Group, _, SourceKind::Ldap) => ldap_group_mappings(),
                (ObjectKind::Group, _, SourceKind::Google) => google_group_mappings(),
                (ObjectKind::Group, _, SourceKind::Entra) => entra_group_mappings(),
                (ObjectKind::Group, _, _) => default_group_mappings(),
            }
        };
        // An extra mapping over a default one takes its place in the list (the editor's
        // rows keep their order); a new one goes last.
        for extra in &own.extra {
            replace_or_push(&mut list, extra.clone());
        }
        if let Some(roles) = &spec.scope.roles
            && kind == ObjectKind::User
            && !list.iter().any(|m| m.target.starts_with("roles"))
        {
            // A CSV cell holds several roles as one text, separated like its groups.
            let sep = spec
                .source
                .file()
                .map_or(";", |f| f.group_separator.as_str());
            let csv = spec.source.kind() == SourceKind::Csv
                && !roles.contains(']')
                && !sep.is_empty()
                && !sep.contains(['"', '\\']);
            list.push(if csv {
                expression("roles", &format!("Split([{roles}], \"{sep}\")"))
            } else {
                direct("roles", roles)
            });
        }
        list
    }

    fn compile_list(spec: &JobSpec, kind: ObjectKind, list: &[Mapping]) -> SyncResult<Self> {
        let own = match kind {
            ObjectKind::User => &spec.users,
            ObjectKind::Group => &spec.groups,
        };
        let compiled = list
            .iter()
            .map(|m| CompiledMapping::compile(m, kind))
            .collect::<SyncResult<Vec<_>>>()?;
        let mut seen = BTreeSet::new();
        for m in &compiled {
            if !seen.insert(m.target.text.to_ascii_lowercase()) {
                return Err(SyncError::Job(format!(
                    "two mappings write '{}'",
                    m.target.text
                )));
            }
        }
        let matching_names: Vec<String> = if own.matching.is_empty() {
            match kind {
                ObjectKind::User => vec!["userName".into()],
                ObjectKind::Group => vec!["displayName".into()],
            }
        } else {
            own.matching.clone()
        };
        let matching = matching_names
            .iter()
            .map(|n| {
                if !compiled
                    .iter()
                    .any(|m| m.target.text.eq_ignore_ascii_case(n))
                {
                    return Err(SyncError::Job(format!(
                        "matching attribute '{n}' has no mapping; map it or choose another"
                    )));
                }
                TargetPath::parse(n, kind)
            })
            .collect::<SyncResult<Vec<_>>>()?;
        Ok(Self {
            kind,
            list: compiled,
            matching,
        })
    }

    /// The target attributes the mappings write, for the "mandatory attributes" check.
    pub fn targets(&self) -> Vec<&str> {
        self.list.iter().map(|m| m.target.text.as_str()).collect()
    }

    /// Evaluates every mapping for `obj`. `creating`: apply on-create mappings and defaults.
    pub fn evaluate(
        &self,
        obj: &SourceObject,
        now: OffsetDateTime,
        creating: bool,
    ) -> Result<Mapped, String> {
        let mut out = Mapped::default();
        for m in &self.list {
            let key = m.target.text.clone();
            if m.apply == Apply::OnCreate {
                out.on_create.insert(key.clone());
                if !creating {
                    continue;
                }
            }
            let ctx = EvalContext::new(obj, now);
            let val = match &m.rule {
                ValueRule::Direct(a) => expr::AttributeSource::attribute(obj, a),
                ValueRule::Constant(c) => Val::Str(c.clone()),
                ValueRule::Expression(e) => expr::evaluate(e, &ctx)
                    .map_err(|e| format!("{}: expression {e}", m.target.text))?,
                ValueRule::None => Val::Null,
            };
            let val = match val {
                v if v.is_null_or_empty() && creating => {
                    m.default.clone().map_or(Val::Null, Val::Str)
                }
                v if v.is_null_or_empty() => Val::Null,
                v => v,
            };
            if let Val::Candidates(c) = &val {
                out.candidates.insert(key.clone(), c.clone());
                out.on_create.insert(key.clone());
                if !creating {
                    continue;
                }
            }
            let json = m.target.coerce(val.to_json());
            if json.is_null() {
                continue;
            }
            if m.redact || ctx.redacted.get() {
                out.redacted.insert(key.clone());
            }
            if m.reference {
                out.references.insert(key.clone());
            }
            if matches!(m.rule, ValueRule::None) {
                // None: only its default, only on create.
                out.on_create.insert(key.clone());
            }
            out.values.insert(key, json);
        }
        Ok(out)
    }

    pub fn path(&self, text: &str) -> Option<&TargetPath> {
        self.list.iter().map(|m| &m.target).find(|p| p.text == text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn spec(extra: &str) -> JobSpec {
        JobSpec::parse(
            &format!(
                "name = \"t\"\n[source]\nkind = \"csv\"\npath = \"p.csv\"\nid = \"employee_id\"\ngroups = \"groups\"\n[target]\nurl = \"http://x\"\ntoken = \"t\"\n{extra}"
            ),
            None,
        )
        .expect("parses")
    }

    fn ada() -> SourceObject {
        let attributes = json!({
            "employee_id": "1001", "userName": "ada@example.com", "name.givenName": "Ada",
            "name.familyName": "Lovelace", "emails[type eq \"work\"].value": "ada@example.com",
            "active": "true", "cost": "7"
        });
        let mut o = SourceObject::new(ObjectKind::User, "1001");
        o.attributes = attributes.as_object().cloned().unwrap_or_default();
        o
    }

    #[test]
    fn csv_headers_that_are_scim_paths_map_by_default() {
        let a = ada();
        let cols = a.attributes.keys().cloned().collect();
        let m = Mappings::compile(&spec(""), ObjectKind::User, &cols).expect("compiles");
        let out = m
            .evaluate(&a, OffsetDateTime::now_utc(), true)
            .expect("evaluates");
        assert_eq!(
            out.values,
            BTreeMap::from([
                ("active".to_string(), json!(true)),
                (
                    "emails[type eq \"work\"].value".to_string(),
                    json!("ada@example.com")
                ),
                ("externalId".to_string(), json!("1001")),
                ("name.familyName".to_string(), json!("Lovelace")),
                ("name.givenName".to_string(), json!("Ada")),
                ("userName".to_string(), json!("ada@example.com")),
            ])
        );
    }

    #[test]
    fn defaults_apply_on_create_only_and_on_create_mappings_are_skipped_on_update() {
        let s = spec(
            "[[users.extra]]\ntarget = \"title\"\nsource = \"missing\"\ndefault = \"Staff\"\n\
             [[users.extra]]\ntarget = \"nickName\"\nconstant = \"n\"\napply = \"on_create\"\n\
             [[users.extra]]\ntarget = \"displayName\"\nexpression = \"Redact(Join(\\\" \\\", [name.givenName], [name.familyName]))\"\n",
        );
        let a = ada();
        let cols = a.attributes.keys().cloned().collect();
        let m = Mappings::compile(&s, ObjectKind::User, &cols).expect("compiles");
        let now = OffsetDateTime::now_utc();
        let create = m.evaluate(&a, now, true).expect("create");
        assert_eq!(create.values.get("title"), Some(&json!("Staff")));
        assert_eq!(create.values.get("nickName"), Some(&json!("n")));
        assert!(create.redacted.contains("displayName"));
        let update = m.evaluate(&a, now, false).expect("update");
        assert!(!update.values.contains_key("title") && !update.values.contains_key("nickName"));
    }

    #[test]
    fn matching_needs_a_mapping() {
        let e = Mappings::compile(
            &spec("[users]\nmatching = [\"nickName\"]\n"),
            ObjectKind::User,
            &BTreeSet::new(),
        )
        .expect_err("unmapped");
        assert!(e.to_string().contains("has no mapping"), "{e}");
    }

    #[test]
    fn an_edited_mapping_keeps_its_place() {
        let t = |list: &[Mapping]| list.iter().map(|m| m.target.clone()).collect::<Vec<_>>();
        let mut list = vec![
            direct("userName", "u"),
            direct("title", "t"),
            direct("TITLE", "x"),
        ];
        replace_or_push(&mut list, direct("Title", "job"));
        assert_eq!(t(&list), ["userName", "Title"], "in place, duplicates gone");
        assert_eq!(list[1].source.as_deref(), Some("job"));
        replace_or_push(&mut list, direct("nickName", "n"));
        assert_eq!(t(&list), ["userName", "Title", "nickName"]);
    }
}
