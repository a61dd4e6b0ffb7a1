//! Key objects: the master key wrapped by a key derived from a password.

use crate::crypto::{Cipher, MasterKey};
use crate::error::{Error, ErrorKind, Result};
use crate::id::Id;
use crate::store::{Kind, ObjectStore};
use argon2::{Algorithm, Argon2, Params, Version};
use rand::RngCore;
use serde::{Deserialize, Serialize};

/// A key object, stored as JSON in `keys/<sha256 of the object>`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct KeyFile {
    /// Always `"argon2id"`.
    pub kdf: String,
    /// Argon2 memory cost in KiB.
    pub m_cost: u32,
    /// Argon2 iterations.
    pub t_cost: u32,
    /// Argon2 parallelism.
    pub p_cost: u32,
    /// Salt (hex).
    pub salt: String,
    /// The sealed 64-byte master key (hex of nonce || ciphertext || tag).
    pub data: String,
    /// Host that created the key.
    pub host: String,
    /// Creation time (RFC 3339).
    pub created: String,
}

fn derive(password: &[u8], salt: &[u8], m: u32, t: u32, p: u32) -> Result<MasterKey> {
    let params = Params::new(m, t, p, Some(32))
        .map_err(|e| Error::corrupt(format!("invalid key derivation parameters: {e}")))?;
    let mut out = [0u8; 32];
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
        .hash_password_into(password, salt, &mut out)
        .map_err(|e| Error::corrupt(format!("key derivation failed: {e}")))?;
    Ok(MasterKey {
        encrypt: out,
        mac: [0u8; 32],
    })
}

impl KeyFile {
    /// Wraps `master` with a key derived from `password`.
    pub fn wrap(master: &MasterKey, password: &[u8], host: &str) -> Result<KeyFile> {
        let (m, t, p) = (64 * 1024, 3, 1);
        let mut salt = [0u8; 32];
        rand::thread_rng().fill_bytes(&mut salt);
        let kek = derive(password, &salt, m, t, p)?;
        let sealed = Cipher::encrypted(&kek).seal(&master.to_bytes());
        Ok(KeyFile {
            kdf: "argon2id".into(),
            m_cost: m,
            t_cost: t,
            p_cost: p,
            salt: hex::encode(salt),
            data: hex::encode(sealed),
            host: host.into(),
            created: chrono::Utc::now().to_rfc3339(),
        })
    }

    /// Unwraps the master key; `None` when the password does not fit.
    pub fn unwrap(&self, password: &[u8]) -> Result<Option<MasterKey>> {
        if self.kdf != "argon2id" {
            return Err(Error::new(
                ErrorKind::UnsupportedFormat,
                format!("unknown key derivation {:?}", self.kdf),
            ));
        }
        let salt =
            hex::decode(&self.salt).map_err(|_| Error::corrupt("key object salt is not hex"))?;
        let data =
            hex::decode(&self.data).map_err(|_| Error::corrupt("key object data is not hex"))?;
        let kek = derive(password, &salt, self.m_cost, self.t_cost, self.p_cost)?;
        match Cipher::encrypted(&kek).open(&data, "key") {
            Ok(plain) => Ok(Some(MasterKey::from_bytes(&plain)?)),
            Err(_) => Ok(None),
        }
    }

    /// Stores this key object; returns its id.
    pub fn store(&self, store: &dyn ObjectStore) -> Result<Id> {
        let bytes = serde_json::to_vec_pretty(self)?;
        let id = Id::sha256(&bytes);
        store.put(Kind::Key, &id.to_hex(), &bytes)?;
        Ok(id)
    }
}

/// Tries every key object of the repository with `password`.
///
/// A key object whose bytes no longer hash to its name is damaged and is
/// not tried; when no undamaged key opens with the password, that damage
/// is the error (kind [`ErrorKind::Corrupt`]) rather than a wrong password.
pub fn open_master_key(store: &dyn ObjectStore, password: &[u8]) -> Result<MasterKey> {
    let keys = store.list(Kind::Key)?;
    if keys.is_empty() {
        return Err(Error::corrupt(format!(
            "{} is encrypted but holds no key object: the keys/ folder was lost; restore it \
             from a backup copy of the repository",
            store.location()
        )));
    }
    let mut damaged = Vec::new();
    for info in keys {
        let bytes = store.get(Kind::Key, &info.name)?;
        if Id::sha256(&bytes).to_hex() != info.name {
            damaged.push(info.name);
            continue;
        }
        let key: KeyFile = match serde_json::from_slice(&bytes) {
            Ok(k) => k,
            Err(_) => continue,
        };
        if let Ok(Some(master)) = key.unwrap(password) {
            return Ok(master);
        }
    }
    if !damaged.is_empty() {
        let names = damaged
            .iter()
            .map(|n| format!("keys/{n}"))
            .collect::<Vec<_>>()
            .join(", ");
        let (what, is) = if damaged.len() == 1 {
            ("key object", "is")
        } else {
            ("key objects", "are")
        };
        return Err(Error::corrupt(format!(
            "the {what} {names} of {} {is} damaged (content no longer matching the name), and \
             no undamaged key opens with this password: restore a copy of the keys/ folder \
             from a backup of the repository (the password is not necessarily wrong)",
            store.location()
        )));
    }
    Err(Error::new(
        ErrorKind::WrongPassword,
        format!(
            "wrong password or key file for {}: none of its keys opens with it",
            store.location()
        ),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wrap_unwrap() {
        let master = MasterKey::generate();
        let kf = KeyFile::wrap(&master, b"secret", "h").unwrap();
        let back = kf.unwrap(b"secret").unwrap().unwrap();
        assert_eq!(back.to_bytes(), master.to_bytes());
        assert!(kf.unwrap(b"wrong").unwrap().is_none());
    }
}
