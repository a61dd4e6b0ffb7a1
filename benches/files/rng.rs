//! The pseudo-random generator of the tree.

/// xoshiro256** seeded through splitmix64: small, fast, and stable across crate versions, so
/// the same `BENCH_SIZE_MB` always gives the same tree.
pub struct Rng([u64; 4]);

impl Rng {
    pub fn new(seed: u64) -> Self {
        let mut x = seed;
        let mut next = || {
            x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = x;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^ (z >> 31)
        };
        Self([next(), next(), next(), next()])
    }

    pub fn next_u64(&mut self) -> u64 {
        let s = &mut self.0;
        let result = s[1].wrapping_mul(5).rotate_left(7).wrapping_mul(9);
        let t = s[1] << 17;
        s[2] ^= s[0];
        s[3] ^= s[1];
        s[1] ^= s[2];
        s[0] ^= s[3];
        s[2] ^= t;
        s[3] = s[3].rotate_left(45);
        result
    }

    /// Uniform in `0..n` (n > 0).
    pub fn below(&mut self, n: u64) -> u64 {
        ((self.next_u64() as u128 * n as u128) >> 64) as u64
    }

    /// Uniform in `lo..=hi`.
    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.below(hi - lo + 1)
    }

    /// Log-uniform in `lo..=hi`: many small values, a few large ones, as real file sizes.
    pub fn log_range(&mut self, lo: u64, hi: u64) -> u64 {
        let u = self.next_u64() as f64 / u64::MAX as f64;
        let v = (lo as f64).ln() + u * ((hi as f64).ln() - (lo as f64).ln());
        (v.exp() as u64).clamp(lo, hi)
    }

    /// Index skewed towards 0 (roughly Zipf-like), for word choice.
    pub fn skewed(&mut self, n: usize) -> usize {
        let u = self.next_u64() as f64 / u64::MAX as f64;
        ((n as f64).powf(u) - 1.0) as usize % n
    }

    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
    }

    pub fn fill(&mut self, buf: &mut Vec<u8>, len: usize) {
        while buf.len() + 8 <= len {
            buf.extend_from_slice(&self.next_u64().to_le_bytes());
        }
        let rest = len - buf.len();
        buf.extend_from_slice(&self.next_u64().to_le_bytes()[..rest]);
    }

    pub fn hex(&mut self, buf: &mut Vec<u8>, digits: usize) {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        for _ in 0..digits {
            buf.push(HEX[self.below(16) as usize]);
        }
    }
}
