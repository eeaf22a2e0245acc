//! A Microsoft Entra ID emulator: the identity platform's client-credentials token endpoint
//! and Microsoft Graph's delta queries for users and groups, on loopback, built from the
//! documented wire shapes (`../shared/reference/directory-apis.md` §2.2, which cites the
//! pages):
//!
//! | route | simulates | from |
//! |---|---|---|
//! | `POST /{tenant}/oauth2/v2.0/token` | `client_credentials` with a client secret and the `.default` scope; `invalid_tenant` (AADSTS90002), `unauthorized_client` (AADSTS700016), `invalid_client` (AADSTS7000215) with `error_codes` | learn.microsoft.com/entra/identity-platform/v2-oauth2-client-creds-grant-flow |
//! | `GET /v1.0/users/delta`, `/v1.0/groups/delta` | pages linked by `@odata.nextLink` to an `@odata.deltaLink` (opaque tokens encoding a change-log position); from a delta link, only the objects changed since; `@removed` with `changed` (soft delete) or `deleted`, in the first sync too; `members@delta` with removed members annotated, one large group's members split over several pages; `manager@delta` | microsoft-graph-docs `api-reference/v1.0/api/user-delta.md`, `group-delta.md`, `concepts/delta-query-overview.md` |
//! | every Graph route | `401` without a valid token; `429` with `Retry-After` and the `TooManyRequests` body; `410 Gone` with a `Location`; `syncStateNotFound` for an expired delta token; replays (the same change sent twice) | `concepts/throttling.md`; delta-query-overview "Synchronization reset" |
//!
//! The directory is changed between cycles through [`EntraFake::change`]; every change is
//! a new position in the change log.

// Early answers are whole responses, in test code.
#![allow(clippy::result_large_err)]

