//! Shared helpers: building and running the binary, fixture trees, digests.

#![allow(dead_code)]

use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

/// The path of the `backup` binary, built once per test run.
pub fn bin() -> PathBuf {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let status = Command::new(cargo)
            .args(["build", "-q", "-p", "backup-cli", "--bin", "backup"])
            .current_dir(&root)
            .status()
            .expect("run cargo build");
        assert!(status.success(), "building the backup binary failed");
        let target = std::env::var_os("CARGO_TARGET_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| root.join("target"));
        target.join("debug").join("backup")
    })
    .clone()
}

/// A finished command.
#[derive(Debug)]
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    pub fn from(o: Output) -> Run {
        Run {
            code: o.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
        }
    }
    /// Asserts success and returns self.
    pub fn ok(self) -> Run {
        assert_eq!(
            self.code, 0,
            "command failed:\nstdout: {}\nstderr: {}",
            self.stdout, self.stderr
        );
        self
    }
    /// Parses stdout as JSON.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("bad JSON ({e}): {}\nstderr: {}", self.stdout, self.stderr))
    }
    /// Asserts an exit code and that stderr mentions `needle`.
    pub fn fails(self, code: i32, needle: &str) -> Run {
        assert_eq!(
            self.code, code,
            "wrong exit code:\nstdout: {}\nstderr: {}",
            self.stdout, self.stderr
        );
        assert!(
            self.stderr.to_lowercase().contains(&needle.to_lowercase()),
            "stderr lacks {needle:?}:\n{}",
            self.stderr
        );
        self
    }
}

/// An in-place restore of the latest snapshot's component `tree`, with
/// the JSON report.
pub const RESTORE_TREE_IN_PLACE: [&str; 6] = [
    "restore",
    "latest",
    "--component",
    "tree",
    "--overwrite",
    "--json",
];

/// A test workspace: a temp dir, a repository URL and environment.
pub struct Env {
    pub dir: tempfile::TempDir,
    pub repo: String,
    pub password: Option<String>,
    pub extra: Vec<(String, String)>,
}

impl Env {
    /// A workspace with a local repository path (not yet initialised).
    pub fn local() -> Env {
        let dir = tempfile::tempdir().expect("tempdir");
        let repo = dir.path().join("repo").display().to_string();
        Env {
            dir,
            repo,
            password: Some("correct horse battery".into()),
            extra: Vec::new(),
        }
    }

    pub fn path(&self, p: &str) -> PathBuf {
        self.dir.path().join(p)
    }

    /// A `backup` command with this workspace's repository and password.
    pub fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(bin());
        for (k, _) in std::env::vars() {
            if k.starts_with("BACKUP_") || k.starts_with("AWS_") {
                c.env_remove(k);
            }
        }
        c.env("BACKUP_REPOSITORY", &self.repo);
        c.env("XDG_CACHE_HOME", self.dir.path().join("cache"));
        if let Some(p) = &self.password {
            c.env("BACKUP_PASSWORD", p);
        }
        for (k, v) in &self.extra {
            c.env(k, v);
        }
        c.args(args);
        c
    }

    /// Runs `backup ARGS`.
    pub fn run(&self, args: &[&str]) -> Run {
        Run::from(self.cmd(args).output().expect("spawn backup"))
    }

    /// Runs `backup ARGS` as `nobody` when we are root, so that permissions
    /// bite, and as ourselves otherwise. Opens the workspace directory to
    /// everyone (0777) so that they can write in it; their cache is
    /// `cache-nobody`.
    pub fn run_unprivileged(&self, args: &[&str]) -> Run {
        if !is_root() {
            return self.run(args);
        }
        std::fs::set_permissions(self.dir.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
        let inner = self.cmd(args);
        let mut c = Command::new("runuser");
        c.args(["-u", "nobody", "--"])
            .arg(inner.get_program())
            .args(inner.get_args());
        for (k, v) in inner.get_envs() {
            match v {
                Some(v) => c.env(k, v),
                None => c.env_remove(k),
            };
        }
        c.env("XDG_CACHE_HOME", self.path("cache-nobody"))
            .env("HOME", self.dir.path());
        Run::from(c.output().expect("spawn runuser"))
    }

    /// `backup init` that must succeed.
    pub fn init(&self) {
        self.run(&["init"]).ok();
    }

    /// `backup create --json --files P...` that must succeed; returns the JSON.
    pub fn create(&self, paths: &[&Path], extra: &[&str]) -> serde_json::Value {
        let mut args: Vec<String> = vec!["create".into(), "--json".into()];
        for p in paths {
            args.push("--files".into());
            args.push(p.display().to_string());
        }
        args.extend(extra.iter().map(|s| s.to_string()));
        let refs: Vec<&str> = args.iter().map(|s| s.as_str()).collect();
        self.run(&refs).ok().json()
    }

    /// How many snapshots `backup snapshots --json` lists (it must succeed).
    pub fn listed_snapshots(&self) -> usize {
        self.run(&["snapshots", "--json"])
            .ok()
            .json()
            .as_array()
            .expect("a JSON array")
            .len()
    }
}

