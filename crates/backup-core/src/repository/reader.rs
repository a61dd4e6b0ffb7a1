//! Reading a stored stream back blob by blob, checking its SHA-256.

use super::Repository;
use crate::error::{Error, Result};
use crate::id::Id;
use sha2::{Digest, Sha256};
use std::io::Read;

/// Reads a stream stored as blobs (each checked against its id as it is
/// read); [`StreamReader::check`] then compares the whole against the
/// length and SHA-256 recorded at capture.
pub struct StreamReader<'a> {
    repo: &'a Repository,
    blobs: &'a [Id],
    size: u64,
    sha256: &'a str,
    next: usize,
    buf: Vec<u8>,
    pos: usize,
    hasher: Sha256,
    read: u64,
    what: String,
}

impl<'a> StreamReader<'a> {
    /// Opens a stream of `blobs` that should hold `size` bytes with this
    /// SHA-256 (hex); `what` names it in errors.
    pub fn new(
        repo: &'a Repository,
        blobs: &'a [Id],
        size: u64,
        sha256: &'a str,
        what: String,
    ) -> Self {
        StreamReader {
            repo,
            blobs,
            size,
            sha256,
            next: 0,
            buf: Vec::new(),
            pos: 0,
            hasher: Sha256::new(),
            read: 0,
            what,
        }
    }

    /// Checks that everything was read and matches; returns the SHA-256.
    pub fn check(self) -> Result<String> {
        let got = hex::encode(self.hasher.finalize());
        if self.read != self.size || got != self.sha256 {
            return Err(Error::corrupt(format!(
                "{} does not match its SHA-256 in the snapshot: the repository is damaged (run `backup verify --read-data`)",
                self.what
            )));
        }
        Ok(got)
    }
}

impl Read for StreamReader<'_> {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        while self.pos == self.buf.len() {
            let Some(b) = self.blobs.get(self.next) else {
                return Ok(0);
            };
            self.buf = self.repo.read_blob(b).map_err(std::io::Error::other)?;
            self.hasher.update(&self.buf);
            self.read += self.buf.len() as u64;
            self.pos = 0;
            self.next += 1;
        }
        let n = out.len().min(self.buf.len() - self.pos);
        out[..n].copy_from_slice(&self.buf[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}
