//! Where scimd connects to on someone else's say-so, and how much it reads back.
//!
//! Webhook endpoints, job notices, SCIM targets and sources and LDAP directories are URLs an
//! operator types; without a check each is a way into the network scimd runs in (server-side
//! request forgery). Every outbound connection of those goes through a [`Policy`]:
//!
//! | destination | |
//! |---|---|
//! | cloud metadata (`169.254.169.254`, `fd00:ec2::254`, `100.100.100.200`, `metadata.google.internal`, …) | always refused |
//! | link-local, unspecified, multicast, broadcast, reserved | always refused |
//! | loopback (`127.0.0.0/8`, `::1`, `localhost`) | refused unless `allow_loopback`, or it is scimd's own origin |
//! | private (`10/8`, `172.16/12`, `192.168/16`, `100.64/10`, `fc00::/7`) | allowed unless `allow_private = false` |
//! | public | allowed |
//!
//! Addresses are checked where the connection is made: names through [`GuardedResolver`]
//! (so a name that resolves to a public address when saved and to a private one when used
//! — DNS rebinding — is refused all the same), literal addresses in the URL by
//! [`Policy::check_url`] (every spelling: `2130706433`, `0x7f.1`, `[::ffff:a9fe:a9fe]`).
//! Redirects are followed only within the origin ([`redirect_policy`]), and answers are read
//! up to a byte limit ([`read_capped`]). E-mail goes out through the operator's own SMTP
//! server ([`Mailer`], `mail.rs`).

mod addr;
mod client;
mod mail;
mod policy;

pub use addr::{Class, classify};
pub use client::{ReadError, builder, read_capped, redirect_policy};
pub use mail::{MailError, Mailer};
pub use policy::{GuardedResolver, Policy, Refused, ResolveError, refusal_in};
pub use url::Url;
