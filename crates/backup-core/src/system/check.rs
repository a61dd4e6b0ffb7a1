//! Checking a system description against the machine it describes: do the
//! file trees exist, do the databases answer, can the hook programs run,
//! is the password file there and private.
//!
//! Parsing only says the file is well-formed; these checks say it will
//! work, before the first backup (or rollback) finds out. Every problem is
//! collected, not just the first, so that one run of `backup config check`
//! gives the whole list to fix. The repository is not contacted.

use super::file::{parse_text, read};
use super::{Problem, System};
use crate::source::postgres::conninfo::ConnInfo;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// How long a database gets to answer a check.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);

/// The outcome of [`check_file`].
#[derive(Debug, Clone, Default)]
pub struct CheckReport {
    /// How many components the file declares (0 when it does not parse).
    pub components: usize,
    /// Every problem found, in file order; empty when all is well.
    pub problems: Vec<Problem>,
}

impl CheckReport {
    /// Whether no problem was found.
    pub fn ok(&self) -> bool {
        self.problems.is_empty()
    }
}

/// Reads, parses and checks the file at `path`: its syntax and values, then
/// (when it parses) the machine. Never fails: what goes wrong is a problem.
pub fn check_file(path: &Path) -> CheckReport {
    let text = match read(path) {
        Ok(t) => t,
        Err(e) => {
            return CheckReport {
                components: 0,
                problems: vec![Problem::new("", format!("{e}; check the path"))],
            }
        }
    };
    let (system, mut problems) = match parse_text(&text) {
        Ok(v) => v,
        Err(p) => {
            return CheckReport {
                components: 0,
                problems: vec![p],
            }
        }
    };
    problems.extend(check_system(&system));
    CheckReport {
        components: system.component_count(),
        problems,
    }
}

/// Checks a parsed system against the machine: file paths exist, databases
/// accept a connection, hook programs are executable, the password file
/// (and the S3 secret key file) exist and are not world-readable.
pub fn check_system(system: &System) -> Vec<Problem> {
    let mut problems = Vec::new();
    if let Some(p) = &system.password_file {
        problems.extend(secret_file("password_file", p));
    }
    if let Some(p) = &system.s3.secret_access_key_file {
        problems.extend(secret_file("s3.secret_access_key_file", p));
    }
    for (i, p) in system.postgres.iter().enumerate() {
        if !p.connection.trim().is_empty() {
            problems.extend(database(
                &format!("postgres[{i}].connection"),
                &p.connection,
            ));
        }
    }
    for (i, f) in system.files.iter().enumerate() {
        if f.path.is_absolute() {
            problems.extend(files_path(&format!("files[{i}].path"), &f.name, &f.path));
        }
    }
    for (key, command) in system.hooks.commands() {
        problems.extend(hook(key, command));
    }
    problems
}

fn secret_file(key: &str, path: &Path) -> Option<Problem> {
    match std::fs::metadata(path) {
        Err(e) => Some(Problem::new(
            key,
            format!("cannot read {}: {e}; check the path", path.display()),
        )),
        Ok(m) if !m.is_file() => Some(Problem::new(
            key,
            format!("{} is not a regular file", path.display()),
        )),
        Ok(m) if m.permissions().mode() & 0o004 != 0 => Some(Problem::new(
            key,
            format!(
                "{} is readable by every user: restrict it (chmod 600 {})",
                path.display(),
                path.display()
            ),
        )),
        Ok(_) => None,
    }
}

fn files_path(key: &str, name: &str, path: &Path) -> Option<Problem> {
    let e = std::fs::symlink_metadata(path).err()?;
    Some(Problem::new(
        key,
        format!(
            "component {name:?}: cannot read {}: {e}; create it or fix the path",
            path.display()
        ),
    ))
}

fn database(key: &str, connection: &str) -> Option<Problem> {
    let result = ConnInfo::parse(connection)
        .and_then(|info| info.with_connect_timeout(CONNECT_TIMEOUT).connect());
    let e = result.err()?;
    Some(Problem::new(key, e.to_string()))
}

/// The program a shell command runs: its first word.
fn program(command: &str) -> Option<&str> {
    command.split_whitespace().next()
}

/// Where `program` is found: itself when it has a `/`, else the first
/// executable file of that name on `PATH`.
fn find_program(program: &str) -> Result<PathBuf, String> {
    if program.contains('/') {
        let p = PathBuf::from(program);
        return if executable(&p) {
            Ok(p)
        } else if p.exists() {
            Err(format!(
                "{program} is not an executable file: check its mode (chmod +x)"
            ))
        } else {
            Err(format!("{program} does not exist: check the path"))
        };
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|dir| dir.join(program))
        .find(|p| executable(p))
        .ok_or_else(|| {
            format!("program {program:?} is not found on PATH: install it, or give its full path")
        })
}

fn executable(p: &Path) -> bool {
    std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

fn hook(key: &str, command: &str) -> Option<Problem> {
    let program = program(command)?;
    let e = find_program(program).err()?;
    Some(Problem::new(key, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hook_programs_are_looked_up_on_path_or_by_their_path() {
        assert!(hook("hooks.stop", "sh -c 'exit 0'").is_none());
        assert!(hook("hooks.stop", "/bin/sh -c true").is_none());
        let p = hook("hooks.start", "no-such-program --flag").expect("a problem");
        assert_eq!(p.key, "hooks.start");
        assert!(
            p.message.contains("\"no-such-program\" is not found"),
            "{p:?}"
        );
        let p = hook("hooks.start", "/nonexistent/x").expect("a problem");
        assert!(p.message.contains("does not exist"), "{p:?}");
    }

    #[test]
    fn a_world_readable_password_file_is_a_problem() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("pw");
        std::fs::write(&f, "secret").unwrap();
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o644)).unwrap();
        let p = secret_file("password_file", &f).expect("a problem");
        assert!(p.message.contains("readable by every user"), "{p:?}");
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert!(secret_file("password_file", &f).is_none());
        assert!(secret_file("password_file", &dir.path().join("gone")).is_some());
    }
}
