//! The repository `config` object: format version and parameters.

use crate::error::{Error, ErrorKind, Result};
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
}

impl Config {
    /// Parses and checks a stored config; `location` names the repository.
    pub fn parse(data: &[u8], location: &str) -> Result<Config> {
        #[derive(Deserialize)]
        struct Probe {
            format: Option<String>,
            version: Option<serde_json::Value>,
        }
        let probe: Probe = serde_json::from_slice(data).map_err(|e| {
            Error::corrupt(format!(
                "the config object of {location} is not valid JSON: it is damaged"
            ))
            .with_source(e)
        })?;
        if probe.format.as_deref() != Some(FORMAT_NAME) {
            return Err(Error::new(
                ErrorKind::NotARepository,
                format!("{location} holds a config object that is not a backup repository's"),
            ));
        }
        match probe.version {
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
                    "the config of {location} has no version"
                )))
            }
        }
        let config: Config = serde_json::from_slice(data).map_err(|e| {
            Error::corrupt(format!("the config object of {location} is damaged")).with_source(e)
        })?;
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
                 compression level): it is damaged or was edited by hand"
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

    /// Whether objects are encrypted.
    pub fn encrypted(&self) -> bool {
        self.encryption != "none"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> serde_json::Value {
        serde_json::json!({
            "format": FORMAT_NAME, "version": 1, "id": "ab", "encryption": "none",
            "compression": "zstd", "compression_level": 3,
            "chunker": {"min_size": 262144, "avg_size": 1048576, "max_size": 4194304, "seed": 7},
            "pack_size": 16777216, "created": "2026-01-01T00:00:00Z"
        })
    }

    fn parse(v: &serde_json::Value) -> Result<Config> {
        Config::parse(&serde_json::to_vec(v).unwrap(), "repo")
    }

    #[test]
    fn accepts_its_own_version_and_refuses_others() {
        assert_eq!(parse(&sample()).unwrap().chunker.seed, 7);
        for bad in [
            serde_json::json!(2),
            serde_json::json!("1"),
            serde_json::json!(1.5),
        ] {
            let mut v = sample();
            v["version"] = bad;
            assert_eq!(parse(&v).unwrap_err().kind(), ErrorKind::UnsupportedFormat);
        }
        let mut v = sample();
        v["format"] = serde_json::json!("restic");
        assert_eq!(parse(&v).unwrap_err().kind(), ErrorKind::NotARepository);
    }

    #[test]
    fn refuses_out_of_range_parameters() {
        for (path, value) in [("pack_size", 5u64 << 32), ("compression_level", 99)] {
            let mut v = sample();
            v[path] = serde_json::json!(value);
            assert_eq!(parse(&v).unwrap_err().kind(), ErrorKind::Corrupt, "{path}");
        }
        let mut v = sample();
        v["chunker"]["max_size"] = serde_json::json!(64u64 << 20);
        assert_eq!(parse(&v).unwrap_err().kind(), ErrorKind::Corrupt);
    }
}
