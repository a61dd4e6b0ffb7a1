//! The write path: chunk, deduplicate, compress, seal, pack, upload, index.
//!
//! Sources hand data to a [`Saver`]. The caller's thread chunks the data
//! and computes ids; new blobs go through a bounded channel to compression
//! workers, then to one packer, then to uploader threads that store packs and
//! write index objects as they go (so that a killed run leaves reusable
//! packs). Channels are bounded, so memory stays flat whatever the input.

use super::index::{IndexFile, IndexPack};
use super::pack::{BlobEncoder, BlobKind, Coding, Content, PackBuilder, PackedBlob};
use super::Repository;
use crate::error::{Error, Result};
use crate::id::Id;
use crate::store::Kind;
use crossbeam_channel::{bounded, Receiver, Sender};
use sha2::{Digest, Sha256};
use std::collections::HashSet;
use std::io::Read;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

/// Counters of one save run.
#[derive(Debug, Clone, Copy, Default, serde::Serialize)]
pub struct SaveStats {
    /// Plaintext bytes handed to the saver.
    pub bytes_in: u64,
    /// Blobs handed to the saver.
    pub blobs_in: u64,
    /// Blobs that were new (not yet stored).
    pub new_blobs: u64,
    /// Plaintext bytes of the new blobs.
    pub new_bytes: u64,
    /// Bytes written to storage (packs and index objects).
    pub stored_bytes: u64,
    /// Packs written.
    pub packs: u64,
}

/// A stream stored as blobs.
#[derive(Debug, Clone, Default)]
pub struct StoredStream {
    /// Length in bytes.
    pub size: u64,
    /// SHA-256 of the whole stream (hex).
    pub sha256: String,
    /// The blobs, in order.
    pub blobs: Vec<Id>,
}

struct Job {
    id: Id,
    kind: BlobKind,
    content: Content,
    data: Vec<u8>,
}

struct Sealed {
    id: Id,
    kind: BlobKind,
    sealed: Vec<u8>,
    raw_length: u32,
    coding: Coding,
}

struct FinishedPack {
    id: Id,
    bytes: Vec<u8>,
    blobs: Vec<PackedBlob>,
}

#[derive(Default)]
struct Shared {
    error: Mutex<Option<Error>>,
    stats: Mutex<SaveStats>,
    pending: Mutex<IndexFile>,
    written: Mutex<Vec<IndexPack>>,
}

impl Shared {
    fn fail(&self, e: Error) {
        let mut g = self.error.lock().expect("lock");
        if g.is_none() {
            *g = Some(e);
        }
    }
    fn failed(&self) -> bool {
        self.error.lock().expect("lock").is_some()
    }
}

/// Packs written per index object while a run goes on.
const PACKS_PER_INDEX: usize = 8;

/// Saves blobs into a repository. Create one per run; call
/// [`Saver::finish`] to flush (nothing is committed until a snapshot is
/// written after it).
pub struct Saver {
    repo: Repository,
    known: Mutex<HashSet<Id>>,
    shared: Arc<Shared>,
    jobs: Option<Sender<Job>>,
    threads: Vec<JoinHandle<()>>,
}

impl std::fmt::Debug for Saver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Saver")
    }
}

impl Saver {
    /// Starts the pipeline with `workers` compression threads.
    pub fn new(repo: &Repository, workers: usize) -> Saver {
        let workers = workers.max(1);
        let shared = Arc::new(Shared::default());
        let (job_tx, job_rx) = bounded::<Job>(workers * 2);
        let (sealed_tx, sealed_rx) = bounded::<Sealed>(workers * 8);
        // A rendezvous: a finished pack waits in the packer, not in a
        // queue, so at most one pack is built while each uploader holds one.
        let (pack_tx, pack_rx) = bounded::<FinishedPack>(0);
        // Stored packs' buffers go back to the packer: one thread allocates
        // them, so no thread's malloc arena keeps freed packs resident.
        let (spare_tx, spare_rx) = bounded::<Vec<u8>>(2);
        let uploaders = repo.store().parallel_puts().max(1);
        let mut threads = Vec::new();
        for _ in 0..workers {
            let rx = job_rx.clone();
            let tx = sealed_tx.clone();
            let repo = repo.clone();
            let shared = shared.clone();
            threads.push(std::thread::spawn(move || {
                compress_worker(repo, rx, tx, shared)
            }));
        }
        drop(sealed_tx);
        {
            let repo = repo.clone();
            let shared = shared.clone();
            threads.push(std::thread::spawn(move || {
                packer(repo, sealed_rx, pack_tx, spare_rx, shared)
            }));
        }
        for _ in 0..uploaders {
            let repo = repo.clone();
            let shared = shared.clone();
            let rx = pack_rx.clone();
            let spare = spare_tx.clone();
            threads.push(std::thread::spawn(move || {
                uploader(repo, rx, spare, shared)
            }));
        }
        Saver {
            repo: repo.clone(),
            known: Mutex::new(HashSet::new()),
            shared,
            jobs: Some(job_tx),
            threads,
        }
    }

