//! Packs: many sealed blobs in one object, followed by a sealed header that
//! lists them, then the header's length as a little-endian `u32`.

use crate::crypto::Cipher;
use crate::error::{Error, Result};
use crate::id::Id;
use serde::{Deserialize, Serialize};

/// What a blob holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BlobKind {
    /// A chunk of a file or a stream.
    Data,
    /// A chunk of a serialized file listing.
    Tree,
}

impl BlobKind {
    fn code(self) -> u8 {
        match self {
            BlobKind::Data => 0,
            BlobKind::Tree => 1,
        }
    }
    fn from_code(c: u8) -> Result<Self> {
        match c {
            0 => Ok(BlobKind::Data),
            1 => Ok(BlobKind::Tree),
            _ => Err(Error::corrupt(format!(
                "unknown blob type {c} in a pack header"
            ))),
        }
    }
}

/// One blob in a pack.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PackedBlob {
    /// The blob id (of its plaintext).
    pub id: Id,
    /// What it holds.
    #[serde(rename = "type")]
    pub kind: BlobKind,
    /// Byte offset of the sealed blob in the pack.
    pub offset: u32,
    /// Sealed length in the pack.
    pub length: u32,
    /// Plaintext length.
    pub raw_length: u32,
    /// Whether the sealed content is zstd-compressed.
    pub compressed: bool,
    /// Whether the compressed content is in column-major row layout
    /// (see [`super::transpose`]); only with `compressed`.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub rows: bool,
}

/// How a blob's plaintext is stored in its sealed bytes: the compression
/// byte of a pack header entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Coding {
    /// As is (`0`).
    Stored,
    /// zstd (`1`).
    Zstd,
    /// zstd of the column-major row layout (`2`).
    ZstdRows,
}

impl Coding {
    fn code(self) -> u8 {
        match self {
            Coding::Stored => 0,
            Coding::Zstd => 1,
            Coding::ZstdRows => 2,
        }
    }

    fn from_code(c: u8) -> Result<Self> {
        match c {
            0 => Ok(Coding::Stored),
            1 => Ok(Coding::Zstd),
            2 => Ok(Coding::ZstdRows),
            _ => Err(Error::corrupt(format!(
                "unknown compression {c} in a pack header: the pack is damaged, or was written by a newer version of backup (upgrade to read it)"
            ))),
        }
    }

    /// The coding of `compressed` and `rows` flags.
    pub fn of(compressed: bool, rows: bool) -> Coding {
        match (compressed, rows) {
            (false, _) => Coding::Stored,
            (true, false) => Coding::Zstd,
            (true, true) => Coding::ZstdRows,
        }
    }
}

impl PackedBlob {
    /// How this blob is stored.
    pub fn coding(&self) -> Coding {
        Coding::of(self.compressed, self.rows)
    }
}

/// Size of one header entry: type, compression, stored length, raw length, id.
pub const HEADER_ENTRY_LEN: usize = 1 + 1 + 4 + 4 + 32;

/// What a blob holds, as far as compression is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Content {
    /// Anything: the level's own zstd parameters.
    #[default]
    General,
    /// Rows of text (`COPY` output): short repeats of a few bytes are not
    /// worth a match there, so matches shorter than 7 bytes are skipped,
    /// which both shrinks the output and speeds zstd up on such data.
    Rows,
}

/// A reusable zstd context with the repository's level: one per thread,
/// so that tables are not allocated again for every blob.
pub struct BlobEncoder {
    general: zstd::bulk::Compressor<'static>,
    rows: zstd::bulk::Compressor<'static>,
}

impl BlobEncoder {
    /// An encoder at `level`.
    pub fn new(level: i32) -> std::io::Result<BlobEncoder> {
        let general = zstd::bulk::Compressor::new(level)?;
        let mut rows = zstd::bulk::Compressor::new(level)?;
        rows.set_parameter(zstd::zstd_safe::CParameter::MinMatch(7))?;
        Ok(BlobEncoder { general, rows })
    }

    /// Compresses (when that saves space) and seals a blob's plaintext.
    /// Returns the sealed bytes and how they are coded. Rows are first
    /// laid out column by column when they are regular enough.
    pub fn encode(&mut self, cipher: &Cipher, plain: &[u8], content: Content) -> (Vec<u8>, Coding) {
        if content == Content::Rows {
            if let Some(t) = super::transpose::transpose(plain) {
                if let Ok(c) = self.rows.compress(&t) {
                    if c.len() + 16 < plain.len() {
                        return (cipher.seal(&c), Coding::ZstdRows);
                    }
                }
            }
        }
        let z = match content {
            Content::General => &mut self.general,
            Content::Rows => &mut self.rows,
        };
        match z.compress(plain).ok() {
            Some(c) if c.len() + 16 < plain.len() => (cipher.seal(&c), Coding::Zstd),
            _ => (cipher.seal(plain), Coding::Stored),
        }
    }
}

