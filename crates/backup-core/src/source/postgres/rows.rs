//! Row accounting of text `COPY` streams: row count and an order-independent
//! digest (the wrapping sum of the XXH3-128 of every row), so that a table
//! read back from a restored database can be compared with the capture
//! whatever the physical row order.

use std::io::Read;
use xxhash_rust::xxh3::{xxh3_128, Xxh3};

/// Running row count and digest of a text COPY stream.
#[derive(Clone)]
pub struct RowDigest {
    rows: u64,
    sum: u128,
    current: Xxh3,
    open: bool,
}

impl Default for RowDigest {
    fn default() -> Self {
        RowDigest {
            rows: 0,
            sum: 0,
            current: Xxh3::new(),
            open: false,
        }
    }
}

impl RowDigest {
    /// Feeds bytes of the stream.
    pub fn update(&mut self, mut data: &[u8]) {
        while let Some(i) = memchr::memchr(b'\n', data) {
            let row = if self.open {
                self.current.update(&data[..i]);
                let d = self.current.digest128();
                self.current.reset();
                d
            } else {
                // The whole row is in this buffer: hash it in one go.
                xxh3_128(&data[..i])
            };
            self.sum = self.sum.wrapping_add(row);
            self.rows += 1;
            self.open = false;
            data = &data[i + 1..];
        }
        if !data.is_empty() {
            self.current.update(data);
            self.open = true;
        }
    }

    /// Rows seen (complete lines).
    pub fn rows(&self) -> u64 {
        self.rows
    }

    /// The digest as 32 hex digits.
    pub fn hex(&self) -> String {
        format!("{:032x}", self.sum)
    }

    /// Whether the stream ended in the middle of a row.
    pub fn has_partial_row(&self) -> bool {
        self.open
    }
}

/// Adds two digests (digests of parts of one table add up).
pub fn add_digests(a: &str, b: &str) -> String {
    let pa = u128::from_str_radix(a, 16).unwrap_or(0);
    let pb = u128::from_str_radix(b, 16).unwrap_or(0);
    format!("{:032x}", pa.wrapping_add(pb))
}

/// A reader that feeds everything it reads into a [`RowDigest`].
pub struct RowTap<R> {
    inner: R,
    /// The digest so far.
    pub digest: RowDigest,
}

impl<R: Read> RowTap<R> {
    /// Wraps a reader.
    pub fn new(inner: R) -> Self {
        RowTap {
            inner,
            digest: RowDigest::default(),
        }
    }
}

impl<R: Read> Read for RowTap<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.digest.update(&buf[..n]);
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digest_ignores_order_and_chunking() {
        let mut a = RowDigest::default();
        a.update(b"1\tx\n2\ty\n3\tz\n");
        let mut b = RowDigest::default();
        for piece in [&b"3\t"[..], b"z\n2", b"\ty\n1\tx", b"\n"] {
            b.update(piece);
        }
        assert_eq!(a.rows(), 3);
        assert_eq!(a.hex(), b.hex());
        let mut c = RowDigest::default();
        c.update(b"1\tx\n2\ty\n3\tZ\n");
        assert_ne!(a.hex(), c.hex());
        let mut first = RowDigest::default();
        first.update(b"1\tx\n");
        let mut rest = RowDigest::default();
        rest.update(b"2\ty\n3\tz\n");
        assert_eq!(add_digests(&first.hex(), &rest.hex()), a.hex());
    }
}
