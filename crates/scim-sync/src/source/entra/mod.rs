//! `kind = "entra"`: Microsoft Entra ID through Microsoft Graph's delta queries, as an app
//! registration with application permissions (client credentials). Entra can push SCIM into
//! a hub tenant itself, but only every ~40 minutes and with direct members only; delta
//! queries bring changes in seconds, with nested groups.
//!
//! The first cycle (and any resync) reads `/users/delta` and `/groups/delta` from the start
//! — a full read under the complete-read guard — and keeps their `@odata.deltaLink`s as the
//! watermark; each later cycle reads only what changed since, laid over the ledger's
//! snapshots (`SourceBatch::merge`), with members added and removed per group. A `410 Gone`
//! or an expired delta token starts a full resync, which deprovisions only what is really
//! gone. Replays (the same change twice) are merged.
//!
//! | module | |
//! |---|---|
//! | `auth` | the client-credentials token, its AADSTS errors explained |
//! | `delta` | one delta stream, page by page, and what Graph's refusals mean |
//! | `convert` | users, groups, members and removals as source objects |

mod auth;
mod convert;
mod delta;

pub use auth::explain_token_error;
pub use convert::guest_address;

use super::rest::{self, Rest, Stats};
use super::token::TokenCache;
use super::{BuildContext, MemberChange, Source, SourceBatch, watermark_of, watermark_value};
use crate::error::{SyncError, SyncResult};
use crate::model::{ObjectKind, SourceObject};
use crate::secret::SecretRef;
use async_trait::async_trait;
use convert::{Item, Removed};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::PathBuf;
use std::time::Duration;

const DEFAULT_AUTHORITY: &str = "https://login.microsoftonline.com";
const DEFAULT_GRAPH: &str = "https://graph.microsoft.com";
/// A delta page costs one resource unit; a large tenant has 8,000 per 10 s, shared with
/// every other app: 20 a second stays far under.
const DEFAULT_RATE: u32 = 20;

/// The user properties read (and tracked: a change to another one does not show).
const USER_SELECT: [&str; 22] = [
    "id",
    "userPrincipalName",
    "mail",
    "mailNickname",
    "displayName",
    "givenName",
    "surname",
    "jobTitle",
    "department",
    "companyName",
    "employeeId",
    "employeeType",
    "accountEnabled",
    "onPremisesImmutableId",
    "mobilePhone",
    "businessPhones",
    "preferredLanguage",
    "streetAddress",
    "city",
    "state",
    "postalCode",
    "country",
];
const GROUP_SELECT: &str = "id,displayName,description,mail,mailNickname,securityEnabled,members";

/// What a soft-deleted user (restorable for 30 days) is to the job.
#[derive(Debug, Clone, Copy, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum SoftDeleted {
    /// Deleted at the source: `[deprovision.deleted]` applies (Entra's own behaviour:
    /// disabled at once, deleted after 30 days with the default rule).
    #[default]
    Deleted,
    /// Suspended: `[deprovision.suspended]` applies.
    Suspended,
}

/// `[source]` of `kind = "entra"` (its Debug never prints an inline secret or key).
#[derive(Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct EntraSpec {
    /// The Directory (tenant) ID.
    pub tenant_id: String,
    /// The app registration's Application (client) ID.
    pub client_id: String,
    /// The client secret (inline: sealed at import), or from a file or a variable.
    pub client_secret: Option<String>,
    pub client_secret_env: Option<String>,
    pub client_secret_file: Option<PathBuf>,
    /// Or a certificate uploaded to the app registration (PEM) and its private key (PKCS#8
    /// PEM: inline, sealed at import, or from a file or a variable).
    pub certificate_file: Option<PathBuf>,
    pub certificate_key: Option<String>,
    pub certificate_key_env: Option<String>,
    pub certificate_key_file: Option<PathBuf>,
    pub authority_url: Option<String>,
    pub graph_url: Option<String>,
    /// User properties read besides the usual ones (for mappings).
    #[serde(default)]
    pub extra_attributes: Vec<String>,
    #[serde(default)]
    pub soft_deleted: SoftDeleted,
    pub rate_limit: Option<u32>,
    pub attempts: Option<u32>,
}

