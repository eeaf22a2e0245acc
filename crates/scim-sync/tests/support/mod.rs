//! What the engine's black-box tests share: a real scimd (HTTP on loopback, SQLite or the
//! local PostgreSQL) with tenant `app` as the target, an engine whose clock the test moves,
//! and the target read back as a person would read it.
#![allow(dead_code)] // each test binary uses part of it

use scim_core::{Store, Timestamp};
use scim_sync::engine::CycleReport;
use scim_sync::{Engine, JobSpec};
use scim_testkit::{Backend, TestServer};
use serde_json::{Value, json};
use std::sync::{Arc, Mutex};

pub struct Fixture {
    pub server: TestServer,
    pub dir: tempfile::TempDir,
    pub engine: Engine,
    pub now: Arc<Mutex<Timestamp>>,
    /// Tenant `app`: the target.
    pub app: String,
    pub app_token: String,
    pub http: reqwest::Client,
}

pub const HEADER: &str = "employee_id,userName,name.givenName,name.familyName,emails[type eq \"work\"].value,active,dept,groups";

impl Fixture {
    pub async fn new(backend: Backend) -> Self {
        let server = TestServer::start(backend).await;
        let (_, app_token) = server.tenant("app").await;
        let app = format!("{}/t/app/scim/v2", server.root);
        let now = Arc::new(Mutex::new(Timestamp::now()));
        let clock_now = now.clone();
        let store: Arc<dyn Store> = server.store.clone();
        let key = scim_sync::SyncKey::from_text(&scim_sync::SyncKey::generate()).unwrap();
        let engine = Engine::new(store, Some(key), time::Duration::days(30))
            .with_outbound(scim_net::Policy::allow_local())
            .with_clock(Arc::new(move || *clock_now.lock().unwrap()));
        Self {
            server,
            dir: tempfile::tempdir().unwrap(),
            engine,
            now,
            app,
            app_token,
            http: reqwest::Client::new(),
        }
    }

    pub fn advance(&self, d: time::Duration) {
        let mut n = self.now.lock().unwrap();
        *n = *n + d;
    }

    pub fn write_people(&self, rows: &[&str]) {
        let text = format!("{HEADER}\n{}\n", rows.join("\n"));
        std::fs::write(self.dir.path().join("people.csv"), text).unwrap();
    }

    pub fn spec(&self, extra: &str) -> JobSpec {
        let text = format!(
            "name = \"hr-to-app\"\n\n[source]\nkind = \"csv\"\npath = \"people.csv\"\nid = \"employee_id\"\ngroups = \"groups\"\n\n\
             [target]\nurl = \"{}\"\ntoken = \"{}\"\nrate_limit = 0\n\n{extra}",
            self.app, self.app_token
        );
        JobSpec::parse(&text, Some(self.dir.path())).unwrap()
    }

    pub async fn run(&self, spec: &JobSpec) -> CycleReport {
        let record = scim_core::SyncStore::job(self.server.store.as_ref(), &spec.name)
            .await
            .unwrap();
        let r = self.engine.run(spec, record.as_ref()).await.unwrap();
        assert!(
            r.counts
                .statuses
                .get(&scim_core::Status::Failure)
                .is_none_or(|n| *n == 0)
                || r.status != scim_core::CycleStatus::Completed,
            "{r:?}"
        );
        r
    }

    pub async fn plan(&self, spec: &JobSpec) -> scim_sync::plan::SyncPlan {
        let record = scim_core::SyncStore::job(self.server.store.as_ref(), &spec.name)
            .await
            .unwrap();
        self.engine
            .prepare(spec, record.as_ref())
            .await
            .unwrap()
            .plan
    }

