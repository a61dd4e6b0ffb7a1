//! The deterministic file tree: what goes where, and how much of it.

use std::collections::BTreeMap;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use crate::rng::Rng;
use crate::support::{Result, KIB, MIB};
use crate::text::Gen;

/// Seed of the tree generator: same size, same tree, byte for byte.
const SEED: u64 = 0x5EED_F11E_5BE7_C400;

/// What was generated, per kind of file.
#[derive(Default)]
pub struct TreeStats {
    pub kinds: BTreeMap<&'static str, (u64, u64)>,
    pub dirs: u64,
}

impl TreeStats {
    pub fn bytes(&self) -> u64 {
        self.kinds.values().map(|k| k.1).sum()
    }

    pub fn files(&self) -> u64 {
        self.kinds.values().map(|k| k.0).sum()
    }
}

const ASSET_EXT: &[&str] = &["png", "jpg", "woff2", "webp", "gz", "mp4", "zip"];
const SOURCE_EXT: &[&str] = &["ts", "ts", "tsx", "js", "rs", "sql", "css"];

/// Generates the tree under `root`, `total` bytes of file contents. Byte shares: 30% source
/// text (1-64 KiB files), 38% logs and JSON exports (1-32 MiB), 25% random "compressed"
/// assets (100 KiB - 20 MiB), 7% small files (1-8 KiB, in deeply nested package dirs).
pub fn generate_tree(root: &Path, total: u64) -> Result<TreeStats> {
    let mut rng = Rng::new(SEED);
    let mut stats = TreeStats::default();
    let gen = Gen::new(&mut rng);
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