/// Where the last read got to: each stream's delta link.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Mark {
    users: String,
    groups: String,
}

/// A GUID, or a tenant's domain (`contoso.onmicrosoft.com`): letters, digits, `-` and `.`,
/// starting with a letter or digit, no empty label.
fn is_id(s: &str) -> bool {
    s.len() <= 64
        && s.starts_with(|c: char| c.is_ascii_alphanumeric())
        && !s.contains("..")
        && !s.ends_with('.')
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.')
}

impl std::fmt::Debug for EntraSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let redacted = |v: &Option<String>| v.as_ref().map(|_| "(inline, redacted)");
        f.debug_struct("EntraSpec")
            .field("tenant_id", &self.tenant_id)
            .field("client_id", &self.client_id)
            .field("client_secret", &redacted(&self.client_secret))
            .field("client_secret_env", &self.client_secret_env)
            .field("client_secret_file", &self.client_secret_file)
            .field("certificate_file", &self.certificate_file)
            .field("certificate_key", &redacted(&self.certificate_key))
            .field("graph_url", &self.graph_url)
            .finish_non_exhaustive()
    }
}

impl EntraSpec {
    pub fn check(&self) -> Result<(), String> {
        for (key, v) in [
            ("tenant_id", &self.tenant_id),
            ("client_id", &self.client_id),
        ] {
            if !is_id(v) {
                return Err(format!(
                    "source.{key} '{}' must be a GUID (or the tenant's domain for tenant_id)",
                    scim_proto::error::excerpt(v)
                ));
            }
        }
        for (key, u) in [
            ("authority_url", &self.authority_url),
            ("graph_url", &self.graph_url),
        ] {
            if let Some(u) = u
                && !(u.starts_with("https://") || u.starts_with("http://"))
            {
                return Err(format!(
                    "source.{key} '{}' must be an http(s) URL",
                    scim_proto::error::excerpt(u)
                ));
            }
        }
        let secret = self.client_secret.is_some()
            || self.client_secret_env.is_some()
            || self.client_secret_file.is_some();
        let key = self.certificate_key.is_some()
            || self.certificate_key_env.is_some()
            || self.certificate_key_file.is_some();
        if secret && (key || self.certificate_file.is_some()) {
            return Err("source: give a client secret or a certificate, not both".into());
        }
        if key && self.certificate_file.is_none() {
            return Err("source.certificate_key needs source.certificate_file (the certificate uploaded to the app registration)".into());
        }
        if let Some(a) = self
            .extra_attributes
            .iter()
            .find(|a| a.is_empty() || !a.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'))
        {
            return Err(format!(
                "source.extra_attributes: '{}' is not a Graph property name",
                scim_proto::error::excerpt(a)
            ));
        }
        Ok(())
    }

    /// The credential: the certificate's key when a certificate is named, else the secret.
    pub fn secret_ref(&self) -> SecretRef<'_> {
        if self.certificate_file.is_some() {
            return SecretRef {
                key: "source.certificate_key",
                inline: self.certificate_key.as_deref(),
                env: self.certificate_key_env.as_deref(),
                file: self.certificate_key_file.as_deref(),
            };
        }
        SecretRef {
            key: "source.client_secret",
            inline: self.client_secret.as_deref(),
            env: self.client_secret_env.as_deref(),
            file: self.client_secret_file.as_deref(),
        }
    }

    /// Takes the inline credential out (it is sealed apart).
    pub fn take_inline_secret(&mut self) -> Option<String> {
        if self.certificate_file.is_some() {
            self.certificate_key.take()
        } else {
            self.client_secret.take()
        }
    }

    pub fn describe(&self) -> String {
        format!("Microsoft Entra ID (tenant {})", self.tenant_id)
    }

    fn graph(&self) -> String {
        self.graph_url
            .as_deref()
            .unwrap_or(DEFAULT_GRAPH)
            .trim_end_matches('/')
            .to_string()
    }

