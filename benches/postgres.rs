//! PostgreSQL benchmark: `backup create` / `backup restore` against `pg_dump` / `pg_restore`.
//!
//! Run with `cargo bench --bench postgres`. The program
//!
//! 1. builds the release `backup` binary (`cargo build --release -p backup-cli`), or takes the
//!    binary named by `BACKUP_BIN`;
//! 2. starts a throwaway PostgreSQL cluster (`testkit::Postgres`: `initdb` + `pg_ctl`, default
//!    settings except `fsync = off`) and generates, server-side (`generate_series`, `random()`
//!    after a fixed `setseed`), a dealer-management database of about `BENCH_PG_MB` MiB:
//!    customers, vehicles, deals, repair orders and their part lines, parts, and an append-only
//!    audit log, with primary keys, foreign keys, unique and secondary indexes, a view and a
//!    trigger;
//! 3. times, on the same server in the same run, in `BENCH_PG_RUNS` interleaved rounds (the
//!    fastest of each is reported, the slowest shown): `pg_dump -Fc`, `pg_dump -Fd -j2`,
//!    `backup init` + `backup create` into a fresh repository, then unchanged `backup create`s;
//!    `createdb` + `pg_restore -j2` from the directory dump and `backup restore
//!    --postgres-target` into new databases (both checked against the original: row counts,
//!    indexes, constraints, triggers, views); then, once, `backup create` after the audit log
//!    grew by 5%, and `backup restore --replace` over the live database at two sizes (the full
//!    one and a quarter of it) while a session is connected to it;
//! 4. reads, for every timed run, peak memory (max RSS) and user+sys CPU of the client through
//!    GNU `/usr/bin/time`, the CPU the PostgreSQL server processes used (from `/proc`), and the
//!    phases seen in `pg_stat_activity` (sampled every 0.2 s: reading with `COPY TO`, loading
//!    with `COPY FROM`, building indexes, validating foreign keys);
//! 5. prints every figure with its target and PASS/MISS, then the same as a Markdown table.
//!
//! It exits 0 even when a target is missed (it is a report) and non-zero when a command fails.
//!
//! Environment:
//!
//! | variable               | meaning                                                       |
//! |------------------------|---------------------------------------------------------------|
//! | `BENCH_PG_MB`          | database size in MiB, as `pg_database_size` (default 350)     |
//! | `BENCH_PG_RUNS`        | rounds of the timed comparisons, best of each (default 5)     |
//! | `BENCH_PG_JOBS`        | `backup --jobs` (default 2; the anchors always run `-j2`)     |
//! | `BENCH_PG_COMPRESSION` | `backup init --compression-level` (default: the tool's own)   |
//! | `BENCH_DIR`            | work directory (default: a fresh temp dir under `/var/tmp`)   |
//! | `BENCH_KEEP`           | `1` keeps the work directory (dumps, repository)              |
//! | `BACKUP_BIN`           | use this `backup` binary instead of building one              |
//! | `PG_BIN`               | PostgreSQL binaries (default: newest `/usr/lib/postgresql/*`) |
//!
//! Both tools talk to the server over its Unix socket. Restore times include creating the
//! database for both tools: `backup restore` creates it itself, `pg_restore` is timed together
//! with the `createdb` before it. Dumps and repository are read once before each restore
//! (warm page cache), and a `CHECKPOINT` precedes every timed run.

use std::error::Error;
use std::ffi::{OsStr, OsString};
use std::fmt::Write as _;
use std::fs;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use testkit::Postgres;

type Result<T> = std::result::Result<T, Box<dyn Error>>;

/// Password of the throwaway repository.
const PASSWORD: &str = "bench-postgres-password";
/// GNU time, for peak memory (max RSS) and CPU time of a child.
const GNU_TIME: &str = "/usr/bin/time";
const MIB: u64 = 1024 * 1024;
const KIB: u64 = 1024;
/// The live database and the smaller one for the second `--replace`.
const DB: &str = "dms";
const DB_SMALL: &str = "dms_small";
/// Targets of the issue.
const RSS_TARGET_MIB: u64 = 300;
const DOWNTIME_TARGET_SECS: f64 = 2.0;
/// `-j` of `pg_dump -Fd` and `pg_restore`.
const ANCHOR_JOBS: u64 = 2;

fn main() -> ExitCode {
    // `cargo test --all-targets` runs bench programs too; only `cargo bench`
    // passes `--bench`, and only then is the (long) benchmark run.
    if !std::env::args().any(|a| a == "--bench") {
        println!("postgres benchmark: run it with `cargo bench --bench postgres`");
        return ExitCode::SUCCESS;
    }
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("bench postgres: FAILED: {e}");
            ExitCode::FAILURE
        }
    }
}

fn env_number(name: &str, default: u64) -> Result<u64> {
    match std::env::var(name) {
        Ok(v) => {
            let n: u64 = v
                .trim()
                .parse()
                .map_err(|_| format!("{name}={v:?} is not a number"))?;
            if n == 0 {
                return Err(format!("{name} must be at least 1").into());
            }
            Ok(n)
        }
        Err(_) => Ok(default),
    }
}

fn run() -> Result<()> {
    let size_mib = env_number("BENCH_PG_MB", 350)?;
    let jobs = env_number("BENCH_PG_JOBS", 2)?;
    let runs = env_number("BENCH_PG_RUNS", 5)?;
    let compression = match std::env::var("BENCH_PG_COMPRESSION") {
        Ok(_) => Some(env_number("BENCH_PG_COMPRESSION", 3)?),
        Err(_) => None,
    };
    let keep = std::env::var("BENCH_KEEP").is_ok_and(|v| v == "1");
    let backup_bin = backup_binary()?;
    let work = WorkDir::new(keep)?;
    println!("starting a throwaway PostgreSQL cluster ...");
    let pg = Postgres::start();
    let bench = Bench::new(pg, &work, backup_bin, jobs, runs as usize, compression)?;
    let result = bench.measure(size_mib);
    drop(bench);
    work.finish();
    result
}

// ---------------------------------------------------------------------------------------------
// Work directory
// ---------------------------------------------------------------------------------------------

/// Names this program creates inside the work directory, and removes at the end.
const WORK_ENTRIES: &[&str] = &["dump.fc", "dump.d", "backup-repo", "time.txt"];

/// The work directory: `BENCH_DIR` (only our own entries are removed at the end) or a fresh
/// temp dir under `/var/tmp` (removed as a whole).
struct WorkDir {
    path: PathBuf,
    owned: bool,
    keep: bool,
}

impl WorkDir {
    fn new(keep: bool) -> Result<Self> {
        if let Ok(dir) = std::env::var("BENCH_DIR") {
            let path = PathBuf::from(dir);
            fs::create_dir_all(&path)?;
            for entry in WORK_ENTRIES {
                if path.join(entry).exists() {
                    return Err(format!(
                        "{} already exists; remove it or choose another BENCH_DIR",
                        path.join(entry).display()
                    )
                    .into());
                }
            }
            return Ok(Self {
                path: fs::canonicalize(path)?,
                owned: false,
                keep,
            });
        }
        let dir = tempfile::Builder::new()
            .prefix("backup-bench-postgres-")
            .tempdir_in("/var/tmp")?;
        Ok(Self {
            path: dir.keep(),
            owned: true,
            keep,
        })
    }

    fn join(&self, name: &str) -> PathBuf {
        self.path.join(name)
    }

