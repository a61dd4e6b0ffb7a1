//! The small tree and its history: generated once from a seed, then changed a little before
//! every snapshot (files rewritten, edited, added and removed), the same way on every run.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use filetime::FileTime;

use crate::rng::Rng;
use crate::support::{Result, KIB};
use crate::text::Gen;

/// Seed of the tree and its changes: the same number of snapshots gives the same history.
const SEED: u64 = 0x5EED_0F9E_7E20_2400;
/// Files in the first state, and the number the adds and removals keep it near.
const FILES: usize = 200;
/// Directories the files are spread over.
const DIRS: &[&str] = &[
    "src/api",
    "src/core",
    "src/ui",
    "src/db",
    "config",
    "data/export",
    "var/log",
    "public/assets",
];
/// File sizes, uniform in this range.
const MIN_SIZE: u64 = KIB;
const MAX_SIZE: u64 = 64 * KIB;
/// Files rewritten or edited in place each round.
const CHANGED_PER_ROUND: u64 = 4;

/// What a file holds: text compresses (about 4x with zstd), random bytes do not.
#[derive(Clone, Copy)]
enum Kind {
    Source,
    Log,
    Json,
    Random,
}

impl Kind {
    /// 40% source, 15% logs, 10% JSON lines, 35% random bytes.
    fn pick(rng: &mut Rng) -> Self {
        match rng.below(20) {
            0..=7 => Kind::Source,
            8..=10 => Kind::Log,
            11 | 12 => Kind::Json,
            _ => Kind::Random,
        }
    }

    fn ext(self) -> &'static str {
        match self {
            Kind::Source => "ts",
            Kind::Log => "log",
            Kind::Json => "json",
            Kind::Random => "bin",
        }
    }
}

/// What the changes of every round added up to.
#[derive(Default)]
pub struct Churn {
    pub rewritten: u64,
    pub edited: u64,
    pub added: u64,
    pub removed: u64,
    /// Bytes of new content written (whole files rewritten or added, edited ranges).
    pub bytes: u64,
}

/// The live tree: its files (relative path → kind) and the generators of its content.
pub struct Tree {
    pub root: PathBuf,
    rng: Rng,
    gen: Gen,
    files: BTreeMap<String, Kind>,
    next: u64,
    pub churn: Churn,
}

impl Tree {
    /// Generates the first state under `root` (which must not exist), every file with mtime
    /// `time` (Unix seconds).
    pub fn generate(root: &Path, time: i64) -> Result<Self> {
        let mut rng = Rng::new(SEED);
        let gen = Gen::new(&mut rng);
        let mut tree = Self {
            root: root.to_path_buf(),
            rng,
            gen,
            files: BTreeMap::new(),
            next: 0,
            churn: Churn::default(),
        };
        for dir in DIRS {
            fs::create_dir_all(root.join(dir))?;
        }
        for _ in 0..FILES {
            tree.add(time)?;
        }
        tree.churn = Churn::default();
        Ok(tree)
    }

    /// The number of files and their total size.
    pub fn size(&self) -> Result<(usize, u64)> {
        let mut bytes = 0;
        for rel in self.files.keys() {
            bytes += fs::metadata(self.root.join(rel))?.len();
        }
        Ok((self.files.len(), bytes))
    }

    /// One round of changes, dated `time` (Unix seconds): `CHANGED_PER_ROUND` files rewritten
    /// (half of them on average) or edited in place (a range overwritten, text appended), 0-2
    /// files added and 0-2 removed, one more of either while the tree is below or above
    /// `FILES` files. About 3.5% of the files per round.
    pub fn change(&mut self, time: i64) -> Result<()> {
        for _ in 0..CHANGED_PER_ROUND {
            let (rel, kind) = self.pick();
            if self.rng.below(2) == 0 {
                self.rewrite(&rel, kind, time)?;
            } else {
                self.edit(&rel, kind, time)?;
            }
        }
        let below = u64::from(self.files.len() < FILES);
        let above = u64::from(self.files.len() > FILES);
        let adds = self.rng.below(3) + below;
        let removals = self.rng.below(3) + above;
        for _ in 0..removals {
            let (rel, _) = self.pick();
            fs::remove_file(self.root.join(&rel))?;
            self.files.remove(&rel);
            self.churn.removed += 1;
        }
        for _ in 0..adds {
            self.add(time)?;
            self.churn.added += 1;
        }
        Ok(())
    }

    /// A file chosen uniformly.
    fn pick(&mut self) -> (String, Kind) {
        let i = self.rng.below(self.files.len() as u64) as usize;
        let (rel, kind) = self.files.iter().nth(i).expect("the tree is never empty");
        (rel.clone(), *kind)
    }