use axum::Router;
use axum::extract::{Form, Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

pub const TENANT_ID: &str = "8e3c4d2a-1b2c-4d5e-8f90-123456789abc";
pub const CLIENT_ID: &str = "0b1c2d3e-aaaa-bbbb-cccc-1234567890ab";
pub const CLIENT_SECRET: &str = "test~secret.for-the-emulator";
/// The certificate "uploaded to the app registration" (self-signed over the test kit's test
/// key, `google::TEST_KEY_PEM`; it guards nothing).
pub const TEST_CERT_PEM: &str = include_str!("../fixtures/entra/test-app.cert.pem");
pub use crate::google::TEST_KEY_PEM;

/// A member of a group: its id and whether it is a group.
#[derive(Debug, Clone, PartialEq)]
pub struct Member {
    pub id: String,
    pub group: bool,
}

/// The directory: users and groups as Graph's JSON, and the change log.
#[derive(Debug, Clone, Default)]
pub struct Directory {
    pub users: BTreeMap<String, Value>,
    /// Soft-deleted users (restorable).
    pub deleted_users: BTreeMap<String, Value>,
    pub groups: BTreeMap<String, Value>,
    pub members: BTreeMap<String, Vec<Member>>,
    /// Managers by user id.
    pub managers: BTreeMap<String, String>,
    log: Vec<Change>,
}

#[derive(Debug, Clone)]
enum Change {
    User(String),
    Group(String),
    Member {
        group: String,
        id: String,
        group_member: bool,
        added: bool,
    },
}

impl Directory {
    pub fn add_user(&mut self, id: &str, upn: &str, given: &str, surname: &str) -> &mut Value {
        self.users.insert(
            id.to_string(),
            json!({"id": id, "userPrincipalName": upn, "mail": upn, "mailNickname": upn.split('@').next(),
                   "displayName": format!("{given} {surname}"), "givenName": given, "surname": surname,
                   "accountEnabled": true}),
        );
        self.log.push(Change::User(id.to_string()));
        self.users.get_mut(id).expect("just added")
    }

    /// Changes a user (logged as a change).
    pub fn user_mut(&mut self, id: &str) -> &mut Value {
        self.log.push(Change::User(id.to_string()));
        self.users.get_mut(id).expect("a user of the directory")
    }

    pub fn set_manager(&mut self, id: &str, manager: &str) {
        self.managers.insert(id.to_string(), manager.to_string());
        self.log.push(Change::User(id.to_string()));
    }

    /// Soft delete: the user goes to the deleted items (restorable).
    pub fn soft_delete(&mut self, id: &str) {
        if let Some(u) = self.users.remove(id) {
            self.deleted_users.insert(id.to_string(), u);
            self.log.push(Change::User(id.to_string()));
        }
    }

    pub fn restore(&mut self, id: &str) {
        if let Some(u) = self.deleted_users.remove(id) {
            self.users.insert(id.to_string(), u);
            self.log.push(Change::User(id.to_string()));
        }
    }

    /// Permanent delete (from the directory or from the deleted items).
    pub fn hard_delete(&mut self, id: &str) {
        self.users.remove(id);
        self.deleted_users.remove(id);
        self.log.push(Change::User(id.to_string()));
    }

    pub fn add_group(&mut self, id: &str, name: &str) {
        self.groups.insert(
            id.to_string(),
            json!({"id": id, "displayName": name, "mailNickname": name.to_lowercase(), "securityEnabled": true}),
        );
        self.members.entry(id.to_string()).or_default();
        self.log.push(Change::Group(id.to_string()));
    }

    /// Changes a group (logged as a change).
    pub fn group_mut(&mut self, id: &str) -> &mut Value {
        self.log.push(Change::Group(id.to_string()));
        self.groups.get_mut(id).expect("a group of the directory")
    }

    pub fn delete_group(&mut self, id: &str) {
        self.groups.remove(id);
        self.members.remove(id);
        self.log.push(Change::Group(id.to_string()));
    }

    pub fn add_member(&mut self, group: &str, id: &str, is_group: bool) {
        self.members
            .entry(group.to_string())
            .or_default()
            .push(Member {
                id: id.to_string(),
                group: is_group,
            });
        self.log.push(Change::Member {
            group: group.to_string(),
            id: id.to_string(),
            group_member: is_group,
            added: true,
        });
    }

    pub fn remove_member(&mut self, group: &str, id: &str) {
        let mut was_group = false;
        if let Some(m) = self.members.get_mut(group) {
            was_group = m.iter().any(|x| x.id == id && x.group);
            m.retain(|x| x.id != id);
        }
        self.log.push(Change::Member {
            group: group.to_string(),
            id: id.to_string(),
            group_member: was_group,
            added: false,
        });
    }

    fn user_item(&self, id: &str) -> Value {
        match (self.users.get(id), self.deleted_users.get(id)) {
            (Some(u), _) => {
                let mut u = u.clone();
                u["@odata.type"] = json!("#microsoft.graph.user");
                if let Some(m) = self.managers.get(id) {
                    u["manager@delta"] = json!([{"@odata.type": "#microsoft.graph.user", "id": m}]);
                }
                u
            }
            (None, Some(_)) => json!({"id": id, "@removed": {"reason": "changed"}}),
            (None, None) => json!({"id": id, "@removed": {"reason": "deleted"}}),
        }
    }
}

fn member_ref(id: &str, group: bool, removed: bool) -> Value {
    let t = if group {
        "#microsoft.graph.group"
    } else {
        "#microsoft.graph.user"
    };
    let mut m = json!({"@odata.type": t, "id": id});
    if removed {
        m["@removed"] = json!({"reason": "deleted"});
    }
    m
}

/// Faults and shapes the emulator can be asked for.
#[derive(Debug, Clone)]
pub struct EntraFaults {
    /// Items a page holds.
    pub page_size: usize,
    /// Members of one group a page holds (a larger group spans pages).
    pub members_per_page: usize,
    /// Every n-th Graph request is answered `429` with `Retry-After: 1` (0: never).
    pub throttle_every: u64,
    /// The next delta-link request is answered `410 Gone` with a `Location`.
    pub gone_once: bool,
    /// Delta links issued before this position are expired (`syncStateNotFound`).
    pub expire_before: Option<usize>,
    /// Each page of changes repeats its first item at its end (a replay).
    pub replay: bool,
}

impl Default for EntraFaults {
    fn default() -> Self {
        Self {
            page_size: 3,
            members_per_page: 2,
            throttle_every: 0,
            gone_once: false,
            expire_before: None,
            replay: false,
        }
    }
}

#[derive(Debug, Clone, Default)]
pub struct EntraCounts {
    pub tokens: u64,
    pub requests: u64,
    pub throttled: u64,
    pub resyncs: u64,
}

struct Inner {
    dir: Directory,
    faults: EntraFaults,
    counts: EntraCounts,
    tokens: HashMap<String, ()>,
    base: String,
    /// The items of a read in progress, by stream and log positions (a read's pages come
    /// from one snapshot, and a large one is not rebuilt for every page).
    snapshots: HashMap<(String, Option<usize>, usize), Arc<Vec<Value>>>,
}

type Shared = Arc<Mutex<Inner>>;

pub struct EntraFake {
    pub url: String,
    inner: Shared,
    _served: crate::loopback::Served,
}

impl EntraFake {
    pub async fn start(dir: Directory) -> Self {
        let (listener, url) = crate::loopback::bind().await;
        let inner = Arc::new(Mutex::new(Inner {
            dir,
            faults: EntraFaults::default(),
            counts: EntraCounts::default(),
            tokens: HashMap::new(),
            base: url.clone(),
            snapshots: HashMap::new(),
        }));
        let app = Router::new()
            .route("/{tenant}/oauth2/v2.0/token", post(token))
            .route("/v1.0/users/delta", get(users_delta))
            .route("/v1.0/groups/delta", get(groups_delta))
            .with_state(inner.clone());
        let _served = crate::loopback::serve_on(listener, url.clone(), app);
        Self {
            url,
            inner,
            _served,
        }
    }

    pub fn change(&self, f: impl FnOnce(&mut Directory)) {
        f(&mut self.inner.lock().expect("lock").dir);
    }

    pub fn set_faults(&self, f: EntraFaults) {
        self.inner.lock().expect("lock").faults = f;
    }

    pub fn counts(&self) -> EntraCounts {
        self.inner.lock().expect("lock").counts.clone()
    }

    /// The change log's current position (delta links issued now point here).
    pub fn position(&self) -> usize {
        self.inner.lock().expect("lock").dir.log.len()
    }
}

fn oauth_error(status: StatusCode, error: &str, code: u64, text: &str) -> Response {
    (
        status,
        axum::Json(json!({"error": error,
            "error_description": format!("AADSTS{code}: {text} Trace ID: 5a1e Correlation ID: c0de Timestamp: 2026-12-07 00:00:00Z"),
            "error_codes": [code], "trace_id": "5a1e", "correlation_id": "c0de"})),
    )
        .into_response()
}

async fn token(
    State(s): State<Shared>,
    Path(tenant): Path<String>,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    let mut inner = s.lock().expect("lock");
    let f = |k: &str| form.get(k).map(String::as_str).unwrap_or_default();
    if tenant != TENANT_ID {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_tenant",
            90002,
            &format!("Tenant '{tenant}' not found."),
        );
    }
    if f("grant_type") != "client_credentials" {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            70003,
            "The app requested an unsupported grant type.",
        );
    }
    if f("client_id") != CLIENT_ID {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "unauthorized_client",
            700016,
            "Application was not found in the directory.",
        );
    }
    if f("scope") != "https://graph.microsoft.com/.default" {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_scope",
            1002012,
            "The provided value for scope is not valid.",
        );
    }
    if f("client_assertion_type") == "urn:ietf:params:oauth:client-assertion-type:jwt-bearer" {
        let aud = format!("{}/{tenant}/oauth2/v2.0/token", inner.base);
        if !assertion_ok(f("client_assertion"), &aud) {
            return oauth_error(
                StatusCode::UNAUTHORIZED,
                "invalid_client",
                700027,
                "Client assertion failed signature validation.",
            );
        }
    } else if f("client_secret") != CLIENT_SECRET {
        return oauth_error(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            7000215,
            "Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID.",
        );
    }
    inner.counts.tokens += 1;
    let token = format!(
        "eyJ0eXAiOiJKV1Qi.{}.{}",
        inner.counts.tokens,
        rand::random::<u64>()
    );
    inner.tokens.insert(token.clone(), ());
    axum::Json(
        json!({"token_type": "Bearer", "expires_in": 3599, "ext_expires_in": 3599,
                      "access_token": token}),
    )
    .into_response()
}