    fn finish(&self) {
        if self.keep {
            println!(
                "\nBENCH_KEEP=1: kept the work directory {}",
                self.path.display()
            );
            return;
        }
        let removed = if self.owned {
            fs::remove_dir_all(&self.path)
        } else {
            WORK_ENTRIES
                .iter()
                .map(|e| self.path.join(e))
                .filter(|p| p.exists())
                .try_for_each(|p| {
                    if p.is_dir() {
                        fs::remove_dir_all(p)
                    } else {
                        fs::remove_file(p)
                    }
                })
        };
        if let Err(e) = removed {
            eprintln!("warning: could not clean up {}: {e}", self.path.display());
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The measurements
// ---------------------------------------------------------------------------------------------

/// The cluster, the work directory and the tools.
struct Bench<'a> {
    pg: Postgres,
    work: &'a WorkDir,
    backup: PathBuf,
    jobs: u64,
    /// Rounds of the timed comparisons; the best of each is reported.
    runs: usize,
    /// `backup init --compression-level`, when set.
    compression: Option<u64>,
    /// GNU time's output file, when GNU time exists.
    time_file: Option<PathBuf>,
    /// PID of the postmaster, for the server's CPU time.
    postmaster: Option<u32>,
    /// Clock ticks per second of `/proc/<pid>/stat` times.
    clock_ticks: f64,
}

impl<'a> Bench<'a> {
    fn new(
        pg: Postgres,
        work: &'a WorkDir,
        backup: PathBuf,
        jobs: u64,
        runs: usize,
        compression: Option<u64>,
    ) -> Result<Self> {
        let time_file = Path::new(GNU_TIME).exists().then(|| work.join("time.txt"));
        let postmaster = fs::read_to_string(pg.data_dir().join("postmaster.pid"))
            .ok()
            .and_then(|s| s.lines().next().and_then(|l| l.trim().parse().ok()));
        let clock_ticks = capture(Command::new("getconf").arg("CLK_TCK"))
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(100.0);
        Ok(Self {
            pg,
            work,
            backup,
            jobs,
            runs,
            compression,
            time_file,
            postmaster,
            clock_ticks,
        })
    }

    /// A libpq connection string over the Unix socket, for `backup`.
    fn conninfo(&self, db: &str) -> String {
        format!(
            "host={} port={} user={} dbname={db}",
            self.pg.socket_dir().display(),
            self.pg.port(),
            self.pg.user()
        )
    }

    /// Runs SQL (one statement or a script) in `db` and returns psql's output.
    fn sql(&self, db: &str, sql: &str) -> Result<String> {
        let child = self.spawn_psql(db, sql)?;
        wait_psql(child)
    }

    /// Starts `psql` on a script, fed through its stdin.
    fn spawn_psql(&self, db: &str, sql: &str) -> Result<Child> {
        let mut child = self
            .pg
            .client_command("psql")
            .args(["-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-d", db])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()?;
        let mut stdin = child.stdin.take().ok_or("psql: no stdin")?;
        let script = sql.to_string();
        // A thread, so that a long script cannot block on a full pipe.
        std::thread::spawn(move || {
            let _ = stdin.write_all(script.as_bytes());
        });
        Ok(child)
    }

    fn checkpoint(&self) -> Result<()> {
        self.sql("postgres", "CHECKPOINT")?;
        Ok(())
    }

    /// CPU seconds used so far by the postmaster and all its children (backends, workers),
    /// exited ones included.
    fn server_cpu(&self) -> Option<f64> {
        let pid = self.postmaster?;
        let (_, own) = proc_times(pid)?;
        let mut ticks = own;
        for entry in fs::read_dir("/proc").ok()?.flatten() {
            let Some(child) = entry.file_name().to_str().and_then(|s| s.parse().ok()) else {
                continue;
            };
            if let Some((ppid, t)) = proc_times(child) {
                if ppid == pid {
                    ticks += t;
                }
            }
        }
        Some(ticks as f64 / self.clock_ticks)
    }

    /// Runs one timed child: wall time, GNU time's max RSS and user+sys, server CPU and the
    /// phases seen in `pg_stat_activity`.
    fn run_timed(&self, name: &str, program: &Path, args: &[&OsStr]) -> Result<Timed> {
        let mut cmd = match &self.time_file {
            Some(file) => {
                let mut c = Command::new(GNU_TIME);
                c.args(["-f", "%M %U %S", "-o"]).arg(file).arg(program);
                c
            }
            None => Command::new(program),
        };
        cmd.args(args);
        for var in [
            "BACKUP_REPOSITORY",
            "BACKUP_PASSWORD_FILE",
            "BACKUP_CONFIG",
            "PGPASSWORD",
            "PGSERVICE",
            "PGOPTIONS",
            "PGDATABASE",
        ] {
            cmd.env_remove(var);
        }
        cmd.env("BACKUP_PASSWORD", PASSWORD)
            .env("PGHOST", self.pg.socket_dir())
            .env("PGPORT", self.pg.port().to_string())
            .env("PGUSER", self.pg.user())
            .stdin(Stdio::null());
        print!("timing {name} ... ");
        io::stdout().flush()?;
        let sampler = Sampler::start(self)?;
        let cpu_before = self.server_cpu();
        let started = SystemTime::now();
        let t = Instant::now();
        let out = cmd.output()?;
        let secs = t.elapsed().as_secs_f64();
        let cpu_after = self.server_cpu();
        let phases = sampler.finish(started);
        if !out.status.success() {
            println!("failed");
            return Err(format!(
                "{name} failed ({}):\n{}{}",
                out.status,
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            )
            .into());
        }
        let (max_rss_kib, cpu_secs) = match &self.time_file {
            Some(file) => {
                let text = fs::read_to_string(file)?;
                let last = text.lines().rfind(|l| !l.trim().is_empty()).unwrap_or("");
                let f: Vec<&str> = last.split_whitespace().collect();
                let bad = || format!("{GNU_TIME} wrote {text:?}");
                if f.len() != 3 {
                    return Err(bad().into());
                }
                let rss: u64 = f[0].parse().map_err(|_| bad())?;
                let user: f64 = f[1].parse().map_err(|_| bad())?;
                let sys: f64 = f[2].parse().map_err(|_| bad())?;
                (Some(rss), Some(user + sys))
            }
            None => (None, None),
        };
        let server_cpu_secs = match (cpu_before, cpu_after) {
            (Some(a), Some(b)) => Some((b - a).max(0.0)),
            _ => None,
        };
        let timed = Timed {
            secs,
            stdout: String::from_utf8(out.stdout)?,
            max_rss_kib,
            cpu_secs,
            server_cpu_secs,
            phases,
            runs: 1,
            worst_secs: secs,
        };
        println!("{}", timed.summary());
        Ok(timed)
    }

    /// `backup <args> --repo <repo> --json -q`, timed, with its JSON output.
    fn backup(&self, name: &str, args: &[&OsStr]) -> Result<(Timed, serde_json::Value)> {
        let repo = self.work.join("backup-repo");
        let mut all: Vec<&OsStr> = args.to_vec();
        all.extend([
            OsStr::new("--repo"),
            repo.as_os_str(),
            OsStr::new("--json"),
            OsStr::new("-q"),
        ]);
        let timed = self.run_timed(name, &self.backup, &all)?;
        let json = serde_json::from_str(&timed.stdout)
            .map_err(|e| format!("{name}: bad JSON output ({e}): {}", timed.stdout))?;
        Ok((timed, json))
    }

    fn create(&self, name: &str, db: &str) -> Result<(Timed, serde_json::Value)> {
        self.checkpoint()?;
        let conn = OsString::from(self.conninfo(db));
        let jobs = OsString::from(self.jobs.to_string());
        self.backup(
            name,
            &[
                OsStr::new("create"),
                OsStr::new("--postgres"),
                &conn,
                OsStr::new("--jobs"),
                &jobs,
            ],
        )
    }

    fn restore(
        &self,
        name: &str,
        id: &str,
        target_db: &str,
        replace: bool,
    ) -> Result<(Timed, serde_json::Value)> {
        self.checkpoint()?;
        warm(&self.work.join("backup-repo"))?;
        let conn = OsString::from(self.conninfo(target_db));
        let jobs = OsString::from(self.jobs.to_string());
        let mut args = vec![
            OsStr::new("restore"),
            OsStr::new(id),
            OsStr::new("--postgres-target"),
            &conn,
            OsStr::new("--jobs"),
            &jobs,
        ];
        if replace {
            args.push(OsStr::new("--replace"));
        }
        self.backup(name, &args)
    }

    /// Row counts of every table and the number of indexes, constraints and triggers: equal
    /// after a correct restore.
    fn fingerprint(&self, db: &str) -> Result<String> {
        let counts = TABLES
            .iter()
            .map(|t| format!("'{t}=' || (SELECT count(*) FROM {t})"))
            .collect::<Vec<_>>()
            .join(" || ' ' || ");
        self.sql(
            db,
            &format!(
                "SELECT {counts} \
                 || ' indexes=' || (SELECT count(*) FROM pg_indexes WHERE schemaname = 'public') \
                 || ' constraints=' || (SELECT count(*) FROM pg_constraint c JOIN pg_namespace n \
                    ON n.oid = c.connamespace WHERE n.nspname = 'public') \
                 || ' triggers=' || (SELECT count(*) FROM pg_trigger WHERE NOT tgisinternal) \
                 || ' views=' || (SELECT count(*) FROM pg_views WHERE schemaname = 'public')"
            ),
        )
    }

    fn database_size(&self, db: &str) -> Result<u64> {
        let s = self.sql("postgres", &format!("SELECT pg_database_size('{db}')"))?;
        Ok(s.trim().parse()?)
    }

    fn drop_database(&self, db: &str) -> Result<()> {
        self.sql(
            "postgres",
            &format!("DROP DATABASE IF EXISTS \"{db}\" WITH (FORCE)"),
        )?;
        Ok(())
    }

    /// Creates and fills database `db` of about `mib` MiB; returns the row counts used.
    fn generate(&self, db: &str, mib: u64) -> Result<Scale> {
        let scale = Scale::for_mib(mib);
        self.sql("postgres", &format!("CREATE DATABASE \"{db}\""))?;
        self.sql(db, SCHEMA_SQL)?;
        // Two sessions in parallel: the audit log, and everything else.
        let audit = self.spawn_psql(db, &audit_sql(0.27, 1, scale.audit, scale.audit))?;
        let main = self.spawn_psql(db, &main_data_sql(&scale))?;
        let audit_out = wait_psql(audit);
        let main_out = wait_psql(main);
        audit_out?;
        main_out?;
        self.sql(db, CONSTRAINTS_SQL)?;
        self.sql(db, "VACUUM (FREEZE, ANALYZE)")?;
        self.checkpoint()?;
        Ok(scale)
    }

    fn measure(&self, size_mib: u64) -> Result<()> {
        let os = OsStr::new;
        // The anchors run with -j2, as the issue states; backup with --jobs BENCH_PG_JOBS.
        let jobs = ANCHOR_JOBS;
        let backup_version = capture(Command::new(&self.backup).arg("--version"))?
            .trim()
            .to_string();
        let pg_dump_version = capture(Command::new(self.pg.bin("pg_dump")).arg("--version"))?
            .trim()
            .to_string();
        let server_version = self.sql("postgres", "SHOW server_version")?;
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        println!(
            "backup binary : {} ({backup_version})",
            self.backup.display()
        );
        println!("pg_dump       : {pg_dump_version}");
        println!(
            "server        : PostgreSQL {server_version} (fsync=off, default settings otherwise)"
        );
        println!("work dir      : {}", self.work.path.display());
        println!("cores         : {cores}");
        println!("load average  : {}", load_average());
        println!(
            "runs          : {} rounds of the timed comparisons; the best of each is reported",
            self.runs
        );
        println!(
            "jobs          : backup --jobs {}, pg_dump -Fd / pg_restore -j{jobs}",
            self.jobs
        );
        if self.time_file.is_none() {
            println!(
                "note          : {GNU_TIME} not found: memory and client CPU are not measured"
            );
        }
        if self.postmaster.is_none() {
            println!("note          : no postmaster.pid: server CPU is not measured");
        }

        // -- the database (untimed) --
        let t = Instant::now();
        let scale = self.generate(DB, size_mib)?;
        let db_bytes = self.database_size(DB)?;
        println!(
            "\ngenerated database {DB}: {} in {:.1} s",
            human(db_bytes),
            t.elapsed().as_secs_f64()
        );
        println!(
            "{}",
            self.sql(
                DB,
                "SELECT rpad(c.relname, 16) || lpad(c.reltuples::bigint::text, 10) || ' rows'
                   || lpad(pg_size_pretty(pg_table_size(c.oid)), 11) || ' table'
                   || lpad(pg_size_pretty(pg_indexes_size(c.oid)), 11) || ' indexes'
                 FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                 WHERE n.nspname = 'public' AND c.relkind = 'r'
                 ORDER BY pg_total_relation_size(c.oid) DESC"
            )?
        );
        let original = self.fingerprint(DB)?;

        // -- rounds of pg_dump -Fc, pg_dump -Fd -j2, backup init + create (fresh repository) --
        let runs = self.runs;
        let fc = self.work.join("dump.fc");
        let fd = self.work.join("dump.d");
        let repo = self.work.join("backup-repo");
        let j = OsString::from(format!("-j{jobs}"));
        let level = self.compression.map(|l| OsString::from(l.to_string()));
        let mut init_args = vec![os("init")];
        if let Some(l) = &level {
            init_args.extend([os("--compression-level"), l.as_os_str()]);
        }
        let (mut dumps_fc, mut dumps_fd, mut inits, mut creates) = (vec![], vec![], vec![], vec![]);
        let mut first = serde_json::Value::Null;
        for round in 1..=runs {
            if runs > 1 {
                println!("-- round {round} of {runs}: dumps and first create --");
            }
            remove(&fc)?;
            remove(&fd)?;
            remove(&repo)?;
            self.checkpoint()?;
            dumps_fc.push(self.run_timed(
                "pg_dump -Fc",
                &self.pg.bin("pg_dump"),
                &[os("-Fc"), os("-f"), fc.as_os_str(), os("-d"), os(DB)],
            )?);
            self.checkpoint()?;
            dumps_fd.push(self.run_timed(
                &format!("pg_dump -Fd -j{jobs}"),
                &self.pg.bin("pg_dump"),
                &[os("-Fd"), &j, os("-f"), fd.as_os_str(), os("-d"), os(DB)],
            )?);
            inits.push(self.backup("backup init", &init_args)?.0);
            let (timed, json) = self.create("backup create", DB)?;
            creates.push(timed);
            first = json;
        }
        let (dump_fc, dump_fd, init, create1) =
            (best(dumps_fc), best(dumps_fd), best(inits), best(creates));
        let fc_bytes = fs::metadata(&fc)?.len();
        let fd_bytes = du(&fd)?;
        let repo_bytes = du(&repo)?;
        let first_id = json_str(&first, "id")?;
        let first_stored = json_u64(&first, "stored_bytes")?;
        let first_new = json_u64(&first, "new_bytes")?;
        let copy_bytes = first["databases"][0]["bytes"].as_u64().unwrap_or(0);

        // -- unchanged creates --
        let mut seconds = Vec::new();
        let mut second = serde_json::Value::Null;
        for _ in 0..runs {
            let (timed, json) = self.create("backup create (unchanged)", DB)?;
            seconds.push(timed);
            if second.is_null() {
                second = json;
            }
        }
        let create2 = best(seconds);
        let repo_bytes2 = du(&repo)?;

        // -- rounds of restores into new databases --
        let pgr_db = "restored_pg_restore";
        let bk_db = "restored_backup";
        let (mut pg_restores, mut restores) = (vec![], vec![]);
        for round in 1..=runs {
            if runs > 1 {
                println!("-- round {round} of {runs}: restores --");
            }
            self.checkpoint()?;
            warm(&fd)?;
            let createdb = self.run_timed("createdb", &self.pg.bin("createdb"), &[os(pgr_db)])?;
            let mut pg_restore = self.run_timed(
                &format!("pg_restore -j{jobs} (-Fd)"),
                &self.pg.bin("pg_restore"),
                &[&j, os("-d"), os(pgr_db), fd.as_os_str()],
            )?;
            // createdb is part of the restore, as `backup restore` creates its database.
            pg_restore.add(&createdb);
            pg_restores.push(pg_restore);
            restores.push(self.restore("backup restore", &first_id, bk_db, false)?.0);
            for db in [pgr_db, bk_db] {
                let got = self.fingerprint(db)?;
                if got != original {
                    return Err(format!(
                        "database {db} does not match the original:\n  original: {original}\n  restored: {got}"
                    )
                    .into());
                }
                self.drop_database(db)?;
            }
            println!("both restored databases match the original ({original})");
        }
        let (pg_restore, restore) = (best(pg_restores), best(restores));

        // -- the audit log grows by 5% --
        let grow = scale.audit / 20;
        let t = Instant::now();
        self.sql(
            DB,
            &audit_sql(0.61, scale.audit + 1, scale.audit + grow, scale.audit),
        )?;
        self.sql(
            DB,
            "SELECT setval(pg_get_serial_sequence('audit_log', 'id'), (SELECT max(id) FROM audit_log));
             VACUUM (ANALYZE) audit_log",
        )?;
        println!(
            "appended {grow} rows to audit_log in {:.1} s",
            t.elapsed().as_secs_f64()
        );
        let (create3, third) = self.create("backup create (audit log +5%)", DB)?;
        let third_id = json_str(&third, "id")?;

        // -- --replace over the live database, at two sizes --
        let (replace_full, full_json) = self.replace("backup restore --replace", &third_id, DB)?;
        let small_mib = (size_mib / 4).max(1);
        let t = Instant::now();
        self.generate(DB_SMALL, small_mib)?;
        let small_bytes = self.database_size(DB_SMALL)?;
        println!(
            "\ngenerated database {DB_SMALL}: {} in {:.1} s",
            human(small_bytes),
            t.elapsed().as_secs_f64()
        );
        let (_, small) = self.create("backup create (small db)", DB_SMALL)?;
        let small_id = json_str(&small, "id")?;
        let (replace_small, small_json) =
            self.replace("backup restore --replace (small db)", &small_id, DB_SMALL)?;

        // -- report --
        let mut rows = Vec::new();
        let info = |name: &str, value: String| Row::new(name, value, "", None);
        rows.push(info(
            "database size",
            format!(
                "{} (pg_database_size; {} as COPY text)",
                human(db_bytes),
                human(copy_bytes)
            ),
        ));
        rows.push(info("pg_dump -Fc", dump_fc.summary()));
        rows.push(info(&format!("pg_dump -Fd -j{jobs}"), dump_fd.summary()));
        rows.push(info("backup create", create1.summary()));
        rows.push(info("  phases backup create", create1.phases.clone()));
        rows.push(info(
            &format!("  phases pg_dump -Fd -j{jobs}"),
            dump_fd.phases.clone(),
        ));
        let r = create1.secs / dump_fd.secs;
        rows.push(Row::new(
            &format!("create time / pg_dump -Fd -j{jobs}"),
            format!("{:.2} s / {:.2} s = {r:.2}", create1.secs, dump_fd.secs),
            "<= 0.60",
            Some(r <= 0.6),
        ));
        let r = create1.secs / dump_fc.secs;
        rows.push(Row::new(
            "create time / pg_dump -Fc",
            format!("{:.2} s / {:.2} s = {r:.2}", create1.secs, dump_fc.secs),
            "<= 0.40",
            Some(r <= 0.4),
        ));
        rows.push(info(
            "  backup init (not included)",
            format!("{:.2} s", init.secs),
        ));
        rows.push(info(
            "  dump sizes",
            format!(
                "-Fc {}, -Fd {} ({:.1}% of the database)",
                human(fc_bytes),
                human(fd_bytes),
                pct(fc_bytes, db_bytes)
            ),
        ));
        rows.push(info(
            "  backup create --json",
            format!(
                "new_bytes {}, stored_bytes {}",
                human(first_new),
                human(first_stored)
            ),
        ));
        let r = repo_bytes as f64 / fc_bytes as f64;
        rows.push(Row::new(
            "repo size / pg_dump -Fc size",
            format!("{} / {} = {r:.3}", human(repo_bytes), human(fc_bytes)),
            "<= 1.000",
            Some(r <= 1.0),
        ));
        rows.push(info(
            &format!("createdb + pg_restore -j{jobs}"),
            pg_restore.summary(),
        ));
        rows.push(info("backup restore", restore.summary()));
        rows.push(info("  phases backup restore", restore.phases.clone()));
        rows.push(info(
            &format!("  phases pg_restore -j{jobs}"),
            pg_restore.phases.clone(),
        ));
        let r = restore.secs / pg_restore.secs;
        rows.push(Row::new(
            &format!("restore time / pg_restore -j{jobs}"),
            format!("{:.2} s / {:.2} s = {r:.2}", restore.secs, pg_restore.secs),
            "<= 0.80",
            Some(r <= 0.8),
        ));
        let r = create2.secs / create1.secs;
        rows.push(Row::new(
            "unchanged create: second / first time",
            format!("{:.2} s / {:.2} s = {r:.2}", create2.secs, create1.secs),
            "<= 0.30",
            Some(r <= 0.3),
        ));
        rows.push(info("  unchanged create", create2.summary()));
        let stored2 = json_u64(&second, "stored_bytes")?;
        let p = pct(stored2, first_stored);
        rows.push(Row::new(
            "unchanged create: stored_bytes",
            format!(
                "{} ({p:.3}% of the first; new_bytes {}, repo +{})",
                human(stored2),
                human(json_u64(&second, "new_bytes")?),
                human(repo_bytes2.saturating_sub(repo_bytes))
            ),
            "< 1%",
            Some(p < 1.0),
        ));
        let stored3 = json_u64(&third, "stored_bytes")?;
        let p = pct(stored3, first_stored);
        rows.push(Row::new(
            "audit log +5%: stored_bytes",
            format!(
                "{} ({p:.2}% of the first; new_bytes {})",
                human(stored3),
                human(json_u64(&third, "new_bytes")?)
            ),
            "< 8%",
            Some(p < 8.0),
        ));
        rows.push(info("  audit log +5% create", create3.summary()));
        for (label, json, timed, bytes) in [
            (
                format!("--replace downtime ({})", human(db_bytes)),
                &full_json,
                &replace_full,
                db_bytes,
            ),
            (
                format!("--replace downtime ({})", human(small_bytes)),
                &small_json,
                &replace_small,
                small_bytes,
            ),
        ] {
            let d = json["database"]["downtime_secs"]
                .as_f64()
                .ok_or("restore --replace --json: no database.downtime_secs")?;
            rows.push(Row::new(
                &label,
                format!(
                    "{d:.3} s (whole restore {:.2} s, {:.1} MB/s)",
                    timed.secs,
                    bytes as f64 / 1e6 / timed.secs
                ),
                "< 2 s",
                Some(d < DOWNTIME_TARGET_SECS),
            ));
        }
        let rss_row = |name: &str, kib: Option<u64>, target: bool| {
            let t = if target { "< 300 MiB" } else { "" };
            match kib {
                Some(k) => Row::new(
                    name,
                    format!("{:.1} MiB", k as f64 / 1024.0),
                    t,
                    target.then_some(k < RSS_TARGET_MIB * 1024),
                ),
                None => Row::new(name, "n/a".into(), t, None),
            }
        };
        rows.push(rss_row("max RSS backup create", create1.max_rss_kib, true));
        rows.push(rss_row("max RSS backup restore", restore.max_rss_kib, true));
        rows.push(rss_row(
            "max RSS backup restore --replace",
            replace_full.max_rss_kib,
            true,
        ));
        rows.push(rss_row(
            "max RSS backup create (unchanged, info)",
            create2.max_rss_kib,
            false,
        ));
        rows.push(rss_row(
            &format!("max RSS pg_dump -Fd -j{jobs} (info)"),
            dump_fd.max_rss_kib,
            false,
        ));

        rows.push(info(
            "load average (1/5/15 min)",
            format!("{} at the end", load_average()),
        ));
        if let Some(l) = self.compression {
            rows.push(info("backup init --compression-level", l.to_string()));
        }
        println!("\n{}", plain_table(&rows));
        let misses = rows.iter().filter(|r| r.pass == Some(false)).count();
        let checks = rows.iter().filter(|r| r.pass.is_some()).count();
        println!("{} of {checks} targets met\n", checks - misses);
        println!(
            "Markdown ({} database, {cores} cores, backup --jobs {}):\n",
            human(db_bytes),
            self.jobs
        );
        println!("{}", markdown_table(&rows));
        Ok(())
    }

    /// `backup restore --replace` over `db` while a session is connected to it (as an
    /// application would be).
    fn replace(&self, name: &str, id: &str, db: &str) -> Result<(Timed, serde_json::Value)> {
        let mut session = self
            .pg
            .client_command("psql")
            .args(["-X", "-q", "-d", db, "-c", "SELECT pg_sleep(3600)"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()?;
        let seen = format!(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = '{db}' AND query LIKE '%pg_sleep(3600)%' \
             AND pid <> pg_backend_pid()"
        );
        let t = Instant::now();
        while self.sql("postgres", &seen)?.trim() != "1" {
            if t.elapsed() > Duration::from_secs(30) {
                let _ = session.kill();
                let _ = session.wait();
                return Err(format!("the session on {db} did not show up").into());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let result = self.restore(name, id, db, true);
        let _ = session.kill();
        let _ = session.wait();
        let (timed, json) = result?;
        if let Some(previous) = json["database"]["previous"].as_str() {
            self.drop_database(previous)?;
        }
        Ok((timed, json))
    }
}

/// The outcome of one timed child process.
struct Timed {
    secs: f64,
    stdout: String,
    max_rss_kib: Option<u64>,
    /// User + system CPU of the child and its children.
    cpu_secs: Option<f64>,
    /// CPU of the PostgreSQL server processes meanwhile.
    server_cpu_secs: Option<f64>,
    /// Phases seen in `pg_stat_activity`.
    phases: String,
    /// Of several runs: how many, and the slowest (`best` keeps the fastest).
    runs: usize,
    worst_secs: f64,
}

impl Timed {
    fn summary(&self) -> String {
        let mut s = format!("{:.2} s", self.secs);
        if self.runs > 1 {
            let _ = write!(
                s,
                " (best of {}, worst {:.2} s)",
                self.runs, self.worst_secs
            );
        }
        if let Some(c) = self.cpu_secs {
            let _ = write!(s, ", client CPU {c:.1} s");
        }
        if let Some(c) = self.server_cpu_secs {
            let _ = write!(s, ", server CPU {c:.1} s");
        }
        if let Some(k) = self.max_rss_kib {
            let _ = write!(s, ", max RSS {:.0} MiB", k as f64 / 1024.0);
        }
        s
    }
}

impl Timed {
    /// Adds a step that belongs to the same operation (times, CPU; the larger RSS).
    fn add(&mut self, other: &Timed) {
        self.secs += other.secs;
        self.worst_secs = self.secs;
        let sum = |a: Option<f64>, b: Option<f64>| a.zip(b).map(|(a, b)| a + b);
        self.cpu_secs = sum(self.cpu_secs, other.cpu_secs);
        self.server_cpu_secs = sum(self.server_cpu_secs, other.server_cpu_secs);
        self.max_rss_kib = self.max_rss_kib.max(other.max_rss_kib);
    }
}

/// The fastest of several runs of the same operation, which least felt other work on the
/// machine; it remembers the slowest.
fn best(mut runs: Vec<Timed>) -> Timed {
    let worst = runs.iter().map(|t| t.secs).fold(0.0, f64::max);
    let n = runs.len();
    runs.sort_by(|a, b| a.secs.total_cmp(&b.secs));
    let mut b = runs.swap_remove(0);
    b.runs = n;
    b.worst_secs = worst;
    b
}

/// Removes a file or a directory tree, if it exists.
fn remove(path: &Path) -> Result<()> {
    match fs::symlink_metadata(path) {
        Ok(m) if m.is_dir() => fs::remove_dir_all(path)?,
        Ok(_) => fs::remove_file(path)?,
        Err(_) => {}
    }
    Ok(())
}

/// `(ppid, utime + stime + cutime + cstime)` of a process, in clock ticks.
fn proc_times(pid: u32) -> Option<(u32, u64)> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may hold spaces and parentheses: fields start after the last ')'.
    let rest = stat.get(stat.rfind(')')? + 1..)?;
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ppid = f.get(1)?.parse().ok()?;
    let mut ticks = 0u64;
    for i in 11..=14 {
        ticks += f.get(i)?.parse::<u64>().ok()?;
    }
    Some((ppid, ticks))
}

/// The first three fields of `/proc/loadavg`: other work on the machine skews the timings.
fn load_average() -> String {
    fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "n/a".into())
}

fn wait_psql(child: Child) -> Result<String> {
    let out = child.wait_with_output()?;
    if !out.status.success() {
        return Err(format!(
            "psql failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        )
        .into());
    }
    Ok(String::from_utf8_lossy(&out.stdout)
        .trim_end_matches('\n')
        .to_string())
}

fn json_u64(v: &serde_json::Value, key: &str) -> Result<u64> {
    v[key]
        .as_u64()
        .ok_or_else(|| format!("--json output has no {key}: {v}").into())
}

fn json_str(v: &serde_json::Value, key: &str) -> Result<String> {
    v[key]
        .as_str()
        .map(str::to_string)
        .ok_or_else(|| format!("--json output has no {key}: {v}").into())
}

// ---------------------------------------------------------------------------------------------
// Phases, sampled from pg_stat_activity
// ---------------------------------------------------------------------------------------------

/// A `psql` session that asks `pg_stat_activity` for the active client queries every 0.2 s,
/// fed by a thread; its output is read when it ends.
struct Sampler {
    child: Child,
    stop: Arc<AtomicBool>,
    feeder: std::thread::JoinHandle<()>,
}

const SAMPLE_SQL: &str = "SELECT extract(epoch FROM clock_timestamp())::text || '|' || \
     coalesce(string_agg(regexp_replace(left(query, 120) || ' ... ' || right(query, 80), '\\s+', ' ', 'g'), \
     '^'), '') \
     FROM pg_stat_activity WHERE state = 'active' AND backend_type = 'client backend' \
     AND pid <> pg_backend_pid();\n";

/// Whether a statement (upper-cased) belongs to a phase.
type PhaseTest = fn(&str) -> bool;

/// Kinds of statements, in report order: (label, test).
const PHASES: &[(&str, PhaseTest)] = &[
    ("COPY TO", |q| {
        q.starts_with("COPY") && q.contains("TO STDOUT")
    }),
    ("COPY FROM", |q| {
        q.starts_with("COPY") && q.contains("FROM STDIN")
    }),
    ("indexes", |q| {
        q.starts_with("CREATE INDEX")
            || q.starts_with("CREATE UNIQUE INDEX")
            || (q.starts_with("ALTER TABLE")
                && (q.contains("PRIMARY KEY") || q.contains(" UNIQUE")))
    }),
    ("FKs", |q| {
        q.starts_with("ALTER TABLE") && q.contains("FOREIGN KEY")
    }),
];

impl Sampler {
    fn start(bench: &Bench) -> Result<Sampler> {
        let mut child = bench
            .pg
            .client_command("psql")
            .args(["-X", "-q", "-A", "-t", "-d", "postgres"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()?;
        let mut stdin = child.stdin.take().ok_or("psql: no stdin")?;
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        let feeder = std::thread::spawn(move || {
            while !flag.load(Ordering::SeqCst) {
                if stdin.write_all(SAMPLE_SQL.as_bytes()).is_err() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(200));
            }
        });
        Ok(Sampler {
            child,
            stop,
            feeder,
        })
    }

    /// Stops sampling; returns the phases as "name first-last s" relative to `started`.
    fn finish(self, started: SystemTime) -> String {
        self.stop.store(true, Ordering::SeqCst);
        let _ = self.feeder.join();
        // The feeder dropped stdin: psql ends after the queries it has.
        let Ok(out) = self.child.wait_with_output() else {
            return "n/a".into();
        };
        let t0 = started
            .duration_since(UNIX_EPOCH)
            .map_or(0.0, |d| d.as_secs_f64());
        let mut spans: Vec<Option<(f64, f64)>> = vec![None; PHASES.len()];
        for line in String::from_utf8_lossy(&out.stdout).lines() {
            let Some((at, queries)) = line.split_once('|') else {
                continue;
            };
            let Ok(at) = at.parse::<f64>() else { continue };
            let at = at - t0;
            for q in queries.split('^') {
                let q = q.trim_start().to_ascii_uppercase();
                for (i, (_, test)) in PHASES.iter().enumerate() {
                    if test(&q) {
                        let span = spans[i].get_or_insert((at, at));
                        span.0 = span.0.min(at);
                        span.1 = span.1.max(at);
                    }
                }
            }
        }
        let parts: Vec<String> = PHASES
            .iter()
            .zip(spans)
            .filter_map(|((name, _), span)| {
                span.map(|(a, b)| format!("{name} {:.1}-{:.1} s", a.max(0.0), b.max(0.0)))
            })
            .collect();
        if parts.is_empty() {
            "none seen".into()
        } else {
            parts.join(", ")
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Helpers (as in benches/files.rs)
// ---------------------------------------------------------------------------------------------

/// Runs a short untimed command and returns its stdout.
fn capture(cmd: &mut Command) -> Result<String> {
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("{cmd:?}: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "{cmd:?} failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        )
        .into());
    }
    Ok(String::from_utf8(out.stdout)?)
}

/// Reads every file under `path` (or `path` itself) once, so the timed runs find it cached.
fn warm(path: &Path) -> Result<()> {
    let mut buf = vec![0u8; 1 << 20];
    let mut read_file = |p: &Path| -> io::Result<()> {
        let mut f = fs::File::open(p)?;
        while f.read(&mut buf)? > 0 {}
        Ok(())
    };
    if path.is_file() {
        return Ok(read_file(path)?);
    }
    let mut stack = vec![path.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in fs::read_dir(&dir)? {
            let entry = entry?;
            let ty = entry.file_type()?;
            if ty.is_dir() {
                stack.push(entry.path());
            } else if ty.is_file() {
                read_file(&entry.path())?;
            }
        }
    }
    Ok(())
}

/// `du -sb`: the apparent size of every entry under `path`, `path` included.
fn du(path: &Path) -> Result<u64> {
    let meta = fs::symlink_metadata(path)?;
    let mut total = meta.len();
    if meta.is_dir() {
        for entry in fs::read_dir(path)? {
            total += du(&entry?.path())?;
        }
    }
    Ok(total)
}

/// The `backup` binary: `BACKUP_BIN`, else built with `cargo build --release -p backup-cli`.
fn backup_binary() -> Result<PathBuf> {
    if let Ok(bin) = std::env::var("BACKUP_BIN") {
        let bin = PathBuf::from(bin);
        if !bin.is_file() {
            return Err(format!("BACKUP_BIN={} is not a file", bin.display()).into());
        }
        return Ok(bin);
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_string());
    println!(
        "building: cargo build --release -p backup-cli (in {})",
        root.display()
    );
    let out = Command::new(cargo)
        .current_dir(root)
        .args([
            "build",
            "--release",
            "-p",
            "backup-cli",
            "--message-format=json-render-diagnostics",
        ])
        .stdin(Stdio::null())
        .stderr(Stdio::inherit())
        .output()?;
    if !out.status.success() {
        return Err(format!(
            "cargo build --release -p backup-cli failed ({})",
            out.status
        )
        .into());
    }
    let stdout = String::from_utf8(out.stdout)?;
    for line in stdout.lines() {
        let Ok(msg) = serde_json::from_str::<serde_json::Value>(line) else {
            continue;
        };
        if msg["reason"] == "compiler-artifact" && msg["target"]["name"] == "backup" {
            if let Some(exe) = msg["executable"].as_str() {
                return Ok(PathBuf::from(exe));
            }
        }
    }
    Err("cargo build did not report a `backup` executable".into())
}

// ---------------------------------------------------------------------------------------------
// Report tables
// ---------------------------------------------------------------------------------------------

/// One line of the report; `pass` is `None` for figures without a target.
struct Row {
    name: String,
    value: String,
    target: String,
    pass: Option<bool>,
}

impl Row {
    fn new(name: &str, value: String, target: &str, pass: Option<bool>) -> Self {
        Self {
            name: name.to_string(),
            value,
            target: target.to_string(),
            pass,
        }
    }

    fn verdict(&self) -> &'static str {
        match self.pass {
            Some(true) => "PASS",
            Some(false) => "MISS",
            None => "",
        }
    }
}

fn plain_table(rows: &[Row]) -> String {
    let w0 = rows.iter().map(|r| r.name.len()).max().unwrap_or(0).max(6);
    let w1 = rows.iter().map(|r| r.value.len()).max().unwrap_or(0).max(5);
    let w2 = rows
        .iter()
        .map(|r| r.target.len())
        .max()
        .unwrap_or(0)
        .max(6);
    let mut s = String::new();
    let _ = writeln!(
        s,
        "{:<w0$}  {:<w1$}  {:<w2$}  result",
        "metric", "value", "target"
    );
    let _ = writeln!(s, "{}", "-".repeat(w0 + w1 + w2 + 12));
    for r in rows {
        let _ = writeln!(
            s,
            "{:<w0$}  {:<w1$}  {:<w2$}  {}",
            r.name,
            r.value,
            r.target,
            r.verdict()
        );
    }
    s
}

fn markdown_table(rows: &[Row]) -> String {
    let mut s = String::from("| Metric | Value | Target | Result |\n|---|---|---|---|\n");
    for r in rows {
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} |",
            r.name.trim().replace('|', "\\|"),
            r.value.replace('|', "\\|"),
            r.target,
            r.verdict()
        );
    }
    s
}

fn human(bytes: u64) -> String {
    let b = bytes as f64;
    if bytes >= 1 << 30 {
        format!("{:.2} GiB", b / (1u64 << 30) as f64)
    } else if bytes >= MIB {
        format!("{:.1} MiB", b / MIB as f64)
    } else if bytes >= KIB {
        format!("{:.1} KiB", b / KIB as f64)
    } else {
        format!("{bytes} B")
    }
}

fn pct(part: u64, whole: u64) -> f64 {
    100.0 * part as f64 / whole.max(1) as f64
}

// ---------------------------------------------------------------------------------------------
// The dealer-management database
// ---------------------------------------------------------------------------------------------

/// The tables, for row counts.
const TABLES: &[&str] = &[
    "customers",
    "vehicles",
    "deals",
    "parts",
    "repair_orders",
    "ro_lines",
    "audit_log",
];

/// Row counts for a database size.
struct Scale {
    customers: u64,
    vehicles: u64,
    deals: u64,
    parts: u64,
    repair_orders: u64,
    ro_lines: u64,
    audit: u64,
}

impl Scale {
    /// Rows per MiB of `pg_database_size`, measured on PostgreSQL 15 (tables, TOAST and
    /// indexes; an empty database takes about 7.5 MiB).
    fn for_mib(mib: u64) -> Scale {
        let m = mib.saturating_sub(7).max(1) as f64;
        let n = |per_mib: f64| ((m * per_mib).round() as u64).max(20);
        Scale {
            customers: n(376.0),
            vehicles: n(387.0),
            deals: n(334.0),
            parts: n(105.0),
            repair_orders: n(575.0),
            ro_lines: n(836.0),
            audit: n(1306.0),
        }
    }
}

/// The SQL array literal of a `|`-separated word list, and its length.
fn array(words: &str) -> (String, usize) {
    let list: Vec<String> = words
        .split('|')
        .map(|w| format!("'{}'", w.replace('\'', "''")))
        .collect();
    (format!("(ARRAY[{}])", list.join(",")), list.len())
}

/// An SQL expression that picks one word of a `|`-separated list at random.
fn pick(words: &str) -> String {
    let (array, n) = array(words);
    format!("{array}[1 + floor(random() * {n})::int]")
}

/// Field `i` of every `a:b:c` entry of a `|`-separated list, as a list.
fn column(entries: &str, i: usize) -> String {
    entries
        .split('|')
        .map(|e| e.split(':').nth(i).unwrap_or(""))
        .collect::<Vec<_>>()
        .join("|")
}

const SCHEMA_SQL: &str = "
CREATE TABLE customers (
    id bigint GENERATED BY DEFAULT AS IDENTITY,
    first_name text NOT NULL,
    last_name text NOT NULL,
    email text,
    phone text,
    street text,
    city text,
    state char(2),
    zip text,
    created_at timestamptz NOT NULL,
    marketing_opt_in boolean NOT NULL DEFAULT false,
    notes jsonb
);
CREATE TABLE vehicles (
    id bigint GENERATED BY DEFAULT AS IDENTITY,
    customer_id bigint,
    vin char(17) NOT NULL,
    make text NOT NULL,
    model text NOT NULL,
    model_year smallint NOT NULL,
    trim_level text,
    color text,
    mileage integer NOT NULL,
    msrp numeric(10,2) NOT NULL,
    stock_number text,
    status text NOT NULL,
    received_at timestamptz NOT NULL
);
CREATE TABLE deals (
    id bigint GENERATED BY DEFAULT AS IDENTITY,
    customer_id bigint NOT NULL,
    vehicle_id bigint NOT NULL,
    salesperson text NOT NULL,
    deal_type text NOT NULL,
    status text NOT NULL,
    sale_price numeric(10,2) NOT NULL,
    trade_in_value numeric(10,2) NOT NULL DEFAULT 0,
    down_payment numeric(10,2) NOT NULL DEFAULT 0,
    amount_financed numeric(10,2) NOT NULL DEFAULT 0,
    apr numeric(5,3),
    term_months smallint,
    created_at timestamptz NOT NULL,
    closed_at timestamptz,
    notes jsonb
);
CREATE TABLE parts (
    id bigint GENERATED BY DEFAULT AS IDENTITY,
    part_number text NOT NULL,
    description text NOT NULL,
    manufacturer text NOT NULL,
    category text NOT NULL,
    unit_cost numeric(10,2) NOT NULL,
    list_price numeric(10,2) NOT NULL,
    qty_on_hand integer NOT NULL,
    bin_location text
);
CREATE TABLE repair_orders (
    id bigint GENERATED BY DEFAULT AS IDENTITY,
    ro_number text NOT NULL,
    vehicle_id bigint NOT NULL,
    customer_id bigint NOT NULL,
    advisor text NOT NULL,
    technician text,
    status text NOT NULL,
    opened_at timestamptz NOT NULL,
    closed_at timestamptz,
    mileage_in integer,
    complaint text NOT NULL,
    cause text,
    correction text,
    labor_hours numeric(5,2) NOT NULL DEFAULT 0,
    labor_total numeric(10,2) NOT NULL DEFAULT 0,
    parts_total numeric(10,2) NOT NULL DEFAULT 0
);
CREATE TABLE ro_lines (
    id bigint GENERATED BY DEFAULT AS IDENTITY,
    repair_order_id bigint NOT NULL,
    line_no smallint NOT NULL,
    part_id bigint NOT NULL,
    quantity numeric(6,2) NOT NULL,
    unit_price numeric(10,2) NOT NULL,
    description text
);
CREATE TABLE audit_log (
    id bigint GENERATED BY DEFAULT AS IDENTITY,
    logged_at timestamptz NOT NULL,
    actor text NOT NULL,
    action text NOT NULL,
    entity text NOT NULL,
    entity_id bigint NOT NULL,
    request_id uuid,
    client_ip inet,
    changes jsonb
);
";

const CONSTRAINTS_SQL: &str = "
ALTER TABLE customers ADD PRIMARY KEY (id);
ALTER TABLE vehicles ADD PRIMARY KEY (id), ADD CONSTRAINT vehicles_vin_key UNIQUE (vin);
ALTER TABLE deals ADD PRIMARY KEY (id), ADD CONSTRAINT deals_sale_price_check CHECK (sale_price >= 0);
ALTER TABLE parts ADD PRIMARY KEY (id), ADD CONSTRAINT parts_part_number_key UNIQUE (part_number);
ALTER TABLE repair_orders ADD PRIMARY KEY (id),
    ADD CONSTRAINT repair_orders_ro_number_key UNIQUE (ro_number);
ALTER TABLE ro_lines ADD PRIMARY KEY (id);
ALTER TABLE audit_log ADD PRIMARY KEY (id);
ALTER TABLE vehicles ADD FOREIGN KEY (customer_id) REFERENCES customers (id);
ALTER TABLE deals ADD FOREIGN KEY (customer_id) REFERENCES customers (id),
    ADD FOREIGN KEY (vehicle_id) REFERENCES vehicles (id);
ALTER TABLE repair_orders ADD FOREIGN KEY (vehicle_id) REFERENCES vehicles (id),
    ADD FOREIGN KEY (customer_id) REFERENCES customers (id);
ALTER TABLE ro_lines ADD FOREIGN KEY (repair_order_id) REFERENCES repair_orders (id) ON DELETE CASCADE,
    ADD FOREIGN KEY (part_id) REFERENCES parts (id);
CREATE INDEX customers_name_idx ON customers (last_name, first_name);
CREATE INDEX customers_email_idx ON customers (lower(email));
CREATE INDEX vehicles_customer_id_idx ON vehicles (customer_id);
CREATE INDEX deals_customer_id_idx ON deals (customer_id);
CREATE INDEX deals_vehicle_id_idx ON deals (vehicle_id);
CREATE INDEX deals_status_closed_at_idx ON deals (status, closed_at);
CREATE INDEX repair_orders_vehicle_id_idx ON repair_orders (vehicle_id);
CREATE INDEX repair_orders_opened_at_idx ON repair_orders (opened_at);
CREATE INDEX ro_lines_repair_order_id_idx ON ro_lines (repair_order_id);
CREATE INDEX audit_log_entity_idx ON audit_log (entity, entity_id);
CREATE INDEX audit_log_logged_at_idx ON audit_log (logged_at);
SELECT setval(pg_get_serial_sequence('customers', 'id'), max(id)) FROM customers;
SELECT setval(pg_get_serial_sequence('vehicles', 'id'), max(id)) FROM vehicles;
SELECT setval(pg_get_serial_sequence('deals', 'id'), max(id)) FROM deals;
SELECT setval(pg_get_serial_sequence('parts', 'id'), max(id)) FROM parts;
SELECT setval(pg_get_serial_sequence('repair_orders', 'id'), max(id)) FROM repair_orders;
SELECT setval(pg_get_serial_sequence('ro_lines', 'id'), max(id)) FROM ro_lines;
SELECT setval(pg_get_serial_sequence('audit_log', 'id'), max(id)) FROM audit_log;
CREATE VIEW open_repair_orders AS
    SELECT r.id, r.ro_number, r.opened_at, r.advisor, r.complaint, v.vin, v.make, v.model,
           c.last_name, c.phone
    FROM repair_orders r
    JOIN vehicles v ON v.id = r.vehicle_id
    JOIN customers c ON c.id = r.customer_id
    WHERE r.status <> 'closed';
CREATE FUNCTION audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit_log is append-only';
END
$$;
CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION audit_log_append_only();
";

const FIRST_NAMES: &str = "James|Mary|Robert|Patricia|John|Jennifer|Michael|Linda|David|Elizabeth|\
    William|Barbara|Richard|Susan|Joseph|Jessica|Thomas|Sarah|Carlos|Karen|Daniel|Lisa|Matthew|\
    Nancy|Anthony|Betty|Mark|Maria|Steven|Sandra|Paul|Ashley|Andrew|Emily|Kevin|Donna|Brian|\
    Michelle|Luis|Aisha|Wei|Priya|Omar|Sofia|Hiroshi|Fatima";
const LAST_NAMES: &str = "Smith|Johnson|Williams|Brown|Jones|Garcia|Miller|Davis|Rodriguez|\
    Martinez|Hernandez|Lopez|Gonzalez|Wilson|Anderson|Thomas|Taylor|Moore|Jackson|Martin|Lee|\
    Perez|Thompson|White|Harris|Sanchez|Clark|Ramirez|Lewis|Robinson|Walker|Young|Allen|King|\
    Wright|Scott|Torres|Nguyen|Hill|Flores|Green|Adams|Nelson|Baker|Chen|Patel|Kim|Okafor";
const STREETS: &str = "Main|Oak|Pine|Maple|Cedar|Elm|Washington|Lake|Hill|Park|Sunset|Lincoln|\
    Jackson|Church|Highland|Ridge|River|Meadow|Forest|Spring|Valley|Franklin|Madison|Walnut|\
    Willow|Chestnut|Mill|Center";
const STREET_SUFFIXES: &str = "St|Ave|Rd|Blvd|Dr|Ln|Ct|Way|Pl|Ter";
/// `city:state:ZIP prefix`, separated by `|`
const CITIES: &str = "Springfield:IL:627|Columbus:OH:432|Austin:TX:787|Dallas:TX:752|\
    Houston:TX:770|Phoenix:AZ:850|Denver:CO:802|Atlanta:GA:303|Charlotte:NC:282|Nashville:TN:372|\
    Orlando:FL:328|Tampa:FL:336|Sacramento:CA:958|San Diego:CA:921|Portland:OR:972|Seattle:WA:981|\
    Boise:ID:837|Omaha:NE:681|Kansas City:MO:641|Indianapolis:IN:462|Detroit:MI:482|\
    Milwaukee:WI:532|Minneapolis:MN:554|Pittsburgh:PA:152|Richmond:VA:232|Albany:NY:122";
const EMAIL_DOMAINS: &str = "gmail.com|yahoo.com|outlook.com|hotmail.com|icloud.com|aol.com|\
    comcast.net|proton.me";
/// `make:model:world manufacturer identifier`, separated by `|`
const MODELS: &str = "Ford:F-150:1FT|Ford:Escape:1FM|Ford:Explorer:1FM|\
    Chevrolet:Silverado 1500:1GC|Chevrolet:Equinox:2GN|Chevrolet:Malibu:1G1|Toyota:Camry:4T1|\
    Toyota:RAV4:2T3|Toyota:Tacoma:3TM|Toyota:Highlander:5TD|Honda:Civic:2HG|Honda:Accord:1HG|\
    Honda:CR-V:7FA|Nissan:Altima:1N4|Nissan:Rogue:5N1|Jeep:Grand Cherokee:1C4|Jeep:Wrangler:1C4|\
    Ram:1500:1C6|GMC:Sierra 1500:3GT|Hyundai:Tucson:KM8|Hyundai:Elantra:5NP|Kia:Sorento:5XY|\
    Subaru:Outback:4S4|Subaru:Forester:JF2|Volkswagen:Jetta:3VW|BMW:X5:5UX|Tesla:Model 3:5YJ|\
    Mazda:CX-5:JM3";
const TRIMS: &str = "Base|S|SE|SEL|LE|XLE|LX|EX|EX-L|Sport|Limited|Touring|Platinum|XLT|Lariat|LT|\
    Premium";
const COLORS: &str = "White|Black|Silver|Gray|Blue|Red|Green|Brown|Beige|Orange|\
    Magnetic Gray Metallic|Pearl White|Midnight Blue";
const VEHICLE_STATUS: &str = "sold|sold|sold|sold|in_stock|in_stock|in_transit|service_loaner|\
    wholesale";
const DEAL_TYPES: &str = "finance|finance|finance|cash|lease|lease";
const DEAL_STATUS: &str = "closed|closed|closed|closed|funded|funded|pending|desking|lost";
const LEAD_SOURCES: &str = "walk-in|website|phone|referral|autotrader|cars.com|facebook|\
    service drive";
const CONTACT: &str = "phone|email|text|any";
const LANGUAGES: &str = "en|en|en|en|es|es|vi|zh|fr";
const TAGS: &str = "vip|fleet|repeat-buyer|warranty|credit-challenged|loyalty|first-time|trade-in|\
    military|employee";
const PROMOS: &str = "0.9% APR|spring sales event|loyalty cash|conquest bonus|none|college grad|\
    military rebate";
const WARRANTIES: &str = "none|powertrain 5y/60k|bumper to bumper 3y/36k|extended 7y/100k|\
    tire and wheel";
const DEAL_COMMENTS: &str = "Customer wants delivery on Saturday|\
    Co-signer added after credit review|Payoff on trade verified with lender|\
    Dealer installed accessories included|Price matched competitor quote|Second key fob ordered|\
    Customer declined GAP insurance";
const RO_STATUS: &str = "closed|closed|closed|closed|closed|open|waiting_parts";
const RO_PREFIX: &str = "Customer states|Client reports|Customer requests inspection:|Owner says|\
    Per customer,";
const RO_SYMPTOMS: &str = "a grinding noise from the front brakes|the check engine light is on|\
    the vehicle pulls to the right|the AC blows warm air|the battery keeps dying overnight|\
    a vibration at highway speed|an oil leak under the engine|\
    the transmission slips between gears|a squeal when turning the steering wheel|a rough idle|\
    a hard start in the morning|a coolant smell in the cabin|the infotainment screen freezes|\
    the tire pressure warning light stays on|a clunk over bumps|\
    the door locks do not respond to the key fob|a burning smell after driving|\
    scheduled maintenance is due";
const RO_WHEN: &str = "when braking|at cold start|after 20 minutes of driving|intermittently|\
    only on the highway|when turning left|since the last oil change|in wet weather|at low speed|\
    all the time";
const RO_EXTRA: &str = "Please check and advise.|Vehicle is under warranty.|Customer is waiting.|\
    Loaner requested.|Call before doing any additional work.|Check for open recalls.|\
    Second visit for this concern.";
const RO_CAUSES: &str = "worn front brake pads and scored rotors|\
    a failed upstream O2 sensor, code P0133 stored|low refrigerant from a leaking condenser|\
    a weak battery that failed the load test|out-of-balance rear tires|\
    a leaking valve cover gasket|a worn outer tie rod end|\
    a failed ignition coil on cylinder 3, code P0303 stored|a loose heat shield on the exhaust|\
    outdated module software, TSB applies|a cracked serpentine belt|\
    a failed wheel bearing, left front|a clogged cabin air filter";
const RO_CAUSE_PREFIX: &str = "Found|Inspected and found|Diagnosed|Verified concern, found";
const RO_CORRECTIONS: &str = "Replaced front pads and rotors, road tested OK.|\
    Replaced the O2 sensor, cleared codes, verified the repair.|\
    Recovered and recharged the AC system, replaced the condenser.|\
    Replaced the battery, tested the charging system OK.|Balanced and rotated all four tires.|\
    Replaced the valve cover gasket, cleaned the engine.|\
    Replaced the tie rod end and performed a four-wheel alignment.|\
    Replaced the ignition coil, cleared codes, road tested.|\
    Secured the heat shield with new clamps.|\
    Reprogrammed the module per TSB, verified the operation.|\
    Replaced the serpentine belt and tensioner.|Replaced the wheel bearing hub assembly.|\
    Performed oil and filter change, multipoint inspection.";
const PART_ADJ: &str = "Front|Rear|Left|Right|Upper|Lower|Inner|Outer|OEM|Premium";
const PART_NOUNS: &str = "brake pad set|brake rotor|oil filter|air filter|cabin air filter|\
    wiper blade|spark plug|ignition coil|O2 sensor|serpentine belt|tie rod end|wheel bearing|\
    battery 48AGM|headlamp bulb|control arm bushing|valve cover gasket|thermostat|water pump|\
    AC condenser|shock absorber";
const PART_MAKERS: &str = "Motorcraft|ACDelco|Bosch|Denso|NGK|Monroe|Moog|Gates|Mopar|\
    Genuine Toyota";
const PART_CATEGORIES: &str = "brakes|filters|ignition|suspension|electrical|engine|cooling|hvac";
const LINE_DESC: &str = "Part per repair|Shop supplies|Replacement part|\
    Warranty part, return core|Fluids|Hardware kit";
const ACTORS: &str = "jsmith|mgarcia|rjohnson|lnguyen|kpatel|dbrown|awilson|tlee|svc-api|\
    svc-dms-sync|svc-reporting|svc-import|admin";
const AUDIT_ACTIONS: &str = "update|update|update|update|create|create|view|export|delete|login";
const AUDIT_ENTITIES: &str = "deal|customer|vehicle|repair_order|ro_line|part|appointment|invoice";
const AUDIT_FIELDS: &str = "status|sale_price|phone|email|mileage|technician|apr|closed_at|\
    qty_on_hand|notes|advisor";
const AUDIT_VALUES: &str = "open|closed|pending|funded|approved|declined|waiting_parts|in_stock|\
    sold";
const AUDIT_SOURCES: &str = "web|api|mobile|dms-sync|import|batch";
const AUDIT_REASONS: &str = "duplicate record|customer request|monthly report|data correction|\
    session start|export for accounting";

/// Inserts customers, vehicles, deals, parts, repair orders and their lines.
fn main_data_sql(s: &Scale) -> String {
    let (cities, ncities) = array(&column(CITIES, 0));
    let (states, _) = array(&column(CITIES, 1));
    let (zips, _) = array(&column(CITIES, 2));
    let (makes, nmodels) = array(&column(MODELS, 0));
    let (models, _) = array(&column(MODELS, 1));
    let (wmis, _) = array(&column(MODELS, 2));
    let person = format!("{} || ' ' || {}", pick(FIRST_NAMES), pick(LAST_NAMES));
    format!(
        "
SELECT setseed(0.42);
INSERT INTO customers (id, first_name, last_name, email, phone, street, city, state, zip,
                       created_at, marketing_opt_in, notes)
SELECT g, f, l,
    lower(f) || '.' || lower(l) || (g % 997)::text || '@' || {domain},
    '(' || (201 + floor(random() * 790))::int || ') ' || (201 + floor(random() * 790))::int
        || '-' || lpad(floor(random() * 10000)::int::text, 4, '0'),
    (1 + floor(random() * 9900))::int || ' ' || {street} || ' ' || {suffix},
    {cities}[ci], {states}[ci], {zips}[ci] || lpad(floor(random() * 100)::int::text, 2, '0'),
    created, random() < 0.35,
    CASE WHEN random() < 0.6 THEN jsonb_build_object(
        'source', {lead}, 'preferred_contact', {contact}, 'language', {lang},
        'tags', jsonb_build_array({tag}, {tag}),
        'credit_app_on_file', random() < 0.3) END
FROM (SELECT g, {first} AS f, {last} AS l, 1 + floor(random() * {ncities})::int AS ci,
             timestamptz '2012-01-01' + random() * interval '12 years' AS created
      FROM generate_series(1, {customers}) g) s;

INSERT INTO vehicles (id, customer_id, vin, make, model, model_year, trim_level, color, mileage,
                      msrp, stock_number, status, received_at)
SELECT g, CASE WHEN random() < 0.85 THEN 1 + floor(random() * {customers})::bigint END,
    {wmis}[mi] || upper(substr(md5(g::text || random()::text), 1, 14)),
    {makes}[mi], {models}[mi], yr, {trim}, {color},
    greatest(5, ((2025 - yr) * (6000 + random() * 9000))::int),
    round((18000 + random() * 52000)::numeric, 2),
    'S' || lpad(g::text, 7, '0'), {vstatus},
    timestamptz '2012-01-01' + random() * interval '12 years'
FROM (SELECT g, 1 + floor(random() * {nmodels})::int AS mi, 2005 + floor(random() * 20)::int AS yr
      FROM generate_series(1, {vehicles}) g) s;

INSERT INTO deals (id, customer_id, vehicle_id, salesperson, deal_type, status, sale_price,
                   trade_in_value, down_payment, amount_financed, apr, term_months, created_at,
                   closed_at, notes)
SELECT g, 1 + floor(random() * {customers})::bigint, 1 + floor(random() * {vehicles})::bigint,
    {person}, dt, st, price, trade, down,
    CASE WHEN dt = 'cash' THEN 0 ELSE greatest(price - trade - down, 0) END,
    CASE WHEN dt = 'cash' THEN NULL ELSE round((1.9 + random() * 9)::numeric, 3) END,
    CASE WHEN dt = 'cash' THEN NULL ELSE (ARRAY[36, 48, 60, 72, 84])[1 + floor(random() * 5)::int] END,
    created,
    CASE WHEN st IN ('closed', 'funded') THEN created + random() * interval '20 days' END,
    CASE WHEN random() < 0.4 THEN jsonb_build_object(
        'promo', {promo}, 'warranty', {warranty}, 'comment', {comment}) END
FROM (SELECT g, {dtype} AS dt, {dstatus} AS st,
             round((15000 + random() * 55000)::numeric, 2) AS price,
             CASE WHEN random() < 0.4 THEN round((1000 + random() * 20000)::numeric, 2) ELSE 0 END AS trade,
             round((random() * 8000)::numeric, 2) AS down,
             timestamptz '2014-01-01' + random() * interval '10 years' AS created
      FROM generate_series(1, {deals}) g) s;

INSERT INTO parts (id, part_number, description, manufacturer, category, unit_cost, list_price,
                   qty_on_hand, bin_location)
SELECT g, upper(substr(md5('part' || g), 1, 3)) || '-' || lpad(g::text, 7, '0'),
    {part_adj} || ' ' || {part_noun}, {part_maker}, {part_cat}, cost,
    round(cost * (1.3 + random() * 0.6)::numeric, 2), floor(random() * 60)::int,
    chr(65 + floor(random() * 8)::int) || '-' || (1 + floor(random() * 40))::int || '-'
        || (1 + floor(random() * 6))::int
FROM (SELECT g, round((2 + random() * 600)::numeric, 2) AS cost
      FROM generate_series(1, {parts}) g) s;

INSERT INTO repair_orders (id, ro_number, vehicle_id, customer_id, advisor, technician, status,
                           opened_at, closed_at, mileage_in, complaint, cause, correction,
                           labor_hours, labor_total, parts_total)
SELECT g, 'RO-' || lpad(g::text, 8, '0'), 1 + floor(random() * {vehicles})::bigint,
    1 + floor(random() * {customers})::bigint, {person}, {person}, st, opened,
    CASE WHEN st = 'closed' THEN opened + random() * interval '6 days' END,
    (5000 + random() * 150000)::int,
    {prefix} || ' ' || {symptom} || ' ' || {when} || '.'
        || CASE WHEN random() < 0.5 THEN ' ' || {extra} ELSE '' END,
    CASE WHEN st = 'open' THEN NULL ELSE {cause_prefix} || ' ' || {cause} || '.' END,
    CASE WHEN st = 'closed' THEN {correction}
        || CASE WHEN random() < 0.3 THEN ' Performed multipoint inspection, all OK.' ELSE '' END END,
    hours, round(hours * 145, 2), round((random() * 900)::numeric, 2)
FROM (SELECT g, {ro_status} AS st,
             timestamptz '2014-01-01' + random() * interval '10 years' AS opened,
             round((0.3 + random() * 6)::numeric, 2) AS hours
      FROM generate_series(1, {repair_orders}) g) s;

INSERT INTO ro_lines (id, repair_order_id, line_no, part_id, quantity, unit_price, description)
SELECT g, 1 + floor(random() * {repair_orders})::bigint, (1 + floor(random() * 6))::int,
    1 + floor(random() * {parts})::bigint,
    (ARRAY[1, 1, 1, 2, 4, 0.5, 5])[1 + floor(random() * 7)::int],
    round((5 + random() * 400)::numeric, 2),
    CASE WHEN random() < 0.5 THEN {line_desc} END
FROM generate_series(1, {ro_lines}) g;
",
        domain = pick(EMAIL_DOMAINS),
        street = pick(STREETS),
        suffix = pick(STREET_SUFFIXES),
        lead = pick(LEAD_SOURCES),
        contact = pick(CONTACT),
        lang = pick(LANGUAGES),
        tag = pick(TAGS),
        first = pick(FIRST_NAMES),
        last = pick(LAST_NAMES),
        customers = s.customers,
        trim = pick(TRIMS),
        color = pick(COLORS),
        vstatus = pick(VEHICLE_STATUS),
        vehicles = s.vehicles,
        promo = pick(PROMOS),
        warranty = pick(WARRANTIES),
        comment = pick(DEAL_COMMENTS),
        dtype = pick(DEAL_TYPES),
        dstatus = pick(DEAL_STATUS),
        deals = s.deals,
        part_adj = pick(PART_ADJ),
        part_noun = pick(PART_NOUNS),
        part_maker = pick(PART_MAKERS),
        part_cat = pick(PART_CATEGORIES),
        parts = s.parts,
        prefix = pick(RO_PREFIX),
        symptom = pick(RO_SYMPTOMS),
        when = pick(RO_WHEN),
        extra = pick(RO_EXTRA),
        cause_prefix = pick(RO_CAUSE_PREFIX),
        cause = pick(RO_CAUSES),
        correction = pick(RO_CORRECTIONS),
        ro_status = pick(RO_STATUS),
        repair_orders = s.repair_orders,
        line_desc = pick(LINE_DESC),
        ro_lines = s.ro_lines,
    )
}

/// Appends audit log rows `from..=to`; `base` (the first batch's row count) spreads the first
/// batch over eight years, one row every `8 years / base`, and later batches continue it.
fn audit_sql(seed: f64, from: u64, to: u64, base: u64) -> String {
    let step = 8.0 * 365.25 * 86400.0 / base.max(1) as f64;
    format!(
        "
SELECT setseed({seed});
INSERT INTO audit_log (id, logged_at, actor, action, entity, entity_id, request_id, client_ip,
                       changes)
SELECT g, timestamptz '2016-01-01' + g * interval '{step:.3} seconds', actor, act, ent,
    1 + floor(random() * 200000)::bigint,
    md5(random()::text)::uuid,
    ('10.' || floor(random() * 4)::int || '.' || floor(random() * 256)::int || '.'
        || floor(random() * 256)::int)::inet,
    CASE act
        WHEN 'update' THEN jsonb_build_object(
            fld, jsonb_build_object(
                'old', CASE WHEN random() < 0.5 THEN to_jsonb({value})
                            ELSE to_jsonb(round((random() * 50000)::numeric, 2)) END,
                'new', CASE WHEN random() < 0.5 THEN to_jsonb({value})
                            ELSE to_jsonb(round((random() * 50000)::numeric, 2)) END),
            'source', {source}, 'version', 1 + floor(random() * 12)::int)
        WHEN 'create' THEN jsonb_build_object(
            'source', {source}, 'fields', jsonb_build_array({field}, {field}, {field}))
        ELSE jsonb_build_object('source', {source}, 'reason', {reason}, 'user_agent',
            'Mozilla/5.0 (Windows NT 10.0; Win64; x64) DMS-Web/' || (3 + floor(random() * 3))::int
            || '.' || floor(random() * 20)::int)
    END
FROM (SELECT g, {actor} AS actor, {action} AS act, {entity} AS ent, {field} AS fld
      FROM generate_series({from}, {to}) g) s;
",
        value = pick(AUDIT_VALUES),
        source = pick(AUDIT_SOURCES),
        field = pick(AUDIT_FIELDS),
        reason = pick(AUDIT_REASONS),
        actor = pick(ACTORS),
        action = pick(AUDIT_ACTIONS),
        entity = pick(AUDIT_ENTITIES),
    )
}
