//! `export` and `import` of a snapshot holding a database and a file tree:
//! the bundle passes `sha256sum -c`, its RESTORE.txt rebuilds the database
//! with the PostgreSQL tools alone, and an import restores it again.

use super::support::*;
use crate::common::*;
use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;
use testkit::Postgres;

/// The commands of a RESTORE.txt: its indented lines that run a
/// PostgreSQL client program, split into words.
fn restore_commands(text: &str) -> Vec<Vec<String>> {
    text.lines()
        .filter(|l| l.starts_with("  "))
        .map(|l| l.split(" #").next().unwrap().trim())
        .filter(|l| {
            ["createdb ", "pg_restore ", "psql "]
                .iter()
                .any(|p| l.starts_with(p))
        })
        .map(|l| {
            assert!(
                !l.contains(['\'', '"', '\\', '`', '$']),
                "a RESTORE.txt line needs a shell: {l}"
            );
            l.split_whitespace().map(str::to_string).collect()
        })
        .collect()
}

/// Runs one RESTORE.txt command with the cluster's binaries and its
/// host, port and user, in `dir`, with database `from` renamed to `to`.
fn run_restore_command(pg: &Postgres, dir: &Path, words: &[String], from: &str, to: &str) {
    let mut cmd = pg.client_command(&words[0]);
    cmd.args([
        "-h",
        "127.0.0.1",
        "-p",
        &pg.port().to_string(),
        "-U",
        pg.user(),
    ])
    .args(words[1..].iter().map(|w| if w == from { to } else { w }))
    .current_dir(dir);
    let run = Run::from(cmd.output().expect("run a PostgreSQL client"));
    assert_eq!(
        run.code,
        0,
        "`{}` failed:\nstdout: {}\nstderr: {}",
        words.join(" "),
        run.stdout,
        run.stderr
    );
}

/// What an extracted tree must carry: kind, mode, size, content, link
/// target (tar headers hold whole seconds, so times are left out).
fn contents(root: &Path) -> BTreeMap<String, (char, u32, u64, String, String)> {
    digest(root)
        .into_iter()
        .map(|(p, e)| (p, (e.kind, e.mode, e.size, e.sha256, e.target)))
        .collect()
}

#[test]
fn an_exported_database_rebuilds_with_the_postgres_tools_and_imports_again() {
    let pg = Postgres::start();
    fixture_db(&pg, "dms");
    let env = Env::local();
    env.init();
    let tree = env.path("srv/dms");
    fixture(&tree);
    let want = fingerprint(&pg, "dms");

    let id = id_of(&create(
        &env,
        &[&pg.conninfo("dms")],
        &["--files", tree.to_str().unwrap()],
    ));
    let bundle = env.path("bundle.tar");
    env.run(&["export", &id, "-o", bundle.to_str().unwrap()])
        .ok();

    // Extract and check it with the standard tools.
    let x = env.path("x");
    std::fs::create_dir_all(&x).unwrap();
    let tar = Run::from(
        Command::new("tar")
            .arg("-xf")
            .arg(&bundle)
            .arg("-C")
            .arg(&x)
            .output()
            .unwrap(),
    );
    assert_eq!(tar.code, 0, "tar -xf: {}", tar.stderr);
    let check = Run::from(
        Command::new("sha256sum")
            .args(["-c", "--strict", "SHA256SUMS"])
            .current_dir(&x)
            .output()
            .unwrap(),
    );
    assert_eq!(
        check.code, 0,
        "sha256sum -c:\n{}{}",
        check.stdout, check.stderr
    );
    let dir = x.join("databases/0-dms");
    let sums = std::fs::read_to_string(x.join("SHA256SUMS")).unwrap();
    for f in ["schema.dump", "load.sql", "refresh.sql", "RESTORE.txt"] {
        assert!(
            dir.join(f).is_file(),
            "the bundle lacks databases/0-dms/{f}"
        );
        assert!(
            sums.contains(&format!("  databases/0-dms/{f}\n")),
            "SHA256SUMS does not cover databases/0-dms/{f}"
        );
    }
    assert_eq!(
        contents(&tree),
        contents(&x.join("files").join(tree.strip_prefix("/").unwrap())),
        "the file tree in the bundle"
    );

    // Rebuild the database without the tool, as RESTORE.txt says.
    let howto = std::fs::read_to_string(dir.join("RESTORE.txt")).unwrap();
    let commands = restore_commands(&howto);
    let steps: Vec<String> = commands.iter().map(|c| c.join(" ")).collect();
    let programs: Vec<&str> = commands.iter().map(|c| c[0].as_str()).collect();
    assert_eq!(
        programs,
        ["createdb", "pg_restore", "psql", "pg_restore", "psql"],
        "{howto}"
    );
    assert!(
        steps[0].starts_with("createdb -T template0 ") && steps[0].ends_with(" dms"),
        "{howto}"
    );
    assert!(
        steps[1].contains("--section=pre-data") && steps[1].ends_with(" schema.dump"),
        "{howto}"
    );
    assert!(
        steps[2].contains("-d dms") && steps[2].ends_with("-f load.sql"),
        "{howto}"
    );
    assert!(
        steps[3].contains("--section=post-data") && steps[3].ends_with(" schema.dump"),
        "{howto}"
    );
    assert!(steps[4].ends_with("-f refresh.sql"), "{howto}");
    for c in &commands {
        run_restore_command(&pg, &dir, c, "dms", "dms_manual");
    }
    assert_same(
        "the database rebuilt by hand from the bundle",
        &want,
        &fingerprint(&pg, "dms_manual"),
    );
    assert_same_schema(&schema_dump(&pg, "dms"), &schema_dump(&pg, "dms_manual"));

    // Import into a second, new repository and restore from there.
    let other = Env::local();
    other.init();
    let imported = other
        .run(&["import", bundle.to_str().unwrap(), "--json"])
        .ok()
        .json();
    assert_eq!(imported["imported_from"], id.as_str(), "{imported}");
    let r = other
        .run(&[
            "restore",
            "latest",
            "--postgres-target",
            &pg.conninfo("dms_imported"),
            "--json",
        ])
        .ok()
        .json();
    assert_eq!(r["database"]["database"], "dms_imported", "{r}");
    assert_same(
        "the database restored from an imported bundle",
        &want,
        &fingerprint(&pg, "dms_imported"),
    );
    assert_same_schema(&schema_dump(&pg, "dms"), &schema_dump(&pg, "dms_imported"));
    let target = other.path("restore");
    other
        .run(&["restore", "latest", "--target", target.to_str().unwrap()])
        .ok();
    assert_eq!(digest(&tree), digest(&restored(&target, &tree)));
}
