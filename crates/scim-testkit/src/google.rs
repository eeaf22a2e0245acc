//! A Google Workspace emulator: the OAuth token endpoint for service accounts and the Admin
//! SDK Directory API's read calls, on loopback, built from the vendor's documented wire shapes
//! (`../shared/reference/directory-apis.md` §2.1, which cites the pages):
//!
//! | route | simulates | from |
//! |---|---|---|
//! | `POST /token` | the `jwt-bearer` grant: RS256 signature checked against the key's public half, `iss`, `aud` = the key file's `token_uri`, `exp` ≤ 1 h after `iat`, `sub` an administrator, every scope granted; `invalid_grant` / `unauthorized_client` / `invalid_client` as documented | developers.google.com/identity/protocols/oauth2/service-account; RFC 7523 |
//! | `GET /admin/directory/v1/users` | `customer` or `domain` (one required; `404 Domain not found`), `maxResults` 1–500 (`400 Invalid Input` above), opaque `pageToken`, `projection` (custom schemas only under `full`/`custom`), `nextPageToken` absent on the last page, absent booleans | …/admin-sdk/directory/reference/rest/v1/users/list |
//! | `GET /admin/directory/v1/groups` | the same, `maxResults` ≤ 200, `directMembersCount` as a string | …/v1/groups/list |
//! | `GET /admin/directory/v1/groups/{key}/members` | by id or e-mail, ≤ 200 a page, `USER`/`GROUP`/`CUSTOMER`/`EXTERNAL` members, status absent for external ones | …/v1/members/list |
//! | every API route | `401` with Google's error envelope for a missing or expired token; throttling as `403 userRateLimitExceeded` or `429 rateLimitExceeded` in the `{"error": {"code", "message", "errors": [{"domain", "reason"}], "status"}}` envelope, no `Retry-After` (Google documents none) | …/admin-sdk/directory/v1/limits |
//!
//! Faults are knobs ([`GoogleFaults`]): throttling every n-th request, a group whose member
//! list always fails, a users list that stops early without saying so, short token lives.
//! The directory is changed between cycles through [`GoogleFake::change`].

// Early answers are whole responses, in test code.
#![allow(clippy::result_large_err)]

