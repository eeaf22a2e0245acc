//! The engine against a failing target (issue 13's fault tests): a real scimd tenant behind
//! the test kit's fault-injecting gateway ([`scim_testkit::faults`]: 429 with Retry-After,
//! 500s, answers held past the client timeout, connections reset after a create, one
//! userName the app refuses, the token revoked mid-cycle), creates in Bulk requests and one
//! by one, notices delivered to a real SMTP
//! server (aiosmtpd). Each cycle must converge with zero duplicates and zero lost changes;
//! escrow and quarantine must be the documented states. The numbers (requests, retries,
//! time to converge) are printed for the closing note; nothing here asserts a time.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

use scim_core::{Store, SyncStore, Timestamp};
use scim_sync::engine::CycleReport;
use scim_sync::runtime::notify::{Notifier, Notifiers, SmtpNotifier, WebhookNotifier};
use scim_sync::runtime::schedule::Scheduler;
use scim_sync::{Engine, JobSpec};
use scim_testkit::faults::{FaultTarget, Faults};
use scim_testkit::mail::SmtpServer;
use scim_testkit::{Backend, TestServer};
use serde_json::Value;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const USERS: usize = 240;

/// `v1,` and base64 of HMAC-SHA256 over `{id}.{timestamp}.{body}`, keyed with the base64
/// after `whsec_` (the Standard Webhooks scheme, computed here on its own as a receiver
/// would, not with the engine's signer).
fn standard_webhooks_signature(secret: &str, id: &str, ts: i64, body: &str) -> String {
    use base64::Engine as _;
    use hmac::Mac as _;
    let b64 = base64::engine::general_purpose::STANDARD;
    let key = b64.decode(secret.trim_start_matches("whsec_")).unwrap();
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(&key).unwrap();
    mac.update(format!("{id}.{ts}.{body}").as_bytes());
    format!("v1,{}", b64.encode(mac.finalize().into_bytes()))
}
const JOB: &str = "faulty";
/// The source id of the user the target always refuses.
const POISON_ID: &str = "9999";

fn people(generation: u32, inactive_every: usize) -> String {
    people_up_to(USERS, generation, inactive_every)
}

/// The first `n` of the source users (and the refused one).
fn people_up_to(n: usize, generation: u32, inactive_every: usize) -> String {
    let mut s = String::from("employee_id,userName,name.givenName,name.familyName,active,groups\n");
    for i in 0..n {
        let active = inactive_every == 0 || i % inactive_every != 0;
        s.push_str(&format!(
            "{i},user{i:04}@example.com,User,Family{i}-g{generation},{active},team-{}\n",
            i % 4
        ));
    }
    s.push_str(&format!(
        "9999,poison@example.com,Poison,Pill-g{generation},true,team-0\n"
    ));
    s
}

/// A page of the target tenant as read straight from scimd (not through the gateway).
async fn target_page(server: &TestServer, token: &str, path: &str) -> Vec<Value> {
    let v: Value = reqwest::Client::new()
        .get(format!("{}/t/app/scim/v2{path}", server.root))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    v["Resources"].as_array().cloned().unwrap_or_default()
}

async fn target_users(server: &TestServer, token: &str) -> Vec<Value> {
    let mut out = Vec::new();
    loop {
        let path = format!("/Users?startIndex={}&count=200", out.len() + 1);
        let page = target_page(server, token, &path).await;
        if page.is_empty() {
            return out;
        }
        out.extend(page);
    }
}

async fn target_groups(server: &TestServer, token: &str) -> BTreeMap<String, Vec<String>> {
    let groups = target_page(server, token, "/Groups?count=100").await;
    let mut out = BTreeMap::new();
    for g in &groups {
        let mut m: Vec<String> = g["members"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|m| m["value"].as_str().unwrap().to_string())
            .collect();
        m.sort();
        out.insert(g["displayName"].as_str().unwrap().to_string(), m);
    }
    out
}

