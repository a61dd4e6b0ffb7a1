//! The live side of a plan, read ahead. Opening the repository costs a
//! key derivation and the index (a tenth of a second or more) and needs
//! nothing live; walking the live trees and probing the live databases
//! need nothing from the repository. So the plan starts the live side
//! first, one thread per component, and takes what it read when it gets
//! to that component. A tree the snapshot captured with other settings
//! (other excludes, no extended attributes) is walked again instead.

use super::live_db::{self, LiveDatabase};
use crate::error::{Error, ErrorKind, Result};
use crate::snapshot::Node;
use crate::source::live::walk_live;
use crate::system::System;
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Mutex;
use std::thread::JoinHandle;

/// Work started per component name, taken at most once.
type Pending<T> = Mutex<HashMap<String, T>>;

/// A tree being walked ahead, and how: that must match its capture.
struct TreeWalk {
    path: PathBuf,
    excludes: Vec<String>,
    walk: JoinHandle<Result<Vec<Node>>>,
}

/// Live trees walked and live databases probed ahead of a plan
/// ([`LiveAhead::start`]), for [`super::make_plan`]. Dropping it leaves
/// unfinished threads to end on their own.
#[derive(Default)]
pub struct LiveAhead {
    trees: Pending<TreeWalk>,
    databases: Pending<JoinHandle<Result<LiveDatabase>>>,
}

impl LiveAhead {
    /// Starts walking every file tree (with extended attributes, as
    /// `create --config` captures them) and probing every database that
    /// `system` names.
    pub fn start(system: &System) -> LiveAhead {
        let ahead = LiveAhead::default();
        for e in &system.files {
            let (path, excludes) = (e.path.clone(), e.exclude.clone());
            let walk = std::thread::spawn(move || walk_live(&path, &excludes, true));
            let tree = TreeWalk {
                path: e.path.clone(),
                excludes: e.exclude.clone(),
                walk,
            };
            lock(&ahead.trees).insert(e.name.clone(), tree);
        }
        for e in &system.postgres {
            let connection = e.connection.clone();
            let probe = std::thread::spawn(move || live_db::probe(&connection));
            lock(&ahead.databases).insert(e.name.clone(), probe);
        }
        ahead
    }

    /// The live listing of tree `name`, if it was walked ahead at `path`
    /// with these excludes and extended attributes read (`xattrs`).
    pub(super) fn tree(
        &self,
        name: &str,
        path: &str,
        excludes: &[String],
        xattrs: bool,
    ) -> Option<Result<Vec<Node>>> {
        let tree = lock(&self.trees).remove(name)?;
        let same = tree.path.as_os_str() == path && tree.excludes == excludes && xattrs;
        same.then(|| joined(tree.walk, "walking the live tree"))
    }

    /// The probe of database `name`, if it was started ahead.
    pub(super) fn database(&self, name: &str) -> Option<Result<LiveDatabase>> {
        let probe = lock(&self.databases).remove(name)?;
        Some(joined(probe, "probing the live database"))
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// The result of a thread; a panic is an error naming `what`.
fn joined<T>(h: JoinHandle<Result<T>>, what: &str) -> Result<T> {
    h.join()
        .unwrap_or_else(|_| Err(Error::new(ErrorKind::Source, format!("{what} panicked"))))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn system_with_tree(path: PathBuf, exclude: Vec<String>) -> System {
        let text = format!(
            "repository = \"/nonexistent\"\n[[files]]\nname = \"app\"\npath = {:?}\nexclude = {:?}\n",
            path.to_str().unwrap(),
            exclude
        );
        System::parse(std::path::Path::new("system.toml"), &text).unwrap()
    }

    #[test]
    fn a_tree_walked_ahead_is_taken_once_and_only_with_the_capture_settings() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a.txt"), "a").unwrap();
        std::fs::write(dir.path().join("b.log"), "b").unwrap();
        let root = dir.path().to_path_buf();
        let excludes = vec!["*.log".to_string()];
        let path = root.to_str().unwrap().to_string();
        let path = path.as_str();

        let ahead = LiveAhead::start(&system_with_tree(root.clone(), excludes.clone()));
        let nodes = ahead.tree("app", path, &excludes, true).unwrap().unwrap();
        let names: Vec<&str> = nodes.iter().map(|n| n.path.as_str()).collect();
        assert!(names.iter().any(|p| p.ends_with("a.txt")), "{names:?}");
        assert!(!names.iter().any(|p| p.ends_with("b.log")), "{names:?}");
        assert!(ahead.tree("app", path, &excludes, true).is_none());

        // Captured with other excludes, or without extended attributes:
        // the walk ahead does not count.
        let ahead = LiveAhead::start(&system_with_tree(root.clone(), excludes.clone()));
        assert!(ahead.tree("app", path, &[], true).is_none());
        let ahead = LiveAhead::start(&system_with_tree(root, excludes.clone()));
        assert!(ahead.tree("app", path, &excludes, false).is_none());
        assert!(ahead.tree("web", path, &excludes, true).is_none());
    }
}