    fn check(&self) -> Result<()> {
        if let Some(e) = self.shared.error.lock().expect("lock").as_ref() {
            return Err(Error::new(e.kind(), e.to_string()));
        }
        Ok(())
    }

    /// Adds one blob; returns its id and whether it was new.
    pub fn add(&self, kind: BlobKind, data: Vec<u8>) -> Result<(Id, bool)> {
        self.add_content(kind, Content::General, data)
    }

    /// Adds one blob, saying what it holds; returns its id and whether it was new.
    pub fn add_content(
        &self,
        kind: BlobKind,
        content: Content,
        data: Vec<u8>,
    ) -> Result<(Id, bool)> {
        self.check()?;
        let id = self.repo.cipher().blob_id(&data);
        let len = data.len() as u64;
        let is_new =
            !self.repo.index().contains(&id) && self.known.lock().expect("lock").insert(id);
        {
            let mut s = self.shared.stats.lock().expect("lock");
            s.bytes_in += len;
            s.blobs_in += 1;
            if is_new {
                s.new_blobs += 1;
                s.new_bytes += len;
            }
        }
        if is_new {
            let tx = self.jobs.as_ref().expect("saver is running");
            if tx
                .send(Job {
                    id,
                    kind,
                    content,
                    data,
                })
                .is_err()
            {
                self.check()?;
                return Err(Error::new(
                    crate::ErrorKind::Interrupted,
                    "the save pipeline stopped",
                ));
            }
        }
        Ok((id, is_new))
    }

    /// Chunks a reader with the repository's chunker and saves the chunks.
    /// `on_bytes` is called with each chunk's length (for progress).
    pub fn save_reader<R: Read>(
        &self,
        reader: R,
        kind: BlobKind,
        on_bytes: impl FnMut(u64),
    ) -> std::result::Result<StoredStream, StreamError> {
        self.save_content(reader, kind, Content::General, on_bytes)
    }

    /// Like [`Saver::save_reader`], saying what the stream holds, so that
    /// compression can suit it.
    pub fn save_content<R: Read>(
        &self,
        reader: R,
        kind: BlobKind,
        content: Content,
        mut on_bytes: impl FnMut(u64),
    ) -> std::result::Result<StoredStream, StreamError> {
        let p = self.repo.config().chunker;
        let chunker = fastcdc::v2020::StreamCDC::with_level_and_seed(
            reader,
            p.min_size,
            p.avg_size,
            p.max_size,
            fastcdc::v2020::Normalization::Level1,
            p.seed,
        );
        let mut hasher = Sha256::new();
        let mut out = StoredStream::default();
        for chunk in chunker {
            let chunk = chunk.map_err(|e| match e {
                fastcdc::v2020::Error::IoError(io) => StreamError::Read(io),
                other => StreamError::Read(std::io::Error::other(other.to_string())),
            })?;
            hasher.update(&chunk.data);
            out.size += chunk.data.len() as u64;
            on_bytes(chunk.data.len() as u64);
            let (id, _) = self
                .add_content(kind, content, chunk.data)
                .map_err(StreamError::Repo)?;
            out.blobs.push(id);
        }
        out.sha256 = hex::encode(hasher.finalize());
        Ok(out)
    }

    /// Saves a stream whose length is known. Streams no longer than the
    /// smallest chunk are read whole and stored as one blob (what the
    /// chunker would do), skipping its buffer.
    pub fn save_sized<R: Read>(
        &self,
        mut reader: R,
        size: u64,
        kind: BlobKind,
        mut on_bytes: impl FnMut(u64),
    ) -> std::result::Result<StoredStream, StreamError> {
        if size >= self.repo.config().chunker.min_size as u64 {
            return self.save_reader(reader, kind, on_bytes);
        }
        let mut data = Vec::with_capacity(size as usize + 1);
        (&mut reader)
            .take(self.repo.config().chunker.min_size as u64)
            .read_to_end(&mut data)
            .map_err(StreamError::Read)?;
        if data.len() as u64 >= self.repo.config().chunker.min_size as u64 {
            // It grew while we read it: chunk what we have and the rest.
            let rest = std::io::Cursor::new(data).chain(reader);
            return self.save_reader(rest, kind, on_bytes);
        }
        let mut out = StoredStream {
            size: data.len() as u64,
            sha256: hex::encode(Sha256::digest(&data)),
            blobs: Vec::new(),
        };
        on_bytes(out.size);
        if !data.is_empty() {
            out.blobs
                .push(self.add(kind, data).map_err(StreamError::Repo)?.0);
        }
        Ok(out)
    }

    /// Saves a byte buffer as a stream of blobs.
    pub fn save_bytes(&self, data: &[u8], kind: BlobKind) -> Result<StoredStream> {
        self.save_reader(data, kind, |_| {}).map_err(|e| match e {
            StreamError::Repo(e) => e,
            StreamError::Read(io) => Error::io("reading a buffer", io),
        })
    }

    /// Flushes the last pack and the index. On success every saved blob is
    /// stored and indexed.
    pub fn finish(mut self) -> Result<SaveStats> {
        self.jobs.take();
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
        self.check()?;
        flush_index(&self.repo, &self.shared)?;
        let written = std::mem::take(&mut *self.shared.written.lock().expect("lock"));
        for p in &written {
            self.repo.add_to_index(p);
        }
        let stats = *self.shared.stats.lock().expect("lock");
        Ok(stats)
    }

