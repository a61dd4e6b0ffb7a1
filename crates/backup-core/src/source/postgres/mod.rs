//! The PostgreSQL source: a consistent, parallel, logical capture.
//!
//! A coordinating connection opens a `REPEATABLE READ` transaction, takes
//! `ACCESS SHARE` locks on every table (failing fast on a lock it cannot
//! get, like `pg_dump --lock-wait-timeout`) and exports its snapshot.
//! Worker connections import that snapshot, so every table (and every
//! `ctid` range of a large table) is read at the same instant, as text
//! `COPY`. DDL comes from `pg_dump --schema-only --snapshot`, in custom
//! format so that restores can use `pg_restore --section` and `-j`.

pub mod catalog;
pub mod conninfo;
pub mod rows;
pub mod stats;
pub mod tools;
pub mod unchanged;

use self::catalog::{
    column_list, literal, qualified, quoted_columns, session_settings, ServerInfo, TableInfo,
};
use self::conninfo::{db_error, error_text, ConnInfo};
use self::rows::{add_digests, RowTap};
use crate::error::{Error, ErrorKind, Result};
use crate::progress::Progress;
use crate::repository::{BlobKind, Content, Saver, StoredStream, StreamError};
use crate::snapshot::{
    Extension, LargeObject, MatView, PostgresComponent, SequenceValue, StreamRef, TableData,
    TableStream,
};
use std::io::Read;
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::time::Duration;
use tokio_postgres::error::SqlState;

/// Options of the PostgreSQL source.
#[derive(Debug, Clone)]
pub struct PostgresOptions {
    /// Parallel worker connections.
    pub jobs: usize,
    /// Also capture roles and tablespaces (`pg_dumpall --globals-only`).
    pub globals: bool,
    /// How long to wait for a table lock before failing.
    pub lock_timeout: Duration,
    /// Tables larger than this are read in page ranges, in parallel.
    pub split_bytes: u64,
}

/// Tables larger than this many MiB are read in page ranges of half that
/// size by default: small enough that a change in one place of a large
/// table leaves most of its ranges reusable by the next capture (a safety
/// snapshot, a scheduled one), large enough that a range is many chunks.
pub const DEFAULT_SPLIT_MIB: u64 = 16;

impl Default for PostgresOptions {
    fn default() -> Self {
        PostgresOptions {
            jobs: 2,
            globals: false,
            lock_timeout: Duration::from_secs(10),
            split_bytes: DEFAULT_SPLIT_MIB * 1024 * 1024,
        }
    }
}

impl From<StoredStream> for StreamRef {
    fn from(s: StoredStream) -> Self {
        StreamRef {
            size: s.size,
            sha256: s.sha256,
            blobs: s.blobs,
        }
    }
}

fn stream_err(what: &str) -> impl Fn(StreamError) -> Error + '_ {
    move |e| match e {
        StreamError::Repo(r) => r,
        StreamError::Read(io) => Error::new(
            ErrorKind::Source,
            format!("reading {what} failed (did the server go away?): {io}"),
        ),
    }
}

/// One unit of parallel work: a table or a page range of it.
struct Job {
    table: usize,
    first_page: Option<u32>,
    end_page: Option<u32>,
    bytes: u64,
}

fn plan_jobs(tables: &[TableInfo], split_bytes: u64, server_version_num: u32) -> Vec<Job> {
    let mut jobs = Vec::new();
    // TID range scans arrived in PostgreSQL 14.
    let can_split = server_version_num >= 140000;
    for (i, t) in tables.iter().enumerate() {
        let bytes = t.bytes.max(0) as u64;
        if !can_split || bytes <= split_bytes || t.block_size <= 0 {
            jobs.push(Job {
                table: i,
                first_page: None,
                end_page: None,
                bytes,
            });
            continue;
        }
        let pages = (bytes / t.block_size as u64) as u32;
        let per = ((split_bytes / 2) / t.block_size as u64).max(1) as u32;
        let mut start = 0u32;
        while start < pages {
            let end = start.saturating_add(per);
            let last = end >= pages;
            jobs.push(Job {
                table: i,
                first_page: Some(start),
                // The last range is open, so rows in pages added meanwhile are never missed.
                end_page: if last { None } else { Some(end) },
                bytes: (per as u64 * t.block_size as u64).min(bytes),
            });
            start = end;
        }
    }
    jobs.sort_by_key(|j| std::cmp::Reverse(j.bytes));
    jobs
}

