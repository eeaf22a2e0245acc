//! scimd's app on 127.0.0.1:0 over a fresh database (a SQLite file or a new PostgreSQL
//! database), with a small SCIM client.

use reqwest::{Method, StatusCode};
use scim_core::{Services, Tenant, TokenScopes};
use scim_server::{AppParts, AppState, ServerConfig};
use scim_store::SqlStore;
use serde_json::Value;
use std::sync::Arc;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

pub struct TestServer {
    pub root: String,
    pub store: Arc<SqlStore>,
    /// The services over the same store (what the CLI would use).
    pub services: Services,
    pub client: reqwest::Client,
    /// Tenant `acme`'s SCIM base URL and all-scopes token.
    pub base: String,
    pub token: String,
    pub tenant_id: i64,
    /// The database the server runs on (a SQLite file or a PostgreSQL database).
    pub database_url: String,
    _dir: tempfile::TempDir,
    pg_db: Option<String>,
}

pub struct Resp {
    pub status: StatusCode,
    pub headers: reqwest::header::HeaderMap,
    pub body: Value,
}

impl Resp {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
    /// Asserts a SCIM error of this status (and scimType, when given).
    pub fn assert_error(&self, status: u16, scim_type: Option<&str>) {
        assert_eq!(self.status.as_u16(), status, "body: {}", self.body);
        assert_eq!(
            self.body["schemas"][0], "urn:ietf:params:scim:api:messages:2.0:Error",
            "{}",
            self.body
        );
        assert_eq!(self.body["status"], status.to_string(), "{}", self.body);
        assert!(
            self.body["detail"].as_str().is_some_and(|d| !d.is_empty()),
            "{}",
            self.body
        );
        if let Some(t) = scim_type {
            assert_eq!(self.body["scimType"], t, "{}", self.body);
        }
        assert!(
            self.header("content-type")
                .unwrap_or("")
                .starts_with("application/scim+json")
        );
    }
}

impl TestServer {
    /// A server whose outbound policy allows loopback (the tests' receivers and targets
    /// listen there); [`start_with`](Self::start_with) takes the configuration as given.
    pub async fn start(backend: Backend) -> Self {
        let config = ServerConfig {
            outbound: scim_net::Policy::allow_local(),
            ..ServerConfig::default()
        };
        Self::start_with(backend, config).await
    }

    /// The tests' source files are written to temporary folders: the system's temporary
    /// directory is the server's source directory (`sync_source_dir`).
    pub async fn start_with(backend: Backend, config: ServerConfig) -> Self {
        Self::start_full(backend, config, Some(std::env::temp_dir())).await
    }

    /// [`start_with`](Self::start_with) with the source directory given (`None`: console
    /// apps read uploaded files only).
    pub async fn start_full(
        backend: Backend,
        config: ServerConfig,
        source_dir: Option<std::path::PathBuf>,
    ) -> Self {
        Self::start_parts(backend, config, source_dir, None).await
    }

    /// A server whose console e-mails notices through `smtp_url` (from `scimd@example.com`).
    pub async fn start_with_smtp(backend: Backend, smtp_url: &str) -> Self {
        let smtp = Some((smtp_url.to_string(), "scimd@example.com".to_string()));
        let config = ServerConfig {
            outbound: scim_net::Policy::allow_local(),
            ..ServerConfig::default()
        };
        Self::start_parts(backend, config, Some(std::env::temp_dir()), smtp).await
    }

