//! Encryption of stored objects and keyed blob ids.
//!
//! Encrypted objects are `nonce (12 bytes) || AES-256-GCM ciphertext || tag
//! (16 bytes)` with a random nonce. Blob ids are HMAC-SHA256 of the
//! plaintext under a MAC key, so that ids leak nothing about content. In an
//! unencrypted repository objects are stored as they are and blob ids are
//! plain SHA-256.

use crate::error::{Error, Result};
use crate::id::Id;
use aes_gcm::aead::{Aead, AeadCore, KeyInit, OsRng};
use aes_gcm::{Aes256Gcm, Nonce};
use hmac::{Hmac, Mac};
use rand::RngCore;
use sha2::Sha256;

/// Length of the nonce that starts every encrypted object.
pub const NONCE_LEN: usize = 12;
/// Length of the authentication tag that ends every encrypted object.
pub const TAG_LEN: usize = 16;

/// The repository master key: one key for encryption, one for blob ids.
#[derive(Clone)]
pub struct MasterKey {
    /// AES-256-GCM key.
    pub encrypt: [u8; 32],
    /// HMAC-SHA256 key for blob ids.
    pub mac: [u8; 32],
}

impl MasterKey {
    /// A fresh random key.
    pub fn generate() -> MasterKey {
        let mut k = MasterKey {
            encrypt: [0; 32],
            mac: [0; 32],
        };
        rand::thread_rng().fill_bytes(&mut k.encrypt);
        rand::thread_rng().fill_bytes(&mut k.mac);
        k
    }

    /// The 64 bytes `encrypt || mac`.
    pub fn to_bytes(&self) -> [u8; 64] {
        let mut out = [0u8; 64];
        out[..32].copy_from_slice(&self.encrypt);
        out[32..].copy_from_slice(&self.mac);
        out
    }

    /// Parses 64 bytes `encrypt || mac`.
    pub fn from_bytes(b: &[u8]) -> Result<MasterKey> {
        if b.len() != 64 {
            return Err(Error::corrupt("master key has the wrong length"));
        }
        let mut k = MasterKey {
            encrypt: [0; 32],
            mac: [0; 32],
        };
        k.encrypt.copy_from_slice(&b[..32]);
        k.mac.copy_from_slice(&b[32..]);
        Ok(k)
    }
}

impl std::fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MasterKey(..)")
    }
}

/// Seals and opens objects and computes blob ids for one repository.
#[derive(Clone)]
pub struct Cipher {
    aead: Option<Aes256Gcm>,
    mac: Option<Hmac<Sha256>>,
}

impl std::fmt::Debug for Cipher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Cipher(encrypted: {})", self.aead.is_some())
    }
}

impl Cipher {
    /// A cipher that encrypts with `key`.
    pub fn encrypted(key: &MasterKey) -> Cipher {
        Cipher {
            aead: Some(Aes256Gcm::new((&key.encrypt).into())),
            mac: Some(<Hmac<Sha256> as Mac>::new_from_slice(&key.mac).expect("any key length")),
        }
    }

    /// A cipher that stores plaintext (an unencrypted repository).
    pub fn plaintext() -> Cipher {
        Cipher {
            aead: None,
            mac: None,
        }
    }

    /// Whether objects are encrypted.
    pub fn is_encrypted(&self) -> bool {
        self.aead.is_some()
    }

    /// The id of a blob with this plaintext.
    pub fn blob_id(&self, plain: &[u8]) -> Id {
        match &self.mac {
            Some(mac) => {
                let mut m = mac.clone();
                m.update(plain);
                Id(m.finalize().into_bytes().into())
            }
            None => Id::sha256(plain),
        }
    }

    /// HMAC-SHA256 of `data` under the master key's MAC key (the same
    /// function as [`Cipher::blob_id`]), or `None` in an unencrypted
    /// repository. Used to authenticate the `config` object.
    pub fn tag(&self, data: &[u8]) -> Option<[u8; 32]> {
        self.mac.as_ref().map(|mac| {
            let mut m = mac.clone();
            m.update(data);
            m.finalize().into_bytes().into()
        })
    }