thread_local! {
    /// One decompression context per thread: creating one per blob costs
    /// more than decompressing a small blob.
    static DECOMPRESSOR: std::cell::RefCell<Option<zstd::bulk::Decompressor<'static>>> =
        const { std::cell::RefCell::new(None) };
}

/// Decompresses `data` into at most `capacity` bytes with this thread's
/// context.
fn decompress(data: &[u8], capacity: usize) -> std::io::Result<Vec<u8>> {
    DECOMPRESSOR.with(|cell| {
        let mut slot = cell.borrow_mut();
        if slot.is_none() {
            *slot = Some(zstd::bulk::Decompressor::new()?);
        }
        slot.as_mut().expect("set above").decompress(data, capacity)
    })
}

/// Opens, decompresses and checks one sealed blob against its id.
pub fn decode_blob(
    cipher: &Cipher,
    blob: &PackedBlob,
    sealed: &[u8],
    pack: &Id,
) -> Result<Vec<u8>> {
    let what = format!("blob {} in pack {}", blob.id.short(), pack);
    let opened = cipher.open(sealed, &what)?;
    let plain = match blob.coding() {
        Coding::Stored => opened,
        Coding::Zstd => decompress(&opened, blob.raw_length as usize)
            .map_err(|e| Error::corrupt(format!("{what} does not decompress: {e}")))?,
        Coding::ZstdRows => {
            let t = decompress(&opened, blob.raw_length as usize + 12)
                .map_err(|e| Error::corrupt(format!("{what} does not decompress: {e}")))?;
            super::transpose::untranspose(&t)
                .ok_or_else(|| Error::corrupt(format!("{what} has a damaged row layout")))?
        }
    };
    if plain.len() != blob.raw_length as usize || cipher.blob_id(&plain) != blob.id {
        return Err(Error::corrupt(format!(
            "{what} does not match its id: the pack is damaged"
        )));
    }
    Ok(plain)
}

/// Builds one pack in memory.
#[derive(Debug, Default)]
pub struct PackBuilder {
    data: Vec<u8>,
    blobs: Vec<PackedBlob>,
}

impl PackBuilder {
    /// An empty pack with room for `capacity` bytes.
    pub fn with_capacity(capacity: usize) -> Self {
        PackBuilder {
            data: Vec::with_capacity(capacity),
            blobs: Vec::new(),
        }
    }

    /// An empty pack that reuses `buffer` (cleared) for its bytes.
    pub fn with_buffer(mut buffer: Vec<u8>) -> Self {
        buffer.clear();
        PackBuilder {
            data: buffer,
            blobs: Vec::new(),
        }
    }

    /// Appends a sealed blob.
    pub fn add(&mut self, id: Id, kind: BlobKind, sealed: &[u8], raw_length: u32, coding: Coding) {
        self.blobs.push(PackedBlob {
            id,
            kind,
            offset: self.data.len() as u32,
            length: sealed.len() as u32,
            raw_length,
            compressed: coding != Coding::Stored,
            rows: coding == Coding::ZstdRows,
        });
        self.data.extend_from_slice(sealed);
    }

    /// Bytes of blob data so far.
    pub fn len(&self) -> usize {
        self.data.len()
    }

    /// Whether no blob was added.
    pub fn is_empty(&self) -> bool {
        self.blobs.is_empty()
    }

    /// Appends the sealed header and its length; returns the pack bytes,
    /// its id (SHA-256 of the bytes) and its blobs.
    pub fn finish(mut self, cipher: &Cipher) -> (Vec<u8>, Id, Vec<PackedBlob>) {
        let mut header = Vec::with_capacity(self.blobs.len() * HEADER_ENTRY_LEN);
        for b in &self.blobs {
            header.push(b.kind.code());
            header.push(b.coding().code());
            header.extend_from_slice(&b.length.to_le_bytes());
            header.extend_from_slice(&b.raw_length.to_le_bytes());
            header.extend_from_slice(&b.id.0);
        }
        let sealed = cipher.seal(&header);
        self.data.extend_from_slice(&sealed);
        self.data
            .extend_from_slice(&(sealed.len() as u32).to_le_bytes());
        let id = Id::sha256(&self.data);
        (self.data, id, self.blobs)
    }
}

