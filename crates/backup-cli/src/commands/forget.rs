//! `backup forget`.

use crate::exit;
use crate::output::Output;
use crate::settings::Settings;
use anyhow::Result;
use backup_core::retention::{GroupBy, Policy, Span};
use backup_core::{forget, Decided, ForgetGroup, ForgetOptions, ForgetReport};
use serde_json::{json, Value};

/// Flags of `forget`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Then prune: delete the data no remaining snapshot references.
    #[arg(long)]
    prune: bool,
    #[command(flatten)]
    limits: super::prune::Limits,
    /// Keep the newest N snapshots (-1: all).
    #[arg(long, value_name = "N", allow_negative_numbers = true)]
    keep_last: Option<i64>,
    /// Keep the newest snapshot of each of the last N hours that have one (-1: all).
    #[arg(long, value_name = "N", allow_negative_numbers = true)]
    keep_hourly: Option<i64>,
    /// Keep the newest snapshot of each of the last N days (-1: all).
    #[arg(long, value_name = "N", allow_negative_numbers = true)]
    keep_daily: Option<i64>,
    /// Keep the newest snapshot of each of the last N ISO weeks (-1: all).
    #[arg(long, value_name = "N", allow_negative_numbers = true)]
    keep_weekly: Option<i64>,
    /// Keep the newest snapshot of each of the last N months (-1: all).
    #[arg(long, value_name = "N", allow_negative_numbers = true)]
    keep_monthly: Option<i64>,
    /// Keep the newest snapshot of each of the last N years (-1: all).
    #[arg(long, value_name = "N", allow_negative_numbers = true)]
    keep_yearly: Option<i64>,
    /// Keep every snapshot within this duration of the newest (e.g. 2d, 6m, 1y2m3d, 12h).
    #[arg(long, value_name = "DURATION")]
    keep_within: Option<String>,
    /// Keep the newest snapshot of each hour within this duration of the newest.
    #[arg(long, value_name = "DURATION")]
    keep_within_hourly: Option<String>,
    /// Keep the newest snapshot of each day within this duration of the newest.
    #[arg(long, value_name = "DURATION")]
    keep_within_daily: Option<String>,
    /// Keep the newest snapshot of each ISO week within this duration of the newest.
    #[arg(long, value_name = "DURATION")]
    keep_within_weekly: Option<String>,
    /// Keep the newest snapshot of each month within this duration of the newest.
    #[arg(long, value_name = "DURATION")]
    keep_within_monthly: Option<String>,
    /// Keep the newest snapshot of each year within this duration of the newest.
    #[arg(long, value_name = "DURATION")]
    keep_within_yearly: Option<String>,
    /// Keep every snapshot carrying this tag (repeatable: any of them).
    #[arg(long = "keep-tag", value_name = "TAG")]
    keep_tags: Vec<String>,
    /// Only consider snapshots with this tag (repeatable: all must match).
    #[arg(long = "tag", value_name = "TAG")]
    tags: Vec<String>,
    /// Only consider snapshots from this host (repeatable: any of them).
    #[arg(long = "host", value_name = "HOST")]
    hosts: Vec<String>,
    /// Apply the policy to each group: host, paths, tags, comma-separated; "" for one group.
    #[arg(long, default_value = "host,paths", value_name = "FIELDS")]
    group_by: String,
    /// Show what would be removed; remove nothing.
    #[arg(long)]
    dry_run: bool,
}

fn span(text: &Option<String>) -> Result<Option<Span>> {
    Ok(text.as_deref().map(Span::parse).transpose()?)
}

/// The policy of the flags; `None` when no --keep-* flag is given.
fn flag_policy(a: &Args) -> Result<Option<Policy>> {
    let p = Policy {
        last: a.keep_last.unwrap_or(0),
        hourly: a.keep_hourly.unwrap_or(0),
        daily: a.keep_daily.unwrap_or(0),
        weekly: a.keep_weekly.unwrap_or(0),
        monthly: a.keep_monthly.unwrap_or(0),
        yearly: a.keep_yearly.unwrap_or(0),
        within: span(&a.keep_within)?,
        within_hourly: span(&a.keep_within_hourly)?,
        within_daily: span(&a.keep_within_daily)?,
        within_weekly: span(&a.keep_within_weekly)?,
        within_monthly: span(&a.keep_within_monthly)?,
        within_yearly: span(&a.keep_within_yearly)?,
        tags: a.keep_tags.clone(),
        tags_within: Vec::new(),
    };
    let given = [
        a.keep_last,
        a.keep_hourly,
        a.keep_daily,
        a.keep_weekly,
        a.keep_monthly,
        a.keep_yearly,
    ]
    .iter()
    .any(Option::is_some)
        || !p.is_empty();
    Ok(given.then_some(p))
}

