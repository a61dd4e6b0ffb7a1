//! Reading a snapshot's sources: the databases on a thread of their own
//! while the file trees are read, since the one waits mostly on the server
//! and the other on the file system.

use super::KnownParents;
use super::{CreateOptions, Snapshot};
use crate::error::{Error, ErrorKind, Result};
use crate::progress::Progress;
use crate::repository::{Repository, Saver};
use crate::snapshot::{load_tree, Component, PostgresComponent};
use crate::source::files::{capture_files, parent_of, Parent};
use crate::source::postgres::capture_postgres;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// What one `create` run reads, and where it writes.
pub(super) struct Sources<'a> {
    pub repo: &'a Repository,
    pub saver: &'a Saver,
    pub options: &'a CreateOptions,
    /// Every readable earlier snapshot, oldest first (the parents).
    pub earlier: &'a [Snapshot],
    /// The new snapshot's host (file parents are this host's).
    pub host: &'a str,
    /// The file roots, absolute, one per `options.files`.
    pub roots: &'a [PathBuf],
    /// The file components' names, one per root.
    pub names: Vec<String>,
}

impl Sources<'_> {
    /// Captures every source: the database components and the file
    /// components, each in the order the options give. When there are
    /// both, they are read at once (the databases report on a lane of
    /// their own), and the first failure stops the other side at its next
    /// file or table part.
    pub fn capture(&self, progress: &dyn Progress) -> Result<(Vec<Component>, Vec<Component>)> {
        if self.options.postgres.is_empty() || self.options.files.is_empty() {
            return Ok((self.databases(progress)?, self.trees(progress)?));
        }
        let failed = AtomicBool::new(false);
        let lane = crate::progress::beside(progress);
        let background = Sibling {
            inner: &*lane,
            failed: &failed,
        };
        let foreground = Sibling {
            inner: progress,
            failed: &failed,
        };
        let (databases, trees) = std::thread::scope(|s| {
            let databases = s.spawn(|| noting_failure(self.databases(&background), &failed));
            let trees = noting_failure(self.trees(&foreground), &failed);
            if !databases.is_finished() {
                progress.phase("waiting for the databases", None);
            }
            let databases = databases.join().unwrap_or_else(|_| {
                Err(Error::new(
                    ErrorKind::Source,
                    "capturing the databases panicked",
                ))
            });
            (databases, trees)
        });
        both(databases, trees)
    }

    /// The database components, one after the other.
    fn databases(&self, progress: &dyn Progress) -> Result<Vec<Component>> {
        let parents = postgres_parents(self.earlier);
        let mut out = Vec::new();
        for source in &self.options.postgres {
            let mut c = capture_postgres(
                self.saver,
                &source.connection,
                &self.options.postgres_options,
                &parents,
                progress,
            )?;
            c.name = source.name.clone();
            if let Some(db) = &source.record_as {
                c.database = db.clone();
            }
            out.push(Component::Postgres(Box::new(c)));
        }
        Ok(out)
    }

    /// The file components, one after the other, each compared with the
    /// newest earlier capture of its path from this host.
    fn trees(&self, progress: &dyn Progress) -> Result<Vec<Component>> {
        let options = self.options;
        let parents = if options.files_options.force {
            vec![None; self.roots.len()]
        } else {
            // A copy recorded under another path (a rollback's kept state) is
            // compared with what was captured at that path.
            let recorded: Vec<PathBuf> = options
                .files
                .iter()
                .zip(self.roots)
                .map(|(s, r)| s.record_as.clone().unwrap_or_else(|| r.clone()))
                .collect();
            find_parents(
                self.repo,
                self.earlier,
                self.host,
                &recorded,
                &options.parents,
            )
        };
        let mut out = Vec::new();
        let sources = self.roots.iter().zip(&parents).zip(&self.names);
        for (((root, parent), name), source) in sources.zip(&options.files) {
            let mut files_options = options.files_options.clone();
            files_options
                .excludes
                .extend(source.excludes.iter().cloned());
            let mut c = capture_files(
                self.saver,
                root,
                &files_options,
                parent.as_deref(),
                progress,
            )?;
            c.name = name.clone();
            c.secret = source.secret;
            if let Some(p) = &source.record_as {
                c.path = p.to_string_lossy().into_owned();
            }
            out.push(Component::Files(c));
        }
        Ok(out)
    }
}

/// The progress one side of a two-sided capture reports through: it asks
/// the other side to stop once this one failed (as a cancel would).
struct Sibling<'a> {
    inner: &'a dyn Progress,
    failed: &'a AtomicBool,
}

impl Progress for Sibling<'_> {
    fn phase(&self, name: &str, total_bytes: Option<u64>) {
        self.inner.phase(name, total_bytes);
    }

    fn inc(&self, bytes: u64) {
        self.inner.inc(bytes);
    }

    fn warn(&self, message: &str) {
        self.inner.warn(message);
    }

    fn cancelled(&self) -> bool {
        self.failed.load(Ordering::SeqCst) || self.inner.cancelled()
    }
}

fn noting_failure<T>(result: Result<T>, failed: &AtomicBool) -> Result<T> {
    if result.is_err() {
        failed.store(true, Ordering::SeqCst);
    }
    result
}

