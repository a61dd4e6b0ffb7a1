//! Restore tests: restore a captured database into a scratch database,
//! compare it with the manifest, drop it.

use super::admin::drop_database;
use super::database::{restore_database, DatabaseRestoreOptions};
use crate::error::{Error, Result};
use crate::progress::Progress;
use crate::repository::Repository;
use crate::snapshot::PostgresComponent;
use crate::source::postgres::catalog::{column_list, qualified, session_settings};
use crate::source::postgres::conninfo::{db_error, ConnInfo};
use crate::source::postgres::rows::{add_digests, RowTap};
use sha2::{Digest, Sha256};
use std::time::Instant;

/// One difference found by a restore test.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Mismatch {
    /// The object (table, sequence, large object).
    pub object: String,
    /// What differs.
    pub problem: String,
}

/// The outcome of a restore test.
#[derive(Debug, Clone, serde::Serialize)]
pub struct RestoreTestReport {
    /// The captured database.
    pub database: String,
    /// The scratch database used (dropped afterwards).
    pub scratch: String,
    /// Tables compared.
    pub tables: usize,
    /// Rows compared.
    pub rows: u64,
    /// Differences.
    pub mismatches: Vec<Mismatch>,
    /// Wall time in seconds.
    pub duration_secs: f64,
}

/// Restores a database into a scratch database on `server`, compares
/// every table's row count and content digest, sequences and large objects
/// with the manifest, then drops the scratch database.
pub fn restore_test(
    repo: &Repository,
    comp: &PostgresComponent,
    server: &str,
    jobs: usize,
    progress: &dyn Progress,
) -> Result<RestoreTestReport> {
    let start = Instant::now();
    let base = ConnInfo::parse(server)?;
    let mut rnd = [0u8; 4];
    rand::RngCore::fill_bytes(&mut rand::thread_rng(), &mut rnd);
    let scratch = format!("backup_restore_test_{}", hex::encode(rnd));
    let info = base.with_dbname(&scratch);
    let options = DatabaseRestoreOptions {
        target: info.libpq_string_with_password(),
        replace: false,
        jobs,
        no_owner: true,
        globals: false,
    };
    restore_database(repo, comp, &options, progress)?;
    let compared = compare(comp, &info, repo);
    let mut maint = base.with_dbname("postgres").connect()?;
    drop_database(&mut maint, &scratch)?;
    let mismatches = compared?;
    Ok(RestoreTestReport {
        database: comp.database.clone(),
        scratch,
        tables: comp.tables.len(),
        rows: comp.rows(),
        mismatches,
        duration_secs: start.elapsed().as_secs_f64(),
    })
}

fn compare(comp: &PostgresComponent, info: &ConnInfo, repo: &Repository) -> Result<Vec<Mismatch>> {
    let mut c = info.connect()?;
    c.batch_execute(&session_settings(&comp.encoding, &comp.lc_monetary))
        .map_err(|e| db_error("setting up the session", e))?;
    let mut out = Vec::new();
    for t in &comp.tables {
        let reader = c
            .copy_out(&format!(
                "COPY {}{} TO STDOUT",
                qualified(&t.schema, &t.name),
                column_list(&t.columns)
            ))
            .map_err(|e| db_error(format!("reading back {}.{}", t.schema, t.name), e))?;
        let mut tap = RowTap::new(reader);
        std::io::copy(&mut tap, &mut std::io::sink())
            .map_err(|e| Error::io("reading back a table", e))?;
        let want = t
            .streams
            .iter()
            .fold("0".repeat(32), |acc, s| add_digests(&acc, &s.digest));
        if tap.digest.rows() != t.rows {
            out.push(Mismatch {
                object: format!("table {}.{}", t.schema, t.name),
                problem: format!("{} rows, the snapshot has {}", tap.digest.rows(), t.rows),
            });
        } else if tap.digest.hex() != want {
            out.push(Mismatch {
                object: format!("table {}.{}", t.schema, t.name),
                problem: "content differs from the snapshot".into(),
            });
        }
    }
    for s in &comp.sequences {
        let row = c
            .query_one(
                &format!(
                    "SELECT last_value, is_called FROM {}",
                    qualified(&s.schema, &s.name)
                ),
                &[],
            )
            .map_err(|e| db_error(format!("reading sequence {}.{}", s.schema, s.name), e))?;
        let (v, called): (i64, bool) = (row.get(0), row.get(1));
        if v != s.last_value || called != s.is_called {
            out.push(Mismatch {
                object: format!("sequence {}.{}", s.schema, s.name),
                problem: format!(
                    "{v}/{called}, the snapshot has {}/{}",
                    s.last_value, s.is_called
                ),
            });
        }
    }
    for lo in &comp.large_objects {
        let row = c
            .query_one("SELECT lo_get($1)", &[&lo.oid])
            .map_err(|e| db_error(format!("reading large object {}", lo.oid), e))?;
        let data: Vec<u8> = row.get(0);
        if hex::encode(Sha256::digest(&data)) != lo.data.sha256 {
            out.push(Mismatch {
                object: format!("large object {}", lo.oid),
                problem: "content differs from the snapshot".into(),
            });
        }
    }
    let _ = repo;
    Ok(out)
}
