//! The outbound policy: which destinations a connection may reach.

use crate::addr::{Class, classify};
use reqwest::Url;
use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

/// Names that reach a cloud metadata service whatever they resolve to here.
const METADATA_NAMES: [&str; 4] = [
    "metadata.google.internal",
    "metadata.goog",
    "metadata",
    "instance-data",
];

/// Which destinations outbound connections may reach (docs/security.md, "Outbound
/// connections"). The default refuses loopback and allows private networks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    /// Loopback addresses (this machine). Off by default: local admin services listen there.
    pub allow_loopback: bool,
    /// Private networks. On by default: on-premises directories, apps on a private network
    /// and the host app's own webhook receiver are the normal case.
    pub allow_private: bool,
    /// Origins (`host`, `port`) allowed even on loopback: scimd's own public URL and
    /// listen address, so a job may provision this scimd's own tenants.
    pub own: Vec<(String, u16)>,
}

impl Default for Policy {
    fn default() -> Self {
        Self {
            allow_loopback: false,
            allow_private: true,
            own: Vec::new(),
        }
    }
}

/// A destination the policy refuses, saying which and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{what} is {class_text}: {why}")]
pub struct Refused {
    pub what: String,
    pub class: Class,
    class_text: &'static str,
    why: &'static str,
}

impl Refused {
    fn new(what: impl Into<String>, class: Class) -> Self {
        let why = match class {
            Class::Loopback => {
                "scimd does not connect to this machine unless outbound_allow_loopback is set"
            }
            Class::Private => {
                "scimd does not connect to private networks while outbound_allow_private is off"
            }
            _ => "scimd never connects there",
        };
        Self {
            what: what.into(),
            class,
            class_text: class.describe(),
            why,
        }
    }
}

impl Policy {
    /// Everything but metadata, link-local and unroutable addresses (tests on loopback,
    /// `outbound_allow_loopback = true`).
    pub fn allow_local() -> Self {
        Self {
            allow_loopback: true,
            allow_private: true,
            own: Vec::new(),
        }
    }

    /// Whether an address may be connected to.
    pub fn allows(&self, ip: IpAddr) -> Result<(), Class> {
        match classify(ip) {
            Class::Public => Ok(()),
            Class::Private if self.allow_private => Ok(()),
            Class::Loopback if self.allow_loopback => Ok(()),
            c => Err(c),
        }
    }

    /// Whether (host, port) is this scimd's own origin: both must match (a name on another
    /// port is another service of this machine).
    fn is_own(&self, host: &str, port: Option<u16>) -> bool {
        port.is_some_and(|port| {
            self.own
                .iter()
                .any(|(h, p)| h.eq_ignore_ascii_case(host) && port == *p)
        })
    }

    /// The own origins named `localhost`, pinned to the loopback address (the resolver
    /// refuses loopback for every name: only a URL that passed [`check_url`](Self::check_url)
    /// for the exact port gets there).
    pub fn own_loopback_names(&self) -> Vec<(String, SocketAddr)> {
        self.own
            .iter()
            .filter(|(h, _)| h == "localhost" || h.ends_with(".localhost"))
            .map(|(h, p)| (h.clone(), SocketAddr::from(([127, 0, 0, 1], *p))))
            .collect()
    }

    /// Checks a URL before it is used: its scheme, a literal address in any spelling, and
    /// the names that are known to reach metadata services or this machine. Names are
    /// checked again when they are resolved ([`GuardedResolver`]).
    pub fn check_url(&self, url: &Url) -> Result<(), Refused> {
        let host = url.host_str().unwrap_or_default();
        let name = host.trim_end_matches('.').to_ascii_lowercase();
        if self.is_own(&name, url.port_or_known_default()) {
            return Ok(());
        }
        let literal = match url.host() {
            Some(url::Host::Ipv4(v4)) => Some(IpAddr::V4(v4)),
            Some(url::Host::Ipv6(v6)) => Some(IpAddr::V6(v6)),
            _ => None,
        };
        if let Some(ip) = literal {
            return self.allows(ip).map_err(|c| Refused::new(host, c));
        }
        self.check_name(&name)
    }

