//! Who the client is: the TCP peer, or — when the peer is a trusted proxy
//! (`trusted_proxies`) — the address the proxies forwarded in the one header they write
//! (`forwarded_header`: `X-Forwarded-For` by default, or RFC 7239's `Forwarded`), read from
//! the right past every trusted hop. Headers from any other
//! peer are ignored: a client cannot name its own address. Sign-in throttling and the
//! provisioning log use this address.

use axum::http::HeaderMap;
use ipnet::IpNet;
use std::net::{IpAddr, SocketAddr};

/// The client's address, put in the request's extensions by [`resolve`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientAddr(pub IpAddr);

/// Which header the trusted proxies write (`forwarded_header`). Only that one is read: a
/// proxy passes the other on from the client unchanged, so reading both would let a client
/// name its own address.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum ForwardedHeader {
    /// `X-Forwarded-For` (nginx, HAProxy, AWS ALB, Traefik, Caddy).
    #[default]
    XForwardedFor,
    /// `Forwarded` (RFC 7239).
    Forwarded,
}

impl ForwardedHeader {
    pub fn parse(s: &str) -> Option<Self> {
        match s.trim().to_ascii_lowercase().as_str() {
            "x-forwarded-for" => Some(Self::XForwardedFor),
            "forwarded" => Some(Self::Forwarded),
            _ => None,
        }
    }
}

/// The hops a proxy chain reported in `which`, leftmost (the original client) first; `None`
/// for a hop that does not parse (a proxy's `unknown`, an obfuscated name, garbage).
fn forwarded_hops(headers: &HeaderMap, which: ForwardedHeader) -> Vec<Option<IpAddr>> {
    let values = |name: &str| -> Vec<String> {
        headers
            .get_all(name)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .map(str::to_string)
            .collect()
    };
    match which {
        ForwardedHeader::Forwarded => values("forwarded")
            .iter()
            .flat_map(|v| v.split(',').map(str::to_string).collect::<Vec<_>>())
            .map(|element| {
                element
                    .split(';')
                    .filter_map(|pair| pair.split_once('='))
                    .find(|(k, _)| k.trim().eq_ignore_ascii_case("for"))
                    .and_then(|(_, v)| parse_node(v.trim().trim_matches('"')))
            })
            .collect(),
        ForwardedHeader::XForwardedFor => values("x-forwarded-for")
            .iter()
            .flat_map(|v| v.split(',').map(str::to_string).collect::<Vec<_>>())
            .map(|hop| parse_node(hop.trim()))
            .collect(),
    }
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
pub fn client_ip(
    peer: IpAddr,
    headers: &HeaderMap,
    trusted: &[IpNet],
    which: ForwardedHeader,
) -> IpAddr {
    let is_trusted = |ip: &IpAddr| trusted.iter().any(|n| n.contains(ip));
    if !is_trusted(&peer) {
        return peer;
    }
    let mut client = peer;
    for hop in forwarded_hops(headers, which).into_iter().rev() {
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
        use ForwardedHeader::{Forwarded, XForwardedFor};
        let trusted: Vec<IpNet> = vec!["10.0.0.0/8".parse().unwrap()];
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        let proxy = ip("10.0.0.2");
        let xff = |v: &'static str| vec![("x-forwarded-for", v)];
        type Case<'a> = (
            IpAddr,
            Vec<(&'static str, &'a str)>,
            ForwardedHeader,
            &'a str,
        );
        let cases: Vec<Case> = vec![
            // A direct client cannot name its own address.
            (
                ip("198.51.100.7"),
                xff("203.0.113.9"),
                XForwardedFor,
                "198.51.100.7",
            ),
            (proxy, xff("203.0.113.9"), XForwardedFor, "203.0.113.9"),
            // A client-sent value at the left is skipped: the rightmost untrusted hop wins.
            (
                proxy,
                xff("1.2.3.4, 203.0.113.9, 10.0.0.3"),
                XForwardedFor,
                "203.0.113.9",
            ),
            (
                proxy,
                vec![
                    ("x-forwarded-for", "1.2.3.4"),
                    ("x-forwarded-for", "203.0.113.9"),
                ],
                XForwardedFor,
                "203.0.113.9",
            ),
            // Only the configured header counts: a client's own `Forwarded` passed on by
            // an X-Forwarded-For proxy changes nothing.
            (
                proxy,
                vec![
                    ("forwarded", "for=1.2.3.4"),
                    ("x-forwarded-for", "203.0.113.9"),
                ],
                XForwardedFor,
                "203.0.113.9",
            ),
            (
                proxy,
                vec![(
                    "forwarded",
                    "for=192.0.2.60;proto=https, for=\"[2001:db8::1]:4711\"",
                )],
                Forwarded,
                "2001:db8::1",
            ),
            (
                proxy,
                vec![
                    ("forwarded", "for=unknown"),
                    ("x-forwarded-for", "203.0.113.9"),
                ],
                Forwarded,
                "10.0.0.2",
            ),
            (proxy, xff("garbage, 10.0.0.3"), XForwardedFor, "10.0.0.3"),
            (proxy, vec![], XForwardedFor, "10.0.0.2"),
        ];
        for (peer, h, which, want) in cases {
            assert_eq!(
                client_ip(peer, &headers(&h), &trusted, which),
                ip(want),
                "{h:?}"
            );
        }
        assert_eq!(
            client_ip(proxy, &headers(&xff("203.0.113.9")), &[], XForwardedFor),
            proxy,
            "no trusted proxies: the peer"
        );
        assert_eq!(ForwardedHeader::parse("Forwarded"), Some(Forwarded));
        assert_eq!(ForwardedHeader::parse("x-real-ip"), None);
    }
}

#[cfg(test)]
mod any_header {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// Whatever a proxy chain (or a client) writes, the address is the peer or one the
        /// header names, and nothing panics.
        #[test]
        fn any_forwarded_text_gives_the_peer_or_a_named_address(v in "[ -~]{0,120}") {
            let peer: IpAddr = "10.0.0.1".parse().unwrap();
            let trusted: Vec<IpNet> = vec!["10.0.0.0/8".parse().unwrap()];
            for (name, which) in [
                ("x-forwarded-for", ForwardedHeader::XForwardedFor),
                ("forwarded", ForwardedHeader::Forwarded),
            ] {
                let mut h = HeaderMap::new();
                if let Ok(value) = v.parse() {
                    h.insert(name, value);
                }
                let got = client_ip(peer, &h, &trusted, which);
                let named: Vec<IpAddr> = v
                    .split([',', ';', '=', ' ', '"'])
                    .filter_map(parse_node)
                    .collect();
                prop_assert!(got == peer || named.contains(&got), "{v:?} gave {got}");
            }
        }
    }
}
