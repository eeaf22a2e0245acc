//! Who is in scope (docs/sync.md §5.2): assignment (everyone, or members of the scope
//! groups, nested when asked), the scoping filters, the default-role rule; and which groups
//! are provisioned.

use crate::expr::AttributeSource;
use crate::job::{Assignment, GroupScope, JobSpec};
use crate::model::{Key, ObjectKind, SourceObject};
use crate::scope::Filters;
use std::collections::{BTreeMap, HashSet, VecDeque};

/// The job's scope, compiled once per cycle.
pub struct Scoping<'a> {
    spec: &'a JobSpec,
    filters: Filters,
    /// Users assigned through the scope groups (`None`: assignment `all`).
    assigned: Option<HashSet<String>>,
}

impl<'a> Scoping<'a> {
    pub fn new(spec: &'a JobSpec, objects: &BTreeMap<Key, SourceObject>) -> Result<Self, String> {
        Ok(Self {
            spec,
            filters: Filters::compile(&spec.scope.filters)?,
            assigned: match spec.scope.assignment {
                Assignment::All => None,
                Assignment::Groups => Some(assigned_users(spec, objects)),
            },
        })
    }

    /// Scoping for one user: why it is in scope, or `Err(why not)`.
    pub fn user(&self, u: &SourceObject) -> Result<String, String> {
        let mut passed = Vec::new();
        if let Some(a) = &self.assigned {
            if !a.contains(&u.id) {
                return Err("not assigned: not a member of the scope groups".into());
            }
            passed.push("assigned to the application");
        } else {
            passed.push("scope: sync all");
        }
        let attr = |n: &str| u.attribute(n);
        self.filters
            .pass(&attr)
            .map_err(|f| format!("scoping filter not met ({f})"))?;
        if !self.filters.is_empty() {
            passed.push("scoping filters met");
        }
        let scope = &self.spec.scope;
        if let (Some(roles), Some(default)) = (&scope.roles, &scope.default_role) {
            let list: Vec<String> = attr(roles)
                .into_list()
                .iter()
                .filter_map(|v| v.as_text())
                .collect();
            if !list.is_empty() && list.iter().all(|r| r == default) {
                return Err(format!("only role is the default role '{default}'"));
            }
        }
        Ok(passed.join("; "))
    }

    /// Whether a group is provisioned.
    pub fn group(&self, g: &SourceObject) -> bool {
        match self.spec.group_scope() {
            GroupScope::All => true,
            GroupScope::None => false,
            GroupScope::Assigned => self
                .spec
                .scope
                .groups
                .iter()
                .any(|n| n.eq_ignore_ascii_case(&g.id) || n.eq_ignore_ascii_case(&g.display())),
        }
    }
}

/// Users who are members (directly, or through nested groups when asked) of the
/// assignment groups.
fn assigned_users(spec: &JobSpec, objects: &BTreeMap<Key, SourceObject>) -> HashSet<String> {
    let wanted: HashSet<String> = spec.scope.groups.iter().map(|g| g.to_lowercase()).collect();
    let mut queue: VecDeque<&SourceObject> = objects
        .values()
        .filter(|o| o.kind == ObjectKind::Group)
        .filter(|g| {
            wanted.contains(&g.id.to_lowercase()) || wanted.contains(&g.display().to_lowercase())
        })
        .collect();
    let mut seen_groups = HashSet::new();
    let mut users = HashSet::new();
    while let Some(g) = queue.pop_front() {
        if !seen_groups.insert(g.id.clone()) {
            continue;
        }
        for m in &g.members {
            if let Some(sub) = objects.get(&(ObjectKind::Group, m.clone())) {
                if spec.scope.nested {
                    queue.push_back(sub);
                }
            } else {
                users.insert(m.clone());
            }
        }
    }
    users
}
