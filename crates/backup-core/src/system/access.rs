//! How to reach a system's repository: its URL, store options and
//! password, from the system description and what the caller overrides
//! (the command's flags and environment). The command and the daemon both
//! open repositories through [`Access`], so a file is read the same way by
//! both; only the interactive password prompt stays in the command.

use super::System;
use crate::error::{Error, ErrorKind, Result};
use crate::repository::Repository;
use crate::store::{open_store, ObjectStore, S3Settings, StoreOptions};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Values that win over the system description's (flags, environment).
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    /// The repository URL.
    pub repository: Option<String>,
    /// The password file.
    pub password_file: Option<PathBuf>,
    /// The S3 endpoint.
    pub s3_endpoint: Option<String>,
    /// The S3 region.
    pub s3_region: Option<String>,
    /// S3 path-style addressing.
    pub s3_path_style: Option<bool>,
}

/// Everything needed to reach a repository.
#[derive(Debug, Clone)]
pub struct Access {
    /// The repository URL.
    pub repository: String,
    /// Store options (S3 endpoint, region, credentials).
    pub store_options: StoreOptions,
    /// The password file, if one is named.
    pub password_file: Option<PathBuf>,
}

/// Reads a secret file, refusing one that others can read. A file that is
/// missing, unreadable or empty fails with `missing` as its kind.
pub fn read_secret_file(path: &Path, what: &str, missing: ErrorKind) -> Result<Vec<u8>> {
    let unreadable = |e: std::io::Error| {
        let hint = if e.kind() == std::io::ErrorKind::NotFound {
            "; check the path"
        } else {
            ""
        };
        Error::new(
            missing,
            format!("cannot read the {what} {}: {e}{hint}", path.display()),
        )
    };
    let meta = std::fs::metadata(path).map_err(unreadable)?;
    if meta.permissions().mode() & 0o004 != 0 {
        return Err(Error::new(
            ErrorKind::Io,
            format!(
                "{} is readable by every user: restrict it first (chmod 600 {})",
                path.display(),
                path.display()
            ),
        ));
    }
    let mut data = std::fs::read(path).map_err(unreadable)?;
    while matches!(data.last(), Some(b'\n' | b'\r')) {
        data.pop();
    }
    if data.is_empty() {
        return Err(Error::new(
            missing,
            format!("the {what} {} is empty", path.display()),
        ));
    }
    Ok(data)
}

impl Access {
    /// Merges `overrides` over the system description (if any).
    pub fn resolve(system: Option<&System>, overrides: &Overrides) -> Result<Access> {
        let file = system.cloned().unwrap_or_default();
        let secret = match (&file.s3.secret_access_key, &file.s3.secret_access_key_file) {
            (Some(s), _) => Some(s.clone()),
            (None, Some(p)) => {
                let bytes = read_secret_file(p, "S3 secret key file", ErrorKind::Io)?;
                Some(String::from_utf8(bytes).map_err(|_| {
                    Error::new(
                        ErrorKind::Io,
                        format!("the S3 secret key file {} is not UTF-8", p.display()),
                    )
                })?)
            }
            _ => None,
        };
        let s3 = S3Settings {
            endpoint: overrides.s3_endpoint.clone().or(file.s3.endpoint),
            region: overrides.s3_region.clone().or(file.s3.region),
            path_style: overrides
                .s3_path_style
                .or(file.s3.path_style)
                .unwrap_or(false),
            access_key_id: file.s3.access_key_id,
            secret_access_key: secret,
        };
        Ok(Access {
            repository: overrides
                .repository
                .clone()
                .or(file.repository)
                .unwrap_or_default(),
            store_options: StoreOptions { s3 },
            password_file: overrides.password_file.clone().or(file.password_file),
        })
    }

    /// Opens the store.
    pub fn store(&self) -> Result<Arc<dyn ObjectStore>> {
        open_store(&self.repository, &self.store_options)
    }

    /// The password from `BACKUP_PASSWORD` or the password file, if either
    /// gives one (a program without a terminal has no other source).
    pub fn password(&self) -> Result<Option<Vec<u8>>> {
        if let Ok(p) = std::env::var("BACKUP_PASSWORD") {
            if !p.is_empty() {
                return Ok(Some(p.into_bytes()));
            }
        }
        match &self.password_file {
            Some(path) => Ok(Some(read_secret_file(
                path,
                "password file",
                ErrorKind::WrongPassword,
            )?)),
            None => Ok(None),
        }
    }

    /// Opens the repository, asking `prompt` for a password only when it is
    /// encrypted and neither the environment nor a file gives one.
    /// `strict`: fail on damaged index objects (else skip them).
    pub fn open(
        &self,
        strict: bool,
        prompt: impl FnOnce() -> Result<Option<Vec<u8>>>,
    ) -> Result<Repository> {
        let store = self.store()?;
        let config = Repository::read_config(store.as_ref())?;
        let pw = match config.encrypted() {
            false => None,
            true => match self.password()? {
                Some(p) => Some(p),
                None => prompt()?,
            },
        };
        Repository::open_with(store, config, pw.as_deref(), strict)
    }
}
