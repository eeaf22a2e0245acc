//! The policy's client against real servers on loopback: redirects to another origin are not
//! followed (a target cannot bounce a request, or a 307's body, elsewhere); those within the
//! origin are; answers are read up to the limit only; a name resolving to a refused address
//! gets no connection.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A server answering every request with `answer(path)`; counts requests.
async fn serve(answer: fn(&str, u16) -> Vec<u8>) -> (u16, Arc<AtomicUsize>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let hits = Arc::new(AtomicUsize::new(0));
    let counted = hits.clone();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            let counted = counted.clone();
            tokio::spawn(async move {
                let mut buf = vec![0u8; 8192];
                let n = s.read(&mut buf).await.unwrap_or(0);
                let head = String::from_utf8_lossy(&buf[..n]).to_string();
                let path = head.split_whitespace().nth(1).unwrap_or("/").to_string();
                counted.fetch_add(1, Ordering::SeqCst);
                let _ = s.write_all(&answer(&path, port)).await;
                let _ = s.shutdown().await;
            });
        }
    });
    (port, hits)
}

fn ok() -> Vec<u8> {
    b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok".to_vec()
}

#[tokio::test]
async fn redirects_stay_within_the_origin() {
    let (other, other_hits) = serve(|_, _| ok()).await;
    static OTHER: AtomicUsize = AtomicUsize::new(0);
    OTHER.store(other as usize, Ordering::SeqCst);
    let (port, _) = serve(|path, port| match path {
        "/elsewhere" => format!(
            "HTTP/1.1 307 Temporary Redirect\r\nLocation: http://127.0.0.1:{}/stolen\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
            OTHER.load(Ordering::SeqCst)
        )
        .into_bytes(),
        "/here" => format!(
            "HTTP/1.1 308 Permanent Redirect\r\nLocation: http://127.0.0.1:{port}/there\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
        )
        .into_bytes(),
        _ => ok(),
    })
    .await;
    let client = scim_net::builder(&scim_net::Policy::allow_local())
        .build()
        .unwrap();
    let r = client
        .post(format!("http://127.0.0.1:{port}/elsewhere"))
        .body("a body that must not travel")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 307, "not followed");
    assert_eq!(other_hits.load(Ordering::SeqCst), 0);
    let r = client
        .post(format!("http://127.0.0.1:{port}/here"))
        .body("x")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200, "followed within the origin");
}

#[tokio::test]
async fn answers_are_read_up_to_the_limit_only() {
    let (streamed, _) = serve(|_, _| {
        // 8 MiB of whitespace, no length: read as it streams.
        let mut v = b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n".to_vec();
        v.extend(std::iter::repeat_n(b' ', 8 << 20));
        v
    })
    .await;
    let (declared, _) = serve(|_, _| {
        b"HTTP/1.1 200 OK\r\nContent-Length: 1073741824\r\nConnection: close\r\n\r\n".to_vec()
    })
    .await;
    let client = scim_net::builder(&scim_net::Policy::allow_local())
        .build()
        .unwrap();
    for port in [streamed, declared] {
        let r = client
            .get(format!("http://127.0.0.1:{port}/"))
            .send()
            .await
            .unwrap();
        match scim_net::read_capped(r, 1 << 20).await {
            Err(scim_net::ReadError::TooLarge { limit }) => assert_eq!(limit, 1 << 20),
            other => panic!("{:?}", other.map(|b| b.len())),
        }
    }
}

#[tokio::test]
async fn a_name_that_resolves_to_a_refused_address_gets_no_connection() {
    let (port, hits) = serve(|_, _| ok()).await;
    let client = scim_net::builder(&scim_net::Policy::default())
        .build()
        .unwrap();
    // `localhost` is refused by its name; `ip6-localhost` (in Debian's /etc/hosts) by the
    // address it resolves to, at connect time. Neither is connected to.
    for name in ["localhost", "ip6-localhost"] {
        let Err(e) = client.get(format!("http://{name}:{port}/")).send().await else {
            panic!("{name} was reached");
        };
        if let Some(r) = scim_net::refusal_in(&e) {
            assert_eq!(r.class, scim_net::Class::Loopback, "{name}");
        }
    }
    assert_eq!(hits.load(Ordering::SeqCst), 0);
}
