//! Retention policies: which snapshots a `forget` keeps, and why.
//!
//! The rules are restic's `forget` rules, with the same meaning, on
//! purpose: operators already know them, restic's documentation explains
//! them, and a repository moved from one tool to the other should keep the
//! same snapshots under the same flags (the end-to-end tests check this
//! against restic itself). [`apply`] is a pure function of the snapshots'
//! times and tags, so the calendars can be worked out by hand and tested
//! here; loading, grouping and deleting is `forget`'s job.
//!
//! Semantics, in short: snapshots are considered newest first. Each bucket
//! rule (`keep_last`, `keep_hourly` … `keep_yearly`) keeps a snapshot whose
//! bucket (hour, day, ISO week, month or year of its UTC time; every
//! snapshot is its own bucket for `keep_last`) differs from the bucket of
//! the last snapshot that rule kept, while the rule has count left (`-1`:
//! unlimited); a rule that still has count left at the oldest snapshot
//! keeps that one too. `keep_within*` measure back from the newest
//! snapshot's time (not from now). All rules are ORed, and a snapshot tagged
//! [`PRE_ROLLBACK_TAG`] is always kept.
//!
//! These are the semantics of restic 0.16 and later. restic 0.14 (the
//! version the end-to-end tests compare with) has neither the
//! oldest-snapshot rule (restic PR #4366) nor `-1` (which it takes as a rule
//! that keeps nothing; restic now spells it `unlimited`).

use crate::error::{Error, Result};
use crate::snapshot::{Component, Snapshot};
use chrono::{DateTime, Datelike, NaiveDate, Timelike, Utc};
use std::fmt;

/// Snapshots with this tag are never removed by a policy.
pub const PRE_ROLLBACK_TAG: &str = "pre-rollback";

/// What the duration grammar is, for error messages.
pub const DURATION_GRAMMAR: &str =
    "numbers with units y (years), m (months), d (days), h (hours), \
     each unit at most once, e.g. \"2d\", \"6m\", \"1y2m3d\", \"12h\"";

/// A calendar duration in restic's grammar: years, months, days, hours
/// (`"1y2m3d4h"`). Months and years are calendar months and years, so
/// subtracting one follows the calendar, not a fixed number of seconds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Span {
    /// Years.
    pub years: u32,
    /// Calendar months.
    pub months: u32,
    /// Days.
    pub days: u32,
    /// Hours.
    pub hours: u32,
}

impl Span {
    /// Parses `<digits><unit>` groups with units `y`, `m`, `d`, `h`, in any
    /// order, each at most once (`"2d"`, `"6m"`, `"1y2m3d"`, `"12h"`). An
    /// empty or zero duration is refused: it would keep nothing.
    pub fn parse(text: &str) -> Result<Span> {
        let bad = || {
            Error::usage(format!(
                "{text:?} is not a duration: write {DURATION_GRAMMAR}"
            ))
        };
        let mut span = Span::default();
        let mut seen = String::new();
        let mut number = String::new();
        for c in text.trim().chars() {
            if c.is_ascii_digit() {
                number.push(c);
                continue;
            }
            let slot = match c {
                'y' => &mut span.years,
                'm' => &mut span.months,
                'd' => &mut span.days,
                'h' => &mut span.hours,
                _ => return Err(bad()),
            };
            if number.is_empty() || seen.contains(c) {
                return Err(bad());
            }
            *slot = number.parse().map_err(|_| bad())?;
            seen.push(c);
            number.clear();
        }
        if !number.is_empty() || seen.is_empty() {
            return Err(bad());
        }
        if span == Span::default() {
            return Err(Error::usage(format!(
                "{text:?} is zero: give a positive duration ({DURATION_GRAMMAR})"
            )));
        }
        Ok(span)
    }