    /// Whether `tag` is the [`Cipher::tag`] of `data`, compared in constant
    /// time; always `false` in an unencrypted repository.
    pub fn verify_tag(&self, data: &[u8], tag: &[u8]) -> bool {
        match &self.mac {
            Some(mac) => {
                let mut m = mac.clone();
                m.update(data);
                m.verify_slice(tag).is_ok()
            }
            None => false,
        }
    }

    /// Encrypts `plain` (or returns it as it is when unencrypted).
    pub fn seal(&self, plain: &[u8]) -> Vec<u8> {
        match &self.aead {
            Some(aead) => {
                let nonce = Aes256Gcm::generate_nonce(&mut OsRng);
                let ct = aead
                    .encrypt(&nonce, plain)
                    .expect("AES-GCM encryption cannot fail");
                let mut out = Vec::with_capacity(NONCE_LEN + ct.len());
                out.extend_from_slice(&nonce);
                out.extend_from_slice(&ct);
                out
            }
            None => plain.to_vec(),
        }
    }

    /// Decrypts and authenticates `sealed`; `what` names the object for the
    /// error message.
    pub fn open(&self, sealed: &[u8], what: &str) -> Result<Vec<u8>> {
        match &self.aead {
            Some(aead) => {
                if sealed.len() < NONCE_LEN + TAG_LEN {
                    return Err(Error::corrupt(format!("{what} is too short to be valid")));
                }
                let (nonce, ct) = sealed.split_at(NONCE_LEN);
                aead.decrypt(Nonce::from_slice(nonce), ct).map_err(|_| {
                    Error::corrupt(format!(
                        "{what} failed authentication: it is damaged or was altered"
                    ))
                })
            }
            None => Ok(sealed.to_vec()),
        }
    }

    /// The number of bytes sealing adds.
    pub fn overhead(&self) -> usize {
        if self.aead.is_some() {
            NONCE_LEN + TAG_LEN
        } else {
            0
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seal_open_round_trip_and_tamper_detection() {
        let c = Cipher::encrypted(&MasterKey::generate());
        let sealed = c.seal(b"hello world");
        assert_ne!(&sealed[NONCE_LEN..NONCE_LEN + 11], b"hello world");
        assert_eq!(c.open(&sealed, "x").unwrap(), b"hello world");
        let mut bad = sealed.clone();
        bad[NONCE_LEN + 2] ^= 1;
        let err = c.open(&bad, "object X").unwrap_err();
        assert!(err.to_string().contains("object X"));
    }

    #[test]
    fn tags_verify_only_under_their_key_and_data() {
        let a = Cipher::encrypted(&MasterKey::generate());
        let b = Cipher::encrypted(&MasterKey::generate());
        let t = a.tag(b"data").unwrap();
        assert!(a.verify_tag(b"data", &t));
        assert!(!a.verify_tag(b"datb", &t));
        assert!(!a.verify_tag(b"data", &t[..31]));
        assert!(!b.verify_tag(b"data", &t));
        assert!(Cipher::plaintext().tag(b"data").is_none());
        assert!(!Cipher::plaintext().verify_tag(b"data", &t));
    }

    #[test]
    fn keyed_ids_differ_between_keys_and_from_sha256() {
        let a = Cipher::encrypted(&MasterKey::generate());
        let b = Cipher::encrypted(&MasterKey::generate());
        let p = Cipher::plaintext();
        assert_ne!(a.blob_id(b"x"), b.blob_id(b"x"));
        assert_ne!(a.blob_id(b"x"), p.blob_id(b"x"));
        assert_eq!(p.blob_id(b"x"), Id::sha256(b"x"));
        assert_eq!(a.blob_id(b"x"), a.blob_id(b"x"));
    }
}
