//! File-tree benchmark: `backup` against restic and against a `zstd -d | sha256sum` anchor.
//!
//! Run with `cargo bench --bench files`. The program
//!
//! 1. builds the release `backup` binary (`cargo build --release -p backup-cli`), or takes the
//!    binary named by `BACKUP_BIN`;
//! 2. generates a deterministic (seeded PRNG), mixed tree of `BENCH_SIZE_MB` MiB (default 1024):
//!    source-code-like text, large log and JSON files, already-compressed (random) assets and
//!    thousands of small files in nested directories;
//! 3. reads the tree once before every timed run (warm page cache: dropping the cache is not
//!    possible reliably), then times `backup init` + `backup create`, `restic init` +
//!    `restic backup`, a second unchanged `backup create`, `backup verify --read-data` and the
//!    anchor `zstd -d -c tree.tar.zst | sha256sum`, and reads peak memory (max RSS) through GNU
//!    `/usr/bin/time -f %M`;
//! 4. prints every figure with its target and PASS/MISS, then the same as a Markdown table.
//!
//! It exits 0 even when a target is missed (it is a report) and non-zero when a command fails.
//!
//! Environment:
//!
//! | variable        | meaning                                                              |
//! |-----------------|----------------------------------------------------------------------|
//! | `BENCH_SIZE_MB` | tree size in MiB (default 1024)                                      |
//! | `BENCH_DIR`     | work directory (default: a fresh temp dir under `/var/tmp`, on disk) |
//! | `BENCH_KEEP`    | `1` keeps the work directory (tree, repositories, anchor)            |
//! | `BACKUP_BIN`    | use this `backup` binary instead of building one                     |
//! | `RESTIC_BIN`    | restic binary (default `restic` on `PATH`)                           |
//!
//! Throughputs are tree bytes (file contents) per second of wall time, in MB/s (10^6 bytes).
//! Repository sizes are `du -sb` equivalents: the apparent size of every entry under the
//! repository directory.

use std::collections::BTreeMap;
use std::error::Error;
use std::fmt::Write as _;
use std::fs;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Stdio};
use std::time::Instant;

type Result<T> = std::result::Result<T, Box<dyn Error>>;

/// Password of the throwaway repositories.
const PASSWORD: &str = "bench-files-password";
/// Seed of the tree generator: same size, same tree, byte for byte.
const SEED: u64 = 0x5EED_F11E_5BE7_C400;
/// GNU time, for the peak memory (max RSS) of a child.
const GNU_TIME: &str = "/usr/bin/time";
const MIB: u64 = 1024 * 1024;
const KIB: u64 = 1024;

