//! `[users]` and `[groups]`: attribute mappings as written in the job file (Entra's Direct,
//! Constant, Expression and None; compiled by `crate::mapping`).

use crate::expr;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Eq, Default)]
#[serde(rename_all = "snake_case")]
pub enum Apply {
    #[default]
    Always,
    OnCreate,
}

/// One attribute mapping (Entra's Direct / Constant / Expression / None).
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Default)]
#[serde(deny_unknown_fields)]
pub struct Mapping {
    /// The target attribute path (`emails[type eq "work"].value`).
    pub target: String,
    /// Direct: the source attribute.
    pub source: Option<String>,
    pub constant: Option<String>,
    pub expression: Option<String>,
    /// None: the target attribute is left alone (only `default` fills it on create).
    #[serde(default)]
    pub none: bool,
    /// Used on create when the mapping gives null.
    pub default: Option<String>,
    #[serde(default)]
    pub apply: Apply,
    /// The value is a reference to another source user (manager): it is written as that
    /// user's target id, once the user is linked.
    #[serde(default)]
    pub reference: bool,
    /// Mask the value in plans and logs.
    #[serde(default)]
    pub redact: bool,
}

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Default)]
#[serde(deny_unknown_fields)]
pub struct ObjectMappings {
    /// When empty, the defaults (docs/sync.md §3) apply.
    #[serde(default)]
    pub mappings: Vec<Mapping>,
    /// Add these to the defaults instead of replacing them.
    #[serde(default)]
    pub extra: Vec<Mapping>,
    /// Target attributes to match existing objects by, in precedence order.
    #[serde(default)]
    pub matching: Vec<String>,
}

impl Mapping {
    /// What can be checked without a source: one kind, a valid path, an expression that
    /// parses.
    pub fn check(&self) -> Result<(), String> {
        let kinds = [
            self.source.is_some(),
            self.constant.is_some(),
            self.expression.is_some(),
            self.none,
        ]
        .iter()
        .filter(|b| **b)
        .count();
        if kinds != 1 {
            return Err("give exactly one of source, constant, expression or none = true".into());
        }
        scim_proto::PatchPath::parse(&self.target).map_err(|e| e.detail)?;
        if let Some(e) = &self.expression {
            expr::parse(e).map_err(|e| format!("expression error {e}"))?;
        }
        Ok(())
    }
}
