//! A system under test: its trees, its system description and hooks, the
//! v1 state it is captured in and the v2 "deployment" that follows.

use crate::common::*;
use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

/// The trees of the system, by component name, in file order.
pub const TREES: [(&str, &str); 4] = [
    ("api", "srv/dms/api"),
    ("web", "srv/dms/web"),
    ("config", "etc/dms"),
    ("nginx", "etc/nginx/sites-enabled/dms.conf"),
];

/// The arguments of a rollback to the snapshot tagged `pre-deploy`,
/// without a prompt, reporting JSON.
pub const TO_PRE_DEPLOY: [&str; 6] = [
    "rollback",
    "latest",
    "--tag",
    "pre-deploy",
    "--yes",
    "--json",
];

/// A system: workspace, config file, hook log.
pub struct System {
    pub env: Env,
    pub config: PathBuf,
    pub log: PathBuf,
}

/// What the hooks do, as shell snippets (each also logs its step).
#[derive(Default, Clone)]
pub struct Hooks {
    pub stop: String,
    pub start: String,
    pub health: String,
    pub health_timeout: Option<&'static str>,
}

impl System {
    /// A system of the four trees and optional `[[postgres]]` entries
    /// (name, connection), with a local repository.
    pub fn new(postgres: &[(&str, String)], hooks: &Hooks) -> System {
        Self::with_env(Env::local(), postgres, hooks)
    }

    /// The same with a given workspace (e.g. an S3 repository).
    pub fn with_env(env: Env, postgres: &[(&str, String)], hooks: &Hooks) -> System {
        let log = env.path("hooks.log");
        let config = env.path("backup.toml");
        let sys = System { env, config, log };
        sys.write_config(postgres, hooks);
        sys
    }

    /// (Re)writes the system description.
    pub fn write_config(&self, postgres: &[(&str, String)], hooks: &Hooks) {
        let pw = self.env.path("password");
        std::fs::write(&pw, self.env.password.as_deref().unwrap()).unwrap();
        std::fs::set_permissions(&pw, std::fs::Permissions::from_mode(0o600)).unwrap();
        let mut text = format!(
            "repository = {:?}\npassword_file = {:?}\nstate_dir = {:?}\n",
            self.env.repo,
            pw.display().to_string(),
            self.env.path("state").display().to_string()
        );
        for (name, conn) in postgres {
            text += &format!("\n[[postgres]]\nname = {name:?}\nconnection = {conn:?}\n");
        }
        for (name, _) in TREES {
            text += &format!(
                "\n[[files]]\nname = {name:?}\npath = {:?}\n{}",
                self.path(name).display().to_string(),
                if name == "config" {
                    "secret = true\n"
                } else {
                    ""
                }
            );
        }
        let log = self.log.display();
        text += &format!(
            "\n[hooks]\nstop = {:?}\nstart = {:?}\nhealth_check = {:?}\nhealth_timeout = {:?}\nhook_timeout = \"20s\"\n",
            format!("echo \"stop $BACKUP_OPERATION $BACKUP_COMPONENTS\" >> {log}; {}", hooks.stop),
            format!("echo start >> {log}; {}", hooks.start),
            format!("echo health >> {log}; {}", hooks.health),
            hooks.health_timeout.unwrap_or("10s"),
        );
        std::fs::write(&self.config, text).unwrap();
    }

    /// The live path of a tree component.
    pub fn path(&self, name: &str) -> PathBuf {
        let rel = TREES.iter().find(|(n, _)| *n == name).unwrap().1;
        self.env.path(rel)
    }

    /// `backup ARGS --config FILE`.
    pub fn cmd(&self, args: &[&str]) -> std::process::Command {
        let mut c = self.env.cmd(args);
        c.arg("--config").arg(&self.config);
        c
    }

    /// Runs `backup ARGS --config FILE`.
    pub fn run(&self, args: &[&str]) -> Run {
        Run::from(self.cmd(args).output().expect("spawn backup"))
    }

    /// `rollback latest --tag pre-deploy --yes --json`, which must succeed:
    /// its report.
    pub fn roll_back_to_pre_deploy(&self) -> serde_json::Value {
        self.run(&TO_PRE_DEPLOY).ok().json()
    }

    /// The rollback of [`TO_PRE_DEPLOY`] with failure point `point` armed
    /// (`BACKUP_FAILPOINT`): killed there, or failing as the kernel could.
    pub fn roll_back_failing_at(&self, point: &str) -> Run {
        let mut c = self.cmd(&TO_PRE_DEPLOY);
        c.env("BACKUP_FAILPOINT", point);
        Run::from(c.output().expect("spawn backup"))
    }

