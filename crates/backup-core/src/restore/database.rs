//! Restoring a captured PostgreSQL database: create the target, pre-data
//! DDL, parallel `COPY FROM` with every stream checked against its SHA-256
//! and row count, sequences, large objects, post-data with `pg_restore -j`,
//! materialized view refresh. `--replace` restores into a side database and
//! swaps names in one short step.

use super::admin::{
    allow_connections, database_exists, drop_database, maintenance, rename, rename_closed,
};
use crate::error::{Error, ErrorKind, Result};
use crate::id::Id;
use crate::progress::Progress;
use crate::repository::{Repository, StreamReader};
use crate::snapshot::{PostgresComponent, StreamRef, TableData, TableStream};
use crate::source::postgres::catalog::{
    column_list, grant_statement, ident, literal, property_statements, qualified, session_settings,
};
use crate::source::postgres::conninfo::{db_error, ConnInfo};
use crate::source::postgres::tools;
use std::io::{Read, Write};
use std::process::Command;
use std::time::{Duration, Instant};

/// Options of a database restore.
#[derive(Debug, Clone, Default)]
pub struct DatabaseRestoreOptions {
    /// Where to restore (libpq connection string naming the database).
    pub target: String,
    /// Restore beside the live database, then swap names.
    pub replace: bool,
    /// Parallel connections for data and index builds.
    pub jobs: usize,
    /// Skip ownership and privileges (for a server without the same roles).
    pub no_owner: bool,
    /// Replay roles and tablespaces first (when captured with --globals).
    pub globals: bool,
}

/// What a database restore did.
#[derive(Debug, Clone, serde::Serialize)]
pub struct DatabaseRestoreReport {
    /// The database restored to.
    pub database: String,
    /// Tables loaded.
    pub tables: usize,
    /// Rows loaded.
    pub rows: u64,
    /// Bytes of table data.
    pub bytes: u64,
    /// With `--replace`: the name the previous database was kept under.
    pub previous: Option<String>,
    /// With `--replace`: how long the live name was unavailable, in seconds.
    pub downtime_secs: Option<f64>,
    /// Wall time in seconds.
    pub duration_secs: f64,
}

/// Opens a database stream for reading, checked against its SHA-256.
fn open_stream<'a>(repo: &'a Repository, s: &'a StreamRef, what: String) -> StreamReader<'a> {
    StreamReader::new(repo, &s.blobs, s.size, &s.sha256, what)
}

pub(crate) fn stamp() -> String {
    chrono::Utc::now().format("%Y%m%d%H%M%S").to_string()
}

/// A database name with a suffix, cut to PostgreSQL's 63-byte limit.
pub(crate) fn derived_name(base: &str, suffix: &str) -> String {
    let room = 63usize.saturating_sub(suffix.len());
    let mut b = base.to_string();
    while b.len() > room {
        b.pop();
    }
    format!("{b}{suffix}")
}

fn user_object_count(info: &ConnInfo) -> Result<i64> {
    let mut c = info.connect()?;
    let row = c
        .query_one(
            "SELECT (SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
                     WHERE n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\\_toast%' \
                     AND n.nspname NOT LIKE 'pg\\_temp%') \
                  + (SELECT count(*) FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace \
                     WHERE n.nspname NOT IN ('pg_catalog', 'information_schema')) \
                  + (SELECT count(*) FROM pg_largeobject_metadata)",
            &[],
        )
        .map_err(|e| db_error("checking that the target is empty", e))?;
    Ok(row.get(0))
}

