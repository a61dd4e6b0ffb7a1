//! A scratch ext4 file system, with its journal as on a production host, in a sparse image
//! file under `/var/tmp`, mounted through a loop device (root only) until dropped.
//!
//! Why: ext4 without a journal (as some VMs' root file systems are) skips, when it allocates
//! an inode, every inode deleted in the last 60 to 300 seconds. After a run removed tens of
//! thousands of files, creating as many again then costs seconds to tens of seconds of
//! kernel time, for `cp -a` and the rollback alike, depending only on what was deleted
//! before. On a journaled file system that check is off.

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;
use std::process::Command;

use crate::support::Result;

/// A mounted scratch file system; unmounted and its image removed on drop.
pub struct LoopFs {
    /// Where it is mounted.
    pub mnt: PathBuf,
    img: PathBuf,
    keep: bool,
}

impl LoopFs {
    /// A fresh file system of `gib` GiB (a sparse file: only what is written takes room) for
    /// benchmark `bench`, or `None` when this process cannot mount one (not root).
    pub fn new(bench: &str, gib: u64) -> Result<Option<Self>> {
        if !is_root() {
            println!(
                "not root: the work directory stays on its own file system (a loop ext4 \
                 file system needs root)"
            );
            return Ok(None);
        }
        let base = format!("/var/tmp/backup-bench-{bench}-fs-{}", std::process::id());
        let (img, mnt) = (PathBuf::from(format!("{base}.img")), PathBuf::from(base));
        fs::File::create(&img)?.set_len(gib << 30)?;
        let fs = LoopFs {
            mnt,
            img,
            keep: std::env::var("BENCH_KEEP").is_ok_and(|v| v == "1"),
        };
        run(Command::new("mkfs.ext4").args(["-q", "-F"]).arg(&fs.img))?;
        fs::create_dir_all(&fs.mnt)?;
        run(Command::new("mount")
            .args(["-o", "loop"])
            .arg(&fs.img)
            .arg(&fs.mnt))?;
        println!(
            "work directory on a fresh journaled ext4 file system ({gib} GiB image {}, mounted at {})",
            fs.img.display(),
            fs.mnt.display()
        );
        Ok(Some(fs))
    }
}

impl Drop for LoopFs {
    fn drop(&mut self) {
        if self.keep {
            println!(
                "BENCH_KEEP=1: left {} mounted at {} (umount it, then remove the image)",
                self.img.display(),
                self.mnt.display()
            );
            return;
        }
        let unmounted = (0..10).any(|_| {
            let ok = Command::new("umount")
                .arg(&self.mnt)
                .status()
                .is_ok_and(|s| s.success());
            if !ok {
                std::thread::sleep(std::time::Duration::from_millis(500));
            }
            ok
        });
        if unmounted {
            let _ = fs::remove_dir(&self.mnt);
            let _ = fs::remove_file(&self.img);
        } else {
            eprintln!(
                "warning: could not unmount {}; its image is {}",
                self.mnt.display(),
                self.img.display()
            );
        }
    }
}

/// Runs `c`, an error naming it when it fails.
fn run(c: &mut Command) -> Result<()> {
    let out = c.output()?;
    if !out.status.success() {
        return Err(format!(
            "{:?} failed: {}",
            c,
            String::from_utf8_lossy(&out.stderr).trim()
        )
        .into());
    }
    Ok(())
}

/// Whether this process runs as root (the owner of `/proc/self`).
fn is_root() -> bool {
    fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0)
}
