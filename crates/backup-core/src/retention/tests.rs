//! Hand-worked calendars for every rule. Weekdays and ISO weeks used below:
//! 2019-12-30 is a Monday in 2020-W01; 2020-12-28 (Monday) to 2021-01-03
//! (Sunday) is 2020-W53; 2021-01-04 is the Monday of 2021-W01.

use super::*;
use crate::snapshot::FilesComponent;

struct S(DateTime<Utc>, Vec<String>);

impl Dated for S {
    fn time(&self) -> DateTime<Utc> {
        self.0
    }
    fn tags(&self) -> &[String] {
        &self.1
    }
}

fn t(text: &str) -> DateTime<Utc> {
    chrono::NaiveDateTime::parse_from_str(text, "%Y-%m-%d %H:%M:%S")
        .or_else(|_| chrono::NaiveDateTime::parse_from_str(text, "%Y-%m-%d %H:%M"))
        .unwrap_or_else(|e| panic!("{text}: {e}"))
        .and_utc()
}

fn snaps(times: &[&str]) -> Vec<S> {
    times.iter().map(|x| S(t(x), Vec::new())).collect()
}

fn tagged(time: &str, tags: &[&str]) -> S {
    S(t(time), tags.iter().map(|s| s.to_string()).collect())
}

/// The kept snapshots' times (as given), newest first, with their reasons.
fn kept(list: &[S], policy: &Policy) -> Vec<(String, Vec<String>)> {
    apply(list, policy, None)
        .expect("valid policy")
        .into_iter()
        .filter(|d| d.keep)
        .map(|d| {
            let time = list[d.index].0.format("%Y-%m-%d %H:%M").to_string();
            (time, d.reasons)
        })
        .collect()
}

fn kept_times(list: &[S], policy: &Policy) -> Vec<String> {
    kept(list, policy).into_iter().map(|(t, _)| t).collect()
}

fn span(text: &str) -> Span {
    Span::parse(text).expect("a duration")
}

#[test]
fn durations_follow_restics_grammar() {
    let s = |y, m, d, h| Span {
        years: y,
        months: m,
        days: d,
        hours: h,
    };
    assert_eq!(span("2d"), s(0, 0, 2, 0));
    assert_eq!(span("6m"), s(0, 6, 0, 0));
    assert_eq!(span("1y2m3d"), s(1, 2, 3, 0));
    assert_eq!(span("12h"), s(0, 0, 0, 12));
    assert_eq!(span("3d1y"), s(1, 0, 3, 0));
    assert_eq!(span("1y2m3d4h").to_string(), "1y2m3d4h");
    for bad in [
        "", "2", "d", "2w", "1.5d", "1d1d", "-1d", "2 d", "0d", "0y0h", "1s",
    ] {
        let e = Span::parse(bad).expect_err(bad);
        assert_eq!(e.kind(), crate::ErrorKind::Usage);
        assert!(e.to_string().contains("y (years), m (months)"), "{e}");
    }
}

#[test]
fn durations_go_back_like_gos_add_date() {
    let back = |from: &str, d: &str| span(d).before(t(from)).format("%F %H:%M").to_string();
    // 2021-02-31 does not exist: Go normalises it to 3 March.
    assert_eq!(back("2021-03-31 12:00", "1m"), "2021-03-03 12:00");
    assert_eq!(back("2020-03-01 06:00", "1d"), "2020-02-29 06:00");
    assert_eq!(back("2024-02-29 00:00", "1y"), "2023-03-01 00:00");
    assert_eq!(back("2021-01-01 00:30", "1h"), "2020-12-31 23:30");
    assert_eq!(back("2021-01-15 10:00", "1y2m3d4h"), "2019-11-12 06:00");
}

