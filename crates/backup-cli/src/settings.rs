//! Settings from flags, environment variables and a TOML config file
//! (in that order of precedence). The file is the system description,
//! read and validated by `backup_core::system`.

use anyhow::{bail, Context, Result};
use backup_core::store::ObjectStore;
use backup_core::system::{Access, Overrides, System};
use backup_core::Repository;
use std::io::IsTerminal;
use std::path::PathBuf;
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
    /// Wait up to this long for another process's conflicting repository lock (e.g. 5m) instead of failing at once.
    #[arg(long, env = "BACKUP_RETRY_LOCK", global = true, value_parser = backup_core::system::parse_duration)]
    pub retry_lock: Option<std::time::Duration>,
    /// Print one JSON document on stdout instead of text.
    #[arg(long, global = true)]
    pub json: bool,
    /// Print only errors and essential results; no progress bars.
    #[arg(short, long, global = true)]
    pub quiet: bool,
}

/// Everything needed to reach a repository: `backup_core::system::Access`
/// (shared with the daemon) plus the interactive password prompt.
#[derive(Debug)]
pub struct Settings {
    access: Access,
    retry_lock: Option<std::time::Duration>,
    system: Option<System>,
}

impl Settings {
    /// Merges flags, environment and the config file.
    pub fn resolve(args: &GlobalArgs) -> Result<Settings> {
        let system = args.config.as_deref().map(System::load).transpose()?;
        let overrides = Overrides {
            repository: args.repo.clone(),
            password_file: args.password_file.clone(),
            s3_endpoint: args.s3_endpoint.clone(),
            s3_region: args.s3_region.clone(),
            s3_path_style: args.s3_path_style,
        };
        let access = Access::resolve(system.as_ref(), &overrides)?;
        Ok(Settings {
            access,
            system,
            retry_lock: args.retry_lock,
        })
    }

    /// The system description read from `--config`, if one was given.
    pub fn system(&self) -> Option<&System> {
        self.system.as_ref()
    }

    /// Opens the store.
    pub fn store(&self) -> Result<Arc<dyn ObjectStore>> {
        Ok(self.access.store()?)
    }

    /// The password from BACKUP_PASSWORD, the password file, or a prompt.
    pub fn password(&self, confirm: bool) -> Result<Option<Vec<u8>>> {
        if let Some(p) = self.access.password()? {
            return Ok(Some(p));
        }
        prompt(confirm)
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
        // A prompt that fails (no terminal input, passwords differ) ends
        // the command with its own message.
        let mut failed = None;
        let opened = self.access.open(strict, || {
            prompt(false).or_else(|e| {
                failed = Some(e);
                Ok(None)
            })
        });
        if let Some(e) = failed {
            return Err(e);
        }
        let repo = opened?;
        if let Some(wait) = self.retry_lock {
            repo.set_lock_wait(wait);
        }
        Ok(repo)
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

/// Asks for the password on a terminal; `None` without one.
fn prompt(confirm: bool) -> Result<Option<Vec<u8>>> {
    if !std::io::stdin().is_terminal() {
        return Ok(None);
    }
    let p =
        rpassword::prompt_password("repository password: ").context("cannot read the password")?;
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
    Ok(Some(p.into_bytes()))
}
