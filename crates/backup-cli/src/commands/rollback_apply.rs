//! `backup rollback apply PLAN`: carries out exactly a reviewed plan, or
//! refuses when the live state moved since it was made; with `--at TIME`,
//! hands it to the daemon, which applies it then (and refuses it then if
//! the live state moved by that time).

use super::rollback::{roll_back, system, RunArgs};
use crate::exit;
use crate::output::Output;
use crate::settings::Settings;
use anyhow::Result;
use backup_core::plan::{check_plan, make_plan, render_text, Plan};
use backup_core::rollback::RollbackOptions;
use chrono::{DateTime, Utc};
use std::path::PathBuf;

/// Flags of `rollback apply`.
#[derive(Debug, clap::Args)]
pub struct ApplyArgs {
    /// The plan written by `rollback plan -o FILE`.
    plan: PathBuf,
    /// When the live state moved: write a fresh plan to the same file for review instead of refusing (nothing is rolled back).
    #[arg(long)]
    replan: bool,
    #[command(flatten)]
    run: RunArgs,
    /// Do not capture the replaced state as a safety snapshot (tagged pre-rollback).
    #[arg(long)]
    no_safety_snapshot: bool,
    /// Hand the plan to the running daemon, which applies it at this time
    /// (RFC 3339, or YYYY-MM-DDTHH:MM[:SS] in the daemon's time zone).
    #[arg(long, value_name = "TIME")]
    at: Option<String>,
    /// With --at: the daemon's address (default: daemon.listen of --config).
    #[arg(long, value_name = "HOST:PORT", requires = "at")]
    daemon: Option<String>,
}

/// Runs `rollback apply`.
pub fn run(s: &Settings, a: ApplyArgs, out: Output) -> Result<i32> {
    let sys = system(s)?;
    let plan = Plan::load(&a.plan)?;
    plan.check_hash()?;
    let repo = s.open()?;
    let checked = check_plan(&repo, sys, &plan)?;
    let (id, snap, moved) = (checked.id, checked.snapshot, checked.moved);
    if !moved.is_empty() {
        if a.replan {
            let bars = out.progress();
            let fresh = make_plan(&repo, sys, id, &snap, None, &bars);
            bars.finish();
            let fresh = fresh?;
            fresh.save(&a.plan)?;
            if out.json {
                out.print_json(&serde_json::json!({"moved": moved, "replanned": fresh.hash}));
            } else {
                print!("{}", render_text(&fresh));
                eprintln!(
                    "the live state moved; a fresh plan was written to {}: review it, then apply it",
                    a.plan.display()
                );
            }
            return Ok(exit::MOVED);
        }
        if out.json {
            out.print_json(&serde_json::json!({"moved": moved, "plan": plan.hash}));
        }
        eprintln!(
            "error: the live state moved since the plan {} was made; nothing was changed:",
            a.plan.display()
        );
        for m in &moved {
            eprintln!("  {}: {}", m.component, m.what);
        }
        eprintln!(
            "make a fresh plan (`rollback apply --replan`, or `rollback plan`) and review it"
        );
        return Ok(exit::MOVED);
    }
    drop(repo);
    if let Some(at) = &a.at {
        return hand_to_daemon(s, &a, &plan, at, out);
    }
    let options = RollbackOptions {
        no_safety_snapshot: a.no_safety_snapshot,
        plan_hash: Some(plan.hash.clone()),
    };
    roll_back(s, &plan.snapshot, &[], &a.run, &options, out)
}

/// `--at`: the plan (checked above) goes to the daemon with its time.
fn hand_to_daemon(s: &Settings, a: &ApplyArgs, plan: &Plan, at: &str, out: Output) -> Result<i32> {
    let tz = s
        .system()
        .and_then(|sys| sys.daemon.as_ref())
        .map_or(chrono_tz::UTC, |d| d.timezone);
    let at = parse_at(at, tz)?;
    super::rollback::confirm(
        &a.run,
        &format!(
            "roll back to snapshot {} at {}",
            &plan.snapshot[..8],
            at.to_rfc3339()
        ),
    )?;
    let base = super::daemon_client::base_url(s, a.daemon.as_deref());
    let token = super::daemon_client::token(s)?;
    let body = serde_json::json!({
        "plan": serde_json::from_slice::<serde_json::Value>(&std::fs::read(&a.plan)?)?,
        "at": at,
        "no_safety_snapshot": a.no_safety_snapshot,
    });
    let planned = super::daemon_client::post(&base, "/v1/rollbacks", &token, &body)?;
    if out.json {
        out.print_json(&planned);
    } else {
        out.say(format!(
            "planned rollback {} handed to the daemon: it applies the plan at {} (UTC) unless the live state moves by then; `backup status` shows it",
            planned["id"].as_str().unwrap_or("?"),
            at.format("%Y-%m-%d %H:%M:%S")
        ));
    }
    Ok(exit::OK)
}

/// Reads `--at`: RFC 3339 with an offset, or a local time in `tz`.
fn parse_at(text: &str, tz: chrono_tz::Tz) -> Result<DateTime<Utc>> {
    if let Ok(t) = DateTime::parse_from_rfc3339(text) {
        return Ok(t.with_timezone(&Utc));
    }
    let naive = [
        "%Y-%m-%dT%H:%M:%S",
        "%Y-%m-%dT%H:%M",
        "%Y-%m-%d %H:%M:%S",
        "%Y-%m-%d %H:%M",
    ]
    .iter()
    .find_map(|f| chrono::NaiveDateTime::parse_from_str(text, f).ok());
    let Some(naive) = naive else {
        anyhow::bail!(backup_core::Error::usage(format!(
            "--at {text:?} is not a time: write e.g. 2026-12-02T02:00 (in the daemon's time zone) or 2026-12-02T02:00:00Z"
        )));
    };
    match naive.and_local_timezone(tz).earliest() {
        Some(t) => Ok(t.with_timezone(&Utc)),
        None => anyhow::bail!(backup_core::Error::usage(format!(
            "--at {text:?} does not exist in {} (a clock change skips it): give another time",
            tz.name()
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::parse_at;

    #[test]
    fn at_times_are_read_in_the_daemons_time_zone_unless_they_carry_an_offset() {
        let berlin = chrono_tz::Europe::Berlin;
        assert_eq!(
            parse_at("2026-12-02T02:00", berlin).unwrap().to_rfc3339(),
            "2026-12-02T01:00:00+00:00"
        );
        assert_eq!(
            parse_at("2026-12-02 02:00:30", chrono_tz::UTC)
                .unwrap()
                .to_rfc3339(),
            "2026-12-02T02:00:30+00:00"
        );
        assert_eq!(
            parse_at("2026-12-02T02:00:00-05:00", berlin)
                .unwrap()
                .to_rfc3339(),
            "2026-12-02T07:00:00+00:00"
        );
        assert!(parse_at("tomorrow", berlin).is_err());
        // 02:30 on the last Sunday of March does not exist in Berlin.
        assert!(parse_at("2026-03-29T02:30", berlin).is_err());
    }
}
