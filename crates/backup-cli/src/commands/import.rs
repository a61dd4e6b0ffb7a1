//! `backup import`.

use crate::exit;
use crate::output::Output;
use crate::settings::Settings;
use anyhow::Result;
use backup_core::import_bundle;
use std::path::PathBuf;

/// Flags of `import`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// A bundle written by `backup export`.
    bundle: PathBuf,
}

/// Runs `import`.
pub fn run(s: &Settings, a: Args, out: Output) -> Result<i32> {
    let repo = s.open()?;
    let bars = out.progress();
    let r = import_bundle(&repo, &a.bundle, &bars);
    bars.finish();
    let (id, snap) = r?;
    if out.json {
        out.print_json(
            &serde_json::json!({"id": id.to_hex(), "imported_from": snap.imported_from}),
        );
    } else {
        out.say(format!(
            "imported {} as snapshot {} (originally {})",
            a.bundle.display(),
            id.short(),
            snap.imported_from.as_deref().unwrap_or("?")
        ));
        if out.quiet {
            println!("{id}");
        }
    }
    Ok(exit::OK)
}
