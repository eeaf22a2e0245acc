//! Filter grammar: every filter example of RFC 7644 §3.4.2.2 and §3.4.3, real-client filters,
//! and the errors, table-driven.

use scim_proto::filter::{self, FilterLimits, parse_with};
use scim_proto::{CompValue, CompareOp, FilterExpr, ScimType};

/// (input, canonical printed form)
const PARSES: &[(&str, &str)] = &[
    // RFC 7644 §3.4.2.2, figure "Example filters"
    (r#"userName eq "bjensen""#, r#"userName eq "bjensen""#),
    (
        r#"name.familyName co "O'Malley""#,
        r#"name.familyName co "O'Malley""#,
    ),
    (r#"userName sw "J""#, r#"userName sw "J""#),
    (
        r#"urn:ietf:params:scim:schemas:core:2.0:User:userName sw "J""#,
        r#"urn:ietf:params:scim:schemas:core:2.0:User:userName sw "J""#,
    ),
    ("title pr", "title pr"),
    (
        r#"meta.lastModified gt "2011-05-13T04:42:34Z""#,
        r#"meta.lastModified gt "2011-05-13T04:42:34Z""#,
    ),
    (
        r#"meta.lastModified ge "2011-05-13T04:42:34Z""#,
        r#"meta.lastModified ge "2011-05-13T04:42:34Z""#,
    ),
    (
        r#"meta.lastModified lt "2011-05-13T04:42:34Z""#,
        r#"meta.lastModified lt "2011-05-13T04:42:34Z""#,
    ),
    (
        r#"meta.lastModified le "2011-05-13T04:42:34Z""#,
        r#"meta.lastModified le "2011-05-13T04:42:34Z""#,
    ),
    (
        r#"title pr and userType eq "Employee""#,
        r#"title pr and userType eq "Employee""#,
    ),
    (
        r#"title pr or userType eq "Intern""#,
        r#"title pr or userType eq "Intern""#,
    ),
    (
        r#"schemas eq "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User""#,
        r#"schemas eq "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User""#,
    ),
    (
        r#"userType eq "Employee" and (emails co "example.com" or emails.value co "example.org")"#,
        r#"userType eq "Employee" and (emails co "example.com" or emails.value co "example.org")"#,
    ),
    (
        r#"userType ne "Employee" and not (emails co "example.com" or emails.value co "example.org")"#,
        r#"userType ne "Employee" and not (emails co "example.com" or emails.value co "example.org")"#,
    ),
    (
        r#"userType eq "Employee" and (emails.type eq "work")"#,
        r#"userType eq "Employee" and emails.type eq "work""#,
    ),
    (
        r#"userType eq "Employee" and emails[type eq "work" and value co "@example.com"]"#,
        r#"userType eq "Employee" and emails[type eq "work" and value co "@example.com"]"#,
    ),
    (
        r#"emails[type eq "work" and value co "@example.com"] or ims[type eq "xmpp" and value co "@foo.com"]"#,
        r#"emails[type eq "work" and value co "@example.com"] or ims[type eq "xmpp" and value co "@foo.com"]"#,
    ),
    // RFC 7644 §3.4.3 (search request)
    (r#"displayName sw "smith""#, r#"displayName sw "smith""#),
    // Keywords and operators are case-insensitive; output is canonical lower case.
    (
        r#"userName EQ "a" AND title Pr OR NOT (active Eq TRUE)"#,
        r#"userName eq "a" and title pr or not (active eq true)"#,
    ),
    // Precedence: and binds tighter than or; grouping is kept only where needed.
    (
        r#"a eq 1 or b eq 2 and c eq 3"#,
        "a eq 1 or b eq 2 and c eq 3",
    ),
    (
        r#"(a eq 1 or b eq 2) and c eq 3"#,
        "(a eq 1 or b eq 2) and c eq 3",
    ),
    (
        r#"a eq 1 and (b eq 2 and c eq 3)"#,
        "a eq 1 and (b eq 2 and c eq 3)",
    ),
    (r#"((a eq 1))"#, "a eq 1"),
    // Literals: JSON string escapes, numbers, booleans, null.
    (
        r#"displayName eq "a \"quoted\" \\ \u00e9 \n""#,
        r#"displayName eq "a \"quoted\" \\ é \n""#,
    ),
    ("x eq -1.5e3", "x eq -1500.0"),
    ("x eq 42", "x eq 42"),
    ("x eq false", "x eq false"),
    ("x eq null", "x eq null"),
    // Real clients (docs/interop.md §2)
    (
        r#"userName eq "dale.mohr@romaguera.uk""#,
        r#"userName eq "dale.mohr@romaguera.uk""#,
    ),
    (r#"externalId eq jyoung"#, r#"externalId eq "jyoung""#),
    (
        r#"DisplayName eq "BobIsAmazing""#,
        r#"DisplayName eq "BobIsAmazing""#,
    ),
    (
        r#"name.FamilyName eq Employee and (emails.Value co example.com or emails.Value co example.org)"#,
        r#"name.FamilyName eq "Employee" and (emails.Value co "example.com" or emails.Value co "example.org")"#,
    ),
    (r#"userName sw O"#, r#"userName sw "O""#),
    (
        r#"meta.Created gt 2015-10-10T14:38:21.8617979-07:00"#,
        r#"meta.Created gt "2015-10-10T14:38:21.8617979-07:00""#,
    ),
    (
        r#"id eq "u1" and manager eq "m1""#,
        r#"id eq "u1" and manager eq "m1""#,
    ),
    (
        r#"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber eq "701984""#,
        r#"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber eq "701984""#,
    ),
    (
        r#"emails[type eq "work"].value eq "a@b.c""#,
        r#"emails[type eq "work" and value eq "a@b.c"]"#,
    ),
    (r#"roles[primary eq "True"]"#, r#"roles[primary eq "True"]"#),
    (r#"not userName eq "x""#, r#"not (userName eq "x")"#),
    (r#"members.$ref pr"#, "members.$ref pr"),
];

#[test]
fn rfc_and_client_filters_parse_and_print_canonically() {
    for (input, printed) in PARSES {
        let f = filter::parse(input).unwrap_or_else(|e| panic!("{input}: {e}"));
        assert_eq!(&f.to_string(), printed, "printing {input}");
        assert_eq!(filter::parse(printed).unwrap(), f, "re-parsing {printed}");
    }
}

#[test]
fn tree_shape_follows_rfc_precedence() {
    use scim_proto::AttrPath;
    let eq = |n: &str, v: i64| {
        FilterExpr::compare(AttrPath::new(n), CompareOp::Eq, CompValue::Number(v.into()))
    };
    let cases = [
        (
            "a eq 1 or b eq 2 and c eq 3",
            FilterExpr::or(eq("a", 1), FilterExpr::and(eq("b", 2), eq("c", 3))),
        ),
        (
            "a eq 1 and b eq 2 or c eq 3",
            FilterExpr::or(FilterExpr::and(eq("a", 1), eq("b", 2)), eq("c", 3)),
        ),
        (
            "a eq 1 and b eq 2 and c eq 3",
            FilterExpr::and(FilterExpr::and(eq("a", 1), eq("b", 2)), eq("c", 3)),
        ),
        (
            "not (a eq 1) and b eq 2",
            FilterExpr::and(FilterExpr::negate(eq("a", 1)), eq("b", 2)),
        ),
        (
            "a eq 1 or b eq 2 or c eq 3",
            FilterExpr::or(FilterExpr::or(eq("a", 1), eq("b", 2)), eq("c", 3)),
        ),
    ];
    for (input, tree) in cases {
        assert_eq!(filter::parse(input).unwrap(), tree, "{input}");
    }
}

#[test]
fn value_paths_and_urns_have_the_expected_structure() {
    let f = filter::parse(r#"emails[type eq "work" and value co "@example.com"]"#).unwrap();
    let FilterExpr::ValuePath { attr, filter } = f else {
        panic!("not a value path")
    };
    assert_eq!(attr.name, "emails");
    assert_eq!(filter.term_count(), 2);
    let f = filter::parse(
        r#"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value eq "x""#,
    )
    .unwrap();
    let FilterExpr::Compare { path, .. } = f else {
        panic!()
    };
    assert_eq!(
        path.urn.as_deref(),
        Some("urn:ietf:params:scim:schemas:extension:enterprise:2.0:User")
    );
    assert_eq!(path.name, "manager");
    assert_eq!(path.sub.as_deref(), Some("value"));
}

/// (input, fragment of the message, byte position)
const ERRORS: &[(&str, &str, usize)] = &[
    ("", "empty", 0),
    ("   ", "empty", 0),
    ("userName", "expected an operator", 8),
    ("userName eq", "expected a value", 11),
    (r#"userName xx "a""#, "not a comparison operator", 9),
    (r#"(userName eq "a""#, "expected ')'", 16),
    (r#"userName eq "a")"#, "expected 'and', 'or' or the end", 15),
    (r#"userName eq "a" and"#, "expected an attribute name", 19),
    (
        r#"userName eq "a" userName eq "b""#,
        "expected 'and', 'or' or the end",
        16,
    ),
    (r#"emails[type eq "work""#, "expected ']'", 21),
    (r#"emails[type[value eq 1]]"#, "cannot be nested", 11),
    (r#""abc" eq "x""#, "expected an attribute name", 0),
    (r#"userName eq "unterminated"#, "unterminated string", 12),
    (
        r#"userName eq "bad \q escape""#,
        "invalid string literal",
        12,
    ),
    ("1abc eq 2", "not a valid attribute path", 0),
    ("a.b.c eq 2", "not a valid attribute path", 0),
    ("name.givenName[x eq 1]", "top-level attribute", 14),
    (
        "emails[type eq 1].va^lue eq 2",
        "not a valid sub-attribute",
        17,
    ),
    ("not", "expected an attribute name", 3),
    ("()", "expected an attribute name", 1),
];

#[test]
fn syntax_errors_are_invalid_filter_with_position() {
    for (input, fragment, pos) in ERRORS {
        let e = filter::parse(input).expect_err(input);
        assert_eq!(e.status, 400, "{input}");
        assert_eq!(e.scim_type, Some(ScimType::InvalidFilter), "{input}");
        assert!(e.detail.contains(fragment), "{input}: {}", e.detail);
        assert!(
            e.detail.contains(&format!("position {pos}")),
            "{input}: {}",
            e.detail
        );
    }
}

#[test]
fn limits_bound_depth_terms_and_length() {
    let deep = format!("{}a eq 1{}", "(".repeat(33), ")".repeat(33));
    assert!(
        filter::parse(&deep)
            .unwrap_err()
            .detail
            .contains("nested deeper")
    );
    let ok = format!("{}a eq 1{}", "(".repeat(32), ")".repeat(32));
    assert!(filter::parse(&ok).is_ok());
    let nots = format!("{}a eq 1", "not ".repeat(100));
    assert!(
        filter::parse(&nots)
            .unwrap_err()
            .detail
            .contains("nested deeper")
    );
    // Far deeper than any stack could take recursively: rejected quickly, no overflow.
    let hostile = "(".repeat(1_000_000);
    assert!(
        parse_with(
            &hostile,
            FilterLimits {
                max_len: usize::MAX,
                ..Default::default()
            }
        )
        .is_err()
    );
    let many = vec!["a eq 1"; 257].join(" or ");
    assert!(
        filter::parse(&many)
            .unwrap_err()
            .detail
            .contains("limit of 256")
    );
    let long = format!(r#"a eq "{}""#, "x".repeat(9000));
    assert!(
        filter::parse(&long)
            .unwrap_err()
            .detail
            .contains("longer than")
    );
}
