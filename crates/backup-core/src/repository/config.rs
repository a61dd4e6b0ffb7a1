//! The repository `config` object: format version and parameters.
//!
//! The object carries a `checksum` (SHA-256 of the canonical form of every
//! other field) that every open checks, and in an encrypted repository a
//! `mac` (HMAC-SHA256 of the same bytes under the master key's MAC key)
//! checked once the key is unwrapped. See `docs/FORMAT.md`.

use crate::crypto::Cipher;
use crate::error::{Error, ErrorKind, Result};
use crate::id::Id;
use serde::{Deserialize, Serialize};

/// The format version this tool writes and reads.
pub const FORMAT_VERSION: u32 = 1;
/// The format name that every config object carries.
pub const FORMAT_NAME: &str = "backup-repository";

/// Content-defined chunking parameters (FastCDC 2020).
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
pub struct ChunkerParams {
    /// Smallest chunk in bytes.
    pub min_size: u32,
    /// Average chunk in bytes.
    pub avg_size: u32,
    /// Largest chunk in bytes.
    pub max_size: u32,
    /// Seed of the rolling hash (random per repository, so that chunk
    /// boundaries do not reveal known content across repositories).
    #[serde(default)]
    pub seed: u64,
}

impl Default for ChunkerParams {
    fn default() -> Self {
        ChunkerParams {
            min_size: 256 * 1024,
            avg_size: 1024 * 1024,
            max_size: 4 * 1024 * 1024,
            seed: 0,
        }
    }
}

/// The repository configuration, stored unencrypted as JSON in `config`.
///
/// Read it with [`Config::parse`] (or [`crate::Repository::read_config`]),
/// which checks its checksum; a `Config` deserialized any other way fails
/// [`Config::check_mac`].
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Config {
    /// Always [`FORMAT_NAME`].
    pub format: String,
    /// The format version; tools refuse versions they do not know.
    pub version: u32,
    /// Random repository id (hex).
    pub id: String,
    /// `"aes-256-gcm"` or `"none"`.
    pub encryption: String,
    /// `"zstd"`.
    pub compression: String,
    /// zstd level used for new blobs.
    pub compression_level: i32,
    /// Chunker parameters; changing them breaks deduplication.
    pub chunker: ChunkerParams,
    /// Target pack size in bytes.
    pub pack_size: u64,
    /// Creation time (RFC 3339).
    pub created: String,
    /// SHA-256 (hex) of the canonical form of every other field.
    #[serde(default)]
    pub checksum: String,
    /// HMAC-SHA256 (hex) of the same canonical form under the master key's
    /// MAC key; only in an encrypted repository.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mac: Option<String>,
    /// The canonical form the checksum was checked against (unknown fields
    /// included), for the MAC check.
    #[serde(skip)]
    canonical: String,
}

/// The fields that are not part of the canonical form.
const SEAL_FIELDS: [&str; 2] = ["checksum", "mac"];

/// The canonical form of a config object: its members except `checksum`
/// and `mac`, as [`canonical_json`] writes it.
fn canonical(object: &serde_json::Map<String, serde_json::Value>) -> String {
    let mut rest = object.clone();
    for f in SEAL_FIELDS {
        rest.remove(f);
    }
    canonical_json(&serde_json::Value::Object(rest))
}

/// A JSON value written without whitespace, with object members sorted by
/// key (byte order) at every level, strings and numbers as `serde_json`
/// writes them: the form that configs and rollback plans are hashed in.
pub(crate) fn canonical_json(value: &serde_json::Value) -> String {
    fn write(v: &serde_json::Value, out: &mut String) {
        match v {
            serde_json::Value::Object(m) => {
                let mut keys: Vec<&String> = m.keys().collect();
                keys.sort();
                out.push('{');
                for (i, k) in keys.into_iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    out.push_str(&serde_json::Value::String(k.clone()).to_string());
                    out.push(':');
                    write(&m[k], out);
                }
                out.push('}');
            }
            serde_json::Value::Array(a) => {
                out.push('[');
                for (i, e) in a.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    write(e, out);
                }
                out.push(']');
            }
            scalar => out.push_str(&scalar.to_string()),
        }
    }
    let mut out = String::new();
    write(value, &mut out);
    out
}

/// What to do about a damaged config.
const RESTORE_HINT: &str = "restore the config object from a backup copy of the repository (it \
     never changes after `init`, so any copy will do); `backup verify` cannot check the rest \
     until then";