/// Restores one captured database.
pub fn restore_database(
    repo: &Repository,
    comp: &PostgresComponent,
    options: &DatabaseRestoreOptions,
    progress: &dyn Progress,
) -> Result<DatabaseRestoreReport> {
    let start = Instant::now();
    let _lock = crate::repository::Lock::acquire(repo, false, "restore")?;
    let target = ConnInfo::parse(&options.target)?;
    let live = target.dbname().to_string();
    let mut maint = maintenance(&target)?;
    let exists = database_exists(&mut maint, &live)?;
    if exists && !options.replace {
        let n = user_object_count(&target).map_err(|e| e.with_kind(ErrorKind::Target))?;
        if n > 0 {
            return Err(Error::new(
                ErrorKind::Target,
                format!(
                    "database {live} exists and is not empty ({n} objects): restore into a new or empty database, \
                     or pass --replace to restore beside it and swap"
                ),
            ));
        }
    }
    // Whatever the case, the restore builds a database of its own and only
    // puts it in place when it is complete: a failure leaves the target as
    // it was.
    let into = if exists {
        derived_name(&live, &format!("__restore_{}", stamp()))
    } else {
        live.clone()
    };
    let stage = StageOptions {
        jobs: options.jobs,
        no_owner: options.no_owner,
        globals: options.globals,
    };
    stage_database(repo, comp, &target, &into, &stage, progress)?;
    let mut report = DatabaseRestoreReport {
        database: live.clone(),
        tables: comp.tables.len(),
        rows: comp.rows(),
        bytes: comp.bytes(),
        previous: None,
        downtime_secs: None,
        duration_secs: 0.0,
    };
    if exists {
        let before = derived_name(&live, &format!("__before_restore_{}", stamp()));
        match swap(&mut maint, &live, &into, &before, true) {
            Ok(downtime) => {
                if options.replace {
                    report.downtime_secs = Some(downtime.as_secs_f64());
                    report.previous = Some(before);
                } else {
                    // The target was an empty database: nothing to keep.
                    let _ = drop_database(&mut maint, &before);
                }
            }
            Err(e) => {
                let _ = drop_database(&mut maint, &into);
                return Err(e);
            }
        }
    } else if options.replace {
        report.downtime_secs = Some(0.0);
    }
    report.duration_secs = start.elapsed().as_secs_f64();
    Ok(report)
}

/// How a database is staged.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct StageOptions {
    /// Parallel connections.
    pub jobs: usize,
    /// Skip ownership and privileges.
    pub no_owner: bool,
    /// Replay roles and tablespaces first.
    pub globals: bool,
}

/// Restores `comp` into a new database `into` on the target's server,
/// every stream checked against its SHA-256 and row count before it
/// commits. On failure the new database is dropped. The caller holds the
/// repository lock.
pub(crate) fn stage_database(
    repo: &Repository,
    comp: &PostgresComponent,
    target: &ConnInfo,
    into: &str,
    options: &StageOptions,
    progress: &dyn Progress,
) -> Result<()> {
    let mut maint = maintenance(target)?;
    let pg_restore = restore_tool(&mut maint, comp)?;
    create_database(&mut maint, into, comp)?;
    let into_info = target.with_dbname(into);
    let result = load(repo, comp, &into_info, &pg_restore, options, progress).and_then(|()| {
        for stmt in property_statements(&comp.properties, &ident(into), options.no_owner) {
            maint.batch_execute(&stmt).map_err(|e| {
                db_error(format!("applying database properties ({stmt})"), e)
                    .with_kind(ErrorKind::Target)
            })?;
        }
        Ok(())
    });
    if let Err(e) = result {
        let _ = drop_database(&mut maint, into);
        return Err(e);
    }
    Ok(())
}

/// The `pg_restore` for this server and capture, refusing a server older
/// than the captured one.
fn restore_tool(
    maint: &mut postgres::Client,
    comp: &PostgresComponent,
) -> Result<std::path::PathBuf> {
    let target_version: i32 = maint
        .query_one("SELECT current_setting('server_version_num')::int4", &[])
        .map_err(|e| db_error("reading the target server version", e))?
        .get(0);
    let (src_major, dst_major) = (
        tools::major(comp.server_version_num),
        tools::major(target_version as u32),
    );
    if dst_major < src_major {
        return Err(Error::new(
            ErrorKind::Target,
            format!(
                "the target server runs PostgreSQL {dst_major}, older than the captured database's {src_major}: \
                 restore to a server of version {src_major} or newer"
            ),
        ));
    }
    tools::find_tool("pg_restore", src_major.max(dst_major))
}

fn create_database(
    maint: &mut postgres::Client,
    name: &str,
    comp: &PostgresComponent,
) -> Result<()> {
    let sql = format!(
        "CREATE DATABASE {} TEMPLATE template0 ENCODING {} LC_COLLATE {} LC_CTYPE {}",
        ident(name),
        literal(&comp.encoding),
        literal(&comp.collate),
        literal(&comp.ctype)
    );
    maint.batch_execute(&sql).map_err(|e| {
        db_error(
            format!(
                "cannot create database {name} (encoding {}, locale {})",
                comp.encoding, comp.collate
            ),
            e,
        )
        .with_kind(ErrorKind::Target)
    })
}

