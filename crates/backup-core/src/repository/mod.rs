//! The repository: config, keys, index, blobs and snapshots on a store.

mod config;
mod index;
mod key;
mod lock;
mod pack;
mod reader;
mod saver;
mod transpose;

pub(crate) use config::canonical_json;
pub use config::{ChunkerParams, Config, FORMAT_NAME, FORMAT_VERSION};
pub use index::{BlobLocation, Index, IndexFile, IndexPack};
pub use key::{open_master_key, KeyFile};
pub use lock::Lock;
pub use pack::{
    decode_blob, parse_header, parse_pack, BlobEncoder, BlobKind, Coding, Content, PackBuilder,
    PackedBlob,
};
pub use reader::StreamReader;
pub use saver::{SaveStats, Saver, StoredStream, StreamError};

use crate::crypto::{Cipher, MasterKey};
use crate::error::{Error, ErrorKind, Result};
use crate::id::Id;
use crate::store::{Kind, ObjectStore};
use std::sync::{Arc, RwLock};

/// Options for `init`.
#[derive(Debug, Clone)]
pub struct InitOptions {
    /// The password (or key file bytes); `None` for an unencrypted repository.
    pub password: Option<Vec<u8>>,
    /// zstd level for new blobs.
    pub compression_level: i32,
    /// Chunker parameters.
    pub chunker: ChunkerParams,
    /// Target pack size in bytes.
    pub pack_size: u64,
}

impl Default for InitOptions {
    fn default() -> Self {
        InitOptions {
            password: None,
            compression_level: 3,
            chunker: ChunkerParams::default(),
            pack_size: 16 * 1024 * 1024,
        }
    }
}

/// An open repository. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Repository {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    store: Arc<dyn ObjectStore>,
    config: Config,
    cipher: Cipher,
    index: RwLock<Index>,
    damaged_indexes: RwLock<Vec<(String, Error)>>,
    /// The index objects the in-memory index was loaded from.
    index_names: RwLock<Vec<String>>,
    /// How long a lock may wait for conflicting ones to go, in ms.
    lock_wait_ms: std::sync::atomic::AtomicU64,
}

fn host_name() -> String {
    rustix::system::uname()
        .nodename()
        .to_string_lossy()
        .into_owned()
}

/// The local host name.
pub fn hostname() -> String {
    host_name()
}

impl Repository {
    /// Creates a new repository on an empty location. Returns the
    /// repository and, when encrypted, the id of its key object.
    pub fn init(
        store: Arc<dyn ObjectStore>,
        options: InitOptions,
    ) -> Result<(Repository, Option<Id>)> {
        Self::ensure_absent(store.as_ref())?;
        store.create()?;
        let mut id = [0u8; 16];
        rand::RngCore::fill_bytes(&mut rand::thread_rng(), &mut id);
        let (cipher, key_id) = match &options.password {
            Some(pw) => {
                let master = MasterKey::generate();
                let kf = KeyFile::wrap(&master, pw, &host_name())?;
                let key_id = kf.store(store.as_ref())?;
                (Cipher::encrypted(&master), Some(key_id))
            }
            None => (Cipher::plaintext(), None),
        };
        let mut chunker = options.chunker;
        chunker.seed = rand::RngCore::next_u64(&mut rand::thread_rng());
        let config = Config::new(
            hex::encode(id),
            cipher.is_encrypted(),
            options.compression_level,
            chunker,
            options.pack_size,
        );
        // The config is written last: a location with a config is a complete repository.
        // It is checked as every open checks it before it is written.
        let bytes = config.to_stored_bytes(&cipher)?;
        let config = Config::parse(&bytes, &store.location())?;
        config.check_mac(&cipher, &store.location())?;
        store.put(Kind::Config, "", &bytes)?;
        let repo = Repository::from_parts(store, config, cipher);
        Ok((repo, key_id))
    }

