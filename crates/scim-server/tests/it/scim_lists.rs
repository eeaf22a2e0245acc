//! Listing: filters (SQL pushdown and in-memory fallback agree), sorting, index and cursor
//! pagination, `.search`, projection, and the discovery endpoints.

use scim_core::ResourceKind;
use scim_proto::schema::standard_view as view_of;
use scim_testkit::{Backend, TestServer};
use serde_json::{Value, json};

async fn seed(s: &TestServer) -> Vec<Value> {
    let titles = ["Engineer", "Manager", "", "engineer"];
    let mut out = Vec::new();
    for i in 0..23 {
        let mut u = json!({
            "userName": format!("user{i:02}@{}", if i % 3 == 0 { "example.com" } else { "example.org" }),
            "externalId": format!("ext-{}", 23 - i),
            "active": i % 4 != 0,
            "emails": [{"value": format!("U{i}@Mail.test"), "type": if i % 2 == 0 { "work" } else { "home" }}],
            "name": {"familyName": format!("Fam{}", i % 5), "givenName": format!("G{i}")},
        });
        if !titles[i % 4].is_empty() {
            u["title"] = json!(titles[i % 4]);
        }
        if i % 5 == 0 {
            u["displayName"] = json!(format!("Display {i}"));
        }
        let r = s.post("/Users", u).await;
        assert_eq!(r.status, 201, "{}", r.body);
        out.push(r.body);
    }
    out
}