    /// A name's own verdict, before it is resolved.
    pub fn check_name(&self, name: &str) -> Result<(), Refused> {
        let name = name.trim_end_matches('.').to_ascii_lowercase();
        if METADATA_NAMES.contains(&name.as_str()) {
            return Err(Refused::new(name, Class::Metadata));
        }
        let loopback = name == "localhost" || name.ends_with(".localhost");
        if loopback && !self.allow_loopback {
            return Err(Refused::new(name, Class::Loopback));
        }
        Ok(())
    }

    /// Resolves `host` for a connection made without reqwest (LDAP's): every address it
    /// resolves to must be allowed (the connection is made by name, to any of them), and a
    /// name that does not resolve is refused too.
    pub async fn resolve_all(
        &self,
        host: &str,
        port: u16,
    ) -> Result<Vec<SocketAddr>, ResolveError> {
        let own = self.is_own(&host.to_ascii_lowercase(), Some(port));
        if !own {
            self.check_name(host)?;
        }
        let found: Vec<SocketAddr> = tokio::net::lookup_host((host, port))
            .await
            .map_err(|e| ResolveError::Lookup(host.to_string(), e.to_string()))?
            .collect();
        if found.is_empty() {
            return Err(ResolveError::Lookup(host.to_string(), "no address".into()));
        }
        for a in &found {
            match self.allows(a.ip()) {
                Ok(()) => {}
                Err(Class::Loopback) if own => {}
                Err(c) => {
                    return Err(ResolveError::Refused(Refused::new(
                        format!("{host} (resolves to {})", a.ip()),
                        c,
                    )));
                }
            }
        }
        Ok(found)
    }

    fn keep_allowed(
        &self,
        host: &str,
        found: Vec<SocketAddr>,
    ) -> Result<Vec<SocketAddr>, ResolveError> {
        let mut refused = None;
        let kept: Vec<SocketAddr> = found
            .into_iter()
            .filter(|a| match self.allows(a.ip()) {
                Ok(()) => true,
                Err(c) => {
                    refused.get_or_insert((a.ip(), c));
                    false
                }
            })
            .collect();
        match (kept.is_empty(), refused) {
            (true, Some((ip, c))) => Err(ResolveError::Refused(Refused::new(
                format!("{host} (resolves to {ip})"),
                c,
            ))),
            (true, None) => Err(ResolveError::Lookup(
                host.to_string(),
                "no address".to_string(),
            )),
            (false, _) => Ok(kept),
        }
    }
}