fn main() -> ExitCode {
    // `cargo test --all-targets` runs bench programs too; only `cargo bench`
    // passes `--bench`, and only then is the (long) benchmark run.
    if !std::env::args().any(|a| a == "--bench") {
        println!("files benchmark: run it with `cargo bench --bench files`");
        return ExitCode::SUCCESS;
    }
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("bench files: FAILED: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> Result<()> {
    let size_mib: u64 = match std::env::var("BENCH_SIZE_MB") {
        Ok(v) => v
            .trim()
            .parse()
            .map_err(|_| format!("BENCH_SIZE_MB={v:?} is not a number"))?,
        Err(_) => 1024,
    };
    if size_mib == 0 {
        return Err("BENCH_SIZE_MB must be at least 1".into());
    }
    let keep = std::env::var("BENCH_KEEP").is_ok_and(|v| v == "1");
    let backup_bin = backup_binary()?;
    let restic_bin = std::env::var("RESTIC_BIN").unwrap_or_else(|_| "restic".to_string());
    let work = WorkDir::new(keep)?;
    let result = measure(&work, size_mib, &backup_bin, &restic_bin);
    work.finish();
    result
}

// ---------------------------------------------------------------------------------------------
// Work directory
// ---------------------------------------------------------------------------------------------

/// Names this program creates inside the work directory, and removes at the end.
const WORK_ENTRIES: &[&str] = &[
    "tree",
    "backup-repo",
    "restic-repo",
    "restic-cache",
    "anchor.tar.zst",
    "rss.txt",
];

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
            .prefix("backup-bench-files-")
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

fn measure(work: &WorkDir, size_mib: u64, backup: &Path, restic: &str) -> Result<()> {
    let restic_version = capture(Command::new(restic).arg("version"))?
        .trim()
        .to_string();
    let backup_version = capture(Command::new(backup).arg("--version"))?
        .trim()
        .to_string();
    let zstd_version = capture(Command::new("zstd").arg("--version"))?
        .trim()
        .to_string();
    let have_gnu_time = Path::new(GNU_TIME).exists();
    println!("backup binary : {} ({backup_version})", backup.display());
    println!("restic        : {restic_version}");
    println!("anchor        : {zstd_version}; sha256sum");
    println!("work dir      : {}", work.path.display());
    println!(
        "cores         : {}",
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );
    if !have_gnu_time {
        println!("note          : {GNU_TIME} not found: peak memory is not measured");
    }

    // -- the tree (untimed) --
    let tree = work.join("tree");
    let t = Instant::now();
    let stats = generate_tree(&tree, size_mib * MIB)?;
    let tree_bytes = stats.bytes();
    println!(
        "\ngenerated {} files, {} dirs, {} in {:.1} s:",
        stats.files(),
        stats.dirs,
        human(tree_bytes),
        t.elapsed().as_secs_f64()
    );
    for (kind, (files, bytes)) in &stats.kinds {
        println!(
            "  {kind:<22} {files:>7} files {:>11} ({:>4.1}%)",
            human(*bytes),
            pct(*bytes, tree_bytes)
        );
    }

    // -- the anchor's input (untimed): tar | zstd -3 -T1 --
    let anchor = work.join("anchor.tar.zst");
    let mut tar = Command::new("tar")
        .args(["-cf", "-", "-C"])
        .arg(&work.path)
        .arg("tree")
        .stdout(Stdio::piped())
        .spawn()?;
    let tar_out = tar.stdout.take().ok_or("tar: no stdout")?;
    let zstd = Command::new("zstd")
        .args(["-3", "-T1", "-q", "-f", "-o"])
        .arg(&anchor)
        .stdin(tar_out)
        .spawn()?;
    wait_all("tar | zstd -3 -T1", vec![tar, zstd])?;
    let anchor_bytes = fs::metadata(&anchor)?.len();
    println!(
        "anchor input {} ({:.2}x smaller than the tree with zstd -3)",
        human(anchor_bytes),
        tree_bytes as f64 / anchor_bytes as f64
    );

    let rss_file = work.join("rss.txt");
    let rss = have_gnu_time.then_some(rss_file.as_path());
    let timer = Timer { rss };
    let os = std::ffi::OsStr::new;

    // -- backup init + create --
    let repo = work.join("backup-repo");
    let cache = work.join("restic-cache");
    let no_env: &[(&str, &Path)] = &[];
    warm(&tree)?;
    let b_init = timer.run(
        "backup init",
        backup,
        &[os("init"), os("--repo"), repo.as_os_str(), os("-q")],
        no_env,
    )?;
    let create_args = [
        os("create"),
        os("--repo"),
        repo.as_os_str(),
        os("--files"),
        tree.as_os_str(),
        os("--json"),
        os("-q"),
    ];
    let b_create = timer.run("backup create", backup, &create_args, no_env)?;
    let first: serde_json::Value = serde_json::from_str(&b_create.stdout)?;
    let b_repo = du(&repo)?;
    let b_secs = b_init.secs + b_create.secs;

    // -- restic init + backup --
    warm(&tree)?;
    let restic_path = PathBuf::from(restic);
    let r_repo = work.join("restic-repo");
    let r_env: &[(&str, &Path)] = &[("RESTIC_CACHE_DIR", &cache)];
    let r_init = timer.run(
        "restic init",
        &restic_path,
        &[os("init"), os("--repo"), r_repo.as_os_str(), os("-q")],
        r_env,
    )?;
    let r_backup = timer.run(
        "restic backup",
        &restic_path,
        &[
            os("backup"),
            os("--repo"),
            r_repo.as_os_str(),
            os("-q"),
            tree.as_os_str(),
        ],
        r_env,
    )?;
    let r_repo_bytes = du(&r_repo)?;
    let r_secs = r_init.secs + r_backup.secs;
    let r_config = capture(
        Command::new(restic)
            .args(["cat", "config", "--repo"])
            .arg(&r_repo)
            .env("RESTIC_PASSWORD", PASSWORD)
            .env("RESTIC_CACHE_DIR", &cache),
    )?;
    let r_config: serde_json::Value = serde_json::from_str(&r_config)?;
    let r_repo_version = r_config["version"].as_u64().unwrap_or(1);

    // -- second, unchanged backup create --
    warm(&tree)?;
    let b_second = timer.run("backup create (unchanged)", backup, &create_args, no_env)?;
    let second: serde_json::Value = serde_json::from_str(&b_second.stdout)?;
    let second_stored = second["stored_bytes"]
        .as_u64()
        .ok_or("create --json: no stored_bytes")?;
    let b_repo_after = du(&repo)?;
    let growth = b_repo_after.saturating_sub(b_repo);

    // -- verify --read-data against the anchor --
    warm(&repo)?;
    let verify = timer.run(
        "backup verify --read-data",
        backup,
        &[
            os("verify"),
            os("--read-data"),
            os("--repo"),
            repo.as_os_str(),
            os("--json"),
            os("-q"),
        ],
        no_env,
    )?;
    let verified: serde_json::Value = serde_json::from_str(&verify.stdout)?;
    if verified["problems"]
        .as_array()
        .is_some_and(|p| !p.is_empty())
    {
        return Err(format!("backup verify reported problems: {}", verified["problems"]).into());
    }
    warm(&anchor)?;
    let t = Instant::now();
    let mut unzstd = Command::new("zstd")
        .args(["-d", "-c", "-q"])
        .arg(&anchor)
        .stdout(Stdio::piped())
        .spawn()?;
    let unzstd_out = unzstd.stdout.take().ok_or("zstd: no stdout")?;
    let sha = Command::new("sha256sum")
        .stdin(unzstd_out)
        .stdout(Stdio::null())
        .spawn()?;
    wait_all("zstd -d -c | sha256sum", vec![unzstd, sha])?;
    let anchor_secs = t.elapsed().as_secs_f64();

    // -- report --
    let mbps = |secs: f64| tree_bytes as f64 / 1e6 / secs;
    let mut rows = Vec::new();
    let info = |name: &str, value: String| Row::new(name, value, "", None);
    rows.push(info(
        "tree size",
        format!("{} in {} files", human(tree_bytes), stats.files()),
    ));
    rows.push(info(
        "restic",
        format!("{restic_version} (repo v{r_repo_version})"),
    ));
    rows.push(info(
        "backup init + create",
        format!("{:.2} s, {:.1} MB/s", b_secs, mbps(b_secs)),
    ));
    rows.push(info(
        "restic init + backup",
        format!("{:.2} s, {:.1} MB/s", r_secs, mbps(r_secs)),
    ));
    let tput_ratio = r_secs / b_secs;
    rows.push(Row::new(
        "throughput backup / restic",
        format!("{tput_ratio:.2}x"),
        ">= 1.30x",
        Some(tput_ratio >= 1.3),
    ));
    rows.push(info(
        "  create alone (info)",
        format!(
            "backup {:.1} MB/s, restic {:.1} MB/s, {:.2}x",
            mbps(b_create.secs),
            mbps(r_backup.secs),
            r_backup.secs / b_create.secs
        ),
    ));
    rows.push(info(
        "repo size backup",
        format!(
            "{} ({:.1}% of tree)",
            human(b_repo),
            pct(b_repo, tree_bytes)
        ),
    ));
    rows.push(info(
        "repo size restic",
        format!(
            "{} ({:.1}% of tree)",
            human(r_repo_bytes),
            pct(r_repo_bytes, tree_bytes)
        ),
    ));
    let size_ratio = b_repo as f64 / r_repo_bytes as f64;
    rows.push(Row::new(
        "repo size backup / restic",
        format!("{size_ratio:.3}"),
        "<= 1.000",
        Some(size_ratio <= 1.0),
    ));
    rows.push(info(
        "  backup create --json",
        format!(
            "new_bytes {}, stored_bytes {}",
            first["new_bytes"].as_u64().map_or("?".into(), human),
            first["stored_bytes"].as_u64().map_or("?".into(), human)
        ),
    ));
    let speedup = b_create.secs / b_second.secs;
    rows.push(Row::new(
        "unchanged create: first / second",
        format!(
            "{:.2} s / {:.2} s = {speedup:.1}x",
            b_create.secs, b_second.secs
        ),
        ">= 3x",
        Some(speedup >= 3.0),
    ));
    let stored_pct = pct(second_stored, tree_bytes);
    rows.push(Row::new(
        "unchanged create: stored_bytes",
        format!("{} ({stored_pct:.3}% of tree)", human(second_stored)),
        "< 1%",
        Some(stored_pct < 1.0),
    ));
    let growth_pct = pct(growth, tree_bytes);
    rows.push(Row::new(
        "unchanged create: repo growth",
        format!("{} ({growth_pct:.3}% of tree)", human(growth)),
        "< 1%",
        Some(growth_pct < 1.0),
    ));
    rows.push(info(
        "backup verify --read-data",
        format!("{:.2} s, {:.1} MB/s", verify.secs, mbps(verify.secs)),
    ));
    rows.push(info(
        "anchor zstd -d | sha256sum",
        format!("{:.2} s, {:.1} MB/s", anchor_secs, mbps(anchor_secs)),
    ));
    let verify_ratio = anchor_secs / verify.secs;
    rows.push(Row::new(
        "verify / anchor throughput",
        format!("{verify_ratio:.2}x"),
        ">= 0.70x",
        Some(verify_ratio >= 0.70),
    ));
    let rss_row = |name: &str, kib: Option<u64>, target: bool| match kib {
        Some(k) => Row::new(
            name,
            format!("{:.1} MiB", k as f64 / 1024.0),
            if target { "< 200 MiB" } else { "" },
            target.then_some(k < 200 * 1024),
        ),
        None => Row::new(
            name,
            "n/a".into(),
            if target { "< 200 MiB" } else { "" },
            None,
        ),
    };
    rows.push(rss_row("max RSS backup create", b_create.max_rss_kib, true));
    rows.push(rss_row(
        "max RSS backup create (unchanged)",
        b_second.max_rss_kib,
        true,
    ));
    rows.push(rss_row(
        "max RSS backup verify --read-data",
        verify.max_rss_kib,
        true,
    ));
    rows.push(rss_row(
        "max RSS restic backup (info)",
        r_backup.max_rss_kib,
        false,
    ));

    println!("\n{}", plain_table(&rows));
    let misses = rows.iter().filter(|r| r.pass == Some(false)).count();
    let checks = rows.iter().filter(|r| r.pass.is_some()).count();
    println!("{} of {checks} targets met\n", checks - misses);
    println!(
        "Markdown ({} MiB tree, {} cores):\n",
        size_mib,
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );
    println!("{}", markdown_table(&rows));
    Ok(())
}

/// Runs timed children, under GNU time when `rss` (its output file) is set.
struct Timer<'a> {
    rss: Option<&'a Path>,
}

