//! File fidelity: every kind of entry and attribute a tree can hold comes
//! back exactly (names as bytes, FIFOs, device nodes, hard links, holes,
//! extended attributes, paths near PATH_MAX); what cannot be captured is
//! reported with exit 10; in-place restores put a component's content
//! where it was captured.

use crate::common::*;
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Everything about one entry that a restore must reproduce.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Exact {
    kind: char,
    mode: u32,
    uid: u32,
    gid: u32,
    size: u64,
    sha256: String,
    target: Vec<u8>,
    rdev: u64,
    mtime: (i64, i64),
    /// How many names this inode has inside the tree, and the first of them.
    links: (usize, Vec<u8>),
    xattrs: String,
}

fn kind_of(m: &std::fs::Metadata) -> char {
    use std::os::unix::fs::FileTypeExt;
    let ft = m.file_type();
    if ft.is_dir() {
        'd'
    } else if ft.is_symlink() {
        'l'
    } else if ft.is_fifo() {
        'p'
    } else if ft.is_char_device() {
        'c'
    } else if ft.is_block_device() {
        'b'
    } else if ft.is_socket() {
        's'
    } else {
        'f'
    }
}

/// All extended attributes (hex values), as `getfattr` dumps them.
fn xattrs(path: &Path) -> String {
    let o = Command::new("getfattr")
        .args(["-h", "-d", "-m", "-", "-e", "hex", "--absolute-names"])
        .arg(path)
        .output()
        .expect("getfattr (package attr) is installed by scripts/install-test-deps.sh");
    String::from_utf8_lossy(&o.stdout)
        .lines()
        .filter(|l| !l.starts_with("# file:") && !l.is_empty())
        .collect::<Vec<_>>()
        .join("\n")
}

/// Names (as bytes) to entries, with hard links grouped by inode.
fn exact(root: &Path) -> BTreeMap<Vec<u8>, Exact> {
    let mut metas = Vec::new();
    for e in walkdir::WalkDir::new(root).sort_by_file_name() {
        let e = e.unwrap();
        let rel = e.path().strip_prefix(root).unwrap().as_os_str().as_bytes();
        metas.push((
            rel.to_vec(),
            e.path().to_path_buf(),
            e.path().symlink_metadata().unwrap(),
        ));
    }
    let mut by_inode: BTreeMap<u64, Vec<Vec<u8>>> = BTreeMap::new();
    for (rel, _, m) in &metas {
        if !m.is_dir() {
            by_inode.entry(m.ino()).or_default().push(rel.clone());
        }
    }
    let mut out = BTreeMap::new();
    for (rel, path, m) in metas {
        let kind = kind_of(&m);
        let (sha256, size) = if kind == 'f' {
            let data = std::fs::read(&path).unwrap();
            (hex::encode(Sha256::digest(&data)), data.len() as u64)
        } else {
            (String::new(), 0)
        };
        let target = if kind == 'l' {
            std::fs::read_link(&path)
                .unwrap()
                .as_os_str()
                .as_bytes()
                .to_vec()
        } else {
            Vec::new()
        };
        let names = by_inode.get(&m.ino()).cloned().unwrap_or_default();
        let links = (names.len(), names.first().cloned().unwrap_or_default());
        out.insert(
            rel,
            Exact {
                kind,
                mode: if kind == 'l' { 0 } else { m.mode() & 0o7777 },
                uid: m.uid(),
                gid: m.gid(),
                size,
                sha256,
                target,
                rdev: m.rdev(),
                mtime: if kind == 'd' {
                    (0, 0)
                } else {
                    (m.mtime(), m.mtime_nsec())
                },
                links,
                xattrs: if kind == 'l' {
                    String::new()
                } else {
                    xattrs(&path)
                },
            },
        );
    }
    out
}

fn sh(script: &str) {
    let st = Command::new("sh").args(["-c", script]).status().unwrap();
    assert!(st.success(), "{script}");
}

fn path_of(root: &Path, name: &[u8]) -> PathBuf {
    root.join(OsStr::from_bytes(name))
}