    fn from_parts(store: Arc<dyn ObjectStore>, config: Config, cipher: Cipher) -> Repository {
        Repository {
            inner: Arc::new(Inner {
                store,
                config,
                cipher,
                index: RwLock::new(Index::default()),
                damaged_indexes: RwLock::new(Vec::new()),
                index_names: RwLock::new(Vec::new()),
                lock_wait_ms: std::sync::atomic::AtomicU64::new(0),
            }),
        }
    }

    /// Reads and checks the `config` object of the repository at `store`
    /// (a caller can look at it, e.g. whether a password is needed, before
    /// opening with [`Repository::open_with`]).
    pub fn read_config(store: &dyn ObjectStore) -> Result<Config> {
        let loc = store.location();
        let data = store.get(Kind::Config, "").map_err(|e| {
            if e.kind() == ErrorKind::NotFound {
                Error::new(
                    ErrorKind::NotARepository,
                    format!(
                        "{loc} is not a backup repository (it has no config object): check \
                         the path, or create one with `backup init --repo {loc}`"
                    ),
                )
            } else {
                e
            }
        })?;
        Config::parse(&data, &loc)
    }

    /// Opens an existing repository and loads its index. Fails if an index
    /// object is damaged (use [`Repository::open_lenient`] to inspect one).
    pub fn open(store: Arc<dyn ObjectStore>, password: Option<&[u8]>) -> Result<Repository> {
        let config = Self::read_config(store.as_ref())?;
        Self::open_with(store, config, password, true)
    }

    /// Opens a repository, recording damaged index objects instead of
    /// failing on them.
    pub fn open_lenient(
        store: Arc<dyn ObjectStore>,
        password: Option<&[u8]>,
    ) -> Result<Repository> {
        let config = Self::read_config(store.as_ref())?;
        Self::open_with(store, config, password, false)
    }

    /// Opens a repository whose config was read with
    /// [`Repository::read_config`]; `strict` fails on damaged index objects.
    pub fn open_with(
        store: Arc<dyn ObjectStore>,
        config: Config,
        password: Option<&[u8]>,
        strict: bool,
    ) -> Result<Repository> {
        let loc = store.location();
        let cipher = if config.encrypted() {
            let pw = password.ok_or_else(|| {
                Error::new(
                    ErrorKind::WrongPassword,
                    format!(
                        "{loc} is encrypted: give its password with BACKUP_PASSWORD, \
                         BACKUP_PASSWORD_FILE or --password-file"
                    ),
                )
            })?;
            let cipher = Cipher::encrypted(&open_master_key(store.as_ref(), pw)?);
            config.check_mac(&cipher, &loc)?;
            cipher
        } else {
            // Key objects belong to an encrypted repository: a config that says
            // otherwise was altered (its MAC check would be skipped).
            if !store.list(Kind::Key)?.is_empty() {
                return Err(Error::corrupt(format!(
                    "the config object of {loc} says the repository is unencrypted, but it holds \
                     key objects (keys/): the config was altered or replaced; restore the \
                     config object from a backup copy of the repository"
                )));
            }
            Cipher::plaintext()
        };
        let repo = Repository::from_parts(store, config, cipher);
        repo.load_index()?;
        if strict {
            if let Some((name, err)) = repo.inner.damaged_indexes.read().expect("lock").first() {
                return Err(Error::corrupt(format!(
                    "index object index/{name} is damaged ({err}); run `backup verify` to see \
                     what is affected"
                )));
            }
        }
        Ok(repo)
    }

    /// Fails unless `store` holds no repository yet.
    pub fn ensure_absent(store: &dyn ObjectStore) -> Result<()> {
        if store.exists(Kind::Config, "")? {
            return Err(Error::usage(format!(
                "{} already holds a repository: use it, or choose another location",
                store.location()
            )));
        }
        Ok(())
    }