    /// A new file of a random kind and size in one of the directories.
    fn add(&mut self, time: i64) -> Result<()> {
        let kind = Kind::pick(&mut self.rng);
        let dir = *self.rng.pick(DIRS);
        let ident = &self.gen.idents[self.rng.below(2000) as usize];
        let rel = format!("{dir}/{ident}-{:05}.{}", self.next, kind.ext());
        self.next += 1;
        self.churn.bytes += self.write_new(&rel, kind, time)?;
        self.files.insert(rel, kind);
        Ok(())
    }

    /// Replaces the content of `rel` with new content of a new size.
    fn rewrite(&mut self, rel: &str, kind: Kind, time: i64) -> Result<()> {
        self.churn.bytes += self.write_new(rel, kind, time)?;
        self.churn.rewritten += 1;
        Ok(())
    }

    /// Writes new content of a random size to `rel`; returns the size.
    fn write_new(&mut self, rel: &str, kind: Kind, time: i64) -> Result<u64> {
        let size = self.rng.range(MIN_SIZE, MAX_SIZE);
        let mut buf = Vec::with_capacity(size as usize);
        self.content(kind, &mut buf, size as usize);
        self.write(rel, &buf, time)?;
        Ok(size)
    }

    /// Overwrites a range of up to a quarter of `rel` with new content, and for text appends
    /// up to 2 KiB (never beyond the largest size).
    fn edit(&mut self, rel: &str, kind: Kind, time: i64) -> Result<()> {
        let mut data = fs::read(self.root.join(rel))?;
        let len = self.rng.range(1, (data.len() as u64 / 4).max(1)) as usize;
        let at = self.rng.below((data.len() - len + 1) as u64) as usize;
        let mut patch = Vec::with_capacity(len);
        self.content(kind, &mut patch, len);
        data[at..at + len].copy_from_slice(&patch);
        let mut written = len as u64;
        if !matches!(kind, Kind::Random) && (data.len() as u64) < MAX_SIZE {
            let extra = self.rng.range(1, 2 * KIB).min(MAX_SIZE - data.len() as u64) as usize;
            let mut tail = Vec::with_capacity(extra);
            self.content(kind, &mut tail, extra);
            data.extend_from_slice(&tail);
            written += extra as u64;
        }
        self.write(rel, &data, time)?;
        self.churn.edited += 1;
        self.churn.bytes += written;
        Ok(())
    }

    fn content(&mut self, kind: Kind, buf: &mut Vec<u8>, len: usize) {
        match kind {
            Kind::Source => self.gen.source(&mut self.rng, buf, len),
            Kind::Log => {
                let n = self.rng.below(1000);
                self.gen.log(&mut self.rng, buf, len, n)
            }
            Kind::Json => self.gen.json(&mut self.rng, buf, len),
            Kind::Random => self.rng.fill(buf, len),
        }
    }

    /// Writes `data` to `rel` and dates it `time`, so that both tools see a changed mtime.
    fn write(&self, rel: &str, data: &[u8], time: i64) -> Result<()> {
        let path = self.root.join(rel);
        fs::write(&path, data)?;
        filetime::set_file_mtime(&path, FileTime::from_unix_time(time, 0))?;
        Ok(())
    }
}

/// Compares the restored tree `restored` with the live tree `live`: the same relative paths,
/// file types, contents and mtimes (whole seconds). Returns the number of files compared.
pub fn compare(live: &Path, restored: &Path) -> Result<usize> {
    let list = |root: &Path| -> Result<BTreeMap<PathBuf, fs::Metadata>> {
        let mut out = BTreeMap::new();
        for entry in walkdir::WalkDir::new(root).min_depth(1) {
            let entry = entry?;
            let rel = entry.path().strip_prefix(root)?.to_path_buf();
            out.insert(rel, entry.metadata()?);
        }
        Ok(out)
    };
    let a = list(live)?;
    let b = list(restored)?;
    if let Some(p) = a.keys().find(|p| !b.contains_key(*p)) {
        return Err(format!("restore: {} is missing", p.display()).into());
    }
    if let Some(p) = b.keys().find(|p| !a.contains_key(*p)) {
        return Err(format!("restore: {} is not in the tree", p.display()).into());
    }
    let mut files = 0;
    for (rel, meta) in &a {
        let other = &b[rel];
        if meta.file_type() != other.file_type() {
            return Err(format!("restore: {} has another file type", rel.display()).into());
        }
        if !meta.is_file() {
            continue;
        }
        if fs::read(live.join(rel))? != fs::read(restored.join(rel))? {
            return Err(format!("restore: {} differs", rel.display()).into());
        }
        let (m1, m2) = (
            FileTime::from_last_modification_time(meta).unix_seconds(),
            FileTime::from_last_modification_time(other).unix_seconds(),
        );
        if m1 != m2 {
            return Err(format!("restore: {} has mtime {m2}, not {m1}", rel.display()).into());
        }
        files += 1;
    }
    Ok(files)
}