fn copy_statement(t: &TableInfo, first: Option<u32>, end: Option<u32>) -> String {
    let cols = quoted_columns(&t.columns);
    let table = qualified(&t.schema, &t.name);
    match (first, end) {
        // A table may have no columns at all: then COPY takes no column list.
        (None, None) => format!("COPY {table}{} TO STDOUT", column_list(&t.columns)),
        (Some(a), None) => format!("COPY (SELECT {cols} FROM ONLY {table} WHERE ctid >= '({a},0)'::tid) TO STDOUT"),
        (Some(a), Some(b)) => format!(
            "COPY (SELECT {cols} FROM ONLY {table} WHERE ctid >= '({a},0)'::tid AND ctid < '({b},0)'::tid) TO STDOUT"
        ),
        (None, Some(b)) => format!("COPY (SELECT {cols} FROM ONLY {table} WHERE ctid < '({b},0)'::tid) TO STDOUT"),
    }
}

/// Captures one database into a component. `parents` are earlier captures,
/// newest first: table parts they prove unchanged are reused unread.
pub fn capture_postgres(
    saver: &Saver,
    conn: &str,
    options: &PostgresOptions,
    parents: &[&PostgresComponent],
    progress: &dyn Progress,
) -> Result<PostgresComponent> {
    let info = ConnInfo::parse(conn)?;
    let mut coord = info.connect()?;
    let server = catalog::server_info(&mut coord)?;
    let pg_dump = tools::find_tool("pg_dump", tools::major(server.version_num))?;
    let pg_dump_version = Command::new(&pg_dump)
        .arg("--version")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default();
    let settings = session_settings(&server.encoding, &server.lc_monetary);
    coord
        .batch_execute(&format!(
            "BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY; {settings}; SET lock_timeout = '{}ms'",
            options.lock_timeout.as_millis().max(1)
        ))
        .map_err(|e| db_error("starting the capture transaction", e))?;
    // The write counters first: they are read as the snapshot is taken.
    let counters = stats::try_write_counters(&mut coord);
    let mut tables = catalog::tables(&mut coord)?;
    // Lock every table like pg_dump does, so that no DDL runs under us.
    for t in &tables {
        let q = qualified(&t.schema, &t.name);
        coord.batch_execute(&format!("LOCK TABLE {q} IN ACCESS SHARE MODE")).map_err(|e| {
            let text = error_text(&e);
            let hint = if e.code() == Some(&SqlState::LOCK_NOT_AVAILABLE) {
                format!("another session holds a conflicting lock on it for more than {:?}; retry later or raise --lock-timeout", options.lock_timeout)
            } else if e.code() == Some(&SqlState::INSUFFICIENT_PRIVILEGE) {
                "the role lacks SELECT on it: grant it (or use a role that can read every table)".to_string()
            } else {
                "check the role's privileges".to_string()
            };
            Error::new(ErrorKind::Source, format!("cannot lock table {}.{}: {text}; {hint}", t.schema, t.name))
        })?;
    }
    catalog::fill_sizes(&mut coord, &mut tables)?;
    let snapshot_id: String = coord
        .query_one("SELECT pg_export_snapshot()", &[])
        .map_err(|e| db_error("exporting the snapshot", e))?
        .get(0);
    let identity = unchanged::identity(&mut coord, &server, &settings);
    let parent = identity
        .as_ref()
        .and_then(|i| unchanged::pick_parent(parents, i));
    let sequences_list = catalog::sequences(&mut coord)?;
    let matviews = catalog::matviews(&mut coord)?;
    let los = catalog::large_object_details(&mut coord)?;
    let properties = catalog::database_properties(&mut coord)?;

    let total: u64 = tables.iter().map(|t| t.bytes.max(0) as u64).sum();
    progress.phase(&format!("reading database {}", info.dbname()), Some(total));

    // DDL, read by pg_dump under the same snapshot, in parallel with the data.
    let jobs = plan_jobs(&tables, options.split_bytes, server.version_num);
    let results: Mutex<Vec<(usize, TableStream, bool)>> = Mutex::new(Vec::new());
    let reader = JobReader {
        saver,
        parent: unchanged::parent_tables(parent),
        summarise: identity.is_some(),
        progress,
    };
    let (schema, data) = std::thread::scope(|s| {
        let dump = s.spawn(|| run_pg_dump(saver, &pg_dump, &info, &snapshot_id, options));
        let data = crate::parallel::for_each_parallel(
            &jobs,
            options.jobs,
            || start_worker(&info, &snapshot_id, &settings),
            |client, job| {
                let (ts, reused) = reader.read(client, &tables[job.table], job)?;
                results.lock().expect("lock").push((job.table, ts, reused));
                Ok(())
            },
        );
        let schema = dump
            .join()
            .unwrap_or_else(|_| Err(Error::new(ErrorKind::Source, "the pg_dump reader panicked")));
        (schema, data)
    });
    data?;
    let schema = schema?;

    // Sequences and large objects, read by the coordinator (same snapshot).
    let mut sequences = Vec::new();
    for (schema_name, name) in sequences_list {
        let row = coord
            .query_one(
                &format!(
                    "SELECT last_value, is_called FROM {}",
                    qualified(&schema_name, &name)
                ),
                &[],
            )
            .map_err(|e| db_error(format!("reading sequence {schema_name}.{name}"), e))?;
        sequences.push(SequenceValue {
            schema: schema_name,
            name,
            last_value: row.get(0),
            is_called: row.get(1),
        });
    }
    let mut large_objects = Vec::new();
    for (oid, owner, acl, comment) in los {
        let reader = LoReader {
            client: &mut coord,
            oid,
            offset: 0,
            done: false,
        };
        let data = saver
            .save_reader(reader, BlobKind::Data, |n| progress.inc(n))
            .map_err(stream_err(&format!("large object {oid}")))?;
        large_objects.push(LargeObject {
            oid,
            owner,
            acl,
            comment,
            data: data.into(),
        });
    }
    let globals = if options.globals {
        Some(run_pg_dumpall(saver, &info, server.version_num)?)
    } else {
        None
    };
    coord
        .batch_execute("COMMIT")
        .map_err(|e| db_error("finishing the capture transaction", e))?;

    let mut per_table: Vec<Vec<TableStream>> = vec![Vec::new(); tables.len()];
    let mut reused_parts = 0;
    for (i, ts, reused) in results.into_inner().expect("lock") {
        per_table[i].push(ts);
        reused_parts += reused as u64;
    }
    let tables_out = tables
        .iter()
        .zip(per_table)
        .map(|(t, mut streams)| {
            streams.sort_by_key(|s| s.first_page.unwrap_or(0));
            TableData {
                schema: t.schema.clone(),
                name: t.name.clone(),
                columns: t.columns.clone(),
                oid: Some(t.oid),
                layout: Some(t.layout.clone()),
                rows: streams.iter().map(|s| s.rows).sum(),
                bytes: streams.iter().map(|s| s.data.size).sum(),
                digest: streams
                    .iter()
                    .fold("0".repeat(32), |acc, s| add_digests(&acc, &s.digest)),
                streams,
                stats: counters
                    .as_ref()
                    .map(|c| c.tables.get(&t.oid).copied().unwrap_or_default()),
            }
        })
        .collect();
    Ok(PostgresComponent {
        name: String::new(),
        database: info.dbname().to_string(),
        connection: info.redacted(),
        server_version: server.version.clone(),
        server_version_num: server.version_num,
        encoding: server.encoding.clone(),
        collate: server.collate.clone(),
        ctype: server.ctype.clone(),
        lc_monetary: server.lc_monetary.clone(),
        extensions: server
            .extensions
            .iter()
            .map(|(n, v)| Extension {
                name: n.clone(),
                version: v.clone(),
            })
            .collect(),
        pg_dump_version,
        schema,
        globals,
        tables: tables_out,
        sequences,
        large_objects,
        properties,
        matviews: matviews
            .into_iter()
            .map(|(schema, name, populated)| MatView {
                schema,
                name,
                populated,
            })
            .collect(),
        identity: identity.as_ref().map(|i| i.id.clone()),
        xid: identity.as_ref().map(|i| i.xid),
        reused_parts,
        stats_reset: counters.and_then(|c| c.stats_reset),
    })
}