    pub fn build(&self, ctx: &BuildContext) -> SyncResult<EntraSource> {
        let secret = self
            .secret_ref()
            .require(ctx.base_dir.as_deref(), ctx.sealed.clone())?;
        let credential = match &self.certificate_file {
            None => auth::Credential::Secret(secret),
            Some(path) => {
                let path = match &ctx.base_dir {
                    Some(b) if path.is_relative() => b.join(path),
                    _ => path.clone(),
                };
                let pem = std::fs::read(&path).map_err(|e| {
                    SyncError::Job(format!(
                        "cannot read source.certificate_file {}: {e}",
                        path.display()
                    ))
                })?;
                auth::Credential::certificate(&pem, &secret)?
            }
        };
        let authority = self
            .authority_url
            .as_deref()
            .unwrap_or(DEFAULT_AUTHORITY)
            .trim_end_matches('/');
        let token_url = format!("{authority}/{}/oauth2/v2.0/token", self.tenant_id);
        let graph = self.graph();
        for url in [&token_url, &graph] {
            rest::checked_url(&ctx.outbound, url)?;
        }
        let http = scim_net::builder(&ctx.outbound)
            .timeout(Duration::from_secs(120))
            .connect_timeout(Duration::from_secs(15))
            .build()
            .map_err(|e| SyncError::Source(format!("the HTTP client: {e}")))?;
        let cache = TokenCache::new(
            format!("entra\n{token_url}\n{}", self.client_id),
            &credential.material(),
        );
        Ok(EntraSource {
            spec: self.clone(),
            graph,
            auth: auth::ClientCredentials {
                token_url,
                client_id: self.client_id.clone(),
                credential,
                http: http.clone(),
                cache,
            },
            rest: Rest {
                http,
                pacer: rest::pacer(self.rate_limit.unwrap_or(DEFAULT_RATE)),
                attempts: self.attempts.unwrap_or(8).max(1),
                backoff: Duration::from_secs(1),
                stats: Stats::default(),
                api: "Microsoft Graph",
                classify: delta::classify,
            },
        })
    }
}

pub struct EntraSource {
    spec: EntraSpec,
    graph: String,
    auth: auth::ClientCredentials,
    rest: Rest,
}

/// One stream's items merged in order (replays and pages of one group folded together).
#[derive(Default)]
struct Merged {
    present: BTreeMap<String, SourceObject>,
    removed: BTreeMap<String, Removed>,
    members: HashMap<String, MemberChange>,
}

impl Merged {
    fn add(&mut self, item: Item) {
        match item {
            Item::Present(o) => {
                self.removed.remove(&o.id);
                match self.present.get_mut(&o.id) {
                    Some(old) => {
                        old.attributes.extend(o.attributes);
                        old.suspended = o.suspended;
                    }
                    None => {
                        self.present.insert(o.id.clone(), o);
                    }
                }
            }
            Item::Removed(id, why) => {
                self.present.remove(&id);
                self.members.remove(&id);
                self.removed.insert(id, why);
            }
        }
    }

    fn member_delta(&mut self, group: &str, added: Vec<String>, gone: Vec<String>) {
        let c = self.members.entry(group.to_string()).or_default();
        for id in gone {
            c.added.retain(|a| *a != id);
            if !c.removed.contains(&id) {
                c.removed.push(id);
            }
        }
        for id in added {
            c.removed.retain(|r| *r != id);
            if !c.added.contains(&id) {
                c.added.push(id);
            }
        }
    }
}

fn merge(items: &[Value], kind: ObjectKind) -> Merged {
    let mut m = Merged::default();
    for v in items {
        let item = match kind {
            ObjectKind::User => convert::user(v),
            ObjectKind::Group => convert::group(v),
        };
        let Some(item) = item else { continue };
        let id = match &item {
            Item::Present(o) => Some(o.id.clone()),
            Item::Removed(..) => None,
        };
        m.add(item);
        if let (ObjectKind::Group, Some(id)) = (kind, id)
            && v.get("members@delta").is_some()
        {
            let (added, gone) = convert::references(v, "members@delta");
            m.member_delta(&id, added, gone);
        }
    }
    m
}

