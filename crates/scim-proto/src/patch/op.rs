//! The `PatchOp` message (RFC 7644 §3.5.2) as real clients send it: operations with their
//! kind (any case), path (parsed; a whole schema URN resolved when applied) and value.

use crate::error::{ScimError, ScimResult};
use crate::filter::PatchPath;
use crate::json::{find_key, get_ci};
use crate::urn;
use serde_json::{Map, Value};

/// `add` / `remove` / `replace`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PatchOpKind {
    Add,
    Remove,
    Replace,
}

impl PatchOpKind {
    pub fn parse(s: &str) -> ScimResult<Self> {
        match s.to_ascii_lowercase().as_str() {
            "add" => Ok(Self::Add),
            "remove" => Ok(Self::Remove),
            "replace" => Ok(Self::Replace),
            _ => Err(ScimError::invalid_syntax(format!(
                "unknown PATCH op '{s}'; expected add, remove or replace"
            ))),
        }
    }
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Add => "add",
            Self::Remove => "remove",
            Self::Replace => "replace",
        }
    }
}

/// One PATCH operation, with its path parsed.
#[derive(Debug, Clone, PartialEq)]
pub struct PatchOp {
    pub kind: PatchOpKind,
    /// The raw path, as sent.
    pub raw_path: Option<String>,
    pub path: Option<PatchPath>,
    pub value: Option<Value>,
}

impl PatchOp {
    pub fn new(kind: PatchOpKind, path: Option<&str>, value: Option<Value>) -> ScimResult<Self> {
        let path_str = path.map(str::trim).filter(|p| !p.is_empty());
        // A path naming a whole schema URN is resolved against the registry at apply time.
        let parsed = match path_str {
            Some(p) if looks_like_schema_urn(p) => None,
            Some(p) => Some(PatchPath::parse(p)?),
            None => None,
        };
        Ok(Self {
            kind,
            raw_path: path_str.map(str::to_string),
            path: parsed,
            value,
        })
    }
}

/// `urn:…:2.0:User`-style strings whose last segment starts with an upper-case letter are
/// schema URNs, not attribute paths (attribute names start lower-case in every SCIM schema).
fn looks_like_schema_urn(p: &str) -> bool {
    crate::path::has_urn_prefix(p)
        && !p.contains('[')
        && p.rsplit(':')
            .next()
            .and_then(|last| last.chars().next())
            .is_some_and(|c| c.is_ascii_uppercase())
        && !p.rsplit(':').next().unwrap_or("").contains('.')
}

/// A `PatchOp` message (RFC 7644 §3.5.2).
#[derive(Debug, Clone, PartialEq)]
pub struct PatchRequest {
    pub operations: Vec<PatchOp>,
}

impl PatchRequest {
    /// Reads a PATCH body. `schemas` is not required to list the PatchOp URN (several clients
    /// omit it), but if present it must be an array.
    pub fn from_value(body: &Value) -> ScimResult<Self> {
        let Value::Object(obj) = body else {
            return Err(ScimError::invalid_syntax(
                "a PATCH body must be a JSON object",
            ));
        };
        if let Some(s) = get_ci(body, "schemas")
            && !s.is_array()
        {
            return Err(ScimError::invalid_syntax("'schemas' must be an array"));
        }
        let ops = find_key(obj, "Operations")
            .and_then(|k| obj.get(&k))
            .ok_or_else(|| ScimError::invalid_syntax("a PATCH body needs an 'Operations' array"))?;
        let Value::Array(ops) = ops else {
            return Err(ScimError::invalid_syntax("'Operations' must be an array"));
        };
        if ops.is_empty() {
            return Err(ScimError::invalid_syntax("'Operations' is empty"));
        }
        let mut operations = Vec::with_capacity(ops.len());
        for (i, op) in ops.iter().enumerate() {
            let at = |e: ScimError| ScimError {
                detail: format!("operation {}: {}", i + 1, e.detail),
                ..e
            };
            if !op.is_object() {
                return Err(at(ScimError::invalid_syntax(
                    "each operation must be an object",
                )));
            }
            let kind = match get_ci(op, "op") {
                Some(Value::String(s)) => PatchOpKind::parse(s).map_err(at)?,
                _ => {
                    return Err(at(ScimError::invalid_syntax(
                        "'op' is missing or not a string",
                    )));
                }
            };
            let path = match get_ci(op, "path") {
                None | Some(Value::Null) => None,
                Some(Value::String(s)) => Some(s.as_str()),
                Some(_) => return Err(at(ScimError::invalid_path("'path' must be a string"))),
            };
            let value = get_ci(op, "value").cloned();
            operations.push(PatchOp::new(kind, path, value).map_err(at)?);
        }
        Ok(Self { operations })
    }

    /// The wire form.
    pub fn to_value(&self) -> Value {
        let ops: Vec<Value> = self
            .operations
            .iter()
            .map(|o| {
                let mut m = Map::new();
                m.insert("op".into(), Value::String(o.kind.as_str().into()));
                if let Some(p) = &o.raw_path {
                    m.insert("path".into(), Value::String(p.clone()));
                }
                if let Some(v) = &o.value {
                    m.insert("value".into(), v.clone());
                }
                Value::Object(m)
            })
            .collect();
        serde_json::json!({"schemas": [urn::PATCH_OP], "Operations": ops})
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schema_urn_paths_are_recognised() {
        assert!(looks_like_schema_urn(urn::ENTERPRISE_USER));
        assert!(!looks_like_schema_urn(
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager"
        ));
        assert!(!looks_like_schema_urn("userName"));
    }
}
