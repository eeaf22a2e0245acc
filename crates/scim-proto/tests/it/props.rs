//! Property tests: printing and parsing filters round-trips; PATCH add-then-remove restores
//! a resource; the evaluator agrees with a brute-force reference on random users.

use crate::{ops, patch, users};
use proptest::prelude::*;
use scim_proto::resource::parse_resource;
use scim_proto::{AttrPath, CompValue, CompareOp, FilterExpr, filter};
use serde_json::{Value, json};

// ---------- parse(display(ast)) == ast ----------

fn name() -> impl Strategy<Value = String> {
    "[a-zA-Z][a-zA-Z0-9_-]{0,7}"
        .prop_filter("'not' is a keyword where an attribute may start", |s| {
            !s.eq_ignore_ascii_case("not")
        })
}

fn attr_path(allow_urn: bool) -> BoxedStrategy<AttrPath> {
    let urn = if allow_urn {
        prop::option::of(prop_oneof![
            Just("urn:ietf:params:scim:schemas:core:2.0:User".to_string()),
            Just("urn:ietf:params:scim:schemas:extension:enterprise:2.0:User".to_string()),
            Just("urn:example:x".to_string()),
        ])
        .boxed()
    } else {
        Just(None).boxed()
    };
    let sub = prop::option::of(prop_oneof![name(), Just("$ref".to_string())]);
    (urn, name(), sub)
        .prop_map(|(urn, name, sub)| AttrPath { urn, name, sub })
        .boxed()
}

fn comp_value() -> impl Strategy<Value = CompValue> {
    prop_oneof![
        Just(CompValue::Null),
        any::<bool>().prop_map(CompValue::Bool),
        any::<i64>().prop_map(|n| CompValue::Number(n.into())),
        any::<f64>()
            .prop_filter_map("finite", serde_json::Number::from_f64)
            .prop_map(CompValue::Number),
        any::<String>().prop_map(CompValue::Str),
    ]
}

fn op() -> impl Strategy<Value = CompareOp> {
    prop::sample::select(vec![
        CompareOp::Eq,
        CompareOp::Ne,
        CompareOp::Co,
        CompareOp::Sw,
        CompareOp::Ew,
        CompareOp::Gt,
        CompareOp::Ge,
        CompareOp::Lt,
        CompareOp::Le,
    ])
}

fn leaf(allow_urn: bool) -> BoxedStrategy<FilterExpr> {
    prop_oneof![
        (attr_path(allow_urn), op(), comp_value())
            .prop_map(|(path, op, value)| FilterExpr::Compare { path, op, value }),
        attr_path(allow_urn).prop_map(FilterExpr::Present),
    ]
    .boxed()
}

fn logic(leaf: BoxedStrategy<FilterExpr>) -> BoxedStrategy<FilterExpr> {
    leaf.prop_recursive(5, 24, 2, |inner| {
        prop_oneof![
            (inner.clone(), inner.clone()).prop_map(|(a, b)| FilterExpr::and(a, b)),
            (inner.clone(), inner.clone()).prop_map(|(a, b)| FilterExpr::or(a, b)),
            inner.prop_map(FilterExpr::negate),
        ]
    })
    .boxed()
}

fn any_filter() -> impl Strategy<Value = FilterExpr> {
    let value_path = (
        (attr_path(true)).prop_map(|mut p| {
            p.sub = None;
            p
        }),
        logic(
            (name(), op(), comp_value())
                .prop_map(|(n, op, value)| FilterExpr::Compare {
                    path: AttrPath::new(&n),
                    op,
                    value,
                })
                .boxed(),
        ),
    )
        .prop_map(|(attr, f)| FilterExpr::ValuePath {
            attr,
            filter: Box::new(f),
        })
        .boxed();
    logic(prop_oneof![3 => leaf(true), 1 => value_path].boxed())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn display_then_parse_is_identity(f in any_filter()) {
        let printed = f.to_string();
        let parsed = filter::parse_with(&printed, scim_proto::FilterLimits {
            max_len: usize::MAX, max_depth: 64, max_terms: 10_000,
        });
        prop_assert_eq!(parsed.as_ref(), Ok(&f), "printed: {}", printed);
    }
}