impl Timer<'_> {
    fn run(
        &self,
        name: &str,
        program: &Path,
        args: &[&std::ffi::OsStr],
        envs: &[(&str, &Path)],
    ) -> Result<Timed> {
        run_timed(name, program, args, envs, self.rss)
    }
}

/// The outcome of one timed child process.
struct Timed {
    secs: f64,
    stdout: String,
    max_rss_kib: Option<u64>,
}

/// Runs `program args` with the repositories' passwords set, timed, under GNU time when
/// `rss_file` is given; fails when the child fails.
fn run_timed(
    name: &str,
    program: &Path,
    args: &[&std::ffi::OsStr],
    envs: &[(&str, &Path)],
    rss_file: Option<&Path>,
) -> Result<Timed> {
    let mut cmd = match rss_file {
        Some(file) => {
            let mut c = Command::new(GNU_TIME);
            c.args(["-f", "%M", "-o"]).arg(file).arg(program);
            c
        }
        None => Command::new(program),
    };
    cmd.args(args);
    for var in [
        "BACKUP_REPOSITORY",
        "BACKUP_PASSWORD_FILE",
        "BACKUP_CONFIG",
        "RESTIC_REPOSITORY",
        "RESTIC_PASSWORD_FILE",
        "RESTIC_PASSWORD_COMMAND",
    ] {
        cmd.env_remove(var);
    }
    cmd.env("BACKUP_PASSWORD", PASSWORD)
        .env("RESTIC_PASSWORD", PASSWORD);
    for (k, v) in envs {
        cmd.env(k, v);
    }
    cmd.stdin(Stdio::null());
    print!("timing {name} ... ");
    io::stdout().flush()?;
    let t = Instant::now();
    let out = cmd.output()?;
    let secs = t.elapsed().as_secs_f64();
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
    let max_rss_kib = match rss_file {
        Some(file) => {
            let text = fs::read_to_string(file)?;
            let last = text.lines().rfind(|l| !l.trim().is_empty()).unwrap_or("");
            Some(
                last.trim()
                    .parse()
                    .map_err(|_| format!("{GNU_TIME} wrote {text:?}"))?,
            )
        }
        None => None,
    };
    match max_rss_kib {
        Some(k) => println!("{secs:.2} s, max RSS {:.1} MiB", k as f64 / 1024.0),
        None => println!("{secs:.2} s"),
    }
    Ok(Timed {
        secs,
        stdout: String::from_utf8(out.stdout)?,
        max_rss_kib,
    })
}

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

