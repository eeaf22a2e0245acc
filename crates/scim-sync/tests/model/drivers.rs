//! The model's directory published to a real source: a CSV file (and a `group,member`
//! file), a scimd tenant (`acme`) that the job reads through its change feed or as a SCIM
//! server, slapd, or the Google Workspace and Entra ID emulators of the test kit.

use crate::directory::{Dir, GROUPS, Member, PEOPLE};
use scim_testkit::TestServer;
use scim_testkit::ldap::{ADMIN_DN, ADMIN_PASSWORD, SUFFIX, Slapd};
use scim_testkit::{entra, google};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    File,
    Tenant,
    Scim,
    /// slapd, polled (no syncprov).
    LdapPoll,
    /// slapd with syncprov: syncrepl, deletes from its session log.
    LdapSyncreplDeletes,
    /// slapd with syncprov and no session log: syncrepl's present phase.
    LdapSyncreplPresent,
    /// The Google Workspace emulator: a full read every cycle, under the complete-read guard.
    Google,
    /// The Entra ID emulator: Graph delta queries.
    Entra,
}

impl Kind {
    /// Whether a deleted person comes back as a new identity (a deleted SCIM user, scimd
    /// user or LDAP entry cannot come back; a file row can).
    pub fn new_identities(self) -> bool {
        self != Kind::File
    }

    /// The source attribute the scoping filter reads.
    pub fn dept_attribute(self) -> &'static str {
        match self {
            Kind::File => "dept",
            Kind::Tenant | Kind::Scim => {
                "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department"
            }
            Kind::Google => "organizations[primary eq true].department",
            Kind::Entra => "department",
            _ => "departmentNumber",
        }
    }

    /// Whether the source's full reads are under the complete-read guard (what it holds
    /// an operator approves, as the model's operator does after each cycle).
    pub fn guarded(self) -> bool {
        matches!(self, Kind::Google | Kind::Entra)
    }
}

pub struct Driver {
    kind: Kind,
    dir: PathBuf,
    base: String,
    token: String,
    http: reqwest::Client,
    /// Hub ids of the people's current identities and of the groups.
    users: BTreeMap<usize, String>,
    groups: BTreeMap<usize, String>,
    /// The directory of an LDAP kind (stopped when the driver is dropped).
    slapd: Option<Slapd>,
    google: Option<google::GoogleFake>,
    entra: Option<entra::EntraFake>,
}

const USER: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
const GROUP: &str = "urn:ietf:params:scim:schemas:core:2.0:Group";
const ENTERPRISE: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";

impl Driver {
    /// `None` for an LDAP kind where slapd is not installed.
    pub async fn new(kind: Kind, server: &TestServer, dir: &Path) -> Option<Self> {
        let slapd = match kind {
            Kind::LdapPoll => Some(Slapd::start()?),
            Kind::LdapSyncreplDeletes => Some(Slapd::start_syncrepl(true)?),
            Kind::LdapSyncreplPresent => Some(Slapd::start_syncrepl(false)?),
            _ => None,
        };
        let google = match kind {
            Kind::Google => {
                let g = google::GoogleFake::start(google::Directory::default()).await;
                std::fs::write(dir.join("sa.json"), g.key_file()).unwrap();
                Some(g)
            }
            _ => None,
        };
        let entra = match kind {
            Kind::Entra => {
                std::fs::write(dir.join("graph.secret"), entra::CLIENT_SECRET).unwrap();
                Some(entra::EntraFake::start(entra::Directory::default()).await)
            }
            _ => None,
        };
        Some(Self {
            slapd,
            google,
            entra,
            kind,
            dir: dir.to_path_buf(),
            base: server.base.clone(),
            token: server.token.clone(),
            http: reqwest::Client::new(),
            users: BTreeMap::new(),
            groups: BTreeMap::new(),
        })
    }