// ---------- PATCH add then remove restores the resource ----------

const SINGLE: &[&str] = &[
    "nickName",
    "title",
    "displayName",
    "locale",
    "timezone",
    "profileUrl",
    "userType",
    "preferredLanguage",
    "name.givenName",
    "name.middleName",
    "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department",
    "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:costCenter",
];

fn base_user() -> impl Strategy<Value = Value> {
    (
        "[a-z]{1,8}",
        prop::option::of("[A-Za-z ]{1,8}"),
        prop::option::of(any::<bool>()),
        prop::option::of("[a-z]{1,5}"),
    )
        .prop_map(|(user_name, title, active, family)| {
            let mut u = json!({"userName": user_name});
            if let Some(t) = title {
                u["title"] = json!(t);
            }
            if let Some(a) = active {
                u["active"] = json!(a);
            }
            if let Some(f) = family {
                u["name"] = json!({"familyName": f});
            }
            parse_resource(&users(), u).unwrap()
        })
}

fn is_set(user: &Value, path: &str) -> bool {
    let view = users();
    let p = AttrPath::parse(path).unwrap();
    FilterExpr::Present(p).matches(&view, user)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(500))]

    #[test]
    fn add_then_remove_restores_single_valued_attributes(
        user in base_user(),
        attr in prop::sample::select(SINGLE),
        value in "[^\u{0}]{1,12}",
        capital in any::<bool>(),
    ) {
        prop_assume!(!is_set(&user, attr));
        let (add, remove) = if capital { ("Add", "Remove") } else { ("add", "remove") };
        let added = patch("User", &user, ops(json!([{"op": add, "path": attr, "value": value}]))).unwrap();
        prop_assert!(is_set(&added, attr));
        let removed = patch("User", &added, ops(json!([{"op": remove, "path": attr}]))).unwrap();
        prop_assert_eq!(removed, user);
    }
}

// ---------- the evaluator agrees with a brute-force reference ----------

#[derive(Debug, Clone)]
struct TUser {
    user_name: String,
    title: Option<String>,
    active: Option<bool>,
    emails: Vec<(String, String)>, // (type, value)
}

impl TUser {
    fn json(&self) -> Value {
        let mut u = json!({"userName": self.user_name});
        if let Some(t) = &self.title {
            u["title"] = json!(t);
        }
        if let Some(a) = self.active {
            u["active"] = json!(a);
        }
        if !self.emails.is_empty() {
            u["emails"] = self
                .emails
                .iter()
                .map(|(t, v)| json!({"type": t, "value": v}))
                .collect();
        }
        u
    }
}

