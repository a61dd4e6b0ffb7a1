//! Reading extended attributes (`user.*`, `security.capability`, POSIX ACLs
//! in `system.posix_acl_*`, ...) of a file without following symlinks.

use crate::snapshot::Xattr;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

/// The extended attributes of `path`, sorted by name. Filesystems without
/// xattr support give none. Names that are not UTF-8 are returned in the
/// second list (they cannot be stored and are reported).
pub fn read_xattrs(path: &Path) -> std::io::Result<(Vec<Xattr>, Vec<String>)> {
    let names = match list_names(path) {
        Ok(n) => n,
        Err(e) if unsupported(&e) => return Ok((Vec::new(), Vec::new())),
        Err(e) => return Err(e),
    };
    let mut out = Vec::new();
    let mut bad = Vec::new();
    for raw in names.split(|b| *b == 0).filter(|n| !n.is_empty()) {
        let Ok(name) = std::str::from_utf8(raw) else {
            bad.push(String::from_utf8_lossy(raw).into_owned());
            continue;
        };
        match value(path, raw) {
            Ok(Some(v)) => out.push(Xattr {
                name: name.to_string(),
                value: hex::encode(v),
            }),
            // Removed between the listing and the read.
            Ok(None) => {}
            Err(e) => return Err(e),
        }
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok((out, bad))
}

fn unsupported(e: &std::io::Error) -> bool {
    matches!(
        rustix::io::Errno::from_io_error(e),
        Some(rustix::io::Errno::NOTSUP)
    )
}

/// The NUL-separated name list.
fn list_names(path: &Path) -> std::io::Result<Vec<u8>> {
    let os = path.as_os_str();
    loop {
        let size = rustix::fs::llistxattr(os.as_bytes(), &mut [])?;
        if size == 0 {
            return Ok(Vec::new());
        }
        let mut buf = vec![0u8; size];
        match rustix::fs::llistxattr(os.as_bytes(), &mut buf) {
            Ok(n) => {
                buf.truncate(n);
                return Ok(buf);
            }
            // The list grew between the two calls: ask again.
            Err(rustix::io::Errno::RANGE) => continue,
            Err(e) => return Err(e.into()),
        }
    }
}

/// One attribute's value; `None` when it vanished meanwhile.
fn value(path: &Path, name: &[u8]) -> std::io::Result<Option<Vec<u8>>> {
    let p = path.as_os_str().as_bytes();
    loop {
        let size = match rustix::fs::lgetxattr(p, name, &mut []) {
            Ok(s) => s,
            Err(rustix::io::Errno::NODATA) => return Ok(None),
            Err(e) => return Err(e.into()),
        };
        let mut buf = vec![0u8; size];
        match rustix::fs::lgetxattr(p, name, &mut buf) {
            Ok(n) => {
                buf.truncate(n);
                return Ok(Some(buf));
            }
            Err(rustix::io::Errno::RANGE) => continue,
            Err(rustix::io::Errno::NODATA) => return Ok(None),
            Err(e) => return Err(e.into()),
        }
    }
}