/// Zero duplicates and zero lost changes: every source user exactly once, with this
/// generation's familyName and its active flag, in exactly its group; the refused one never.
async fn assert_converged(
    server: &TestServer,
    token: &str,
    generation: u32,
    inactive_every: usize,
) {
    let users = target_users(server, token).await;
    let mut by_name: BTreeMap<String, Vec<&Value>> = BTreeMap::new();
    for u in &users {
        by_name
            .entry(u["userName"].as_str().unwrap().to_string())
            .or_default()
            .push(u);
    }
    assert_eq!(users.len(), USERS, "target has {} users", users.len());
    assert!(!by_name.contains_key("poison@example.com"));
    let mut want_groups: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for i in 0..USERS {
        let name = format!("user{i:04}@example.com");
        let found = by_name.get(&name).unwrap_or_else(|| panic!("{name} lost"));
        assert_eq!(found.len(), 1, "{name} duplicated");
        let u = found[0];
        let active = inactive_every == 0 || i % inactive_every != 0;
        // A suspended user is frozen as it was when disabled (here: generation 1); its
        // later changes reach the target when it is enabled again (step 6).
        let want = if active { generation } else { 1 };
        assert_eq!(
            u["name"]["familyName"],
            format!("Family{i}-g{want}"),
            "{name}"
        );
        assert_eq!(u["active"], active, "{name}");
        if active {
            want_groups
                .entry(format!("team-{}", i % 4))
                .or_default()
                .push(u["id"].as_str().unwrap().to_string());
        }
    }
    let mut groups = target_groups(server, token).await;
    groups.retain(|_, m| !m.is_empty());
    for m in want_groups.values_mut() {
        m.sort();
    }
    assert_eq!(groups, want_groups, "memberships");
}

struct Run {
    cycles: u32,
    requests: u64,
    retries: u64,
    throttled: u64,
    elapsed: Duration,
}

/// Runs cycles (moving the clock past the escrow ladder's rungs between them) until one
/// completes without failures other than the refused userName, and only it is in escrow.
async fn converge(
    scheduler: &Scheduler,
    store: &dyn Store,
    now: &Arc<Mutex<Timestamp>>,
    label: &str,
) -> (Run, Vec<CycleReport>) {
    let started = Instant::now();
    let mut run = Run {
        cycles: 0,
        requests: 0,
        retries: 0,
        throttled: 0,
        elapsed: Duration::ZERO,
    };
    let mut reports = Vec::new();
    let mut poison_tries = poison_failures(store).await;
    loop {
        let r = scheduler.run_now(JOB, "test").await.expect("the cycle ran");
        run.cycles += 1;
        run.requests += r.counts.requests;
        run.retries += r.counts.retries;
        run.throttled += r.counts.throttled;
        let failures = r
            .counts
            .statuses
            .get(&scim_core::Status::Failure)
            .copied()
            .unwrap_or(0);
        println!(
            "{label}: cycle {} {}: {:?}",
            run.cycles,
            r.status.as_str(),
            r.counts.statuses
        );
        reports.push(r.clone());
        // Converged: a clean cycle but for the refused user (when due), nothing in escrow but
        // that user (one that failed twice waits 12 h; a clean cycle before then leaves it).
        let escrowed = scheduler.engine.status(JOB).await.unwrap().escrowed;
        let tries = poison_failures(store).await;
        let allowed = u64::from(tries != poison_tries);
        poison_tries = tries;
        let only_poison = (failures as u64) <= allowed && escrowed <= 1;
        if matches!(
            r.status,
            scim_core::CycleStatus::Completed | scim_core::CycleStatus::CompletedWithFailures
        ) && only_poison
        {
            break;
        }
        assert!(
            run.cycles < 8,
            "{label}: no convergence after 8 cycles: {r:?}, {escrowed} escrowed"
        );
        // Failing objects wait on the escrow ladder (6 h, 12 h, then 24 h): past the first
        // rung after a cycle with failures, past the longest once only waiting ones remain.
        let mut n = now.lock().unwrap();
        *n = *n + time::Duration::hours(if failures > 1 { 7 } else { 25 });
    }
    run.elapsed = started.elapsed();
    println!(
        "{label}: {} cycle(s), {} requests, {} retries, {} throttled, {:.1} s",
        run.cycles,
        run.requests,
        run.retries,
        run.throttled,
        run.elapsed.as_secs_f64()
    );
    (run, reports)
}