/// A certificate credential's client assertion, checked as Entra does: RS256 over the
/// uploaded certificate's key, `x5t` its SHA-1 thumbprint, `aud` the token endpoint, `iss`
/// and `sub` the application, not expired.
fn assertion_ok(jwt: &str, aud: &str) -> bool {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivatePkcs8KeyDer};
    let parts: Vec<&str> = jwt.split('.').collect();
    let [h, c, sig] = parts.as_slice() else {
        return false;
    };
    let Ok(cert) = CertificateDer::from_pem_slice(TEST_CERT_PEM.as_bytes()) else {
        return false;
    };
    let thumbprint = ring::digest::digest(&ring::digest::SHA1_FOR_LEGACY_USE_ONLY, &cert);
    let (Some(header), Some(claims), Some(sig)) =
        (decode(h), decode(c), URL_SAFE_NO_PAD.decode(sig).ok())
    else {
        return false;
    };
    let Ok(der) = PrivatePkcs8KeyDer::from_pem_slice(TEST_KEY_PEM.as_bytes()) else {
        return false;
    };
    let Ok(pair) = ring::signature::RsaKeyPair::from_pkcs8(der.secret_pkcs8_der()) else {
        return false;
    };
    use ring::signature::KeyPair;
    let key = ring::signature::UnparsedPublicKey::new(
        &ring::signature::RSA_PKCS1_2048_8192_SHA256,
        pair.public_key().as_ref(),
    );
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    header["alg"] == "RS256"
        && header["x5t"] == URL_SAFE_NO_PAD.encode(thumbprint.as_ref())
        && key.verify(format!("{h}.{c}").as_bytes(), &sig).is_ok()
        && claims["aud"] == aud
        && claims["iss"] == CLIENT_ID
        && claims["sub"] == CLIENT_ID
        && claims["exp"].as_i64().is_some_and(|e| e > now)
}

