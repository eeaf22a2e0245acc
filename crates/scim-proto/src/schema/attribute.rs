//! What the registry is made of: attribute characteristics (RFC 7643 §2), schemas,
//! resource types, and an attribute resolved against its schema.

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
