//! Finding and running the PostgreSQL client tools (`pg_dump`,
//! `pg_restore`, `pg_dumpall`) in a version that fits the server.

use crate::error::{Error, ErrorKind, Result};
use std::path::{Path, PathBuf};
use std::process::Command;

/// Major version of a `server_version_num` (e.g. 150004 -> 15).
pub fn major(version_num: u32) -> u32 {
    version_num / 10000
}

fn tool_major(path: &Path) -> Option<u32> {
    let out = Command::new(path).arg("--version").output().ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    // "pg_dump (PostgreSQL) 15.18 (Debian 15.18-0+deb12u1)"
    let v = text
        .split(") ")
        .nth(1)?
        .split(|c: char| !c.is_ascii_digit())
        .next()?;
    v.parse().ok()
}

fn candidates(name: &str, server_major: u32) -> Vec<PathBuf> {
    let mut out = Vec::new();
    if let Some(dir) = std::env::var_os("BACKUP_PG_BIN").or_else(|| std::env::var_os("PG_BIN")) {
        out.push(PathBuf::from(dir).join(name));
    }
    out.push(PathBuf::from(format!(
        "/usr/lib/postgresql/{server_major}/bin/{name}"
    )));
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            e.file_name()
                .to_str()?
                .parse::<u32>()
                .ok()
                .map(|v| (v, e.path().join("bin").join(name)))
        })
        .collect();
    versions.sort_by_key(|v| std::cmp::Reverse(v.0));
    out.extend(versions.into_iter().map(|(_, p)| p));
    if let Some(path) = std::env::var_os("PATH") {
        out.extend(std::env::split_paths(&path).map(|d| d.join(name)));
    }
    out
}

/// Finds `name` in a version at least `server_major`.
pub fn find_tool(name: &str, server_major: u32) -> Result<PathBuf> {
    if let Some(dir) = std::env::var_os("BACKUP_PG_BIN") {
        // An explicit choice is honoured or refused, never silently bypassed.
        let p = PathBuf::from(dir).join(name);
        if p.is_file() {
            return match tool_major(&p) {
                Some(v) if v >= server_major => Ok(p),
                Some(v) => Err(Error::new(
                    ErrorKind::Source,
                    format!(
                        "{} (from BACKUP_PG_BIN) is version {v}, older than the server ({server_major}): \
                         point BACKUP_PG_BIN at PostgreSQL {server_major} client tools",
                        p.display()
                    ),
                )),
                None => Err(Error::new(ErrorKind::Source, format!("{} (from BACKUP_PG_BIN) does not report a version", p.display()))),
            };
        }
    }
    let mut best_old: Option<(u32, PathBuf)> = None;
    for c in candidates(name, server_major) {
        if !c.is_file() {
            continue;
        }
        match tool_major(&c) {
            Some(v) if v >= server_major => return Ok(c),
            Some(v) if best_old.as_ref().is_none_or(|(b, _)| v > *b) => best_old = Some((v, c)),
            _ => {}
        }
    }
    Err(match best_old {
        Some((v, p)) => Error::new(
            ErrorKind::Source,
            format!(
                "{} is version {v}, older than the server ({server_major}): install the \
                 PostgreSQL {server_major} client tools (Debian: postgresql-client-{server_major}) \
                 or point BACKUP_PG_BIN at their bin directory",
                p.display()
            ),
        ),
        None => Error::new(
            ErrorKind::Source,
            format!(
                "{name} was not found: install the PostgreSQL {server_major} client tools \
                 (Debian: postgresql-client-{server_major}) or set BACKUP_PG_BIN"
            ),
        ),
    })
}

/// Runs a client tool to completion; `what` names it in errors, `kind` is
/// the error kind of a failure (source for captures, target for restores).
/// Returns its standard output.
pub fn run(mut cmd: Command, what: &str, kind: ErrorKind) -> Result<Vec<u8>> {
    let out = cmd
        .stdin(std::process::Stdio::null())
        .output()
        .map_err(|e| Error::io(format!("cannot run {what}"), e).with_kind(kind))?;
    if !out.status.success() {
        return Err(Error::new(
            kind,
            format!("{what} failed ({}): {}", out.status, tail(&out.stderr)),
        ));
    }
    Ok(out.stdout)
}

/// The last lines of a tool's stderr, for error messages.
pub fn tail(stderr: &[u8]) -> String {
    crate::process::tail(stderr, 6)
}
