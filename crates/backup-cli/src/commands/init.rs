//! `backup init`.

use crate::exit;
use crate::output::Output;
use crate::settings::Settings;
use anyhow::{bail, Result};
use backup_core::{InitOptions, Repository};

/// Flags of `init`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Create an UNENCRYPTED repository (anyone who can read the storage can read the data).
    #[arg(long)]
    insecure_no_encryption: bool,
    /// zstd compression level for new data (1 fastest .. 19 smallest).
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(i32).range(1..=19))]
    compression_level: i32,
    /// Target pack size in MiB (larger packs mean fewer S3 requests).
    #[arg(long, default_value_t = 16, value_parser = clap::value_parser!(u64).range(1..=512))]
    pack_size_mib: u64,
}

/// Runs `init`.
pub fn run(s: &Settings, a: Args, out: Output) -> Result<i32> {
    let store = s.store()?;
    // Before asking for a password: is the place free?
    Repository::ensure_absent(store.as_ref())?;
    let password = if a.insecure_no_encryption {
        None
    } else {
        match s.password(true)? {
            Some(p) => Some(p),
            None => bail!(
                "an encrypted repository needs a password: set BACKUP_PASSWORD or \
                 BACKUP_PASSWORD_FILE, pass --password-file, run on a terminal to be asked, \
                 or pass --insecure-no-encryption"
            ),
        }
    };
    let options = InitOptions {
        password,
        compression_level: a.compression_level,
        pack_size: a.pack_size_mib * 1024 * 1024,
        ..Default::default()
    };
    let (repo, key) = Repository::init(store, options)?;
    let loc = repo.store().location();
    if out.json {
        out.print_json(&serde_json::json!({
            "repository": loc,
            "id": repo.config().id,
            "encrypted": key.is_some(),
            "key": key.map(|k| format!("keys/{k}")),
        }));
        return Ok(exit::OK);
    }
    match key {
        Some(k) => {
            out.say(format!(
                "created encrypted repository {} at {loc}",
                repo.config().id
            ));
            out.say(format!(
                "its master key is stored in {loc}/keys/{k}, encrypted with your password (argon2id + AES-256-GCM)."
            ));
            out.say("keep the password (or key file) safe: if it is lost, the data cannot be recovered by anyone.");
        }
        None => {
            out.say(format!(
                "created UNENCRYPTED repository {} at {loc}",
                repo.config().id
            ));
            out.say("anyone who can read this storage can read the backups.");
        }
    }
    Ok(exit::OK)
}