/// A tree with every kind of entry and attribute, and no socket.
fn special_tree(root: &Path) {
    fixture(root);
    std::fs::write(
        path_of(root, b"bad\xffname\xfe.txt"),
        b"invalid UTF-8 name\n",
    )
    .unwrap();
    std::fs::create_dir(path_of(root, b"dir\x80")).unwrap();
    std::fs::write(path_of(root, b"dir\x80/inside"), b"under a bad name\n").unwrap();
    std::fs::write(root.join("line\nbreak.txt"), b"newline in the name\n").unwrap();
    std::os::unix::fs::symlink(OsStr::from_bytes(b"to\xffbad"), root.join("badlink")).unwrap();
    sh(&format!("mkfifo {}", root.join("pipe").display()));
    if is_root() {
        sh(&format!(
            "mknod {} c 1 3",
            root.join("null-device").display()
        ));
        sh(&format!(
            "mknod {} b 7 200",
            root.join("loop-device").display()
        ));
    }
    // Hard links: three names in two directories, and a pair.
    std::fs::create_dir_all(root.join("store/pkg")).unwrap();
    std::fs::write(root.join("store/pkg/index.js"), random_bytes(7, 300_000)).unwrap();
    std::fs::create_dir_all(root.join("node_modules/pkg")).unwrap();
    std::fs::hard_link(
        root.join("store/pkg/index.js"),
        root.join("node_modules/pkg/index.js"),
    )
    .unwrap();
    std::fs::hard_link(root.join("store/pkg/index.js"), root.join("store/again.js")).unwrap();
    std::fs::write(root.join("pair-a"), b"pair\n").unwrap();
    std::fs::hard_link(root.join("pair-a"), root.join("pair-b")).unwrap();
    // A sparse file: 64 MiB with 8 KiB of data in the middle and at the end.
    let f = std::fs::File::create(root.join("sparse.img")).unwrap();
    f.set_len(64 << 20).unwrap();
    use std::os::unix::fs::FileExt;
    f.write_all_at(&random_bytes(8, 8192), 20 << 20).unwrap();
    f.write_all_at(b"end", (64 << 20) - 3).unwrap();
    drop(f);
    // Extended attributes: user.*, an ACL, a file capability.
    let bin = root.join("bin/start.sh");
    sh(&format!(
        "setfattr -n user.origin -v release-1.4 {}",
        bin.display()
    ));
    sh(&format!(
        "setfattr -n user.bin -v 0x00ff10 {}",
        root.join("web").display()
    ));
    sh(&format!(
        "setfacl -m u:nobody:r {}",
        root.join("config/.env").display()
    ));
    sh(&format!(
        "setfacl -d -m u:nobody:rx {}",
        root.join("web").display()
    ));
    if is_root() {
        sh(&format!("setcap cap_net_bind_service+ep {}", bin.display()));
    }
}

fn blocks(path: &Path) -> u64 {
    std::fs::metadata(path).unwrap().blocks()
}

#[test]
fn every_kind_of_entry_and_attribute_comes_back_exactly() {
    let env = Env::local();
    let src = env.path("tree");
    special_tree(&src);
    env.init();
    let created = env
        .run(&["create", "--json", "--files", src.to_str().unwrap()])
        .ok()
        .json();
    assert_eq!(created["skipped"], 0, "{created}");
    let target = env.path("out");
    env.run(&["restore", "latest", "--target", target.to_str().unwrap()])
        .ok();
    let back = restored(&target, &src);
    let (want, got) = (exact(&src), exact(&back));
    assert_eq!(want.len(), got.len());
    for (name, w) in &want {
        assert_eq!(Some(w), got.get(name), "{}", String::from_utf8_lossy(name));
    }
    // The facts the comparison rests on hold in the source too.
    let links = &want[&b"store/pkg/index.js"[..]].links;
    assert_eq!(links.0, 3);
    assert!(want[&b"bin/start.sh"[..]]
        .xattrs
        .contains("user.origin=0x72656c"));
    assert!(want[&b"config/.env"[..]]
        .xattrs
        .contains("system.posix_acl_access"));
    if is_root() {
        assert!(want[&b"bin/start.sh"[..]]
            .xattrs
            .contains("security.capability"));
        assert_eq!(want[&b"null-device"[..]].kind, 'c');
    }
    assert_eq!(want[&b"pipe"[..]].kind, 'p');
    // Holes stay holes: 64 MiB with 12 KiB written needs a few blocks only.
    let sparse = back.join("sparse.img");
    assert!(
        blocks(&sparse) * 512 < (1 << 20),
        "{} blocks",
        blocks(&sparse)
    );
    assert!(blocks(&src.join("sparse.img")) * 512 < (1 << 20));
}

