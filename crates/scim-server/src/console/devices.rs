//! Known-device cookies (OWASP's defence against lockout by guessing): a browser that signed
//! in as a name gets a cookie only this instance can make, bound to that name; its later
//! sign-ins as that name are throttled on an allowance of their own (`super::throttle`), so
//! guesses from elsewhere cannot keep the real operator out. The password is checked all the
//! same. Keyed with the instance key (every node accepts every node's cookies), or a key of
//! the process when there is none.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use scim_core::SealingKey;
use subtle::ConstantTimeEq;

pub const DEVICE_COOKIE: &str = "scimd_device";
/// How long a device stays known.
pub const DEVICE_TTL: time::Duration = time::Duration::days(365);
const PURPOSE: &str = "scimd console known device";

/// The cookie's message: the name as compared, and the device.
fn message(name: &str, device: &str) -> Vec<u8> {
    format!("{}\n{device}", name.trim().to_lowercase()).into_bytes()
}

/// A new device cookie value for `name`: `{device}.{mac}`.
pub fn issue(key: &SealingKey, name: &str) -> String {
    let device = scim_core::operator::random_token()
        .chars()
        .take(22)
        .collect::<String>();
    let mac = URL_SAFE_NO_PAD.encode(key.mac(PURPOSE, &message(name, &device)));
    format!("{device}.{mac}")
}

/// The device of a cookie made for `name` by this instance, else `None`.
pub fn verify(key: &SealingKey, value: &str, name: &str) -> Option<String> {
    let (device, mac) = value.split_once('.')?;
    if device.is_empty() || device.len() > 64 {
        return None;
    }
    let given = URL_SAFE_NO_PAD.decode(mac).ok()?;
    let want = key.mac(PURPOSE, &message(name, device));
    bool::from(given.ct_eq(&want)).then(|| device.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_device_cookie_is_bound_to_its_name_and_its_key() {
        let key = SealingKey::from_text(&SealingKey::generate()).unwrap();
        let other = SealingKey::from_text(&SealingKey::generate()).unwrap();
        let c = issue(&key, "Alice");
        assert!(
            verify(&key, &c, "alice").is_some(),
            "names compare as sign-in does"
        );
        assert!(verify(&key, &c, "bob").is_none());
        assert!(verify(&other, &c, "alice").is_none());
        let (device, _) = c.split_once('.').unwrap();
        assert!(verify(&key, &format!("{device}.AAAA"), "alice").is_none());
        assert!(verify(&key, "garbage", "alice").is_none());
    }
}
