//! Secrets at rest that scimd must use again (a sync job's target token, a webhook's signing
//! secret), so they cannot be hashed: sealed with XChaCha20-Poly1305 (RustCrypto's
//! `chacha20poly1305`) under the instance key (the "sync key"), with the owner's name as
//! associated data (a sealed secret copied to another job or endpoint does not open). The key
//! is 32 random bytes, kept outside the database (docs/sync.md §6).

use crate::error::{CoreError, CoreResult};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use rand::RngCore;

#[derive(Clone)]
pub struct SealingKey(chacha20poly1305::Key);

impl std::fmt::Debug for SealingKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SealingKey(…)")
    }
}

impl SealingKey {
    /// A new random key, base64 (what goes in the key file).
    pub fn generate() -> String {
        let mut k = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut k);
        STANDARD.encode(k)
    }

    /// A new random key, in memory only (what a process without a key file uses for
    /// values that need not outlive it).
    pub fn random() -> Self {
        let mut k = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut k);
        Self(*chacha20poly1305::Key::from_slice(&k))
    }

    /// From the key file's or variable's text (base64 of 32 bytes).
    pub fn from_text(text: &str) -> CoreResult<Self> {
        let bytes = STANDARD
            .decode(text.trim())
            .map_err(|_| CoreError::Invalid("the sync key is not base64".into()))?;
        if bytes.len() != 32 {
            return Err(CoreError::Invalid(format!(
                "the sync key must be 32 bytes, not {}",
                bytes.len()
            )));
        }
        Ok(Self(*chacha20poly1305::Key::from_slice(&bytes)))
    }

    /// HMAC-SHA256 of `msg` under a key derived from this one for `purpose`: a value only
    /// this instance (every node sharing its key) can make, such as a console device cookie.
    pub fn mac(&self, purpose: &str, msg: &[u8]) -> [u8; 32] {
        use hmac::digest::KeyInit;
        use hmac::{Hmac, Mac};
        type H = Hmac<sha2::Sha256>;
        let derive = |key: &[u8], data: &[u8]| -> [u8; 32] {
            // A 32-byte key zero-padded to SHA-256's block, as HMAC pads it (RFC 2104).
            let mut block = [0u8; 64];
            block[..key.len().min(64)].copy_from_slice(&key[..key.len().min(64)]);
            let mut m = <H as KeyInit>::new(&block.into());
            m.update(data);
            m.finalize().into_bytes().into()
        };
        let sub = derive(self.0.as_slice(), purpose.as_bytes());
        derive(&sub, msg)
    }

    pub fn seal(&self, owner: &str, secret: &str) -> CoreResult<String> {
        let mut nonce = [0u8; 24];
        rand::rngs::OsRng.fill_bytes(&mut nonce);
        let cipher = XChaCha20Poly1305::new(&self.0);
        let ct = cipher
            .encrypt(
                XNonce::from_slice(&nonce),
                Payload {
                    msg: secret.as_bytes(),
                    aad: owner.as_bytes(),
                },
            )
            .map_err(|_| CoreError::Internal("sealing failed".into()))?;
        let mut out = nonce.to_vec();
        out.extend(ct);
        Ok(STANDARD.encode(out))
    }

    pub fn open(&self, owner: &str, sealed: &str) -> CoreResult<String> {
        let bytes = STANDARD.decode(sealed).map_err(|_| {
            CoreError::Internal(format!("the sealed secret of '{owner}' is damaged"))
        })?;
        if bytes.len() < 24 {
            return Err(CoreError::Internal(format!(
                "the sealed secret of '{owner}' is damaged"
            )));
        }
        let (nonce, ct) = bytes.split_at(24);
        let cipher = XChaCha20Poly1305::new(&self.0);
        let pt = cipher
            .decrypt(
                XNonce::from_slice(nonce),
                Payload {
                    msg: ct,
                    aad: owner.as_bytes(),
                },
            )
            .map_err(|_| {
                CoreError::Internal(format!(
                    "the sealed secret of '{owner}' does not open with this sync key"
                ))
            })?;
        String::from_utf8(pt)
            .map_err(|_| CoreError::Internal(format!("the sealed secret of '{owner}' is damaged")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seal_and_open_round_trip_and_bind_the_job() {
        let k = SealingKey::from_text(&SealingKey::generate()).expect("key");
        let s = k.seal("a", "tok").expect("seal");
        assert!(!s.contains("tok"));
        assert_eq!(k.open("a", &s).expect("open"), "tok");
        assert!(k.open("b", &s).is_err());
        let other = SealingKey::from_text(&SealingKey::generate()).expect("key");
        assert!(other.open("a", &s).is_err());
        assert!(SealingKey::from_text("short").is_err());
    }
}