/// Waits for every process of a pipeline; fails if any of them failed.
fn wait_all(name: &str, children: Vec<Child>) -> Result<()> {
    let mut failed = Vec::new();
    for mut child in children {
        let status = child.wait()?;
        if !status.success() {
            failed.push(status.to_string());
        }
    }
    if failed.is_empty() {
        Ok(())
    } else {
        Err(format!("{name} failed: {}", failed.join(", ")).into())
    }
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
// Deterministic tree generator
// ---------------------------------------------------------------------------------------------

/// xoshiro256** seeded through splitmix64: small, fast, and stable across crate versions, so
/// the same `BENCH_SIZE_MB` always gives the same tree.
struct Rng([u64; 4]);

impl Rng {
    fn new(seed: u64) -> Self {
        let mut x = seed;
        let mut next = || {
            x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = x;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^ (z >> 31)
        };
        Self([next(), next(), next(), next()])
    }

    fn next_u64(&mut self) -> u64 {
        let s = &mut self.0;
        let result = s[1].wrapping_mul(5).rotate_left(7).wrapping_mul(9);
        let t = s[1] << 17;
        s[2] ^= s[0];
        s[3] ^= s[1];
        s[1] ^= s[2];
        s[0] ^= s[3];
        s[2] ^= t;
        s[3] = s[3].rotate_left(45);
        result
    }

    /// Uniform in `0..n` (n > 0).
    fn below(&mut self, n: u64) -> u64 {
        ((self.next_u64() as u128 * n as u128) >> 64) as u64
    }

    /// Uniform in `lo..=hi`.
    fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.below(hi - lo + 1)
    }

    /// Log-uniform in `lo..=hi`: many small values, a few large ones, as real file sizes.
    fn log_range(&mut self, lo: u64, hi: u64) -> u64 {
        let u = self.next_u64() as f64 / u64::MAX as f64;
        let v = (lo as f64).ln() + u * ((hi as f64).ln() - (lo as f64).ln());
        (v.exp() as u64).clamp(lo, hi)
    }

    /// Index skewed towards 0 (roughly Zipf-like), for word choice.
    fn skewed(&mut self, n: usize) -> usize {
        let u = self.next_u64() as f64 / u64::MAX as f64;
        ((n as f64).powf(u) - 1.0) as usize % n
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
    }

    fn fill(&mut self, buf: &mut Vec<u8>, len: usize) {
        while buf.len() + 8 <= len {
            buf.extend_from_slice(&self.next_u64().to_le_bytes());
        }
        let rest = len - buf.len();
        buf.extend_from_slice(&self.next_u64().to_le_bytes()[..rest]);
    }

    fn hex(&mut self, buf: &mut Vec<u8>, digits: usize) {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        for _ in 0..digits {
            buf.push(HEX[self.below(16) as usize]);
        }
    }
}

