//! Finding which snapshot rows a keyed table no longer has, without sending
//! every key from one database to the other.
//!
//! Both sides hash each key (`hashtextextended` of its text form) and
//! combine the hashes (`bit_xor`, PostgreSQL 14 and later) and count the
//! keys per bucket (the hash's low bits: the more keys the counts say are
//! missing, the more buckets); the two sides run at once. The
//! kept side's buckets, less the keys the kept side added (its inserted
//! candidates), equal the rolled-back side's buckets wherever no key is
//! missing; only the buckets that differ are read again, on both sides, key
//! by key, and the rows of the keys missing on the kept side are then
//! looked up by key. Deleting a few rows of a large table thus costs four
//! scans that read no column but the key, and memory for the keys of a few
//! buckets.
//!
//! When the key's types differ between the two states (their text forms
//! could then differ for equal values), or too many buckets differ, or none
//! does although the counts say keys are missing (hashes that collided),
//! the caller sends the keys over instead.

use super::sql::{each_row, text_array, values};
use super::{TableDelta, Value};
use crate::error::{Error, ErrorKind, Result};
use crate::source::postgres::catalog::{ident, qualified};
use crate::source::postgres::conninfo::db_error;
use postgres::Client;
use std::collections::{HashMap, HashSet};

/// Fewest buckets per table (the low 12 bits of the key hash), used too
/// when the number of missing keys is unknown. More buckets make the second
/// reading smaller but the grouping dearer (PostgreSQL's hash aggregate
/// costs more per row as the groups grow).
const MIN_BUCKET_BITS: u32 = 12;

/// Most buckets per table (the low 16 bits): beyond, the grouping costs
/// more than the keys it spares.
const MAX_BUCKET_BITS: u32 = 16;

/// Buckets per missing key: the buckets that differ (at most one per
/// missing key) then hold at most a thirty-second of the table's keys
/// (below [`MAX_BUCKET_BITS`]), which is all the second reading returns.
const BUCKETS_PER_MISSING: u64 = 32;

/// Per bucket: the number of keys and the xor of their hashes.
type Buckets = HashMap<i64, (i64, i64)>;

/// The text of a row's key (`x` is the row), the same on both sides when
/// the key columns have the same types.
pub fn key_text(key: &[String]) -> String {
    match key {
        [one] => format!("x.{}::text", ident(one)),
        _ => format!("{}::text", text_array(key)),
    }
}

/// The 64-bit hash of a row's key.
pub fn key_hash(key: &[String]) -> String {
    format!("hashtextextended({}, 0)", key_text(key))
}

/// The keys of the rolled-back table (`live`) that the kept table (`kept`)
/// lacks, as text values. `added` holds the key hashes of the kept side's
/// inserted candidates. Called only when the counts say some are missing;
/// `None` when no bucket or too many buckets differ (then the caller
/// compares every key).
pub fn missing_keys(
    kept: &mut Client,
    live: &mut Client,
    d: &TableDelta,
    added: &[i64],
    expected: Option<u64>,
) -> Result<Option<Vec<Vec<Value>>>> {
    let table = qualified(&d.schema, &d.name);
    let mask = bucket_mask(expected);
    let (kept_buckets, live_buckets) = both_sides(
        || buckets(kept, &d.key, &table, mask),
        || buckets(live, &d.key, &table, mask),
    );
    let mut kept_buckets = kept_buckets?;
    for h in added {
        let e = kept_buckets.entry(h & mask).or_insert((0, 0));
        e.0 -= 1;
        e.1 ^= *h;
    }
    let differing = differing(&kept_buckets, &live_buckets?);
    // The counts said keys are missing: no differing bucket would mean the
    // hashes collided, so the keys are compared whole rather than trusted.
    // Beyond an eighth of the buckets, sending the keys over is cheaper.
    if differing.is_empty() || differing.len() as i64 > (mask + 1) / 8 {
        return Ok(None);
    }
    let in_buckets = format!(
        "({} & {mask}) = ANY('{{{}}}'::int8[])",
        key_hash(&d.key),
        differing
            .iter()
            .map(i64::to_string)
            .collect::<Vec<_>>()
            .join(",")
    );
    let kept_sql = format!(
        "SELECT {} FROM ONLY {table} x WHERE {in_buckets}",
        key_text(&d.key)
    );
    let live_sql = format!(
        "SELECT {}, {} FROM ONLY {table} x WHERE {in_buckets}",
        key_text(&d.key),
        text_array(&d.key),
    );
    let (kept_keys, live_keys) = both_sides(
        || {
            let mut keys = HashSet::new();
            each_row(kept, &kept_sql, |r| {
                keys.insert(r.get::<_, String>(0));
                Ok(())
            })?;
            Ok(keys)
        },
        || {
            let mut keys = Vec::new();
            each_row(live, &live_sql, |r| {
                keys.push((r.get::<_, String>(0), values(r, 1)));
                Ok(())
            })?;
            Ok(keys)
        },
    );
    let kept_keys = kept_keys?;
    Ok(Some(
        live_keys?
            .into_iter()
            .filter(|(text, _)| !kept_keys.contains(text))
            .map(|(_, key)| key)
            .collect(),
    ))
}

