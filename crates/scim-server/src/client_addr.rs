//! Who the client is: the TCP peer, or — when the peer is a trusted proxy
//! (`trusted_proxies`) — the address the proxies forwarded (`Forwarded`, RFC 7239, else
//! `X-Forwarded-For`), read from the right past every trusted hop. Headers from any other
//! peer are ignored: a client cannot name its own address. Sign-in throttling and the
//! provisioning log use this address.

use axum::http::HeaderMap;
use ipnet::IpNet;
use std::net::{IpAddr, SocketAddr};

/// The client's address, put in the request's extensions by [`resolve`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientAddr(pub IpAddr);

/// The hops a proxy chain reported, leftmost (the original client) first; `None` for a hop
/// that does not parse (a proxy's `unknown`, an obfuscated name, garbage).
fn forwarded_hops(headers: &HeaderMap) -> Vec<Option<IpAddr>> {
    let forwarded: Vec<&str> = headers
        .get_all("forwarded")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect();
    if !forwarded.is_empty() {
        return forwarded
            .iter()
            .flat_map(|v| v.split(','))
            .map(|element| {
                element
                    .split(';')
                    .filter_map(|pair| pair.split_once('='))
                    .find(|(k, _)| k.trim().eq_ignore_ascii_case("for"))
                    .and_then(|(_, v)| parse_node(v.trim().trim_matches('"')))
            })
            .collect();
    }
    headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|hop| parse_node(hop.trim()))
        .collect()
}

/// `192.0.2.1`, `192.0.2.1:4711`, `[2001:db8::1]`, `[2001:db8::1]:4711`, `2001:db8::1`.
fn parse_node(s: &str) -> Option<IpAddr> {
    if let Ok(ip) = s.parse::<IpAddr>() {
        return Some(ip);
    }
    if let Ok(sa) = s.parse::<SocketAddr>() {
        return Some(sa.ip());
    }
    s.strip_prefix('[')
        .and_then(|r| r.split(']').next())
        .and_then(|ip| ip.parse().ok())
}

/// The client address of a request from `peer`.
pub fn client_ip(peer: IpAddr, headers: &HeaderMap, trusted: &[IpNet]) -> IpAddr {
    let is_trusted = |ip: &IpAddr| trusted.iter().any(|n| n.contains(ip));
    if !is_trusted(&peer) {
        return peer;
    }
    let mut client = peer;
    for hop in forwarded_hops(headers).into_iter().rev() {
        match hop {
            Some(ip) if is_trusted(&ip) => client = ip,
            Some(ip) => return ip,
            // An unreadable hop: the last trusted proxy is as far as is known.
            None => return client,
        }
    }
    client
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, v.parse().unwrap());
        }
        h
    }

    #[test]
    fn forwarded_addresses_count_only_from_trusted_proxies() {
        let trusted: Vec<IpNet> = vec!["10.0.0.0/8".parse().unwrap()];
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        let proxy = ip("10.0.0.2");
        type Case<'a> = (IpAddr, &'a [(&'static str, &'a str)], &'a str);
        let cases: &[Case] = &[
            // A direct client cannot name its own address.
            (
                ip("198.51.100.7"),
                &[("x-forwarded-for", "203.0.113.9")],
                "198.51.100.7",
            ),
            (proxy, &[("x-forwarded-for", "203.0.113.9")], "203.0.113.9"),
            // A client-sent value at the left is skipped: the rightmost untrusted hop wins.
            (
                proxy,
                &[("x-forwarded-for", "1.2.3.4, 203.0.113.9, 10.0.0.3")],
                "203.0.113.9",
            ),
            (
                proxy,
                &[
                    ("x-forwarded-for", "1.2.3.4"),
                    ("x-forwarded-for", "203.0.113.9"),
                ],
                "203.0.113.9",
            ),
            (
                proxy,
                &[(
                    "forwarded",
                    "for=192.0.2.60;proto=https, for=\"[2001:db8::1]:4711\"",
                )],
                "2001:db8::1",
            ),
            (
                proxy,
                &[
                    ("forwarded", "for=unknown"),
                    ("x-forwarded-for", "203.0.113.9"),
                ],
                "10.0.0.2",
            ),
            (
                proxy,
                &[("x-forwarded-for", "garbage, 10.0.0.3")],
                "10.0.0.3",
            ),
            (proxy, &[], "10.0.0.2"),
        ];
        for (peer, h, want) in cases {
            assert_eq!(client_ip(*peer, &headers(h), &trusted), ip(want), "{h:?}");
        }
        assert_eq!(
            client_ip(proxy, &headers(&[("x-forwarded-for", "203.0.113.9")]), &[]),
            proxy,
            "no trusted proxies: the peer"
        );
    }
}