    /// `t` moved back by this span the way restic (Go's `AddDate`) does it:
    /// years and months first, then days counted from the resulting
    /// month's first day (so 31 March minus one month is 3 March, not the
    /// 28th of February), then hours.
    pub fn before(&self, t: DateTime<Utc>) -> DateTime<Utc> {
        let months = i64::from(t.year()) * 12 + i64::from(t.month0())
            - i64::from(self.years) * 12
            - i64::from(self.months);
        let first = i32::try_from(months.div_euclid(12))
            .ok()
            .and_then(|y| NaiveDate::from_ymd_opt(y, months.rem_euclid(12) as u32 + 1, 1));
        let Some(first) = first else {
            return DateTime::<Utc>::MIN_UTC;
        };
        let days = i64::from(t.day()) - 1 - i64::from(self.days);
        let date = first + chrono::Duration::days(days);
        date.and_time(t.time()).and_utc() - chrono::Duration::hours(i64::from(self.hours))
    }
}

impl fmt::Display for Span {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (n, unit) in [
            (self.years, 'y'),
            (self.months, 'm'),
            (self.days, 'd'),
            (self.hours, 'h'),
        ] {
            if n != 0 {
                write!(f, "{n}{unit}")?;
            }
        }
        Ok(())
    }
}

/// A retention policy. Counts are `0` (rule off), a positive number, or
/// `-1` (unlimited). Every rule that is set keeps snapshots; a snapshot is
/// kept when any rule keeps it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Policy {
    /// Keep the newest N snapshots.
    pub last: i64,
    /// Keep the newest snapshot of each of the last N hours that have one.
    pub hourly: i64,
    /// … of the last N days.
    pub daily: i64,
    /// … of the last N ISO weeks (Monday first).
    pub weekly: i64,
    /// … of the last N months.
    pub monthly: i64,
    /// … of the last N years.
    pub yearly: i64,
    /// Keep every snapshot newer than the newest one minus this span.
    pub within: Option<Span>,
    /// Keep the newest snapshot of each hour within this span of the newest.
    pub within_hourly: Option<Span>,
    /// … of each day.
    pub within_daily: Option<Span>,
    /// … of each ISO week.
    pub within_weekly: Option<Span>,
    /// … of each month.
    pub within_monthly: Option<Span>,
    /// … of each year.
    pub within_yearly: Option<Span>,
    /// Keep every snapshot carrying any of these tags.
    pub tags: Vec<String>,
    /// Keep snapshots carrying the tag whose time is within the span of the
    /// newest snapshot (`keep_tag = { "pre-deploy" = "90d" }`).
    pub tags_within: Vec<(String, Span)>,
}

/// The bucket rules in restic's order, with their names.
const BUCKETS: [&str; 6] = ["last", "hourly", "daily", "weekly", "monthly", "yearly"];

impl Policy {
    /// Whether no rule is set.
    pub fn is_empty(&self) -> bool {
        self.counts().iter().all(|c| *c == 0)
            && self.within.is_none()
            && self.within_spans().iter().all(Option::is_none)
            && self.tags.is_empty()
            && self.tags_within.is_empty()
    }

    fn counts(&self) -> [i64; 6] {
        [
            self.last,
            self.hourly,
            self.daily,
            self.weekly,
            self.monthly,
            self.yearly,
        ]
    }

    fn within_spans(&self) -> [Option<Span>; 5] {
        [
            self.within_hourly,
            self.within_daily,
            self.within_weekly,
            self.within_monthly,
            self.within_yearly,
        ]
    }

    /// Refuses an empty policy and counts below -1 (usage errors).
    pub fn validate(&self) -> Result<()> {
        for (count, name) in self.counts().iter().zip(BUCKETS) {
            if *count < -1 {
                return Err(Error::usage(format!(
                    "keep-{name} {count}: give a count of 1 or more, or -1 for unlimited"
                )));
            }
        }
        if self.is_empty() {
            return Err(Error::usage(
                "no retention policy: give at least one --keep-* rule (or a [retention] table in \
                 the --config file); an empty policy would remove every snapshot",
            ));
        }
        Ok(())
    }
}

/// What a policy needs of a snapshot: its time and its tags.
pub trait Dated {
    /// The snapshot's time.
    fn time(&self) -> DateTime<Utc>;
    /// The snapshot's tags.
    fn tags(&self) -> &[String];
}

impl Dated for Snapshot {
    fn time(&self) -> DateTime<Utc> {
        self.time
    }
    fn tags(&self) -> &[String] {
        &self.tags
    }
}