impl Config {
    /// A new config (as `init` writes it), not yet sealed: see
    /// [`Config::to_stored_bytes`].
    pub fn new(
        id: String,
        encrypted: bool,
        compression_level: i32,
        chunker: ChunkerParams,
        pack_size: u64,
    ) -> Config {
        Config {
            format: FORMAT_NAME.into(),
            version: FORMAT_VERSION,
            id,
            encryption: if encrypted { "aes-256-gcm" } else { "none" }.into(),
            compression: "zstd".into(),
            compression_level,
            chunker,
            pack_size,
            created: chrono::Utc::now().to_rfc3339(),
            checksum: String::new(),
            mac: None,
            canonical: String::new(),
        }
    }

    /// The bytes to store: pretty-printed JSON with `checksum` set, and
    /// `mac` set when `cipher` encrypts. Read them back with
    /// [`Config::parse`].
    pub fn to_stored_bytes(&self, cipher: &Cipher) -> Result<Vec<u8>> {
        let value = serde_json::to_value(self)?;
        let object = value.as_object().expect("a config serializes to an object");
        let canon = canonical(object);
        let mut sealed = self.clone();
        sealed.checksum = Id::sha256(canon.as_bytes()).to_hex();
        sealed.mac = cipher.tag(canon.as_bytes()).map(hex::encode);
        // The struct, not the map, keeps the fields in their documented order.
        Ok(serde_json::to_vec_pretty(&sealed)?)
    }

    /// Parses and checks a stored config (its checksum, format, version and
    /// parameters); `location` names the repository.
    pub fn parse(data: &[u8], location: &str) -> Result<Config> {
        let not_ours = || {
            Error::new(
                ErrorKind::NotARepository,
                format!(
                    "{location} holds a config object that is not a backup repository's: check \
                     the path"
                ),
            )
        };
        let value: serde_json::Value = match serde_json::from_slice(data) {
            Ok(v) => v,
            // A damaged config of ours still names the format somewhere.
            Err(e) if memchr::memmem::find(data, FORMAT_NAME.as_bytes()).is_some() => {
                return Err(Error::corrupt(format!(
                    "the config object of {location} is not valid JSON ({e}): it is damaged; \
                     {RESTORE_HINT}"
                )))
            }
            Err(_) => return Err(not_ours()),
        };
        let Some(object) = value.as_object() else {
            return Err(not_ours());
        };
        let ours = object.get("format").and_then(|f| f.as_str()) == Some(FORMAT_NAME);
        let canon = canonical(object);
        let sum = Id::sha256(canon.as_bytes()).to_hex();
        match object.get("checksum") {
            Some(serde_json::Value::String(c)) if *c == sum => {
                if !ours {
                    return Err(not_ours());
                }
            }
            // Only our configs carry a 64-digit checksum: a mismatch is damage even if
            // the damage hit the format field.
            Some(serde_json::Value::String(c))
                if ours || (c.len() == 64 && c.bytes().all(|b| b.is_ascii_hexdigit())) =>
            {
                return Err(Error::corrupt(format!(
                    "the config object of {location} does not match its checksum: it is \
                     damaged (or was edited by hand); {RESTORE_HINT}"
                )))
            }
            Some(_) if ours => {
                return Err(Error::corrupt(format!(
                    "the config object of {location} has a malformed checksum: it is damaged; \
                     {RESTORE_HINT}"
                )))
            }
            None if ours => {
                return Err(Error::corrupt(format!(
                    "the config object of {location} has no checksum: it is damaged, or was \
                     written by a pre-release backup that did not protect the config (such a \
                     repository is refused: create a new one with `backup init`); \
                     {RESTORE_HINT}"
                )))
            }
            _ => return Err(not_ours()),
        }
        match object.get("version") {
            Some(v) if v.as_u64() == Some(FORMAT_VERSION as u64) => {}
            Some(v) => {
                return Err(Error::new(
                    ErrorKind::UnsupportedFormat,
                    format!(
                        "{location} uses repository format version {v}, but this backup {} only \
                         knows version {FORMAT_VERSION}: use a backup release that supports \
                         version {v}",
                        env!("CARGO_PKG_VERSION")
                    ),
                ))
            }
            None => {
                return Err(Error::corrupt(format!(
                    "the config of {location} has no version: it is damaged; {RESTORE_HINT}"
                )))
            }
        }
        let mut config: Config = serde_json::from_value(value.clone()).map_err(|e| {
            Error::corrupt(format!(
                "the config object of {location} is damaged ({e}); {RESTORE_HINT}"
            ))
        })?;
        config.canonical = canon;
        if config.encryption != "aes-256-gcm" && config.encryption != "none" {
            return Err(Error::new(
                ErrorKind::UnsupportedFormat,
                format!("{location} uses unknown encryption {:?}", config.encryption),
            ));
        }
        let c = config.chunker;
        let chunker_ok = (64..=1024 * 1024).contains(&c.min_size)
            && (256..=4 * 1024 * 1024).contains(&c.avg_size)
            && (1024..=16 * 1024 * 1024).contains(&c.max_size)
            && c.min_size <= c.avg_size
            && c.avg_size <= c.max_size;
        if !chunker_ok
            || !(1024 * 1024..=1024 * 1024 * 1024).contains(&config.pack_size)
            || !(1..=22).contains(&config.compression_level)
        {
            return Err(Error::corrupt(format!(
                "the config of {location} has out-of-range parameters (chunker, pack size or \
                 compression level): it is damaged or was edited by hand; {RESTORE_HINT}"
            )));
        }
        if config.compression != "zstd" {
            return Err(Error::new(
                ErrorKind::UnsupportedFormat,
                format!(
                    "{location} uses unknown compression {:?}",
                    config.compression
                ),
            ));
        }
        Ok(config)
    }