    /// A read guard on the repository index.
    pub fn index(&self) -> std::sync::RwLockReadGuard<'_, super::Index> {
        self.repo.index()
    }

    /// Counters so far.
    pub fn stats(&self) -> SaveStats {
        *self.shared.stats.lock().expect("lock")
    }
}

impl Drop for Saver {
    fn drop(&mut self) {
        self.jobs.take();
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

/// Why saving a stream failed: reading the source, or the repository.
#[derive(Debug)]
pub enum StreamError {
    /// The source could not be read.
    Read(std::io::Error),
    /// The repository write path failed.
    Repo(Error),
}

fn compress_worker(repo: Repository, rx: Receiver<Job>, tx: Sender<Sealed>, shared: Arc<Shared>) {
    let level = repo.config().compression_level;
    let mut encoder = match BlobEncoder::new(level) {
        Ok(e) => e,
        Err(e) => {
            shared.fail(Error::io("setting up zstd", e));
            return;
        }
    };
    for job in rx {
        let (sealed, coding) = encoder.encode(repo.cipher(), &job.data, job.content);
        let s = Sealed {
            id: job.id,
            kind: job.kind,
            sealed,
            raw_length: job.data.len() as u32,
            coding,
        };
        if tx.send(s).is_err() {
            return;
        }
    }
}

fn packer(
    repo: Repository,
    rx: Receiver<Sealed>,
    tx: Sender<FinishedPack>,
    back: Receiver<Vec<u8>>,
    shared: Arc<Shared>,
) {
    let target = repo.config().pack_size as usize;
    // A store that releases a written buffer early is worth waiting for:
    // then one pack buffer serves the whole run.
    let wait = repo.store().releases_early();
    let mut sent = 0usize;
    let fresh = |sent: usize| {
        let recycled = if wait && sent > 0 {
            back.recv().ok()
        } else {
            back.try_recv().ok()
        };
        match recycled {
            Some(buffer) => PackBuilder::with_buffer(buffer),
            None => PackBuilder::with_capacity(target + 4 * 1024 * 1024),
        }
    };
    let mut pack = fresh(sent);
    for s in rx {
        if shared.failed() {
            continue;
        }
        pack.add(s.id, s.kind, &s.sealed, s.raw_length, s.coding);
        drop(s);
        if pack.len() >= target {
            let (bytes, id, blobs) = pack.finish(repo.cipher());
            if tx.send(FinishedPack { id, bytes, blobs }).is_err() {
                return;
            }
            sent += 1;
            pack = fresh(sent);
        }
    }
    if !pack.is_empty() && !shared.failed() {
        let (bytes, id, blobs) = pack.finish(repo.cipher());
        let _ = tx.send(FinishedPack { id, bytes, blobs });
    }
}

fn uploader(
    repo: Repository,
    rx: Receiver<FinishedPack>,
    back: Sender<Vec<u8>>,
    shared: Arc<Shared>,
) {
    // Full: the packer allocates a new buffer instead.
    let mut release = |buffer: Vec<u8>| {
        let _ = back.try_send(buffer);
    };
    for p in rx {
        store_pack(&repo, &shared, p, &mut release);
    }
}

/// Stores one pack and queues it for the index; its buffer goes to
/// `release` (in every case, so that a waiting packer never hangs).
fn store_pack(
    repo: &Repository,
    shared: &Shared,
    p: FinishedPack,
    release: &mut dyn FnMut(Vec<u8>),
) {
    if shared.failed() {
        release(p.bytes);
        return;
    }
    let name = p.id.to_hex();
    let size = p.bytes.len() as u64;
    if let Err(e) = repo.store().put_owned(Kind::Pack, &name, p.bytes, release) {
        shared.fail(e.context(format!("storing pack {name}")));
        return;
    }
    {
        let mut s = shared.stats.lock().expect("lock");
        s.stored_bytes += size;
        s.packs += 1;
    }
    let entry = IndexPack {
        id: p.id,
        size,
        blobs: p.blobs,
    };
    let flush = {
        let mut pending = shared.pending.lock().expect("lock");
        pending.packs.push(entry);
        pending.packs.len() >= PACKS_PER_INDEX
    };
    if flush {
        if let Err(e) = flush_index(repo, shared) {
            shared.fail(e);
        }
    }
}

fn flush_index(repo: &Repository, shared: &Shared) -> Result<()> {
    let file = std::mem::take(&mut *shared.pending.lock().expect("lock"));
    if file.packs.is_empty() {
        return Ok(());
    }
    let data = file.encode(repo.cipher())?;
    let name = Id::sha256(&data).to_hex();
    repo.store()
        .put(Kind::Index, &name, &data)
        .map_err(|e| e.context("storing an index object"))?;
    shared.stats.lock().expect("lock").stored_bytes += data.len() as u64;
    shared.written.lock().expect("lock").extend(file.packs);
    Ok(())
}
