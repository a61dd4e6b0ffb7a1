//! The system under test: its description file, its trees, and the "deployment" a rollback
//! undoes (a migration and business writes in the database, files changed, added and removed
//! in every tree).

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::bench::Bench;
use crate::data::audit_sql;
use crate::schema::Scale;
use crate::support::Result;
use crate::{DB, PASSWORD};

/// The system description and the paths it names.
pub struct SystemFile {
    pub path: PathBuf,
    /// The `[[files]]` components: (name, live path), in file order.
    pub trees: Vec<(String, PathBuf)>,
}

impl SystemFile {
    /// Writes `system.toml` (and the password file, mode 600) in the work directory: the
    /// repository `backup-repo`, the database `DB`, every tree, and hooks that do nothing.
    pub fn write(b: &Bench, trees: &[(String, PathBuf)]) -> Result<Self> {
        let pw = b.work.join("password");
        fs::write(&pw, PASSWORD)?;
        fs::set_permissions(&pw, fs::Permissions::from_mode(0o600))?;
        let mut text = format!(
            "repository = {:?}\npassword_file = {:?}\nstate_dir = {:?}\n",
            path_str(&b.work.join("backup-repo"))?,
            path_str(&pw)?,
            path_str(&b.work.join("state"))?,
        );
        text += &format!(
            "\n[[postgres]]\nname = {DB:?}\nconnection = {:?}\n",
            b.conninfo(DB)
        );
        for (name, path) in trees {
            text += &format!(
                "\n[[files]]\nname = {name:?}\npath = {:?}\n",
                path_str(path)?
            );
        }
        text += "\n[hooks]\nstop = \"true\"\nstart = \"true\"\nhealth_check = \"true\"\n\
                 hook_timeout = \"60s\"\nhealth_timeout = \"60s\"\n";
        let path = b.work.join("system.toml");
        fs::write(&path, text)?;
        Ok(Self {
            path,
            trees: trees.to_vec(),
        })
    }
}

fn path_str(p: &Path) -> Result<&str> {
    p.to_str()
        .ok_or_else(|| format!("{} is not UTF-8", p.display()).into())
}

/// The components of the generated tree: its top-level directories, sorted.
pub fn tree_components(root: &Path) -> Result<Vec<(String, PathBuf)>> {
    let mut out = Vec::new();
    for entry in fs::read_dir(root)? {
        let entry = entry?;
        if entry.file_type()?.is_dir() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if !name.starts_with('.') {
                out.push((name, entry.path()));
            }
        }
    }
    out.sort();
    if out.is_empty() {
        return Err(format!("{} holds no directory", root.display()).into());
    }
    Ok(out)
}

/// Files the deployment touched: each with the SHA-256 it must have again after the rollback,
/// or `None` when the deployment added it (the rollback removes it).
pub struct Deployed {
    files: Vec<(PathBuf, Option<[u8; 32]>)>,
}

/// "Deploys" a new release into every tree: two files appended to, one rewritten, one
/// removed (of four spread over the tree), one release marker and a directory of three 64 KiB
/// files added.
pub fn deploy_trees(trees: &[(String, PathBuf)]) -> Result<Deployed> {
    let mut files = Vec::new();
    for (name, root) in trees {
        let list: Vec<PathBuf> = walkdir::WalkDir::new(root)
            .sort_by_file_name()
            .into_iter()
            .filter_map(|e| e.ok())
            .filter(|e| e.file_type().is_file())
            .map(|e| e.into_path())
            .collect();
        let n = list.len();
        if n == 0 {
            return Err(format!("tree {name} has no file").into());
        }
        // Four files spread over the tree (fewer in a small tree of few files).
        let mut picks = vec![0, n / 4, n / 2, 3 * n / 4];
        picks.dedup();
        for (k, path) in picks.into_iter().map(|i| list[i].clone()).enumerate() {
            files.push((path.clone(), Some(sha256_file(&path)?)));
            match k {
                0 | 1 => {
                    let mut data = fs::read(&path)?;
                    data.extend_from_slice(b"\n/* patched by release v2 */\n");
                    fs::write(&path, data)?;
                }
                2 => fs::write(
                    &path,
                    format!("rewritten by release v2: {}\n", path.display()),
                )?,
                _ => fs::remove_file(&path)?,
            }
        }
        let marker = root.join("RELEASE-v2");
        fs::write(&marker, "v2.0.0\n")?;
        files.push((marker, None));
        let dir = root.join("release-v2-added");
        fs::create_dir_all(&dir)?;
        for i in 0..3u8 {
            let path = dir.join(format!("chunk-{i}.bin"));
            fs::write(&path, vec![i.wrapping_mul(37); 64 * 1024])?;
            files.push((path, None));
        }
    }
    Ok(Deployed { files })
}

impl Deployed {
    /// Fails unless every touched file is as it was before the deployment.
    pub fn check_rolled_back(&self) -> Result<()> {
        for (path, want) in &self.files {
            match want {
                Some(digest) => {
                    if !path.is_file() || sha256_file(path)? != *digest {
                        return Err(format!(
                            "after the rollback {} is not as before",
                            path.display()
                        )
                        .into());
                    }
                }
                None => {
                    if fs::symlink_metadata(path).is_ok() {
                        return Err(format!(
                            "after the rollback {} (added by the deployment) is still there",
                            path.display()
                        )
                        .into());
                    }
                }
            }
        }
        Ok(())
    }
}

fn sha256_file(path: &Path) -> Result<[u8; 32]> {
    let mut f = fs::File::open(path)?;
    let mut h = Sha256::new();
    std::io::copy(&mut f, &mut h)?;
    Ok(h.finalize().into())
}

/// The database side of the deployment: the audit log grows by 5% (the `postgres` benchmark's
/// growth), then a migration adds a column and a table and business writes follow.
pub fn deploy_database(b: &Bench, scale: &Scale) -> Result<()> {
    let grow = (scale.audit / 20).max(1);
    b.sql(
        DB,
        &audit_sql(0.61, scale.audit + 1, scale.audit + grow, scale.audit),
    )?;
    b.sql(
        DB,
        &format!(
            "SELECT setval(pg_get_serial_sequence('audit_log', 'id'), (SELECT max(id) FROM audit_log));
             ALTER TABLE deals ADD COLUMN currency char(3) NOT NULL DEFAULT 'USD';
             CREATE TABLE appointments (
                 id bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
                 customer_id bigint NOT NULL REFERENCES customers (id),
                 starts_at timestamptz NOT NULL,
                 note text);
             INSERT INTO appointments (customer_id, starts_at, note)
                 SELECT 1 + g % {customers}, timestamptz '2025-01-06 08:00' + g * interval '20 minutes',
                        'booked online'
                 FROM generate_series(1, 2000) g;
             UPDATE vehicles SET status = 'sold' WHERE id % 97 = 0;
             VACUUM (ANALYZE) audit_log",
            customers = scale.customers
        ),
    )?;
    Ok(())
}
