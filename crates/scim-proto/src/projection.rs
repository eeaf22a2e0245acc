//! Attribute projection: `attributes` / `excludedAttributes` (RFC 7644 §3.4.2.5, §3.9) with
//! the `returned` characteristic (RFC 7643 §7).
//!
//! - `returned: never` (password) is never in a response.
//! - `returned: always` (`id`, and `schemas`) is in every response.
//! - With `attributes`, only the listed attributes (plus `always`) are returned; a listed
//!   sub-attribute (`name.givenName`, `emails.value`) returns only that part; listing an
//!   extension URN returns the whole extension.
//! - Otherwise `default` attributes are returned except the `excludedAttributes`, and
//!   `returned: request` attributes are left out.
//! - Paths that name no known attribute are ignored (they select nothing).

use crate::error::{ScimError, ScimResult};
use crate::path::AttrPath;
use crate::schema::{AttributeDef, ResourceView, Returned};
use serde_json::{Map, Value};

/// A parsed `attributes`/`excludedAttributes` pair.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Projection {
    pub attributes: Vec<String>,
    pub excluded: Vec<String>,
}

fn split(list: Option<&str>) -> ScimResult<Vec<String>> {
    let Some(list) = list else {
        return Ok(Vec::new());
    };
    let mut out = Vec::new();
    for item in list.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        if AttrPath::parse(item).is_none() {
            return Err(ScimError::invalid_value(format!(
                "'{}' is not a valid attribute path",
                crate::error::excerpt(item)
            )));
        }
        out.push(item.to_string());
    }
    Ok(out)
}

enum Pick {
    All,
    None,
    /// Only these sub-attributes (for `attributes=name.givenName`).
    Only(Vec<String>),
    /// All but these sub-attributes (for `excludedAttributes=name.givenName`).
    AllBut(Vec<String>),
}

impl Projection {
    /// Parses comma-separated lists as they appear in a query string.
    pub fn parse(attributes: Option<&str>, excluded: Option<&str>) -> ScimResult<Self> {
        Ok(Self {
            attributes: split(attributes)?,
            excluded: split(excluded)?,
        })
    }

    /// From the arrays of a SearchRequest.
    pub fn from_lists(attributes: &[String], excluded: &[String]) -> ScimResult<Self> {
        Self::parse(Some(&attributes.join(",")), Some(&excluded.join(",")))
    }

    /// Whether the top-level attribute `name` of the core schema will be in the response;
    /// lets a server skip loading it (`excludedAttributes=members`).
    pub fn includes(&self, view: &ResourceView<'_>, name: &str) -> bool {
        match view.core_attribute(name) {
            Some(def) => !matches!(self.pick(view, &view.core.id, false, def), Pick::None),
            None => false,
        }
    }

    /// Paths in `list` that address `def` in schema `schema`: `None` for the whole attribute,
    /// `Some(sub)` for a sub-attribute.
    fn mentions(
        view: &ResourceView<'_>,
        list: &[String],
        schema: &str,
        is_ext: bool,
        def: &AttributeDef,
    ) -> Vec<Option<String>> {
        let mut out = Vec::new();
        for item in list {
            if is_ext && item.eq_ignore_ascii_case(schema) {
                out.push(None);
                continue;
            }
            let Some(p) = AttrPath::parse(item) else {
                continue;
            };
            // The schema the name resolves to, short extension names included (RFC 7644
            // §3.10); a name nothing resolves to selects nothing.
            let schema_ok = view
                .resolve(&p.parent())
                .is_some_and(|r| r.schema.eq_ignore_ascii_case(schema));
            if schema_ok && p.name.eq_ignore_ascii_case(&def.name) {
                out.push(p.sub.clone());
            }
        }
        out
    }

    fn pick(
        &self,
        view: &ResourceView<'_>,
        schema: &str,
        is_ext: bool,
        def: &AttributeDef,
    ) -> Pick {
        match def.returned {
            Returned::Never => return Pick::None,
            Returned::Always => return Pick::All,
            _ => {}
        }
        if !self.attributes.is_empty() {
            let m = Self::mentions(view, &self.attributes, schema, is_ext, def);
            if m.is_empty() {
                return Pick::None;
            }
            if m.iter().any(Option::is_none) {
                return Pick::All;
            }
            return Pick::Only(m.into_iter().flatten().collect());
        }
        if def.returned == Returned::Request {
            return Pick::None;
        }
        let m = Self::mentions(view, &self.excluded, schema, is_ext, def);
        if m.iter().any(Option::is_none) {
            return Pick::None;
        }
        if m.is_empty() {
            Pick::All
        } else {
            Pick::AllBut(m.into_iter().flatten().collect())
        }
    }

    /// Projects a full canonical resource for the response.
    pub fn apply(&self, view: &ResourceView<'_>, resource: &Value) -> Value {
        let Value::Object(obj) = resource else {
            return resource.clone();
        };
        let mut out = Map::new();
        for (k, v) in obj {
            if k == "schemas" {
                out.insert(k.clone(), v.clone());
                continue;
            }
            if let Some(def) = view.core_attribute(k) {
                if let Some(pv) = apply_pick(self.pick(view, &view.core.id, false, def), def, v) {
                    out.insert(k.clone(), pv);
                }
                continue;
            }
            if let Some(ext) = view.extension(k) {
                let Value::Object(inner) = v else { continue };
                let mut eo = Map::new();
                for (ik, iv) in inner {
                    let Some(def) = ext.attribute(ik) else {
                        continue;
                    };
                    if let Some(pv) = apply_pick(self.pick(view, &ext.id, true, def), def, iv) {
                        eo.insert(ik.clone(), pv);
                    }
                }
                if !eo.is_empty() {
                    out.insert(k.clone(), Value::Object(eo));
                }
            }
        }
        Value::Object(out)
    }
}

fn filter_subs(v: &Value, keep: &dyn Fn(&str) -> bool) -> Option<Value> {
    match v {
        Value::Object(o) => {
            let m: Map<String, Value> = o
                .iter()
                .filter(|(k, _)| keep(k))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            (!m.is_empty()).then_some(Value::Object(m))
        }
        Value::Array(a) => {
            let items: Vec<Value> = a.iter().filter_map(|el| filter_subs(el, keep)).collect();
            (!items.is_empty()).then_some(Value::Array(items))
        }
        other => Some(other.clone()),
    }
}

fn apply_pick(pick: Pick, def: &AttributeDef, v: &Value) -> Option<Value> {
    let never: Vec<String> = def
        .sub_attributes
        .iter()
        .filter(|s| s.returned == Returned::Never)
        .map(|s| s.name.clone())
        .collect();
    let visible = |k: &str| !never.iter().any(|n| n.eq_ignore_ascii_case(k));
    match pick {
        Pick::None => None,
        Pick::All if never.is_empty() => Some(v.clone()),
        Pick::All => filter_subs(v, &visible),
        Pick::Only(subs) => filter_subs(v, &|k| {
            visible(k)
                && (subs.iter().any(|s| s.eq_ignore_ascii_case(k))
                    || def
                        .sub_attribute(k)
                        .is_some_and(|d| d.returned == Returned::Always))
        }),
        Pick::AllBut(subs) => filter_subs(v, &|k| {
            visible(k) && !subs.iter().any(|s| s.eq_ignore_ascii_case(k))
        }),
    }
}
