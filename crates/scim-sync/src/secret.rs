//! Target credentials at rest: sealed with XChaCha20-Poly1305 (RustCrypto's
//! `chacha20poly1305`) under the instance's sync key, the job name as associated data (a
//! sealed token copied to another job does not open). The key is 32 random bytes, kept
//! outside the database (docs/sync.md §6).

use crate::error::{SyncError, SyncResult};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use rand::RngCore;

#[derive(Clone)]
pub struct SyncKey(chacha20poly1305::Key);

impl std::fmt::Debug for SyncKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SyncKey(…)")
    }
}

impl SyncKey {
    /// A new random key, base64 (what goes in the key file).
    pub fn generate() -> String {
        let mut k = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut k);
        STANDARD.encode(k)
    }

    /// From the key file's or variable's text (base64 of 32 bytes).
    pub fn from_text(text: &str) -> SyncResult<Self> {
        let bytes = STANDARD
            .decode(text.trim())
            .map_err(|_| SyncError::Secret("the sync key is not base64".into()))?;
        if bytes.len() != 32 {
            return Err(SyncError::Secret(format!(
                "the sync key must be 32 bytes, not {}",
                bytes.len()
            )));
        }
        Ok(Self(*chacha20poly1305::Key::from_slice(&bytes)))
    }

    pub fn seal(&self, job: &str, secret: &str) -> SyncResult<String> {
        let mut nonce = [0u8; 24];
        rand::rngs::OsRng.fill_bytes(&mut nonce);
        let cipher = XChaCha20Poly1305::new(&self.0);
        let ct = cipher
            .encrypt(
                XNonce::from_slice(&nonce),
                Payload {
                    msg: secret.as_bytes(),
                    aad: job.as_bytes(),
                },
            )
            .map_err(|_| SyncError::Secret("sealing failed".into()))?;
        let mut out = nonce.to_vec();
        out.extend(ct);
        Ok(STANDARD.encode(out))
    }

    pub fn open(&self, job: &str, sealed: &str) -> SyncResult<String> {
        let bytes = STANDARD
            .decode(sealed)
            .map_err(|_| SyncError::Secret("the stored credential is damaged".into()))?;
        if bytes.len() < 24 {
            return Err(SyncError::Secret("the stored credential is damaged".into()));
        }
        let (nonce, ct) = bytes.split_at(24);
        let cipher = XChaCha20Poly1305::new(&self.0);
        let pt = cipher
            .decrypt(
                XNonce::from_slice(nonce),
                Payload {
                    msg: ct,
                    aad: job.as_bytes(),
                },
            )
            .map_err(|_| {
                SyncError::Secret(format!(
                    "the stored credential of job '{job}' does not open with this sync key"
                ))
            })?;
        String::from_utf8(pt)
            .map_err(|_| SyncError::Secret("the stored credential is damaged".into()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seal_and_open_round_trip_and_bind_the_job() {
        let k = SyncKey::from_text(&SyncKey::generate()).expect("key");
        let s = k.seal("a", "tok").expect("seal");
        assert!(!s.contains("tok"));
        assert_eq!(k.open("a", &s).expect("open"), "tok");
        assert!(k.open("b", &s).is_err());
        let other = SyncKey::from_text(&SyncKey::generate()).expect("key");
        assert!(other.open("a", &s).is_err());
        assert!(SyncKey::from_text("short").is_err());
    }
}