#[test]
fn buckets_use_iso_weeks_starting_monday() {
    let week = |x: &str| bucket(3, t(x), 0);
    assert_eq!(week("2019-12-30 00:00"), 202001);
    assert_eq!(week("2020-12-28 00:00"), 202053);
    assert_eq!(week("2020-12-31 12:00"), 202053);
    assert_eq!(week("2021-01-01 12:00"), 202053);
    assert_eq!(week("2021-01-03 23:59"), 202053);
    assert_eq!(week("2021-01-04 00:00"), 202101);
    assert_eq!(bucket(1, t("2020-02-29 07:30"), 0), 2020022907);
    assert_eq!(bucket(2, t("2020-02-29 07:30"), 0), 20200229);
    assert_eq!(bucket(4, t("2020-02-29 07:30"), 0), 202002);
    assert_eq!(bucket(5, t("2020-02-29 07:30"), 0), 2020);
}

#[test]
fn keep_last_keeps_the_newest_whatever_the_input_order() {
    let list = snaps(&[
        "2021-01-03 00:00",
        "2021-01-01 00:00",
        "2021-01-05 00:00",
        "2021-01-02 00:00",
        "2021-01-04 00:00",
    ]);
    let p = Policy {
        last: 2,
        ..Policy::default()
    };
    let got = kept(&list, &p);
    assert_eq!(
        got,
        [
            ("2021-01-05 00:00".into(), vec!["last snapshot".to_string()]),
            ("2021-01-04 00:00".into(), vec!["last snapshot".to_string()]),
        ]
    );
    let all = apply(&list, &p, None).unwrap();
    let order: Vec<usize> = all.iter().map(|d| d.index).collect();
    assert_eq!(order, [2, 4, 0, 3, 1], "newest first");
    assert!(all[2..].iter().all(|d| !d.keep && d.reasons.is_empty()));
}

#[test]
fn hourly_keeps_the_newest_of_each_hour_and_the_oldest_while_count_is_left() {
    let list = snaps(&[
        "2021-05-01 10:05",
        "2021-05-01 10:40",
        "2021-05-01 11:10",
        "2021-05-01 12:00",
    ]);
    let p = |n| Policy {
        hourly: n,
        ..Policy::default()
    };
    assert_eq!(
        kept_times(&list, &p(2)),
        ["2021-05-01 12:00", "2021-05-01 11:10"]
    );
    // Three hours use 3 of 5: the oldest (10:05, same hour as 10:40) is kept too.
    let got = kept(&list, &p(5));
    let times: Vec<&str> = got.iter().map(|(t, _)| t.as_str()).collect();
    assert_eq!(
        times,
        [
            "2021-05-01 12:00",
            "2021-05-01 11:10",
            "2021-05-01 10:40",
            "2021-05-01 10:05"
        ]
    );
    assert_eq!(got[3].1, ["oldest hourly snapshot"]);
    assert_eq!(got[2].1, ["hourly snapshot"]);
    // Exactly used up: no oldest.
    assert_eq!(kept_times(&list, &p(3)).len(), 3);
}

#[test]
fn daily_around_a_leap_day() {
    let list = snaps(&[
        "2020-02-28 23:59",
        "2020-02-29 00:00",
        "2020-02-29 12:00",
        "2020-03-01 00:00",
    ]);
    let p = Policy {
        daily: 3,
        ..Policy::default()
    };
    assert_eq!(
        kept_times(&list, &p),
        ["2020-03-01 00:00", "2020-02-29 12:00", "2020-02-28 23:59"]
    );
}

#[test]
fn weekly_across_the_2020_w53_year_end() {
    let list = snaps(&[
        "2020-12-31 10:00",
        "2021-01-01 10:00",
        "2021-01-03 10:00",
        "2021-01-04 10:00",
    ]);
    let p = |n| Policy {
        weekly: n,
        ..Policy::default()
    };
    // 2021-01-04 is 2021-W01; the other three share 2020-W53.
    assert_eq!(
        kept_times(&list, &p(2)),
        ["2021-01-04 10:00", "2021-01-03 10:00"]
    );
    let got = kept(&list, &p(3));
    assert_eq!(got.len(), 3);
    assert_eq!(got[2].0, "2020-12-31 10:00");
    assert_eq!(got[2].1, ["oldest weekly snapshot"]);
}