use axum::Router;
use axum::extract::{Form, Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use serde_json::{Value, json};
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

/// An answer that ends a request early.
type Refusal = Response;

/// The test service account's private key (generated for these tests; it guards nothing).
pub const TEST_KEY_PEM: &str = include_str!("../fixtures/google/test-service-account.key.pem");
pub const CLIENT_EMAIL: &str = "scimd-sync@scimd-tests.iam.gserviceaccount.com";
pub const ADMIN: &str = "admin@example.com";
pub const DOMAIN: &str = "example.com";
pub const CUSTOMER_ID: &str = "C03az79cb";

/// The directory the emulator serves, as Google's JSON.
#[derive(Debug, Clone, Default)]
pub struct Directory {
    pub users: Vec<Value>,
    pub groups: Vec<Value>,
    /// Members by group id.
    pub members: BTreeMap<String, Vec<Value>>,
}

impl Directory {
    /// A user as `users.list` sends it (`suspended` and `archived` sent, as Google does).
    pub fn add_user(&mut self, id: &str, email: &str, given: &str, family: &str) -> &mut Value {
        self.users.push(json!({
            "kind": "admin#directory#user",
            "id": id,
            "etag": format!("\"etag-{id}\""),
            "primaryEmail": email,
            "name": {"givenName": given, "familyName": family, "fullName": format!("{given} {family}")},
            "isAdmin": false,
            "suspended": false,
            "archived": false,
            "orgUnitPath": "/",
            "customerId": CUSTOMER_ID,
            "emails": [{"address": email, "primary": true}],
        }));
        self.users.last_mut().expect("just pushed")
    }

    pub fn user_mut(&mut self, id: &str) -> &mut Value {
        self.users
            .iter_mut()
            .find(|u| u["id"] == id)
            .expect("a user of the directory")
    }

    pub fn remove_user(&mut self, id: &str) {
        self.users.retain(|u| u["id"] != id);
        for m in self.members.values_mut() {
            m.retain(|m| m["id"] != id);
        }
    }

    pub fn add_group(&mut self, id: &str, email: &str, name: &str) {
        self.groups.push(json!({
            "kind": "admin#directory#group",
            "id": id,
            "etag": format!("\"etag-{id}\""),
            "email": email,
            "name": name,
            "description": "",
            "adminCreated": true,
        }));
        self.members.entry(id.to_string()).or_default();
    }

    /// A member of `kind` (`USER`, `GROUP`, `CUSTOMER`, `EXTERNAL`).
    pub fn add_member(&mut self, group: &str, id: &str, kind: &str) {
        let mut m = json!({"kind": "admin#directory#member", "etag": "\"m\"", "id": id,
                           "role": "MEMBER", "type": kind});
        if kind != "EXTERNAL" {
            m["status"] = json!("ACTIVE");
        }
        if kind == "EXTERNAL" {
            m["email"] = json!(format!("{id}@elsewhere.example"));
        }
        self.members.entry(group.to_string()).or_default().push(m);
    }

    pub fn remove_member(&mut self, group: &str, id: &str) {
        if let Some(m) = self.members.get_mut(group) {
            m.retain(|m| m["id"] != id);
        }
    }
}

/// Faults the emulator injects.
#[derive(Debug, Clone, Default)]
pub struct GoogleFaults {
    /// Every n-th API request is refused `403 userRateLimitExceeded` (0: never).
    pub throttle_every: u64,
    /// Every n-th API request is refused `429 rateLimitExceeded` (0: never).
    pub rate_limit_every: u64,
    /// This group's member list always fails with `500 backendError`.
    pub failing_group: Option<String>,
    /// `users.list` ends after this many users without saying so (a truncated read).
    pub users_cut_at: Option<usize>,
    /// Access tokens' life in seconds (0: Google's 3,599).
    pub token_life: i64,
    /// The quota: API requests a minute (a sliding window); past it, `403
    /// userRateLimitExceeded` (0: none; Google's default is 2,400).
    pub per_minute: usize,
}

/// What the emulator saw.
#[derive(Debug, Clone, Default)]
pub struct GoogleCounts {
    pub tokens: u64,
    pub requests: u64,
    pub throttled: u64,
    pub refused_tokens: u64,
    pub by_route: BTreeMap<String, u64>,
}

struct Inner {
    dir: Directory,
    faults: GoogleFaults,
    counts: GoogleCounts,
    /// Issued tokens and when they expire (unix seconds).
    tokens: HashMap<String, i64>,
    public_key: Vec<u8>,
    token_uri: String,
    /// When the last requests came (for the quota).
    recent: std::collections::VecDeque<std::time::Instant>,
}

type Shared = Arc<Mutex<Inner>>;

pub struct GoogleFake {
    pub url: String,
    inner: Shared,
    _served: crate::loopback::Served,
}

fn now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

impl GoogleFake {
    pub async fn start(dir: Directory) -> Self {
        use rustls::pki_types::PrivatePkcs8KeyDer;
        use rustls::pki_types::pem::PemObject;
        let der = PrivatePkcs8KeyDer::from_pem_slice(TEST_KEY_PEM.as_bytes()).expect("test key");
        let pair = ring::signature::RsaKeyPair::from_pkcs8(der.secret_pkcs8_der()).expect("rsa");
        use ring::signature::KeyPair;
        let public_key = pair.public_key().as_ref().to_vec();
        let (listener, url) = crate::loopback::bind().await;
        let inner = Arc::new(Mutex::new(Inner {
            dir,
            faults: GoogleFaults::default(),
            counts: GoogleCounts::default(),
            tokens: HashMap::new(),
            public_key,
            token_uri: format!("{url}/token"),
            recent: std::collections::VecDeque::new(),
        }));
        let app = Router::new()
            .route("/token", post(token))
            .route("/admin/directory/v1/users", get(users))
            .route("/admin/directory/v1/groups", get(groups))
            .route("/admin/directory/v1/groups/{key}/members", get(members))
            .with_state(inner.clone());
        let _served = crate::loopback::serve_on(listener, url.clone(), app);
        Self {
            url,
            inner,
            _served,
        }
    }

    /// A service-account key file whose `token_uri` points here (how Fleet points its
    /// integration at its fake).
    pub fn key_file(&self) -> String {
        json!({
            "type": "service_account",
            "project_id": "scimd-tests",
            "private_key_id": "0123456789abcdef",
            "private_key": TEST_KEY_PEM,
            "client_email": CLIENT_EMAIL,
            "client_id": "100000000000000000001",
            "token_uri": format!("{}/token", self.url),
        })
        .to_string()
    }

    pub fn change(&self, f: impl FnOnce(&mut Directory)) {
        f(&mut self.inner.lock().expect("lock").dir);
    }

    pub fn set_faults(&self, faults: GoogleFaults) {
        self.inner.lock().expect("lock").faults = faults;
    }

    pub fn counts(&self) -> GoogleCounts {
        self.inner.lock().expect("lock").counts.clone()
    }

    /// Forgets every issued token (as if they had all expired).
    pub fn expire_tokens(&self) {
        self.inner.lock().expect("lock").tokens.clear();
    }
}

fn oauth_error(status: StatusCode, error: &str, description: &str) -> Response {
    (
        status,
        axum::Json(json!({"error": error, "error_description": description})),
    )
        .into_response()
}

/// Google's API error envelope.
fn api_error(status: StatusCode, reason: &str, message: &str) -> Response {
    let s = match status.as_u16() {
        400 => "INVALID_ARGUMENT",
        401 => "UNAUTHENTICATED",
        403 => "PERMISSION_DENIED",
        404 => "NOT_FOUND",
        429 => "RESOURCE_EXHAUSTED",
        _ => "INTERNAL",
    };
    let domain = if reason.contains("RateLimit") || reason == "rateLimitExceeded" {
        "usageLimits"
    } else {
        "global"
    };
    (
        status,
        axum::Json(
            json!({"error": {"code": status.as_u16(), "message": message,
            "errors": [{"message": message, "domain": domain, "reason": reason}], "status": s}}),
        ),
    )
        .into_response()
}

/// Checks a `jwt-bearer` assertion as Google's token endpoint does.
fn check_assertion(inner: &Inner, assertion: &str) -> Result<(), Refusal> {
    let bad = |d: &str| oauth_error(StatusCode::BAD_REQUEST, "invalid_grant", d);
    let parts: Vec<&str> = assertion.split('.').collect();
    let [h, c, s] = parts.as_slice() else {
        return Err(bad(
            "Invalid JWT: Token must be a short-lived token and in a reasonable timeframe",
        ));
    };
    let decode = |p: &str| URL_SAFE_NO_PAD.decode(p).ok();
    let header: Value = decode(h)
        .and_then(|b| serde_json::from_slice(&b).ok())
        .ok_or_else(|| bad("Invalid JWT header"))?;
    if header["alg"] != "RS256" {
        return Err(bad("Invalid JWT: alg must be RS256"));
    }
    let sig = decode(s).ok_or_else(|| bad("Invalid JWT Signature."))?;
    let key = ring::signature::UnparsedPublicKey::new(
        &ring::signature::RSA_PKCS1_2048_8192_SHA256,
        &inner.public_key,
    );
    if key.verify(format!("{h}.{c}").as_bytes(), &sig).is_err() {
        return Err(bad("Invalid JWT Signature."));
    }
    let claims: Value = decode(c)
        .and_then(|b| serde_json::from_slice(&b).ok())
        .ok_or_else(|| bad("Invalid JWT claims"))?;
    if claims["iss"] != CLIENT_EMAIL {
        return Err(oauth_error(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            "The OAuth client was not found.",
        ));
    }
    if claims["aud"] != inner.token_uri.as_str() {
        return Err(bad("Invalid JWT: audience"));
    }
    let (iat, exp) = (claims["iat"].as_i64(), claims["exp"].as_i64());
    let t = now();
    match (iat, exp) {
        (Some(iat), Some(exp)) if exp > t && exp - iat <= 3600 && iat <= t + 60 => {}
        _ => {
            return Err(bad(
                "Invalid JWT: Token must be a short-lived token (60 minutes) and in a reasonable timeframe. Check your iat and exp values in the JWT claim.",
            ));
        }
    }
    if claims["sub"] != ADMIN {
        return Err(bad("Invalid email or User ID"));
    }
    let granted = [
        "https://www.googleapis.com/auth/admin.directory.user.readonly",
        "https://www.googleapis.com/auth/admin.directory.group.readonly",
        "https://www.googleapis.com/auth/admin.directory.group.member.readonly",
    ];
    let scopes = claims["scope"].as_str().unwrap_or_default();
    if scopes.is_empty() || scopes.split(' ').any(|s| !granted.contains(&s)) {
        return Err(oauth_error(
            StatusCode::UNAUTHORIZED,
            "unauthorized_client",
            "Client is unauthorized to retrieve access tokens using this method, or client not authorized for any of the scopes requested.",
        ));
    }
    Ok(())
}

async fn token(State(s): State<Shared>, Form(form): Form<HashMap<String, String>>) -> Response {
    let mut inner = s.lock().expect("lock");
    if form.get("grant_type").map(String::as_str)
        != Some("urn:ietf:params:oauth:grant-type:jwt-bearer")
    {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            "Invalid grant_type",
        );
    }
    let assertion = form.get("assertion").cloned().unwrap_or_default();
    if let Err(r) = check_assertion(&inner, &assertion) {
        inner.counts.refused_tokens += 1;
        return r;
    }
    inner.counts.tokens += 1;
    let life = if inner.faults.token_life > 0 {
        inner.faults.token_life
    } else {
        3599
    };
    let token = format!("ya29.c.{}", uuid_like(inner.counts.tokens));
    inner.tokens.insert(token.clone(), now() + life);
    axum::Json(json!({"access_token": token, "expires_in": life, "token_type": "Bearer"}))
        .into_response()
}

