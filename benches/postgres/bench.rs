//! The throwaway cluster and the tools: SQL through `psql`, and `backup` runs against it.

use std::ffi::{OsStr, OsString};
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use testkit::Postgres;

use crate::data::{audit_sql, main_data_sql};
use crate::schema::{Scale, CONSTRAINTS_SQL, SCHEMA_SQL, TABLES};
use crate::support::process::{capture, GNU_TIME};
use crate::support::workdir::{warm, WorkDir};
use crate::support::Result;
use crate::timed::Timed;

/// The cluster, the work directory and the tools.
pub struct Bench<'a> {
    pub pg: Postgres,
    pub work: &'a WorkDir,
    pub backup: PathBuf,
    pub jobs: u64,
    /// Rounds of the timed comparisons; the best of each is reported.
    pub runs: usize,
    /// `backup init --compression-level`, when set.
    pub compression: Option<u64>,
    /// GNU time's output file, when GNU time exists.
    pub time_file: Option<PathBuf>,
    /// PID of the postmaster, for the server's CPU time.
    pub postmaster: Option<u32>,
    /// Clock ticks per second of `/proc/<pid>/stat` times.
    pub clock_ticks: f64,
}

impl<'a> Bench<'a> {
    pub fn new(
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
    pub fn conninfo(&self, db: &str) -> String {
        format!(
            "host={} port={} user={} dbname={db}",
            self.pg.socket_dir().display(),
            self.pg.port(),
            self.pg.user()
        )
    }

    /// Runs SQL (one statement or a script) in `db` and returns psql's output.
    pub fn sql(&self, db: &str, sql: &str) -> Result<String> {
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

    pub fn checkpoint(&self) -> Result<()> {
        self.sql("postgres", "CHECKPOINT")?;
        Ok(())
    }

    /// `backup <args> --repo <repo> --json -q`, timed, with its JSON output.
    pub fn backup(&self, name: &str, args: &[&OsStr]) -> Result<(Timed, serde_json::Value)> {
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

    pub fn create(&self, name: &str, db: &str) -> Result<(Timed, serde_json::Value)> {
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

    pub fn restore(
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

    /// `backup rollback plan` of snapshot `id` for a system of database `db` alone (its
    /// description written to the work directory), with the plan JSON.
    pub fn plan(&self, name: &str, id: &str, db: &str) -> Result<(Timed, serde_json::Value)> {
        let system = self.work.join("system.toml");
        fs::write(
            &system,
            format!(
                "[[postgres]]\nname = \"{db}\"\nconnection = \"{}\"\n",
                self.conninfo(db)
            ),
        )?;
        self.checkpoint()?;
        self.backup(
            name,
            &[
                OsStr::new("rollback"),
                OsStr::new("plan"),
                OsStr::new("--config"),
                system.as_os_str(),
                OsStr::new(id),
            ],
        )
    }

    /// Row counts of every table and the number of indexes, constraints and triggers: equal
    /// after a correct restore.
    pub fn fingerprint(&self, db: &str) -> Result<String> {
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

    pub fn database_size(&self, db: &str) -> Result<u64> {
        let s = self.sql("postgres", &format!("SELECT pg_database_size('{db}')"))?;
        Ok(s.trim().parse()?)
    }

    pub fn drop_database(&self, db: &str) -> Result<()> {
        self.sql(
            "postgres",
            &format!("DROP DATABASE IF EXISTS \"{db}\" WITH (FORCE)"),
        )?;
        Ok(())
    }

    /// Creates and fills database `db` of about `mib` MiB; returns the row counts used.
    pub fn generate(&self, db: &str, mib: u64) -> Result<Scale> {
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

    /// `backup restore --replace` over `db` while a session is connected to it (as an
    /// application would be).
    pub fn replace(&self, name: &str, id: &str, db: &str) -> Result<(Timed, serde_json::Value)> {
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