#[test]
fn monthly_and_yearly_at_year_ends() {
    let list = snaps(&[
        "2019-12-31 23:00",
        "2020-01-01 00:00",
        "2020-06-01 00:00",
        "2020-12-31 23:59",
        "2021-01-01 00:00",
    ]);
    let yearly = |n| Policy {
        yearly: n,
        ..Policy::default()
    };
    assert_eq!(
        kept_times(&list, &yearly(2)),
        ["2021-01-01 00:00", "2020-12-31 23:59"]
    );
    // Unlimited: every year, and the oldest (already a new year).
    let got = kept(&list, &yearly(-1));
    assert_eq!(
        got.iter().map(|(t, _)| t.as_str()).collect::<Vec<_>>(),
        ["2021-01-01 00:00", "2020-12-31 23:59", "2019-12-31 23:00"]
    );
    assert_eq!(got[2].1, ["yearly snapshot"]);
    let monthly = Policy {
        monthly: 3,
        ..Policy::default()
    };
    assert_eq!(
        kept_times(&list, &monthly),
        ["2021-01-01 00:00", "2020-12-31 23:59", "2020-06-01 00:00"]
    );
}

#[test]
fn unlimited_count_keeps_every_bucket_and_the_oldest() {
    let list = snaps(&["2021-01-01 08:00", "2021-01-01 20:00", "2021-01-02 09:00"]);
    let p = Policy {
        daily: -1,
        ..Policy::default()
    };
    let got = kept(&list, &p);
    assert_eq!(got.len(), 3);
    assert_eq!(got[2].1, ["oldest daily snapshot"]);
}

#[test]
fn keep_within_counts_back_from_the_newest_snapshot_not_from_now() {
    let list = snaps(&[
        "2020-01-01 00:00",
        "2020-01-02 12:00",
        "2020-01-03 00:00",
        "2020-01-05 00:00",
    ]);
    let within = |d: &str| Policy {
        within: Some(span(d)),
        ..Policy::default()
    };
    // Threshold 2020-01-03 00:00, which is not "after" itself.
    assert_eq!(kept_times(&list, &within("2d")), ["2020-01-05 00:00"]);
    let got = kept(&list, &within("3d"));
    assert_eq!(
        got.iter().map(|(t, _)| t.as_str()).collect::<Vec<_>>(),
        ["2020-01-05 00:00", "2020-01-03 00:00", "2020-01-02 12:00"]
    );
    assert_eq!(got[0].1, ["within 3d"]);
    // One month back from 31 March 2021 is 3 March (not 28 February).
    let list = snaps(&[
        "2021-02-28 12:00",
        "2021-03-03 11:00",
        "2021-03-03 13:00",
        "2021-03-31 12:00",
    ]);
    assert_eq!(
        kept_times(&list, &within("1m")),
        ["2021-03-31 12:00", "2021-03-03 13:00"]
    );
}

#[test]
fn a_snapshot_from_the_future_is_not_the_newest() {
    let list = snaps(&["2020-01-01 00:00", "2020-01-05 00:00", "2099-01-01 00:00"]);
    let p = Policy {
        within: Some(span("5d")),
        ..Policy::default()
    };
    let decided = apply(&list, &p, Some(t("2026-01-01 00:00"))).unwrap();
    let keep: Vec<usize> = decided.iter().filter(|d| d.keep).map(|d| d.index).collect();
    assert_eq!(keep, [2, 1, 0]);
    // Without `now` the 2099 one is the newest: only it is within 5 days.
    let decided = apply(&list, &p, None).unwrap();
    let keep: Vec<usize> = decided.iter().filter(|d| d.keep).map(|d| d.index).collect();
    assert_eq!(keep, [2]);
}

