//! `backup status`: what the daemon says about its jobs (`/v1/status`).

use crate::exit;
use crate::output::Output;
use crate::settings::Settings;
use anyhow::{bail, Context, Result};
use serde_json::Value;

/// Flags of `status`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The daemon's address (default: daemon.listen of --config, else 127.0.0.1:9187).
    #[arg(long, value_name = "HOST:PORT")]
    daemon: Option<String>,
}

/// Runs `status`.
pub fn run(s: &Settings, a: Args, out: Output) -> Result<i32> {
    let addr = match (&a.daemon, s.system().and_then(|sys| sys.daemon.as_ref())) {
        (Some(d), _) => d.clone(),
        (None, Some(d)) => d.listen.to_string(),
        (None, None) => backup_core::system::DEFAULT_LISTEN.to_string(),
    };
    let url = format!("http://{addr}/v1/status");
    let status: Value = match ureq::get(&url).timeout(std::time::Duration::from_secs(10)).call() {
        Ok(r) => r.into_json().context("the daemon's answer is not JSON")?,
        Err(e) => bail!(backup_core::Error::new(
            backup_core::ErrorKind::Storage,
            format!("cannot reach the daemon at {url} ({e}): is backupd running, and is daemon.listen right?")
        )),
    };
    if out.json {
        out.print_json(&status);
    } else {
        print_status(&status, out);
    }
    Ok(if status["healthy"] == true {
        exit::OK
    } else {
        exit::FAILURE
    })
}

fn text(v: &Value) -> String {
    v.as_str()
        .map(|s| s.replace('T', " ").chars().take(19).collect())
        .unwrap_or_else(|| "-".into())
}

fn print_status(s: &Value, out: Output) {
    out.say(format!(
        "backupd {} ({}): {}",
        s["version"].as_str().unwrap_or("?"),
        s["timezone"].as_str().unwrap_or("UTC"),
        if s["healthy"] == true {
            "healthy"
        } else {
            "UNHEALTHY"
        }
    ));
    for p in s["problems"].as_array().into_iter().flatten() {
        out.say(format!("  problem: {}", p.as_str().unwrap_or("")));
    }
    out.say(format!(
        "{:<16} {:<14} {:<20} {:<20} {:<8} LAST DETAIL",
        "JOB", "KIND", "NEXT RUN (UTC)", "LAST SUCCESS", "LAST"
    ));
    for j in s["jobs"].as_array().into_iter().flatten() {
        let last = &j["last"];
        let result = if j["running"] == true {
            "running"
        } else {
            last["result"].as_str().unwrap_or("-")
        };
        let detail = last["error"]
            .as_str()
            .or(last["detail"].as_str())
            .unwrap_or("");
        out.say(format!(
            "{:<16} {:<14} {:<20} {:<20} {:<8} {detail}",
            j["name"].as_str().unwrap_or(""),
            j["job"].as_str().unwrap_or(""),
            text(&j["next_run"]),
            text(&j["last_success"]),
            result
        ));
    }
}
