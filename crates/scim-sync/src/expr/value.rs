//! Values of the expression language and their JSON forms.

use serde_json::Value;

#[derive(Debug, Clone, PartialEq)]
pub enum Val {
    Null,
    Str(String),
    Bool(bool),
    Int(i64),
    List(Vec<Val>),
    /// `SelectUniqueValue`'s candidates, in order; the engine picks the first the target
    /// does not hold yet.
    Candidates(Vec<String>),
    /// A JSON object from the source (a complex attribute such as `name`, or an element of
    /// `emails`): passed through a direct mapping as it is, seen by functions as its JSON
    /// text.
    Object(serde_json::Map<String, Value>),
}

impl Val {
    pub fn is_null(&self) -> bool {
        matches!(self, Val::Null)
    }

    pub fn is_null_or_empty(&self) -> bool {
        match self {
            Val::Null => true,
            Val::Str(s) => s.is_empty(),
            Val::List(l) => l.is_empty(),
            Val::Candidates(c) => c.is_empty(),
            Val::Object(o) => o.is_empty(),
            Val::Bool(_) | Val::Int(_) => false,
        }
    }

    /// Text form; null stays `None`. A list gives its first element (a multi-valued
    /// attribute read where one value is wanted).
    pub fn as_text(&self) -> Option<String> {
        match self {
            Val::Null => None,
            Val::Str(s) => Some(s.clone()),
            // Entra writes booleans as "True"/"False" in expressions; SCIM wants JSON
            // booleans, which `to_json` gives. In text context use the SCIM spelling.
            Val::Bool(b) => Some(b.to_string()),
            Val::Int(n) => Some(n.to_string()),
            Val::List(l) => l.first().and_then(Val::as_text),
            Val::Candidates(c) => c.first().cloned(),
            Val::Object(o) => Some(Value::Object(o.clone()).to_string()),
        }
    }

    /// Truth for `IIF` and `Not`: booleans, "true"/"false" in any case, non-zero numbers.
    pub fn truthy(&self) -> bool {
        match self {
            Val::Bool(b) => *b,
            Val::Int(n) => *n != 0,
            Val::Str(s) => s.trim().eq_ignore_ascii_case("true") || s.trim() == "1",
            Val::List(l) => l.first().is_some_and(Val::truthy),
            Val::Null | Val::Candidates(_) | Val::Object(_) => false,
        }
    }

    pub fn into_list(self) -> Vec<Val> {
        match self {
            Val::Null => Vec::new(),
            Val::List(l) => l,
            v => vec![v],
        }
    }

    pub fn from_json(v: &Value) -> Self {
        match v {
            Value::Null => Val::Null,
            Value::Bool(b) => Val::Bool(*b),
            Value::Number(n) => n.as_i64().map_or_else(|| Val::Str(n.to_string()), Val::Int),
            Value::String(s) => Val::Str(s.clone()),
            Value::Array(a) => Val::List(a.iter().map(Val::from_json).collect()),
            Value::Object(o) => Val::Object(o.clone()),
        }
    }

    pub fn to_json(&self) -> Value {
        match self {
            Val::Null => Value::Null,
            Val::Str(s) => Value::String(s.clone()),
            Val::Bool(b) => Value::Bool(*b),
            Val::Int(n) => Value::from(*n),
            Val::List(l) => Value::Array(l.iter().map(Val::to_json).collect()),
            Val::Candidates(c) => c.first().map_or(Value::Null, |s| Value::String(s.clone())),
            Val::Object(o) => Value::Object(o.clone()),
        }
    }
}
