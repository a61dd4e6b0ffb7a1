//! Preflight and staging: everything a rollback does while the
//! application still runs. Preflight decides every name (staging places,
//! kept names) and checks that the switch can work; staging restores each
//! component beside its live copy, verified against the manifest.

use super::journal::{Journal, StateDir};
use super::switch::{inode, DatabaseSwitch, FilesSwitch, Switch};
use super::Session;
use crate::error::{Error, ErrorKind, Result};
use crate::progress::Progress;
use crate::restore::{derived_name, maintenance, stage_component, stage_database, StageOptions};
use crate::snapshot::{load_tree, FilesComponent, PostgresComponent, Snapshot};
use crate::source::postgres::conninfo::ConnInfo;
use crate::system::System;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// Room kept free beyond the staged copies, in bytes.
const SPARE_BYTES: u64 = 64 * 1024 * 1024;

/// The snapshot's component for each component the system names, in the
/// system's order (databases first), or a usage error naming the missing.
pub(crate) fn match_components<'a>(
    system: &System,
    snap: &'a Snapshot,
) -> Result<(Vec<&'a PostgresComponent>, Vec<&'a FilesComponent>)> {
    let mut missing = Vec::new();
    let dbs: Vec<_> = system
        .postgres
        .iter()
        .filter_map(|p| {
            let found = snap.databases().find(|d| d.name == p.name);
            if found.is_none() {
                missing.push(p.name.clone());
            }
            found
        })
        .collect();
    let files: Vec<_> = system
        .files
        .iter()
        .filter_map(|f| {
            let found = snap.file_components().find(|c| c.name() == f.name);
            if found.is_none() {
                missing.push(f.name.clone());
            }
            found
        })
        .collect();
    if !missing.is_empty() {
        return Err(Error::usage(format!(
            "the snapshot lacks component(s) {} that the system description names: roll back to a \
             snapshot taken with `backup create --config` of this file",
            missing.join(", ")
        )));
    }
    if system.component_count() == 0 {
        return Err(Error::usage(
            "the system description names no component: add [[postgres]] or [[files]] entries",
        ));
    }
    Ok((dbs, files))
}

/// The switch of a file component: staging directory next to the live
/// path, kept name beside it.
fn plan_files(fc: &FilesComponent, live: &Path, word: &str, stamp: &str) -> Result<FilesSwitch> {
    let parent = live.parent().unwrap_or(Path::new("/"));
    let pmeta = std::fs::metadata(parent).map_err(|e| {
        Error::io(format!("cannot reach {}", parent.display()), e).with_kind(ErrorKind::Target)
    })?;
    let live_meta = std::fs::symlink_metadata(live).ok();
    if let Some(m) = &live_meta {
        if m.is_dir() && m.dev() != pmeta.dev() {
            return Err(Error::new(
                ErrorKind::Target,
                format!(
                    "{} is a mount point: it cannot be switched by a rename; roll back a directory inside it",
                    live.display()
                ),
            ));
        }
    }
    check_free_space(parent, fc.stats.bytes)?;
    let name = live
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let staging_dir = parent.join(format!(".{name}.{word}-{stamp}"));
    Ok(FilesSwitch {
        name: fc.name().to_string(),
        live: live.to_path_buf(),
        staged: staging_dir.join("r"),
        staging_dir: Some(staging_dir),
        staged_inode: None,
        live_existed: live_meta.is_some(),
        kept: free_name(&live.with_file_name(format!("{name}.before-{word}-{stamp}"))),
        secret: fc.secret,
    })
}

/// `path`, or `path.1`, `path.2`, ... whichever does not exist.
pub(crate) fn free_name(path: &Path) -> PathBuf {
    let mut n = 0;
    let mut p = path.to_path_buf();
    while std::fs::symlink_metadata(&p).is_ok() {
        n += 1;
        p = PathBuf::from(format!("{}.{n}", path.display()));
    }
    p
}

