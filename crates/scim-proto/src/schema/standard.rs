//! The standard schemas (RFC 7643 §4, §8.7): the common attributes, User, the Enterprise
//! User extension and Group, with every attribute's characteristics.

use super::attribute::{AttributeDef, AttributeType, Mutability, Returned, SchemaDef, Uniqueness};
use crate::urn;

/// The attributes common to every resource (RFC 7643 §3.1): `id`, `externalId`, `meta`.
pub fn common_attributes() -> Vec<AttributeDef> {
    use Mutability::*;
    vec![
        // Not an attribute in RFC 7643 §3, but RFC 7644 §3.4.2.2 filters on it.
        AttributeDef::reference("schemas", &["uri"])
            .multi()
            .mutability(ReadOnly)
            .returned(Returned::Always),
        AttributeDef::string("id")
            .case_exact()
            .mutability(ReadOnly)
            .returned(Returned::Always)
            .unique(Uniqueness::Server),
        AttributeDef::string("externalId").case_exact(),
        AttributeDef::complex(
            "meta",
            vec![
                AttributeDef::string("resourceType")
                    .case_exact()
                    .mutability(ReadOnly),
                AttributeDef::date_time("created").mutability(ReadOnly),
                AttributeDef::date_time("lastModified").mutability(ReadOnly),
                AttributeDef::reference("location", &["uri"])
                    .case_exact()
                    .mutability(ReadOnly),
                AttributeDef::string("version")
                    .case_exact()
                    .mutability(ReadOnly),
            ],
        )
        .mutability(ReadOnly),
    ]
}

fn multi_valued_typed(name: &str, value: AttributeDef, types: &[&str]) -> AttributeDef {
    AttributeDef::complex(
        name,
        vec![
            value,
            AttributeDef::string("display"),
            AttributeDef::string("type").canonical(types),
            AttributeDef::boolean("primary"),
        ],
    )
    .multi()
}

/// RFC 7643 §4.1 + §8.7.1: the core User schema.
pub fn user_schema() -> SchemaDef {
    use Mutability::*;
    let s = AttributeDef::string;
    let attributes = vec![
        s("userName").required().unique(Uniqueness::Server).describe(
            "Unique identifier for the User, typically used to authenticate; unique per tenant, case-insensitive.",
        ),
        AttributeDef::complex(
            "name",
            vec![
                s("formatted"),
                s("familyName"),
                s("givenName"),
                s("middleName"),
                s("honorificPrefix"),
                s("honorificSuffix"),
            ],
        ),
        s("displayName"),
        s("nickName"),
        AttributeDef::reference("profileUrl", &["external"]),
        s("title"),
        s("userType"),
        s("preferredLanguage"),
        s("locale"),
        s("timezone"),
        AttributeDef::boolean("active"),
        s("password")
            .mutability(WriteOnly)
            .returned(Returned::Never),
        multi_valued_typed("emails", s("value"), &["work", "home", "other"]),
        multi_valued_typed(
            "phoneNumbers",
            s("value"),
            &["work", "home", "mobile", "fax", "pager", "other"],
        ),
        multi_valued_typed(
            "ims",
            s("value"),
            &["aim", "gtalk", "icq", "xmpp", "msn", "skype", "qq", "yahoo"],
        ),
        multi_valued_typed(
            "photos",
            AttributeDef::reference("value", &["external"]),
            &["photo", "thumbnail"],
        ),
        AttributeDef::complex(
            "addresses",
            vec![
                s("formatted"),
                s("streetAddress"),
                s("locality"),
                s("region"),
                s("postalCode"),
                s("country"),
                s("type").canonical(&["work", "home", "other"]),
                AttributeDef::boolean("primary"),
            ],
        )
        .multi(),
        AttributeDef::complex(
            "groups",
            vec![
                s("value").mutability(ReadOnly),
                AttributeDef::reference("$ref", &["User", "Group"]).mutability(ReadOnly),
                s("display").mutability(ReadOnly),
                s("type")
                    .canonical(&["direct", "indirect"])
                    .mutability(ReadOnly),
            ],
        )
        .multi()
        .mutability(ReadOnly),
        multi_valued_typed("entitlements", s("value"), &[]),
        multi_valued_typed("roles", s("value"), &[]),
        multi_valued_typed(
            "x509Certificates",
            AttributeDef::new("value", AttributeType::Binary),
            &[],
        ),
    ];
    SchemaDef {
        id: urn::USER.to_string(),
        name: "User".to_string(),
        description: "User Account".to_string(),
        attributes,
    }
}

/// RFC 7643 §4.3: the enterprise User extension.
pub fn enterprise_user_schema() -> SchemaDef {
    let s = AttributeDef::string;
    SchemaDef {
        id: urn::ENTERPRISE_USER.to_string(),
        name: "EnterpriseUser".to_string(),
        description: "Enterprise User".to_string(),
        attributes: vec![
            s("employeeNumber"),
            s("costCenter"),
            s("organization"),
            s("division"),
            s("department"),
            AttributeDef::complex(
                "manager",
                vec![
                    s("value"),
                    AttributeDef::reference("$ref", &["User"]),
                    s("displayName").mutability(Mutability::ReadOnly),
                ],
            ),
        ],
    }
}

/// RFC 7643 §4.2 + §8.7.1: the core Group schema.
pub fn group_schema() -> SchemaDef {
    let s = AttributeDef::string;
    SchemaDef {
        id: urn::GROUP.to_string(),
        name: "Group".to_string(),
        description: "Group".to_string(),
        attributes: vec![
            s("displayName").required().unique(Uniqueness::Server),
            AttributeDef::complex(
                "members",
                vec![
                    s("value").case_exact().mutability(Mutability::Immutable),
                    AttributeDef::reference("$ref", &["User", "Group"])
                        .mutability(Mutability::Immutable),
                    s("type")
                        .canonical(&["User", "Group"])
                        .mutability(Mutability::Immutable),
                    s("display").mutability(Mutability::ReadOnly),
                ],
            )
            .multi(),
        ],
    }
}
