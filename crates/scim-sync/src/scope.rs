//! Scoping: assignment (everyone, or members of chosen groups) and Entra's attribute scoping
//! filters (engine-behaviour §1.2): clauses AND-ed, filters OR-ed, a null value fails a
//! clause (including `NOT REGEX MATCH`), `IS NULL` / `IS NOT NULL` aside.

use crate::expr::Val;
use crate::job::ScopingFilter;

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

impl Operator {
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

/// One clause's verdict. `value` is the object's attribute; `operand` the clause's text.
pub fn clause_holds(op: Operator, value: &Val, operand: Option<&str>) -> bool {
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
    let regex = || regex::Regex::new(operand).ok();
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
        Operator::RegexMatch => regex().is_some_and(|r| r.is_match(&v)),
        Operator::NotRegexMatch => regex().is_some_and(|r| !r.is_match(&v)),
        Operator::IsNull | Operator::IsNotNull => false,
    }
}

/// Whether the filters let the object through (no filters: yes). Returns the first
/// failing clause of each filter for the log when it does not.
pub fn filters_pass(filters: &[ScopingFilter], attr: &dyn Fn(&str) -> Val) -> Result<(), String> {
    if filters.is_empty() {
        return Ok(());
    }
    let mut reasons = Vec::new();
    for (i, f) in filters.iter().enumerate() {
        let failing = f.clauses.iter().find(|c| {
            Operator::parse(&c.operator)
                .map(|op| !clause_holds(op, &attr(&c.attribute), c.value.as_deref()))
                .unwrap_or(true)
        });
        match failing {
            None => return Ok(()),
            Some(c) => reasons.push(format!(
                "{}: {} {} {}",
                f.title
                    .clone()
                    .unwrap_or_else(|| format!("filter {}", i + 1)),
                c.attribute,
                c.operator,
                c.value.clone().unwrap_or_default()
            )),
        }
    }
    Err(reasons.join("; "))
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
            assert_eq!(clause_holds(o, &v, operand), want, "{op} {v:?} {operand:?}");
        }
    }

    #[test]
    fn clauses_and_filters_combine() {
        use crate::job::ScopingClause;
        let clause = |a: &str, op: &str, v: &str| ScopingClause {
            attribute: a.into(),
            operator: op.into(),
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
        assert!(filters_pass(&filters, &obj("Sales", "EMEA")).is_ok());
        assert!(filters_pass(&filters, &obj("IT", "APAC")).is_ok());
        let why = filters_pass(&filters, &obj("Sales", "APAC")).expect_err("out");
        assert!(why.contains("sales in EMEA: region EQUALS EMEA"), "{why}");
    }
}
