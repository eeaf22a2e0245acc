//! The Apps pages' rules over HTTP: sign-in first, CSRF on every change, a clear error for a
//! bad form (never a 500, nothing stored), 404 for an unknown app, names escaped, the token
//! never in a page, and the log exports (CSV formula-safe, JSON).

use crate::console_http::{Console, OPERATOR, PASSWORD, operator};
use reqwest::StatusCode;
use scim_core::SyncStore;
use scim_testkit::{Backend, TestServer, both_backends};

pub(crate) async fn post(
    c: &Console,
    path: &str,
    f: Vec<(&'static str, String)>,
) -> (StatusCode, reqwest::header::HeaderMap, String) {
    let pairs: Vec<(&str, &str)> = f.iter().map(|(k, v)| (*k, v.as_str())).collect();
    c.post(path, &pairs).await
}

/// The app page a redirect goes to, without its query (`?created=1`).
pub(crate) fn app_path(h: &reqwest::header::HeaderMap) -> String {
    let to = h["location"].to_str().unwrap();
    to.split('?').next().unwrap().to_string()
}

async fn apps_rules(backend: Backend) {
    let s = TestServer::start(backend).await;
    operator(&s).await;
    let (_, token) = s.tenant("payroll").await;
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("people.csv");
    std::fs::write(
        &csv,
        "employee_id,userName,groups\n1,=HYPERLINK(\"x\")@example.com,Sales\n2,b@example.com,Ops;Sales\n",
    )
    .unwrap();
    let path = csv.display().to_string();
    let mut c = Console::new(&s.root);

    // Signed out: sent to sign in.
    let (st, h, _) = c.get("/console/apps").await;
    assert_eq!(st, StatusCode::SEE_OTHER);
    assert!(
        h["location"]
            .to_str()
            .unwrap()
            .starts_with("/console/login")
    );
    c.sign_in(OPERATOR, PASSWORD).await;

    let url = format!("{}/t/{{tenant-name}}/scim/v2", s.root);
    let form = |name: &'static str, tenant: &'static str| {
        vec![
            ("action", "create"),
            ("name", name),
            ("source_kind", "csv"),
            ("source_path", path.as_str()),
            ("source_id", "employee_id"),
            ("source_groups", "groups"),
            ("target_url", url.as_str()),
            ("target_tenant", tenant),
            ("token", token.as_str()),
        ]
    };
    // No CSRF token: refused, nothing stored.
    let (st, _, _) = c.post("/console/apps/new", &form("HR", "payroll")).await;
    assert_eq!(st, StatusCode::FORBIDDEN);
    assert!(s.store.jobs().await.unwrap().is_empty());
    let with_csrf = |f: Vec<(&'static str, &str)>, csrf: &str| {
        let mut out: Vec<(&'static str, String)> =
            f.into_iter().map(|(k, v)| (k, v.to_string())).collect();
        out.push(("csrf", csrf.to_string()));
        out
    };
    // A placeholder left unfilled: a 400 saying so, nothing stored.
    let (st, _, page) = post(&c, "/console/apps/new", with_csrf(form("HR", ""), &c.csrf)).await;
    assert_eq!(st, StatusCode::BAD_REQUEST, "{page}");
    assert!(page.contains("{tenant-name}"), "{page}");
    assert!(!page.contains(&token), "the token is not echoed");
    assert!(s.store.jobs().await.unwrap().is_empty());
    // A name a job cannot have: said, with the name escaped.
    let (st, _, page) = post(
        &c,
        "/console/apps/new",
        with_csrf(form("<b>HR</b>", "payroll"), &c.csrf),
    )
    .await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
    assert!(page.contains("must be letters, digits"), "{page}");
    assert!(!page.contains("<b>HR</b>"), "escaped: {page}");
    assert!(s.store.jobs().await.unwrap().is_empty());
    // A good form: stored (off); the page never shows the token.
    let (st, h, _) = post(
        &c,
        "/console/apps/new",
        with_csrf(form("HR", "payroll"), &c.csrf),
    )
    .await;
    assert_eq!(st, StatusCode::SEE_OTHER);
    let app = app_path(&h);
    let (st, _, page) = c.get(&app).await;
    assert_eq!(st, StatusCode::OK);
    assert!(!page.contains(&token));
    let jobs = s.store.jobs().await.unwrap();
    assert_eq!(jobs.len(), 1);
    assert!(!jobs[0].enabled);
    assert!(
        !jobs[0].spec.contains(&token),
        "the stored TOML holds no token"
    );
    // The same name again: a conflict, said on the form.
    let (st, _, page) = post(
        &c,
        "/console/apps/new",
        with_csrf(form("HR", "payroll"), &c.csrf),
    )
    .await;
    assert_eq!(st, StatusCode::CONFLICT);
    assert!(page.contains("exists already"));

    // Actions need CSRF; an unknown one is a 400; an unknown app a 404.
    let (st, _, _) = c.post(&app, &[("action", "turn-on")]).await;
    assert_eq!(st, StatusCode::FORBIDDEN);
    assert!(!s.store.jobs().await.unwrap()[0].enabled);
    let (st, _, _) = c
        .post(&app, &[("action", "explode"), ("csrf", &c.csrf)])
        .await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
    let (st, _, _) = c.get("/console/apps/nope").await;
    assert_eq!(st, StatusCode::NOT_FOUND);
    let (st, _, _) = c.get("/console/apps/nope/log").await;
    assert_eq!(st, StatusCode::NOT_FOUND);
    let (st, _, page) = c
        .post(
            &app,
            &[
                ("action", "restart"),
                ("scope", "everything"),
                ("csrf", &c.csrf),
            ],
        )
        .await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
    assert!(page.contains("unknown restart scope"));
    // Mappings: the required userName cannot be removed; a bad expression is refused on
    // save with where it fails; nothing of either is stored.
    let before = s.store.jobs().await.unwrap()[0].spec.clone();
    let mappings = format!("{app}/mappings");
    let (st, _, page) = c
        .post(
            &mappings,
            &[
                ("action", "remove"),
                ("target", "userName"),
                ("csrf", &c.csrf),
            ],
        )
        .await;
    assert_eq!(st, StatusCode::BAD_REQUEST, "{page}");
    assert!(page.contains("userName * is required"), "{page}");
    let (st, _, page) = c
        .post(
            &mappings,
            &[
                ("action", "save"),
                ("target", "title"),
                ("kind", "expression"),
                ("value", "Join(\" \", [userName]"),
                ("csrf", &c.csrf),
            ],
        )
        .await;
    assert_eq!(st, StatusCode::BAD_REQUEST, "{page}");
    assert_eq!(s.store.jobs().await.unwrap()[0].spec, before);
    let (st, _, _) = c
        .post(
            &mappings,
            &[
                ("action", "save"),
                ("target", "title"),
                ("kind", "constant"),
                ("value", "Staff"),
            ],
        )
        .await;
    assert_eq!(st, StatusCode::FORBIDDEN, "CSRF on mapping edits");
    let (st, _, page) = c
        .get(&format!(
            "{mappings}?expression=ToUpper(%5BuserName%5D)&user=2"
        ))
        .await;
    assert_eq!(st, StatusCode::OK);
    assert!(page.contains("B@EXAMPLE.COM"), "{page}");
    // The Preview column's user is picked by name or e-mail too, and says whom it shows.
    let (_, _, page) = c.get(&format!("{mappings}?user=B%40example.com")).await;
    assert!(page.contains("source id <code>2</code>"), "{page}");
    let (_, _, page) = c.get(&format!("{mappings}?user=nobody")).await;
    assert!(
        page.contains("no user with the id, userName or e-mail"),
        "{page}"
    );
    // An edited row keeps its place in the list.
    let order = |page: &str| -> Vec<String> {
        let table = page.split("id=\"mappings\"").nth(1).unwrap();
        let table = table.split("</table>").next().unwrap();
        table
            .split("<code title=\"")
            .skip(1)
            .map(|t| t.split('"').next().unwrap().to_string())
            .collect()
    };
    let (_, _, page) = c.get(&mappings).await;
    let before_edit = order(&page);
    let (st, _, page) = c
        .post(
            &mappings,
            &[
                ("action", "save"),
                ("target", &before_edit[0]),
                ("kind", "expression"),
                ("value", "ToLower([userName])"),
                ("csrf", &c.csrf),
            ],
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{page}");
    assert_eq!(order(&page), before_edit, "{page}");
    assert!(page.contains("ToLower([userName])"), "{page}");
    // Group mappings, Entra's second mapping: displayName is required; an edit is kept in
    // the job's [groups], not the users'.
    let groups = format!("{mappings}?object=groups");
    let (st, _, page) = c.get(&groups).await;
    assert_eq!(st, StatusCode::OK);
    assert!(page.contains("id=\"group-note\""), "{page}");
    assert!(page.contains("title=\"displayName\""), "{page}");
    let edit = |action: &'static str, target: &'static str| {
        vec![
            ("action", action),
            ("object", "groups"),
            ("target", target),
            ("kind", "constant"),
            ("value", "from-hr"),
        ]
    };
    let (st, page) = {
        let mut f = edit("remove", "displayName");
        f.push(("csrf", &c.csrf));
        let (st, _, page) = c.post(&mappings, &f).await;
        (st, page)
    };
    assert_eq!(st, StatusCode::BAD_REQUEST, "{page}");
    assert!(page.contains("displayName * is required"), "{page}");
    let mut f = edit("save", "externalId");
    f.push(("csrf", &c.csrf));
    let (st, _, page) = c.post(&mappings, &f).await;
    assert_eq!(st, StatusCode::OK, "{page}");
    assert!(
        page.contains("id=\"group-note\""),
        "stays on the group mappings: {page}"
    );
    let stored = s.store.jobs().await.unwrap()[0].spec.clone();
    let groups_part = stored.split("[groups]").nth(1).unwrap_or_default();
    assert!(groups_part.contains("from-hr"), "{stored}");
    let (_, _, page) = c.get(&mappings).await;
    assert!(
        !page.contains("from-hr"),
        "the user mappings are untouched: {page}"
    );

    // Scope and time frames: a bad duration or an empty group scope is refused and stores
    // nothing; good edits are stored.
    let scope = format!("{app}/scope");
    let before = s.store.jobs().await.unwrap()[0].spec.clone();
    let frames = |deleted_after: &'static str| {
        vec![
            ("action", "time-frames"),
            ("out_of_scope_action", "disable"),
            ("out_of_scope_after", "0s"),
            ("suspended_action", "disable"),
            ("suspended_after", "0s"),
            ("deleted_action", "disable_then_delete"),
            ("deleted_after", deleted_after),
            ("groups_action", "delete"),
            ("groups_after", "0s"),
        ]
    };
    let (st, _, page) = post(&c, &scope, with_csrf(frames("soon"), &c.csrf)).await;
    assert_eq!(st, StatusCode::BAD_REQUEST, "{page}");
    let (st, _, page) = post(
        &c,
        &scope,
        with_csrf(
            vec![("action", "assignment"), ("assignment", "groups")],
            &c.csrf,
        ),
    )
    .await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
    assert!(page.contains("choose at least one group"), "{page}");
    assert_eq!(s.store.jobs().await.unwrap()[0].spec, before);
    let (st, _, page) = post(&c, &scope, with_csrf(frames("7d"), &c.csrf)).await;
    assert_eq!(st, StatusCode::OK, "{page}");
    assert!(page.contains("time frames saved"));
    let (st, _, _) = post(
        &c,
        &scope,
        with_csrf(
            vec![
                ("action", "add-clause"),
                ("filter", "new"),
                ("attribute", "userName"),
                ("operator", "ENDS_WITH"),
                ("value", "@example.com"),
            ],
            &c.csrf,
        ),
    )
    .await;
    assert_eq!(st, StatusCode::OK);
    let stored = s.store.jobs().await.unwrap()[0].spec.clone();
    assert!(
        stored.contains("7d") && stored.contains("ENDS_WITH"),
        "{stored}"
    );
    // The group picker: a search narrows it; ticks made before a search are kept (not
    // saved) while it hides them; ticking Sales scopes the app to its members.
    let before_search = s.store.jobs().await.unwrap()[0].spec.clone();
    let (st, _, page) = post(
        &c,
        &scope,
        with_csrf(
            vec![
                ("action", "search"),
                ("q", "sal"),
                ("assignment", "groups"),
                ("carried", "1"),
                ("shown", "Ops"),
                ("shown", "Sales"),
                ("group", "Ops"),
            ],
            &c.csrf,
        ),
    )
    .await;
    assert_eq!(st, StatusCode::OK, "{page}");
    assert!(
        page.contains("value=\"Sales\"") && !page.contains("name=\"group\" value=\"Ops\""),
        "{page}"
    );
    assert!(page.contains("name=\"kept\" value=\"Ops\""), "{page}");
    assert!(page.contains("id=\"unsaved\""), "{page}");
    assert_eq!(s.store.jobs().await.unwrap()[0].spec, before_search);
    let (st, _, page) = post(
        &c,
        &scope,
        with_csrf(
            vec![
                ("action", "assignment"),
                ("assignment", "groups"),
                ("carried", "1"),
                ("kept", "Ops"),
                ("shown", "Sales"),
                ("group", "Sales"),
            ],
            &c.csrf,
        ),
    )
    .await;
    assert_eq!(st, StatusCode::OK, "{page}");
    assert!(page.contains("Chosen: Ops, Sales"), "{page}");
    let stored = s.store.jobs().await.unwrap()[0].spec.clone();
    assert!(stored.contains("assignment = \"groups\""), "{stored}");

    // Provisioning an id the source does not have: said, not a 500.
    let (st, _, page) = c
        .post(
            &app,
            &[
                ("action", "provision"),
                ("source_id", "99"),
                ("csrf", &c.csrf),
            ],
        )
        .await;
    assert_eq!(st, StatusCode::NOT_FOUND, "{page}");
    assert!(
        page.contains("no source user matches &#x27;99&#x27;")
            || page.contains("no source user matches '99'")
            || page.contains("no source user matches &#39;99&#39;"),
        "{page}"
    );
    // One user on demand, then the exports.
    let (st, h, _) = c
        .post(
            &app,
            &[
                ("action", "provision"),
                ("source_id", "1"),
                ("csrf", &c.csrf),
            ],
        )
        .await;
    assert_eq!(st, StatusCode::SEE_OTHER);
    assert!(h["location"].to_str().unwrap().contains("/log/"));
    let (st, h, body) = c.get(&format!("{app}/log?format=csv")).await;
    assert_eq!(st, StatusCode::OK);
    assert!(h["content-type"].to_str().unwrap().starts_with("text/csv"));
    assert!(body.starts_with("seq,time,job,cycle_id"), "{body}");
    assert!(body.contains("'=HYPERLINK"), "formula-safe: {body}");
    let (st, _, body) = c.get(&format!("{app}/log?format=json&action=Create")).await;
    assert_eq!(st, StatusCode::OK);
    let rows: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(rows.as_array().unwrap().len(), 1);
    assert_eq!(rows[0]["status"], "Success");
    let (st, _, _) = c.get(&format!("{app}/log/999999")).await;
    assert_eq!(st, StatusCode::NOT_FOUND);

    // Delete: the configuration goes, the user on the target stays.
    let (st, _, _) = c
        .post(&app, &[("action", "delete"), ("csrf", &c.csrf)])
        .await;
    assert_eq!(st, StatusCode::SEE_OTHER);
    assert!(s.store.jobs().await.unwrap().is_empty());
    let (st, _, _) = c.get(&app).await;
    assert_eq!(st, StatusCode::NOT_FOUND);
    s.finish().await;
}

/// A CSV uploaded in the wizard: Test source reads it before anything is stored; the app
/// keeps it in the database (no path on any node); a new export replaces it only if it can
/// be read; deleting the app deletes it.
async fn uploaded_source_file(backend: Backend) {
    let s = TestServer::start(backend).await;
    operator(&s).await;
    let (_, token) = s.tenant("payroll").await;
    let mut c = Console::new(&s.root);
    c.sign_in(OPERATOR, PASSWORD).await;
    let target = format!("{}/t/payroll/scim/v2", s.root);
    let people =
        b"employee_id,userName,groups\n1,ada@example.com,Eng\n2,alan@example.com,Eng;Ops\n";
    let fields = |action: &'static str, csrf: &str| {
        vec![
            ("action", action.to_string()),
            ("name", "HR".to_string()),
            ("source_kind", "upload".into()),
            ("source_id", "employee_id".into()),
            ("source_groups", "groups".into()),
            ("target_url", target.clone()),
            ("token", token.clone()),
            ("csrf", csrf.to_string()),
        ]
    };
    let send = |f: Vec<(&'static str, String)>, file: Option<(&'static str, Vec<u8>)>| {
        let c = &c;
        async move {
            let pairs: Vec<(&str, &str)> = f.iter().map(|(k, v)| (*k, v.as_str())).collect();
            let file = file
                .as_ref()
                .map(|(n, b)| ("source_file", *n, b.as_slice()));
            c.post_multipart("/console/apps/new", &pairs, file).await
        }
    };
    let csrf = c.csrf.clone();

    // Test source reads the file in hand: what it holds, nothing stored.
    let (st, _, page) = send(
        fields("test-source", &csrf),
        Some(("people.csv", people.to_vec())),
    )
    .await;
    assert_eq!(st, StatusCode::OK, "{page}");
    assert!(page.contains("✓ source"), "{page}");
    assert!(page.contains("2 users, 2 groups"), "{page}");
    assert!(s.store.jobs().await.unwrap().is_empty());
    // No file, or not UTF-8: the check says so.
    let (_, _, page) = send(fields("test-source", &csrf), None).await;
    assert!(page.contains("choose the CSV or JSON file"), "{page}");
    let (_, _, page) = send(
        fields("test-source", &csrf),
        Some((
            "latin1.csv",
            b"employee_id,userName\n1,b\xe9a@example.com\n".to_vec(),
        )),
    )
    .await;
    assert!(page.contains("is not UTF-8 text"), "{page}");
    // Without the CSRF field: refused, nothing stored.
    let (st, _, _) = send(fields("create", ""), Some(("people.csv", people.to_vec()))).await;
    assert_eq!(st, StatusCode::FORBIDDEN);
    assert!(s.store.jobs().await.unwrap().is_empty());
    assert!(s.store.source_file("HR").await.unwrap().is_none());

    // Saved: the file is in the database, the job names it and no path.
    let (st, h, page) = send(
        fields("create", &csrf),
        Some(("people.csv", people.to_vec())),
    )
    .await;
    assert_eq!(st, StatusCode::SEE_OTHER, "{page}");
    let app = app_path(&h);
    let stored = s.store.source_file("HR").await.unwrap().unwrap();
    assert_eq!(stored.name, "people.csv");
    assert_eq!(stored.content.as_bytes(), people);
    let spec = s.store.job("HR").await.unwrap().unwrap().spec;
    assert!(spec.contains("upload = \"people.csv\""), "{spec}");
    assert!(!spec.contains("path"), "{spec}");
    let (_, _, page) = c.get(&app).await;
    assert!(page.contains("CSV file uploaded in the console"), "{page}");
    assert!(
        page.contains("id=\"source-file-name\">people.csv<"),
        "{page}"
    );

    // One user on demand, read from the stored file.
    let provision = |id: &'static str| {
        let (c, app) = (&c, app.clone());
        async move {
            c.post(
                &app,
                &[
                    ("action", "provision"),
                    ("source_id", id),
                    ("csrf", &c.csrf),
                ],
            )
            .await
        }
    };
    let (st, _, page) = provision("1").await;
    assert_eq!(st, StatusCode::SEE_OTHER, "{page}");
    let user_names = || async {
        let v: serde_json::Value = reqwest::Client::new()
            .get(format!("{target}/Users"))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let mut names: Vec<String> = v["Resources"]
            .as_array()
            .unwrap()
            .iter()
            .map(|u| u["userName"].as_str().unwrap().to_string())
            .collect();
        names.sort();
        names
    };
    assert_eq!(user_names().await, ["ada@example.com"]);

    // A new export that cannot be read (no id column): refused, the old file kept.
    let upload = |name: &'static str, bytes: &'static [u8]| {
        let (c, app) = (&c, app.clone());
        async move {
            c.post_multipart(
                &app,
                &[("action", "upload"), ("csrf", &c.csrf)],
                Some(("source_file", name, bytes)),
            )
            .await
        }
    };
    let (st, _, page) = upload("broken.csv", b"userName\nada@example.com\n").await;
    assert_eq!(st, StatusCode::BAD_REQUEST, "{page}");
    assert!(page.contains("was not stored"), "{page}");
    assert!(page.contains("no value in the id column"), "{page}");
    assert_eq!(
        s.store
            .source_file("HR")
            .await
            .unwrap()
            .unwrap()
            .content
            .as_bytes(),
        people
    );
    // A good one: stored, and the next provisioning reads it.
    let (st, _, page) = upload(
        "people-2.csv",
        b"employee_id,userName,groups\n1,ada.lovelace@example.com,Eng\n",
    )
    .await;
    assert_eq!(st, StatusCode::OK, "{page}");
    assert!(page.contains("people-2.csv stored"), "{page}");
    assert!(
        page.contains("id=\"source-file-name\">people-2.csv<"),
        "{page}"
    );
    let (st, _, page) = provision("1").await;
    assert_eq!(st, StatusCode::SEE_OTHER, "{page}");
    assert_eq!(user_names().await, ["ada.lovelace@example.com"]);

    // Deleting the app deletes its file; the user on the target stays.
    let (st, _, _) = c
        .post(&app, &[("action", "delete"), ("csrf", &c.csrf)])
        .await;
    assert_eq!(st, StatusCode::SEE_OTHER);
    assert!(s.store.source_file("HR").await.unwrap().is_none());
    assert_eq!(user_names().await, ["ada.lovelace@example.com"]);
    s.finish().await;
}

both_backends! {
    apps_rules => super::apps_rules;
    uploaded_source_file => super::uploaded_source_file;
}