/// How many times the refused user has failed (its escrow count).
async fn poison_failures(store: &dyn Store) -> u32 {
    let ledger = store.ledger(JOB).await.unwrap();
    let poison = ledger.iter().find(|e| e.source_id == POISON_ID);
    poison
        .and_then(|e| e.escrow.map(|x| x.failures))
        .unwrap_or(0)
}

const HOOK_SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

/// An operator's webhook endpoint: verifies each delivery's Standard Webhooks signature
/// and timestamp, refuses the very first delivery with a 500 (so retries are exercised),
/// and keeps the verified payloads.
struct WebhookReceiver {
    url: String,
    seen: Arc<Mutex<(u32, Vec<Value>)>>,
}

impl WebhookReceiver {
    async fn start() -> Self {
        use axum::http::{HeaderMap, StatusCode};
        let seen: Arc<Mutex<(u32, Vec<Value>)>> = Arc::default();
        let state = seen.clone();
        let app = axum::Router::new().route(
            "/hook",
            axum::routing::post(move |headers: HeaderMap, body: String| {
                let state = state.clone();
                async move {
                    let h = |k: &str| headers.get(k).and_then(|v| v.to_str().ok()).unwrap_or("");
                    let ts: i64 = h("webhook-timestamp").parse().unwrap_or(0);
                    let want = standard_webhooks_signature(HOOK_SECRET, h("webhook-id"), ts, &body);
                    let fresh = (time::OffsetDateTime::now_utc().unix_timestamp() - ts).abs() < 300;
                    let signed = h("webhook-signature").split(' ').any(|s| s == want);
                    let mut st = state.lock().unwrap();
                    st.0 += 1;
                    if !signed || !fresh || !h("webhook-id").starts_with("msg_") {
                        return StatusCode::UNAUTHORIZED;
                    }
                    if st.0 == 1 {
                        return StatusCode::INTERNAL_SERVER_ERROR;
                    }
                    st.1.push(serde_json::from_str(&body).unwrap());
                    StatusCode::NO_CONTENT
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        Self { url, seen }
    }

    fn attempts(&self) -> u32 {
        self.seen.lock().unwrap().0
    }

    fn delivered(&self) -> u32 {
        self.seen.lock().unwrap().1.len() as u32
    }

    async fn wait_for(&self, kind: &str, timeout: Duration) -> Option<Value> {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if let Some(v) = self
                .seen
                .lock()
                .unwrap()
                .1
                .iter()
                .find(|v| v["type"] == kind)
            {
                return Some(v.clone());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        None
    }
}

/// A target that advertises Bulk but answers 404 to it: the first refused Bulk request
/// turns Bulk off for the rest of the cycle, and every object is created once, one by one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_bulk_request_falls_back_to_single_creates() {
    const N: usize = 250;
    let server = TestServer::start(Backend::Sqlite).await;
    let (_, app_token) = server.tenant("app").await;
    let upstream = format!("{}/t/app/scim/v2", server.root);
    let faults = Faults {
        refuse_bulk: Some(404),
        ..Faults::default()
    };
    let target = FaultTarget::start(&upstream, &app_token, "token-b", faults).await;
    let dir = tempfile::tempdir().unwrap();
    let mut csv = String::from("employee_id,userName,name.givenName,name.familyName\n");
    for i in 0..N {
        csv.push_str(&format!("{i:04},b{i:04}@example.com,B,N{i}\n"));
    }
    std::fs::write(dir.path().join("people.csv"), csv).unwrap();
    let spec = JobSpec::parse(
        &format!(
            "name = \"bulk-refused\"\n[source]\nkind = \"csv\"\npath = \"people.csv\"\nid = \"employee_id\"\n\
             [target]\nurl = \"{}\"\ntoken = \"token-b\"\nrate_limit = 0\nmax_in_flight = 8\n",
            target.url
        ),
        Some(dir.path()),
    )
    .unwrap();
    let key = scim_sync::SyncKey::from_text(&scim_sync::SyncKey::generate()).unwrap();
    let engine = Engine::new(server.store.clone(), Some(key), time::Duration::days(30))
        .with_outbound(scim_net::Policy::allow_local());
    let r = engine.run(&spec, None).await.unwrap();
    assert_eq!(r.status, scim_core::CycleStatus::Completed, "{r:?}");
    assert_eq!(
        r.counts.actions.get(&scim_core::SyncAction::Create),
        Some(&(N as u64)),
        "{r:?}"
    );
    let seen = target.counts();
    // Bulk requests in flight when the first refusal came back are refused too; after
    // that, none is sent (each create alone).
    assert!(
        (1..=8).contains(&seen.bulk_refused),
        "Bulk tried {} times",
        seen.bulk_refused
    );
    assert_eq!(r.counts.requests, seen.bulk_refused + N as u64, "{r:?}");
    let users = target_users(&server, &app_token).await;
    assert_eq!(users.len(), N, "each user once");
    let log = engine
        .log(
            "bulk-refused",
            &scim_core::SyncLogQuery {
                limit: 1,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert!(
        serde_json::to_string(&log[0].steps)
            .unwrap()
            .contains("POST /Users"),
        "{:?}",
        log[0].steps
    );
}

/// Creates in Bulk requests (the target offers Bulk): a fault on one loses the answers
/// of many creates at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cycles_converge_through_a_failing_target() {
    converge_through_faults(100).await;
}

/// Every create alone, as into a target without Bulk.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cycles_converge_through_a_failing_target_one_by_one() {
    converge_through_faults(0).await;
}

async fn converge_through_faults(bulk: usize) {
    let server = TestServer::start(Backend::Sqlite).await;
    let (_, app_token) = server.tenant("app").await;
    let upstream = format!("{}/t/app/scim/v2", server.root);
    let faults = Faults {
        throttle_every: 7,
        unavailable_every: 31,
        error_every: 11,
        slow_every: 29,
        slow_for: Duration::from_millis(1500),
        reset_every: 5,
        reject_user_name: Some("poison@example.com".into()),
        revoke_after: None,
        ..Faults::default()
    };
    let target = FaultTarget::start(&upstream, &app_token, "token-one", faults.clone()).await;
    let smtp = SmtpServer::start();

    let hooks = WebhookReceiver::start().await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("people.csv"), people(1, 0)).unwrap();
    std::fs::write(dir.path().join("hook.secret"), HOOK_SECRET).unwrap();
    let spec_text = format!(
        "name = \"{JOB}\"\n\n[source]\nkind = \"csv\"\npath = \"people.csv\"\nid = \"employee_id\"\ngroups = \"groups\"\n\n\
         [target]\nurl = \"{}\"\ntoken = \"token-one\"\nrate_limit = 0\nmax_in_flight = 8\ntimeout = \"1s\"\nattempts = 4\nbulk = {bulk}\n\n\
         [notify]\nemail = [\"ops@example.com\"]\nwebhook = \"{}\"\nwebhook_secret_file = \"hook.secret\"\n",
        target.url, hooks.url
    );
    let spec = JobSpec::parse(&spec_text, Some(dir.path())).unwrap();

    let now = Arc::new(Mutex::new(Timestamp::now()));
    let clock_now = now.clone();
    let store: Arc<dyn Store> = server.store.clone();
    let key = scim_sync::SyncKey::from_text(&scim_sync::SyncKey::generate()).unwrap();
    let engine = Engine::new(store, Some(key), time::Duration::days(30))
        .with_outbound(scim_net::Policy::allow_local())
        .with_clock(Arc::new(move || *clock_now.lock().unwrap()));
    engine.import(&spec).await.unwrap();
    server
        .store
        .set_job_enabled(JOB, true, Timestamp::now())
        .await
        .unwrap();
    let mut webhook = WebhookNotifier::new(scim_net::Policy::allow_local()).unwrap();
    webhook.backoff = Duration::from_millis(100);
    let mut notifiers: Vec<Arc<dyn Notifier>> = vec![Arc::new(webhook)];
    if let Some(s) = &smtp {
        notifiers.push(Arc::new(SmtpNotifier::new(Arc::new(
            scim_net::Mailer::new(&s.url, "scimd@example.com").unwrap(),
        ))));
    }
    let notifier: Option<Arc<dyn Notifier>> = Some(Arc::new(Notifiers(notifiers)));
    let scheduler = Scheduler {
        engine: engine.clone(),
        node: "fault-test".into(),
        tick: Duration::from_secs(1),
        notifier,
    };

    // 1. The initial cycle through every transient fault.
    let (initial, reports) = converge(&scheduler, &*server.store, &now, "initial").await;
    assert_converged(&server, &app_token, 1, 0).await;
    assert!(
        initial.retries > 0 && initial.throttled > 0,
        "faults were injected"
    );
    let seen = target.counts();
    println!("gateway after the initial cycle: {seen:?}");
    assert!(
        seen.resets > 0 && seen.slowed > 0 && seen.errors > 0 && seen.unavailable > 0,
        "{seen:?}"
    );
    // The refused user is escrowed, not retried every cycle; the others are clean.
    let status = engine.status(JOB).await.unwrap();
    assert_eq!(status.escrowed, 1, "{status:?}");
    assert_eq!(status.abandoned, 0);
    let ledger = server.store.ledger(JOB).await.unwrap();
    // (Not the refused user's: its lost answers are settled only by a lookup of its values.)
    let creating = |e: &&scim_core::LedgerEntry| {
        e.state == scim_core::LedgerState::Creating && e.source_id != POISON_ID
    };
    let left: Vec<_> = ledger.iter().filter(creating).collect();
    assert!(left.is_empty(), "no create intent left behind: {left:#?}");
    let linked = ledger
        .iter()
        .filter(|e| e.kind == scim_core::ResourceKind::User && e.target_id.is_some())
        .count();
    assert_eq!(linked, USERS, "one ledger link per provisioned user");
    let poison = ledger.iter().find(|e| e.source_id == POISON_ID).unwrap();
    let escrow = poison.escrow.unwrap();
    assert!(poison.target_id.is_none());
    // Tried once per cycle whose clock had passed its rung (6 h, then 12 h).
    assert!(escrow.failures >= 1 && escrow.failures as usize <= reports.len());
    assert!(escrow.retry_at > *now.lock().unwrap(), "{escrow:?}");
    if let Some(smtp) = &smtp {
        let m = smtp
            .wait_for("failed to provision", Duration::from_secs(10))
            .await
            .expect("the failure digest was delivered");
        assert!(m.to.contains("ops@example.com"), "{m:?}");
        assert!(m.text.contains("poison@example.com"), "{}", m.text);
    }

    // 2. A cycle with no change sends nothing, and does not retry the escrowed user
    //    before its time.
    let r = scheduler.run_now(JOB, "test").await.unwrap();
    assert_eq!(r.counts.requests, 0, "{r:?}");

    // 3. Changes for everyone (a new familyName, every fifth suspended) through the faults.
    std::fs::write(dir.path().join("people.csv"), people(2, 5)).unwrap();
    let (changes, _) = converge(&scheduler, &*server.store, &now, "changes").await;
    assert_converged(&server, &app_token, 2, 5).await;
    assert!(changes.requests > 0);
    let poison = server.store.ledger(JOB).await.unwrap();
    let poison = poison.iter().find(|e| e.source_id == POISON_ID).unwrap();
    assert!(
        poison.escrow.unwrap().failures >= 2,
        "a source change retries an escrowed object at once"
    );

    // 4. The token is revoked in the middle of a cycle: the cycle stops at the first
    //    refusal, the job is quarantined for its credentials and someone is told.
    std::fs::write(dir.path().join("people.csv"), people(3, 5)).unwrap();
    target.set_faults(Faults {
        revoke_after: Some(target.counts().requests + 40),
        ..faults.clone()
    });
    let r = scheduler.run_now(JOB, "test").await.unwrap();
    assert_eq!(r.status, scim_core::CycleStatus::Stopped, "{r:?}");
    let q = r.quarantine.clone().expect("quarantined");
    assert!(
        q.entered && q.reason == scim_core::QuarantineReason::Credentials,
        "{q:?}"
    );
    let status = engine.status(JOB).await.unwrap();
    assert_eq!(
        status.state,
        scim_sync::engine::JobPhase::Quarantined,
        "{status:?}"
    );
    let refused = target.counts().refused;
    // Stopped at the first refusal: only the requests already in flight (8) were refused.
    assert!(refused <= 8, "{refused} requests refused");
    println!("token revoked: {refused} request(s) refused, then the cycle stopped");
    if let Some(smtp) = &smtp {
        smtp.wait_for("quarantined (credentials)", Duration::from_secs(10))
            .await
            .expect("the quarantine notice was delivered");
    }
    // The same notice reached the webhook, signed, after its first delivery failed.
    let hook = hooks
        .wait_for("sync.quarantine.entered", Duration::from_secs(10))
        .await
        .expect("the quarantine webhook was delivered");
    assert_eq!(hook["data"]["notice"]["reason"], "credentials", "{hook}");
    assert!(
        hooks.attempts() > hooks.delivered(),
        "the first attempt was refused and retried"
    );
    // While quarantined, the next run is a day away.
    let record = server.store.job(JOB).await.unwrap().unwrap();
    let next =
        scim_sync::due::next_run(&spec, record.enabled, &record.state, Timestamp::now()).unwrap();
    assert!(next - Timestamp::now() > time::Duration::hours(23));

    // 5. Reauthorize with the new token: tested, quarantine lifted, and the interrupted
    //    changes all arrive.
    target.accept_token("token-two");
    let checks = engine.reauthorize(JOB, "token-two").await.unwrap();
    assert!(checks.iter().all(|c| c.ok), "{checks:?}");
    assert!(engine.status(JOB).await.unwrap().quarantine.is_none());
    let (resumed, _) = converge(&scheduler, &*server.store, &now, "after reauthorize").await;
    assert_converged(&server, &app_token, 3, 5).await;

    // 6. The app starts refusing every write: the failure share passes the threshold
    //    (at least 5 and 40 %), the job is quarantined for failures, each object escrowed.
    std::fs::write(dir.path().join("people.csv"), people(5, 5)).unwrap();
    target.set_faults(Faults {
        reject_writes: true,
        ..Faults::default()
    });
    let r = scheduler.run_now(JOB, "test").await.unwrap();
    let q = r.quarantine.clone().expect("quarantined for failures");
    assert_eq!(q.reason, scim_core::QuarantineReason::Failures, "{q:?}");
    let status = engine.status(JOB).await.unwrap();
    assert_eq!(status.state, scim_sync::engine::JobPhase::Quarantined);
    assert!(status.escrowed as usize >= USERS / 2, "{status:?}");
    if let Some(smtp) = &smtp {
        smtp.wait_for("quarantined (failures)", Duration::from_secs(10))
            .await
            .expect("the failures quarantine notice was delivered");
    }
    // The app is fixed; once the escrow's first rung has passed, a cycle retries them all,
    // completes and lifts the quarantine (and says so).
    target.set_faults(Faults::default());
    {
        let mut n = now.lock().unwrap();
        *n = *n + time::Duration::hours(7);
    }
    let r = scheduler.run_now(JOB, "test").await.unwrap();
    assert_eq!(r.status, scim_core::CycleStatus::Completed, "{r:?}");
    assert!(engine.status(JOB).await.unwrap().quarantine.is_none());
    assert_converged(&server, &app_token, 5, 5).await;
    if let Some(smtp) = &smtp {
        smtp.wait_for("quarantine lifted", Duration::from_secs(10))
            .await
            .expect("the lifted notice was delivered");
    }
    assert!(
        hooks
            .wait_for("sync.quarantine.lifted", Duration::from_secs(10))
            .await
            .is_some()
    );
    target.set_faults(faults.clone());

    // 7. Everyone enabled again, with a new name: the frozen changes arrive too.
    std::fs::write(dir.path().join("people.csv"), people(6, 0)).unwrap();
    let (enabled, _) = converge(&scheduler, &*server.store, &now, "re-enabled").await;
    assert_converged(&server, &app_token, 6, 0).await;

    // 8. The refused user has failed for 28 days: abandoned, no longer tried, reported.
    {
        let mut n = now.lock().unwrap();
        *n = *n + time::Duration::days(29);
    }
    let before = target.counts().rejected;
    let r = scheduler.run_now(JOB, "test").await.unwrap();
    assert_eq!(
        r.counts.requests, 0,
        "an abandoned object is not retried: {r:?}"
    );
    assert_eq!(target.counts().rejected, before);
    let status = engine.status(JOB).await.unwrap();
    assert_eq!((status.escrowed, status.abandoned), (0, 1), "{status:?}");

    // 9. Half the directory disappears: the breaker holds the deletes and says so.
    target.set_faults(Faults::default());
    std::fs::write(dir.path().join("people.csv"), people_up_to(USERS / 2, 6, 0)).unwrap();
    let r = scheduler.run_now(JOB, "test").await.unwrap();
    assert!(r.breaker.is_some(), "{r:?}");
    assert_eq!(target_users(&server, &app_token).await.len(), USERS);
    let hook = hooks
        .wait_for("sync.breaker.tripped", Duration::from_secs(10))
        .await
        .expect("the breaker webhook was delivered");
    assert_eq!(hook["data"]["job"], JOB);
    if let Some(smtp) = &smtp {
        smtp.wait_for("deletes held for approval", Duration::from_secs(10))
            .await
            .expect("the breaker notice was delivered");
    }

    // 10. A new job against an app that ignores filters: the compliance probe refuses to
    //     start its initial cycle and quarantines it, and someone is told.
    target.set_faults(Faults {
        ignore_filters: true,
        ..Faults::default()
    });
    let probe_spec = JobSpec::parse(
        &spec_text
            .replace(&format!("name = \"{JOB}\""), "name = \"probe\"")
            .replace("token-one", "token-two"),
        Some(dir.path()),
    )
    .unwrap();
    engine.import(&probe_spec).await.unwrap();
    server
        .store
        .set_job_enabled("probe", true, Timestamp::now())
        .await
        .unwrap();
    assert!(
        scheduler.run_now("probe", "test").await.is_none(),
        "the cycle did not run"
    );
    let status = engine.status("probe").await.unwrap();
    assert_eq!(
        status.state,
        scim_sync::engine::JobPhase::Quarantined,
        "{status:?}"
    );
    assert_eq!(
        status.quarantine.as_ref().unwrap().reason,
        scim_core::QuarantineReason::Compliance
    );
    if let Some(smtp) = &smtp {
        smtp.wait_for("quarantined (compliance)", Duration::from_secs(10))
            .await
            .expect("the compliance notice was delivered");
    }
    assert_eq!(
        target_users(&server, &app_token).await.len(),
        USERS,
        "nothing written"
    );

    println!(
        "gateway in all: {:?}; totals: {} requests, {} retries over {} cycles",
        target.counts(),
        initial.requests + changes.requests + resumed.requests + enabled.requests,
        initial.retries + changes.retries + resumed.retries + enabled.retries,
        initial.cycles + changes.cycles + resumed.cycles + enabled.cycles + 2
    );
    drop(target);
    server.finish().await;
}