impl EntraSource {
    fn first(&self, stream: &str) -> String {
        let select = match stream {
            "users" => {
                let mut s: Vec<&str> = USER_SELECT.to_vec();
                s.extend(self.spec.extra_attributes.iter().map(String::as_str));
                s.push("manager");
                s.join(",")
            }
            _ => GROUP_SELECT.to_string(),
        };
        format!("{}/v1.0/{stream}/delta?$select={select}", self.graph)
    }

    /// Both streams from `mark` (or from the start): `None` when Graph asks for a resync.
    async fn streams(
        &self,
        mark: Option<&Mark>,
    ) -> SyncResult<Result<(Vec<Value>, Vec<Value>, Mark), String>> {
        let start = |s: &str, link: Option<&String>| link.cloned().unwrap_or_else(|| self.first(s));
        let users = delta::read(
            &self.rest,
            &self.auth,
            &self.graph,
            start("users", mark.map(|m| &m.users)),
            "users",
        )
        .await?;
        let (users, users_link) = match users {
            delta::Outcome::Done { items, link } => (items, link),
            delta::Outcome::Resync(why) => return Ok(Err(why)),
        };
        let groups = delta::read(
            &self.rest,
            &self.auth,
            &self.graph,
            start("groups", mark.map(|m| &m.groups)),
            "groups",
        )
        .await?;
        let (groups, groups_link) = match groups {
            delta::Outcome::Done { items, link } => (items, link),
            delta::Outcome::Resync(why) => return Ok(Err(why)),
        };
        Ok(Ok((
            users,
            groups,
            Mark {
                users: users_link,
                groups: groups_link,
            },
        )))
    }

    /// A read from the start: everything Graph has, as a full read (soft-deleted users kept
    /// from their snapshots when they count as suspended).
    fn full_batch(&self, users: Merged, groups: Merged, mark: &Mark) -> SourceBatch {
        let soft: Vec<String> = users
            .removed
            .iter()
            .filter(|(_, r)| {
                **r == Removed::Soft && self.spec.soft_deleted == SoftDeleted::Suspended
            })
            .map(|(id, _)| id.clone())
            .collect();
        let mut user_ids: HashSet<String> = users.present.keys().cloned().collect();
        user_ids.extend(soft.iter().cloned());
        let group_ids: HashSet<String> = groups.present.keys().cloned().collect();
        let mut objects: Vec<SourceObject> = users.present.into_values().collect();
        let mut member_changes = groups.members;
        for (id, mut g) in groups.present {
            g.members = member_changes
                .remove(&id)
                .map(|c| c.added)
                .unwrap_or_default();
            objects.push(g);
        }
        SourceBatch {
            full: false,
            objects,
            present: [(ObjectKind::User, user_ids), (ObjectKind::Group, group_ids)].into(),
            suspended: soft,
            guarded: true,
            watermark: watermark_value(mark),
            ..SourceBatch::default()
        }
    }

    /// A read since the last one: changes laid over the snapshots.
    fn delta_batch(&self, users: Merged, groups: Merged, mark: &Mark) -> SourceBatch {
        let mut deleted = Vec::new();
        let mut suspended = Vec::new();
        for (id, why) in users.removed {
            match (why, self.spec.soft_deleted) {
                (Removed::Soft, SoftDeleted::Suspended) => suspended.push(id),
                _ => deleted.push((ObjectKind::User, id)),
            }
        }
        deleted.extend(groups.removed.into_keys().map(|id| (ObjectKind::Group, id)));
        let mut objects: Vec<SourceObject> = users.present.into_values().collect();
        objects.extend(groups.present.into_values());
        SourceBatch {
            full: false,
            merge: true,
            objects,
            deleted,
            suspended,
            member_changes: groups.members,
            watermark: watermark_value(mark),
            ..SourceBatch::default()
        }
    }
}