    /// The job's `[source]`.
    pub fn source_toml(&self) -> String {
        match self.kind {
            Kind::File => "[source]\nkind = \"csv\"\npath = \"people.csv\"\nid = \"id\"\ngroups_path = \"groups.csv\"\nstatus = \"active\"\n".into(),
            Kind::Tenant => "[source]\nkind = \"tenant\"\ntenant = \"acme\"\n".into(),
            Kind::Scim => format!(
                "[source]\nkind = \"scim\"\nurl = \"{}\"\ntoken = \"{}\"\n",
                self.base, self.token
            ),
            Kind::Google => format!(
                "[source]\nkind = \"google\"\ncredentials_file = \"sa.json\"\nsubject = \"{}\"\n\
                 api_url = \"{}\"\nattempts = 2\n",
                google::ADMIN,
                self.google.as_ref().map(|g| g.url.as_str()).unwrap_or_default()
            ),
            Kind::Entra => format!(
                "[source]\nkind = \"entra\"\ntenant_id = \"{}\"\nclient_id = \"{}\"\n\
                 client_secret_file = \"graph.secret\"\nauthority_url = \"{url}\"\ngraph_url = \"{url}\"\nattempts = 2\n",
                entra::TENANT_ID,
                entra::CLIENT_ID,
                url = self.entra.as_ref().map(|e| e.url.as_str()).unwrap_or_default()
            ),
            _ => format!(
                "[source]\nkind = \"ldap\"\nurl = \"{}\"\nbind_dn = \"{ADMIN_DN}\"\npassword = \"{ADMIN_PASSWORD}\"\n\
                 base_dn = \"{SUFFIX}\"\ndisabled = \"employeeType=disabled\"\npage_size = 3\n",
                self.slapd.as_ref().map(|s| s.url.as_str()).unwrap_or_default()
            ),
        }
    }

    /// Makes the source say what `now` says (it said `before`).
    pub async fn publish(&mut self, before: &Dir, now: &Dir) {
        match self.kind {
            Kind::File => self.write_files(now),
            Kind::Tenant | Kind::Scim => self.publish_hub(before, now).await,
            Kind::Google => self.publish_google(now),
            Kind::Entra => self.publish_entra(before, now),
            _ => self.publish_ldap(before, now),
        }
    }

    fn person_dn(d: &Dir, p: usize) -> String {
        format!("uid=p{p}g{},ou=People,{SUFFIX}", d.people[p].generation)
    }

    fn group_dn(d: &Dir, g: usize) -> String {
        format!("cn={},ou=Groups,{SUFFIX}", d.groups[g].name)
    }

    /// An LDAP entry's attributes for a person (`mail` is the userName the defaults map).
    fn person_attrs(d: &Dir, p: usize) -> String {
        let x = &d.people[p];
        let mut a = format!(
            "cn: {} {}\ngivenName: {}\nsn: {}\nmail: {}\ndepartmentNumber: {}\n",
            x.given,
            x.family,
            x.given,
            x.family,
            d.user_name(p),
            x.dept
        );
        if x.suspended {
            a.push_str("employeeType: disabled\n");
        }
        a
    }

    /// A group's members as DNs; groupOfNames needs one, so a DN of no entry (never a
    /// member the source resolves) is always there.
    fn group_members(d: &Dir, g: usize) -> String {
        let mut out = format!("member: cn=nobody,{SUFFIX}\n");
        for m in &d.groups[g].members {
            match *m {
                Member::P(p) => out.push_str(&format!("member: {}\n", Self::person_dn(d, p))),
                Member::G(sub) => out.push_str(&format!("member: {}\n", Self::group_dn(d, sub))),
            }
        }
        out
    }

    fn publish_ldap(&self, before: &Dir, now: &Dir) {
        let Some(ldap) = &self.slapd else { return };
        for p in 0..PEOPLE {
            let (b, n) = (&before.people[p], &now.people[p]);
            let same = b.present && n.present && b.generation == n.generation;
            if b.present && !same {
                ldap.delete(&Self::person_dn(before, p));
            }
            if n.present && !same {
                ldap.add(&format!(
                    "dn: {}\nobjectClass: inetOrgPerson\nuid: p{p}g{}\n{}\n",
                    Self::person_dn(now, p),
                    n.generation,
                    Self::person_attrs(now, p)
                ));
            } else if same && b != n {
                let x = &n;
                let mut ldif = format!(
                    "dn: {}\nchangetype: modify\nreplace: givenName\ngivenName: {}\n-\nreplace: sn\nsn: {}\n-\n\
                     replace: cn\ncn: {} {}\n-\nreplace: departmentNumber\ndepartmentNumber: {}\n-\n",
                    Self::person_dn(now, p),
                    x.given,
                    x.family,
                    x.given,
                    x.family,
                    x.dept
                );
                ldif.push_str(if x.suspended {
                    "replace: employeeType\nemployeeType: disabled\n"
                } else {
                    "replace: employeeType\n"
                });
                ldap.modify(&ldif);
            }
        }
        for g in 0..GROUPS {
            let (b, n) = (&before.groups[g], &now.groups[g]);
            if b.present && !n.present {
                ldap.delete(&Self::group_dn(before, g));
            } else if b.present && n.present && b.name != n.name {
                ldap.modify(&format!(
                    "dn: {}\nchangetype: modrdn\nnewrdn: cn={}\ndeleteoldrdn: 1\n",
                    Self::group_dn(before, g),
                    n.name
                ));
            }
        }
        for g in 0..GROUPS {
            let (b, n) = (&before.groups[g], &now.groups[g]);
            if n.present && !b.present {
                ldap.add(&format!(
                    "dn: {}\nobjectClass: groupOfNames\ncn: {}\n{}\n",
                    Self::group_dn(now, g),
                    n.name,
                    Self::group_members(now, g)
                ));
            } else if n.present
                && (b != n || before.people != now.people || before.groups != now.groups)
            {
                ldap.modify(&format!(
                    "dn: {}\nchangetype: modify\nreplace: member\n{}\n",
                    Self::group_dn(now, g),
                    Self::group_members(now, g)
                ));
            }
        }
    }