fn graph_error(status: StatusCode, code: &str, message: &str) -> Response {
    (
        status,
        axum::Json(json!({"error": {"code": code, "message": message,
            "innerError": {"date": "2026-12-07T00:00:00", "request-id": "r"}}})),
    )
        .into_response()
}

/// The bearer check, the count and the throttling knob.
fn admit(inner: &mut Inner, headers: &HeaderMap) -> Result<(), Response> {
    inner.counts.requests += 1;
    let token = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or_default();
    if !inner.tokens.contains_key(token) {
        return Err(graph_error(
            StatusCode::UNAUTHORIZED,
            "InvalidAuthenticationToken",
            "Access token is empty.",
        ));
    }
    let every = inner.faults.throttle_every;
    if every > 0 && inner.counts.requests.is_multiple_of(every) {
        inner.counts.throttled += 1;
        let mut r = graph_error(
            StatusCode::TOO_MANY_REQUESTS,
            "TooManyRequests",
            "Please retry again later.",
        );
        r.headers_mut()
            .insert("retry-after", "1".parse().expect("header"));
        return Err(r);
    }
    Ok(())
}

/// A paging token: which stream, from and to which log position, and the offset.
fn encode(v: &Value) -> String {
    URL_SAFE_NO_PAD.encode(v.to_string())
}

fn decode(t: &str) -> Option<Value> {
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(t).ok()?).ok()
}

/// The items of `stream` between two log positions (`from = None`: the whole directory).
fn items(
    dir: &Directory,
    stream: &str,
    from: Option<usize>,
    to: usize,
    per_page: usize,
) -> Vec<Value> {
    let mut out = Vec::new();
    match (stream, from) {
        ("users", None) => {
            let ids: Vec<&String> = dir.users.keys().chain(dir.deleted_users.keys()).collect();
            out.extend(ids.into_iter().map(|id| dir.user_item(id)));
        }
        ("users", Some(f)) => {
            let mut seen = Vec::new();
            for c in &dir.log[f.min(to)..to] {
                if let Change::User(id) = c
                    && !seen.contains(id)
                {
                    seen.push(id.clone());
                }
            }
            out.extend(seen.iter().map(|id| dir.user_item(id)));
        }
        (_, None) => {
            for (id, g) in &dir.groups {
                let members: Vec<Value> = dir
                    .members
                    .get(id)
                    .into_iter()
                    .flatten()
                    .map(|m| member_ref(&m.id, m.group, false))
                    .collect();
                group_pages(&mut out, g, members, per_page);
            }
        }
        (_, Some(f)) => {
            let mut order: Vec<String> = Vec::new();
            let mut deltas: BTreeMap<String, Vec<Value>> = BTreeMap::new();
            for c in &dir.log[f.min(to)..to] {
                let (gid, d) = match c {
                    Change::Group(id) => (id.clone(), None),
                    Change::Member {
                        group,
                        id,
                        group_member,
                        added,
                    } => (group.clone(), Some(member_ref(id, *group_member, !added))),
                    Change::User(_) => continue,
                };
                if !order.contains(&gid) {
                    order.push(gid.clone());
                }
                deltas.entry(gid).or_default().extend(d);
            }
            for gid in order {
                match dir.groups.get(&gid) {
                    Some(g) => group_pages(
                        &mut out,
                        g,
                        deltas.remove(&gid).unwrap_or_default(),
                        per_page,
                    ),
                    None => out.push(json!({"id": gid, "@removed": {"reason": "deleted"}})),
                }
            }
        }
    }
    out
}

