//! Helpers of the PostgreSQL end-to-end tests: the server-computed
//! oracle (`fingerprint`, `schema_dump`), the `backup` calls the tests
//! share, child processes with time limits, open sessions, fake `pg_dump`s.

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
pub const FIXTURE: &str = include_str!("fixture.sql");

/// Tables with rows in the fixture (relkind `r`: partitions, not their parent).
pub const FIXTURE_TABLES: usize = 14;

/// A SQL string literal.
pub fn lit(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

/// Creates database `db` and runs the SQL script `sql` in it.
pub fn new_database(pg: &Postgres, db: &str, sql: &str) {
    pg.psql("postgres", &format!("CREATE DATABASE {db}"));
    psql_file(pg, db, sql);
}

/// Runs a SQL script with `psql -f -` (statement by statement, stop on the
/// first error), panicking with psql's messages when it fails.
pub fn psql_file(pg: &Postgres, db: &str, sql: &str) {
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
pub fn fixture_db(pg: &Postgres, db: &str) {
    pg.psql("postgres", &format!("CREATE DATABASE {db}"));
    psql_file(pg, db, FIXTURE);
}

/// Names of all databases of the cluster.
pub fn databases(pg: &Postgres) -> Vec<String> {
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
pub fn fingerprint(pg: &Postgres, db: &str) -> BTreeMap<String, String> {
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
pub fn rows_of(fp: &BTreeMap<String, String>, key: &str) -> u64 {
    fp[key].split(' ').next().unwrap().parse().unwrap()
}

/// Asserts two fingerprints are equal, listing every difference.
pub fn assert_same(what: &str, want: &BTreeMap<String, String>, got: &BTreeMap<String, String>) {
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
pub fn schema_dump(pg: &Postgres, db: &str) -> String {
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

pub fn assert_same_schema(want: &str, got: &str) {
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
pub fn snapshot_count(env: &Env) -> usize {
    let dir = Path::new(&env.repo).join("snapshots");
    if dir.exists() {
        files_under(&dir).len()
    } else {
        0
    }
}

/// Asserts a failed run left no snapshot and no lock behind.
pub fn assert_nothing_written(env: &Env, snapshots_before: usize) {
    assert_eq!(
        snapshot_count(env),
        snapshots_before,
        "a failed create must not write a snapshot"
    );
    assert!(
        env.listed_snapshots() == snapshots_before,
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
pub fn create(env: &Env, conns: &[&str], extra: &[&str]) -> Value {
    let mut args = vec!["create", "--json"];
    for c in conns {
        args.extend(["--postgres", c]);
    }
    args.extend(extra);
    env.run(&args).ok().json()
}

pub fn id_of(v: &Value) -> String {
    v["id"].as_str().expect("an id").to_string()
}

/// Runs a command with a time limit; returns what it did and how long it took.
pub fn run_limited(mut cmd: Command, limit: Duration) -> (Run, Duration) {
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
pub fn collect(child: &mut Child, limit: Duration) -> Run {
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
pub fn wait_for(pg: &Postgres, db: &str, sql: &str, want: &str, limit: Duration) {
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
pub struct Session {
    child: Child,
    stdin: Option<ChildStdin>,
}

impl Session {
    pub fn open(pg: &Postgres, db: &str, app: &str) -> Session {
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

    pub fn send(&mut self, sql: &str) {
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
pub fn server_major(pg: &Postgres) -> u32 {
    pg.psql("postgres", "SHOW server_version_num")
        .parse::<u32>()
        .unwrap()
        / 10000
}

/// A directory holding one executable `pg_dump` script.
pub fn fake_pg_dump(env: &Env, name: &str, script: &str) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let dir = env.path(name);
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("pg_dump");
    std::fs::write(&path, script).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    dir
}

/// (schema.name) -> (rows, digest) of every table in a manifest.
pub fn manifest_tables(db: &Value) -> BTreeMap<String, (u64, String)> {
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

/// Restores snapshot `id` into the new database `target` (with `extra`
/// options) and asserts that it equals `want`.
pub fn restore_matches(
    env: &Env,
    pg: &Postgres,
    id: &str,
    target: &str,
    want: &BTreeMap<String, String>,
    extra: &[&str],
) {
    let conn = pg.conninfo(target);
    let mut args = vec!["restore", id, "--postgres-target", &conn, "--quiet"];
    args.extend(extra);
    env.run(&args).ok();
    assert_same(
        &format!("snapshot {id} restored into {target} differs from what it captured"),
        want,
        &fingerprint(pg, target),
    );
}