fn uuid_like(n: u64) -> String {
    let r: u64 = rand::random();
    format!("{n:x}{r:016x}")
}

/// The bearer check, the request count and the throttling knobs, for every API route.
fn admit(inner: &mut Inner, headers: &HeaderMap, route: &str) -> Result<(), Refusal> {
    inner.counts.requests += 1;
    *inner.counts.by_route.entry(route.to_string()).or_default() += 1;
    let token = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or_default();
    if inner.tokens.get(token).is_none_or(|exp| *exp <= now()) {
        return Err(api_error(
            StatusCode::UNAUTHORIZED,
            "authError",
            "Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie or other valid authentication credential.",
        ));
    }
    let quota = inner.faults.per_minute;
    if quota > 0 {
        let now = std::time::Instant::now();
        while inner
            .recent
            .front()
            .is_some_and(|t| now.duration_since(*t).as_secs() >= 60)
        {
            inner.recent.pop_front();
        }
        if inner.recent.len() >= quota {
            inner.counts.throttled += 1;
            return Err(api_error(
                StatusCode::FORBIDDEN,
                "userRateLimitExceeded",
                "Quota exceeded for quota metric 'Queries' and limit 'Queries per minute per user'",
            ));
        }
        inner.recent.push_back(now);
    }
    let n = inner.counts.requests;
    let f = &inner.faults;
    if f.throttle_every > 0 && n.is_multiple_of(f.throttle_every) {
        inner.counts.throttled += 1;
        return Err(api_error(
            StatusCode::FORBIDDEN,
            "userRateLimitExceeded",
            "Quota exceeded for quota metric 'Queries' and limit 'Queries per minute per user'",
        ));
    }
    if f.rate_limit_every > 0 && n.is_multiple_of(f.rate_limit_every) {
        inner.counts.throttled += 1;
        return Err(api_error(
            StatusCode::TOO_MANY_REQUESTS,
            "rateLimitExceeded",
            "Rate Limit Exceeded",
        ));
    }
    Ok(())
}