/// What was generated, per kind of file.
#[derive(Default)]
struct TreeStats {
    kinds: BTreeMap<&'static str, (u64, u64)>,
    dirs: u64,
}

impl TreeStats {
    fn bytes(&self) -> u64 {
        self.kinds.values().map(|k| k.1).sum()
    }

    fn files(&self) -> u64 {
        self.kinds.values().map(|k| k.0).sum()
    }
}

const KEYWORDS: &[&str] = &[
    "const",
    "let",
    "return",
    "if",
    "else",
    "for",
    "while",
    "async",
    "await",
    "function",
    "export",
    "import",
    "from",
    "class",
    "new",
    "this",
    "null",
    "true",
    "false",
    "private",
    "public",
    "static",
    "interface",
    "type",
    "extends",
    "implements",
    "throw",
    "try",
    "catch",
];
const SYLLABLES: &[&str] = &[
    "user", "order", "vehicle", "dealer", "invoice", "part", "stock", "price", "tax", "repair",
    "service", "account", "customer", "contract", "lease", "payment", "report", "config", "cache",
    "handler", "request", "response", "query", "item", "list", "map", "id", "date", "total",
    "count", "status", "state", "error", "result", "value", "key", "name", "code", "line", "unit",
];
const LEVELS: &[&str] = &[
    "INFO ", "INFO ", "INFO ", "DEBUG", "DEBUG", "WARN ", "ERROR",
];
const ASSET_EXT: &[&str] = &["png", "jpg", "woff2", "webp", "gz", "mp4", "zip"];
const SOURCE_EXT: &[&str] = &["ts", "ts", "tsx", "js", "rs", "sql", "css"];

