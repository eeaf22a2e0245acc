//! The console over plain HTTP (no browser): sign-in, lockout, CSRF, cookies, security
//! headers, token secrets shown once, and the admin log API (filters, paging, CSV, retention).

use reqwest::StatusCode;
use reqwest::header::{HeaderMap, SET_COOKIE};
use scim_core::Timestamp;
use scim_core::prelude::*;
use scim_testkit::{Backend, TestServer};
use serde_json::{Value, json};

pub const OPERATOR: &str = "alice";
pub const PASSWORD: &str = "correct horse battery staple";

/// A browser-like client: keeps cookies, does not follow redirects.
pub struct Console {
    pub root: String,
    pub http: reqwest::Client,
    pub csrf: String,
}

fn between<'a>(s: &'a str, start: &str, end: &str) -> Option<&'a str> {
    let i = s.find(start)? + start.len();
    let j = s[i..].find(end)? + i;
    Some(&s[i..j])
}

/// The value of the first hidden `csrf` field in a page.
pub fn csrf_of(page: &str) -> String {
    between(page, "name=\"csrf\" value=\"", "\"")
        .unwrap_or_default()
        .to_string()
}

impl Console {
    pub fn new(root: &str) -> Self {
        Self::from_address(root, [127, 0, 0, 1])
    }

    /// A client whose connections come from another loopback address.
    pub fn from_address(root: &str, addr: [u8; 4]) -> Self {
        Self {
            root: root.to_string(),
            http: reqwest::Client::builder()
                .cookie_store(true)
                .redirect(reqwest::redirect::Policy::none())
                .local_address(std::net::IpAddr::from(addr))
                .build()
                .unwrap(),
            csrf: String::new(),
        }
    }

    pub async fn get(&self, path: &str) -> (StatusCode, HeaderMap, String) {
        let r = self
            .http
            .get(format!("{}{path}", self.root))
            .send()
            .await
            .unwrap();
        let (s, h) = (r.status(), r.headers().clone());
        (s, h, r.text().await.unwrap())
    }

    pub async fn post(&self, path: &str, form: &[(&str, &str)]) -> (StatusCode, HeaderMap, String) {
        let r = self
            .http
            .post(format!("{}{path}", self.root))
            .form(form)
            .send()
            .await
            .unwrap();
        let (s, h) = (r.status(), r.headers().clone());
        (s, h, r.text().await.unwrap())
    }

    /// Posts a `multipart/form-data` form (RFC 7578) as a browser sends one with a file
    /// input: `file` is (field, file name, bytes).
    pub async fn post_multipart(
        &self,
        path: &str,
        form: &[(&str, &str)],
        file: Option<(&str, &str, &[u8])>,
    ) -> (StatusCode, HeaderMap, String) {
        const B: &str = "----scimdTestBoundary7MA4YWxkTrZu0gW";
        let mut body = Vec::new();
        for (k, v) in form {
            body.extend_from_slice(
                format!("--{B}\r\nContent-Disposition: form-data; name=\"{k}\"\r\n\r\n{v}\r\n")
                    .as_bytes(),
            );
        }
        if let Some((field, name, bytes)) = file {
            body.extend_from_slice(
                format!(
                    "--{B}\r\nContent-Disposition: form-data; name=\"{field}\"; filename=\"{name}\"\r\n\
                     Content-Type: application/octet-stream\r\n\r\n"
                )
                .as_bytes(),
            );
            body.extend_from_slice(bytes);
            body.extend_from_slice(b"\r\n");
        }
        body.extend_from_slice(format!("--{B}--\r\n").as_bytes());
        let r = self
            .http
            .post(format!("{}{path}", self.root))
            .header("content-type", format!("multipart/form-data; boundary={B}"))
            .body(body)
            .send()
            .await
            .unwrap();
        let (s, h) = (r.status(), r.headers().clone());
        (s, h, r.text().await.unwrap())
    }