/// `customer=my_customer|<id>` or `domain=example.com`, as Google checks them.
fn check_scope(q: &HashMap<String, String>) -> Result<(), Refusal> {
    match (q.get("customer"), q.get("domain")) {
        (Some(c), _) if c == "my_customer" || c == CUSTOMER_ID => Ok(()),
        (None, Some(d)) if d == DOMAIN => Ok(()),
        (None, Some(_)) => Err(api_error(
            StatusCode::NOT_FOUND,
            "notFound",
            "Domain not found",
        )),
        (Some(_), _) => Err(api_error(
            StatusCode::BAD_REQUEST,
            "badRequest",
            "Bad Request",
        )),
        (None, None) => Err(api_error(
            StatusCode::BAD_REQUEST,
            "badRequest",
            "Bad Request",
        )),
    }
}

/// One page of `items`: `maxResults` checked against `max`, the page token an opaque
/// encoding of the offset and the list it belongs to.
fn page(
    q: &HashMap<String, String>,
    items: &[Value],
    (max, list, key, kind): (usize, &str, &str, &str),
    shape: impl Fn(&Value) -> Value,
) -> Response {
    let size = match q.get("maxResults").map(|m| m.parse::<usize>()) {
        None => 100.min(max),
        Some(Ok(n)) if (1..=max).contains(&n) => n,
        _ => {
            return api_error(
                StatusCode::BAD_REQUEST,
                "invalid",
                "Invalid Input: maxResults",
            );
        }
    };
    let start = match q.get("pageToken") {
        None => 0,
        Some(t) => match STANDARD
            .decode(t)
            .ok()
            .and_then(|b| String::from_utf8(b).ok())
            .and_then(|s| {
                s.strip_prefix(&format!("{list}:"))
                    .and_then(|o| o.parse().ok())
            }) {
            Some(o) => o,
            None => {
                return api_error(
                    StatusCode::BAD_REQUEST,
                    "invalid",
                    "Invalid Input: pageToken",
                );
            }
        },
    };
    let end = (start + size).min(items.len());
    let mut body = json!({"kind": kind, "etag": "\"list\""});
    if start < end {
        body[key] = Value::Array(items[start..end].iter().map(shape).collect());
    }
    if end < items.len() {
        body["nextPageToken"] = json!(STANDARD.encode(format!("{list}:{end}")));
    }
    axum::Json(body).into_response()
}