    fn write_files(&self, d: &Dir) {
        let mut people = String::from("id,userName,name.givenName,name.familyName,active,dept\n");
        for p in (0..PEOPLE).filter(|p| d.people[*p].present) {
            let x = &d.people[p];
            people.push_str(&format!(
                "p{p},{},{},{},{},{}\n",
                d.user_name(p),
                x.given,
                x.family,
                !x.suspended,
                x.dept
            ));
        }
        std::fs::write(self.dir.join("people.csv"), people).unwrap();
        let mut groups = String::from("group,member\n");
        for g in (0..GROUPS).filter(|g| d.groups[*g].present) {
            let name = &d.groups[g].name;
            groups.push_str(&format!("{name},\n"));
            for m in &d.groups[g].members {
                match *m {
                    Member::P(p) => groups.push_str(&format!("{name},p{p}\n")),
                    Member::G(sub) => {
                        groups.push_str(&format!("{name},{}\n", d.groups[sub].name));
                    }
                }
            }
        }
        std::fs::write(self.dir.join("groups.csv"), groups).unwrap();
    }

    async fn hub(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        let mut r = self
            .http
            .request(method.parse().unwrap(), format!("{}{path}", self.base))
            .bearer_auth(&self.token);
        if let Some(b) = body {
            r = r
                .header("content-type", "application/scim+json")
                .body(b.to_string());
        }
        let resp = r.send().await.unwrap();
        let status = resp.status();
        let v: Value = resp.json().await.unwrap_or(Value::Null);
        assert!(status.is_success(), "hub {method} {path}: {status} {v}");
        v
    }

    fn user_body(d: &Dir, p: usize) -> Value {
        let x = &d.people[p];
        json!({"schemas": [USER, ENTERPRISE], "userName": d.user_name(p),
               "name": {"givenName": x.given, "familyName": x.family},
               "active": !x.suspended, ENTERPRISE: {"department": x.dept}})
    }

    async fn publish_hub(&mut self, before: &Dir, now: &Dir) {
        // People: gone first (a re-created person is a new identity), then new and changed.
        for p in 0..PEOPLE {
            let (b, n) = (&before.people[p], &now.people[p]);
            let same_identity = b.present && n.present && b.generation == n.generation;
            if b.present
                && !same_identity
                && let Some(id) = self.users.remove(&p)
            {
                self.hub("DELETE", &format!("/Users/{id}"), None).await;
            }
            if n.present && !same_identity {
                let v = self
                    .hub("POST", "/Users", Some(Self::user_body(now, p)))
                    .await;
                self.users.insert(p, v["id"].as_str().unwrap().to_string());
            } else if same_identity && b != n {
                let id = self.users[&p].clone();
                self.hub(
                    "PUT",
                    &format!("/Users/{id}"),
                    Some(Self::user_body(now, p)),
                )
                .await;
            }
        }
        // Groups: deleted, created (empty), then every present group's name and members.
        for g in 0..GROUPS {
            if before.groups[g].present
                && !now.groups[g].present
                && let Some(id) = self.groups.remove(&g)
            {
                self.hub("DELETE", &format!("/Groups/{id}"), None).await;
            }
        }
        for g in 0..GROUPS {
            if now.groups[g].present && !self.groups.contains_key(&g) {
                let v = self
                    .hub(
                        "POST",
                        "/Groups",
                        Some(json!({"schemas": [GROUP], "displayName": now.groups[g].name})),
                    )
                    .await;
                self.groups.insert(g, v["id"].as_str().unwrap().to_string());
            }
        }
        for g in 0..GROUPS {
            let Some(id) = self.groups.get(&g).cloned() else {
                continue;
            };
            if before.groups[g] == now.groups[g] && before.people == now.people {
                continue;
            }
            let members: Vec<Value> = now.groups[g]
                .members
                .iter()
                .filter_map(|m| match *m {
                    Member::P(p) => self.users.get(&p),
                    Member::G(sub) => self.groups.get(&sub),
                })
                .map(|id| json!({"value": id}))
                .collect();
            self.hub(
                "PUT",
                &format!("/Groups/{id}"),
                Some(json!({"schemas": [GROUP], "displayName": now.groups[g].name, "members": members})),
            )
            .await;
        }
    }