fn check_free_space(dir: &Path, need: u64) -> Result<()> {
    let st = rustix::fs::statvfs(dir).map_err(|e| {
        Error::io(
            format!("cannot read the free space of {}", dir.display()),
            e.into(),
        )
        .with_kind(ErrorKind::Target)
    })?;
    let free = st.f_bavail.saturating_mul(st.f_frsize);
    if free < need.saturating_add(SPARE_BYTES) {
        return Err(Error::new(
            ErrorKind::Target,
            format!(
                "{} has {} MiB free, the staged copy needs {} MiB (plus 64 MiB spare): free some space first",
                dir.display(),
                free >> 20,
                (need >> 20) + 1
            ),
        ));
    }
    Ok(())
}

/// The switch of a database: staged and kept names beside the live one,
/// after checking that the server is reachable and that the kept name is
/// free.
fn plan_database(
    comp: &PostgresComponent,
    conn: &ConnInfo,
    word: &str,
    stamp: &str,
) -> Result<DatabaseSwitch> {
    let name = comp.name.as_str();
    let live = conn.dbname().to_string();
    let mut c = maintenance(conn)?;
    check_server_space(&mut c, &live, comp.bytes())?;
    let staged = derived_name(&live, &format!("__{word}_{stamp}"));
    let kept = derived_name(&live, &format!("__before_{word}_{stamp}"));
    for n in [&staged, &kept] {
        if crate::restore::database_exists(&mut c, n)? {
            return Err(Error::new(
                ErrorKind::Target,
                format!("database {n} already exists: drop it, or wait a second and run again"),
            ));
        }
    }
    Ok(DatabaseSwitch {
        name: name.to_string(),
        live,
        staged,
        owned: true,
        kept,
    })
}

/// When the server's data directory is on this machine and readable (a
/// superuser or `pg_read_all_settings` session on a local server), checks
/// it has room for a copy as large as the live database or the captured
/// data, whichever is larger. Otherwise the check cannot be made and a
/// full disk fails the staging step instead (which then removes what it
/// staged).
fn check_server_space(c: &mut postgres::Client, live: &str, captured: u64) -> Result<()> {
    let row = c.query_one(
        "SELECT current_setting('data_directory', true), \
                (SELECT pg_database_size(oid) FROM pg_database WHERE datname = $1)",
        &[&live],
    );
    let Ok(row) = row else { return Ok(()) };
    let dir: Option<String> = row.get(0);
    let size: Option<i64> = row.get(1);
    match dir.map(PathBuf::from) {
        Some(d) if d.is_dir() => {
            check_free_space(&d, captured.max(size.unwrap_or(0).max(0) as u64))
        }
        _ => Ok(()),
    }
}

/// Checks the rollback can work and writes every name it will use into
/// the journal's components.
pub(crate) fn preflight(session: &Session, snap: &Snapshot, j: &mut Journal) -> Result<()> {
    let (dbs, files) = match_components(session.system, snap)?;
    check_index(session, &dbs, &files)?;
    let stamp = kept_stamp(&j.started);
    for d in &dbs {
        let conn = session.connection(&d.name)?;
        j.components.push(Switch::Postgres(plan_database(
            d, &conn, "rollback", &stamp,
        )?));
    }
    for (fc, entry) in files.iter().zip(&session.system.files) {
        j.components.push(Switch::Files(plan_files(
            fc,
            &entry.path,
            "rollback",
            &stamp,
        )?));
    }
    Ok(())
}

/// The time part of kept names.
pub(crate) fn kept_stamp(t: &chrono::DateTime<chrono::Utc>) -> String {
    t.format("%Y%m%d%H%M%S").to_string()
}

/// Every blob the components need is in the index (the bytes themselves
/// are checked as staging reads them).
fn check_index(
    session: &Session,
    dbs: &[&PostgresComponent],
    files: &[&FilesComponent],
) -> Result<()> {
    let index = session.repo.index();
    let listing_blobs = files.iter().flat_map(|f| f.tree.iter());
    let db_blobs: Vec<_> = dbs
        .iter()
        .flat_map(|d| crate::restore::component_blobs(d))
        .collect();
    for b in listing_blobs.chain(db_blobs.iter()) {
        if index.get(b).is_none() {
            return Err(Error::corrupt(format!(
                "blob {b} of the snapshot is not in the index: the repository is damaged \
                 (run `backup verify`); nothing was changed"
            )));
        }
    }
    Ok(())
}