    /// Digest of every tree, by component name.
    pub fn trees(&self) -> BTreeMap<String, BTreeMap<String, Entry>> {
        TREES
            .iter()
            .map(|(n, _)| (n.to_string(), digest(&self.path(n))))
            .collect()
    }

    /// The hook log, one step per line; cleared.
    pub fn take_log(&self) -> Vec<String> {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let _ = std::fs::remove_file(&self.log);
        text.lines().map(str::to_string).collect()
    }

    /// Entries next to the live paths that a rollback left: staging
    /// directories (`.NAME.rollback-*`), which must never outlive it.
    pub fn staging_left(&self) -> Vec<String> {
        let mut out = Vec::new();
        for (n, _) in TREES {
            let parent = self.path(n).parent().unwrap().to_path_buf();
            for e in std::fs::read_dir(parent).unwrap() {
                let name = e.unwrap().file_name().to_string_lossy().into_owned();
                if name.starts_with('.') && (name.contains(".rollback-") || name.contains(".undo-"))
                {
                    out.push(name);
                }
            }
        }
        out
    }

    /// Writes the v1 state of every tree.
    pub fn v1(&self) {
        let api = self.path("api");
        write(
            &api.join("releases/v1/dist/main.js"),
            b"console.log('api v1');\n",
        );
        write(
            &api.join("releases/v1/package.json"),
            b"{\"version\": \"1.4.0\"}\n",
        );
        write(
            &api.join("releases/v1/node_modules/left-pad/index.js"),
            &random_bytes(3, 200_000),
        );
        write(
            &api.join("shared/uploads/invoice-1.pdf"),
            &random_bytes(4, 50_000),
        );
        std::fs::set_permissions(
            api.join("shared/uploads"),
            std::fs::Permissions::from_mode(0o750),
        )
        .unwrap();
        std::os::unix::fs::symlink("releases/v1", api.join("current")).unwrap();
        let web = self.path("web");
        write(&web.join("index.html"), b"<html>dms v1</html>\n");
        write(&web.join("assets/app.1111.js"), &random_bytes(5, 300_000));
        let cfg = self.path("config");
        write(&cfg.join("env"), b"DB_PASSWORD=v1-secret-QQX\n");
        std::fs::set_permissions(cfg.join("env"), std::fs::Permissions::from_mode(0o600)).unwrap();
        write(&cfg.join("app.yml"), b"feature_x: false\n");
        write(
            &self.path("nginx"),
            b"server { listen 80; root /srv/dms/web; } # v1\n",
        );
    }

    /// The deployment of v2: a new release, the symlink moved, files
    /// added, changed and removed, config edited.
    pub fn v2(&self) {
        let api = self.path("api");
        write(
            &api.join("releases/v2/dist/main.js"),
            b"console.log('api v2');\n",
        );
        write(
            &api.join("releases/v2/package.json"),
            b"{\"version\": \"2.0.0\"}\n",
        );
        std::fs::remove_file(api.join("current")).unwrap();
        std::os::unix::fs::symlink("releases/v2", api.join("current")).unwrap();
        write(
            &api.join("shared/uploads/invoice-2.pdf"),
            &random_bytes(6, 10_000),
        );
        let web = self.path("web");
        write(&web.join("index.html"), b"<html>dms v2</html>\n");
        std::fs::remove_file(web.join("assets/app.1111.js")).unwrap();
        write(&web.join("assets/app.2222.js"), &random_bytes(7, 310_000));
        let cfg = self.path("config");
        write(&cfg.join("env"), b"DB_PASSWORD=v2-secret-QQX\n");
        write(&cfg.join("app.yml"), b"feature_x: true\n");
        write(&cfg.join("new.yml"), b"added: true\n");
        write(
            &self.path("nginx"),
            b"server { listen 80; root /srv/dms/web; gzip on; } # v2\n",
        );
    }
}

fn write(path: &Path, data: &[u8]) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, data).unwrap();
}

/// Asserts every tree equals `want`, naming the first that does not.
pub fn assert_trees(
    what: &str,
    want: &BTreeMap<String, BTreeMap<String, Entry>>,
    got: &BTreeMap<String, BTreeMap<String, Entry>>,
) {
    for (name, tree) in want {
        assert_eq!(Some(tree), got.get(name), "{what}: tree {name} differs");
    }
}

/// The kept copy (database name or path) of `component` in a rollback report.
pub fn kept_of(report: &serde_json::Value, component: &str) -> String {
    report["kept"]
        .as_array()
        .unwrap_or_else(|| panic!("no kept copies in {report}"))
        .iter()
        .find(|k| k["component"] == component)
        .unwrap_or_else(|| panic!("no kept copy of {component} in {report}"))["kept"]
        .as_str()
        .unwrap()
        .to_string()
}