async fn users(
    State(s): State<Shared>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let mut inner = s.lock().expect("lock");
    if let Err(r) = admit(&mut inner, &headers, "users").and_then(|()| check_scope(&q)) {
        return r;
    }
    let full = matches!(
        q.get("projection").map(String::as_str),
        Some("full" | "custom")
    );
    let users = &inner.dir.users;
    let cut = inner
        .faults
        .users_cut_at
        .unwrap_or(usize::MAX)
        .min(users.len());
    let shape = |u: &Value| {
        let mut u = u.clone();
        if let Some(o) = u.as_object_mut().filter(|_| !full) {
            o.remove("customSchemas");
        }
        u
    };
    let what = (500, "users", "users", "admin#directory#users");
    page(&q, &users[..cut], what, shape)
}

async fn groups(
    State(s): State<Shared>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let mut inner = s.lock().expect("lock");
    if let Err(r) = admit(&mut inner, &headers, "groups").and_then(|()| check_scope(&q)) {
        return r;
    }
    let dir = &inner.dir;
    let shape = |g: &Value| {
        let mut g = g.clone();
        let id = g["id"].as_str().unwrap_or_default();
        let n = dir.members.get(id).map_or(0, Vec::len);
        g["directMembersCount"] = json!(n.to_string());
        g
    };
    let what = (200, "groups", "groups", "admin#directory#groups");
    page(&q, &dir.groups, what, shape)
}

async fn members(
    State(s): State<Shared>,
    headers: HeaderMap,
    Path(key): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let mut inner = s.lock().expect("lock");
    if let Err(r) = admit(&mut inner, &headers, "members") {
        return r;
    }
    let Some(id) = inner
        .dir
        .groups
        .iter()
        .find(|g| g["id"] == key.as_str() || g["email"] == key.as_str())
        .and_then(|g| g["id"].as_str())
        .map(str::to_string)
    else {
        return api_error(
            StatusCode::NOT_FOUND,
            "notFound",
            "Resource Not Found: groupKey",
        );
    };
    if inner.faults.failing_group.as_deref() == Some(id.as_str()) {
        return api_error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "backendError",
            "Backend Error",
        );
    }
    let list = inner.dir.members.get(&id).map_or(&[][..], Vec::as_slice);
    let name = format!("members-{id}");
    let what = (200, name.as_str(), "members", "admin#directory#members");
    page(&q, list, what, Value::clone)
}