/// Generates the tree under `root`, `total` bytes of file contents. Byte shares: 30% source
/// text (1-64 KiB files), 38% logs and JSON exports (1-32 MiB), 25% random "compressed"
/// assets (100 KiB - 20 MiB), 7% small files (1-8 KiB, in deeply nested package dirs).
fn generate_tree(root: &Path, total: u64) -> Result<TreeStats> {
    let mut rng = Rng::new(SEED);
    let mut stats = TreeStats::default();
    let idents: Vec<String> = (0..2000)
        .map(|i| {
            let parts = 1 + i % 3;
            let mut s = String::new();
            for p in 0..parts {
                let syl = *rng.pick(SYLLABLES);
                if p == 0 {
                    s.push_str(syl);
                } else {
                    s.push_str(&syl[..1].to_uppercase());
                    s.push_str(&syl[1..]);
                }
            }
            s
        })
        .collect();
    let gen = Gen { idents };
    let budgets = [
        ("source code", total * 30 / 100),
        ("logs + json", total * 38 / 100),
        ("compressed assets", total * 25 / 100),
    ];
    let small_budget = total - budgets.iter().map(|b| b.1).sum::<u64>();
    let mut buf = Vec::new();

    // Source code: app/src/<module>/<submodule>/<file>, ~20 files per directory.
    let (kind, budget) = budgets[0];
    let mut left = budget;
    let mut n = 0u64;
    let mut dir = PathBuf::new();
    while left > 0 {
        let slot = n % 20; // a new directory every 20 files
        if slot == 0 {
            dir = root.join(format!(
                "app/src/{}/{}{}",
                gen.idents[rng.skewed(40)],
                gen.idents[rng.below(2000) as usize],
                n / 20
            ));
            mkdir(&dir, &mut stats)?;
        }
        let size = rng.log_range(KIB, 64 * KIB).min(left);
        buf.clear();
        gen.source(&mut rng, &mut buf, size as usize);
        let name = format!(
            "{}_{n}.{}",
            gen.idents[rng.below(2000) as usize],
            rng.pick(SOURCE_EXT)
        );
        write(&dir.join(name), &buf, kind, &mut stats)?;
        left -= size;
        n += 1;
    }

    // Logs and JSON exports: var/log/<service>/ and data/export/.
    let (kind, budget) = budgets[1];
    let mut left = budget;
    let mut n = 0u64;
    while left > 0 {
        let size = rng.log_range(MIB, 32 * MIB).min(left);
        buf.clear();
        let path = if n % 3 == 2 {
            let dir = root.join("data/export");
            mkdir(&dir, &mut stats)?;
            gen.json(&mut rng, &mut buf, size as usize);
            dir.join(format!("export-{n:04}.json"))
        } else {
            let dir = root.join(format!("var/log/{}", gen.idents[n as usize % 7]));
            mkdir(&dir, &mut stats)?;
            gen.log(&mut rng, &mut buf, size as usize, n);
            dir.join(format!("app-{n:04}.log"))
        };
        write(&path, &buf, kind, &mut stats)?;
        left -= size;
        n += 1;
    }

    // Already-compressed assets: random bytes, app/public/assets/<group>/.
    let (kind, budget) = budgets[2];
    let mut left = budget;
    let mut n = 0u64;
    while left > 0 {
        let size = rng.log_range(100 * KIB, 20 * MIB).min(left);
        let dir = root.join(format!("app/public/assets/{}", gen.idents[n as usize % 11]));
        mkdir(&dir, &mut stats)?;
        buf.clear();
        rng.fill(&mut buf, size as usize);
        let name = format!(
            "{}-{n:05}.{}",
            gen.idents[rng.below(2000) as usize],
            rng.pick(ASSET_EXT)
        );
        write(&dir.join(name), &buf, kind, &mut stats)?;
        left -= size;
        n += 1;
    }

    // Small files: app/node_modules/<pkg>/lib/<sub>/<file>; mostly text, some tiny binaries.
    let mut left = small_budget;
    let mut n = 0u64;
    while left > 0 {
        let slot = n % 12; // a new directory every 12 files
        if slot == 0 {
            dir = root.join(format!(
                "app/node_modules/{}{}/lib/{}/{}",
                gen.idents[rng.below(2000) as usize],
                n / 240,
                gen.idents[rng.skewed(60)],
                n / 12
            ));
            mkdir(&dir, &mut stats)?;
        }
        let size = rng.range(KIB, 8 * KIB).min(left);
        buf.clear();
        let (kind, name) = match rng.below(10) {
            0 | 1 => {
                rng.fill(&mut buf, size as usize);
                ("small files (binary)", format!("icon-{n}.png"))
            }
            2..=4 => {
                gen.json(&mut rng, &mut buf, size as usize);
                ("small files (text)", format!("package-{n}.json"))
            }
            _ => {
                gen.source(&mut rng, &mut buf, size as usize);
                (
                    "small files (text)",
                    format!("{}-{n}.js", gen.idents[rng.below(2000) as usize]),
                )
            }
        };
        write(&dir.join(name), &buf, kind, &mut stats)?;
        left -= size;
        n += 1;
    }
    Ok(stats)
}

