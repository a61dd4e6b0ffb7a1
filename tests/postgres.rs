//! PostgreSQL end to end: the real `backup` binary against throwaway
//! clusters (`testkit::Postgres`, one per test).
//!
//! The oracle of a round trip is PostgreSQL itself: `pg_dump --schema-only`
//! of source and copy, an MD5 over the sorted text of every row of every
//! table, sequence states, large objects and materialized views, all
//! computed by the server, never by the code under test.

use crate::common::*;
use serde_json::Value;
use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::time::{Duration, Instant};
use testkit::Postgres;

/// The rich fixture: types, partitions, identities, generated columns,
/// awkward names and values, views, matviews, triggers, RLS, grants,
/// sequences, large objects (see the file).
const FIXTURE: &str = include_str!("postgres_fixture.sql");

/// Tables with rows in the fixture (relkind `r`: partitions, not their parent).
const FIXTURE_TABLES: usize = 14;

// ---------------------------------------------------------------- helpers

/// A SQL string literal.
fn lit(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

/// Runs a SQL script with `psql -f -` (statement by statement, stop on the
/// first error), panicking with psql's messages when it fails.
fn psql_file(pg: &Postgres, db: &str, sql: &str) {
    let mut child = pg
        .client_command("psql")
        .args(["-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", db, "-f", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run psql");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(sql.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "psql -f failed in {db}:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Creates database `db` and loads the fixture into it.
fn fixture_db(pg: &Postgres, db: &str) {
    pg.psql("postgres", &format!("CREATE DATABASE {db}"));
    psql_file(pg, db, FIXTURE);
}

/// Names of all databases of the cluster.
fn databases(pg: &Postgres) -> Vec<String> {
    pg.psql("postgres", "SELECT datname FROM pg_database ORDER BY 1")
        .lines()
        .map(str::to_string)
        .collect()
}

/// Everything a restore must reproduce, computed by the server, keyed by
/// object: for every table (ONLY its own rows) and populated materialized
/// view the row count and the MD5 of its sorted row texts; the populated
/// flag of every materialized view; `last_value`/`is_called` of every
/// sequence; owner and MD5 of every large object.
fn fingerprint(pg: &Postgres, db: &str) -> BTreeMap<String, String> {
    let rels = pg.psql(
        db,
        "SELECT format('%I.%I', n.nspname, c.relname) || E'\\t' || c.relkind::text || E'\\t' || c.relispopulated::text \
         FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
         WHERE c.relkind IN ('r', 'm', 'S') AND n.nspname NOT IN ('pg_catalog', 'information_schema') \
         AND n.nspname NOT LIKE 'pg\\_toast%' ORDER BY 1",
    );
    let mut parts = vec![
        "SELECT 'large object ' || oid || E'\\t' || pg_get_userbyid(lomowner) || ' ' || md5(lo_get(oid)) \
         FROM pg_largeobject_metadata"
            .to_string(),
    ];
    for line in rels.lines() {
        let f: Vec<&str> = line.split('\t').collect();
        let (name, kind, populated) = (f[0], f[1], f[2] == "true");
        let rows = |label: &str| {
            format!(
                "SELECT {} || E'\\t' || (SELECT count(*) || ' rows ' || \
                 coalesce(md5(string_agg(t::text, E'\\n' ORDER BY t::text)), '-') FROM ONLY {name} t)",
                lit(&format!("{label} {name}"))
            )
        };
        match kind {
            "r" => parts.push(rows("table")),
            "m" if populated => parts.push(rows("matview")),
            "m" => parts.push(format!(
                "SELECT {} || E'\\tnot populated'",
                lit(&format!("matview {name}"))
            )),
            _ => parts.push(format!(
                "SELECT {} || E'\\t' || (SELECT last_value || ' ' || is_called FROM {name})",
                lit(&format!("sequence {name}"))
            )),
        }
    }
    let out = pg.psql(db, &parts.join(" UNION ALL "));
    out.lines()
        .map(|l| {
            let (k, v) = l.split_once('\t').expect("key\tvalue");
            (k.to_string(), v.to_string())
        })
        .collect()
}

/// Row count of table `key` ("table schema.name") in a fingerprint.
fn rows_of(fp: &BTreeMap<String, String>, key: &str) -> u64 {
    fp[key].split(' ').next().unwrap().parse().unwrap()
}

/// Asserts two fingerprints are equal, listing every difference.
fn assert_same(what: &str, want: &BTreeMap<String, String>, got: &BTreeMap<String, String>) {
    let mut diffs = Vec::new();
    for (k, v) in want {
        match got.get(k) {
            None => diffs.push(format!("  missing: {k} ({v})")),
            Some(g) if g != v => diffs.push(format!("  differs: {k}: want {v}, got {g}")),
            _ => {}
        }
    }
    for (k, v) in got {
        if !want.contains_key(k) {
            diffs.push(format!("  extra: {k} ({v})"));
        }
    }
    assert!(diffs.is_empty(), "{what}:\n{}", diffs.join("\n"));
}

/// `pg_dump --schema-only`, without comments, `SET` lines and the random
/// `\restrict` keys.
fn schema_dump(pg: &Postgres, db: &str) -> String {
    let out = pg
        .client_command("pg_dump")
        .args(["--schema-only", "-d", db])
        .output()
        .expect("run pg_dump");
    assert!(
        out.status.success(),
        "pg_dump {db}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| {
            !(l.trim().is_empty()
                || l.starts_with("--")
                || l.starts_with("\\restrict")
                || l.starts_with("\\unrestrict")
                || l.starts_with("SET ")
                || l.starts_with("SELECT pg_catalog.set_config"))
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn assert_same_schema(want: &str, got: &str) {
    if want == got {
        return;
    }
    let only = |a: &str, b: &str| {
        let b: Vec<&str> = b.lines().collect();
        a.lines()
            .filter(|l| !b.contains(l))
            .map(|l| format!("  {l}"))
            .collect::<Vec<_>>()
            .join("\n")
    };
    panic!(
        "the restored schema differs from the source:\nonly in the source:\n{}\nonly in the copy:\n{}",
        only(want, got),
        only(got, want)
    );
}

/// Snapshot manifests in the repository.
fn snapshot_count(env: &Env) -> usize {
    let dir = Path::new(&env.repo).join("snapshots");
    if dir.exists() {
        files_under(&dir).len()
    } else {
        0
    }
}

/// Asserts a failed run left no snapshot and no lock behind.
fn assert_nothing_written(env: &Env, snapshots_before: usize) {
    assert_eq!(
        snapshot_count(env),
        snapshots_before,
        "a failed create must not write a snapshot"
    );
    assert!(
        env.run(&["snapshots", "--json"])
            .ok()
            .json()
            .as_array()
            .unwrap()
            .len()
            == snapshots_before,
        "`backup snapshots` lists a snapshot from a failed create"
    );
    let locks = Path::new(&env.repo).join("locks");
    if locks.exists() {
        assert!(
            files_under(&locks).is_empty(),
            "a failed create left a lock: {:?}",
            files_under(&locks)
        );
    }
}

/// `backup create --json --postgres CONN... EXTRA...` that must succeed.
fn create(env: &Env, conns: &[&str], extra: &[&str]) -> Value {
    let mut args = vec!["create", "--json"];
    for c in conns {
        args.extend(["--postgres", c]);
    }
    args.extend(extra);
    env.run(&args).ok().json()
}

fn id_of(v: &Value) -> String {
    v["id"].as_str().expect("an id").to_string()
}

/// Runs a command with a time limit; returns what it did and how long it took.
fn run_limited(mut cmd: Command, limit: Duration) -> (Run, Duration) {
    let start = Instant::now();
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let out = collect(&mut child, limit);
    (out, start.elapsed())
}

/// Waits for a child (killing it after `limit`) and collects its output.
fn collect(child: &mut Child, limit: Duration) -> Run {
    let mut so = child.stdout.take().unwrap();
    let mut se = child.stderr.take().unwrap();
    let t_out = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = so.read_to_string(&mut s);
        s
    });
    let t_err = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = se.read_to_string(&mut s);
        s
    });
    let deadline = Instant::now() + limit;
    let status = loop {
        if let Some(st) = child.try_wait().unwrap() {
            break st;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "still running after {limit:?}; stderr: {}",
                t_err.join().unwrap()
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    Run {
        code: status.code().unwrap_or(-1),
        stdout: t_out.join().unwrap(),
        stderr: t_err.join().unwrap(),
    }
}

/// Polls `sql` (run in `db`) until it prints `want`.
fn wait_for(pg: &Postgres, db: &str, sql: &str, want: &str, limit: Duration) {
    let deadline = Instant::now() + limit;
    loop {
        let got = pg.psql(db, sql);
        if got == want {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "waited {limit:?} for {sql:?} to give {want:?}; last: {got:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A `psql` session that stays open, fed through a pipe, named by
/// `application_name` so that `pg_stat_activity` finds it.
struct Session {
    child: Child,
    stdin: Option<ChildStdin>,
}

impl Session {
    fn open(pg: &Postgres, db: &str, app: &str) -> Session {
        let mut child = pg
            .client_command("psql")
            .args(["-X", "-q", "-d", db])
            .env("PGAPPNAME", app)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("run psql");
        let stdin = child.stdin.take();
        Session { child, stdin }
    }

    fn send(&mut self, sql: &str) {
        let w = self.stdin.as_mut().expect("open");
        w.write_all(sql.as_bytes()).unwrap();
        w.write_all(b"\n").unwrap();
        w.flush().unwrap();
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        self.stdin.take();
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The server's major version.
fn server_major(pg: &Postgres) -> u32 {
    pg.psql("postgres", "SHOW server_version_num")
        .parse::<u32>()
        .unwrap()
        / 10000
}

/// A directory holding one executable `pg_dump` script.
fn fake_pg_dump(env: &Env, name: &str, script: &str) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let dir = env.path(name);
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("pg_dump");
    std::fs::write(&path, script).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    dir
}

/// (schema.name) -> (rows, digest) of every table in a manifest.
fn manifest_tables(db: &Value) -> BTreeMap<String, (u64, String)> {
    db["tables"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            (
                format!(
                    "{}.{}",
                    t["schema"].as_str().unwrap(),
                    t["name"].as_str().unwrap()
                ),
                (
                    t["rows"].as_u64().unwrap(),
                    t["digest"].as_str().unwrap().to_string(),
                ),
            )
        })
        .collect()
}

// ------------------------------------------------------------ round trips

#[test]
fn fixture_round_trips_schema_rows_sequences_large_objects_and_matviews() {
    let pg = Postgres::start();
    fixture_db(&pg, "dms");
    let env = Env::local();
    env.init();
    let want = fingerprint(&pg, "dms");
    let want_schema = schema_dump(&pg, "dms");

    let created = create(&env, &[&pg.conninfo("dms")], &[]);
    let id = id_of(&created);
    let dbs = created["databases"].as_array().unwrap();
    assert_eq!(dbs.len(), 1, "{created}");
    assert_eq!(dbs[0]["database"], "dms");
    assert_eq!(dbs[0]["tables"], FIXTURE_TABLES, "{created}");
    let want_rows: u64 = want
        .keys()
        .filter(|k| k.starts_with("table "))
        .map(|k| rows_of(&want, k))
        .sum();
    assert_eq!(dbs[0]["rows"], want_rows, "{created}");
    assert!(dbs[0]["bytes"].as_u64().unwrap() > 2_000_000, "{created}");
    assert!(created["new_bytes"].as_u64().unwrap() > 0);
    assert!(created["stored_bytes"].as_u64().unwrap() > 0);

    // The manifest: partitions (not their parent), COPY columns without
    // generated or dropped ones, sequences, large objects, matviews.
    let shown = env.run(&["show", &id, "--json"]).ok().json();
    let m = &shown["databases"][0];
    assert!(m["server_version_num"].as_u64().unwrap() >= 150000, "{m}");
    let tables = manifest_tables(m);
    for t in [
        "sales.orders_2023",
        "sales.orders_2024",
        "sales.orders_other",
        "Kunden Übersicht.weird\"name",
        "audit.empty_table",
        "audit.log_archive",
    ] {
        assert!(tables.contains_key(t), "{t} missing from {tables:?}");
    }
    assert!(!tables.contains_key("sales.orders"), "{tables:?}");
    assert_eq!(tables["audit.empty_table"].0, 0);
    assert_eq!(
        tables["audit.log"].0,
        rows_of(&want, "table audit.log"),
        "the parent's rows only"
    );
    let customers = m["tables"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "customers")
        .unwrap();
    let cols: Vec<&str> = customers["columns"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap())
        .collect();
    assert!(
        cols.contains(&"id") && cols.contains(&"history"),
        "{cols:?}"
    );
    assert!(
        !cols.contains(&"name_upper") && !cols.contains(&"obsolete"),
        "{cols:?}"
    );
    let seq = |name: &str| {
        m["sequences"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["name"] == name)
            .unwrap_or_else(|| panic!("sequence {name} not in {}", m["sequences"]))
            .clone()
    };
    assert_eq!(seq("batch_no")["last_value"], -17);
    assert_eq!(seq("batch_no")["is_called"], false);
    assert_eq!(seq("untouched")["is_called"], false);
    assert_eq!(seq("invoice_print_no")["last_value"], 5042);
    assert_eq!(seq("invoice_print_no")["is_called"], true);
    let oids: Vec<u64> = m["large_objects"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["oid"].as_u64().unwrap())
        .collect();
    assert_eq!(oids, [424242, 424243, 424244]);
    let populated: BTreeMap<String, bool> = m["matviews"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| {
            (
                v["name"].as_str().unwrap().to_string(),
                v["populated"].as_bool().unwrap(),
            )
        })
        .collect();
    assert!(populated["mv_totals"]);
    assert!(populated["mv_by_status"]);
    assert!(!populated["mv_never_refreshed"]);

    // Restore into a new database and compare with the source.
    let r = env
        .run(&[
            "restore",
            &id,
            "--postgres-target",
            &pg.conninfo("dms_copy"),
            "--json",
        ])
        .ok()
        .json();
    assert_eq!(r["snapshot"], id.as_str());
    let d = &r["database"];
    assert_eq!(d["database"], "dms_copy", "{r}");
    assert_eq!(d["tables"], FIXTURE_TABLES);
    assert_eq!(d["rows"], want_rows);
    assert!(
        d["previous"].is_null() && d["downtime_secs"].is_null(),
        "{r}"
    );
    assert!(d["duration_secs"].as_f64().unwrap() > 0.0);
    assert_same(
        "the restored database differs from the source",
        &want,
        &fingerprint(&pg, "dms_copy"),
    );
    assert_same_schema(&want_schema, &schema_dump(&pg, "dms_copy"));

    // A capture of the copy carries the same rows and digests, and `diff`
    // sees no change between the two snapshots.
    let again = create(&env, &[&pg.conninfo("dms_copy")], &[]);
    let id2 = id_of(&again);
    let shown2 = env.run(&["show", &id2, "--json"]).ok().json();
    assert_eq!(tables, manifest_tables(&shown2["databases"][0]));
    let diff = env.run(&["diff", &id, &id2, "--json"]).ok().json();
    assert_eq!(diff, serde_json::json!([]), "{diff}");

    // Identity and serial columns continue where the source stands.
    for db in ["dms", "dms_copy"] {
        let next = pg.psql(
            db,
            "INSERT INTO sales.customers (name) VALUES ('next') RETURNING id, name_upper",
        );
        assert_eq!(next, "201|NEXT", "{db}");
        let inv = pg.psql(
            db,
            "INSERT INTO sales.invoices (period) VALUES ('[2030-01-01,2030-01-02)') RETURNING no",
        );
        assert_eq!(inv, "2200", "{db}");
    }
    // The triggers were created after the data: the audit log was not
    // doubled by the load, and they fire in the copy.
    assert_eq!(
        pg.psql("dms_copy", "SELECT count(*) FROM ONLY audit.log"),
        pg.psql("dms", "SELECT count(*) FROM ONLY audit.log")
    );
}

#[test]
fn replace_swaps_in_the_snapshot_and_keeps_the_previous_database() {
    let pg = Postgres::start();
    fixture_db(&pg, "dms");
    let env = Env::local();
    env.init();
    let at_snapshot = fingerprint(&pg, "dms");
    let schema_at_snapshot = schema_dump(&pg, "dms");
    let id = id_of(&create(&env, &[&pg.conninfo("dms")], &[]));

    // The live database moves on.
    psql_file(
        &pg,
        "dms",
        "INSERT INTO sales.events SELECT i, now(), 'late', NULL FROM generate_series(40001, 40100) i;
         DELETE FROM sales.kitchen_sink WHERE id = 3;
         DROP TABLE audit.cache;
         CREATE TABLE public.added_after (x int);
         INSERT INTO public.added_after VALUES (1);
         SELECT nextval('sales.invoice_print_no');
         SELECT lo_unlink(424242);
         REFRESH MATERIALIZED VIEW sales.mv_never_refreshed;",
    );
    let changed = fingerprint(&pg, "dms");
    assert_ne!(changed, at_snapshot);

    // A plain restore into it is refused and touches nothing.
    let before = databases(&pg);
    env.run(&["restore", &id, "--postgres-target", &pg.conninfo("dms")])
        .fails(9, "not empty");
    assert_same(
        "a refused restore changed the target",
        &changed,
        &fingerprint(&pg, "dms"),
    );
    assert_eq!(
        databases(&pg),
        before,
        "a refused restore left a database behind"
    );

    // Sessions on the live database: one busy, one idle in a transaction.
    let mut sleeper = pg
        .client_command("psql")
        .args(["-X", "-q", "-d", "dms", "-c", "SELECT pg_sleep(60)"])
        .env("PGAPPNAME", "sleeper")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut idler = Session::open(&pg, "dms", "idler");
    idler.send("BEGIN; SELECT 1;");
    wait_for(
        &pg,
        "postgres",
        "SELECT count(*) FROM pg_stat_activity WHERE datname = 'dms' \
         AND ((application_name = 'sleeper' AND state = 'active') \
           OR (application_name = 'idler' AND state = 'idle in transaction'))",
        "2",
        Duration::from_secs(10),
    );

    let (r, took) = run_limited(
        env.cmd(&[
            "restore",
            &id,
            "--postgres-target",
            &pg.conninfo("dms"),
            "--replace",
            "--json",
        ]),
        Duration::from_secs(120),
    );
    let r = r.ok().json();
    let d = &r["database"];
    assert_eq!(d["database"], "dms", "{r}");
    let previous = d["previous"]
        .as_str()
        .unwrap_or_else(|| panic!("{r}"))
        .to_string();
    assert!(previous.starts_with("dms__before_restore_"), "{r}");
    let downtime = d["downtime_secs"].as_f64().unwrap_or_else(|| panic!("{r}"));
    assert!((0.0..5.0).contains(&downtime), "downtime {downtime}s: {r}");
    assert!(downtime < took.as_secs_f64());

    // The live name holds the snapshot; the previous state is kept.
    assert_same(
        "the live database after --replace",
        &at_snapshot,
        &fingerprint(&pg, "dms"),
    );
    assert_same_schema(&schema_at_snapshot, &schema_dump(&pg, "dms"));
    assert_same(
        "the kept previous database",
        &changed,
        &fingerprint(&pg, &previous),
    );
    let dbs = databases(&pg);
    assert!(
        !dbs.iter().any(|n| n.contains("__restore_")),
        "side database left behind: {dbs:?}"
    );
    assert_eq!(
        pg.psql(
            "postgres",
            &format!(
                "SELECT string_agg(datallowconn::text, ',' ORDER BY datname) FROM pg_database \
                 WHERE datname IN ('dms', {})",
                lit(&previous)
            )
        ),
        "true,true",
        "both databases must accept connections again"
    );

    // The sessions on the old database were ended.
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(s) = sleeper.try_wait().unwrap() {
            break s;
        }
        if Instant::now() > deadline {
            let _ = sleeper.kill();
            panic!("the busy session on the replaced database was not terminated");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(!status.success(), "pg_sleep(60) cannot have finished");
    assert_eq!(
        pg.psql(
            "postgres",
            "SELECT count(*) FROM pg_stat_activity WHERE application_name IN ('sleeper', 'idler')"
        ),
        "0"
    );
    drop(idler);

    // --replace onto a name that does not exist yet: nothing to keep.
    let r = env
        .run(&[
            "restore",
            &id,
            "--postgres-target",
            &pg.conninfo("dms_new"),
            "--replace",
            "--json",
        ])
        .ok()
        .json();
    assert_eq!(r["database"]["database"], "dms_new", "{r}");
    assert!(r["database"]["previous"].is_null(), "{r}");
    assert_same(
        "--replace onto a new name",
        &at_snapshot,
        &fingerprint(&pg, "dms_new"),
    );
}

#[test]
fn verify_restore_test_passes_then_a_flipped_byte_fails_without_leftovers() {
    let pg = Postgres::start();
    fixture_db(&pg, "dms");
    let env = Env::local();
    env.init();
    let created = create(&env, &[&pg.conninfo("dms")], &[]);
    let id = id_of(&created);
    let server = pg.conninfo("postgres");
    let scratch_dbs =
        "SELECT count(*) FROM pg_database WHERE datname LIKE 'backup\\_restore\\_test\\_%'";

    let v = env
        .run(&["verify", &id, "--restore-test", &server, "--json"])
        .ok()
        .json();
    let tests = v["restore_tests"]
        .as_array()
        .unwrap_or_else(|| panic!("{v}"));
    assert_eq!(tests.len(), 1, "{v}");
    let t = &tests[0];
    assert_eq!(t["database"], "dms");
    assert!(
        t["scratch"]
            .as_str()
            .unwrap()
            .starts_with("backup_restore_test_"),
        "{t}"
    );
    assert_eq!(t["tables"], FIXTURE_TABLES);
    assert_eq!(t["rows"], created["databases"][0]["rows"]);
    assert_eq!(t["mismatches"], serde_json::json!([]), "{t}");
    assert_eq!(
        pg.psql("postgres", scratch_dbs),
        "0",
        "scratch database left behind"
    );
    // Without an id: the latest snapshot.
    env.run(&["verify", "--restore-test", &server]).ok();
    assert_eq!(pg.psql("postgres", scratch_dbs), "0");

    // Damage every pack in the middle: same size, so only reading finds it.
    let packs = files_under(&Path::new(&env.repo).join("data"));
    assert!(!packs.is_empty());
    for p in &packs {
        let len = std::fs::metadata(p).unwrap().len() as i64;
        flip_byte(p, len / 2);
    }
    let before = databases(&pg);
    let r = env.run(&["verify", &id, "--restore-test", &server, "--json"]);
    assert_eq!(r.code, 3, "{r:?}");
    assert_eq!(
        pg.psql("postgres", scratch_dbs),
        "0",
        "scratch database left behind"
    );
    env.run(&[
        "restore",
        &id,
        "--postgres-target",
        &pg.conninfo("dms_copy"),
    ])
    .fails(3, "damaged");
    assert_eq!(
        databases(&pg),
        before,
        "a refused restore left a database behind"
    ); // A damaged snapshot never replaces the live database.
    let live = fingerprint(&pg, "dms");
    env.run(&[
        "restore",
        &id,
        "--postgres-target",
        &pg.conninfo("dms"),
        "--replace",
    ])
    .fails(3, "damaged");
    assert_eq!(
        databases(&pg),
        before,
        "a refused --replace left a database behind"
    );
    assert_same(
        "the live database after a refused --replace",
        &live,
        &fingerprint(&pg, "dms"),
    );
}

// ------------------------------------------------------------ consistency

#[test]
fn concurrent_transfers_between_two_tables_are_captured_consistently() {
    const ACCOUNTS: i64 = 20_000;
    const START: i64 = 1_000;
    let pg = Postgres::start();
    pg.psql("postgres", "CREATE DATABASE bank");
    psql_file(
        &pg,
        "bank",
        &format!(
            "CREATE TABLE accounts_a (id int PRIMARY KEY, balance bigint NOT NULL, pad text);
             CREATE TABLE accounts_b (id int PRIMARY KEY, balance bigint NOT NULL, pad text);
             CREATE TABLE ledger (id bigserial PRIMARY KEY, a int NOT NULL, b int NOT NULL, amount bigint NOT NULL);
             INSERT INTO accounts_a SELECT i, {START}, repeat(md5(i::text), 6) FROM generate_series(1, {ACCOUNTS}) i;
             INSERT INTO accounts_b SELECT i, {START}, repeat(md5(i::text), 6) FROM generate_series(1, {ACCOUNTS}) i;"
        ),
    );
    let env = Env::local();
    env.init();
    let script = env.path("transfer.sql");
    std::fs::write(
        &script,
        format!(
            "\\set a random(1, {ACCOUNTS})\n\\set b random(1, {ACCOUNTS})\n\\set x random(1, 100)\n\
             BEGIN;\n\
             UPDATE accounts_a SET balance = balance - :x WHERE id = :a;\n\
             INSERT INTO ledger (a, b, amount) VALUES (:a, :b, :x);\n\
             UPDATE accounts_b SET balance = balance + :x WHERE id = :b;\n\
             COMMIT;\n"
        ),
    )
    .unwrap();
    let mut writer = pg
        .client_command("pgbench")
        .args(["-n", "-c", "2", "-j", "1", "-T", "300", "-f"])
        .arg(&script)
        .arg("bank")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("run pgbench");
    wait_for(
        &pg,
        "postgres",
        "SELECT (SELECT count(*) FROM pg_stat_activity WHERE datname = 'bank') >= 2",
        "t",
        Duration::from_secs(10),
    );
    std::thread::sleep(Duration::from_millis(300));
    let before: i64 = pg
        .psql("bank", "SELECT count(*) FROM ledger")
        .parse()
        .unwrap();
    assert!(before > 0, "the writer does not run");

    let id = id_of(&create(&env, &[&pg.conninfo("bank")], &["--jobs", "2"]));
    std::thread::sleep(Duration::from_millis(200));
    let after: i64 = pg
        .psql("bank", "SELECT count(*) FROM ledger")
        .parse()
        .unwrap();
    let _ = writer.kill();
    let _ = writer.wait();

    env.run(&[
        "restore",
        &id,
        "--postgres-target",
        &pg.conninfo("bank_copy"),
    ])
    .ok();
    let captured: i64 = pg
        .psql("bank_copy", "SELECT count(*) FROM ledger")
        .parse()
        .unwrap();
    assert!(
        before < captured && captured < after,
        "the capture must fall inside the writes: {before} < {captured} < {after}"
    );
    let total = 2 * ACCOUNTS * START;
    let check = pg.psql(
        "bank_copy",
        &format!(
            "SELECT (SELECT sum(balance) FROM accounts_a) + (SELECT sum(balance) FROM accounts_b) = {total}, \
                    (SELECT sum(balance) FROM accounts_b) - {ACCOUNTS} * {START} = (SELECT coalesce(sum(amount), 0) FROM ledger), \
                    (SELECT count(*) FROM accounts_a x LEFT JOIN (SELECT a, sum(amount) s FROM ledger GROUP BY a) l ON l.a = x.id \
                     WHERE x.balance <> {START} - coalesce(l.s, 0)) = 0, \
                    (SELECT count(*) FROM accounts_b x LEFT JOIN (SELECT b, sum(amount) s FROM ledger GROUP BY b) l ON l.b = x.id \
                     WHERE x.balance <> {START} + coalesce(l.s, 0)) = 0, \
                    (SELECT last_value FROM ledger_id_seq) >= (SELECT max(id) FROM ledger)"
        ),
    );
    assert_eq!(
        check, "t|t|t|t|t",
        "invariants (total, ledger vs b, per account a, per account b, sequence) of the restored copy"
    );
}

// ------------------------------------------------------------------ faults

#[test]
fn connection_faults_fail_with_exit_8_and_write_nothing() {
    let mut pg = Postgres::start();
    pg.psql("postgres", "CREATE DATABASE dms");
    pg.psql("dms", "CREATE TABLE t (x int); INSERT INTO t VALUES (1)");
    let env = Env::local();
    env.init();
    let port = pg.port();
    let base = |rest: &str| format!("host=127.0.0.1 port={port} {rest}");

    let r = env
        .run(&[
            "create",
            "--postgres",
            "postgresql://u:Leak3d-Pw@127.0.0.1/db?bogus=1",
        ])
        .fails(2, "bad connection string");
    assert!(!r.stderr.contains("Leak3d-Pw"), "{r:?}");
    assert_nothing_written(&env, 0);

    env.run(&[
        "create",
        "--postgres",
        &base("user=postgres dbname=no_such_db"),
    ])
    .fails(8, "no_such_db")
    .fails(8, "does not exist");
    assert_nothing_written(&env, 0);
    env.run(&[
        "create",
        "--postgres",
        &base("user=no_such_role dbname=dms"),
    ])
    .fails(8, "no_such_role")
    .fails(8, "does not exist");
    assert_nothing_written(&env, 0);

    // Password authentication for one role (the cluster trusts everyone else).
    pg.psql(
        "postgres",
        "SET password_encryption = 'scram-sha-256'; \
         CREATE ROLE secure_user LOGIN SUPERUSER PASSWORD 'Corr3ct-Horse'",
    );
    let hba = pg.data_dir().join("pg_hba.conf");
    let text = std::fs::read_to_string(&hba).unwrap();
    std::fs::write(
        &hba,
        format!("host all secure_user 127.0.0.1/32 scram-sha-256\n{text}"),
    )
    .unwrap();
    pg.psql("postgres", "SELECT pg_reload_conf()");
    std::thread::sleep(Duration::from_millis(500));

    let secret = "Wr0ng-Secret-xyz";
    let r = env
        .run(&[
            "create",
            "--postgres",
            &base(&format!("user=secure_user dbname=dms password={secret}")),
        ])
        .fails(8, "password authentication failed");
    assert!(
        !r.stderr.contains(secret) && !r.stdout.contains(secret),
        "{r:?}"
    );
    let uri = format!("postgresql://secure_user:{secret}@127.0.0.1:{port}/dms");
    let r = env
        .run(&["create", "--postgres", &uri])
        .fails(8, "password");
    assert!(
        !r.stderr.contains(secret) && !r.stdout.contains(secret),
        "{r:?}"
    );
    let no_password = Run::from(
        env.cmd(&["create", "--postgres", &base("user=secure_user dbname=dms")])
            .env_remove("PGPASSWORD")
            .env("PGPASSFILE", env.path("no-pgpass"))
            .output()
            .unwrap(),
    );
    no_password.fails(8, "password");
    assert_nothing_written(&env, 0);

    // The right password works and is stored nowhere.
    let good = create(
        &env,
        &[&base("user=secure_user dbname=dms password=Corr3ct-Horse")],
        &[],
    );
    let shown = env.run(&["show", &id_of(&good), "--json"]).ok();
    assert!(!shown.stdout.contains("Corr3ct-Horse"), "{}", shown.stdout);
    assert!(
        shown.stdout.contains("user=secure_user"),
        "{}",
        shown.stdout
    );
    assert_eq!(snapshot_count(&env), 1);

    // The server is down.
    pg.stop();
    let (r, took) = run_limited(
        env.cmd(&["create", "--postgres", &pg.conninfo("dms")]),
        Duration::from_secs(60),
    );
    let r = r.fails(8, "cannot connect");
    assert!(r.stderr.contains("is the server running"), "{r:?}");
    assert!(took < Duration::from_secs(15), "took {took:?}");
    assert_nothing_written(&env, 1);
}

#[test]
fn a_table_the_role_cannot_read_fails_the_capture() {
    let pg = Postgres::start();
    pg.psql("postgres", "CREATE DATABASE dms");
    psql_file(
        &pg,
        "dms",
        "CREATE ROLE clerk LOGIN;
         CREATE TABLE public.open_data (x int); INSERT INTO public.open_data VALUES (1);
         CREATE TABLE public.payroll (x int); INSERT INTO public.payroll VALUES (2);
         GRANT SELECT ON public.open_data TO clerk;",
    );
    let env = Env::local();
    env.init();
    let conn = format!("host=127.0.0.1 port={} user=clerk dbname=dms", pg.port());
    env.run(&["create", "--postgres", &conn])
        .fails(8, "public.payroll")
        .fails(8, "permission denied");
    assert_nothing_written(&env, 0);
    pg.psql("dms", "GRANT SELECT ON public.payroll TO clerk");
    let ok = create(&env, &[&conn], &[]);
    assert_eq!(ok["databases"][0]["rows"], 2, "{ok}");
}

#[test]
fn a_lock_that_cannot_be_taken_fails_within_the_lock_timeout() {
    let pg = Postgres::start();
    pg.psql("postgres", "CREATE DATABASE dms");
    pg.psql(
        "dms",
        "CREATE TABLE public.free (x int); CREATE TABLE public.busy (x int); INSERT INTO public.busy VALUES (1)",
    );
    let env = Env::local();
    env.init();
    let mut holder = Session::open(&pg, "dms", "holder");
    holder.send("BEGIN; LOCK TABLE public.busy IN ACCESS EXCLUSIVE MODE;");
    wait_for(
        &pg,
        "dms",
        "SELECT count(*) FROM pg_locks l JOIN pg_stat_activity a USING (pid) \
         WHERE a.application_name = 'holder' AND l.mode = 'AccessExclusiveLock' AND l.granted \
         AND l.relation = 'public.busy'::regclass",
        "1",
        Duration::from_secs(10),
    );
    let (r, took) = run_limited(
        env.cmd(&[
            "create",
            "--postgres",
            &pg.conninfo("dms"),
            "--lock-timeout",
            "1",
        ]),
        Duration::from_secs(60),
    );
    assert!(
        took < Duration::from_secs(8),
        "took {took:?} with --lock-timeout 1"
    );
    r.fails(8, "cannot lock table public.busy")
        .fails(8, "--lock-timeout");
    assert_nothing_written(&env, 0);
    holder.send("COMMIT;");
    drop(holder);
    create(&env, &[&pg.conninfo("dms")], &["--lock-timeout", "5"]);
}

#[test]
fn pg_dump_older_than_the_server_is_refused() {
    let pg = Postgres::start();
    pg.psql("postgres", "CREATE DATABASE dms");
    pg.psql("dms", "CREATE TABLE t (x int)");
    let mut env = Env::local();
    env.init();
    let dir = fake_pg_dump(
        &env,
        "old-bin",
        "#!/bin/sh\nif [ \"$1\" = \"--version\" ]; then echo 'pg_dump (PostgreSQL) 9.6.0'; exit 0; fi\n\
         echo 'the old pg_dump must not be run' >&2\nexit 1\n",
    );
    env.extra
        .push(("BACKUP_PG_BIN".into(), dir.display().to_string()));
    // BACKUP_PG_BIN names the tools to use: an old one there is refused,
    // not silently replaced by another pg_dump found elsewhere.
    let r = env.run(&["create", "--postgres", &pg.conninfo("dms")]);
    assert_ne!(
        r.code, 0,
        "the pg_dump 9.6 in BACKUP_PG_BIN was skipped silently and another pg_dump used:\n{}",
        r.stdout
    );
    r.fails(8, "older than the server");
    assert_nothing_written(&env, 0);
}

#[test]
fn a_role_missing_on_the_target_fails_the_restore_with_exit_9_unless_no_owner() {
    let pg = Postgres::start();
    psql_file(
        &pg,
        "postgres",
        "CREATE ROLE gone_owner; CREATE ROLE gone_reader; CREATE DATABASE dms;",
    );
    psql_file(
        &pg,
        "dms",
        "CREATE TABLE public.t (x int); INSERT INTO public.t SELECT generate_series(1, 100);
         ALTER TABLE public.t OWNER TO gone_owner;
         GRANT SELECT ON public.t TO gone_reader;
         SELECT lo_from_bytea(880001, 'owned by a role that goes away'::bytea);
         ALTER LARGE OBJECT 880001 OWNER TO gone_owner;",
    );
    let want = fingerprint(&pg, "dms");
    let env = Env::local();
    env.init();
    let id = id_of(&create(&env, &[&pg.conninfo("dms")], &["--globals"]));
    // The roles disappear (as on another server).
    pg.psql("postgres", "DROP DATABASE dms");
    pg.psql("postgres", "DROP ROLE gone_owner; DROP ROLE gone_reader");

    let before = databases(&pg);
    env.run(&["restore", &id, "--postgres-target", &pg.conninfo("dms")])
        .fails(9, "pg_restore")
        .fails(9, "gone_owner");
    assert_eq!(
        databases(&pg),
        before,
        "a failed restore left its database behind"
    );

    let r = env
        .run(&[
            "restore",
            &id,
            "--postgres-target",
            &pg.conninfo("dms"),
            "--no-owner",
            "--json",
        ])
        .ok()
        .json();
    assert_eq!(r["database"]["rows"], 100, "{r}");
    let got = fingerprint(&pg, "dms");
    assert_eq!(got["table public.t"], want["table public.t"]);
    assert_eq!(
        got["large object 880001"].split(' ').nth(1),
        want["large object 880001"].split(' ').nth(1),
        "large object content"
    );
    assert_eq!(
        pg.psql(
            "dms",
            "SELECT pg_get_userbyid(relowner) FROM pg_class WHERE relname = 't'"
        ),
        "postgres"
    );
    // A restore test needs no roles either.
    env.run(&["verify", &id, "--restore-test", &pg.conninfo("postgres")])
        .ok();

    // --globals replays the captured roles first: owner and grants come back.
    let r = env.run(&[
        "restore",
        &id,
        "--postgres-target",
        &pg.conninfo("dms_globals"),
        "--globals",
    ]);
    assert_eq!(
        r.code, 0,
        "restore --globals failed (roles of the capture not replayed?):\n{}",
        r.stderr
    );
    assert_eq!(
        pg.psql(
            "dms_globals",
            "SELECT pg_get_userbyid(relowner) || ' ' || relacl::text FROM pg_class WHERE relname = 't'"
        ),
        "gone_owner {gone_owner=arwdDxt/gone_owner,gone_reader=r/gone_owner}"
    );
    assert_same("restore --globals", &want, &fingerprint(&pg, "dms_globals"));
}

#[test]
fn a_failing_or_killed_pg_dump_writes_no_snapshot() {
    let pg = Postgres::start();
    pg.psql("postgres", "CREATE DATABASE dms");
    pg.psql("dms", "CREATE TABLE t (x int); INSERT INTO t VALUES (1)");
    let major = server_major(&pg);
    let version = format!(
        "#!/bin/sh\nif [ \"$1\" = \"--version\" ]; then echo 'pg_dump (PostgreSQL) {major}.99'; exit 0; fi\n"
    );
    let mut env = Env::local();
    env.init();

    let failing = fake_pg_dump(
        &env,
        "failing-bin",
        &format!("{version}printf 'PGDMP-partial-archive'\necho 'pg_dump: error: simulated failure' >&2\nexit 1\n"),
    );
    env.extra = vec![("BACKUP_PG_BIN".into(), failing.display().to_string())];
    env.run(&["create", "--postgres", &pg.conninfo("dms")])
        .fails(8, "pg_dump failed")
        .fails(8, "simulated failure");
    assert_nothing_written(&env, 0);

    let killed = fake_pg_dump(
        &env,
        "killed-bin",
        &format!("{version}printf 'PGDMP-partial-archive'\nkill -9 $$\n"),
    );
    env.extra = vec![("BACKUP_PG_BIN".into(), killed.display().to_string())];
    env.run(&["create", "--postgres", &pg.conninfo("dms")])
        .fails(8, "pg_dump failed");
    assert_nothing_written(&env, 0);

    // The real one works from the same repository, over the Unix socket
    // and with a URI as well.
    env.extra.clear();
    let socket = format!(
        "host={} port={} user=postgres dbname=dms",
        pg.socket_dir().display(),
        pg.port()
    );
    let id = id_of(&create(&env, &[&socket], &[]));
    assert_eq!(snapshot_count(&env), 1);
    let uri = format!("postgresql://postgres@127.0.0.1:{}/dms_uri", pg.port());
    env.run(&["restore", &id, "--postgres-target", &uri]).ok();
    assert_eq!(pg.psql("dms_uri", "SELECT x FROM t"), "1");
}

#[test]
fn a_failed_restore_into_an_existing_empty_database_leaves_it_empty() {
    let pg = Postgres::start();
    psql_file(
        &pg,
        "postgres",
        "CREATE ROLE gone_owner; CREATE DATABASE dms;",
    );
    psql_file(
        &pg,
        "dms",
        "CREATE TABLE public.a (x int); INSERT INTO public.a VALUES (1);
         CREATE TABLE public.b (y int); ALTER TABLE public.b OWNER TO gone_owner;",
    );
    let env = Env::local();
    env.init();
    let id = id_of(&create(&env, &[&pg.conninfo("dms")], &[]));
    pg.psql("postgres", "DROP DATABASE dms");
    pg.psql("postgres", "DROP ROLE gone_owner");
    // The DBA prepares an empty database; the restore fails half-way
    // (pg_restore cannot give table b to the missing role).
    pg.psql("postgres", "CREATE DATABASE dms");
    env.run(&["restore", &id, "--postgres-target", &pg.conninfo("dms")])
        .fails(9, "gone_owner");
    let left = pg.psql(
        "dms",
        "SELECT coalesce(string_agg(relname::text, ',' ORDER BY relname), '') FROM pg_class \
         WHERE relnamespace = 'public'::regnamespace",
    );
    assert_eq!(
        left, "",
        "a failed restore left a half-restored database behind (a retry is then refused as not empty)"
    );
    env.run(&[
        "restore",
        &id,
        "--postgres-target",
        &pg.conninfo("dms"),
        "--no-owner",
    ])
    .ok();
}

/// Starts `create` in the background and waits until one of its
/// connections runs a COPY.
fn create_until_copying(env: &Env, pg: &Postgres, db: &str) -> Child {
    let mut child = env
        .cmd(&["create", "--postgres", &pg.conninfo(db), "--jobs", "1"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let copying = pg.psql(
            "postgres",
            "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'backup' \
             AND state = 'active' AND query LIKE 'COPY%'",
        );
        if copying != "0" {
            return child;
        }
        if let Some(st) = child.try_wait().unwrap() {
            let run = collect(&mut child, Duration::from_secs(1));
            panic!("create ended ({st}) before a COPY was seen; make the table bigger: {run:?}");
        }
        assert!(Instant::now() < deadline, "no COPY seen");
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn the_server_going_away_mid_capture_writes_no_snapshot() {
    let mut pg = Postgres::start();
    pg.psql("postgres", "CREATE DATABASE big");
    pg.psql(
        "big",
        "CREATE TABLE big AS SELECT i AS id, md5(i::text) || md5((i + 1)::text) || md5((i + 2)::text) AS payload \
         FROM generate_series(1, 300000) i",
    );
    let env = Env::local();
    env.init();

    // Its sessions are terminated.
    let mut child = create_until_copying(&env, &pg, "big");
    pg.psql(
        "postgres",
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'backup'",
    );
    collect(&mut child, Duration::from_secs(60)).fails(8, "table public.big");
    assert_nothing_written(&env, 0);

    // The server stops at once.
    let mut child = create_until_copying(&env, &pg, "big");
    pg.stop();
    collect(&mut child, Duration::from_secs(60)).fails(8, "table public.big");
    assert_nothing_written(&env, 0);
}

#[test]
fn a_table_hidden_by_row_level_security_is_not_captured_partially() {
    let pg = Postgres::start();
    pg.psql("postgres", "CREATE DATABASE dms");
    psql_file(
        &pg,
        "dms",
        "CREATE ROLE reader LOGIN IN ROLE pg_read_all_data;
         CREATE TABLE public.notes (author text, body text);
         INSERT INTO public.notes VALUES ('alice', 'one'), ('bob', 'two');
         ALTER TABLE public.notes ENABLE ROW LEVEL SECURITY;
         CREATE POLICY own_notes ON public.notes USING (author = current_user);",
    );
    let env = Env::local();
    env.init();
    // `reader` may read every table, but the policy shows it no row: a
    // capture must fail (like pg_dump's row_security = off), never store
    // an empty table.
    let conn = format!("host=127.0.0.1 port={} user=reader dbname=dms", pg.port());
    let r = env.run(&["create", "--postgres", &conn, "--json"]);
    assert_eq!(
        r.code, 8,
        "a table filtered by a row-level security policy was captured silently \
         (the snapshot holds fewer rows than the table):\n{}{}",
        r.stdout, r.stderr
    );
    r.fails(8, "row-level security");
    assert_nothing_written(&env, 0);
}

#[test]
fn an_unreadable_large_object_is_named_in_the_error() {
    let pg = Postgres::start();
    pg.psql("postgres", "CREATE DATABASE dms");
    psql_file(
        &pg,
        "dms",
        "CREATE ROLE reader LOGIN IN ROLE pg_read_all_data;
         CREATE TABLE public.t (x int);
         SELECT lo_from_bytea(777001, 'private scan'::bytea);",
    );
    let env = Env::local();
    env.init();
    let conn = format!("host=127.0.0.1 port={} user=reader dbname=dms", pg.port());
    env.run(&["create", "--postgres", &conn])
        .fails(8, "large object 777001")
        .fails(8, "permission denied");
    assert_nothing_written(&env, 0);
}

#[test]
fn a_table_without_columns_round_trips() {
    let pg = Postgres::start();
    pg.psql("postgres", "CREATE DATABASE dms");
    psql_file(
        &pg,
        "dms",
        "CREATE TABLE public.marker ();
         INSERT INTO public.marker DEFAULT VALUES; INSERT INTO public.marker DEFAULT VALUES;
         INSERT INTO public.marker DEFAULT VALUES;
         CREATE TABLE public.t (x int); INSERT INTO public.t VALUES (1);",
    );
    let env = Env::local();
    env.init();
    let r = env.run(&["create", "--postgres", &pg.conninfo("dms"), "--json"]);
    assert_eq!(
        r.code, 0,
        "a table with no columns breaks the capture: {}",
        r.stderr
    );
    let id = id_of(&r.json());
    env.run(&[
        "restore",
        &id,
        "--postgres-target",
        &pg.conninfo("dms_copy"),
    ])
    .ok();
    assert_same(
        "copy",
        &fingerprint(&pg, "dms"),
        &fingerprint(&pg, "dms_copy"),
    );
}

#[test]
fn database_owner_settings_and_privileges_survive_a_replace() {
    let pg = Postgres::start();
    psql_file(
        &pg,
        "postgres",
        "CREATE ROLE app_owner LOGIN;
         CREATE ROLE app_user LOGIN;
         CREATE DATABASE dms OWNER app_owner;
         ALTER DATABASE dms SET search_path = sales, public;
         ALTER ROLE app_user IN DATABASE dms SET work_mem = '8MB';
         COMMENT ON DATABASE dms IS 'DMS production';
         REVOKE CONNECT, TEMPORARY ON DATABASE dms FROM PUBLIC;
         GRANT CONNECT ON DATABASE dms TO app_user;",
    );
    pg.psql(
        "dms",
        "CREATE SCHEMA sales; CREATE TABLE sales.t (x int); INSERT INTO sales.t VALUES (1)",
    );
    let props = |db: &str| {
        pg.psql(
            "postgres",
            &format!(
                "SELECT 'owner=' || pg_get_userbyid(d.datdba) || E'\\nacl=' || coalesce(d.datacl::text, '-') \
                 || E'\\ncomment=' || coalesce(shobj_description(d.oid, 'pg_database'), '-') \
                 || E'\\nsettings=' || coalesce((SELECT string_agg(coalesce(pg_get_userbyid(nullif(s.setrole, 0)), '*') \
                     || ':' || array_to_string(s.setconfig, ','), ';' ORDER BY s.setrole) \
                     FROM pg_db_role_setting s WHERE s.setdatabase = d.oid), '-') \
                 FROM pg_database d WHERE d.datname = {}",
                lit(db)
            ),
        )
    };
    let want = props("dms");
    let env = Env::local();
    env.init();
    let id = id_of(&create(&env, &[&pg.conninfo("dms")], &[]));
    // A rollback onto the live database.
    let r = env
        .run(&[
            "restore",
            &id,
            "--postgres-target",
            &pg.conninfo("dms"),
            "--replace",
            "--json",
        ])
        .ok()
        .json();
    assert!(r["database"]["previous"].is_string(), "{r}");
    let got = props("dms");
    assert_eq!(
        got, want,
        "after --replace the live database lost its owner, settings, comment or privileges"
    );
}

#[test]
fn large_object_privileges_survive_a_restore() {
    let pg = Postgres::start();
    pg.psql("postgres", "CREATE DATABASE dms");
    psql_file(
        &pg,
        "dms",
        "CREATE ROLE scanner;
         SELECT lo_from_bytea(55501, 'invoice scan'::bytea);
         GRANT SELECT ON LARGE OBJECT 55501 TO scanner;
         COMMENT ON LARGE OBJECT 55501 IS 'scan of invoice 1';",
    );
    let env = Env::local();
    env.init();
    let id = id_of(&create(&env, &[&pg.conninfo("dms")], &[]));
    env.run(&[
        "restore",
        &id,
        "--postgres-target",
        &pg.conninfo("dms_copy"),
    ])
    .ok();
    let q = "SELECT oid || ' ' || pg_get_userbyid(lomowner) || ' ' || coalesce(lomacl::text, '-') || ' ' \
             || coalesce(obj_description(oid, 'pg_largeobject'), '-') FROM pg_largeobject_metadata";
    assert_eq!(
        pg.psql("dms_copy", q),
        pg.psql("dms", q),
        "large object privileges or comment lost"
    );
}

// -------------------------------------------------------- several sources

#[test]
fn two_databases_and_a_file_tree_in_one_snapshot() {
    // The second database has a name that needs quoting everywhere.
    const CRM: &str = "crm Ü's";
    let pg = Postgres::start();
    fixture_db(&pg, "dms");
    pg.psql("postgres", "CREATE DATABASE \"crm Ü's\"");
    psql_file(
        &pg,
        CRM,
        "CREATE TABLE public.leads (id serial PRIMARY KEY, name text, score real);
         INSERT INTO public.leads (name, score) SELECT 'lead ' || i, i / 7.0 FROM generate_series(1, 500) i;
         CREATE SEQUENCE public.campaign_no; SELECT setval('public.campaign_no', 77);",
    );
    let conn = |db: &str| {
        format!(
            "host=127.0.0.1 port={} user=postgres dbname='{}'",
            pg.port(),
            db.replace('\\', "\\\\").replace('\'', "\\'")
        )
    };
    let env = Env::local();
    env.init();
    let tree = env.path("srv/dms");
    fixture(&tree);
    let want_crm = fingerprint(&pg, CRM);

    env.run(&[
        "create",
        "--postgres",
        &pg.conninfo("dms"),
        "--postgres",
        &pg.conninfo("dms"),
    ])
    .fails(2, "given twice");
    assert_nothing_written(&env, 0);

    let created = create(
        &env,
        &[&pg.conninfo("dms"), &conn(CRM)],
        &["--files", tree.to_str().unwrap()],
    );
    let id = id_of(&created);
    let names: Vec<&str> = created["databases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["database"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["dms", CRM], "{created}");
    assert!(created["files"].as_u64().unwrap() > 0, "{created}");

    let before = databases(&pg);
    env.run(&[
        "restore",
        &id,
        "--postgres-target",
        &pg.conninfo("some_copy"),
    ])
    .fails(2, "several databases");
    env.run(&[
        "restore",
        &id,
        "--postgres-target",
        &pg.conninfo("some_copy"),
        "--database",
        "nope",
    ])
    .fails(2, "nope");
    assert_eq!(databases(&pg), before);

    // Into an existing, empty database.
    let copy = "crm copy ü's";
    pg.psql("postgres", "CREATE DATABASE \"crm copy ü's\"");
    let r = env
        .run(&[
            "restore",
            &id,
            "--postgres-target",
            &conn(copy),
            "--database",
            CRM,
            "--json",
        ])
        .ok()
        .json();
    assert_eq!(r["database"]["database"], copy);
    assert_eq!(r["database"]["rows"], 500);
    assert_same(
        "a database restored from a two-database snapshot",
        &want_crm,
        &fingerprint(&pg, copy),
    );
    // Again, over it, with --replace.
    pg.psql(copy, "DELETE FROM public.leads WHERE id > 10");
    let r = env
        .run(&[
            "restore",
            &id,
            "--postgres-target",
            &conn(copy),
            "--database",
            CRM,
            "--replace",
            "--json",
        ])
        .ok()
        .json();
    let previous = r["database"]["previous"]
        .as_str()
        .unwrap_or_else(|| panic!("{r}"));
    assert!(previous.starts_with("crm copy ü's__before_restore_"), "{r}");
    assert_same("after --replace", &want_crm, &fingerprint(&pg, copy));
    assert_eq!(pg.psql(previous, "SELECT count(*) FROM public.leads"), "10");

    let target = env.path("restore");
    env.run(&["restore", &id, "--target", target.to_str().unwrap()])
        .ok();
    assert_eq!(digest(&tree), digest(&restored(&target, &tree)));
}
