//! Scoping: assignment (everyone, or members of chosen groups) and Entra's attribute scoping
//! filters (engine-behaviour §1.2): clauses AND-ed, filters OR-ed, a null value fails a
//! clause (including `NOT REGEX MATCH`), `IS NULL` / `IS NOT NULL` aside.

use crate::expr::Val;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The longest compiled regex a scoping clause may make (bytes; the regex crate's default is
/// 10 MiB): `\w{1000}` and the like are refused when the job is read.
pub const REGEX_SIZE_LIMIT: usize = 256 * 1024;

#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum Assignment {
    /// Every user (Entra's "Sync all users and groups").
    #[default]
    All,
    /// Members of `scope.groups` only.
    Groups,
}

#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum GroupScope {
    /// Every source group.
    All,
    /// Only the groups named in `scope.groups`.
    Assigned,
    None,
}

/// `[scope]`: who and what the job provisions.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Default)]
#[serde(deny_unknown_fields)]
pub struct ScopeSpec {
    #[serde(default)]
    pub assignment: Assignment,
    /// Group display names (or source ids) whose members are in scope.
    #[serde(default)]
    pub groups: Vec<String>,
    /// Members of nested groups too (Entra provisions direct members only).
    #[serde(default)]
    pub nested: bool,
    /// Which groups are provisioned (default: `all` with assignment `all`, else
    /// `assigned`).
    pub provision_groups: Option<GroupScope>,
    /// Scoping filters: OR-ed; each one's clauses AND-ed.
    #[serde(default)]
    pub filters: Vec<ScopingFilter>,
    /// The source attribute holding app roles (flows to `roles`).
    pub roles: Option<String>,
    /// Users whose only role is this are skipped ("Default Access").
    pub default_role: Option<String>,
}

impl ScopeSpec {
    /// What can be checked when the job is read.
    pub fn check(&self) -> Result<(), String> {
        if self.assignment == Assignment::Groups && self.groups.is_empty() {
            return Err("scope.assignment = \"groups\" needs scope.groups".into());
        }
        for f in &self.filters {
            for c in &f.clauses {
                c.check().map_err(|e| format!("scoping filter: {e}"))?;
            }
        }
        Ok(())
    }
}

/// One scoping filter: its clauses AND-ed (filters are OR-ed).
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ScopingFilter {
    #[serde(default)]
    pub title: Option<String>,
    pub clauses: Vec<ScopingClause>,
}

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ScopingClause {
    pub attribute: String,
    pub operator: Operator,
    #[serde(default)]
    pub value: Option<String>,
}

impl ScopingClause {
    /// Checks what can be checked when the job is read: a regex operand compiles, within
    /// [`REGEX_SIZE_LIMIT`].
    pub fn check(&self) -> Result<(), String> {
        if matches!(
            self.operator,
            Operator::RegexMatch | Operator::NotRegexMatch
        ) {
            compile(self.value.as_deref().unwrap_or_default())
                .map_err(|e| format!("the regex of '{}' does not compile: {e}", self.attribute))?;
        }
        Ok(())
    }
}