#[async_trait]
impl Source for EntraSource {
    async fn read(&self, watermark: Option<&Value>) -> SyncResult<SourceBatch> {
        let mark = watermark_of::<Mark>(watermark);
        let started = std::time::Instant::now();
        let (batch, resync) = match self.streams(mark.as_ref()).await? {
            Ok((users, groups, next)) => {
                let (u, g) = (
                    merge(&users, ObjectKind::User),
                    merge(&groups, ObjectKind::Group),
                );
                if mark.is_some() {
                    (self.delta_batch(u, g, &next), None)
                } else {
                    (self.full_batch(u, g, &next), None)
                }
            }
            Err(why) => match self.streams(None).await? {
                Ok((users, groups, next)) => {
                    let (u, g) = (
                        merge(&users, ObjectKind::User),
                        merge(&groups, ObjectKind::Group),
                    );
                    (self.full_batch(u, g, &next), Some(why))
                }
                Err(again) => return Err(SyncError::Source(format!("{again}, twice in a row"))),
            },
        };
        let (requests, throttled, retries) = self.rest.stats.get();
        tracing::info!(
            objects = batch.objects.len(),
            full = mark.is_none() || resync.is_some(),
            resync = resync.as_deref().unwrap_or(""),
            requests,
            throttled,
            retries,
            ms = started.elapsed().as_millis() as u64,
            "read {}",
            self.describe()
        );
        Ok(batch)
    }

    fn describe(&self) -> String {
        self.spec.describe()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_keys() {
        let parse = |t: &str| -> Result<EntraSpec, String> {
            let s: EntraSpec = toml::from_str(t).map_err(|e| e.to_string())?;
            s.check().map(|()| s)
        };
        let ok = parse(
            "tenant_id = \"8e3c4d2a-1b2c-4d5e-8f90-123456789abc\"\nclient_id = \"0b1c2d3e-aaaa-bbbb-cccc-1234567890ab\"\nclient_secret_env = \"S\"\n",
        )
        .expect("minimal");
        assert_eq!(ok.soft_deleted, SoftDeleted::Deleted);
        let inline =
            parse("tenant_id = \"t\"\nclient_id = \"c\"\nclient_secret = \"secret-material\"\n")
                .expect("inline");
        assert!(!format!("{inline:?}").contains("secret-material"));
        assert_eq!(
            ok.describe(),
            "Microsoft Entra ID (tenant 8e3c4d2a-1b2c-4d5e-8f90-123456789abc)"
        );
        let cases = [
            (
                "tenant_id = \"a/b\"\nclient_id = \"c\"\n",
                "source.tenant_id",
            ),
            (
                "tenant_id = \"..\"\nclient_id = \"c\"\n",
                "source.tenant_id",
            ),
            (
                "tenant_id = \".x\"\nclient_id = \"c\"\n",
                "source.tenant_id",
            ),
            (
                "tenant_id = \"t\"\nclient_id = \"c\"\ngraph_url = \"ftp://x\"\n",
                "http(s) URL",
            ),
            (
                "tenant_id = \"t\"\nclient_id = \"c\"\nextra_attributes = [\"a,b\"]\n",
                "not a Graph property",
            ),
            (
                "tenant_id = \"t\"\nclient_id = \"c\"\nsoft_deleted = \"gone\"\n",
                "unknown variant",
            ),
        ];
        for (t, expect) in cases {
            let e = parse(t).expect_err(t);
            assert!(e.contains(expect), "{t}: {e}");
        }
    }

    /// Replays, a group over several pages, a member added then removed in one read.
    #[test]
    fn items_are_merged_in_order() {
        let users = [
            json!({"id": "u1", "jobTitle": "A", "accountEnabled": true}),
            json!({"id": "u2", "accountEnabled": true}),
            json!({"id": "u1", "jobTitle": "B"}),
            json!({"id": "u2", "@removed": {"reason": "changed"}}),
        ];
        let m = merge(&users, ObjectKind::User);
        assert_eq!(m.present["u1"].attributes["jobTitle"], "B");
        assert_eq!(m.removed.get("u2"), Some(&Removed::Soft));
        let groups = [
            json!({"id": "g", "displayName": "G", "members@delta": [{"id": "u1"}, {"id": "u2"}]}),
            json!({"id": "g", "members@delta": [{"id": "u3"}, {"id": "u2", "@removed": {"reason": "deleted"}}]}),
        ];
        let m = merge(&groups, ObjectKind::Group);
        assert_eq!(m.present["g"].attributes["displayName"], "G");
        assert_eq!(m.members["g"].added, ["u1", "u3"]);
        assert_eq!(m.members["g"].removed, ["u2"]);
    }
}
