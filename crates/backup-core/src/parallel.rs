//! A small work queue over scoped threads.

use crate::error::{Error, Result};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Mutex;

/// Runs `work` over every item on `workers` threads. Each thread first
/// builds its own state with `setup` (a connection, say). The first error
/// stops the others from taking new items and is returned.
pub fn for_each_parallel<T, S, F, W>(items: &[T], workers: usize, setup: F, work: W) -> Result<()>
where
    T: Sync,
    F: Fn() -> Result<S> + Sync,
    W: Fn(&mut S, &T) -> Result<()> + Sync,
{
    let next = AtomicUsize::new(0);
    let stop = AtomicBool::new(false);
    let failure: Mutex<Option<Error>> = Mutex::new(None);
    let fail = |e: Error| {
        stop.store(true, Ordering::SeqCst);
        failure.lock().expect("lock").get_or_insert(e);
    };
    std::thread::scope(|s| {
        for _ in 0..workers.max(1).min(items.len().max(1)) {
            s.spawn(|| {
                let mut state = match setup() {
                    Ok(st) => st,
                    Err(e) => return fail(e),
                };
                while !stop.load(Ordering::SeqCst) {
                    let Some(item) = items.get(next.fetch_add(1, Ordering::SeqCst)) else {
                        return;
                    };
                    if let Err(e) = work(&mut state, item) {
                        return fail(e);
                    }
                }
            });
        }
    });
    match failure.into_inner().expect("lock") {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

/// Maps every item with `work` on up to `workers` threads and returns the
/// results in the items' order; the first error is returned instead.
pub fn map_parallel<T, R, W>(items: &[T], workers: usize, work: W) -> Result<Vec<R>>
where
    T: Sync,
    R: Send,
    W: Fn(&T) -> Result<R> + Sync,
{
    let slots: Vec<Mutex<Option<R>>> = items.iter().map(|_| Mutex::new(None)).collect();
    let indexed: Vec<usize> = (0..items.len()).collect();
    for_each_parallel(
        &indexed,
        workers,
        || Ok(()),
        |_, &i| {
            let r = work(&items[i])?;
            *slots[i].lock().expect("lock") = Some(r);
            Ok(())
        },
    )?;
    Ok(slots
        .into_iter()
        .filter_map(|m| m.into_inner().expect("lock"))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn visits_every_item_once_and_stops_on_error() {
        let items: Vec<u32> = (0..100).collect();
        let seen = Mutex::new(Vec::new());
        for_each_parallel(
            &items,
            3,
            || Ok(()),
            |_, i| {
                seen.lock().unwrap().push(*i);
                Ok(())
            },
        )
        .unwrap();
        let mut v = seen.into_inner().unwrap();
        v.sort();
        assert_eq!(v, items);
        let err = for_each_parallel(
            &items,
            2,
            || Ok(()),
            |_, i| {
                if *i == 7 {
                    Err(Error::usage("seven"))
                } else {
                    Ok(())
                }
            },
        );
        assert!(err.unwrap_err().to_string().contains("seven"));
        let err = for_each_parallel(
            &items,
            2,
            || -> Result<()> { Err(Error::usage("setup")) },
            |_, _| Ok(()),
        );
        assert!(err.is_err());
    }

    #[test]
    fn maps_in_order_and_returns_the_first_error() {
        let items: Vec<u32> = (0..50).collect();
        let doubled = map_parallel(&items, 3, |i| Ok(i * 2)).unwrap();
        assert_eq!(doubled, items.iter().map(|i| i * 2).collect::<Vec<_>>());
        let err = map_parallel(&items, 2, |i| {
            if *i == 9 {
                Err(Error::usage("nine"))
            } else {
                Ok(*i)
            }
        });
        assert!(err.unwrap_err().to_string().contains("nine"));
    }
}