/// Moves `live` aside and `side` into its name; returns the time the live
/// name was unavailable.
fn swap(
    maint: &mut postgres::Client,
    live: &str,
    side: &str,
    before: &str,
    live_exists: bool,
) -> Result<Duration> {
    let t0 = Instant::now();
    if live_exists {
        rename_closed(maint, live, before)?;
    }
    if let Err(e) = rename(maint, side, live) {
        if live_exists {
            let _ = rename(maint, before, live);
            let _ = allow_connections(maint, live, true);
        }
        return Err(e.context(format!(
            "cannot rename the restored database to {live}; the old one was put back"
        )));
    }
    let downtime = t0.elapsed();
    if live_exists {
        let _ = allow_connections(maint, before, true);
    }
    Ok(downtime)
}

/// Whether `jobs` index builds at once keep all `cores` of the server busy
/// on their own: parallel workers for each build would then only add their
/// coordination and split its sort memory (measured on two cores: a
/// restore with two jobs took about a tenth less without them).
fn builds_fill_cores(jobs: usize, cores: usize) -> bool {
    jobs > 1 && jobs >= cores
}

fn run_pg_restore(
    pg_restore: &std::path::Path,
    archive: &std::path::Path,
    info: &ConnInfo,
    section: &str,
    jobs: usize,
    no_owner: bool,
) -> Result<()> {
    let mut cmd = Command::new(pg_restore);
    cmd.arg(format!("--section={section}"))
        .arg("--exit-on-error")
        .arg(format!("--dbname={}", info.libpq_string()));
    if jobs > 1 {
        cmd.arg(format!("--jobs={jobs}"));
    }
    if no_owner {
        cmd.args(["--no-owner", "--no-privileges"]);
    }
    // Index builds sort in memory rather than in temporary files.
    let mut pgoptions = std::env::var("PGOPTIONS").unwrap_or_default();
    pgoptions.push_str(" -c maintenance_work_mem=256MB -c synchronous_commit=off");
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    if section == "post-data" && info.is_local() && builds_fill_cores(jobs, cores) {
        pgoptions.push_str(" -c max_parallel_maintenance_workers=0");
    }
    cmd.arg(archive)
        .envs(info.tool_env())
        .env("PGOPTIONS", pgoptions.trim());
    tools::run(
        cmd,
        &format!("pg_restore --section={section}"),
        ErrorKind::Target,
    )?;
    Ok(())
}

fn load(
    repo: &Repository,
    comp: &PostgresComponent,
    info: &ConnInfo,
    pg_restore: &std::path::Path,
    options: &StageOptions,
    progress: &dyn Progress,
) -> Result<()> {
    // The DDL archive, verified, in a private temporary file (pg_restore -j needs a file).
    let mut archive = tempfile::Builder::new()
        .prefix("backup-schema-")
        .tempfile()
        .map_err(|e| Error::io("creating a temporary file", e))?;
    {
        let mut s = open_stream(
            repo,
            &comp.schema,
            format!("the schema of database {}", comp.database),
        );
        std::io::copy(&mut s, archive.as_file_mut())
            .map_err(|e| Error::corrupt(format!("reading the schema archive: {e}")))?;
        s.check()?;
        archive
            .as_file_mut()
            .flush()
            .map_err(|e| Error::io("writing a temporary file", e))?;
    }
    if options.globals {
        if let Some(g) = &comp.globals {
            replay_globals(repo, g, info)?;
        }
    }
    let jobs = options.jobs.max(1);
    progress.phase(
        &format!("restoring database {} (schema)", info.dbname()),
        None,
    );
    run_pg_restore(
        pg_restore,
        archive.path(),
        info,
        "pre-data",
        1,
        options.no_owner,
    )?;
    let total: u64 = comp.tables.iter().map(|t| t.bytes).sum();
    progress.phase(&format!("loading database {}", info.dbname()), Some(total));
    load_tables(repo, comp, info, jobs, progress)?;
    let settings = session_settings(&comp.encoding, &comp.lc_monetary);
    let mut c = info.connect()?;
    c.batch_execute(&settings)
        .map_err(|e| db_error("setting up the session", e))?;
    for s in &comp.sequences {
        c.execute(
            "SELECT pg_catalog.setval($1::text::regclass, $2, $3)",
            &[&qualified(&s.schema, &s.name), &s.last_value, &s.is_called],
        )
        .map_err(|e| db_error(format!("setting sequence {}.{}", s.schema, s.name), e))?;
    }
    for lo in &comp.large_objects {
        restore_large_object(repo, &mut c, lo, options.no_owner)?;
    }
    progress.phase(
        &format!(
            "restoring database {} (indexes, constraints)",
            info.dbname()
        ),
        None,
    );
    run_pg_restore(
        pg_restore,
        archive.path(),
        info,
        "post-data",
        jobs,
        options.no_owner,
    )?;
    refresh_matviews(&mut c, comp)?;
    Ok(())
}

