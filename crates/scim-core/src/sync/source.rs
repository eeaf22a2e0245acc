//! One identity as a source has it: the engine's unit of work, and the snapshot the ledger
//! keeps of what it last read.

use crate::resource::ResourceKind;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// One identity as the source has it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SourceObject {
    pub kind: ResourceKind,
    pub id: String,
    /// Attributes by name (a CSV header, a JSON field, an LDAP attribute) or as a SCIM
    /// resource.
    pub attributes: Map<String, Value>,
    /// Suspended or disabled at the source (users).
    #[serde(default)]
    pub suspended: bool,
    /// Groups: the source ids of their direct members (users or groups).
    #[serde(default)]
    pub members: Vec<String>,
}

impl SourceObject {
    /// An object with no attributes yet.
    pub fn new(kind: ResourceKind, id: &str) -> Self {
        Self {
            kind,
            id: id.to_string(),
            attributes: Map::new(),
            suspended: false,
            members: Vec::new(),
        }
    }

    /// A name for logs: userName, displayName, mail, email, else the id.
    pub fn display(&self) -> String {
        ["userName", "displayName", "mail", "email"]
            .iter()
            .find_map(|k| self.attributes.get(*k).and_then(Value::as_str))
            .unwrap_or(&self.id)
            .to_string()
    }
}
