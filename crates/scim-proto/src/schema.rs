//! The schema registry (RFC 7643 §2, §4, §7, §8.7).
//!
//! Every attribute the server understands is described here with its characteristics; the
//! resource parser, filter evaluator, PATCH engine and projection all consult the registry
//! rather than hard-coding attribute names. Extension schemas (custom attributes per tenant)
//! are registered at run time with [`SchemaRegistry::register_extension`].

use crate::error::{ScimError, ScimResult};
use crate::path::AttrPath;
use crate::urn;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// RFC 7643 §2.3 data types.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum AttributeType {
    String,
    Boolean,
    Decimal,
    Integer,
    DateTime,
    Binary,
    Reference,
    Complex,
}

/// RFC 7643 §7 `mutability`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Mutability {
    ReadOnly,
    ReadWrite,
    Immutable,
    WriteOnly,
}

/// RFC 7643 §7 `returned`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Returned {
    Always,
    Never,
    Default,
    Request,
}

/// RFC 7643 §7 `uniqueness`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Uniqueness {
    None,
    Server,
    Global,
}

/// One attribute definition (RFC 7643 §7 "attributes").
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AttributeDef {
    pub name: String,
    #[serde(rename = "type")]
    pub kind: AttributeType,
    pub multi_valued: bool,
    #[serde(default)]
    pub description: String,
    pub required: bool,
    pub case_exact: bool,
    pub mutability: Mutability,
    pub returned: Returned,
    pub uniqueness: Uniqueness,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub canonical_values: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub reference_types: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sub_attributes: Vec<AttributeDef>,
}

impl AttributeDef {
    /// A readWrite, optional, caseExact=false, returned=default attribute of the given type.
    pub fn new(name: &str, kind: AttributeType) -> Self {
        Self {
            name: name.to_string(),
            kind,
            multi_valued: false,
            description: String::new(),
            required: false,
            case_exact: false,
            mutability: Mutability::ReadWrite,
            returned: Returned::Default,
            uniqueness: Uniqueness::None,
            canonical_values: Vec::new(),
            reference_types: Vec::new(),
            sub_attributes: Vec::new(),
        }
    }
    pub fn string(name: &str) -> Self {
        Self::new(name, AttributeType::String)
    }
    pub fn boolean(name: &str) -> Self {
        Self::new(name, AttributeType::Boolean)
    }
    pub fn date_time(name: &str) -> Self {
        Self::new(name, AttributeType::DateTime)
    }
    pub fn reference(name: &str, types: &[&str]) -> Self {
        let mut a = Self::new(name, AttributeType::Reference);
        a.reference_types = types.iter().map(|s| s.to_string()).collect();
        a
    }
    pub fn complex(name: &str, subs: Vec<AttributeDef>) -> Self {
        let mut a = Self::new(name, AttributeType::Complex);
        a.sub_attributes = subs;
        a
    }
    pub fn multi(mut self) -> Self {
        self.multi_valued = true;
        self
    }
    pub fn required(mut self) -> Self {
        self.required = true;
        self
    }
    pub fn case_exact(mut self) -> Self {
        self.case_exact = true;
        self
    }
    pub fn mutability(mut self, m: Mutability) -> Self {
        self.mutability = m;
        self
    }
    pub fn returned(mut self, r: Returned) -> Self {
        self.returned = r;
        self
    }
    pub fn unique(mut self, u: Uniqueness) -> Self {
        self.uniqueness = u;
        self
    }
    pub fn canonical(mut self, values: &[&str]) -> Self {
        self.canonical_values = values.iter().map(|s| s.to_string()).collect();
        self
    }
    pub fn describe(mut self, d: &str) -> Self {
        self.description = d.to_string();
        self
    }

    /// Case-insensitive sub-attribute lookup (RFC 7643 §2.1: names are case-insensitive).
    pub fn sub_attribute(&self, name: &str) -> Option<&AttributeDef> {
        self.sub_attributes
            .iter()
            .find(|a| a.name.eq_ignore_ascii_case(name))
    }