pub use testkit::random_bytes;

/// Writes a small application tree with every kind of entry.
pub fn fixture(root: &Path) {
    let w = |rel: &str, data: &[u8]| {
        let p = root.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, data).unwrap();
    };
    w(
        "api/dist/main.js",
        b"console.log('dms api v1');\n".repeat(2000).as_slice(),
    );
    w("api/dist/vendor.js", &random_bytes(1, 700_000));
    w(
        "web/index.html",
        b"<html><body>dealer management</body></html>\n",
    );
    w("web/assets/logo.png", &random_bytes(2, 150_000));
    w(
        "web/assets/sp\u{e4}ce name \u{1f697}.txt",
        "non-ASCII name\n".as_bytes(),
    );
    w(
        "config/.env",
        b"DATABASE_URL=postgres://dms@localhost/dms\nSECRET=s3cr3t-marker-ZQX\n",
    );
    w("bin/start.sh", b"#!/bin/sh\nexec node api/dist/main.js\n");
    std::fs::set_permissions(
        root.join("bin/start.sh"),
        std::fs::Permissions::from_mode(0o750),
    )
    .unwrap();
    std::fs::set_permissions(
        root.join("config/.env"),
        std::fs::Permissions::from_mode(0o600),
    )
    .unwrap();
    std::fs::create_dir_all(root.join("var/empty")).unwrap();
    std::fs::write(root.join("zero.bin"), b"").unwrap();
    std::os::unix::fs::symlink("api/dist/main.js", root.join("current.js")).unwrap();
    std::os::unix::fs::symlink("/nonexistent/target", root.join("dangling")).unwrap();
    let t = filetime::FileTime::from_unix_time(1_600_000_000, 123_456_789);
    filetime::set_file_mtime(root.join("web/index.html"), t).unwrap();
}

/// One entry of a tree digest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub kind: char,
    pub mode: u32,
    pub uid: u32,
    pub size: u64,
    pub sha256: String,
    pub target: String,
    pub mtime: (i64, i64),
}

