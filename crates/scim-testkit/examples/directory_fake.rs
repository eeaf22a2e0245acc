//! The Google Workspace and Entra ID emulators as a process, for `scripts/directory-bench.sh`:
//! a generated directory of `users` users and `groups` groups of `members` members each.
//!
//! ```text
//! directory_fake google|entra USERS GROUPS MEMBERS WORKDIR [PER_MINUTE]
//! ```
//! Writes `WORKDIR/fake.url` (and `WORKDIR/sa.json`, the Google key file) once it listens,
//! then reads commands on stdin, one per line:
//! - `change N`: N users get a new job title;
//! - `counts`: prints the requests it answered so far (and those throttled).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test tool

use scim_testkit::{entra, google};
use serde_json::json;
use tokio::io::AsyncBufReadExt;

enum Fake {
    Google(google::GoogleFake),
    Entra(entra::EntraFake),
}

fn arg<T: std::str::FromStr>(args: &[String], i: usize, what: &str) -> T {
    args.get(i).and_then(|a| a.parse().ok()).unwrap_or_else(|| {
        panic!(
            "usage: directory_fake google|entra USERS GROUPS MEMBERS WORKDIR [PER_MINUTE] ({what})"
        )
    })
}

async fn google_fake(users: usize, groups: usize, members: usize, per_minute: usize) -> Fake {
    let mut d = google::Directory::default();
    for i in 0..users {
        d.add_user(
            &format!("1{i:020}"),
            &format!("u{i}@example.com"),
            "Given",
            &format!("Family{i}"),
        );
    }
    for g in 0..groups {
        let id = format!("g{g:08}");
        d.add_group(&id, &format!("group{g}@example.com"), &format!("Group {g}"));
        for k in 0..members {
            d.add_member(&id, &format!("1{:020}", (g * members + k) % users), "USER");
        }
    }
    let fake = google::GoogleFake::start(d).await;
    fake.set_faults(google::GoogleFaults {
        per_minute,
        ..google::GoogleFaults::default()
    });
    Fake::Google(fake)
}

async fn entra_fake(users: usize, groups: usize, members: usize) -> Fake {
    let mut d = entra::Directory::default();
    for i in 0..users {
        d.add_user(
            &format!("u{i:08}"),
            &format!("u{i}@contoso.com"),
            "Given",
            &format!("Family{i}"),
        );
    }
    for g in 0..groups {
        let id = format!("g{g:08}");
        d.add_group(&id, &format!("Group {g}"));
        for k in 0..members {
            d.add_member(&id, &format!("u{:08}", (g * members + k) % users), false);
        }
    }
    let fake = entra::EntraFake::start(d).await;
    fake.set_faults(entra::EntraFaults {
        page_size: 200,
        members_per_page: 100,
        ..entra::EntraFaults::default()
    });
    Fake::Entra(fake)
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let kind: String = arg(&args, 1, "kind");
    let (users, groups, members): (usize, usize, usize) = (
        arg(&args, 2, "USERS"),
        arg(&args, 3, "GROUPS"),
        arg(&args, 4, "MEMBERS"),
    );
    let work = std::path::PathBuf::from(arg::<String>(&args, 5, "WORKDIR"));
    let per_minute: usize = args.get(6).and_then(|a| a.parse().ok()).unwrap_or(0);
    let fake = match kind.as_str() {
        "google" => google_fake(users, groups, members, per_minute).await,
        "entra" => entra_fake(users, groups, members).await,
        other => panic!("unknown kind {other}"),
    };
    let url = match &fake {
        Fake::Google(f) => {
            std::fs::write(work.join("sa.json"), f.key_file()).unwrap();
            f.url.clone()
        }
        Fake::Entra(f) => f.url.clone(),
    };
    std::fs::write(work.join("fake.url"), &url).unwrap();
    let mut lines = tokio::io::BufReader::new(tokio::io::stdin()).lines();
    let mut round = 0;
    while let Ok(Some(line)) = lines.next_line().await {
        let words: Vec<&str> = line.split_whitespace().collect();
        match words.as_slice() {
            ["change", n] => {
                round += 1;
                let n: usize = n.parse().unwrap_or(0);
                let title = json!(format!("Title {round}"));
                match &fake {
                    Fake::Google(f) => f.change(|d| {
                        for u in d.users.iter_mut().take(n) {
                            u["organizations"] = json!([{"title": title, "primary": true}]);
                        }
                    }),
                    Fake::Entra(f) => f.change(|d| {
                        for i in 0..n.min(users) {
                            d.user_mut(&format!("u{i:08}"))["jobTitle"] = title.clone();
                        }
                    }),
                }
                println!("changed {n}");
            }
            ["counts"] => match &fake {
                Fake::Google(f) => {
                    let c = f.counts();
                    println!(
                        "requests {} throttled {} tokens {}",
                        c.requests, c.throttled, c.tokens
                    );
                }
                Fake::Entra(f) => {
                    let c = f.counts();
                    println!(
                        "requests {} throttled {} tokens {}",
                        c.requests, c.throttled, c.tokens
                    );
                }
            },
            _ => println!("unknown command: {line}"),
        }
    }
}
