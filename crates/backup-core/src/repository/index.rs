//! Index objects (which blob lives in which pack) and the in-memory index.

use super::pack::{BlobKind, PackedBlob};
use crate::crypto::Cipher;
use crate::error::{Error, Result};
use crate::id::Id;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;

/// One pack in an index object.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct IndexPack {
    /// The pack id (SHA-256 of its bytes, also its object name).
    pub id: Id,
    /// The pack's size in bytes.
    pub size: u64,
    /// Its blobs.
    pub blobs: Vec<PackedBlob>,
}

/// The content of an index object (before compression and sealing).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct IndexFile {
    /// The packs this index object describes.
    pub packs: Vec<IndexPack>,
}

impl IndexFile {
    /// Serializes, compresses and seals.
    pub fn encode(&self, cipher: &Cipher) -> Result<Vec<u8>> {
        let json = serde_json::to_vec(self)?;
        let z = zstd::bulk::compress(&json, 3).map_err(|e| Error::io("compressing an index", e))?;
        Ok(cipher.seal(&z))
    }

    /// Opens, decompresses and parses; `name` names the object in errors.
    pub fn decode(cipher: &Cipher, data: &[u8], name: &str) -> Result<IndexFile> {
        let what = format!("index object index/{name}");
        if Id::sha256(data).to_hex() != name {
            return Err(Error::corrupt(format!(
                "{what} does not match its name: it is damaged"
            )));
        }
        let z = cipher.open(data, &what)?;
        let json = zstd::stream::decode_all(&z[..])
            .map_err(|e| Error::corrupt(format!("{what} does not decompress: {e}")))?;
        serde_json::from_slice(&json)
            .map_err(|e| Error::corrupt(format!("{what} is malformed: {e}")))
    }
}

/// Where one blob is stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BlobLocation {
    /// Position of the pack in [`Index::packs`].
    pub pack: u32,
    /// What the blob holds.
    pub kind: BlobKind,
    /// Offset in the pack.
    pub offset: u32,
    /// Sealed length.
    pub length: u32,
    /// Plaintext length.
    pub raw_length: u32,
    /// Whether compressed.
    pub compressed: bool,
    /// Whether in column-major row layout.
    pub rows: bool,
}

impl BlobLocation {
    /// The header-style description of this blob.
    pub fn packed(&self, id: Id) -> PackedBlob {
        PackedBlob {
            id,
            kind: self.kind,
            offset: self.offset,
            length: self.length,
            raw_length: self.raw_length,
            compressed: self.compressed,
            rows: self.rows,
        }
    }
}

/// All index objects of a repository merged in memory.
#[derive(Debug, Default, Clone)]
pub struct Index {
    /// Known packs: id and size.
    pub packs: Vec<(Id, u64)>,
    pack_pos: HashMap<Id, u32>,
    blobs: HashMap<Id, BlobLocation>,
}

impl Index {
    /// Adds one pack's entries (later duplicates of a blob are ignored).
    pub fn add_pack(&mut self, pack: &IndexPack) {
        if self.pack_pos.contains_key(&pack.id) {
            return;
        }
        let pos = self.packs.len() as u32;
        self.packs.push((pack.id, pack.size));
        self.pack_pos.insert(pack.id, pos);
        for b in &pack.blobs {
            self.blobs.entry(b.id).or_insert(BlobLocation {
                pack: pos,
                kind: b.kind,
                offset: b.offset,
                length: b.length,
                raw_length: b.raw_length,
                compressed: b.compressed,
                rows: b.rows,
            });
        }
    }

    /// Where a blob lives.
    pub fn get(&self, id: &Id) -> Option<BlobLocation> {
        self.blobs.get(id).copied()
    }

    /// Whether the blob is stored.
    pub fn contains(&self, id: &Id) -> bool {
        self.blobs.contains_key(id)
    }

    /// Whether the pack is indexed.
    pub fn has_pack(&self, id: &Id) -> bool {
        self.pack_pos.contains_key(id)
    }

    /// The id of the pack at a position.
    pub fn pack_id(&self, pos: u32) -> Id {
        self.packs[pos as usize].0
    }

    /// Number of distinct blobs.
    pub fn blob_count(&self) -> usize {
        self.blobs.len()
    }

    /// Iterates over all blobs.
    pub fn iter(&self) -> impl Iterator<Item = (&Id, &BlobLocation)> {
        self.blobs.iter()
    }

    /// The pack-to-blobs view: for each pack position, the blobs the index
    /// places in it, by offset. Built in one pass over the blobs.
    pub fn by_pack(&self) -> Vec<Vec<(Id, BlobLocation)>> {
        let mut out = vec![Vec::new(); self.packs.len()];
        for (id, l) in &self.blobs {
            out[l.pack as usize].push((*id, *l));
        }
        for v in &mut out {
            v.sort_by_key(|(_, l)| l.offset);
        }
        out
    }
}