    /// (Re)loads every index object.
    pub fn load_index(&self) -> Result<()> {
        let listed = self.store().list(Kind::Index)?;
        self.load_index_objects(listed.into_iter().map(|o| o.name).collect())
    }

    /// Reloads the index if its objects changed since it was loaded (a
    /// prune rewrote it): taken with every lock, so that what a command
    /// reads or deduplicates against is what the repository holds.
    pub fn refresh_index(&self) -> Result<()> {
        let mut listed: Vec<String> = self
            .store()
            .list(Kind::Index)?
            .into_iter()
            .map(|o| o.name)
            .collect();
        listed.sort();
        if *self.inner.index_names.read().expect("lock") == listed {
            return Ok(());
        }
        self.load_index_objects(listed)
    }

    fn load_index_objects(&self, mut names: Vec<String>) -> Result<()> {
        names.sort();
        let mut index = Index::default();
        let mut damaged = Vec::new();
        let mut present = Vec::with_capacity(names.len());
        for name in names {
            // Listed but gone: deleted meanwhile (a prune), or a listing
            // that is behind (an eventually consistent store). Not damage.
            let data = match self.store().get(Kind::Index, &name) {
                Err(e) if e.kind() == ErrorKind::NotFound => continue,
                other => other?,
            };
            present.push(name.clone());
            let name = &name;
            match IndexFile::decode(&self.inner.cipher, &data, name) {
                Ok(f) => f.packs.iter().for_each(|p| index.add_pack(p)),
                Err(e) => damaged.push((name.clone(), e)),
            }
        }
        *self.inner.index.write().expect("lock") = index;
        *self.inner.damaged_indexes.write().expect("lock") = damaged;
        *self.inner.index_names.write().expect("lock") = present;
        Ok(())
    }

    /// Index objects that could not be read, with the reason.
    pub fn damaged_indexes(&self) -> Vec<(String, String)> {
        self.inner
            .damaged_indexes
            .read()
            .expect("lock")
            .iter()
            .map(|(n, e)| (n.clone(), e.to_string()))
            .collect()
    }

    /// Lets every lock this repository takes wait up to `wait` for
    /// conflicting locks to go (restic's `--retry-lock`) instead of failing
    /// at once.
    pub fn set_lock_wait(&self, wait: std::time::Duration) {
        let ms = u64::try_from(wait.as_millis()).unwrap_or(u64::MAX);
        self.inner
            .lock_wait_ms
            .store(ms, std::sync::atomic::Ordering::Relaxed);
    }

    /// How long a lock may wait (see [`Repository::set_lock_wait`]).
    pub fn lock_wait(&self) -> std::time::Duration {
        let ms = self
            .inner
            .lock_wait_ms
            .load(std::sync::atomic::Ordering::Relaxed);
        std::time::Duration::from_millis(ms)
    }

    /// The storage backend.
    pub fn store(&self) -> &Arc<dyn ObjectStore> {
        &self.inner.store
    }

    /// The repository configuration.
    pub fn config(&self) -> &Config {
        &self.inner.config
    }

    /// The cipher for sealing and opening objects.
    pub fn cipher(&self) -> &Cipher {
        &self.inner.cipher
    }