/// The filter language restricted to what the reference understands.
#[derive(Debug, Clone)]
enum RF {
    Str(&'static str, CompareOp, String), // userName / title / emails.value / emails.type
    Present(&'static str),
    Active(bool, bool),      // (eq?, literal)
    EmailVp(String, String), // emails[type eq A and value sw B]
    And(Box<RF>, Box<RF>),
    Or(Box<RF>, Box<RF>),
    Not(Box<RF>),
}

fn str_cmp(op: CompareOp, a: &str, b: &str) -> bool {
    let (a, b) = (a.to_lowercase(), b.to_lowercase());
    match op {
        CompareOp::Eq => a == b,
        CompareOp::Ne => a != b,
        CompareOp::Co => a.contains(&b),
        CompareOp::Sw => a.starts_with(&b),
        CompareOp::Ew => a.ends_with(&b),
        CompareOp::Gt => a > b,
        CompareOp::Ge => a >= b,
        CompareOp::Lt => a < b,
        CompareOp::Le => a <= b,
    }
}

impl RF {
    fn reference(&self, u: &TUser) -> bool {
        let values = |attr: &str| -> Vec<String> {
            match attr {
                "userName" => vec![u.user_name.clone()],
                "title" => u.title.iter().cloned().collect(),
                "emails.value" => u.emails.iter().map(|e| e.1.clone()).collect(),
                "emails.type" => u.emails.iter().map(|e| e.0.clone()).collect(),
                _ => unreachable!(),
            }
        };
        match self {
            RF::Str(attr, CompareOp::Ne, lit) => {
                !values(attr).iter().any(|v| str_cmp(CompareOp::Eq, v, lit))
            }
            RF::Str(attr, op, lit) => values(attr).iter().any(|v| str_cmp(*op, v, lit)),
            RF::Present("active") => u.active.is_some(),
            RF::Present(attr) => !values(attr).is_empty(),
            RF::Active(true, lit) => u.active == Some(*lit),
            RF::Active(false, lit) => u.active != Some(*lit),
            RF::EmailVp(t, v) => u
                .emails
                .iter()
                .any(|(et, ev)| str_cmp(CompareOp::Eq, et, t) && str_cmp(CompareOp::Sw, ev, v)),
            RF::And(a, b) => a.reference(u) && b.reference(u),
            RF::Or(a, b) => a.reference(u) || b.reference(u),
            RF::Not(a) => !a.reference(u),
        }
    }

    fn to_filter(&self) -> FilterExpr {
        let path = |a: &str| AttrPath::parse(a).unwrap();
        match self {
            RF::Str(a, op, lit) => FilterExpr::compare(path(a), *op, CompValue::Str(lit.clone())),
            RF::Present(a) => FilterExpr::Present(path(a)),
            RF::Active(eq, lit) => FilterExpr::compare(
                path("active"),
                if *eq { CompareOp::Eq } else { CompareOp::Ne },
                CompValue::Bool(*lit),
            ),
            RF::EmailVp(t, v) => FilterExpr::ValuePath {
                attr: path("emails"),
                filter: Box::new(FilterExpr::and(
                    FilterExpr::compare(path("type"), CompareOp::Eq, CompValue::Str(t.clone())),
                    FilterExpr::compare(path("value"), CompareOp::Sw, CompValue::Str(v.clone())),
                )),
            },
            RF::And(a, b) => FilterExpr::and(a.to_filter(), b.to_filter()),
            RF::Or(a, b) => FilterExpr::or(a.to_filter(), b.to_filter()),
            RF::Not(a) => FilterExpr::negate(a.to_filter()),
        }
    }
}

fn small() -> impl Strategy<Value = String> {
    "[abcAB]{0,3}"
}

fn rf() -> impl Strategy<Value = RF> {
    let leaf = prop_oneof![
        (
            prop::sample::select(vec!["userName", "title", "emails.value", "emails.type"]),
            op(),
            small()
        )
            .prop_map(|(a, op, s)| RF::Str(a, op, s)),
        prop::sample::select(vec!["title", "emails.value", "active"]).prop_map(RF::Present),
        (any::<bool>(), any::<bool>()).prop_map(|(e, l)| RF::Active(e, l)),
        (small(), small()).prop_map(|(t, v)| RF::EmailVp(t, v)),
    ];
    leaf.prop_recursive(4, 16, 2, |inner| {
        prop_oneof![
            (inner.clone(), inner.clone()).prop_map(|(a, b)| RF::And(Box::new(a), Box::new(b))),
            (inner.clone(), inner.clone()).prop_map(|(a, b)| RF::Or(Box::new(a), Box::new(b))),
            inner.prop_map(|a| RF::Not(Box::new(a))),
        ]
    })
}

fn tuser() -> impl Strategy<Value = TUser> {
    (
        "[abcAB]{1,3}",
        prop::option::of("[abcAB]{1,3}"),
        prop::option::of(any::<bool>()),
        prop::collection::vec(("[abAB]{1,2}", "[abcAB]{1,3}"), 0..3),
    )
        .prop_map(|(user_name, title, active, emails)| TUser {
            user_name,
            title,
            active,
            emails,
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(3000))]

    #[test]
    fn evaluator_agrees_with_reference(f in rf(), u in tuser()) {
        let view = users();
        let expr = f.to_filter();
        // Through the text form too, so the parser is part of what is checked.
        let expr = filter::parse(&expr.to_string()).unwrap();
        expr.validate(&view).unwrap();
        prop_assert_eq!(expr.matches(&view, &u.json()), f.reference(&u), "filter: {}", expr);
    }
}
