//! New app's source step for a CSV export, over HTTP (issue #36 item 2): Test source lists
//! the file's columns and what each becomes, offers them as the id, groups and status
//! pickers filled with the ones they look like, counts the suspended people and shows the
//! first rows; saving with people marked suspended and no status column chosen is refused
//! (they were provisioned as active); the template CSV downloads. On SQLite and PostgreSQL.

use crate::console_http::{Console, OPERATOR, PASSWORD, operator};
use reqwest::StatusCode;
use scim_core::SyncStore;
use scim_testkit::{Backend, TestServer, both_backends};

const EXPORT: &str = "Employee ID,userName,displayName,Status,Groups,Shoe size\n\
1001,ada@example.com,Ada Lovelace,active,Eng;Research,38\n\
1002,grace@example.com,Grace Hopper,suspended,Eng,40\n\
1003,alan@example.com,Alan Turing,Active,,44\n";

/// The `<option>` selected in the `<select id=…>` of `page`.
fn selected(page: &str, id: &str) -> Option<String> {
    let select = page.split(&format!("<select id=\"{id}\"")).nth(1)?;
    let select = select.split("</select>").next()?;
    let option = select.split("<option").find(|o| o.contains(" selected>"))?;
    let value = option.split("value=\"").nth(1)?.split('"').next()?;
    Some(value.to_string())
}

async fn source_step(backend: Backend) {
    let s = TestServer::start(backend).await;
    operator(&s).await;
    let (_, token) = s.tenant("payroll").await;
    let mut c = Console::new(&s.root);
    // Signed out: the template is a console page like the others.
    let (st, _, _) = c.get("/console/apps/new/template.csv").await;
    assert_ne!(st, StatusCode::OK);
    c.sign_in(OPERATOR, PASSWORD).await;
    let target = format!("{}/t/payroll/scim/v2", s.root);
    let send = |action: &'static str, picks: [&'static str; 3], file: &'static str| {
        let c = &c;
        let target = target.clone();
        let token = token.clone();
        async move {
            let form = [
                ("action", action),
                ("name", "HR"),
                ("source_kind", "upload"),
                ("source_id", picks[0]),
                ("source_groups", picks[1]),
                ("source_status", picks[2]),
                ("target_url", target.as_str()),
                ("token", token.as_str()),
                ("csrf", c.csrf.as_str()),
            ];
            let file = Some(("source_file", "people.csv", file.as_bytes()));
            c.post_multipart("/console/apps/new", &form, file).await
        }
    };

    // Nothing chosen yet: Test source finds the id, groups and status columns.
    let (st, _, page) = send("test-source", ["", "", ""], EXPORT).await;
    assert_eq!(st, StatusCode::OK, "{page}");
    assert!(page.contains("✓ source"), "{page}");
    assert!(
        page.contains("3 users, 2 groups (1 users suspended)"),
        "{page}"
    );
    assert_eq!(selected(&page, "source-id").as_deref(), Some("Employee ID"));
    assert_eq!(selected(&page, "source-groups").as_deref(), Some("Groups"));
    assert_eq!(selected(&page, "source-status").as_deref(), Some("Status"));
    let table = page.split("id=\"detected-columns\"").nth(1).unwrap();
    let table = table.split("</table>").next().unwrap();
    for want in [
        "3 people, 6 columns",
        "id (each person",
        "status: 1 suspended, 2 active",
        "→ userName",
        "→ displayName",
        "not used (map it",
        "active · suspended · Active",
    ] {
        assert!(
            page.contains(want) || table.contains(want),
            "{want}: {table}"
        );
    }
    assert!(page.contains("id=\"sample-rows\""), "{page}");
    assert!(page.contains("Grace Hopper"), "{page}");
    assert!(
        s.store.jobs().await.unwrap().is_empty(),
        "Test source stores nothing"
    );

    // A choice stays a choice: no status column, and the file's suspended person is named.
    let (_, _, page) = send("test-source", ["Employee ID", "(none)", "(none)"], EXPORT).await;
    assert_eq!(
        selected(&page, "source-status"),
        None,
        "(none) is the first option"
    );
    assert!(page.contains("3 users, 0 groups"), "{page}");
    assert!(
        page.contains("column &#39;Status&#39; marks 1 of 3 people suspended"),
        "{page}"
    );
    // A column that is not in the file stays in its picker, marked.
    let (_, _, page) = send("test-source", ["emp_no", "", ""], EXPORT).await;
    assert!(page.contains("emp_no (not in the file)"), "{page}");
    assert!(page.contains("✗ source"), "{page}");
    // No column looks like an id: the columns are still listed, the id left to choose.
    let (_, _, page) = send("test-source", ["", "", ""], "name,dept\nAda,R&D\n").await;
    assert!(page.contains("id=\"detected-columns\""), "{page}");
    assert!(page.contains("source.id"), "{page}");
    assert_eq!(selected(&page, "source-id"), None);

    // Saved without choosing: refused while the file marks people suspended.
    let (st, _, page) = send("create", ["Employee ID", "Groups", ""], EXPORT).await;
    assert_eq!(st, StatusCode::BAD_REQUEST, "{page}");
    assert!(page.contains("marks 1 of 3 people suspended"), "{page}");
    assert!(s.store.jobs().await.unwrap().is_empty());
    let (st, _, page) = send("create", ["Employee ID", "Groups", "Status"], EXPORT).await;
    assert_eq!(st, StatusCode::SEE_OTHER, "{page}");
    let spec = s.store.job("HR").await.unwrap().unwrap().spec;
    assert!(spec.contains("status = \"Status\""), "{spec}");
    assert!(spec.contains("groups = \"Groups\""), "{spec}");

    // The template: what the default mappings read, ready to fill in.
    let (st, h, body) = c.get("/console/apps/new/template.csv").await;
    assert_eq!(st, StatusCode::OK);
    assert!(h["content-type"].to_str().unwrap().starts_with("text/csv"));
    assert!(
        h["content-disposition"]
            .to_str()
            .unwrap()
            .contains("scimd-people-template.csv")
    );
    assert!(body.starts_with("employee_id,userName,"), "{body}");
    s.finish().await;
}

both_backends! {
    new_app_source_step => super::source_step;
}