    /// Whether this is a complex attribute with a `value` sub-attribute, so that a bare
    /// scalar can stand for `{"value": scalar}` (Entra's manager, Microsoft's member test).
    pub fn has_value_sub_attribute(&self) -> bool {
        self.kind == AttributeType::Complex && self.sub_attribute("value").is_some()
    }
}

/// A schema (RFC 7643 §7).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SchemaDef {
    pub id: String,
    pub name: String,
    #[serde(default)]
    pub description: String,
    pub attributes: Vec<AttributeDef>,
}

impl SchemaDef {
    pub fn attribute(&self, name: &str) -> Option<&AttributeDef> {
        self.attributes
            .iter()
            .find(|a| a.name.eq_ignore_ascii_case(name))
    }

    /// The `/Schemas` representation (RFC 7643 §7), including `meta`.
    pub fn to_json(&self, base_url: &str) -> Value {
        json!({
            "schemas": [urn::SCHEMA],
            "id": self.id,
            "name": self.name,
            "description": self.description,
            "attributes": self.attributes,
            "meta": {
                "resourceType": "Schema",
                "location": format!("{base_url}/Schemas/{}", self.id),
            }
        })
    }
}

/// A schema extension attached to a resource type.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SchemaExtension {
    pub schema: String,
    pub required: bool,
}

/// A resource type (RFC 7643 §6).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ResourceTypeDef {
    pub id: String,
    pub name: String,
    pub endpoint: String,
    pub description: String,
    pub schema: String,
    pub schema_extensions: Vec<SchemaExtension>,
}

impl ResourceTypeDef {
    /// The `/ResourceTypes` representation (RFC 7643 §6).
    pub fn to_json(&self, base_url: &str) -> Value {
        json!({
            "schemas": [urn::RESOURCE_TYPE],
            "id": self.id,
            "name": self.name,
            "endpoint": self.endpoint,
            "description": self.description,
            "schema": self.schema,
            "schemaExtensions": self.schema_extensions,
            "meta": {
                "resourceType": "ResourceType",
                "location": format!("{base_url}/ResourceTypes/{}", self.id),
            }
        })
    }
}

/// Where an attribute path resolved to.
#[derive(Debug, Clone, Copy)]
pub struct ResolvedAttr<'a> {
    /// URN of the schema holding the attribute.
    pub schema: &'a str,
    /// Whether that schema is an extension (its attributes live under the URN key).
    pub is_extension: bool,
    /// The top-level attribute.
    pub attr: &'a AttributeDef,
    /// The sub-attribute, when the path names one.
    pub sub: Option<&'a AttributeDef>,
}

impl<'a> ResolvedAttr<'a> {
    /// The definition of the attribute the path ends at.
    pub fn leaf(&self) -> &'a AttributeDef {
        self.sub.unwrap_or(self.attr)
    }
}

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

/// All schemas and resource types one tenant's SCIM endpoint serves.
#[derive(Debug, Clone)]
pub struct SchemaRegistry {
    schemas: Vec<SchemaDef>,
    resource_types: Vec<ResourceTypeDef>,
    common: Vec<AttributeDef>,
}

impl Default for SchemaRegistry {
    fn default() -> Self {
        Self::new()
    }
}

impl SchemaRegistry {
    /// The standard registry: User (+ EnterpriseUser) and Group.
    pub fn new() -> Self {
        Self {
            schemas: vec![user_schema(), enterprise_user_schema(), group_schema()],
            resource_types: vec![
                ResourceTypeDef {
                    id: "User".into(),
                    name: "User".into(),
                    endpoint: "/Users".into(),
                    description: "User Account".into(),
                    schema: urn::USER.into(),
                    schema_extensions: vec![SchemaExtension {
                        schema: urn::ENTERPRISE_USER.into(),
                        required: false,
                    }],
                },
                ResourceTypeDef {
                    id: "Group".into(),
                    name: "Group".into(),
                    endpoint: "/Groups".into(),
                    description: "Group".into(),
                    schema: urn::GROUP.into(),
                    schema_extensions: vec![],
                },
            ],
            common: common_attributes(),
        }
    }

