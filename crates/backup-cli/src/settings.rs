//! Settings from flags, environment variables and a TOML config file
//! (in that order of precedence). The file is the system description,
//! read and validated by `backup_core::system`.

use anyhow::{bail, Context, Result};
use backup_core::store::{open_store, ObjectStore, S3Settings, StoreOptions};
use backup_core::system::System;
use backup_core::{ErrorKind, Repository};
use std::io::IsTerminal;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The global flags every command takes.
#[derive(Debug, Clone, clap::Args)]
pub struct GlobalArgs {
    /// Repository: a directory, file://PATH or s3://BUCKET/PREFIX.
    #[arg(short = 'r', long = "repo", env = "BACKUP_REPOSITORY", global = true)]
    pub repo: Option<String>,
    /// File holding the repository password (or a key file); must not be world-readable.
    #[arg(long, env = "BACKUP_PASSWORD_FILE", global = true)]
    pub password_file: Option<PathBuf>,
    /// The system description (TOML): repository, password_file, [s3], and the components `create` captures.
    #[arg(long, env = "BACKUP_CONFIG", global = true)]
    pub config: Option<PathBuf>,
    /// S3 endpoint for S3-compatible stores (default: AWS, or AWS_ENDPOINT_URL).
    #[arg(long, env = "AWS_ENDPOINT_URL", global = true, hide_env_values = true)]
    pub s3_endpoint: Option<String>,
    /// S3 region (default: the AWS chain's, else us-east-1).
    #[arg(long, env = "AWS_REGION", global = true)]
    pub s3_region: Option<String>,
    /// Use path-style S3 addressing (most S3-compatible stores need it).
    #[arg(long, env = "BACKUP_S3_PATH_STYLE", global = true, num_args = 0..=1, default_missing_value = "true")]
    pub s3_path_style: Option<bool>,
    /// Print one JSON document on stdout instead of text.
    #[arg(long, global = true)]
    pub json: bool,
    /// Print only errors and essential results; no progress bars.
    #[arg(short, long, global = true)]
    pub quiet: bool,
}

/// Everything needed to reach a repository.
#[derive(Debug)]
pub struct Settings {
    /// The repository URL.
    pub repo: String,
    store_options: StoreOptions,
    password_file: Option<PathBuf>,
    system: Option<System>,
}

/// Reads a secret file, refusing one that others can read. A file that is
/// missing, unreadable or empty fails with `missing` as its kind (which
/// decides the exit code).
pub fn read_secret_file(path: &Path, what: &str, missing: ErrorKind) -> Result<Vec<u8>> {
    let unreadable = |e: std::io::Error| {
        let hint = if e.kind() == std::io::ErrorKind::NotFound {
            "; check the path"
        } else {
            ""
        };
        backup_core::Error::new(
            missing,
            format!("cannot read the {what} {}: {e}{hint}", path.display()),
        )
    };
    let meta = std::fs::metadata(path).map_err(unreadable)?;
    if meta.permissions().mode() & 0o004 != 0 {
        bail!(
            "{} is readable by every user: restrict it first (chmod 600 {})",
            path.display(),
            path.display()
        );
    }
    let mut data = std::fs::read(path).map_err(unreadable)?;
    while matches!(data.last(), Some(b'\n' | b'\r')) {
        data.pop();
    }
    if data.is_empty() {
        bail!(backup_core::Error::new(
            missing,
            format!("the {what} {} is empty", path.display())
        ));
    }
    Ok(data)
}

impl Settings {
    /// Merges flags, environment and the config file.
    pub fn resolve(args: &GlobalArgs) -> Result<Settings> {
        let system = args.config.as_deref().map(System::load).transpose()?;
        let file = system.clone().unwrap_or_default();
        let repo = args.repo.clone().or(file.repository).unwrap_or_default();
        let secret = match (&file.s3.secret_access_key, &file.s3.secret_access_key_file) {
            (Some(s), _) => Some(s.clone()),
            (None, Some(p)) => Some(
                String::from_utf8(read_secret_file(p, "S3 secret key file", ErrorKind::Io)?)
                    .context("the S3 secret key file is not UTF-8")?,
            ),
            _ => None,
        };
        let s3 = S3Settings {
            endpoint: args.s3_endpoint.clone().or(file.s3.endpoint),
            region: args.s3_region.clone().or(file.s3.region),
            path_style: args.s3_path_style.or(file.s3.path_style).unwrap_or(false),
            access_key_id: file.s3.access_key_id,
            secret_access_key: secret,
        };
        Ok(Settings {
            repo,
            store_options: StoreOptions { s3 },
            password_file: args.password_file.clone().or(file.password_file),
            system,
        })
    }

    /// The system description read from `--config`, if one was given.
    pub fn system(&self) -> Option<&System> {
        self.system.as_ref()
    }

    /// Opens the store.
    pub fn store(&self) -> Result<Arc<dyn ObjectStore>> {
        Ok(open_store(&self.repo, &self.store_options)?)
    }

    /// The password from BACKUP_PASSWORD, the password file, or a prompt.
    pub fn password(&self, confirm: bool) -> Result<Option<Vec<u8>>> {
        if let Ok(p) = std::env::var("BACKUP_PASSWORD") {
            if !p.is_empty() {
                return Ok(Some(p.into_bytes()));
            }
        }
        if let Some(path) = &self.password_file {
            return Ok(Some(read_secret_file(
                path,
                "password file",
                ErrorKind::WrongPassword,
            )?));
        }
        if std::io::stdin().is_terminal() {
            let p = rpassword::prompt_password("repository password: ")
                .context("cannot read the password")?;
            if confirm {
                let again = rpassword::prompt_password("repeat the password: ")
                    .context("cannot read the password")?;
                if again != p {
                    bail!("the two passwords differ; nothing was created");
                }
            }
            if p.is_empty() {
                bail!("an empty password is not allowed");
            }
            return Ok(Some(p.into_bytes()));
        }
        Ok(None)
    }

    /// Opens the repository (asking for a password only if it is encrypted).
    pub fn open(&self) -> Result<Repository> {
        self.open_strict(true)
    }

    /// Opens the repository without failing on damaged index objects.
    pub fn open_lenient(&self) -> Result<Repository> {
        self.open_strict(false)
    }

    fn open_strict(&self, strict: bool) -> Result<Repository> {
        let store = self.store()?;
        let config = Repository::read_config(store.as_ref())?;
        // Only an encrypted repository needs a password: do not ask otherwise.
        let pw = if config.encrypted() {
            self.password(false)?
        } else {
            None
        };
        Ok(Repository::open_with(store, config, pw.as_deref(), strict)?)
    }

    /// A per-repository cache directory (for the verify rotation cursor).
    pub fn cache_dir(&self, repo_id: &str) -> PathBuf {
        let base = std::env::var_os("XDG_CACHE_HOME")
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
            .unwrap_or_else(std::env::temp_dir);
        base.join("backup").join(repo_id)
    }
}
