//! The pure part of the delta: pairing rows by key, and the multiset
//! difference of tables without a key. No database here, so that the
//! rules are tested on their own.

use super::{Change, ChangeKind, Value};
use std::collections::HashMap;
use xxhash_rust::xxh3::xxh3_128;

/// A row of the replaced state that may differ from the snapshot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    /// The compared columns as one text ([`compared_text`]).
    pub compared: String,
    /// Every column of the replaced state.
    pub after: Vec<Value>,
}

impl Candidate {
    /// A candidate of every column's text value, `after`, whose compared
    /// columns are at `positions`.
    pub fn new(after: Vec<Value>, positions: &[usize]) -> Candidate {
        let picked: Vec<&Value> = positions.iter().map(|&i| &after[i]).collect();
        Candidate {
            compared: compared_text(&picked),
            after,
        }
    }
}

/// A row of the snapshot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Original {
    /// The compared columns as one text, as for [`Candidate`].
    pub compared: String,
    /// The compared columns.
    pub before: Vec<Value>,
    /// Written after the rollback (not the snapshot's own).
    pub late: bool,
}

impl Original {
    /// A snapshot row of the compared columns' text values, `before`.
    pub fn new(before: Vec<Value>, late: bool) -> Original {
        let all: Vec<&Value> = before.iter().collect();
        Original {
            compared: compared_text(&all),
            before,
            late,
        }
    }
}

/// Text values (`None` for NULL) as one JSON array: equal exactly when
/// every value is. Made on the client from the values both sides send
/// anyway, so that the server does not build a second text of each row.
pub fn compared_text(values: &[&Value]) -> String {
    serde_json::to_string(values).expect("text values serialize")
}

/// Pairs candidates with the snapshot rows of the same key (`found[i]` is
/// the snapshot's row for `candidates[i]`, if its key was there), and adds
/// the snapshot rows whose key is gone. Equal pairs are no change.
pub fn pair_by_key(
    candidates: Vec<Candidate>,
    found: Vec<Option<Original>>,
    gone: Vec<Original>,
) -> Vec<Change> {
    let mut out = Vec::new();
    for (c, f) in candidates.into_iter().zip(found) {
        match f {
            Some(o) if o.compared == c.compared => {}
            Some(o) => out.push(Change {
                kind: ChangeKind::Update,
                before: Some(o.before),
                after: Some(c.after),
                late: o.late,
            }),
            None => out.push(Change {
                kind: ChangeKind::Insert,
                before: None,
                after: Some(c.after),
                late: false,
            }),
        }
    }
    out.extend(gone.into_iter().map(|o| Change {
        kind: ChangeKind::Delete,
        before: Some(o.before),
        after: None,
        late: o.late,
    }));
    out
}

/// How many deleted rows a keyed table must have: the snapshot's rows,
/// less the old tuples still in the replaced state, less the candidates
/// whose key the snapshot has. `None` when that is negative (the
/// rolled-back database moved since the switch, or the identities lie).
pub fn deleted_count(snapshot_rows: u64, old_tuples: u64, found: u64) -> Option<u64> {
    snapshot_rows.checked_sub(old_tuples)?.checked_sub(found)
}

/// The multiset difference of two tables, row by row, in two passes over
/// each side: [`Multiset::count_snapshot`] and [`Multiset::count_kept`]
/// over every row, then [`Multiset::take_deleted`] and
/// [`Multiset::take_inserted`] over every row again. Memory is one counter
/// per distinct row (a 128-bit hash and a count), not the rows.
#[derive(Debug, Default)]
pub struct Multiset {
    counts: HashMap<u128, i64>,
}

impl Multiset {
    /// A snapshot row, first pass.
    pub fn count_snapshot(&mut self, compared: &str) {
        *self
            .counts
            .entry(xxh3_128(compared.as_bytes()))
            .or_default() += 1;
    }

    /// A replaced-state row, first pass.
    pub fn count_kept(&mut self, compared: &str) {
        *self
            .counts
            .entry(xxh3_128(compared.as_bytes()))
            .or_default() -= 1;
    }

    /// Rows the snapshot has more of than the replaced state: deleted.
    pub fn deleted(&self) -> u64 {
        self.counts
            .values()
            .filter(|&&n| n > 0)
            .map(|&n| n as u64)
            .sum()
    }

    /// Rows the replaced state has more of than the snapshot: inserted.
    pub fn inserted(&self) -> u64 {
        self.counts
            .values()
            .filter(|&&n| n < 0)
            .map(|&n| (-n) as u64)
            .sum()
    }

    /// Second pass over the snapshot: whether this row is one of the
    /// deleted ones (each deleted copy is taken once).
    pub fn take_deleted(&mut self, compared: &str) -> bool {
        match self.counts.get_mut(&xxh3_128(compared.as_bytes())) {
            Some(n) if *n > 0 => {
                *n -= 1;
                true
            }
            _ => false,
        }
    }

    /// Second pass over the replaced state: whether this row is one of
    /// the inserted ones.
    pub fn take_inserted(&mut self, compared: &str) -> bool {
        match self.counts.get_mut(&xxh3_128(compared.as_bytes())) {
            Some(n) if *n < 0 => {
                *n += 1;
                true
            }
            _ => false,
        }
    }
}

/// Counts of a list of changes: inserted, updated, deleted.
pub fn count(changes: &[Change]) -> (u64, u64, u64) {
    let mut c = (0, 0, 0);
    for ch in changes {
        match ch.kind {
            ChangeKind::Insert => c.0 += 1,
            ChangeKind::Update => c.1 += 1,
            ChangeKind::Delete => c.2 += 1,
        }
    }
    c
}