    /// Registers an extension schema for a resource type (custom attributes per tenant).
    /// The URN must be unique; attribute names must be valid ATTRNAMEs.
    pub fn register_extension(&mut self, resource_type: &str, schema: SchemaDef) -> ScimResult<()> {
        if self.schema(&schema.id).is_some() {
            return Err(ScimError::invalid_value(format!(
                "schema '{}' is already registered",
                schema.id
            )));
        }
        if !schema.id.to_ascii_lowercase().starts_with("urn:") {
            return Err(ScimError::invalid_value(
                "an extension schema id must be a URN",
            ));
        }
        for a in &schema.attributes {
            if !crate::path::is_attr_name(&a.name) {
                return Err(ScimError::invalid_value(format!(
                    "'{}' is not a valid attribute name",
                    a.name
                )));
            }
        }
        let rt = self
            .resource_types
            .iter_mut()
            .find(|r| r.id.eq_ignore_ascii_case(resource_type))
            .ok_or_else(|| {
                ScimError::invalid_value(format!("unknown resource type '{resource_type}'"))
            })?;
        rt.schema_extensions.push(SchemaExtension {
            schema: schema.id.clone(),
            required: false,
        });
        self.schemas.push(schema);
        Ok(())
    }

    pub fn schemas(&self) -> &[SchemaDef] {
        &self.schemas
    }
    pub fn resource_types(&self) -> &[ResourceTypeDef] {
        &self.resource_types
    }
    pub fn common_attributes(&self) -> &[AttributeDef] {
        &self.common
    }

    /// Case-insensitive schema lookup by URN.
    pub fn schema(&self, id: &str) -> Option<&SchemaDef> {
        self.schemas.iter().find(|s| s.id.eq_ignore_ascii_case(id))
    }

    pub fn resource_type(&self, id: &str) -> Option<&ResourceTypeDef> {
        self.resource_types
            .iter()
            .find(|r| r.id.eq_ignore_ascii_case(id))
    }

    /// Resolves the core schema and the extension schemas of a resource type.
    pub fn view(&self, resource_type: &str) -> ScimResult<ResourceView<'_>> {
        let rt = self.resource_type(resource_type).ok_or_else(|| {
            ScimError::invalid_value(format!("unknown resource type '{resource_type}'"))
        })?;
        let core = self
            .schema(&rt.schema)
            .ok_or_else(|| ScimError::invalid_value("resource type without schema"))?;
        let extensions = rt
            .schema_extensions
            .iter()
            .filter_map(|e| self.schema(&e.schema))
            .collect();
        Ok(ResourceView {
            resource_type: rt,
            core,
            extensions,
            common: &self.common,
        })
    }
}

/// The schemas of one resource type, resolved: what parsing, filtering and PATCH work against.
#[derive(Debug, Clone)]
pub struct ResourceView<'a> {
    pub resource_type: &'a ResourceTypeDef,
    pub core: &'a SchemaDef,
    pub extensions: Vec<&'a SchemaDef>,
    pub common: &'a [AttributeDef],
}