fn compile(pattern: &str) -> Result<regex::Regex, regex::Error> {
    regex::RegexBuilder::new(pattern)
        .size_limit(REGEX_SIZE_LIMIT)
        .build()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operator {
    Equals,
    NotEquals,
    Includes,
    /// `&`: the attribute's value is contained in the clause's value.
    ContainedIn,
    /// `!&`
    NotContainedIn,
    EndsWith,
    GreaterThan,
    GreaterThanOrEquals,
    IsTrue,
    IsFalse,
    IsNull,
    IsNotNull,
    RegexMatch,
    NotRegexMatch,
}

impl Serialize for Operator {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for Operator {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        Operator::parse(&text).map_err(serde::de::Error::custom)
    }
}

impl Operator {
    /// Entra's spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Operator::Equals => "EQUALS",
            Operator::NotEquals => "NOT EQUALS",
            Operator::Includes => "Includes",
            Operator::ContainedIn => "&",
            Operator::NotContainedIn => "!&",
            Operator::EndsWith => "ENDS_WITH",
            Operator::GreaterThan => "Greater_Than",
            Operator::GreaterThanOrEquals => "Greater_Than_OR_EQUALS",
            Operator::IsTrue => "IS TRUE",
            Operator::IsFalse => "IS FALSE",
            Operator::IsNull => "IS NULL",
            Operator::IsNotNull => "IS NOT NULL",
            Operator::RegexMatch => "REGEX MATCH",
            Operator::NotRegexMatch => "NOT REGEX MATCH",
        }
    }

    /// Entra's spellings, case- and separator-insensitive (`Greater_Than`, `IS TRUE`).
    pub fn parse(s: &str) -> Result<Self, String> {
        let norm: String = s
            .trim()
            .to_ascii_uppercase()
            .chars()
            .map(|c| if c == ' ' || c == '-' { '_' } else { c })
            .collect();
        Ok(match norm.as_str() {
            "EQUALS" | "EQ" => Operator::Equals,
            "NOT_EQUALS" | "NE" => Operator::NotEquals,
            "INCLUDES" => Operator::Includes,
            "&" => Operator::ContainedIn,
            "!&" => Operator::NotContainedIn,
            "ENDS_WITH" => Operator::EndsWith,
            "GREATER_THAN" => Operator::GreaterThan,
            "GREATER_THAN_OR_EQUALS" => Operator::GreaterThanOrEquals,
            "IS_TRUE" => Operator::IsTrue,
            "IS_FALSE" => Operator::IsFalse,
            "IS_NULL" => Operator::IsNull,
            "IS_NOT_NULL" => Operator::IsNotNull,
            "REGEX_MATCH" => Operator::RegexMatch,
            "NOT_REGEX_MATCH" => Operator::NotRegexMatch,
            _ => {
                return Err(format!(
                    "unknown scoping operator '{s}' (EQUALS, NOT EQUALS, Includes, &, !&, ENDS_WITH, \
                     Greater_Than, Greater_Than_OR_EQUALS, IS TRUE, IS FALSE, IS NULL, IS NOT NULL, \
                     REGEX MATCH, NOT REGEX MATCH)"
                ));
            }
        })
    }
}

/// One clause's verdict. `value` is the object's attribute; `operand` the clause's text;
/// `regex` its compiled form for the regex operators.
pub fn clause_holds(
    op: Operator,
    value: &Val,
    operand: Option<&str>,
    regex: Option<&regex::Regex>,
) -> bool {
    if op == Operator::IsNull {
        return value.is_null_or_empty();
    }
    if op == Operator::IsNotNull {
        return !value.is_null_or_empty();
    }
    let Some(v) = value.as_text().filter(|s| !s.is_empty()) else {
        return false;
    };
    let operand = operand.unwrap_or_default();
    let int = |s: &str| s.trim().parse::<i64>().ok();
    match op {
        Operator::Equals => v == operand,
        Operator::NotEquals => v != operand,
        Operator::Includes => v.contains(operand),
        Operator::ContainedIn => operand.contains(&v),
        Operator::NotContainedIn => !operand.contains(&v),
        Operator::EndsWith => v.ends_with(operand),
        Operator::GreaterThan => matches!((int(&v), int(operand)), (Some(a), Some(b)) if a > b),
        Operator::GreaterThanOrEquals => {
            matches!((int(&v), int(operand)), (Some(a), Some(b)) if a >= b)
        }
        Operator::IsTrue => value.truthy(),
        Operator::IsFalse => !value.truthy() && v.trim().eq_ignore_ascii_case("false"),
        Operator::RegexMatch => regex.is_some_and(|r| r.is_match(&v)),
        Operator::NotRegexMatch => regex.is_some_and(|r| !r.is_match(&v)),
        Operator::IsNull | Operator::IsNotNull => false,
    }
}

/// A clause with its regex built.
type Compiled = (ScopingClause, Option<regex::Regex>);

/// Scoping filters compiled once per cycle (each regex built once, not per object).
pub struct Filters {
    filters: Vec<(String, Vec<Compiled>)>,
}

impl Filters {
    /// Compiles the job's filters; a regex that does not compile is an error (the job's
    /// checks refuse it before a cycle gets here).
    pub fn compile(filters: &[ScopingFilter]) -> Result<Self, String> {
        let mut out = Vec::with_capacity(filters.len());
        for (i, f) in filters.iter().enumerate() {
            let title = f
                .title
                .clone()
                .unwrap_or_else(|| format!("filter {}", i + 1));
            let mut clauses = Vec::with_capacity(f.clauses.len());
            for c in &f.clauses {
                c.check()?;
                let regex = match c.operator {
                    Operator::RegexMatch | Operator::NotRegexMatch => {
                        compile(c.value.as_deref().unwrap_or_default()).ok()
                    }
                    _ => None,
                };
                clauses.push((c.clone(), regex));
            }
            out.push((title, clauses));
        }
        Ok(Self { filters: out })
    }

    pub fn is_empty(&self) -> bool {
        self.filters.is_empty()
    }

