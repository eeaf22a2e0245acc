//! PATCH paths (RFC 7644 §3.5.2): `PATH = attrPath / valuePath [subAttr]`, where
//! `valuePath = attrPath "[" valFilter "]"`.

use super::{FilterExpr, FilterLimits, Parser};
use crate::error::{ScimError, ScimResult};
use crate::path::AttrPath;
use std::fmt;

/// A PATCH target (RFC 7644 §3.5.2): `attrPath`, or `attr[filter]` with an optional `.sub`.
#[derive(Debug, Clone, PartialEq)]
pub struct PatchPath {
    pub attr: AttrPath,
    /// The value-selection filter, evaluated against each value of a multi-valued attribute.
    pub filter: Option<FilterExpr>,
}

impl PatchPath {
    /// Parses a PATCH `path`. Errors are `400 invalidPath`.
    pub fn parse(s: &str) -> ScimResult<Self> {
        Parser::new(s, FilterLimits::default())
            .and_then(|p| p.parse_patch_path())
            .map(|(attr, filter)| PatchPath { attr, filter })
            .map_err(|e| {
                ScimError::invalid_path(format!(
                    "invalid PATCH path '{}': {e}",
                    crate::error::excerpt(s)
                ))
            })
    }
}

impl fmt::Display for PatchPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.filter {
            None => write!(f, "{}", self.attr),
            Some(filter) => {
                let base = self.attr.parent();
                write!(f, "{base}[{filter}]")?;
                if let Some(s) = &self.attr.sub {
                    write!(f, ".{s}")?;
                }
                Ok(())
            }
        }
    }
}