    /// Signs in; returns the sign-in response.
    pub async fn sign_in(&mut self, user: &str, password: &str) -> (StatusCode, HeaderMap, String) {
        let (_, _, page) = self.get("/console/login").await;
        let csrf = csrf_of(&page);
        let r = self
            .post(
                "/console/login",
                &[
                    ("csrf", &csrf),
                    ("username", user),
                    ("password", password),
                    ("next", "/console/tenants"),
                ],
            )
            .await;
        if r.0 == StatusCode::SEE_OTHER {
            let (_, _, page) = self.get("/console/tenants").await;
            self.csrf = csrf_of(&page);
        }
        r
    }
}

pub async fn operator(s: &TestServer) {
    s.services
        .operators
        .create(OPERATOR, PASSWORD, &scim_core::audit::Actor::server())
        .await
        .unwrap();
}

async fn sign_in_sessions_and_headers(backend: Backend) {
    let s = TestServer::start(backend).await;
    operator(&s).await;
    let mut c = Console::new(&s.root);

    // Signed out: every page sends to the sign-in page, the API answers 401.
    let (st, h, _) = c.get("/console/t/acme/users").await;
    assert_eq!(st, StatusCode::SEE_OTHER);
    assert_eq!(
        h["location"],
        "/console/login?next=%2Fconsole%2Ft%2Facme%2Fusers"
    );
    let (st, _, body) = c.get("/console/api/t/acme/events").await;
    assert_eq!(st, StatusCode::UNAUTHORIZED, "{body}");

    // The sign-in page: security headers, a login CSRF cookie.
    let (st, h, page) = c.get("/console/login").await;
    assert_eq!(st, StatusCode::OK);
    let csp = h["content-security-policy"].to_str().unwrap();
    assert!(
        csp.contains("script-src 'self'") && !csp.contains("unsafe-inline"),
        "{csp}"
    );
    assert!(csp.contains("frame-ancestors 'none'"));
    assert_eq!(h["x-frame-options"], "DENY");
    assert_eq!(h["referrer-policy"], "same-origin");
    assert_eq!(h["cache-control"], "no-store");
    assert!(!page.contains("<script>"), "no inline script");
    assert!(!page.contains("style="), "no inline style");

    // Wrong password: one generic message, no session.
    let (st, _, page) = c.sign_in(OPERATOR, "wrong password!!").await;
    assert_eq!(st, StatusCode::UNAUTHORIZED);
    assert!(page.contains("Wrong username or password."));
    let (st, _, page) = c.sign_in("nobody", "wrong password!!").await;
    assert_eq!(st, StatusCode::UNAUTHORIZED);
    assert!(page.contains("Wrong username or password."));

    // Right password: a strict, HttpOnly session cookie, not Secure over http.
    let (st, h, _) = c.sign_in(OPERATOR, PASSWORD).await;
    assert_eq!(st, StatusCode::SEE_OTHER);
    let cookie = h
        .get_all(SET_COOKIE)
        .iter()
        .map(|v| v.to_str().unwrap().to_string())
        .find(|v| v.starts_with("scimd_console="))
        .unwrap();
    assert!(cookie.contains("HttpOnly"), "{cookie}");
    assert!(cookie.contains("SameSite=Strict"), "{cookie}");
    assert!(cookie.contains("Path=/console"), "{cookie}");
    assert!(!cookie.contains("Secure"), "{cookie}");
    let value = cookie
        .split(';')
        .next()
        .unwrap()
        .trim_start_matches("scimd_console=");
    assert!(value.len() >= 43);
    assert!(!c.csrf.is_empty());

    // Every page renders.
    for path in [
        "/console/tenants",
        "/console/t/acme/integration",
        "/console/t/acme/users",
        "/console/t/acme/groups",
        "/console/t/acme/log",
    ] {
        let (st, h, page) = c.get(path).await;
        assert_eq!(st, StatusCode::OK, "{path}: {page}");
        assert!(
            h["content-security-policy"]
                .to_str()
                .unwrap()
                .contains("default-src 'none'")
        );
        assert!(page.contains("Sign out"), "{path}");
    }
    let (st, _, _) = c.get("/console/t/nope/users").await;
    assert_eq!(st, StatusCode::NOT_FOUND);

    // Sign out ends the session on the server, not only in this browser.
    let c2_cookie = format!("scimd_console={value}");
    let (st, _, _) = c
        .post("/console/logout", &[("csrf", &c.csrf.clone())])
        .await;
    assert_eq!(st, StatusCode::SEE_OTHER);
    let replay = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
        .get(format!("{}/console/tenants", s.root))
        .header("cookie", c2_cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(replay.status(), StatusCode::SEE_OTHER);

    // Behind a TLS-terminating proxy the cookie is Secure.
    let (_, _, page) = c.get("/console/login").await;
    let csrf = csrf_of(&page);
    let r = c
        .http
        .post(format!("{}/console/login", s.root))
        .header("x-forwarded-proto", "https")
        .form(&[
            ("csrf", csrf.as_str()),
            ("username", OPERATOR),
            ("password", PASSWORD),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert!(
        r.headers().get_all(SET_COOKIE).iter().any(|v| v
            .to_str()
            .unwrap()
            .starts_with("scimd_console=")
            && v.to_str().unwrap().contains("; Secure"))
    );
    s.finish().await;
}

async fn lockout_after_repeated_failures(backend: Backend) {
    let s = TestServer::start(backend).await;
    operator(&s).await;
    let mut c = Console::new(&s.root);
    for i in 1..=5 {
        let (st, _, _) = c.sign_in(OPERATOR, "not the password").await;
        assert_eq!(st, StatusCode::UNAUTHORIZED, "attempt {i}");
    }
    let (st, h, page) = c.sign_in(OPERATOR, "not the password").await;
    assert_eq!(st, StatusCode::TOO_MANY_REQUESTS);
    assert!(page.contains("Too many failed sign-ins"), "{page}");
    assert!(h.get("retry-after").is_some());
    // Throttled from this address: even the right password is refused for now…
    let (st, _, _) = c.sign_in(OPERATOR, PASSWORD).await;
    assert_eq!(st, StatusCode::TOO_MANY_REQUESTS);
    // …but the account is not locked: from another address the operator signs in.
    let mut elsewhere = Console::from_address(&s.root, [127, 0, 0, 2]);
    let (st, _, _) = elsewhere.sign_in(OPERATOR, PASSWORD).await;
    assert_eq!(st, StatusCode::SEE_OTHER);
    let op = s.store.operator_by_name(OPERATOR).await.unwrap().unwrap();
    assert_eq!(
        (op.failed_logins, op.locked_until),
        (0, None),
        "nothing to unlock"
    );
    s.finish().await;
}

async fn csrf_and_origin_are_checked(backend: Backend) {
    let s = TestServer::start(backend).await;
    operator(&s).await;
    let mut c = Console::new(&s.root);
    c.sign_in(OPERATOR, PASSWORD).await;
    let form = |csrf: &'static str| {
        vec![
            ("csrf", csrf),
            ("action", "create"),
            ("name", "forged"),
            ("users", "rw"),
        ]
    };
    // No token, a wrong token: 403 and nothing created.
    let (st, _, _) = c.post("/console/t/acme/integration", &form("")[1..]).await;
    assert_eq!(st, StatusCode::FORBIDDEN);
    let (st, _, page) = c
        .post("/console/t/acme/integration", &form("forged-token"))
        .await;
    assert_eq!(st, StatusCode::FORBIDDEN);
    assert!(page.contains("reload the page"), "{page}");
    // Another site's Origin, even with the right token.
    let csrf = c.csrf.clone();
    let r = c
        .http
        .post(format!("{}/console/tenants", s.root))
        .header("origin", "https://evil.example")
        .form(&[("csrf", csrf.as_str()), ("slug", "evil")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    // The sign-in form needs its own cookie-bound token.
    let (st, _, _) = Console::new(&s.root)
        .post(
            "/console/login",
            &[
                ("csrf", "x"),
                ("username", OPERATOR),
                ("password", PASSWORD),
            ],
        )
        .await;
    assert_eq!(st, StatusCode::FORBIDDEN);
    let tokens = s.store.tokens(s.tenant_id).await.unwrap();
    assert!(tokens.iter().all(|t| t.name != "forged"));
    assert!(s.store.tenant("evil").await.unwrap().is_none());
    s.finish().await;
}

async fn tokens_tenants_and_browsers(backend: Backend) {
    let s = TestServer::start(backend).await;
    operator(&s).await;
    let mut c = Console::new(&s.root);
    c.sign_in(OPERATOR, PASSWORD).await;
    let csrf = c.csrf.clone();

    // Create a tenant; a bad slug is a clear error.
    let (st, _, page) = c
        .post("/console/tenants", &[("csrf", &csrf), ("slug", "Bad Slug")])
        .await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
    assert!(page.contains("invalid tenant slug"), "{page}");
    let (st, h, _) = c
        .post(
            "/console/tenants",
            &[("csrf", &csrf), ("slug", "globex"), ("name", "Globex")],
        )
        .await;
    assert_eq!(st, StatusCode::SEE_OTHER);
    assert_eq!(h["location"], "/console/t/globex/integration");
    let (st, _, page) = c
        .post("/console/tenants", &[("csrf", &csrf), ("slug", "globex")])
        .await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
    assert!(page.contains("already exists"), "{page}");

    // Add a token: the secret is on this response only.
    let (st, _, page) = c
        .post(
            "/console/t/globex/integration",
            &[
                ("csrf", &csrf),
                ("action", "create"),
                ("name", "Entra <prod>"),
                ("users", "rw"),
                ("groups", "r"),
                ("bulk", "none"),
                ("expires", "90d"),
            ],
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{page}");
    assert!(
        !page.contains("Entra <prod>") && page.contains("Entra &"),
        "names are escaped"
    );
    let secret = between(&page, "<code id=\"new-secret\">", "</code>")
        .unwrap()
        .to_string();
    assert!(secret.starts_with("scimd_"));
    assert!(page.contains(&format!("{}/t/globex/scim/v2", s.root)));
    let (_, _, again) = c.get("/console/t/globex/integration").await;
    assert!(!again.contains(&secret), "the secret is shown once");
    assert!(again.contains("Users: Read+Write · Groups: Read"));
    assert!(again.contains(&secret[..12]), "the prefix identifies it");

    // The token works, with its scopes.
    let scim = format!("{}/t/globex/scim/v2", s.root);
    let r = s
        .client
        .post(format!("{scim}/Users"))
        .bearer_auth(&secret)
        .json(&json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": "ann@globex.example", "emails": [{"value": "ann@globex.example", "primary": true}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let user: Value = r.json().await.unwrap();
    let r = s
        .client
        .post(format!("{scim}/Groups"))
        .bearer_auth(&secret)
        .json(&json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "displayName": "Ops"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403, "groups are read-only for this token");

    // Users browser: text search, filter search, a bad filter, detail with history.
    let (_, _, page) = c.get("/console/t/globex/users?q=ann").await;
    assert!(page.contains("ann@globex.example"), "{page}");
    let (_, _, page) = c
        .get("/console/t/globex/users?q=userName%20sw%20%22zz%22")
        .await;
    assert!(!page.contains("ann@globex.example"));
    let (st, _, page) = c
        .get("/console/t/globex/users?q=userName%20eq%20%22a%22%20and%20(")
        .await;
    assert!(
        st == StatusCode::OK || st == StatusCode::BAD_REQUEST,
        "{st}"
    );
    assert!(!page.contains("ann@globex.example") || st == StatusCode::OK);
    let id = user["id"].as_str().unwrap();
    let (st, _, page) = c.get(&format!("/console/t/globex/users/{id}")).await;
    assert_eq!(st, StatusCode::OK);
    assert!(page.contains("Create User"), "history shows the create");
    assert!(page.contains("Entra &"), "and the token name");
    let (st, _, _) = c.get("/console/t/globex/users/not-an-id").await;
    assert_eq!(st, StatusCode::NOT_FOUND);
    // Another tenant's user is not found under this tenant.
    let (st, _, _) = c.get(&format!("/console/t/acme/users/{id}")).await;
    assert_eq!(st, StatusCode::NOT_FOUND);

    // Rotate: new secret shown, old one valid for the grace period; then revoke.
    let token_id = s
        .store
        .tokens(s.store.tenant("globex").await.unwrap().unwrap().id)
        .await
        .unwrap()[0]
        .id
        .clone();
    let (st, _, page) = c
        .post(
            "/console/t/globex/integration",
            &[
                ("csrf", &csrf),
                ("action", "rotate"),
                ("id", &token_id),
                ("grace", "1h"),
            ],
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{page}");
    let new_secret = between(&page, "<code id=\"new-secret\">", "</code>")
        .unwrap()
        .to_string();
    assert_ne!(new_secret, secret);
    assert!(
        page.contains("The previous secret keeps working until <strong id=\"old-valid-until\">"),
        "the rotation says until when the old secret works: {page}"
    );
    assert!(
        page.contains("data-confirm=\"Rotate "),
        "rotation asks first"
    );
    for sec in [&secret, &new_secret] {
        let r = s
            .client
            .get(format!("{scim}/Users"))
            .bearer_auth(sec)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
    }
    let (st, _, page) = c
        .post(
            "/console/t/globex/integration",
            &[("csrf", &csrf), ("action", "revoke"), ("id", &token_id)],
        )
        .await;
    assert_eq!(st, StatusCode::OK);
    assert!(page.contains("Token revoked"));
    assert!(page.contains("status-revoked"));
    for sec in [&secret, &new_secret] {
        let r = s
            .client
            .get(format!("{scim}/Users"))
            .bearer_auth(sec)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 401, "revoked at once on this node");
    }
    // Bad token forms are clear errors.
    let (st, _, page) = c
        .post(
            "/console/t/globex/integration",
            &[
                ("csrf", &csrf),
                ("action", "create"),
                ("name", "x"),
                ("users", "none"),
            ],
        )
        .await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
    assert!(page.contains("at least one endpoint"));
    s.finish().await;
}

async fn log_api_filters_pages_and_exports(backend: Backend) {
    let s = TestServer::start(backend).await;
    operator(&s).await;
    let mut c = Console::new(&s.root);
    c.sign_in(OPERATOR, PASSWORD).await;
    let mut ids = Vec::new();
    for i in 0..5 {
        ids.push(s.user(&format!("user{i}")).await);
    }
    // A user whose name would be a spreadsheet formula, with a comma and a quote.
    s.user("=HYPERLINK(\"x\",1)").await;
    let r = s.post("/Users", json!({"userName": "user0"})).await;
    assert_eq!(r.status, 409);
    s.patch(
        &format!("/Users/{}", ids[0]),
        json!([{"op": "replace", "path": "active", "value": false}]),
    )
    .await;
    s.delete(&format!("/Users/{}", ids[1])).await;

    let api = "/console/api/t/acme/events";
    let (st, _, body) = c.get(api).await;
    assert_eq!(st, StatusCode::OK);
    let v: Value = serde_json::from_str(&body).unwrap();
    let events = v["events"].as_array().unwrap();
    assert_eq!(events.len(), 9, "{body}");
    assert_eq!(events[0]["operation"], "Hard Delete User");
    assert!(events[0]["time"].as_str().unwrap().ends_with('Z'));
    assert!(v["next"].is_null());

    // Filters.
    let count = |body: &str| {
        serde_json::from_str::<Value>(body).unwrap()["events"]
            .as_array()
            .unwrap()
            .len()
    };
    let (_, _, b) = c.get(&format!("{api}?outcome=failure")).await;
    assert_eq!(count(&b), 1, "{b}");
    assert!(b.contains("uniqueness"));
    let (_, _, b) = c.get(&format!("{api}?operation=create-user")).await;
    assert_eq!(count(&b), 6);
    let (_, _, b) = c
        .get(&format!(
            "{api}?operation=Deactivate%20User&operation=Hard%20Delete%20User"
        ))
        .await;
    assert_eq!(count(&b), 2);
    let (_, _, b) = c.get(&format!("{api}?resource=USER0")).await;
    assert_eq!(
        count(&b),
        2,
        "create and deactivate, by name case-insensitively: {b}"
    );
    let (_, _, b) = c.get(&format!("{api}?resource={}", ids[1])).await;
    assert_eq!(count(&b), 2, "by id");
    let (_, _, b) = c.get(&format!("{api}?token=test&since=1h")).await;
    assert_eq!(count(&b), 9);
    let (_, _, b) = c.get(&format!("{api}?until=2000-01-01")).await;
    assert_eq!(count(&b), 0);
    for bad in [
        "outcome=maybe",
        "operation=explode",
        "since=yesterday",
        "limit=x",
        "format=xml",
    ] {
        let (st, _, b) = c.get(&format!("{api}?{bad}")).await;
        assert_eq!(st, StatusCode::BAD_REQUEST, "{bad}: {b}");
        assert!(serde_json::from_str::<Value>(&b).unwrap()["error"].is_string());
    }

    // Keyset paging: 4 + 4 + 1, no overlap, newest first.
    let mut seen = Vec::new();
    let mut next = Some(format!("{api}?limit=4"));
    while let Some(url) = next {
        let (_, _, b) = c.get(&url).await;
        let v: Value = serde_json::from_str(&b).unwrap();
        for e in v["events"].as_array().unwrap() {
            seen.push(e["seq"].as_i64().unwrap());
        }
        next = v["next"].as_str().map(str::to_string);
    }
    assert_eq!(seen.len(), 9);
    assert!(seen.windows(2).all(|w| w[0] > w[1]));

    // CSV: header, RFC 4180 quoting, formulas neutralised, a Link to the next page.
    let (st, h, csv) = c.get(&format!("{api}?format=csv&limit=8")).await;
    assert_eq!(st, StatusCode::OK);
    assert!(h["content-type"].to_str().unwrap().starts_with("text/csv"));
    assert!(
        h["content-disposition"]
            .to_str()
            .unwrap()
            .contains("attachment")
    );
    assert!(h["link"].to_str().unwrap().contains("rel=\"next\""));
    let mut lines = csv.split("\r\n");
    assert_eq!(
        lines.next().unwrap(),
        scim_core::event::CSV_HEADER.join(",")
    );
    assert!(
        csv.contains("\"'=HYPERLINK(\"\"x\"\",1)\""),
        "formula prefixed with ' and quotes doubled: {csv}"
    );

    // The log page shows counts and the chart.
    let (st, _, page) = c.get("/console/t/acme/log").await;
    assert_eq!(st, StatusCode::OK);
    let day = between(&page, "id=\"counts-24h\">", "</dl>").unwrap();
    let nums: Vec<&str> = day
        .split("<dd>")
        .skip(1)
        .map(|x| between(x, "\">", "<").unwrap())
        .collect();
    assert_eq!(
        nums,
        ["6", "1", "1", "1"],
        "creates, updates, deletes, failures"
    );
    // Each count is a filter: the Creates card lists the 6 creates and nothing else.
    let creates = between(day, "<a href=\"", "\"")
        .unwrap()
        .replace("&#38;", "&");
    assert!(
        creates.contains("since=24h&operation=Create+User"),
        "{creates}"
    );
    let (_, _, listed) = c.get(&creates).await;
    let table = between(&listed, "id=\"log-events\">", "</table>").unwrap();
    assert_eq!(
        table.matches("<tr data-seq").count(),
        6,
        "{creates}: {table}"
    );
    assert_eq!(page.matches("class=\"bar-ok\"").count(), 30);
    let (st, _, page) = c
        .get("/console/t/acme/log?outcome=failure&operation=")
        .await;
    assert_eq!(st, StatusCode::OK);
    assert!(page.contains("uniqueness"));
    let table = between(&page, "id=\"log-events\">", "</table>").unwrap();
    assert!(
        table.contains("Create User — failed (409)") && !table.contains("<td>Create User</td>"),
        "the failure says what it attempted; the creates are filtered out: {table}"
    );
    let (st, _, page) = c.get("/console/t/acme/log?since=someday").await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
    assert!(page.contains("is not a time"));

    // Retention: sweeping events older than now removes them from the API too.
    let swept = s
        .store
        .sweep_events(Timestamp::now() + time::Duration::microseconds(1), 1000)
        .await
        .unwrap();
    assert!(swept >= 9);
    let (_, _, b) = c.get(api).await;
    assert_eq!(count(&b), 0);
    s.finish().await;
}

scim_testkit::both_backends! {
    sign_in_sessions_and_headers => super::sign_in_sessions_and_headers;
    lockout => super::lockout_after_repeated_failures;
    csrf_and_origin => super::csrf_and_origin_are_checked;
    tokens_tenants_and_browsers => super::tokens_tenants_and_browsers;
    log_api => super::log_api_filters_pages_and_exports;
}
