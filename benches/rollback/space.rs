//! Free disk space: the largest case must fit, or the program stops before generating
//! anything.

use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::process::Command;

use crate::support::process::capture;
use crate::support::report::human;
use crate::support::{Result, MIB};

const GIB: u64 = 1024 * MIB;

/// What a case needs, in bytes, on the cluster's file system and in the work directory.
///
/// Cluster: the live database and the staged one (afterwards the kept one), 10% for the
/// deployment's growth, and 2 GiB of WAL (`max_wal_size` is 1 GiB; checkpoints may lag). Work directory: the tree three
/// times (live, staged and the `cp -a` copy, which is removed only after the rollback), the repository (at most about 35% of the
/// database and 60% of the tree, plus the safety snapshot's new data), the `-Fd` dump (about
/// 20% of the database at 350 MiB; 30% allowed) and 256 MiB to spare.
pub fn needs(db_mib: u64, tree_mib: u64) -> (u64, u64) {
    let d = db_mib * MIB;
    let t = tree_mib * MIB;
    let cluster = 2 * d * 11 / 10 + 2 * GIB;
    let work = 3 * t + (t * 6 / 10 + d * 45 / 100) + d * 3 / 10 + 256 * MIB;
    (cluster, work)
}

/// Fails, saying what is missing, unless both file systems can hold what the largest case
/// (`db_mib`, `tree_mib`) needs; sums both needs when they are the same file system.
pub fn check(cluster_dir: &Path, work_dir: &Path, db_mib: u64, tree_mib: u64) -> Result<()> {
    let (need_cluster, need_work) = needs(db_mib, tree_mib);
    let same = std::fs::metadata(cluster_dir)?.dev() == std::fs::metadata(work_dir)?.dev();
    let free_cluster = free_bytes(cluster_dir)?;
    let free_work = free_bytes(work_dir)?;
    println!(
        "disk          : the {db_mib} MiB case needs about {} for the cluster ({}, {} free) and \
         {} in the work directory ({} free){}",
        human(need_cluster),
        cluster_dir.display(),
        human(free_cluster),
        human(need_work),
        human(free_work),
        if same { ", the same file system" } else { "" }
    );
    let short = if same {
        let need = need_cluster + need_work;
        (free_work < need).then(|| {
            format!(
                "{} and the work directory {} share a file system with {} free; the {db_mib} MiB \
                 case needs about {} (the database twice, live and staged, with WAL; the {tree_mib} \
                 MiB tree twice; the repository; the dump)",
                cluster_dir.display(),
                work_dir.display(),
                human(free_work),
                human(need)
            )
        })
    } else if free_cluster < need_cluster {
        Some(format!(
            "the cluster's file system ({}) has {} free; the {db_mib} MiB case needs about {} \
             there (the database twice, live and staged, with WAL)",
            cluster_dir.display(),
            human(free_cluster),
            human(need_cluster)
        ))
    } else if free_work < need_work {
        Some(format!(
            "the work directory {} has {} free; the {db_mib} MiB case needs about {} there (the \
             {tree_mib} MiB tree twice, the repository, the dump)",
            work_dir.display(),
            human(free_work),
            human(need_work)
        ))
    } else {
        None
    };
    match short {
        Some(why) => Err(format!(
            "not enough free disk space: {why}. Free some space, point BENCH_DIR (work \
             directory) or TMPDIR (the cluster) at a larger disk, or lower BENCH_ROLLBACK_MB, \
             BENCH_ROLLBACK_BIG (0 skips the large case) or BENCH_ROLLBACK_TREE_MB"
        )
        .into()),
        None => Ok(()),
    }
}

/// Bytes available to this user on the file system of `path` (`stat -f`).
fn free_bytes(path: &Path) -> Result<u64> {
    let out = capture(Command::new("stat").args(["-f", "-c", "%a %S"]).arg(path))?;
    let mut it = out.split_whitespace().map(str::parse::<u64>);
    match (it.next(), it.next()) {
        (Some(Ok(blocks)), Some(Ok(size))) => Ok(blocks * size),
        _ => Err(format!("stat -f {}: unexpected output {out:?}", path.display()).into()),
    }
}
