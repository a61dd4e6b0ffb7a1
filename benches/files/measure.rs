//! The measurements: the tree, the timed runs of both tools and the anchor, and the report.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use crate::support::process::{capture, version, GNU_TIME};
use crate::support::report::{self, human, pct, Row};
use crate::support::workdir::{du, warm, WorkDir};
use crate::support::{cores, Result, MIB};
use crate::timed::{wait_all, Timer};
use crate::tree::generate_tree;
use crate::PASSWORD;

/// The peak memory target of `backup`, in MiB.
const RSS_TARGET: Option<u64> = Some(200);

pub fn measure(work: &WorkDir, size_mib: u64, backup: &Path, restic: &str) -> Result<()> {
    let restic_version = version(restic, "version")?;
    let backup_version = version(backup, "--version")?;
    let zstd_version = version("zstd", "--version")?;
    let have_gnu_time = Path::new(GNU_TIME).exists();
    println!("backup binary : {} ({backup_version})", backup.display());
    println!("restic        : {restic_version}");
    println!("anchor        : {zstd_version}; sha256sum");
    println!("work dir      : {}", work.path.display());
    println!("cores         : {}", cores());
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
    rows.push(Row::info(
        "tree size",
        format!("{} in {} files", human(tree_bytes), stats.files()),
    ));
    rows.push(Row::info(
        "restic",
        format!("{restic_version} (repo v{r_repo_version})"),
    ));
    rows.push(Row::info(
        "backup init + create",
        format!("{:.2} s, {:.1} MB/s", b_secs, mbps(b_secs)),
    ));
    rows.push(Row::info(
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
    rows.push(Row::info(
        "  create alone (info)",
        format!(
            "backup {:.1} MB/s, restic {:.1} MB/s, {:.2}x",
            mbps(b_create.secs),
            mbps(r_backup.secs),
            r_backup.secs / b_create.secs
        ),
    ));
    rows.push(Row::info(
        "repo size backup",
        format!(
            "{} ({:.1}% of tree)",
            human(b_repo),
            pct(b_repo, tree_bytes)
        ),
    ));
    rows.push(Row::info(
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
    rows.push(Row::info(
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
    rows.push(Row::info(
        "backup verify --read-data",
        format!("{:.2} s, {:.1} MB/s", verify.secs, mbps(verify.secs)),
    ));
    rows.push(Row::info(
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
    for (name, kib, target) in [
        ("max RSS backup create", b_create.max_rss_kib, RSS_TARGET),
        (
            "max RSS backup create (unchanged)",
            b_second.max_rss_kib,
            RSS_TARGET,
        ),
        (
            "max RSS backup verify --read-data",
            verify.max_rss_kib,
            RSS_TARGET,
        ),
        ("max RSS restic backup (info)", r_backup.max_rss_kib, None),
    ] {
        rows.push(Row::rss(name, kib, target));
    }
    if let (Some(ours), Some(theirs)) = (b_create.max_rss_kib, r_backup.max_rss_kib) {
        let ratio = ours as f64 / theirs as f64;
        rows.push(Row::new(
            "max RSS create backup / restic",
            format!("{ratio:.2}"),
            "< 1.00",
            Some(ratio < 1.0),
        ));
    }

    report::print(&rows, &format!("{size_mib} MiB tree, {} cores", cores()));
    Ok(())
}