    /// Checks the `mac` of an encrypted repository's config with the
    /// unwrapped master key (`cipher`); `location` names the repository.
    pub fn check_mac(&self, cipher: &Cipher, location: &str) -> Result<()> {
        if !self.encrypted() {
            return Ok(());
        }
        let Some(mac) = &self.mac else {
            return Err(Error::corrupt(format!(
                "the config object of {location} has no mac although the repository is \
                 encrypted: it is damaged or was altered; {RESTORE_HINT}"
            )));
        };
        let tag = hex::decode(mac).unwrap_or_default();
        if self.canonical.is_empty() || !cipher.verify_tag(self.canonical.as_bytes(), &tag) {
            return Err(Error::corrupt(format!(
                "the config object of {location} fails authentication with the repository key: \
                 it was altered after `init` (its checksum is intact, so this is no accidental \
                 damage) or belongs to another repository; {RESTORE_HINT}"
            )));
        }
        Ok(())
    }

    /// Whether objects are encrypted.
    pub fn encrypted(&self) -> bool {
        self.encryption != "none"
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::MasterKey;

    fn sample() -> serde_json::Value {
        serde_json::json!({
            "format": FORMAT_NAME, "version": 1, "id": "ab", "encryption": "none",
            "compression": "zstd", "compression_level": 3,
            "chunker": {"min_size": 262144, "avg_size": 1048576, "max_size": 4194304, "seed": 7},
            "pack_size": 16777216, "created": "2026-01-01T00:00:00Z"
        })
    }

    /// Sets the checksum of `v` to match its other fields.
    fn sealed(mut v: serde_json::Value) -> serde_json::Value {
        let sum = Id::sha256(canonical(v.as_object().unwrap()).as_bytes()).to_hex();
        v["checksum"] = sum.into();
        v
    }

    fn parse(v: &serde_json::Value) -> Result<Config> {
        Config::parse(&serde_json::to_vec(v).unwrap(), "repo")
    }

    #[test]
    fn accepts_its_own_version_and_refuses_others() {
        assert_eq!(parse(&sealed(sample())).unwrap().chunker.seed, 7);
        for bad in [
            serde_json::json!(2),
            serde_json::json!("1"),
            serde_json::json!(1.5),
        ] {
            let mut v = sample();
            v["version"] = bad;
            let e = parse(&sealed(v)).unwrap_err();
            assert_eq!(e.kind(), ErrorKind::UnsupportedFormat, "{e}");
        }
        let mut v = sample();
        v["format"] = serde_json::json!("restic");
        assert_eq!(
            parse(&sealed(v.clone())).unwrap_err().kind(),
            ErrorKind::NotARepository
        );
        assert_eq!(parse(&v).unwrap_err().kind(), ErrorKind::NotARepository);
        assert_eq!(
            Config::parse(b"[core]\nbare = false\n", "repo")
                .unwrap_err()
                .kind(),
            ErrorKind::NotARepository
        );
    }

    #[test]
    fn refuses_out_of_range_parameters() {
        for (path, value) in [("pack_size", 5u64 << 32), ("compression_level", 99)] {
            let mut v = sample();
            v[path] = serde_json::json!(value);
            assert_eq!(
                parse(&sealed(v)).unwrap_err().kind(),
                ErrorKind::Corrupt,
                "{path}"
            );
        }
        let mut v = sample();
        v["chunker"]["max_size"] = serde_json::json!(64u64 << 20);
        assert_eq!(parse(&sealed(v)).unwrap_err().kind(), ErrorKind::Corrupt);
    }

    #[test]
    fn any_changed_field_fails_the_checksum() {
        let good = sealed(sample());
        let mut changes = Vec::new();
        for (path, value) in [
            ("compression_level", serde_json::json!(4)),
            ("pack_size", serde_json::json!(16777217)),
            ("encryption", serde_json::json!("aes-256-gcm")),
            ("version", serde_json::json!(2)),
            ("extra", serde_json::json!(true)),
        ] {
            let mut v = good.clone();
            v[path] = value;
            changes.push(v);
        }
        let mut v = good.clone();
        v["chunker"]["seed"] = serde_json::json!(8);
        changes.push(v);
        let mut v = good.clone();
        v["format"] = serde_json::json!("backup-repositorz");
        changes.push(v);
        let mut v = good.clone();
        v.as_object_mut().unwrap().remove("checksum");
        changes.push(v);
        for v in changes {
            let e = parse(&v).unwrap_err();
            assert_eq!(e.kind(), ErrorKind::Corrupt, "{v}: {e}");
            assert!(e.to_string().contains("backup copy"), "{e}");
        }
        // Not valid JSON any more, but still ours.
        let mut bytes = serde_json::to_vec_pretty(&good).unwrap();
        bytes[0] = b'[';
        let e = Config::parse(&bytes, "repo").unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Corrupt, "{e}");
    }