fn decided_json(d: &Decided, reasons: bool) -> Value {
    let mut v = json!({"id": d.id.to_hex(), "time": d.time, "tags": d.tags});
    if reasons {
        v["reasons"] = json!(d.reasons);
    }
    v
}

fn group_json(g: &ForgetGroup) -> Value {
    json!({
        "keep": g.keep.iter().map(|d| decided_json(d, true)).collect::<Vec<_>>(),
        "remove": g.remove.iter().map(|d| decided_json(d, false)).collect::<Vec<_>>(),
    })
}

fn report_json(r: &ForgetReport, by: GroupBy) -> Value {
    let grouped = by.host || by.paths || by.tags;
    if !grouped {
        return match r.groups.first() {
            Some(g) => group_json(g),
            None => json!({"keep": [], "remove": []}),
        };
    }
    let groups = r.groups.iter().map(|g| {
        let mut v = group_json(g);
        v["group"] = json!(g.key);
        v
    });
    Value::Array(groups.collect())
}

fn print_text(r: &ForgetReport, dry_run: bool, out: Output) {
    for g in &r.groups {
        let mut what = Vec::new();
        if let Some(h) = &g.key.host {
            what.push(format!("host {h}"));
        }
        if let Some(p) = &g.key.paths {
            what.push(format!("paths {}", p.join(" ")));
        }
        if let Some(t) = &g.key.tags {
            what.push(format!("tags {}", t.join(",")));
        }
        if !what.is_empty() {
            out.say(format!("\n{}:", what.join(", ")));
        }
        out.say(format!(
            "keep {} snapshot(s):\n{:<10} {:<20} {:<20} REASONS",
            g.keep.len(),
            "ID",
            "TIME (UTC)",
            "TAGS"
        ));
        for d in &g.keep {
            out.say(format!(
                "{:<10} {:<20} {:<20} {}",
                d.id.short(),
                d.time.format("%Y-%m-%d %H:%M:%S"),
                d.tags.join(","),
                d.reasons.join(", ")
            ));
        }
        for d in &g.remove {
            let verb = if dry_run { "would remove" } else { "remove" };
            out.say(format!(
                "{verb} {} {}",
                d.id.short(),
                d.time.format("%Y-%m-%d %H:%M:%S")
            ));
        }
    }
    match dry_run {
        true => out.say(format!(
            "would remove {} snapshots (dry run: nothing changed)",
            r.removals().count()
        )),
        false => out.say(format!("removed {} snapshots", r.removed)),
    }
}

/// Runs `forget`.
pub fn run(s: &Settings, a: Args, out: Output) -> Result<i32> {
    let group_by = GroupBy::parse(&a.group_by)?;
    // Flags replace the [retention] table of the config file.
    let policy = match flag_policy(&a)? {
        Some(p) => p,
        None => s
            .system()
            .and_then(|sys| sys.retention.clone())
            .unwrap_or_default(),
    };
    policy.validate()?;
    let repo = s.open()?;
    let options = ForgetOptions {
        policy,
        group_by,
        tags: a.tags,
        hosts: a.hosts,
        dry_run: a.dry_run,
        // Snapshots that rollback state of this system refers to stay.
        pinned: match s.system() {
            Some(sys) => backup_core::rollback::pinned_snapshots(sys)?,
            None => Vec::new(),
        },
    };
    let report = forget(&repo, &options)?;
    // A damaged manifest is kept and its references unknown: prune refuses.
    let pruned = match a.prune && report.damaged.is_empty() {
        true => {
            let gone = report.removals().map(|d| d.id).collect();
            Some(super::prune::run_prune(
                &repo, &a.limits, a.dry_run, gone, out,
            )?)
        }
        false => None,
    };
    if out.json {
        let f = report_json(&report, group_by);
        match &pruned {
            Some(p) => out.print_json(&json!({"forget": f, "prune": p})),
            None => out.print_json(&f),
        }
    } else {
        print_text(&report, a.dry_run, out);
        if let Some(p) = &pruned {
            super::prune::print_report(p, out);
        }
    }
    for (id, e) in &report.damaged {
        eprintln!("error: snapshot {id} cannot be read, so it was not considered and is kept: {e}");
    }
    Ok(if report.damaged.is_empty() {
        exit::OK
    } else {
        exit::DAMAGED
    })
}
