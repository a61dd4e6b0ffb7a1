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
}

impl Default for ChunkerParams {
    fn default() -> Self {
        ChunkerParams {
            min_size: 256 * 1024,
            avg_size: 1024 * 1024,
            max_size: 4 * 1024 * 1024,
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
            version: Option<u32>,
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
            Some(FORMAT_VERSION) => {}
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