/// The policy's verdict on one snapshot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    /// The snapshot's index in the list given to [`apply`].
    pub index: usize,
    /// Whether it is kept.
    pub keep: bool,
    /// Why it is kept (e.g. `"daily snapshot"`, `"within 2d"`); empty when
    /// it is removed.
    pub reasons: Vec<String>,
}

/// The bucket of `t` for bucket rule `rule` (0 = last … 5 = yearly);
/// `nr` is the snapshot's position, its own bucket for `keep_last`.
fn bucket(rule: usize, t: DateTime<Utc>, nr: usize) -> i64 {
    let (y, m, d, h) = (
        i64::from(t.year()),
        i64::from(t.month()),
        i64::from(t.day()),
        i64::from(t.hour()),
    );
    match rule {
        0 => nr as i64,
        1 => ((y * 100 + m) * 100 + d) * 100 + h,
        2 => (y * 100 + m) * 100 + d,
        3 => {
            let w = t.iso_week();
            i64::from(w.year()) * 100 + i64::from(w.week())
        }
        4 => y * 100 + m,
        _ => y,
    }
}

/// The newest time, ignoring snapshots dated after `now` (as restic
/// does: a clock gone wrong must not make every real snapshot "old").
fn newest<T: Dated>(snapshots: &[T], now: Option<DateTime<Utc>>) -> DateTime<Utc> {
    snapshots
        .iter()
        .map(Dated::time)
        .filter(|t| now.is_none_or(|n| *t < n))
        .max()
        .unwrap_or(DateTime::<Utc>::MIN_UTC)
}

/// The running state of the bucket rules.
struct Counters {
    count: [i64; 6],
    last: [Option<i64>; 6],
    within_last: [Option<i64>; 5],
}

/// Reasons from tags and `keep_within`, which count nothing.
fn uncounted_reasons<T: Dated>(s: &T, policy: &Policy, newest: DateTime<Utc>) -> Vec<String> {
    let mut reasons = Vec::new();
    if s.tags().iter().any(|t| t == PRE_ROLLBACK_TAG) {
        reasons.push("pre-rollback safety snapshot".to_string());
    }
    for tag in &policy.tags {
        if s.tags().contains(tag) {
            reasons.push(format!("tag {tag}"));
        }
    }
    for (tag, span) in &policy.tags_within {
        if s.tags().contains(tag) && s.time() > span.before(newest) {
            reasons.push(format!("tag {tag} within {span}"));
        }
    }
    if let Some(span) = policy.within {
        if s.time() > span.before(newest) {
            reasons.push(format!("within {span}"));
        }
    }
    reasons
}

/// Reasons from the bucket rules, updating their counters.
fn bucket_reasons(t: DateTime<Utc>, nr: usize, oldest: bool, c: &mut Counters) -> Vec<String> {
    let mut reasons = Vec::new();
    for (rule, name) in BUCKETS.iter().enumerate() {
        if c.count[rule] == 0 {
            continue;
        }
        let b = bucket(rule, t, nr);
        let new_bucket = c.last[rule] != Some(b);
        if !new_bucket && !oldest {
            continue;
        }
        c.last[rule] = Some(b);
        if c.count[rule] > 0 {
            c.count[rule] -= 1;
        }
        reasons.push(match new_bucket {
            true => format!("{name} snapshot"),
            false => format!("oldest {name} snapshot"),
        });
    }
    reasons
}

/// Reasons from the `keep_within_*` bucket rules.
fn within_bucket_reasons(
    t: DateTime<Utc>,
    policy: &Policy,
    newest: DateTime<Utc>,
    c: &mut Counters,
) -> Vec<String> {
    let mut reasons = Vec::new();
    for (i, span) in policy.within_spans().iter().enumerate() {
        let Some(span) = span else { continue };
        if t <= span.before(newest) {
            continue;
        }
        let b = bucket(i + 1, t, 0);
        if c.within_last[i] != Some(b) {
            c.within_last[i] = Some(b);
            reasons.push(format!("{} within {span}", BUCKETS[i + 1]));
        }
    }
    reasons
}

