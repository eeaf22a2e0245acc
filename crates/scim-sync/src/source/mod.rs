//! Sources: what the engine reads identities from. Every source gives the same thing —
//! objects with a stable id, attributes, a state and group memberships — plus a watermark
//! for the next cycle ([`SourceBatch`]).

mod file;
mod ldap;
mod scim;
mod tenant;

pub use file::{FileOrigin, FileSource};
pub use ldap::{DisabledRule, LdapSource};
pub use scim::ScimSource;
pub use tenant::{TenantReader, TenantSource};

use crate::error::SyncResult;
use crate::expr::{AttributeSource, Val};
use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum ObjectKind {
    User,
    Group,
}

impl ObjectKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ObjectKind::User => "User",
            ObjectKind::Group => "Group",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "User" => Some(ObjectKind::User),
            "Group" => Some(ObjectKind::Group),
            _ => None,
        }
    }

    pub fn client(self) -> scim_client::ResourceKind {
        match self {
            ObjectKind::User => scim_client::ResourceKind::User,
            ObjectKind::Group => scim_client::ResourceKind::Group,
        }
    }
}

/// One identity as the source has it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SourceObject {
    pub kind: ObjectKind,
    pub id: String,
    /// Attributes by name (a CSV header, a JSON field) or as a SCIM resource.
    pub attributes: Map<String, Value>,
    /// Suspended or disabled at the source (users).
    #[serde(default)]
    pub suspended: bool,
    /// Groups: the source ids of their direct members (users or groups).
    #[serde(default)]
    pub members: Vec<String>,
}

impl SourceObject {
    /// A name for logs: userName, displayName, else the id.
    pub fn display(&self) -> String {
        ["userName", "displayName", "mail", "email"]
            .iter()
            .find_map(|k| self.attributes.get(*k).and_then(Value::as_str))
            .unwrap_or(&self.id)
            .to_string()
    }
}

/// `[name]` for expressions and scoping: the exact key first (a CSV header such as
/// `emails[type eq "work"].value` is a key), then a SCIM path into the attributes
/// (`name.givenName`, `emails[type eq "work"].value`, an extension URN), then the virtual
/// attributes `objectId` (the source id) and `IsSoftDeleted` (`"True"` when suspended).
impl AttributeSource for SourceObject {
    fn attribute(&self, name: &str) -> Val {
        if let Some(v) = self.attributes.get(name) {
            return Val::from_json(v);
        }
        if let Some(v) = crate::path::read_loose(&Value::Object(self.attributes.clone()), name) {
            return Val::from_json(&v);
        }
        match name {
            "objectId" | "id" => Val::Str(self.id.clone()),
            "IsSoftDeleted" => Val::Str(if self.suspended { "True" } else { "False" }.into()),
            _ => Val::Null,
        }
    }
}

/// One read of a source.
#[derive(Debug, Clone, Default)]
pub struct SourceBatch {
    /// Everything the source has: objects absent from it are deleted at the source.
    pub full: bool,
    pub objects: Vec<SourceObject>,
    /// In an incremental batch, objects known to be gone.
    pub deleted: Vec<(ObjectKind, String)>,
    /// In an incremental batch, per kind, every object of that kind the source has now
    /// (LDAP's id scan, syncrepl's present phase): known objects absent are deleted.
    pub present: std::collections::HashMap<ObjectKind, std::collections::HashSet<String>>,
    /// What to hand back next cycle.
    pub watermark: Option<Value>,
}

#[async_trait]
pub trait Source: Send + Sync {
    /// Reads what changed since `watermark` (everything when `None`, or when the source
    /// cannot read incrementally).
    async fn read(&self, watermark: Option<&Value>) -> SyncResult<SourceBatch>;
    /// `csv`, `json`, `scim`, `tenant`, `ldap`.
    fn describe(&self) -> String;
}

/// Group display names to stable ids for file sources, where a group is known by name.
pub fn group_id_for_name(name: &str) -> String {
    name.trim().to_string()
}