#[test]
fn within_bucket_rules_keep_one_per_bucket_inside_the_span() {
    let list = snaps(&[
        "2021-01-03 11:00",
        "2021-01-03 13:00",
        "2021-01-04 10:00",
        "2021-01-05 08:00",
        "2021-01-05 12:00",
    ]);
    let p = Policy {
        within_daily: Some(span("2d")),
        ..Policy::default()
    };
    // Threshold 2021-01-03 12:00.
    let got = kept(&list, &p);
    assert_eq!(
        got.iter().map(|(t, _)| t.as_str()).collect::<Vec<_>>(),
        ["2021-01-05 12:00", "2021-01-04 10:00", "2021-01-03 13:00"]
    );
    assert_eq!(got[0].1, ["daily within 2d"]);
    let p = Policy {
        within_hourly: Some(span("5h")),
        within_weekly: Some(span("1m")),
        ..Policy::default()
    };
    let got = kept(&list, &p);
    assert_eq!(
        got,
        [
            (
                "2021-01-05 12:00".into(),
                vec![
                    "hourly within 5h".to_string(),
                    "weekly within 1m".to_string()
                ]
            ),
            (
                "2021-01-05 08:00".into(),
                vec!["hourly within 5h".to_string()]
            ),
            (
                "2021-01-03 13:00".into(),
                vec!["weekly within 1m".to_string()]
            ),
        ]
    );
    let p = Policy {
        within_monthly: Some(span("1y")),
        within_yearly: Some(span("2y")),
        ..Policy::default()
    };
    let list = snaps(&[
        "2019-06-01 00:00",
        "2020-11-30 00:00",
        "2020-12-31 00:00",
        "2021-01-05 00:00",
    ]);
    assert_eq!(
        kept(&list, &p),
        [
            (
                "2021-01-05 00:00".into(),
                vec![
                    "monthly within 1y".to_string(),
                    "yearly within 2y".to_string()
                ]
            ),
            (
                "2020-12-31 00:00".into(),
                vec![
                    "monthly within 1y".to_string(),
                    "yearly within 2y".to_string()
                ]
            ),
            (
                "2020-11-30 00:00".into(),
                vec!["monthly within 1y".to_string()]
            ),
            // Before 2020-01-05 (a year back) but after 2019-01-05 (two years).
            (
                "2019-06-01 00:00".into(),
                vec!["yearly within 2y".to_string()]
            ),
        ]
    );
}

#[test]
fn tags_keep_and_pre_rollback_is_never_removed() {
    let list = vec![
        tagged("2021-01-01 00:00", &["pre-deploy"]),
        tagged("2021-01-02 00:00", &["pre-rollback"]),
        tagged("2021-03-01 00:00", &["pre-deploy", "x"]),
        tagged("2021-06-01 00:00", &[]),
        tagged("2021-06-02 00:00", &["other"]),
    ];
    let p = Policy {
        last: 1,
        ..Policy::default()
    };
    assert_eq!(
        kept(&list, &p),
        [
            ("2021-06-02 00:00".into(), vec!["last snapshot".to_string()]),
            (
                "2021-01-02 00:00".into(),
                vec!["pre-rollback safety snapshot".to_string()]
            ),
        ]
    );
    let p = Policy {
        tags: vec!["pre-deploy".into(), "other".into()],
        ..Policy::default()
    };
    assert_eq!(
        kept_times(&list, &p),
        [
            "2021-06-02 00:00",
            "2021-03-01 00:00",
            "2021-01-02 00:00",
            "2021-01-01 00:00"
        ]
    );
    // keep_tag = { "pre-deploy" = "…" }: 95 days before 2021-06-02 is
    // 2021-02-27, 90 days is 2021-03-04.
    let p = Policy {
        tags_within: vec![("pre-deploy".into(), span("95d"))],
        ..Policy::default()
    };
    assert_eq!(
        kept(&list, &p),
        [
            (
                "2021-03-01 00:00".into(),
                vec!["tag pre-deploy within 95d".to_string()]
            ),
            (
                "2021-01-02 00:00".into(),
                vec!["pre-rollback safety snapshot".to_string()]
            ),
        ]
    );
    let p = Policy {
        tags_within: vec![("pre-deploy".into(), span("90d"))],
        ..Policy::default()
    };
    assert_eq!(kept_times(&list, &p), ["2021-01-02 00:00"]);
}