/// Both sides' results, or the error that caused the failure: a side
/// stopped because the other failed reports `Interrupted`, which gives way
/// to the other side's own error.
fn both<A, B>(a: Result<A>, b: Result<B>) -> Result<(A, B)> {
    match (a, b) {
        (Ok(a), Ok(b)) => Ok((a, b)),
        (Err(e), Ok(_)) | (Ok(_), Err(e)) => Err(e),
        (Err(a), Err(b)) if a.kind() == ErrorKind::Interrupted => Err(b),
        (Err(a), Err(_)) => Err(a),
    }
}

/// Every captured database, newest first.
fn postgres_parents(snaps: &[Snapshot]) -> Vec<&PostgresComponent> {
    snaps
        .iter()
        .rev()
        .flat_map(|s| s.components.iter())
        .filter_map(|c| match c {
            Component::Postgres(p) => Some(p.as_ref()),
            Component::Files(_) => None,
        })
        .collect()
}

/// For each root, the listing of the newest snapshot from this host that
/// captured it: from `known` when it is there, else read.
fn find_parents(
    repo: &Repository,
    snaps: &[Snapshot],
    host: &str,
    roots: &[PathBuf],
    known: &KnownParents,
) -> Vec<Option<Arc<Parent>>> {
    let snaps: Vec<&Snapshot> = snaps.iter().filter(|s| s.host == host).collect();
    roots
        .iter()
        .map(|root| {
            let path = root.to_string_lossy();
            // list_snapshots sorts oldest first: the last match is the newest.
            let fc = snaps
                .iter()
                .rev()
                .find_map(|s| s.file_components().find(|f| f.path == path))?;
            if let Some(p) = known.get(&fc.tree) {
                return Some(p);
            }
            let nodes = load_tree(repo, &fc.tree).ok()?;
            Some(Arc::new(parent_of(nodes)))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    #[test]
    fn the_cause_of_a_failure_wins_over_the_side_it_stopped() {
        let stopped = || Error::new(ErrorKind::Interrupted, "cancelled");
        let cause = || Error::new(ErrorKind::Source, "database dms does not exist");
        let r = both::<(), ()>(Err(stopped()), Err(cause()));
        assert_eq!(r.unwrap_err().kind(), ErrorKind::Source);
        let r = both::<(), ()>(Err(cause()), Err(stopped()));
        assert_eq!(r.unwrap_err().kind(), ErrorKind::Source);
        let r = both::<(), u8>(Ok(()), Err(cause()));
        assert_eq!(r.unwrap_err().kind(), ErrorKind::Source);
        assert_eq!(both::<u8, u8>(Ok(1), Ok(2)).unwrap(), (1, 2));
    }

    fn captured(path: &str, tree: Vec<crate::id::Id>) -> Component {
        Component::Files(crate::snapshot::FilesComponent {
            path: path.into(),
            tree,
            ..Default::default()
        })
    }

    #[test]
    fn a_known_listing_serves_as_the_parent_without_being_read() {
        let store = Arc::new(crate::store::MemoryStore::default());
        let (repo, _) = Repository::init(store, Default::default()).unwrap();
        // Two captures whose listings are not in the repository: only a
        // known one can be a parent, since reading fails.
        let (known_tree, unknown_tree) = (
            vec![crate::id::Id::sha256(b"known")],
            vec![crate::id::Id::sha256(b"unknown")],
        );
        let mut snap = Snapshot::new(Vec::new(), None);
        snap.components.push(captured("/srv/a", known_tree.clone()));
        snap.components.push(captured("/srv/b", unknown_tree));
        let mut known = KnownParents::default();
        known.insert(&known_tree, KnownParents::ready(Vec::new()));
        let roots = [PathBuf::from("/srv/a"), PathBuf::from("/srv/b")];
        let found = find_parents(&repo, &[snap.clone()], &snap.host, &roots, &known);
        assert!(found[0].as_ref().is_some_and(|p| p.is_empty()));
        assert!(found[1].is_none());
        // Another host's capture is nobody's parent, known or not.
        let found = find_parents(&repo, &[snap], "elsewhere", &roots, &known);
        assert!(found.iter().all(Option::is_none));
    }

    #[derive(Default)]
    struct Seen(Mutex<Vec<String>>);

    impl Progress for Seen {
        fn phase(&self, name: &str, _: Option<u64>) {
            self.0.lock().unwrap().push(format!("phase {name}"));
        }
        fn inc(&self, bytes: u64) {
            self.0.lock().unwrap().push(format!("inc {bytes}"));
        }
        fn warn(&self, message: &str) {
            self.0.lock().unwrap().push(format!("warn {message}"));
        }
    }

    #[test]
    fn a_failure_cancels_the_sibling_and_each_side_reports_to_its_own_sink() {
        let (trees, databases) = (Seen::default(), Seen::default());
        let failed = AtomicBool::new(false);
        let background = Sibling {
            inner: &databases,
            failed: &failed,
        };
        let foreground = Sibling {
            inner: &trees,
            failed: &failed,
        };
        background.phase("table t", Some(5));
        background.inc(5);
        background.warn("w1");
        foreground.phase("files api", Some(7));
        foreground.inc(7);
        assert_eq!(
            *databases.0.lock().unwrap(),
            ["phase table t", "inc 5", "warn w1"]
        );
        assert_eq!(*trees.0.lock().unwrap(), ["phase files api", "inc 7"]);
        assert!(!foreground.cancelled() && !background.cancelled());
        let r: Result<()> = noting_failure(Err(Error::usage("bad")), &failed);
        assert!(r.is_err());
        assert!(foreground.cancelled() && background.cancelled());
    }
}