#[test]
fn no_xattrs_leaves_attributes_out_at_capture_or_at_restore() {
    let env = Env::local();
    let src = env.path("tree");
    std::fs::create_dir_all(&src).unwrap();
    std::fs::write(src.join("f"), b"x").unwrap();
    sh(&format!(
        "setfattr -n user.keep -v yes {}",
        src.join("f").display()
    ));
    env.init();
    env.create(&[&src], &[]);
    let all = env.path("all");
    env.run(&["restore", "latest", "--target", all.to_str().unwrap()])
        .ok();
    assert!(xattrs(&restored(&all, &src).join("f")).contains("user.keep"));
    let plain = env.path("plain");
    let to = plain.to_str().unwrap();
    env.run(&["restore", "latest", "--target", to, "--no-xattrs"])
        .ok();
    assert_eq!(xattrs(&restored(&plain, &src).join("f")), "");
    env.create(&[&src], &["--no-xattrs"]);
    let none = env.path("none");
    env.run(&["restore", "latest", "--target", none.to_str().unwrap()])
        .ok();
    assert_eq!(xattrs(&restored(&none, &src).join("f")), "");
}

#[test]
fn sockets_are_reported_and_the_run_ends_with_warnings() {
    let env = Env::local();
    let src = env.path("tree");
    std::fs::create_dir_all(&src).unwrap();
    std::fs::write(src.join("app.txt"), b"app").unwrap();
    let _listener = std::os::unix::net::UnixListener::bind(src.join("app.sock")).unwrap();
    env.init();
    let r = env.run(&["create", "--json", "--files", src.to_str().unwrap()]);
    assert_eq!(r.code, 10, "{r:?}");
    assert!(
        r.stderr.contains("app.sock") && r.stderr.contains("sockets"),
        "{}",
        r.stderr
    );
    assert_eq!(r.json()["skipped"], 1);
}

#[test]
fn a_file_that_changes_while_read_ends_the_run_with_warnings() {
    let env = Env::local();
    let src = env.path("tree");
    std::fs::create_dir_all(&src).unwrap();
    let growing = src.join("growing.log");
    std::fs::write(&growing, random_bytes(9, 48 << 20)).unwrap();
    env.init();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let writer = {
        let (stop, path) = (stop.clone(), growing.clone());
        std::thread::spawn(move || {
            use std::io::Write;
            let mut f = std::fs::OpenOptions::new().append(true).open(path).unwrap();
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                f.write_all(b"another line of log\n").unwrap();
                std::thread::sleep(std::time::Duration::from_millis(1));
            }
        })
    };
    let r = env.run(&["create", "--files", src.to_str().unwrap()]);
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    writer.join().unwrap();
    assert_eq!(r.code, 10, "{r:?}");
    assert!(
        r.stderr.contains("changed while it was read"),
        "{}",
        r.stderr
    );
}

#[test]
fn a_path_near_path_max_is_restored_whole() {
    let env = Env::local();
    let src = env.path("tree");
    let segment = "s".repeat(200);
    let mut deep = src.clone();
    while deep.as_os_str().len() + 201 < 3980 {
        deep.push(&segment);
    }
    deep.push("z".repeat(3980 - deep.as_os_str().len() - 1));
    std::fs::create_dir_all(&deep).unwrap();
    std::fs::write(deep.join("leaf.txt"), b"at the bottom\n").unwrap();
    assert!(deep.join("leaf.txt").as_os_str().len() > 3980);
    env.init();
    env.create(&[&src], &[]);
    let target = env.path("out");
    env.run(&["restore", "latest", "--target", target.to_str().unwrap()])
        .ok();
    // The restored leaf lies beyond PATH_MAX from /: reach it step by step.
    let rel = restored(&target, &deep);
    let mut script = format!("cd {}", target.display());
    for part in rel.strip_prefix(&target).unwrap().components() {
        script.push_str(&format!(" && cd {}", part.as_os_str().to_string_lossy()));
    }
    script.push_str(" && cat leaf.txt");
    let o = Command::new("sh").args(["-c", &script]).output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(o.stdout, b"at the bottom\n");
}

/// A release tree at a live path, captured as component `api`.
fn live_component(env: &Env) -> (PathBuf, String) {
    let live = env.path("srv/dms/api");
    fixture(&live);
    env.init();
    let arg = format!("api={}", live.display());
    let id = env.run(&["create", "--json", "--files", &arg]).ok().json()["id"]
        .as_str()
        .unwrap()
        .to_string();
    (live, id)
}

/// What a deployment does to the live tree.
fn deploy(live: &Path) {
    std::fs::write(live.join("api/dist/main.js"), b"console.log('v2');\n").unwrap();
    std::fs::write(live.join("api/dist/new.js"), b"new in v2\n").unwrap();
    std::fs::remove_file(live.join("web/index.html")).unwrap();
}

