//! Salvage's fallbacks: the delta stays exact when its cheap ways cannot
//! serve. Deleted keys are found by comparing every key when too many hash
//! buckets differ (`ledger`) or when the key's type changed between the
//! states; a table with a thousand deletes (`trimmed`) is still served by
//! buckets, sized by the missing count; and a
//! keyed table is read in two scans when its one-scan reading fails in the
//! server (`BACKUP_FAILPOINT=salvage-gather`). A database that a rollback
//! restored has none of the capture's tuple identities: rolled back again,
//! every row is compared, the kept rows looked up in batches.

use super::salvage::{capture_then_deploy, counts};
use super::support::*;
use crate::common::*;
use crate::postgres::support::psql_file;
use std::collections::BTreeMap;
use std::time::Duration;
use testkit::Postgres;

const V1: &str = "
CREATE TABLE ledger (id int PRIMARY KEY, v text);
CREATE TABLE trimmed (id int PRIMARY KEY, v text);
CREATE TABLE retyped (id int PRIMARY KEY, v text);
CREATE TABLE notes (id int PRIMARY KEY, v text);
CREATE TABLE loose (id int NOT NULL, v text);
INSERT INTO ledger SELECT i, 'entry ' || i FROM generate_series(1, 45000) i;
INSERT INTO trimmed SELECT i, 'line ' || i FROM generate_series(1, 45000) i;
INSERT INTO retyped SELECT i, 'row ' || i FROM generate_series(1, 50) i;
INSERT INTO notes SELECT i, 'note ' || i FROM generate_series(1, 300) i;
INSERT INTO loose SELECT i, 'loose ' || i FROM generate_series(1, 300) i;
";

/// The key of `retyped` changes type: its text forms could differ; `loose`
/// gets a key only in the replaced state (paired by it, although the
/// rolled-back table has no index on it).
const V2: &str = "ALTER TABLE retyped ALTER COLUMN id TYPE bigint;
ALTER TABLE loose ADD PRIMARY KEY (id);";

/// `ledger`: 22 500 deletes differ in about 19 000 of the 65 536 buckets
/// (the most there are), past the 8 192 beyond which every key is compared.
/// `trimmed`: 1 000 deletes (more than the 512 differing buckets that sent
/// every key over when there were always 4 096) fall in at most 1 000 of
/// 32 768 buckets.
const BUSINESS: &str = "
DELETE FROM ledger WHERE id % 2 = 0;
UPDATE ledger SET v = 'changed' WHERE id IN (1, 3, 5);
DELETE FROM trimmed WHERE id % 45 = 0;
INSERT INTO ledger SELECT i, 'late entry' FROM generate_series(70001, 70004) i;
DELETE FROM retyped WHERE id IN (1, 2, 3);
UPDATE retyped SET v = 'changed' WHERE id = 10;
INSERT INTO retyped VALUES (100, 'new');
UPDATE notes SET v = 'changed' WHERE id IN (7, 8);
UPDATE loose SET v = 'changed' WHERE id IN (5, 6);
DELETE FROM loose WHERE id = 9;
";

fn want() -> BTreeMap<String, (u64, u64, u64)> {
    [
        ("dms:public.ledger", (4, 3, 22500)),
        ("dms:public.trimmed", (0, 0, 1000)),
        ("dms:public.retyped", (1, 1, 3)),
        ("dms:public.notes", (0, 2, 0)),
        ("dms:public.loose", (0, 2, 1)),
    ]
    .into_iter()
    .map(|(t, c)| (t.to_string(), c))
    .collect()
}

/// Sequential scans of `table` in `db` so far, once the statistics of
/// the sessions that ended are in.
fn seq_scans(pg: &Postgres, db: &str, table: &str) -> u64 {
    std::thread::sleep(Duration::from_millis(1500));
    pg.psql(
        db,
        &format!(
            "SELECT pg_stat_clear_snapshot(); \
             SELECT coalesce(seq_scan, 0) FROM pg_stat_user_tables WHERE relname = '{table}'"
        ),
    )
    .lines()
    .last()
    .unwrap_or_default()
    .trim()
    .parse()
    .unwrap_or_else(|e| panic!("no scan count of {table} in {db}: {e}"))
}

#[test]
fn the_delta_stays_exact_when_hash_buckets_and_the_one_scan_reading_cannot_serve() {
    let pg = Postgres::start();
    let sys = System::new(&[("dms", pg.conninfo("dms"))], &Hooks::default());
    capture_then_deploy(&pg, &sys, [V1, V2, BUSINESS]);
    let report = sys.roll_back_to_pre_deploy();
    assert_eq!(counts(&report["salvage"]["tables"]), want(), "{report}");
    let id = report["id"].as_str().unwrap().to_string();
    let kept = kept_of(&report, "dms");

    // One scan reads `notes` (only updates) on the kept side; when that
    // reading fails, a tally and a candidate scan follow it.
    let before = seq_scans(&pg, &kept, "notes");
    let again = sys.run(&["salvage", "compute", &id, "--json"]).ok().json();
    assert_eq!(counts(&again["tables"]), want(), "{again}");
    let one_scan = seq_scans(&pg, &kept, "notes");
    assert_eq!(one_scan - before, 1, "the kept notes read in one scan");
    let mut cmd = sys.cmd(&["salvage", "compute", &id, "--json"]);
    cmd.env("BACKUP_FAILPOINT", "salvage-gather");
    let fallback = Run::from(cmd.output().unwrap()).ok().json();
    assert_eq!(counts(&fallback["tables"]), want(), "{fallback}");
    assert_eq!(
        seq_scans(&pg, &kept, "notes") - one_scan,
        2,
        "the kept notes read in two scans after the failed one"
    );

    // The live database is now the restored one: the same deployment and
    // writes, rolled back again, are found by comparing every row.
    psql_file(&pg, "dms", V2);
    psql_file(&pg, "dms", BUSINESS);
    let again = sys.roll_back_to_pre_deploy();
    assert_eq!(counts(&again["salvage"]["tables"]), want(), "{again}");
    let id = again["id"].as_str().unwrap();
    let show = sys.run(&["salvage", "show", id, "--json"]).ok().json();
    assert_eq!(show["databases"][0]["identities_used"], false, "{show}");
}