/// The policy's refusal inside a transport error (reqwest wraps what the resolver said).
pub fn refusal_in<'a>(e: &'a (dyn std::error::Error + 'static)) -> Option<&'a Refused> {
    let mut cur = Some(e);
    while let Some(err) = cur {
        if let Some(r) = err.downcast_ref::<Refused>() {
            return Some(r);
        }
        if let Some(ResolveError::Refused(r)) = err.downcast_ref::<ResolveError>() {
            return Some(r);
        }
        cur = err.source();
    }
    None
}

#[derive(Debug, thiserror::Error)]
pub enum ResolveError {
    #[error(transparent)]
    Refused(#[from] Refused),
    #[error("cannot resolve {0}: {1}")]
    Lookup(String, String),
}

/// reqwest's resolver with the policy applied to every address a name resolves to, at
/// connect time.
#[derive(Debug, Clone)]
pub struct GuardedResolver {
    policy: Arc<Policy>,
}

impl GuardedResolver {
    pub fn new(policy: Policy) -> Self {
        Self {
            policy: Arc::new(policy),
        }
    }
}

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let policy = self.policy.clone();
        Box::pin(async move {
            let host = name.as_str().to_string();
            // The port is not known here, so no name is anyone's own: scimd's own
            // `localhost` origins are pinned in the client (`builder`), past this resolver.
            policy.check_name(&host).map_err(ResolveError::Refused)?;
            let found: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0))
                .await
                .map_err(|e| ResolveError::Lookup(host.clone(), e.to_string()))?
                .collect();
            let kept = policy.keep_allowed(&host, found)?;
            let addrs: Addrs = Box::new(kept.into_iter());
            Ok(addrs)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(p: &Policy, url: &str) -> Result<(), Class> {
        p.check_url(&Url::parse(url).unwrap()).map_err(|r| r.class)
    }

    #[test]
    fn urls_are_checked_in_every_spelling() {
        let p = Policy::default();
        for (url, want) in [
            (
                "http://169.254.169.254/latest/meta-data/",
                Err(Class::Metadata),
            ),
            ("http://[::ffff:169.254.169.254]/", Err(Class::Metadata)),
            (
                "http://metadata.google.internal/computeMetadata/v1/",
                Err(Class::Metadata),
            ),
            ("http://METADATA.google.internal./", Err(Class::Metadata)),
            ("http://2130706433/", Err(Class::Loopback)),
            ("http://0x7f.1/", Err(Class::Loopback)),
            ("http://0177.0.0.1/", Err(Class::Loopback)),
            ("http://127.1/", Err(Class::Loopback)),
            ("http://localhost:8080/", Err(Class::Loopback)),
            ("http://app.localhost/", Err(Class::Loopback)),
            ("http://[::1]/", Err(Class::Loopback)),
            ("http://0.0.0.0/", Err(Class::Unroutable)),
            ("http://10.0.0.5/scim/v2", Ok(())),
            ("https://app.example.com/scim/v2", Ok(())),
        ] {
            assert_eq!(check(&p, url), want, "{url}");
        }
        let strict = Policy {
            allow_private: false,
            ..Policy::default()
        };
        assert_eq!(check(&strict, "http://10.0.0.5/"), Err(Class::Private));
        let own = Policy {
            own: vec![("127.0.0.1".into(), 8080)],
            ..Policy::default()
        };
        assert_eq!(check(&own, "http://127.0.0.1:8080/t/a/scim/v2"), Ok(()));
        assert_eq!(check(&own, "http://127.0.0.1:9090/"), Err(Class::Loopback));
        let local = Policy::allow_local();
        assert_eq!(check(&local, "http://127.0.0.1:9/"), Ok(()));
        assert_eq!(
            check(&local, "http://169.254.169.254/"),
            Err(Class::Metadata)
        );
    }

    #[tokio::test]
    async fn names_are_checked_by_what_they_resolve_to() {
        let p = Policy::default();
        let e = p.resolve_all("localhost", 80).await.expect_err("loopback");
        assert!(e.to_string().contains("loopback"), "{e}");
        let resolver = GuardedResolver::new(p);
        let e = resolver
            .resolve("localhost".parse::<Name>().unwrap())
            .await
            .err()
            .expect("refused");
        assert!(e.to_string().contains("loopback"), "{e}");
        assert!(
            Policy::allow_local()
                .resolve_all("localhost", 80)
                .await
                .is_ok()
        );
        // scimd's own origin is its own only on its own port.
        let own = Policy {
            own: vec![("localhost".into(), 8080)],
            ..Policy::default()
        };
        assert!(own.resolve_all("localhost", 8080).await.is_ok());
        assert!(own.resolve_all("localhost", 2375).await.is_err());
        let url = |u: &str| Url::parse(u).unwrap();
        assert!(own.check_url(&url("http://localhost:8080/t/a")).is_ok());
        assert!(own.check_url(&url("http://localhost:9100/")).is_err());
        assert!(own.check_url(&url("http://localhost/")).is_err());
    }
}

#[cfg(test)]
mod spelling {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// However an IPv4 address is spelled in a URL (dotted, one number, hexadecimal,
        /// IPv4-mapped IPv6), the policy's verdict is the verdict on the address itself.
        #[test]
        fn every_spelling_of_an_address_gets_the_same_verdict(ip in any::<u32>()) {
            let p = Policy::default();
            let v4 = std::net::Ipv4Addr::from(ip);
            let want = p.allows(IpAddr::V4(v4)).err();
            let o = v4.octets();
            for spelled in [
                format!("http://{v4}/"),
                format!("http://{ip}/"),
                format!("http://0x{ip:x}/"),
                format!("http://0x{:x}.{}.{}/", o[0], o[1], u16::from(o[2]) << 8 | u16::from(o[3])),
                format!("http://[::ffff:{v4}]/"),
            ] {
                let got = p.check_url(&Url::parse(&spelled).unwrap()).err().map(|r| r.class);
                prop_assert_eq!(got, want, "{}", spelled);
            }
        }

        /// Any text as a URL: checked or refused, never a panic.
        #[test]
        fn any_url_is_checked_without_panicking(s in "\\PC{0,64}") {
            if let Ok(u) = Url::parse(&format!("http://{s}")) {
                let _ = Policy::default().check_url(&u);
            }
        }
    }
}
