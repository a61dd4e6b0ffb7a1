//! Which captured entries a file restore writes, and where in the staging
//! directory each one goes.
//!
//! Two layouts: by default every captured path is recreated under the
//! target (`/srv/dms/api/x` lands at `<target>/srv/dms/api/x`), so that
//! several components can be restored side by side. With a source path
//! (`ID:/srv/dms/api`, `--component api`, or `--overwrite` onto a captured
//! path) that path's content lands at the top of the target, which is what
//! an in-place restore needs. Either way the staged copy is the entry
//! [`STAGED`] of the staging directory.

use crate::error::{Error, Result};
use crate::snapshot::{full_path, Node, NodeKind};
use std::collections::HashMap;

/// The name of the staged copy inside the staging directory.
pub const STAGED: &[u8] = b"r";

/// One entry to restore.
#[derive(Debug)]
pub struct Item {
    /// What was captured.
    pub node: Node,
    /// Where it goes, relative to the staging directory.
    pub rel: Vec<u8>,
    /// The earlier item this one is a hard link to.
    pub link: Option<usize>,
}

/// The entries of one restore, in listing order (parents first).
#[derive(Debug, Default)]
pub struct Selection {
    /// Directories to create before the items (the captured paths' parents
    /// in the default layout).
    pub prefixes: Vec<Vec<u8>>,
    /// The entries.
    pub items: Vec<Item>,
}

/// One captured component's listing.
pub struct Listing {
    /// Its captured absolute path.
    pub path: String,
    /// Its nodes.
    pub nodes: Vec<Node>,
}

/// `prefix` itself or anything below it (`""` is everything).
pub fn under(path: &str, prefix: &str) -> bool {
    let prefix = prefix.trim_end_matches('/');
    path == prefix || prefix.is_empty() || path.starts_with(&format!("{prefix}/"))
}

fn included(include: &[String], full: &str, kind: NodeKind) -> bool {
    include.is_empty()
        || include
            .iter()
            .any(|inc| under(full, inc) || (kind == NodeKind::Dir && under(inc, full)))
}

/// Every component recreated under the target at its captured path.
pub fn select_all(listings: Vec<Listing>, include: &[String]) -> Result<Selection> {
    let mut sel = Selection {
        prefixes: vec![STAGED.to_vec()],
        items: Vec::new(),
    };
    let mut matched = include.is_empty();
    for l in listings {
        let mut base = STAGED.to_vec();
        let trimmed = l.path.trim_matches('/');
        if !trimmed.is_empty() {
            base.push(b'/');
            base.extend_from_slice(trimmed.as_bytes());
        }
        if let Some(i) = base.iter().rposition(|b| *b == b'/') {
            sel.prefixes.push(base[..i].to_vec());
        }
        matched |= l.nodes.iter().any(|n| {
            include
                .iter()
                .any(|inc| under(&full_path(&l.path, &n.path), inc))
        });
        let nodes = l
            .nodes
            .into_iter()
            .filter(|n| included(include, &full_path(&l.path, &n.path), n.kind));
        add_nodes(&mut sel, nodes, &base, 0)?;
    }
    if sel.items.is_empty() || !matched {
        return Err(Error::usage(format!(
            "nothing in the snapshot matches --include {}: paths are absolute, as `backup show` lists them",
            include.join(", ")
        )));
    }
    Ok(sel)
}

/// One captured path (a component's root or anything inside it) with its
/// content at the top of the target.
pub fn select_path(listings: Vec<Listing>, source: &str, include: &[String]) -> Result<Selection> {
    let source = if source == "/" {
        source
    } else {
        source.trim_end_matches('/')
    };
    let Some(l) = listings.into_iter().find(|l| under(source, &l.path)) else {
        return Err(Error::usage(format!(
            "{source} is not a captured path: give a component's path or a path inside one, as `backup show` lists them"
        )));
    };
    let sub = source[l.path.trim_end_matches('/').len()..].trim_start_matches('/');
    if !l.nodes.iter().any(|n| n.path == sub) {
        return Err(Error::usage(format!(
            "nothing was captured at {source}: `backup show` lists what the snapshot holds"
        )));
    }
    let cpath = l.path.clone();
    let nodes = l
        .nodes
        .into_iter()
        .filter(|n| under(&n.path, sub) && included(include, &full_path(&cpath, &n.path), n.kind));
    let mut sel = Selection::default();
    add_nodes(&mut sel, nodes, STAGED, sub.len())?;
    Ok(sel)
}

/// Adds nodes of one listing: `strip` bytes of each node's path are
/// replaced by `base`; hard links are paired within the listing.
fn add_nodes(
    sel: &mut Selection,
    nodes: impl Iterator<Item = Node>,
    base: &[u8],
    strip: usize,
) -> Result<()> {
    let mut by_path: HashMap<Vec<u8>, usize> = HashMap::new();
    for node in nodes {
        let bytes = node.path_bytes()?;
        let tail = &bytes[strip.min(bytes.len())..];
        let mut rel = base.to_vec();
        if !tail.is_empty() {
            if tail[0] != b'/' {
                rel.push(b'/');
            }
            rel.extend_from_slice(tail);
        }
        let link = match node.hardlink_bytes()? {
            Some(first) => by_path.get(&first).copied(),
            None => None,
        };
        if node.kind == NodeKind::File && link.is_none() {
            by_path.insert(bytes, sel.items.len());
        }
        sel.items.push(Item { node, rel, link });
    }
    Ok(())
}