/// A group with its members, split into one item per `per_page` members as Graph does.
fn group_pages(out: &mut Vec<Value>, g: &Value, members: Vec<Value>, per_page: usize) {
    if members.is_empty() {
        let mut g = g.clone();
        g["@odata.type"] = json!("#microsoft.graph.group");
        out.push(g);
        return;
    }
    for (i, chunk) in members.chunks(per_page.max(1)).enumerate() {
        let mut item = if i == 0 {
            g.clone()
        } else {
            json!({"id": g["id"]})
        };
        item["@odata.type"] = json!("#microsoft.graph.group");
        item["members@delta"] = json!(chunk);
        out.push(item);
    }
}

fn delta(s: Shared, stream: &str, headers: HeaderMap, q: HashMap<String, String>) -> Response {
    let mut inner = s.lock().expect("lock");
    if let Err(r) = admit(&mut inner, &headers) {
        return r;
    }
    let base = format!("{}/v1.0/{stream}/delta", inner.base);
    let now = inner.dir.log.len();
    // Where this page starts: a skip token, a delta token, or the beginning.
    let (from, to, offset) = if let Some(t) = q.get("$skiptoken") {
        match decode(t) {
            Some(v) => (
                v["from"].as_u64().map(|f| f as usize),
                v["to"].as_u64().unwrap_or(0) as usize,
                v["offset"].as_u64().unwrap_or(0) as usize,
            ),
            None => {
                return graph_error(StatusCode::BAD_REQUEST, "BadRequest", "Invalid skip token.");
            }
        }
    } else if let Some(t) = q.get("$deltatoken") {
        let Some(at) = decode(t).and_then(|v| v["at"].as_u64()) else {
            return graph_error(
                StatusCode::BAD_REQUEST,
                "BadRequest",
                "Invalid delta token.",
            );
        };
        if std::mem::take(&mut inner.faults.gone_once) {
            inner.counts.resyncs += 1;
            let mut r = graph_error(StatusCode::GONE, "resyncRequired", "Resync required.");
            r.headers_mut().insert(
                "location",
                format!("{base}?$deltatoken=").parse().expect("header"),
            );
            return r;
        }
        if inner
            .faults
            .expire_before
            .is_some_and(|e| (at as usize) < e)
        {
            inner.counts.resyncs += 1;
            return graph_error(
                StatusCode::BAD_REQUEST,
                "syncStateNotFound",
                "The sync state generation is not found. The delta token is expired and data must be synchronized again.",
            );
        }
        (Some(at as usize), now, 0)
    } else {
        (None, now, 0)
    };
    let key = (stream.to_string(), from, to);
    let all = match inner.snapshots.get(&key) {
        Some(a) => a.clone(),
        None => {
            let a = Arc::new(items(
                &inner.dir,
                stream,
                from,
                to,
                inner.faults.members_per_page,
            ));
            if inner.snapshots.len() > 8 {
                inner.snapshots.clear();
            }
            inner.snapshots.insert(key, a.clone());
            a
        }
    };
    let size = inner.faults.page_size.max(1);
    let end = (offset + size).min(all.len());
    let mut page: Vec<Value> = all
        .get(offset..end)
        .map(<[Value]>::to_vec)
        .unwrap_or_default();
    if inner.faults.replay
        && from.is_some()
        && let Some(first) = page.first().cloned()
    {
        page.push(first);
    }
    let mut body = json!({"@odata.context": format!("https://graph.microsoft.com/v1.0/$metadata#{stream}"), "value": page});
    if end < all.len() {
        let t = encode(&json!({"from": from, "to": to, "offset": end}));
        body["@odata.nextLink"] = json!(format!("{base}?$skiptoken={t}"));
    } else {
        body["@odata.deltaLink"] =
            json!(format!("{base}?$deltatoken={}", encode(&json!({"at": to}))));
    }
    axum::Json(body).into_response()
}

async fn users_delta(
    State(s): State<Shared>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    delta(s, "users", headers, q)
}

async fn groups_delta(
    State(s): State<Shared>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    delta(s, "groups", headers, q)
}