#[test]
fn in_place_restore_of_a_component_puts_its_content_where_it_was() {
    let env = Env::local();
    let (live, id) = live_component(&env);
    let before = exact(&live);
    deploy(&live);
    env.run(&["restore", &id[..8], "--component", "api"])
        .fails(9, "--overwrite");
    let r = env
        .run(&[
            "restore",
            &id[..8],
            "--component",
            "api",
            "--overwrite",
            "--json",
        ])
        .ok()
        .json();
    assert_eq!(exact(&live), before);
    let previous = PathBuf::from(r["previous"].as_str().unwrap());
    assert_eq!(
        std::fs::read(previous.join("api/dist/new.js")).unwrap(),
        b"new in v2\n"
    );
    // The README's form: the captured path as the target, with --overwrite.
    deploy(&live);
    let to = live.to_str().unwrap();
    env.run(&["restore", "latest", "--target", to, "--overwrite"])
        .ok();
    assert_eq!(exact(&live), before);
    env.run(&["restore", "latest", "--component", "web"])
        .fails(2, "api");
}

#[test]
fn one_captured_path_restores_with_its_content_at_the_top() {
    let env = Env::local();
    let (live, id) = live_component(&env);
    let out = env.path("dist-copy");
    let spec = format!("{}:{}", &id[..8], live.join("api/dist").display());
    env.run(&["restore", &spec, "--target", out.to_str().unwrap()])
        .ok();
    assert_eq!(exact(&out), exact(&live.join("api/dist")));
    // A single file lands as that file.
    let one = env.path("main-copy.js");
    let spec = format!("latest:{}", live.join("api/dist/main.js").display());
    env.run(&["restore", &spec, "--target", one.to_str().unwrap()])
        .ok();
    assert_eq!(
        std::fs::read(&one).unwrap(),
        std::fs::read(live.join("api/dist/main.js")).unwrap()
    );
    let spec = format!("latest:{}", live.join("no/such").display());
    env.run(&[
        "restore",
        &spec,
        "--target",
        env.path("x").to_str().unwrap(),
    ])
    .fails(2, "nothing was captured");
}

#[test]
fn restore_into_an_empty_mount_point_writes_inside_it() {
    let env = Env::local();
    let (live, _) = live_component(&env);
    let mnt = env.path("mnt");
    std::fs::create_dir_all(&mnt).unwrap();
    let want = hex::encode(Sha256::digest(
        std::fs::read(live.join("api/dist/vendor.js")).unwrap(),
    ));
    let script = format!(
        "mount -t tmpfs -o mode=0755 tmpfs {m} && {b} restore latest --component api --target {m} && \
         sha256sum {m}/api/dist/vendor.js && stat -c %a {m}",
        m = mnt.display(),
        b = bin().display(),
    );
    let mut c = Command::new("unshare");
    c.arg(if is_root() { "-m" } else { "-Urm" });
    c.args(["sh", "-c", &script]);
    c.env("BACKUP_REPOSITORY", &env.repo)
        .env("BACKUP_PASSWORD", env.password.as_deref().unwrap());
    let r = Run::from(c.output().unwrap());
    assert_eq!(r.code, 0, "{r:?}");
    assert!(r.stdout.contains(&want), "{}", r.stdout);
    let mode = std::fs::metadata(&live).unwrap().mode() & 0o7777;
    assert!(
        r.stdout.trim_end().ends_with(&format!("{mode:o}")),
        "{}",
        r.stdout
    );
}

#[test]
fn ambiguous_component_choices_are_refused_before_anything_is_written() {
    let env = Env::local();
    let (live, id) = live_component(&env);
    let other = env.path("other/api");
    std::fs::create_dir_all(&other).unwrap();
    let (a, b) = (live.display().to_string(), other.display().to_string());
    env.run(&["create", "--files", &a, "--files", &b])
        .fails(2, "would both be named \"api\"");
    let spec = format!("{}:{}", &id[..8], live.join("api").display());
    let out = env.path("out");
    let to = out.to_str().unwrap();
    env.run(&["restore", &spec, "--component", "api", "--target", to])
        .fails(2, "not both");
    env.run(&["restore", &id[..8], "--component", "nope", "--target", to])
        .fails(2, "api (");
    assert!(!out.exists());
    assert_eq!(env.listed_snapshots(), 1);
}
