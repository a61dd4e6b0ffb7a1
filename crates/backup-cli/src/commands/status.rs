//! `backup status`: what the daemon says about its jobs (`/v1/status`).

use super::daemon_client;
use crate::exit;
use crate::output::Output;
use crate::settings::Settings;
use anyhow::Result;
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
    let base = daemon_client::base_url(s, a.daemon.as_deref());
    let status = daemon_client::get(&base, "/v1/status")?;
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
    print_rollbacks(s, out);
}

fn print_rollbacks(s: &Value, out: Output) {
    let planned: Vec<&Value> = s["rollbacks"].as_array().into_iter().flatten().collect();
    if planned.is_empty() {
        return;
    }
    out.say(format!(
        "{:<16} {:<20} {:<9} {:<11} DETAIL",
        "ROLLBACK", "AT (UTC)", "SNAPSHOT", "STATE"
    ));
    for p in planned {
        out.say(format!(
            "{:<16} {:<20} {:<9} {:<11} {}",
            p["id"].as_str().unwrap_or(""),
            text(&p["at"]),
            p["snapshot"].as_str().unwrap_or("").get(..8).unwrap_or(""),
            p["state"].as_str().unwrap_or(""),
            p["detail"].as_str().unwrap_or("")
        ));
    }
}