/// Everything about a tree that a restore must reproduce.
pub fn digest(root: &Path) -> BTreeMap<String, Entry> {
    let mut out = BTreeMap::new();
    for e in walkdir::WalkDir::new(root).sort_by_file_name() {
        let e = e.unwrap();
        let rel = e
            .path()
            .strip_prefix(root)
            .unwrap()
            .to_string_lossy()
            .into_owned();
        let m = e.path().symlink_metadata().unwrap();
        let ft = m.file_type();
        let kind = if ft.is_dir() {
            'd'
        } else if ft.is_symlink() {
            'l'
        } else {
            'f'
        };
        let (sha, size) = if kind == 'f' {
            let data = std::fs::read(e.path()).unwrap();
            (hex::encode(Sha256::digest(&data)), data.len() as u64)
        } else {
            (String::new(), 0)
        };
        let target = if kind == 'l' {
            std::fs::read_link(e.path()).unwrap().display().to_string()
        } else {
            String::new()
        };
        // Directory times change as entries are created inside; compare them for files and links.
        let mtime = if kind == 'd' {
            (0, 0)
        } else {
            (m.mtime(), m.mtime_nsec())
        };
        out.insert(
            rel,
            Entry {
                kind,
                mode: if kind == 'l' { 0 } else { m.mode() & 0o7777 },
                uid: m.uid(),
                size,
                sha256: sha,
                target,
                mtime,
            },
        );
    }
    out
}

/// Where a captured absolute path lands under a restore target.
pub fn restored(target: &Path, captured: &Path) -> PathBuf {
    target.join(captured.strip_prefix("/").unwrap())
}

/// Flips one byte of a file at `offset` (from the start, or from the end if negative).
pub fn flip_byte(path: &Path, offset: i64) {
    let mut data = std::fs::read(path).unwrap();
    let i = if offset < 0 {
        (data.len() as i64 + offset) as usize
    } else {
        offset as usize
    };
    data[i] ^= 0x55;
    std::fs::write(path, data).unwrap();
}

/// Files under a directory (recursively), skipping folders.
pub fn files_under(dir: &Path) -> Vec<PathBuf> {
    walkdir::WalkDir::new(dir)
        .into_iter()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_type().is_file())
        .map(|e| e.into_path())
        .collect()
}

/// Whether we run as root.
pub fn is_root() -> bool {
    std::fs::metadata("/proc/self")
        .map(|m| m.uid() == 0)
        .unwrap_or(false)
}

/// The canonical form of a repository config (docs/FORMAT.md, `config`):
/// every member but `checksum` and `mac`, no whitespace, members sorted by
/// key at every level. Written here from the document, not the library.
pub fn config_canonical(config: &serde_json::Value) -> String {
    fn write(v: &serde_json::Value, top: bool, out: &mut String) {
        match v {
            serde_json::Value::Object(m) => {
                let mut keys: Vec<&String> = m
                    .keys()
                    .filter(|k| !top || (*k != "checksum" && *k != "mac"))
                    .collect();
                keys.sort();
                out.push('{');
                for (i, k) in keys.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    out.push_str(&serde_json::to_string(k).unwrap());
                    out.push(':');
                    write(&m[*k], false, out);
                }
                out.push('}');
            }
            serde_json::Value::Array(a) => {
                out.push('[');
                for (i, e) in a.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    write(e, false, out);
                }
                out.push(']');
            }
            other => out.push_str(&other.to_string()),
        }
    }
    let mut out = String::new();
    write(config, true, &mut out);
    out
}

/// Edits a local repository's `config` and recomputes its `checksum` (not
/// its `mac`, which needs the master key): what someone who edits the
/// config by hand and knows the format would produce.
pub fn edit_config_with_checksum(repo: &str, edit: impl FnOnce(&mut serde_json::Value)) {
    let path = Path::new(repo).join("config");
    let mut v: serde_json::Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    edit(&mut v);
    let sum = hex::encode(Sha256::digest(config_canonical(&v).as_bytes()));
    v["checksum"] = serde_json::Value::String(sum);
    std::fs::write(&path, serde_json::to_vec_pretty(&v).unwrap()).unwrap();
}

/// Replaces the first `from` in a local repository's `config` text by `to`
/// (leaving the checksum as it is: damage, or a careless edit).
pub fn edit_config_text(repo: &str, from: &str, to: &str) {
    let path = Path::new(repo).join("config");
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(text.contains(from), "{from:?} not in the config:\n{text}");
    std::fs::write(&path, text.replacen(from, to, 1)).unwrap();
}