/// Runs the kept side's and the rolled-back side's query at the same time
/// (each on its own connection, so each server process takes a core).
fn both_sides<A: Send, B: Send>(
    kept: impl FnOnce() -> Result<A> + Send,
    live: impl FnOnce() -> Result<B> + Send,
) -> (Result<A>, Result<B>) {
    std::thread::scope(|scope| {
        let k = scope.spawn(kept);
        let l = live();
        let k = k.join().unwrap_or_else(|_| {
            Err(Error::new(
                ErrorKind::Source,
                "reading the kept database's keys panicked",
            ))
        });
        (k, l)
    })
}

/// The mask of a key hash's bits that name its bucket: enough buckets for
/// each of the `expected` missing keys to have about [`BUCKETS_PER_MISSING`]
/// of them, within [`MIN_BUCKET_BITS`] and [`MAX_BUCKET_BITS`].
fn bucket_mask(expected: Option<u64>) -> i64 {
    let wanted = expected
        .unwrap_or(0)
        .saturating_mul(BUCKETS_PER_MISSING)
        .clamp(1 << MIN_BUCKET_BITS, 1 << MAX_BUCKET_BITS);
    (wanted.next_power_of_two() - 1) as i64
}

/// Counts and hash sums of a table's keys, per bucket (`hash & mask`).
fn buckets(c: &mut Client, key: &[String], table: &str, mask: i64) -> Result<Buckets> {
    let sql = format!(
        "SELECT h & {mask}, count(*)::int8, bit_xor(h) \
         FROM (SELECT {} AS h FROM ONLY {table} x) s GROUP BY 1",
        key_hash(key)
    );
    let rows = c
        .query(&sql, &[])
        .map_err(|e| db_error("combining key hashes", e))?;
    Ok(rows
        .iter()
        .map(|r| (r.get(0), (r.get(1), r.get(2))))
        .collect())
}

/// The buckets whose count or combined hash differ, in order.
fn differing(a: &Buckets, b: &Buckets) -> Vec<i64> {
    let empty = (0, 0);
    let mut out: Vec<i64> = a
        .keys()
        .chain(b.keys())
        .copied()
        .collect::<HashSet<_>>()
        .into_iter()
        .filter(|k| a.get(k).unwrap_or(&empty) != b.get(k).unwrap_or(&empty))
        .collect();
    out.sort_unstable();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bucket_differs_by_count_or_by_hashes_and_empty_equals_missing() {
        let a: Buckets = [(1, (2, 10)), (2, (1, 5)), (3, (0, 0))].into();
        let b: Buckets = [(1, (2, 11)), (2, (1, 5)), (4, (1, 7))].into();
        assert_eq!(differing(&a, &b), vec![1, 4]);
        assert!(differing(&a, &a).is_empty());
    }

    #[test]
    fn buckets_grow_with_the_keys_missing_within_bounds() {
        assert_eq!(bucket_mask(None), 0xfff);
        assert_eq!(bucket_mask(Some(1)), 0xfff);
        assert_eq!(bucket_mask(Some(128)), 0xfff);
        assert_eq!(bucket_mask(Some(129)), 0x1fff);
        assert_eq!(bucket_mask(Some(300)), 0x3fff);
        assert_eq!(bucket_mask(Some(1 << 20)), 0xffff);
        assert_eq!(bucket_mask(Some(u64::MAX)), 0xffff);
    }

    #[test]
    fn keys_hash_their_text() {
        assert_eq!(key_text(&["id".into()]), "x.\"id\"::text");
        assert_eq!(
            key_hash(&["a".into(), "b".into()]),
            "hashtextextended(ARRAY[x.\"a\"::text, x.\"b\"::text]::text[]::text, 0)"
        );
    }
}