    #[test]
    fn the_canonical_form_ignores_layout_and_member_order() {
        let v = sealed(sample());
        let reordered = format!(
            "{{\"checksum\": {},\n \"created\":\"2026-01-01T00:00:00Z\", \"pack_size\": 16777216, \
             \"chunker\": {{\"seed\":7, \"max_size\": 4194304, \"avg_size\":1048576, \"min_size\":262144}}, \
             \"compression_level\":3, \"compression\":\"zstd\", \"encryption\":\"none\", \"id\":\"ab\", \
             \"version\":1, \"format\":\"backup-repository\"}}",
            v["checksum"]
        );
        Config::parse(reordered.as_bytes(), "repo").unwrap();
        assert_eq!(
            canonical(sample().as_object().unwrap()),
            "{\"chunker\":{\"avg_size\":1048576,\"max_size\":4194304,\"min_size\":262144,\"seed\":7},\
             \"compression\":\"zstd\",\"compression_level\":3,\"created\":\"2026-01-01T00:00:00Z\",\
             \"encryption\":\"none\",\"format\":\"backup-repository\",\"id\":\"ab\",\
             \"pack_size\":16777216,\"version\":1}"
        );
    }

    #[test]
    fn stored_bytes_round_trip_and_the_mac_binds_the_key() {
        let key = Cipher::encrypted(&MasterKey::generate());
        let other = Cipher::encrypted(&MasterKey::generate());
        let c = Config::new("ab".into(), true, 3, ChunkerParams::default(), 16 << 20);
        let bytes = c.to_stored_bytes(&key).unwrap();
        let back = Config::parse(&bytes, "repo").unwrap();
        back.check_mac(&key, "repo").unwrap();
        assert_eq!(
            back.check_mac(&other, "repo").unwrap_err().kind(),
            ErrorKind::Corrupt
        );
        // A changed field with a recomputed checksum passes the checksum but not the MAC.
        let mut v: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
        v["chunker"]["seed"] = serde_json::json!(1);
        let forged = parse(&sealed(v.clone())).unwrap();
        let e = forged.check_mac(&key, "repo").unwrap_err();
        assert!(e.to_string().contains("authentication"), "{e}");
        v.as_object_mut().unwrap().remove("mac");
        let e = parse(&sealed(v))
            .unwrap()
            .check_mac(&key, "repo")
            .unwrap_err();
        assert!(e.to_string().contains("no mac"), "{e}");
        // Unencrypted: a checksum and no MAC.
        let plain = Config::new("ab".into(), false, 3, ChunkerParams::default(), 16 << 20);
        let bytes = plain.to_stored_bytes(&Cipher::plaintext()).unwrap();
        let v: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
        assert!(v.get("mac").is_none() && v["checksum"].as_str().unwrap().len() == 64);
        Config::parse(&bytes, "repo")
            .unwrap()
            .check_mac(&Cipher::plaintext(), "repo")
            .unwrap();
    }
}