/// Parses a pack header. `sealed_header` is the sealed header bytes (without
/// the trailing length).
pub fn parse_header(cipher: &Cipher, sealed_header: &[u8], pack: &Id) -> Result<Vec<PackedBlob>> {
    let header = cipher.open(sealed_header, &format!("header of pack {pack}"))?;
    if header.len() % HEADER_ENTRY_LEN != 0 {
        return Err(Error::corrupt(format!(
            "header of pack {pack} has a bad length"
        )));
    }
    let mut offset = 0u32;
    let mut out = Vec::with_capacity(header.len() / HEADER_ENTRY_LEN);
    for e in header.chunks_exact(HEADER_ENTRY_LEN) {
        let length = u32::from_le_bytes(e[2..6].try_into().expect("4 bytes"));
        let raw_length = u32::from_le_bytes(e[6..10].try_into().expect("4 bytes"));
        let mut id = [0u8; 32];
        id.copy_from_slice(&e[10..42]);
        let coding = Coding::from_code(e[1])?;
        out.push(PackedBlob {
            id: Id(id),
            kind: BlobKind::from_code(e[0])?,
            offset,
            length,
            raw_length,
            compressed: coding != Coding::Stored,
            rows: coding == Coding::ZstdRows,
        });
        offset = offset
            .checked_add(length)
            .ok_or_else(|| Error::corrupt(format!("header of pack {pack} overflows")))?;
    }
    Ok(out)
}

/// Splits a whole pack into its header's blob list, checking that the blobs
/// and the header exactly fill the pack.
pub fn parse_pack(cipher: &Cipher, pack: &[u8], id: &Id) -> Result<Vec<PackedBlob>> {
    if pack.len() < 4 {
        return Err(Error::corrupt(format!("pack {id} is too short")));
    }
    let hlen = u32::from_le_bytes(pack[pack.len() - 4..].try_into().expect("4 bytes")) as usize;
    if hlen + 4 > pack.len() {
        return Err(Error::corrupt(format!("pack {id} has a bad header length")));
    }
    let start = pack.len() - 4 - hlen;
    let blobs = parse_header(cipher, &pack[start..pack.len() - 4], id)?;
    let end = blobs
        .last()
        .map(|b| (b.offset + b.length) as usize)
        .unwrap_or(0);
    if end != start {
        return Err(Error::corrupt(format!(
            "pack {id}: its header does not account for its data"
        )));
    }
    Ok(blobs)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::MasterKey;

    #[test]
    fn pack_round_trip() {
        for cipher in [
            Cipher::plaintext(),
            Cipher::encrypted(&MasterKey::generate()),
        ] {
            let mut pb = PackBuilder::default();
            let rows: Vec<u8> = (0..200)
                .flat_map(|i| format!("{i}\tcustomer {i}\t2024-01-01\n").into_bytes())
                .collect();
            let plains: Vec<Vec<u8>> = vec![
                vec![7u8; 5000],
                b"short".to_vec(),
                (0..=255).collect(),
                rows,
            ];
            let mut encoder = BlobEncoder::new(3).unwrap();
            for p in &plains {
                let (sealed, c) = encoder.encode(&cipher, p, Content::Rows);
                pb.add(
                    cipher.blob_id(p),
                    BlobKind::Data,
                    &sealed,
                    p.len() as u32,
                    c,
                );
            }
            let (bytes, id, blobs) = pb.finish(&cipher);
            assert_eq!(id, Id::sha256(&bytes));
            let parsed = parse_pack(&cipher, &bytes, &id).unwrap();
            assert_eq!(parsed, blobs);
            assert!(parsed[0].compressed);
            assert!(!parsed[2].compressed);
            assert_eq!(parsed[3].coding(), Coding::ZstdRows);
            for (b, p) in parsed.iter().zip(&plains) {
                let s = &bytes[b.offset as usize..(b.offset + b.length) as usize];
                assert_eq!(&decode_blob(&cipher, b, s, &id).unwrap(), p);
            }
            if !cipher.is_encrypted() {
                // The header is in the clear: an unknown compression code is refused.
                let mut newer = bytes.clone();
                let header_start = newer.len() - 4 - blobs.len() * HEADER_ENTRY_LEN;
                newer[header_start + 1] = 3;
                let e = parse_pack(&cipher, &newer, &id).unwrap_err();
                assert!(e.to_string().contains("newer version"), "{e}");
            }
            let mut bad = bytes.clone();
            bad[3] ^= 0x40;
            let b = &parsed[0];
            let s = &bad[b.offset as usize..(b.offset + b.length) as usize];
            assert!(decode_blob(&cipher, b, s, &id).is_err());
        }
    }
}