    pub async fn app(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        let mut r = self
            .http
            .request(method, format!("{}{path}", self.app))
            .bearer_auth(&self.app_token);
        if let Some(b) = body {
            r = r
                .header("content-type", "application/scim+json")
                .body(b.to_string());
        }
        let resp = r.send().await.unwrap();
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap();
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    pub async fn user(&self, user_name: &str) -> Option<Value> {
        let (_, v) = self
            .app(
                reqwest::Method::GET,
                &format!("/Users?filter=userName%20eq%20%22{user_name}%22"),
                None,
            )
            .await;
        v["Resources"].as_array().and_then(|a| a.first().cloned())
    }

    pub async fn users(&self) -> Vec<Value> {
        let (_, v) = self
            .app(reqwest::Method::GET, "/Users?count=1000", None)
            .await;
        v["Resources"].as_array().cloned().unwrap_or_default()
    }

    /// The userNames of the target's active users, sorted.
    pub async fn active_users(&self) -> Vec<String> {
        let mut out: Vec<String> = self
            .users()
            .await
            .iter()
            .filter(|u| u["active"] == true)
            .filter_map(|u| u["userName"].as_str().map(str::to_string))
            .collect();
        out.sort();
        out
    }

    /// A group's members read back one by one: a user by userName, a group as
    /// `group <displayName>`; sorted.
    pub async fn members_of(&self, name: &str) -> Vec<String> {
        let get = async |path: String| self.app(reqwest::Method::GET, &path, None).await;
        let (_, v) = get(format!("/Groups?filter=displayName%20eq%20%22{name}%22")).await;
        assert_eq!(v["totalResults"], 1, "{name}: {v}");
        let mut out = Vec::new();
        for m in v["Resources"][0]["members"]
            .as_array()
            .into_iter()
            .flatten()
        {
            let id = m["value"].as_str().unwrap_or_default();
            let (_, u) = get(format!("/Users/{id}")).await;
            match u["userName"].as_str() {
                Some(n) => out.push(n.to_string()),
                None => {
                    let (_, g) = get(format!("/Groups/{id}")).await;
                    out.push(format!(
                        "group {}",
                        g["displayName"].as_str().unwrap_or("?")
                    ));
                }
            }
        }
        out.sort();
        out
    }

    /// How many members the target's group `name` has.
    pub async fn group_size(&self, name: &str) -> usize {
        let path = format!("/Groups?filter=displayName%20eq%20%22{name}%22");
        let (_, v) = self.app(reqwest::Method::GET, &path, None).await;
        v["Resources"][0]["members"].as_array().map_or(0, Vec::len)
    }

    /// Whether the target holds a group named `name`.
    pub async fn group_exists(&self, name: &str) -> bool {
        let path = format!("/Groups?filter=displayName%20eq%20%22{name}%22");
        let (_, v) = self.app(reqwest::Method::GET, &path, None).await;
        v["totalResults"] != 0
    }

    pub async fn group_members(&self, name: &str) -> Vec<String> {
        let (_, v) = self
            .app(
                reqwest::Method::GET,
                &format!("/Groups?filter=displayName%20eq%20%22{name}%22"),
                None,
            )
            .await;
        let mut m: Vec<String> = v["Resources"][0]["members"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|m| m["display"].as_str().map(str::to_string))
            .collect();
        m.sort();
        m
    }

    pub async fn create_target_user(&self, user_name: &str, email: &str, title: &str) -> String {
        let (s, v) = self
            .app(
                reqwest::Method::POST,
                "/Users",
                Some(json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": user_name,
                            "title": title, "emails": [{"type": "work", "value": email}]})),
            )
            .await;
        assert_eq!(s, 201, "{v}");
        v["id"].as_str().unwrap().to_string()
    }
}

/// A CSV row of the `HEADER` columns for "Given Family".
pub fn row(id: u32, name: &str, active: bool, dept: &str, groups: &str) -> String {
    let (given, family) = name.split_once(' ').unwrap();
    let user = format!("{}@example.com", given.to_lowercase());
    format!("{id},{user},{given},{family},{user},{active},{dept},{groups}")
}