fn start_worker(info: &ConnInfo, snapshot_id: &str, settings: &str) -> Result<postgres::Client> {
    let mut c = info.connect()?;
    c.batch_execute(&format!(
        "BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY; SET TRANSACTION SNAPSHOT {}; {settings}",
        literal(snapshot_id)
    ))
    .map_err(|e| db_error("importing the exported snapshot in a worker", e))?;
    Ok(c)
}

/// Reads table parts: reused from the parent when their tuples prove them
/// unchanged, else through `COPY`.
struct JobReader<'a> {
    saver: &'a Saver,
    parent: unchanged::ParentTables<'a>,
    /// Whether tuple summaries can be taken (and stored for the next run).
    summarise: bool,
    progress: &'a dyn Progress,
}

impl JobReader<'_> {
    /// The part's stream and whether it was reused.
    fn read(
        &self,
        client: &mut postgres::Client,
        t: &TableInfo,
        job: &Job,
    ) -> Result<(TableStream, bool)> {
        let tuples = self
            .summarise
            .then(|| unchanged::tuple_summary(client, t, job.first_page, job.end_page))
            .transpose()?;
        // Reused only while every blob of the earlier stream is still stored.
        let reused = tuples
            .as_deref()
            .and_then(|s| unchanged::reusable(&self.parent, t, job.first_page, job.end_page, s))
            .filter(|old| {
                let index = self.saver.index();
                old.data.blobs.iter().all(|b| index.contains(b))
            });
        if let Some(old) = reused {
            self.progress.inc(old.data.size);
            return Ok((old.clone(), true));
        }
        crate::progress::check_cancelled(self.progress)?;
        let what = format!("table {}.{}", t.schema, t.name);
        let reader = client
            .copy_out(&copy_statement(t, job.first_page, job.end_page))
            .map_err(|e| db_error(format!("reading {what}"), e))?;
        let mut tap = RowTap::new(reader);
        let stored = self
            .saver
            .save_content(&mut tap, BlobKind::Data, Content::Rows, |n| {
                self.progress.inc(n)
            })
            .map_err(stream_err(&what))?;
        if tap.digest.has_partial_row() {
            return Err(Error::new(
                ErrorKind::Source,
                format!("the COPY stream of {what} ended in the middle of a row (did the server or the connection fail?); no snapshot was written, retry the capture"),
            ));
        }
        let ts = TableStream {
            first_page: job.first_page,
            end_page: job.end_page,
            rows: tap.digest.rows(),
            digest: tap.digest.hex(),
            tuples,
            data: stored.into(),
        };
        Ok((ts, false))
    }
}