    /// A read guard on the in-memory index.
    pub fn index(&self) -> std::sync::RwLockReadGuard<'_, Index> {
        self.inner.index.read().expect("index lock")
    }

    pub(crate) fn add_to_index(&self, pack: &IndexPack) {
        self.inner.index.write().expect("index lock").add_pack(pack);
    }

    /// Reads, decrypts and checks one blob.
    pub fn read_blob(&self, id: &Id) -> Result<Vec<u8>> {
        let (loc, pack) = {
            let index = self.index();
            let loc = index.get(id).ok_or_else(|| {
                Error::corrupt(format!(
                    "blob {id} is referenced but not in the index: the repository is damaged"
                ))
            })?;
            (loc, index.pack_id(loc.pack))
        };
        let sealed = self
            .store()
            .get_range(
                Kind::Pack,
                &pack.to_hex(),
                loc.offset as u64,
                loc.length as u64,
            )
            .map_err(|e| pack_read_error(e, &pack.to_hex()))
            .map_err(|e| e.context(format!("reading blob {}", id.short())))?;
        decode_blob(self.cipher(), &loc.packed(*id), &sealed, &pack)
    }

    /// Reads a stream stored as a list of blobs.
    pub fn read_stream(&self, blobs: &[Id]) -> Result<Vec<u8>> {
        let mut out = Vec::new();
        for b in blobs {
            out.extend_from_slice(&self.read_blob(b)?);
        }
        Ok(out)
    }

    /// Seals and stores an object whose name is the SHA-256 of its stored
    /// bytes; returns that id.
    pub fn put_sealed(&self, kind: Kind, plain: &[u8]) -> Result<Id> {
        let sealed = self.cipher().seal(plain);
        let id = Id::sha256(&sealed);
        self.store().put(kind, &id.to_hex(), &sealed)?;
        Ok(id)
    }

    /// Reads an object written by [`Repository::put_sealed`], checking its
    /// name and authenticity.
    pub fn get_sealed(&self, kind: Kind, name: &str) -> Result<Vec<u8>> {
        let data = self.store().get(kind, name)?;
        let what = format!("{}/{name}", kind.dir());
        if Id::sha256(&data).to_hex() != name {
            return Err(Error::corrupt(format!(
                "object {what} does not match its name: it is damaged"
            )));
        }
        self.cipher().open(&data, &format!("object {what}"))
    }

    /// Indexes packs that are stored but in no index object (left by an
    /// interrupted run), so that their blobs are reused. Returns how many
    /// packs were recovered.
    pub fn recover_orphan_packs(&self) -> Result<usize> {
        let listed = self.store().list(Kind::Pack)?;
        let mut recovered = IndexFile::default();
        for info in listed {
            let Ok(id) = Id::from_hex(&info.name) else {
                continue;
            };
            if self.index().has_pack(&id) || info.size < 4 {
                continue;
            }
            let name = id.to_hex();
            // Listed but gone (a listing that is behind): nothing to recover.
            let tail = match self.store().get_range(Kind::Pack, &name, info.size - 4, 4) {
                Err(e) if e.kind() == ErrorKind::NotFound => continue,
                other => other?,
            };
            let hlen = u32::from_le_bytes(tail[..4].try_into().expect("4 bytes")) as u64;
            if hlen + 4 > info.size {
                continue;
            }
            let header = match self
                .store()
                .get_range(Kind::Pack, &name, info.size - 4 - hlen, hlen)
            {
                Err(e) if e.kind() == ErrorKind::NotFound => continue,
                other => other?,
            };
            match parse_header(self.cipher(), &header, &id) {
                Ok(blobs)
                    if blobs.iter().map(|b| b.length as u64).sum::<u64>() + hlen + 4
                        == info.size =>
                {
                    recovered.packs.push(IndexPack {
                        id,
                        size: info.size,
                        blobs,
                    })
                }
                _ => continue,
            }
        }
        let n = recovered.packs.len();
        if n > 0 {
            let data = recovered.encode(self.cipher())?;
            let name = Id::sha256(&data).to_hex();
            self.store().put(Kind::Index, &name, &data)?;
            for p in &recovered.packs {
                self.add_to_index(p);
            }
        }
        Ok(n)
    }
}

/// The error of a failed pack read: a pack the index lists but the store
/// lacks is damage (exit 3), not a usage error.
pub(crate) fn pack_read_error(e: Error, name: &str) -> Error {
    if e.kind() == ErrorKind::NotFound {
        Error::corrupt(format!(
            "pack {name} is missing from the repository although the index lists it: the \
             repository is damaged; run `backup verify` to see what it affects"
        ))
    } else {
        e.context(format!("reading pack {name}"))
    }
}
