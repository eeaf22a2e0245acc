//! What kind of address an IP is (pure; table-tested).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// The kinds of destination the [`Policy`](crate::Policy) tells apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    Public,
    /// RFC 1918, shared address space (RFC 6598), unique local IPv6 (RFC 4193).
    Private,
    Loopback,
    /// A cloud provider's instance metadata service.
    Metadata,
    /// `169.254.0.0/16`, `fe80::/10`.
    LinkLocal,
    /// `0.0.0.0`, `::`, multicast, broadcast and the reserved ranges: never a server.
    Unroutable,
}

impl Class {
    pub fn describe(self) -> &'static str {
        match self {
            Class::Public => "a public address",
            Class::Private => "a private-network address",
            Class::Loopback => "a loopback address (this machine)",
            Class::Metadata => "a cloud metadata service",
            Class::LinkLocal => "a link-local address",
            Class::Unroutable => "an address no server has",
        }
    }
}

/// Metadata services at addresses outside the link-local range (Alibaba Cloud, Oracle
/// Cloud's second address, Azure's WireServer).
const METADATA_V4: [Ipv4Addr; 3] = [
    Ipv4Addr::new(100, 100, 100, 200),
    Ipv4Addr::new(192, 0, 0, 192),
    Ipv4Addr::new(168, 63, 129, 16),
];
const METADATA_V6: [Ipv6Addr; 1] = [Ipv6Addr::new(0xfd00, 0xec2, 0, 0, 0, 0, 0, 0x254)];

/// Classifies an address; IPv4 embedded in IPv6 (mapped `::ffff:a.b.c.d`, compatible
/// `::a.b.c.d`, NAT64 `64:ff9b::a.b.c.d`) is classified as the IPv4 address it carries.
pub fn classify(ip: IpAddr) -> Class {
    match ip {
        IpAddr::V4(v4) => classify_v4(v4),
        IpAddr::V6(v6) => {
            if let Some(v4) = embedded_v4(v6) {
                return classify_v4(v4);
            }
            classify_v6(v6)
        }
    }
}

fn embedded_v4(v6: Ipv6Addr) -> Option<Ipv4Addr> {
    if let Some(v4) = v6.to_ipv4_mapped() {
        return Some(v4);
    }
    let s = v6.segments();
    let tail = Ipv4Addr::new((s[6] >> 8) as u8, s[6] as u8, (s[7] >> 8) as u8, s[7] as u8);
    // IPv4-compatible (deprecated, ::a.b.c.d except :: and ::1), NAT64 (64:ff9b::/96) and
    // NAT64 for local use (64:ff9b:1::/48, RFC 8215: the IPv4 address in the last 32 bits).
    let compatible = s[..6] == [0; 6] && !(s[6] == 0 && s[7] <= 1);
    let nat64 = s[..6] == [0x64, 0xff9b, 0, 0, 0, 0];
    let local_nat64 = s[..3] == [0x64, 0xff9b, 1];
    (compatible || nat64 || local_nat64).then_some(tail)
}

fn classify_v4(ip: Ipv4Addr) -> Class {
    let o = ip.octets();
    if ip == Ipv4Addr::new(169, 254, 169, 254) || METADATA_V4.contains(&ip) {
        return Class::Metadata;
    }
    if ip.is_loopback() {
        return Class::Loopback;
    }
    if ip.is_link_local() {
        return Class::LinkLocal;
    }
    if ip.is_private() || (o[0] == 100 && (64..128).contains(&o[1])) {
        return Class::Private;
    }
    // 0.0.0.0/8, multicast, 240.0.0.0/4 and broadcast, 192.0.0.0/24 (IETF protocol
    // assignments), the benchmarking range 198.18.0.0/15.
    if o[0] == 0
        || ip.is_multicast()
        || o[0] >= 240
        || (o[0], o[1], o[2]) == (192, 0, 0)
        || (o[0] == 198 && (o[1] == 18 || o[1] == 19))
    {
        return Class::Unroutable;
    }
    Class::Public
}

fn classify_v6(ip: Ipv6Addr) -> Class {
    let s = ip.segments();
    if METADATA_V6.contains(&ip) {
        return Class::Metadata;
    }
    if ip.is_loopback() {
        return Class::Loopback;
    }
    if (s[0] & 0xffc0) == 0xfe80 {
        return Class::LinkLocal;
    }
    if (s[0] & 0xfe00) == 0xfc00 {
        return Class::Private;
    }
    // ::, multicast, site-local (deprecated fec0::/10), documentation 2001:db8::/32.
    if ip.is_unspecified()
        || ip.is_multicast()
        || (s[0] & 0xffc0) == 0xfec0
        || (s[0], s[1]) == (0x2001, 0xdb8)
    {
        return Class::Unroutable;
    }
    Class::Public
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_spelling_is_classified_by_what_it_reaches() {
        let cases: &[(&str, Class)] = &[
            ("169.254.169.254", Class::Metadata),
            ("::ffff:169.254.169.254", Class::Metadata),
            ("::ffff:a9fe:a9fe", Class::Metadata),
            ("64:ff9b::a9fe:a9fe", Class::Metadata),
            ("::169.254.169.254", Class::Metadata),
            ("fd00:ec2::254", Class::Metadata),
            ("100.100.100.200", Class::Metadata),
            ("168.63.129.16", Class::Metadata),
            ("64:ff9b:1::a9fe:a9fe", Class::Metadata),
            ("169.254.1.1", Class::LinkLocal),
            ("fe80::1", Class::LinkLocal),
            ("127.0.0.1", Class::Loopback),
            ("127.255.0.9", Class::Loopback),
            ("::1", Class::Loopback),
            ("::ffff:127.0.0.1", Class::Loopback),
            ("10.1.2.3", Class::Private),
            ("172.16.0.1", Class::Private),
            ("192.168.1.1", Class::Private),
            ("100.64.0.1", Class::Private),
            ("fd12:3456::1", Class::Private),
            ("0.0.0.0", Class::Unroutable),
            ("::", Class::Unroutable),
            ("224.0.0.1", Class::Unroutable),
            ("255.255.255.255", Class::Unroutable),
            ("ff02::1", Class::Unroutable),
            ("8.8.8.8", Class::Public),
            ("2606:4700::1111", Class::Public),
            ("172.32.0.1", Class::Public),
        ];
        for (ip, want) in cases {
            assert_eq!(classify(ip.parse().unwrap()), *want, "{ip}");
        }
    }
}
