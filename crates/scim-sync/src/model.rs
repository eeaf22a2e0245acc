//! The engine's small model: the kinds of object it provisions, the key it knows each by,
//! and how a source object answers `[attribute]` in expressions and scoping filters.

use crate::expr::{AttributeSource, Val};
pub use scim_core::ResourceKind as ObjectKind;
pub use scim_core::SourceObject;
use serde_json::Value;

/// An object's key in a job: its kind and its source id.
pub type Key = (ObjectKind, String);

/// Where the engine reads the time (deprovisioning timers, escrow, full-read intervals,
/// throttling); tests move it forward.
pub type Clock = std::sync::Arc<dyn Fn() -> scim_core::Timestamp + Send + Sync>;

/// The clock of the real world.
pub fn system_clock() -> Clock {
    std::sync::Arc::new(scim_core::Timestamp::now)
}

/// The SCIM client's name for a kind.
pub fn client_kind(k: ObjectKind) -> scim_client::ResourceKind {
    match k {
        ObjectKind::User => scim_client::ResourceKind::User,
        ObjectKind::Group => scim_client::ResourceKind::Group,
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

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn attributes_by_key_path_and_virtual_name() {
        let mut o = SourceObject::new(ObjectKind::User, "7");
        o.attributes = json!({"a.b": "key", "name": {"givenName": "Ada"}})
            .as_object()
            .cloned()
            .unwrap_or_default();
        o.suspended = true;
        assert_eq!(o.attribute("a.b"), Val::Str("key".into()));
        assert_eq!(o.attribute("name.givenName"), Val::Str("Ada".into()));
        assert_eq!(o.attribute("objectId"), Val::Str("7".into()));
        assert_eq!(o.attribute("IsSoftDeleted"), Val::Str("True".into()));
        assert_eq!(o.attribute("missing"), Val::Null);
    }
}