    /// Whether the filters let the object through (no filters: yes). When they do not, the
    /// first failing clause of each filter, for the log.
    pub fn pass(&self, attr: &dyn Fn(&str) -> Val) -> Result<(), String> {
        if self.filters.is_empty() {
            return Ok(());
        }
        let mut reasons = Vec::new();
        for (title, clauses) in &self.filters {
            let failing = clauses.iter().find(|(c, re)| {
                !clause_holds(
                    c.operator,
                    &attr(&c.attribute),
                    c.value.as_deref(),
                    re.as_ref(),
                )
            });
            match failing {
                None => return Ok(()),
                Some((c, _)) => reasons.push(format!(
                    "{title}: {} {} {}",
                    c.attribute,
                    c.operator.as_str(),
                    c.value.clone().unwrap_or_default()
                )),
            }
        }
        Err(reasons.join("; "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &str) -> Val {
        Val::Str(v.into())
    }

    #[test]
    fn every_operator() {
        let cases: Vec<(&str, Val, Option<&str>, bool)> = vec![
            ("EQUALS", s("Sales"), Some("Sales"), true),
            ("EQUALS", s("sales"), Some("Sales"), false),
            ("NOT EQUALS", s("IT"), Some("Sales"), true),
            ("Includes", s("Sales EMEA"), Some("EMEA"), true),
            ("&", s("IT"), Some("IT,HR"), true),
            ("!&", s("Ops"), Some("IT,HR"), true),
            ("ENDS_WITH", s("a@contoso.com"), Some("@contoso.com"), true),
            ("Greater_Than", s("10"), Some("9"), true),
            ("Greater_Than", s("x"), Some("9"), false),
            ("Greater_Than_OR_EQUALS", Val::Int(9), Some("9"), true),
            ("IS TRUE", Val::Bool(true), None, true),
            ("IS FALSE", s("False"), None, true),
            ("IS FALSE", Val::Null, None, false),
            ("IS NULL", Val::Null, None, true),
            ("IS NULL", s(""), None, true),
            ("IS NOT NULL", s("x"), None, true),
            ("REGEX MATCH", s("E123"), Some("^E[0-9]+$"), true),
            ("NOT REGEX MATCH", s("C123"), Some("^E"), true),
            ("NOT REGEX MATCH", Val::Null, Some("^E"), false),
            ("EQUALS", Val::Null, Some(""), false),
        ];
        for (op, v, operand, want) in cases {
            let o = Operator::parse(op).expect(op);
            let re = operand.and_then(|p| compile(p).ok());
            assert_eq!(
                clause_holds(o, &v, operand, re.as_ref()),
                want,
                "{op} {v:?} {operand:?}"
            );
            assert_eq!(Operator::parse(o.as_str()), Ok(o), "{op} round-trips");
        }
    }

    #[test]
    fn clauses_and_filters_combine() {
        let clause = |a: &str, op: &str, v: &str| ScopingClause {
            attribute: a.into(),
            operator: Operator::parse(op).expect(op),
            value: Some(v.into()),
        };
        let filters = vec![
            ScopingFilter {
                title: Some("sales in EMEA".into()),
                clauses: vec![
                    clause("dept", "EQUALS", "Sales"),
                    clause("region", "EQUALS", "EMEA"),
                ],
            },
            ScopingFilter {
                title: None,
                clauses: vec![clause("dept", "EQUALS", "IT")],
            },
        ];
        let obj = |dept: &'static str, region: &'static str| {
            move |a: &str| match a {
                "dept" => s(dept),
                "region" => s(region),
                _ => Val::Null,
            }
        };
        let filters = Filters::compile(&filters).expect("compiles");
        assert!(filters.pass(&obj("Sales", "EMEA")).is_ok());
        assert!(filters.pass(&obj("IT", "APAC")).is_ok());
        let why = filters.pass(&obj("Sales", "APAC")).expect_err("out");
        assert!(why.contains("sales in EMEA: region EQUALS EMEA"), "{why}");
    }
}

#[cfg(test)]
mod regex_tests {
    use super::*;

    #[test]
    fn a_regex_that_cannot_work_is_refused_when_the_job_is_read() {
        let clause = |v: &str| ScopingClause {
            attribute: "dept".into(),
            operator: Operator::RegexMatch,
            value: Some(v.into()),
        };
        assert!(clause("^E[0-9]+$").check().is_ok());
        assert!(clause("(").check().is_err());
        let huge = clause(r"\w{5000}").check().expect_err("too big");
        assert!(huge.contains("does not compile"), "{huge}");
    }
}