    async fn start_parts(
        backend: Backend,
        mut config: ServerConfig,
        source_dir: Option<std::path::PathBuf>,
        smtp: Option<(String, String)>,
    ) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let (url, pg_db) = match backend {
            Backend::Sqlite => (format!("sqlite://{}/scimd.db", dir.path().display()), None),
            Backend::Postgres => {
                let (name, url) = crate::pg::fresh_database().await;
                (url, Some(name))
            }
        };
        let store = Arc::new(SqlStore::connect(&url, 8).await.unwrap());
        scim_core::SchemaStore::migrate(store.as_ref())
            .await
            .unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let root = format!("http://{}", listener.local_addr().unwrap());
        config.public_url = root.clone();
        // An instance key of its own, so the console's Apps forms can seal target tokens and
        // webhook endpoints can be added; the deliverer runs as under `scimd serve`, with
        // quick retries.
        let key = scim_core::SealingKey::from_text(&scim_core::SealingKey::generate())
            .expect("a generated key reads back");
        let policy = scim_core::webhook::RetryPolicy {
            first_retry: std::time::Duration::from_millis(100),
            max_interval: std::time::Duration::from_millis(500),
            timeout: std::time::Duration::from_secs(2),
            ..Default::default()
        };
        let state = AppState::build(
            store.clone(),
            AppParts {
                config,
                key: Some(key.clone()),
                webhooks: Some((policy, std::time::Duration::from_secs(3))),
                sync_source_dir: source_dir,
                smtp,
                ..AppParts::default()
            },
        )
        .expect("the app state builds");
        if let Some(d) = &state.deliverer {
            tokio::spawn(d.clone().run());
        }
        let state = Arc::new(state);
        tokio::spawn(async move {
            axum::serve(
                listener,
                scim_server::app(state)
                    .into_make_service_with_connect_info::<std::net::SocketAddr>(),
            )
            .await
            .unwrap();
        });
        let mut s = Self {
            root: root.clone(),
            services: {
                let mut services = Services::new(store.clone(), Default::default());
                services.webhooks =
                    scim_core::service::WebhookService::new(store.clone(), Some(key));
                services
            },
            database_url: url.clone(),
            store,
            client: reqwest::Client::new(),
            base: String::new(),
            token: String::new(),
            tenant_id: 0,
            _dir: dir,
            pg_db,
        };
        let (tid, tok) = s.tenant("acme").await;
        s.base = format!("{root}/t/acme/scim/v2");
        s.token = tok;
        s.tenant_id = tid;
        s
    }

    /// Creates a tenant with an all-scopes token.
    pub async fn tenant(&self, slug: &str) -> (i64, String) {
        let actor = scim_core::audit::Actor::server();
        let t = self
            .services
            .tenants
            .create(slug, None, &actor)
            .await
            .unwrap();
        (t.id, self.issue(t.id, TokenScopes::all(), None).await)
    }

    /// A tenant by id (the tests hold ids).
    pub async fn tenant_by_id(&self, id: i64) -> Tenant {
        self.services
            .tenants
            .list()
            .await
            .unwrap()
            .into_iter()
            .find(|t| t.id == id)
            .unwrap()
    }

    /// Issues a token named `test`; `expires_in` unset means it never expires.
    pub async fn issue(
        &self,
        tenant_id: i64,
        scopes: TokenScopes,
        expires_in: Option<time::Duration>,
    ) -> String {
        let t = self.tenant_by_id(tenant_id).await;
        self.services
            .tokens
            .create(
                &t,
                "test",
                scopes,
                expires_in,
                &scim_core::audit::Actor::server(),
            )
            .await
            .unwrap()
            .secret
    }

    pub fn url(&self, path: &str) -> String {
        if path.starts_with("http") {
            path.to_string()
        } else {
            format!("{}{path}", self.base)
        }
    }

    pub async fn send(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<&Value>,
        headers: &[(&str, &str)],
    ) -> Resp {
        let mut req = self.client.request(method, self.url(path));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        if let Some(b) = body {
            req = req
                .header("content-type", "application/scim+json")
                .body(b.to_string());
        }
        let r = req.send().await.unwrap();
        let status = r.status();
        let headers = r.headers().clone();
        let text = r.text().await.unwrap();
        let body = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or(Value::String(text))
        };
        Resp {
            status,
            headers,
            body,
        }
    }

    pub async fn get(&self, path: &str) -> Resp {
        self.send(Method::GET, path, Some(&self.token.clone()), None, &[])
            .await
    }
    pub async fn post(&self, path: &str, body: Value) -> Resp {
        self.send(
            Method::POST,
            path,
            Some(&self.token.clone()),
            Some(&body),
            &[],
        )
        .await
    }
    pub async fn put(&self, path: &str, body: Value) -> Resp {
        self.send(
            Method::PUT,
            path,
            Some(&self.token.clone()),
            Some(&body),
            &[],
        )
        .await
    }
    pub async fn patch(&self, path: &str, ops: Value) -> Resp {
        let body = serde_json::json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": ops});
        self.send(
            Method::PATCH,
            path,
            Some(&self.token.clone()),
            Some(&body),
            &[],
        )
        .await
    }
    pub async fn delete(&self, path: &str) -> Resp {
        self.send(Method::DELETE, path, Some(&self.token.clone()), None, &[])
            .await
    }

    /// Creates a user and returns its id.
    pub async fn user(&self, user_name: &str) -> String {
        let r = self
            .post("/Users", serde_json::json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": user_name}))
            .await;
        assert_eq!(r.status, 201, "{}", r.body);
        r.body["id"].as_str().unwrap().to_string()
    }

    /// Drops the PostgreSQL database (SQLite files go with the temp dir).
    pub async fn finish(self) {
        self.store.close().await;
        if let Some(db) = &self.pg_db {
            crate::pg::drop_database(db).await;
        }
    }
}