fn replay_globals(repo: &Repository, g: &StreamRef, info: &ConnInfo) -> Result<()> {
    let mut s = open_stream(repo, g, "the globals".into());
    let mut sql = String::new();
    s.read_to_string(&mut sql)
        .map_err(|e| Error::corrupt(format!("reading the globals: {e}")))?;
    s.check()?;
    let mut c = info.connect()?;
    // Roles that already exist are fine: run statement by statement, ignoring
    // "already exists". Comments and psql meta-commands are dropped first.
    let cleaned: String = sql
        .lines()
        .filter(|l| !l.trim_start().starts_with("--") && !l.starts_with('\\'))
        .collect::<Vec<_>>()
        .join("\n");
    for stmt in cleaned
        .split(";\n")
        .map(str::trim)
        .filter(|s| !s.is_empty())
    {
        if let Err(e) = c.batch_execute(stmt) {
            if e.code() != Some(&tokio_postgres::error::SqlState::DUPLICATE_OBJECT) {
                return Err(db_error("replaying roles and tablespaces", e));
            }
        }
    }
    Ok(())
}

fn restore_large_object(
    repo: &Repository,
    c: &mut postgres::Client,
    lo: &crate::snapshot::LargeObject,
    no_owner: bool,
) -> Result<()> {
    c.execute("SELECT lo_create($1)", &[&lo.oid])
        .map_err(|e| db_error(format!("creating large object {}", lo.oid), e))?;
    let mut s = open_stream(repo, &lo.data, format!("large object {}", lo.oid));
    let mut buf = vec![0u8; 1024 * 1024];
    let mut offset = 0i64;
    loop {
        let n = read_full(&mut s, &mut buf)
            .map_err(|e| Error::corrupt(format!("reading large object {}: {e}", lo.oid)))?;
        if n == 0 {
            break;
        }
        c.execute("SELECT lo_put($1, $2, $3)", &[&lo.oid, &offset, &&buf[..n]])
            .map_err(|e| db_error(format!("writing large object {}", lo.oid), e))?;
        offset += n as i64;
    }
    s.check()?;
    let mut stmts = Vec::new();
    if !no_owner {
        stmts.push(format!(
            "ALTER LARGE OBJECT {} OWNER TO {}",
            lo.oid,
            ident(&lo.owner)
        ));
        if let Some(acl) = &lo.acl {
            stmts.push(format!("REVOKE ALL ON LARGE OBJECT {} FROM PUBLIC", lo.oid));
            stmts.extend(
                acl.iter()
                    .map(|g| grant_statement(g, &format!("LARGE OBJECT {}", lo.oid))),
            );
        }
    }
    if let Some(comment) = &lo.comment {
        stmts.push(format!(
            "COMMENT ON LARGE OBJECT {} IS {}",
            lo.oid,
            literal(comment)
        ));
    }
    for stmt in stmts {
        c.batch_execute(&stmt).map_err(|e| {
            db_error(format!("restoring large object {} ({stmt})", lo.oid), e)
                .with_kind(ErrorKind::Target)
        })?;
    }
    Ok(())
}

fn read_full(r: &mut impl Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..])? {
            0 => break,
            k => n += k,
        }
    }
    Ok(n)
}

fn refresh_matviews(c: &mut postgres::Client, comp: &PostgresComponent) -> Result<()> {
    // Views may read each other: retry the failures until no progress.
    let mut pending: Vec<_> = comp.matviews.iter().filter(|m| m.populated).collect();
    while !pending.is_empty() {
        let mut failed = Vec::new();
        let mut last_err = None;
        for m in &pending {
            if let Err(e) = c.batch_execute(&format!(
                "REFRESH MATERIALIZED VIEW {}",
                qualified(&m.schema, &m.name)
            )) {
                last_err = Some(db_error(
                    format!("refreshing materialized view {}.{}", m.schema, m.name),
                    e,
                ));
                failed.push(*m);
            }
        }
        if failed.len() == pending.len() {
            return Err(last_err.expect("a failure"));
        }
        pending = failed;
    }
    Ok(())
}