/// One staging step as it ended: component, start, seconds, result.
type Staged = (String, chrono::DateTime<chrono::Utc>, f64, Result<String>);

/// Stages every component: the databases load on their servers while the
/// trees are written here, the two at once. Each step is recorded in the
/// journal; the first failure is returned (after both sides stopped).
pub(crate) fn stage_all(
    session: &Session,
    snap: &Snapshot,
    state: &StateDir,
    j: &mut Journal,
) -> Result<()> {
    let (dbs, files) = match_components(session.system, snap)?;
    let mut comps = std::mem::take(&mut j.components);
    let (db_part, file_part): (Vec<&mut Switch>, Vec<&mut Switch>) = comps
        .iter_mut()
        .partition(|c| matches!(c, Switch::Postgres(_)));
    let lane = crate::progress::beside(session.progress);
    let (db_steps, file_steps) = std::thread::scope(|scope| {
        let databases = scope.spawn(|| stage_each(session, &*lane, db_part, &dbs, &files));
        let trees = stage_each(session, session.progress, file_part, &dbs, &files);
        (databases.join().expect("the staging thread"), trees)
    });
    j.components = comps;
    let mut first_error = None;
    for (name, started, secs, result) in db_steps.into_iter().chain(file_steps) {
        super::run::record_secs(j, &format!("stage {name}"), started, secs, &result);
        if let (Err(e), None) = (result, &first_error) {
            first_error = Some(e);
        }
    }
    state.save(j)?;
    first_error.map_or(Ok(()), Err)
}

/// Stages `parts` in order, reporting to `progress`, stopping at the
/// first failure.
fn stage_each(
    session: &Session,
    progress: &dyn Progress,
    parts: Vec<&mut Switch>,
    dbs: &[&PostgresComponent],
    files: &[&FilesComponent],
) -> Vec<Staged> {
    let mut out = Vec::new();
    for c in parts {
        let started = chrono::Utc::now();
        let t0 = std::time::Instant::now();
        let name = c.name().to_string();
        let result = match c {
            Switch::Postgres(d) => {
                let comp = dbs.iter().find(|x| x.name == d.name).expect("matched");
                stage_db(session, progress, comp, d)
            }
            Switch::Files(f) => {
                let comp = files.iter().find(|x| x.name() == f.name).expect("matched");
                stage_tree(session, progress, comp, f)
            }
        };
        let failed = result.is_err();
        out.push((name, started, t0.elapsed().as_secs_f64(), result));
        if failed {
            break;
        }
    }
    out
}

fn stage_db(
    session: &Session,
    progress: &dyn Progress,
    comp: &PostgresComponent,
    d: &DatabaseSwitch,
) -> Result<String> {
    let conn = session.connection(&d.name)?;
    let options = StageOptions {
        jobs: session.jobs,
        no_owner: false,
        globals: false,
    };
    stage_database(session.repo, comp, &conn, &d.staged, &options, progress)?;
    Ok(format!(
        "database {} staged as {}: {} tables, {} rows, every stream checked",
        d.live,
        d.staged,
        comp.tables.len(),
        comp.rows()
    ))
}

fn stage_tree(
    session: &Session,
    progress: &dyn Progress,
    comp: &FilesComponent,
    f: &mut FilesSwitch,
) -> Result<String> {
    let dir = f
        .staging_dir
        .clone()
        .expect("a rollback stages into its own directory");
    std::fs::create_dir(&dir).map_err(|e| {
        Error::io(
            format!("cannot create the staging directory {}", dir.display()),
            e,
        )
        .with_kind(ErrorKind::Target)
    })?;
    let nodes = load_tree(session.repo, &comp.tree)?;
    session.keep_listing(&comp.tree, &nodes);
    let staged = stage_component(
        session.repo,
        comp,
        nodes,
        &dir,
        Some(&f.live),
        session.jobs,
        progress,
    )?;
    f.staged_inode = inode(&f.staged);
    Ok(format!(
        "{} staged at {}: {} files ({} unchanged ones copied from the live copy), {} bytes, \
         every file checked against its SHA-256",
        f.live.display(),
        f.staged.display(),
        staged.files,
        staged.copied,
        staged.bytes
    ))
}
