//! The schema registry (RFC 7643 §2, §4, §7, §8.7).
//!
//! Every attribute the server understands is described here with its characteristics; the
//! resource parser, filter evaluator, PATCH engine and projection all consult the registry
//! rather than hard-coding attribute names. Extension schemas (custom attributes per tenant)
//! are registered at run time with [`SchemaRegistry::register_extension`].

use crate::error::{ScimError, ScimResult};
use crate::path::AttrPath;
use crate::urn;

mod attribute;
mod standard;

pub use attribute::{
    AttributeDef, AttributeType, Mutability, ResolvedAttr, ResourceTypeDef, Returned, SchemaDef,
    SchemaExtension, Uniqueness,
};
pub use standard::{common_attributes, enterprise_user_schema, group_schema, user_schema};

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