fn load_tables(
    repo: &Repository,
    comp: &PostgresComponent,
    info: &ConnInfo,
    jobs: usize,
    progress: &dyn Progress,
) -> Result<()> {
    // Whole tables, each in one transaction with FREEZE, unless one table
    // is so large that loading its parts side by side is what keeps every
    // worker busy.
    let total: u64 = comp.tables.iter().map(|t| t.bytes).sum();
    let largest = comp.tables.iter().map(|t| t.bytes).max().unwrap_or(0);
    let whole = largest.saturating_mul(jobs as u64) <= total;
    let mut work: Vec<(&TableData, Vec<&TableStream>)> = if whole {
        comp.tables
            .iter()
            .map(|t| (t, t.streams.iter().collect()))
            .collect()
    } else {
        comp.tables
            .iter()
            .flat_map(|t| t.streams.iter().map(move |s| (t, vec![s])))
            .collect()
    };
    work.sort_by_key(|w| std::cmp::Reverse(w.1.iter().map(|s| s.data.size).sum::<u64>()));
    // Loads are verified before they commit and a failed restore drops the
    // database, so commits need not wait for the WAL flush.
    let settings = format!(
        "{}; SET synchronous_commit = off",
        session_settings(&comp.encoding, &comp.lc_monetary)
    );
    crate::parallel::for_each_parallel(
        &work,
        jobs,
        || {
            let mut c = info.connect()?;
            c.batch_execute(&settings)
                .map_err(|e| db_error("setting up a loader session", e))?;
            Ok(c)
        },
        |client, (t, parts)| load_parts(repo, client, t, parts, progress),
    )
}

/// Loads some parts of a table; all of them (then in one transaction with
/// FREEZE: the rows land frozen with hint bits set, so the index builds that
/// follow do not rewrite every page) or one.
fn load_parts(
    repo: &Repository,
    client: &mut postgres::Client,
    t: &TableData,
    parts: &[&TableStream],
    progress: &dyn Progress,
) -> Result<()> {
    let what = format!("table {}.{}", t.schema, t.name);
    let cols = column_list(&t.columns);
    let freeze = parts.len() == t.streams.len();
    if freeze {
        client
            .batch_execute(&format!(
                "BEGIN; TRUNCATE ONLY {}",
                qualified(&t.schema, &t.name)
            ))
            .map_err(|e| db_error(format!("preparing {what}"), e))?;
    }
    let mut buf = vec![0u8; 256 * 1024];
    for st in parts {
        let mut writer = client
            .copy_in(&format!(
                "COPY {}{} FROM STDIN{}",
                qualified(&t.schema, &t.name),
                cols,
                if freeze { " WITH (FREEZE)" } else { "" }
            ))
            .map_err(|e| db_error(format!("loading {what}"), e))?;
        let mut stream = open_stream(repo, &st.data, format!("the data of {what}"));
        loop {
            let n = stream
                .read(&mut buf)
                .map_err(|e| Error::corrupt(format!("reading the data of {what}: {e}")))?;
            if n == 0 {
                break;
            }
            writer
                .write_all(&buf[..n])
                .map_err(|e| Error::new(ErrorKind::Target, format!("loading {what}: {e}")))?;
            progress.inc(n as u64);
        }
        // Check before the COPY commits: a damaged stream never lands.
        stream.check()?;
        let rows = writer
            .finish()
            .map_err(|e| db_error(format!("loading {what}"), e))?;
        if rows != st.rows {
            return Err(Error::corrupt(format!(
                "{what}: loaded {rows} rows, the snapshot says {}",
                st.rows
            )));
        }
    }
    if freeze {
        client
            .batch_execute("COMMIT")
            .map_err(|e| db_error(format!("committing {what}"), e))?;
    }
    Ok(())
}

/// Blob ids of every stream of a component (for verify and export).
pub fn component_blobs(comp: &PostgresComponent) -> Vec<Id> {
    comp.streams()
        .into_iter()
        .flat_map(|(_, s)| s.blobs.iter().copied())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::builds_fill_cores;

    #[test]
    fn parallel_index_workers_stay_when_cores_are_left_over() {
        assert!(builds_fill_cores(2, 2));
        assert!(builds_fill_cores(4, 2));
        // One build at a time: its workers use the other cores.
        assert!(!builds_fill_cores(1, 2));
        assert!(!builds_fill_cores(1, 1));
        assert!(!builds_fill_cores(2, 16));
    }
}