/// Creates `dir` (and its parents) unless it exists, counting it.
fn mkdir(dir: &Path, stats: &mut TreeStats) -> io::Result<()> {
    if !dir.exists() {
        fs::create_dir_all(dir)?;
        stats.dirs += 1;
    }
    Ok(())
}

/// Writes one generated file, counting it under `kind`.
fn write(path: &Path, data: &[u8], kind: &'static str, stats: &mut TreeStats) -> io::Result<()> {
    let entry = stats.kinds.entry(kind).or_default();
    entry.0 += 1;
    entry.1 += data.len() as u64;
    fs::write(path, data)
}

/// Text generators over one identifier vocabulary.
struct Gen {
    idents: Vec<String>,
}

impl Gen {
    fn ident(&self, rng: &mut Rng) -> &str {
        &self.idents[rng.skewed(self.idents.len())]
    }

    /// Code-like lines: keywords, identifiers, calls, literals, with nesting indentation.
    fn source(&self, rng: &mut Rng, buf: &mut Vec<u8>, len: usize) {
        let mut depth = 0usize;
        while buf.len() < len {
            let start = buf.len();
            buf.resize(start + depth * 2, b' ');
            let line = match rng.below(12) {
                0 if depth < 5 => {
                    depth += 1;
                    format!(
                        "{} {}({}: {}) {{",
                        rng.pick(KEYWORDS),
                        self.ident(rng),
                        self.ident(rng),
                        self.ident(rng)
                    )
                }
                1 | 2 if depth > 0 => {
                    depth -= 1;
                    buf.truncate(start + depth * 2);
                    "}".to_string()
                }
                3 => format!(
                    "// {} {} {} {}",
                    self.ident(rng),
                    rng.pick(KEYWORDS),
                    self.ident(rng),
                    self.ident(rng)
                ),
                4 => format!(
                    "{} {} = {};",
                    rng.pick(KEYWORDS),
                    self.ident(rng),
                    rng.below(100_000)
                ),
                5 => format!(
                    "if ({}.{} > {}) {{ return {}; }}",
                    self.ident(rng),
                    self.ident(rng),
                    rng.below(1000),
                    self.ident(rng)
                ),
                6 => format!(
                    "import {{ {} }} from \"./{}\";",
                    self.ident(rng),
                    self.ident(rng)
                ),
                7 => format!(
                    "this.{} = \"{}-{}\";",
                    self.ident(rng),
                    self.ident(rng),
                    rng.below(10_000)
                ),
                _ => format!(
                    "const {} = await {}.{}({}, {});",
                    self.ident(rng),
                    self.ident(rng),
                    self.ident(rng),
                    self.ident(rng),
                    rng.below(1000)
                ),
            };
            buf.extend_from_slice(line.as_bytes());
            buf.push(b'\n');
        }
        buf.truncate(len);
    }

