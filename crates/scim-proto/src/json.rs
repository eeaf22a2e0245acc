//! Low-level JSON helpers every other module uses: case-insensitive member lookup (RFC 7643
//! §2.1: attribute names are case-insensitive), type names for error details, and the
//! boolean strings Entra sends. This module imports nothing else of the crate, so the rest
//! can share it without importing each other.

use serde_json::{Map, Value};

/// Case-insensitive object member lookup; exact spelling first.
pub fn get_ci<'v>(v: &'v Value, key: &str) -> Option<&'v Value> {
    let obj = v.as_object()?;
    obj.get(key).or_else(|| {
        obj.iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(key))
            .map(|(_, v)| v)
    })
}

/// The key under which `key` is stored in `obj`, compared case-insensitively.
pub fn find_key(obj: &Map<String, Value>, key: &str) -> Option<String> {
    if obj.contains_key(key) {
        return Some(key.to_string());
    }
    obj.keys().find(|k| k.eq_ignore_ascii_case(key)).cloned()
}

/// "a string", "an object", … for error details.
pub fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// `"True"`/`"false"` as Entra's default mappings send booleans (docs/interop.md §Entra).
pub fn parse_bool_str(s: &str) -> Option<bool> {
    if s.eq_ignore_ascii_case("true") {
        Some(true)
    } else if s.eq_ignore_ascii_case("false") {
        Some(false)
    } else {
        None
    }
}