/// Applies `policy` to one group of snapshots. Returns one decision per
/// snapshot, newest first (snapshots of equal time in the given order).
/// `now`, when given, excludes snapshots dated after it from being "the
/// newest" that `keep_within*` measure from.
///
/// An empty policy, or a count below -1, is refused (a usage error).
pub fn apply<T: Dated>(
    snapshots: &[T],
    policy: &Policy,
    now: Option<DateTime<Utc>>,
) -> Result<Vec<Decision>> {
    policy.validate()?;
    let mut order: Vec<usize> = (0..snapshots.len()).collect();
    order.sort_by_key(|&i| std::cmp::Reverse(snapshots[i].time()));
    let newest = newest(snapshots, now);
    let mut c = Counters {
        count: policy.counts(),
        last: [None; 6],
        within_last: [None; 5],
    };
    let mut out = Vec::with_capacity(order.len());
    for (nr, &index) in order.iter().enumerate() {
        let s = &snapshots[index];
        let oldest = nr + 1 == order.len();
        let mut reasons = uncounted_reasons(s, policy, newest);
        reasons.extend(bucket_reasons(s.time(), nr, oldest, &mut c));
        reasons.extend(within_bucket_reasons(s.time(), policy, newest, &mut c));
        out.push(Decision {
            index,
            keep: !reasons.is_empty(),
            reasons,
        });
    }
    Ok(out)
}

/// What snapshots are grouped by before a policy is applied to each group
/// (`--group-by host,paths`, the default).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GroupBy {
    /// By host name.
    pub host: bool,
    /// By the set of component paths.
    pub paths: bool,
    /// By the set of tags.
    pub tags: bool,
}

impl Default for GroupBy {
    fn default() -> Self {
        GroupBy {
            host: true,
            paths: true,
            tags: false,
        }
    }
}

impl GroupBy {
    /// Parses a comma-separated list of `host`, `paths`, `tags`; an empty
    /// text makes one group of all snapshots.
    pub fn parse(text: &str) -> Result<GroupBy> {
        let mut by = GroupBy {
            host: false,
            paths: false,
            tags: false,
        };
        for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            match part {
                "host" => by.host = true,
                "paths" => by.paths = true,
                "tags" => by.tags = true,
                other => {
                    return Err(Error::usage(format!(
                        "--group-by {other:?}: group by host, paths and/or tags \
                         (comma-separated), or \"\" for one group"
                    )))
                }
            }
        }
        Ok(by)
    }

    /// The group `s` belongs to.
    pub fn key(&self, s: &Snapshot) -> GroupKey {
        let mut tags = s.tags.clone();
        tags.sort();
        tags.dedup();
        GroupKey {
            host: self.host.then(|| s.host.clone()),
            paths: self.paths.then(|| component_paths(s)),
            tags: self.tags.then_some(tags),
        }
    }
}

/// A group of snapshots: the values of the grouping fields (those not
/// grouped by are `None`).
#[derive(Debug, Clone, Default, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
pub struct GroupKey {
    /// The host name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    /// The sorted component paths.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub paths: Option<Vec<String>>,
    /// The sorted tags.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tags: Option<Vec<String>>,
}

/// A snapshot's component paths, sorted: each file component's path, and
/// `postgres:<database>` for each database component.
pub fn component_paths(s: &Snapshot) -> Vec<String> {
    let mut paths: Vec<String> = s
        .components
        .iter()
        .map(|c| match c {
            Component::Files(f) => f.path.clone(),
            Component::Postgres(p) => format!("postgres:{}", p.database),
        })
        .collect();
    paths.sort();
    paths.dedup();
    paths
}

/// Splits snapshots into groups, ordered by key; each group lists indexes
/// into `snapshots` in their given order.
pub fn group(snapshots: &[Snapshot], by: GroupBy) -> Vec<(GroupKey, Vec<usize>)> {
    let mut groups: std::collections::BTreeMap<GroupKey, Vec<usize>> = Default::default();
    for (i, s) in snapshots.iter().enumerate() {
        groups.entry(by.key(s)).or_default().push(i);
    }
    groups.into_iter().collect()
}

#[cfg(test)]
mod tests;