impl<'a> ResourceView<'a> {
    /// The extension whose URN equals `id` (case-insensitively).
    pub fn extension(&self, id: &str) -> Option<&'a SchemaDef> {
        self.extensions
            .iter()
            .copied()
            .find(|s| s.id.eq_ignore_ascii_case(id))
    }

    /// A top-level attribute of the core schema or a common attribute.
    pub fn core_attribute(&self, name: &str) -> Option<&'a AttributeDef> {
        self.core.attribute(name).or_else(|| {
            self.common
                .iter()
                .find(|a| a.name.eq_ignore_ascii_case(name))
        })
    }

    /// Resolves an attribute path (RFC 7644 §3.10) against this resource type.
    pub fn resolve(&self, path: &AttrPath) -> Option<ResolvedAttr<'a>> {
        let (schema, is_extension, attr) = match &path.urn {
            Some(u) if u.eq_ignore_ascii_case(&self.core.id) => (
                self.core.id.as_str(),
                false,
                self.core_attribute(&path.name)?,
            ),
            Some(u) => {
                let ext = self.extension(u)?;
                (ext.id.as_str(), true, ext.attribute(&path.name)?)
            }
            None => match self.core_attribute(&path.name) {
                Some(a) => (self.core.id.as_str(), false, a),
                // RFC 7644 §3.10: an attribute of an extension may be named without its URN
                // when no core attribute has that name and one extension alone has it
                // (Entra filters on `manager` and `employeeNumber`: docs/interop.md §2.2).
                None => {
                    let mut found = self
                        .extensions
                        .iter()
                        .filter_map(|ext| Some((ext, ext.attribute(&path.name)?)));
                    let (ext, attr) = found.next()?;
                    if found.next().is_some() {
                        return None;
                    }
                    (ext.id.as_str(), true, attr)
                }
            },
        };
        let sub = match &path.sub {
            Some(s) => Some(attr.sub_attribute(s)?),
            None => None,
        };
        Some(ResolvedAttr {
            schema,
            is_extension,
            attr,
            sub,
        })
    }

    /// Like [`resolve`](Self::resolve) but with an `invalidPath`/`invalidFilter`-ready message.
    pub fn resolve_or(
        &self,
        path: &AttrPath,
        err: fn(String) -> ScimError,
    ) -> ScimResult<ResolvedAttr<'a>> {
        self.resolve(path).ok_or_else(|| {
            let shared = path.urn.is_none()
                && self
                    .extensions
                    .iter()
                    .filter(|e| e.attribute(&path.name).is_some())
                    .count()
                    > 1;
            let name = crate::error::excerpt(&path.to_string());
            let rt = &self.resource_type.name;
            err(if shared {
                format!(
                    "attribute '{name}' of resource type {rt} is ambiguous: several schemas \
                     have it; qualify it with its schema URN"
                )
            } else {
                format!("unknown attribute '{name}' for resource type {rt}")
            })
        })
    }
}

static STANDARD: std::sync::LazyLock<SchemaRegistry> =
    std::sync::LazyLock::new(SchemaRegistry::new);

/// The standard registry every tenant serves: User (+ EnterpriseUser) and Group.
pub fn standard_registry() -> &'static SchemaRegistry {
    &STANDARD
}

/// The view of a resource type in the standard registry. It cannot fail: [`SchemaRegistry::new`]
/// lays out the resource types as `[User, Group]` and the schemas as `[User,
/// EnterpriseUser, Group]` (checked by a unit test against [`SchemaRegistry::view`]).
pub fn standard_view(kind: crate::kind::ResourceKind) -> ResourceView<'static> {
    let r = standard_registry();
    let (rt, core, exts): (usize, usize, &[usize]) = match kind {
        crate::kind::ResourceKind::User => (0, 0, &[1]),
        crate::kind::ResourceKind::Group => (1, 2, &[]),
    };
    ResourceView {
        resource_type: &r.resource_types[rt],
        core: &r.schemas[core],
        extensions: exts.iter().map(|i| &r.schemas[*i]).collect(),
        common: &r.common,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kind::ResourceKind;

    #[test]
    fn standard_views_are_the_registry_views() {
        for kind in [ResourceKind::User, ResourceKind::Group] {
            let a = standard_view(kind);
            let b = standard_registry().view(kind.as_str()).unwrap();
            assert_eq!(a.resource_type, b.resource_type);
            assert_eq!(a.core.id, b.core.id);
            assert_eq!(
                a.extensions.iter().map(|s| &s.id).collect::<Vec<_>>(),
                b.extensions.iter().map(|s| &s.id).collect::<Vec<_>>()
            );
        }
    }
}