    /// Application log lines: advancing timestamps, levels, request ids, key=value fields.
    fn log(&self, rng: &mut Rng, buf: &mut Vec<u8>, len: usize, file_no: u64) {
        let mut ms: u64 = 1_700_000_000_000 + file_no * 86_400_000;
        while buf.len() < len {
            ms += rng.below(400);
            let (secs, milli) = (ms / 1000, ms % 1000);
            let (h, m, s) = ((secs / 3600) % 24, (secs / 60) % 60, secs % 60);
            let day = 1 + (secs / 86_400) % 28;
            let line = format!(
                "2024-05-{day:02}T{h:02}:{m:02}:{s:02}.{milli:03}Z {} [worker-{}] {}.{}: {} {} req=",
                rng.pick(LEVELS),
                rng.below(8),
                self.ident(rng),
                self.ident(rng),
                self.ident(rng),
                self.ident(rng)
            );
            buf.extend_from_slice(line.as_bytes());
            rng.hex(buf, 8);
            let tail = format!(
                " user={} {}={} latency_ms={}\n",
                rng.below(5000),
                self.ident(rng),
                rng.below(100_000),
                rng.below(2000)
            );
            buf.extend_from_slice(tail.as_bytes());
        }
        buf.truncate(len);
    }

    /// JSON-lines records as an export or API dump would hold them.
    fn json(&self, rng: &mut Rng, buf: &mut Vec<u8>, len: usize) {
        let mut id = rng.below(1_000_000);
        while buf.len() < len {
            id += 1 + rng.below(3);
            let rec = format!(
                "{{\"id\":{id},\"{}\":\"{} {}\",\"{}\":{}.{:02},\"status\":\"{}\",\"tags\":[\"{}\",\"{}\"],\"ref\":\"",
                self.ident(rng),
                self.ident(rng),
                self.ident(rng),
                self.ident(rng),
                rng.below(10_000),
                rng.below(100),
                rng.pick(&["open", "closed", "pending", "paid"]),
                self.ident(rng),
                self.ident(rng)
            );
            buf.extend_from_slice(rec.as_bytes());
            rng.hex(buf, 12);
            buf.extend_from_slice(b"\"}\n");
        }
        buf.truncate(len);
    }
}
