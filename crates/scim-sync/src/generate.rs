//! A synthetic directory for benchmarks and tests: `users` people and `groups` groups with
//! `members` members on average, as the CSV the file source reads. `variant` changes the
//! family name of one user in a hundred per step, for incremental-cycle measurements.

use crate::error::{SyncError, SyncResult};
use std::path::Path;

pub struct Directory {
    pub users: u64,
    pub groups: u64,
    pub members: u64,
    pub variant: u64,
}

impl Directory {
    pub fn write_csv(&self, path: &Path) -> SyncResult<()> {
        let io = |e: csv::Error| SyncError::Source(format!("{}: {e}", path.display()));
        let mut w = csv::Writer::from_path(path).map_err(io)?;
        w.write_record([
            "employee_id",
            "userName",
            "name.givenName",
            "name.familyName",
            "emails[type eq \"work\"].value",
            "active",
            "department",
            "groups",
        ])
        .map_err(io)?;
        let n = self.users.max(1);
        let memberships = self.groups * self.members;
        let per_user = memberships.div_ceil(n);
        for i in 0..self.users {
            let groups: Vec<String> = (0..per_user)
                .map(|t| i + t * n)
                .filter(|idx| *idx < memberships && self.groups > 0)
                .map(|idx| format!("Group {:05}", idx % self.groups))
                .collect();
            let family = if self.variant > 0 && i % 100 == 0 {
                format!("Family{i}-v{}", self.variant)
            } else {
                format!("Family{i}")
            };
            let user = format!("user{i:07}@example.com");
            w.write_record([
                format!("E{i:07}"),
                user.clone(),
                format!("Given{i}"),
                family,
                user,
                "true".into(),
                format!("Dept {}", i % 20),
                groups.join(";"),
            ])
            .map_err(io)?;
        }
        w.flush()
            .map_err(|e| SyncError::Source(format!("{}: {e}", path.display())))
    }
}