    /// A person's current identity's id at a directory source.
    fn directory_id(d: &Dir, p: usize) -> String {
        format!("p{p}g{}", d.people[p].generation)
    }

    /// Google's directory as `now` says, whole (Google is read whole every cycle).
    fn publish_google(&self, now: &Dir) {
        let Some(g) = &self.google else { return };
        g.change(|d| {
            *d = google::Directory::default();
            for p in (0..PEOPLE).filter(|p| now.people[*p].present) {
                let x = &now.people[p];
                let u = d.add_user(
                    &Self::directory_id(now, p),
                    &now.user_name(p),
                    x.given,
                    x.family,
                );
                u["suspended"] = json!(x.suspended);
                u["organizations"] = json!([{"department": x.dept, "primary": true}]);
            }
            for (i, grp) in now.groups.iter().enumerate().filter(|(_, g)| g.present) {
                let id = format!("g{i}");
                d.add_group(&id, &format!("g{i}@model.test"), &grp.name);
                for m in &grp.members {
                    match *m {
                        Member::P(p) => d.add_member(&id, &Self::directory_id(now, p), "USER"),
                        Member::G(sub) => d.add_member(&id, &format!("g{sub}"), "GROUP"),
                    }
                }
            }
        });
    }

    /// Entra's directory changed from `before` to `now`, change by change (Graph reports
    /// the changes since the last delta link); a deleted person is soft-deleted.
    fn publish_entra(&self, before: &Dir, now: &Dir) {
        let Some(e) = &self.entra else { return };
        e.change(|d| {
            for p in 0..PEOPLE {
                let (b, n) = (&before.people[p], &now.people[p]);
                let same = b.present && n.present && b.generation == n.generation;
                if b.present && !same {
                    d.soft_delete(&Self::directory_id(before, p));
                }
                if n.present && (!same || b != n) {
                    let id = Self::directory_id(now, p);
                    if !same {
                        d.add_user(&id, &now.user_name(p), n.given, n.family);
                    }
                    let u = d.user_mut(&id);
                    u["givenName"] = json!(n.given);
                    u["surname"] = json!(n.family);
                    u["department"] = json!(n.dept);
                    u["accountEnabled"] = json!(!n.suspended);
                }
            }
            for g in 0..GROUPS {
                let id = format!("g{g}");
                let (b, n) = (&before.groups[g], &now.groups[g]);
                if b.present && !n.present {
                    d.delete_group(&id);
                }
                if n.present && !b.present {
                    d.add_group(&id, &n.name);
                } else if n.present && b.name != n.name {
                    d.group_mut(&id)["displayName"] = json!(n.name);
                }
                if !n.present {
                    continue;
                }
                let want: Vec<(String, bool)> = n
                    .members
                    .iter()
                    .map(|m| match *m {
                        Member::P(p) => (Self::directory_id(now, p), false),
                        Member::G(sub) => (format!("g{sub}"), true),
                    })
                    .collect();
                let have: Vec<String> = d
                    .members
                    .get(&id)
                    .into_iter()
                    .flatten()
                    .map(|m| m.id.clone())
                    .collect();
                for old in have.iter().filter(|h| !want.iter().any(|(w, _)| w == *h)) {
                    d.remove_member(&id, old);
                }
                for (new, is_group) in want.iter().filter(|(w, _)| !have.contains(w)) {
                    d.add_member(&id, new, *is_group);
                }
            }
        });
    }
}