/// The tables in an order that foreign keys accept for inserts: a table
/// after every table it references (`edges` are `(child, parent)` by
/// index). Tables in a cycle keep their given order, after the rest.
pub fn fk_order(n: usize, edges: &[(usize, usize)]) -> Vec<usize> {
    let mut parents: Vec<Vec<usize>> = vec![Vec::new(); n];
    for &(child, parent) in edges {
        if child != parent && child < n && parent < n {
            parents[child].push(parent);
        }
    }
    let mut placed = vec![false; n];
    let mut out = Vec::with_capacity(n);
    loop {
        let before = out.len();
        for i in 0..n {
            if !placed[i] && parents[i].iter().all(|&p| placed[p]) {
                placed[i] = true;
                out.push(i);
            }
        }
        if out.len() == before {
            break;
        }
    }
    out.extend((0..n).filter(|&i| !placed[i]));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cand(k: &str, v: &str) -> Candidate {
        Candidate::new(vec![Some(k.into()), Some(v.into())], &[0, 1])
    }

    fn orig(k: &str, v: &str) -> Original {
        Original::new(vec![Some(k.into()), Some(v.into())], false)
    }

    #[test]
    fn the_compared_text_tells_every_value_apart_and_skips_carried_columns() {
        // NULL is not the text "null", and no separator can be forged.
        let null = Original::new(vec![Some("1".into()), None], false);
        let text = Original::new(vec![Some("1".into()), Some("null".into())], false);
        assert_ne!(null.compared, text.compared);
        let joined = Original::new(vec![Some("a\",\"b".into())], false);
        let split = Original::new(vec![Some("a".into()), Some("b".into())], false);
        assert_ne!(joined.compared, split.compared);
        // A candidate compares its compared columns only (here 0 and 2; the
        // column at 1 exists only in the replaced state), in their order.
        let c = Candidate::new(vec![Some("1".into()), Some("new".into()), None], &[0, 2]);
        assert_eq!(c.compared, null.compared);
        assert_eq!(c.after.len(), 3);
    }

    #[test]
    fn pairs_by_key_into_inserts_updates_and_deletes() {
        let changes = pair_by_key(
            vec![cand("1", "a"), cand("2", "b2"), cand("3", "c")],
            vec![Some(orig("1", "a")), Some(orig("2", "b")), None],
            vec![orig("4", "d")],
        );
        assert_eq!(count(&changes), (1, 1, 1));
        let upd = changes
            .iter()
            .find(|c| c.kind == ChangeKind::Update)
            .unwrap();
        assert_eq!(upd.before.as_ref().unwrap()[1].as_deref(), Some("b"));
        assert_eq!(upd.after.as_ref().unwrap()[1].as_deref(), Some("b2"));
        let del = changes
            .iter()
            .find(|c| c.kind == ChangeKind::Delete)
            .unwrap();
        assert!(del.after.is_none());
        assert_eq!(del.before.as_ref().unwrap()[0].as_deref(), Some("4"));
    }

    #[test]
    fn an_update_to_the_same_values_is_no_change() {
        let changes = pair_by_key(vec![cand("1", "a")], vec![Some(orig("1", "a"))], vec![]);
        assert!(changes.is_empty());
    }

    #[test]
    fn deleted_count_refuses_a_negative_count() {
        assert_eq!(deleted_count(10, 7, 2), Some(1));
        assert_eq!(deleted_count(10, 7, 3), Some(0));
        assert_eq!(deleted_count(10, 8, 3), None);
    }

    fn multiset(snapshot: &[&str], kept: &[&str]) -> (Vec<String>, Vec<String>) {
        let mut m = Multiset::default();
        snapshot.iter().for_each(|r| m.count_snapshot(r));
        kept.iter().for_each(|r| m.count_kept(r));
        let (nd, ni) = (m.deleted(), m.inserted());
        let del: Vec<String> = snapshot
            .iter()
            .filter(|r| m.take_deleted(r))
            .map(|r| r.to_string())
            .collect();
        let ins: Vec<String> = kept
            .iter()
            .filter(|r| m.take_inserted(r))
            .map(|r| r.to_string())
            .collect();
        assert_eq!((nd, ni), (del.len() as u64, ins.len() as u64));
        (del, ins)
    }

    #[test]
    fn multiset_counts_duplicates() {
        let (del, ins) = multiset(&["a", "a", "b", "c"], &["a", "c", "c", "d"]);
        assert_eq!(del, ["a", "b"]);
        assert_eq!(ins, ["c", "d"]);
    }

    #[test]
    fn multiset_of_equal_tables_is_empty_in_any_order() {
        let (del, ins) = multiset(&["x", "y", "x"], &["x", "x", "y"]);
        assert!(del.is_empty() && ins.is_empty());
    }

    #[test]
    fn foreign_key_order_puts_parents_first_and_survives_cycles() {
        // 0 references 1, 1 references 2; 3 and 4 reference each other.
        let order = fk_order(5, &[(0, 1), (1, 2), (3, 4), (4, 3)]);
        let pos = |i| order.iter().position(|&x| x == i).unwrap();
        assert!(pos(2) < pos(1) && pos(1) < pos(0));
        assert_eq!(order.len(), 5);
        assert!(pos(3) < pos(4));
    }
}