struct LoReader<'a> {
    client: &'a mut postgres::Client,
    oid: u32,
    offset: i64,
    done: bool,
}

const LO_CHUNK: i32 = 1024 * 1024;

impl Read for LoReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.done || buf.is_empty() {
            return Ok(0);
        }
        let want = (buf.len() as i32).min(LO_CHUNK);
        let row = self
            .client
            .query_one(
                "SELECT lo_get($1, $2, $3)",
                &[&self.oid, &self.offset, &want],
            )
            .map_err(|e| {
                std::io::Error::other(format!("large object {}: {}", self.oid, error_text(&e)))
            })?;
        let data: Vec<u8> = row.get(0);
        if data.len() < want as usize {
            self.done = true;
        }
        buf[..data.len()].copy_from_slice(&data);
        self.offset += data.len() as i64;
        Ok(data.len())
    }
}

fn run_pg_dump(
    saver: &Saver,
    pg_dump: &std::path::Path,
    info: &ConnInfo,
    snapshot_id: &str,
    options: &PostgresOptions,
) -> Result<StreamRef> {
    let mut cmd = Command::new(pg_dump);
    cmd.args(["--format=custom", "--schema-only", "--no-sync"])
        .arg(format!("--snapshot={snapshot_id}"))
        .arg(format!(
            "--lock-wait-timeout={}",
            options.lock_timeout.as_millis().max(1)
        ))
        .arg(format!("--dbname={}", info.libpq_string()))
        .envs(info.tool_env())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().map_err(|e| {
        Error::io(format!("cannot run {}", pg_dump.display()), e).with_kind(ErrorKind::Source)
    })?;
    let stdout = child.stdout.take().expect("piped");
    let mut stderr = child.stderr.take().expect("piped");
    let err_reader = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = stderr.read_to_end(&mut v);
        v
    });
    let stored = saver.save_reader(stdout, BlobKind::Data, |_| {});
    let status = child
        .wait()
        .map_err(|e| Error::io("waiting for pg_dump", e))?;
    let err = err_reader.join().unwrap_or_default();
    // A failed or killed pg_dump must never yield a snapshot.
    if !status.success() {
        return Err(Error::new(
            ErrorKind::Source,
            format!(
                "pg_dump failed ({status}): {}; no snapshot was written",
                tools::tail(&err)
            ),
        ));
    }
    let stored = stored.map_err(stream_err("pg_dump output"))?;
    if stored.size < 5 {
        return Err(Error::new(
            ErrorKind::Source,
            "pg_dump produced no output; no snapshot was written",
        ));
    }
    Ok(stored.into())
}

fn run_pg_dumpall(saver: &Saver, info: &ConnInfo, version_num: u32) -> Result<StreamRef> {
    let tool = tools::find_tool("pg_dumpall", tools::major(version_num))?;
    let mut cmd = Command::new(&tool);
    cmd.args(["--globals-only", "--no-sync"])
        .arg(format!("--dbname={}", info.libpq_string()))
        .envs(info.tool_env());
    let out = tools::run(cmd, "pg_dumpall --globals-only", ErrorKind::Source)?;
    Ok(saver.save_bytes(&out, BlobKind::Data)?.into())
}

/// Facts about a server, for restores.
pub fn probe_server(info: &ConnInfo) -> Result<ServerInfo> {
    let mut c = info.connect()?;
    catalog::server_info(&mut c)
}