fn ids(v: &Value) -> Vec<String> {
    v["Resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap().to_string())
        .collect()
}

const FILTERS: &[&str] = &[
    r#"userName eq "USER03@example.com""#,
    r#"userName sw "user1""#,
    r#"userName ew "example.com""#,
    r#"userName co "er2""#,
    r#"userName gt "user15@example.org""#,
    r#"userName ne "user00@example.com""#,
    r#"externalId eq "ext-5""#,
    r#"externalId pr"#,
    r#"active eq true"#,
    r#"active ne true"#,
    r#"emails.value eq "u7@mail.TEST""#,
    r#"emails co "@mail""#,
    r#"emails[value sw "u1"]"#,
    r#"emails[type eq "work"]"#,
    r#"emails[type eq "work" and value co "2"]"#,
    r#"title eq "engineer""#,
    r#"title pr and active eq false"#,
    r#"not (title pr) or userName sw "user2""#,
    r#"name.familyName eq "fam3""#,
    r#"displayName pr"#,
    r#"displayName sw "display 1""#,
    r#"(userName sw "user0" or userName sw "user1") and not (active eq false)"#,
    r#"meta.created gt "2000-01-01T00:00:00Z""#,
    r#"meta.lastModified lt "2000-01-01T00:00:00Z""#,
    r#"id eq "nope""#,
    r#"userName sw "user" and title eq "Manager""#,
];

async fn filters_agree_with_the_evaluator(backend: Backend) {
    let s = TestServer::start(backend).await;
    let all = seed(&s).await;
    let view = view_of(ResourceKind::User);
    for f in FILTERS {
        let parsed = scim_proto::filter::parse(f).unwrap();
        let mut expected: Vec<String> = all
            .iter()
            .filter(|u| parsed.matches(&view, u))
            .map(|u| u["id"].as_str().unwrap().to_string())
            .collect();
        expected.sort();
        let r = s
            .get(&format!("/Users?count=1000&filter={}", urlencode(f)))
            .await;
        assert_eq!(r.status, 200, "{f}: {}", r.body);
        let mut got = ids(&r.body);
        got.sort();
        assert_eq!(got, expected, "filter {f}");
        assert_eq!(r.body["totalResults"], expected.len(), "{f}");
    }
    s.finish().await;
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            b' ' => "+".to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

async fn paging_sorting_and_cursors(backend: Backend) {
    let s = TestServer::start(backend).await;
    let all = seed(&s).await;
    let created: Vec<String> = all
        .iter()
        .map(|u| u["id"].as_str().unwrap().to_string())
        .collect();
    // Index pagination in a stable order (creation order by default).
    let mut seen = Vec::new();
    let mut start = 1;
    loop {
        let r = s.get(&format!("/Users?startIndex={start}&count=5")).await;
        assert_eq!(r.body["totalResults"], 23);
        assert_eq!(r.body["startIndex"], start);
        let page = ids(&r.body);
        assert_eq!(r.body["itemsPerPage"], page.len());
        if page.is_empty() {
            break;
        }
        seen.extend(page);
        start += 5;
    }
    assert_eq!(seen, created);
    // count=0 gives only the total; startIndex<1 is 1; negative count is 0.
    let r = s.get("/Users?count=0").await;
    assert_eq!(
        (
            r.body["totalResults"].as_u64(),
            r.body["itemsPerPage"].as_u64()
        ),
        (Some(23), Some(0))
    );
    assert_eq!(
        ids(&s.get("/Users?startIndex=-4&count=2").await.body),
        created[..2]
    );
    assert_eq!(ids(&s.get("/Users?count=-1").await.body).len(), 0);
    assert_eq!(ids(&s.get("/Users?startIndex=100").await.body).len(), 0);
    // Sorting: SQL column (userName) and in-memory (name.familyName), both directions.
    let mut by_name: Vec<(String, String)> = all
        .iter()
        .map(|u| {
            (
                u["userName"].as_str().unwrap().to_lowercase(),
                u["id"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    by_name.sort();
    let asc: Vec<String> = by_name.iter().map(|x| x.1.clone()).collect();
    assert_eq!(
        ids(&s.get("/Users?sortBy=userName&count=100").await.body),
        asc
    );
    let desc: Vec<String> = asc.iter().rev().cloned().collect();
    assert_eq!(
        ids(&s
            .get("/Users?sortBy=userName&sortOrder=descending&count=100")
            .await
            .body),
        desc
    );
    let fams: Vec<String> =
        s.get("/Users?sortBy=name.familyName&count=100").await.body["Resources"]
            .as_array()
            .unwrap()
            .iter()
            .map(|u| u["name"]["familyName"].as_str().unwrap().to_string())
            .collect();
    let mut sorted = fams.clone();
    sorted.sort();
    assert_eq!(fams, sorted);
    // Titles are missing on some users: those sort last.
    let titles: Vec<Option<String>> = s
        .get("/Users?sortBy=title&sortOrder=descending&count=100")
        .await
        .body["Resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["title"].as_str().map(str::to_string))
        .collect();
    let first_none = titles.iter().position(Option::is_none).unwrap();
    assert!(
        titles[first_none..].iter().all(Option::is_none),
        "{titles:?}"
    );
    // Cursor pagination (RFC 9865): walk everything, default order and sorted order.
    for extra in ["", "&sortBy=userName", "&filter=title+pr"] {
        let mut cursor = String::new();
        let mut walked = Vec::new();
        loop {
            let r = s
                .get(&format!("/Users?count=4&cursor={cursor}{extra}"))
                .await;
            assert_eq!(r.status, 200, "{}", r.body);
            assert!(r.body.get("startIndex").is_none());
            walked.extend(ids(&r.body));
            match r.body.get("nextCursor").and_then(Value::as_str) {
                Some(c) => cursor = c.to_string(),
                None => break,
            }
        }
        let expected = s.get(&format!("/Users?count=100{extra}")).await;
        assert_eq!(walked, ids(&expected.body), "cursor walk {extra}");
    }
    s.get("/Users?cursor=zzz")
        .await
        .assert_error(400, Some("invalidCursor"));
    // .search with a SearchRequest body equals the GET.
    let r = s
        .post("/Users/.search", json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:SearchRequest"],
                                       "filter": "userName sw \"user1\"", "attributes": ["userName"],
                                       "sortBy": "userName", "startIndex": 1, "count": 3}))
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["totalResults"], 10);
    assert_eq!(
        r.body["Resources"][0],
        json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "id": r.body["Resources"][0]["id"], "userName": "user10@example.org"})
    );
    // Root .search spans Users then Groups.
    let g = s
        .post("/Groups", json!({"displayName": "user-ish group"}))
        .await;
    assert_eq!(g.status, 201);
    let r = s
        .post(
            "/.search",
            json!({"filter": "displayName pr", "startIndex": 1, "count": 100}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let with_display = all
        .iter()
        .filter(|u| u.get("displayName").is_some())
        .count();
    assert_eq!(r.body["totalResults"], with_display + 1);
    let last = r.body["Resources"]
        .as_array()
        .unwrap()
        .last()
        .unwrap()
        .clone();
    assert_eq!(last["meta"]["resourceType"], "Group");
    let r = s
        .post(
            "/.search",
            json!({"filter": "userName sw \"user0\"", "count": 3, "startIndex": 2}),
        )
        .await;
    assert_eq!(r.body["totalResults"], 10);
    assert_eq!(r.body["itemsPerPage"], 3);
    s.post("/.search", json!({"sortBy": "userName"}))
        .await
        .assert_error(400, Some("invalidValue"));
    s.post("/.search", json!({"filter": "nosuch eq 1"}))
        .await
        .assert_error(400, Some("invalidFilter"));
    // Projection on lists and single GETs.
    let r = s
        .get("/Users?attributes=userName,emails.value&count=1")
        .await;
    let u = &r.body["Resources"][0];
    assert!(u.get("meta").is_none() && u.get("active").is_none());
    assert_eq!(u["emails"][0].as_object().unwrap().len(), 1);
    s.finish().await;
}

async fn discovery_documents(backend: Backend) {
    let s = TestServer::start(backend).await;
    let spc = s.get("/ServiceProviderConfig").await;
    assert_eq!(spc.status, 200);
    assert_eq!(spc.body["patch"]["supported"], true);
    assert_eq!(spc.body["bulk"]["supported"], true);
    assert_eq!(spc.body["bulk"]["maxOperations"], 1000);
    assert_eq!(spc.body["filter"]["maxResults"], 1000);
    assert_eq!(spc.body["etag"]["supported"], true);
    assert_eq!(spc.body["pagination"]["cursor"], true);
    assert_eq!(
        spc.body["authenticationSchemes"][0]["type"],
        "oauthbearertoken"
    );
    let rts = s.get("/ResourceTypes").await;
    assert_eq!(rts.body["Resources"][0]["endpoint"], "/Users");
    assert_eq!(rts.body["totalResults"], 2);
    assert_eq!(
        s.get("/ResourceTypes/Group").await.body["endpoint"],
        "/Groups"
    );
    s.get("/ResourceTypes/Device").await.assert_error(404, None);
    let schemas = s.get("/Schemas").await;
    assert_eq!(schemas.body["totalResults"], 3);
    assert!(schemas.body.to_string().contains("User Account"));
    let u = s
        .get("/Schemas/urn:ietf:params:scim:schemas:core:2.0:User")
        .await;
    assert_eq!(u.body["name"], "User");
    s.finish().await;
}

scim_testkit::both_backends! {
    filter_equivalence => super::filters_agree_with_the_evaluator;
    paging_and_sorting => super::paging_sorting_and_cursors;
    discovery => super::discovery_documents;
}
