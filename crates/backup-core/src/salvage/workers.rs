//! The tables of one database compared on several pairs of connections at
//! once: each pair takes the next table, largest first, until none is left
//! or one fails. The pairs share the snapshots of the first pair, so every
//! table is read as of the same moment whichever pair reads it.

use super::compare::{compare_table, CompareStats, Sides, TableJob};
use super::TableDelta;
use crate::error::{Error, ErrorKind, Result};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

/// Compares every table of `work` on `main` and `helpers`; returns the
/// deltas in the order of `work`'s indices and what the comparison cost.
pub(super) fn compare_all(
    main: &mut Sides,
    helpers: Vec<Sides>,
    mut work: Vec<TableJob<'_>>,
) -> Result<(Vec<TableDelta>, CompareStats)> {
    let count = work.len();
    // Popped from the end: the largest tables first, so that no pair is
    // left with a large one when the others are done.
    work.sort_by_key(|j| j.snap.map_or(0, |t| t.bytes));
    let queue = Mutex::new(work);
    let failed = AtomicBool::new(false);
    let run = |sides: &mut Sides| run_pair(sides, &queue, &failed);
    let mut results = std::thread::scope(|scope| {
        let handles: Vec<_> = helpers
            .into_iter()
            .map(|mut sides| scope.spawn(move || run(&mut sides)))
            .collect();
        let mut all = vec![run(main)];
        for h in handles {
            all.push(h.join().unwrap_or_else(|_| {
                Err(Error::new(
                    ErrorKind::Source,
                    "comparing tables on a second connection panicked",
                ))
            }));
        }
        all
    })
    .into_iter()
    .collect::<Result<Vec<_>>>()?;
    let mut stats = CompareStats::default();
    let mut tables: Vec<(usize, TableDelta)> = Vec::with_capacity(count);
    for (done, s) in results.drain(..) {
        stats.skipped += s.skipped;
        stats.rows_read += s.rows_read;
        tables.extend(done);
    }
    tables.sort_by_key(|(i, _)| *i);
    Ok((tables.into_iter().map(|(_, d)| d).collect(), stats))
}

/// What one pair of connections compared.
type Done = (Vec<(usize, TableDelta)>, CompareStats);

/// Takes tables from `queue` until it is empty or a pair failed.
fn run_pair(
    sides: &mut Sides,
    queue: &Mutex<Vec<TableJob<'_>>>,
    failed: &AtomicBool,
) -> Result<Done> {
    let mut done = Vec::new();
    let mut stats = CompareStats::default();
    while !failed.load(Ordering::Relaxed) {
        let Some(job) = queue.lock().expect("queue lock").pop() else {
            break;
        };
        match compare_table(sides, &job, &mut stats) {
            Ok(d) => done.push((job.index, d)),
            Err(e) => {
                failed.store(true, Ordering::Relaxed);
                return Err(e);
            }
        }
    }
    Ok((done, stats))
}