#[test]
fn rules_are_ored_and_each_gives_its_reason() {
    let list = snaps(&["2021-01-01 08:00", "2021-01-02 08:00", "2021-01-02 09:00"]);
    let p = Policy {
        last: 1,
        daily: 2,
        within: Some(span("1h")),
        ..Policy::default()
    };
    assert_eq!(
        kept(&list, &p),
        [
            (
                "2021-01-02 09:00".into(),
                vec![
                    "within 1h".to_string(),
                    "last snapshot".to_string(),
                    "daily snapshot".to_string()
                ]
            ),
            (
                "2021-01-01 08:00".into(),
                vec!["daily snapshot".to_string()]
            ),
        ]
    );
}

#[test]
fn an_empty_policy_and_bad_counts_are_refused() {
    let list = snaps(&["2021-01-01 08:00"]);
    let e = apply(&list, &Policy::default(), None).unwrap_err();
    assert_eq!(e.kind(), crate::ErrorKind::Usage);
    assert!(e.to_string().contains("no retention policy"), "{e}");
    let e = apply(
        &list,
        &Policy {
            daily: -2,
            ..Policy::default()
        },
        None,
    )
    .unwrap_err();
    assert_eq!(e.kind(), crate::ErrorKind::Usage);
    assert!(e.to_string().contains("keep-daily -2"), "{e}");
    assert!(apply(
        &Vec::<S>::new(),
        &Policy {
            last: 1,
            ..Policy::default()
        },
        None
    )
    .unwrap()
    .is_empty());
}

fn snapshot(host: &str, paths: &[&str], tags: &[&str]) -> Snapshot {
    let mut s = Snapshot::new(tags.iter().map(|t| t.to_string()).collect(), None);
    s.host = host.into();
    for p in paths {
        s.components.push(Component::Files(FilesComponent {
            path: p.to_string(),
            ..Default::default()
        }));
    }
    s
}

#[test]
fn groups_by_host_and_paths_by_default() {
    let list = vec![
        snapshot("a", &["/srv", "/etc"], &["x"]),
        snapshot("a", &["/etc", "/srv"], &[]),
        snapshot("b", &["/srv", "/etc"], &[]),
        snapshot("a", &["/srv"], &["x"]),
    ];
    let ids =
        |by: GroupBy| -> Vec<Vec<usize>> { group(&list, by).into_iter().map(|(_, v)| v).collect() };
    assert_eq!(ids(GroupBy::default()), [vec![0, 1], vec![3], vec![2]]);
    assert_eq!(GroupBy::parse("host,paths").unwrap(), GroupBy::default());
    assert_eq!(
        ids(GroupBy::parse("host").unwrap()),
        [vec![0, 1, 3], vec![2]]
    );
    assert_eq!(
        ids(GroupBy::parse("paths").unwrap()),
        [vec![0, 1, 2], vec![3]]
    );
    assert_eq!(
        ids(GroupBy::parse("tags").unwrap()),
        [vec![1, 2], vec![0, 3]]
    );
    assert_eq!(ids(GroupBy::parse("").unwrap()), [vec![0, 1, 2, 3]]);
    let key = GroupBy::default().key(&list[0]);
    assert_eq!(
        serde_json::to_value(&key).unwrap(),
        serde_json::json!({"host": "a", "paths": ["/etc", "/srv"]})
    );
    let e = GroupBy::parse("host,hosts").unwrap_err();
    assert_eq!(e.kind(), crate::ErrorKind::Usage);
}
