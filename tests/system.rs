//! The system description (`--config FILE`): `create` captures every
//! component it declares, by name; `config check` names every problem.

use crate::common::*;
use crate::postgres::support::new_database;
use serde_json::Value;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use testkit::Postgres;

/// Runs `backup ARGS --config CFG` with the repository only from the file.
fn with_config(env: &Env, cfg: &Path, args: &[&str]) -> Run {
    let mut c = env.cmd(args);
    c.env_remove("BACKUP_REPOSITORY").arg("--config").arg(cfg);
    Run::from(c.output().expect("spawn backup"))
}

/// A password file (mode 600) holding the workspace's password.
fn password_file(env: &Env) -> PathBuf {
    let p = env.path("password");
    std::fs::write(&p, env.password.as_deref().unwrap()).unwrap();
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).unwrap();
    p
}

fn write_config(env: &Env, name: &str, text: &str) -> PathBuf {
    let p = env.path(name);
    std::fs::write(&p, text).unwrap();
    p
}

/// `system.toml` with the workspace's repository, a password file and a
/// state directory, then `components` (the `[[postgres]]`, `[[files]]` and
/// `[hooks]` sections).
fn write_system(env: &Env, components: &str) -> PathBuf {
    let header = format!(
        "repository = \"{repo}\"\npassword_file = \"{pw}\"\nstate_dir = \"{state}\"\n\n",
        repo = env.repo,
        pw = password_file(env).display(),
        state = env.path("state").display(),
    );
    write_config(env, "system.toml", &(header + components))
}

fn component<'a>(show: &'a Value, kind: &str, name: &str) -> &'a Value {
    show["snapshot"]["components"]
        .as_array()
        .expect("components")
        .iter()
        .find(|c| c["kind"] == kind && c["name"] == name)
        .unwrap_or_else(|| panic!("no {kind} component {name:?} in {show}"))
}

#[test]
fn create_captures_every_declared_component_and_restore_puts_one_back() {
    let pg = Postgres::start();
    new_database(
        &pg,
        "dms",
        "CREATE TABLE t (id int); INSERT INTO t SELECT generate_series(1, 10);",
    );
    let env = Env::local();
    let api = env.path("srv/api");
    fixture(&api);
    let want = digest(&api);
    std::fs::write(api.join("debug.log"), "left out by exclude").unwrap();
    let etc = env.path("etc/dms");
    std::fs::create_dir_all(&etc).unwrap();
    std::fs::write(etc.join("app.env"), "TOKEN=hidden\n").unwrap();
    let cfg = write_system(
        &env,
        &format!(
            r#"[[postgres]]
name = "db"
connection = "{conn}"

[[files]]
name = "api"
path = "{api}"
exclude = ["*.log"]

[[files]]
name = "config"
path = "{etc}"
secret = true

[hooks]
stop = "true"
start = "sh -c 'exit 0'"
health_check = "/bin/sh -c true"
health_timeout = "60s"
hook_timeout = "2m"
"#,
            conn = pg.conninfo("dms"),
            api = api.display(),
            etc = etc.display(),
        ),
    );

    let r = with_config(&env, &cfg, &["config", "check"]).ok();
    assert!(r.stdout.contains("config OK: 3 components"), "{}", r.stdout);
    with_config(&env, &cfg, &["init"]).ok();
    let created = with_config(&env, &cfg, &["create", "--json"]).ok().json();
    assert_eq!(created["databases"][0]["name"], "db", "{created}");
    assert_eq!(created["databases"][0]["database"], "dms", "{created}");

    let show = with_config(&env, &cfg, &["show", "latest", "--json"])
        .ok()
        .json();
    assert_eq!(show["snapshot"]["components"].as_array().unwrap().len(), 3);
    assert_eq!(component(&show, "postgres", "db")["database"], "dms");
    let api_c = component(&show, "files", "api");
    assert!(api_c.get("secret").is_none(), "{api_c}");
    assert_eq!(api_c["excludes"], serde_json::json!(["*.log"]));
    assert_eq!(component(&show, "files", "config")["secret"], true);
    let listed: Vec<&str> = show["components"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "api")
        .unwrap()["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["path"].as_str().unwrap())
        .collect();
    assert!(!listed.contains(&"debug.log"), "{listed:?}");
    assert!(listed.contains(&"api/dist/main.js"), "{listed:?}");

    // Damage the live tree, then put the api component back in place.
    std::fs::write(api.join("web/index.html"), "broken").unwrap();
    std::fs::remove_file(api.join("zero.bin")).unwrap();
    with_config(
        &env,
        &cfg,
        &["restore", "latest", "--component", "api", "--overwrite"],
    )
    .ok();
    assert_eq!(digest(&api), want, "the api tree is not what was captured");
    with_config(&env, &cfg, &["verify"]).ok();
    assert_eq!(
        with_config(&env, &cfg, &["snapshots", "--json"])
            .ok()
            .json()
            .as_array()
            .unwrap()
            .len(),
        1
    );
}

/// The databases are read while the trees are: a database that cannot be
/// reached stops the tree capture too, its own error is the one reported
/// (not the tree side's cancellation), and nothing is written.
#[test]
fn a_database_failing_beside_the_trees_is_the_error_and_writes_nothing() {
    let env = Env::local();
    let api = env.path("srv/api");
    fixture(&api);
    for i in 0..2000 {
        let dir = api.join(format!("bulk/{}", i / 100));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(format!("f{i}.js")), format!("module {i}\n")).unwrap();
    }
    let cfg = write_system(
        &env,
        &format!(
            r#"[[files]]
name = "api"
path = "{api}"

[[postgres]]
name = "db"
connection = "host=127.0.0.1 port={port} user=postgres dbname=dms connect_timeout=5"
"#,
            api = api.display(),
            port = testkit::free_port(),
        ),
    );
    with_config(&env, &cfg, &["init"]).ok();
    let r = with_config(&env, &cfg, &["create"]).fails(8, "cannot connect");
    assert!(!r.stderr.contains("cancelled"), "{r:?}");
    crate::postgres::support::assert_nothing_written(&env, 0);
}

#[test]
fn flags_replace_the_files_sources() {
    let env = Env::local();
    let declared = env.path("declared");
    let given = env.path("given");
    std::fs::create_dir_all(&declared).unwrap();
    std::fs::create_dir_all(&given).unwrap();
    let cfg = write_config(
        &env,
        "system.toml",
        &format!(
            "repository = \"{}\"\n[[files]]\nname = \"declared\"\npath = \"{}\"\n",
            env.repo,
            declared.display()
        ),
    );
    with_config(&env, &cfg, &["init"]).ok();
    let files = format!("mine={}", given.display());
    with_config(&env, &cfg, &["create", "--files", &files]).ok();
    let show = with_config(&env, &cfg, &["show", "--json"]).ok().json();
    let comps = show["snapshot"]["components"].as_array().unwrap();
    assert_eq!(comps.len(), 1, "{show}");
    assert_eq!(comps[0]["name"], "mine");
}

#[test]
fn config_check_names_every_problem_with_its_key() {
    let env = Env::local();
    let typo = write_config(
        &env,
        "typo.toml",
        "[[files]]\nname = \"api\"\npath = \"/srv\"\n\n[[files]]\nname = \"etc\"\npth = \"/etc\"\n",
    );
    let r = with_config(&env, &typo, &["config", "check"]).fails(2, "line 7");
    for want in ["`files[1].pth`", "name, path, exclude, secret"] {
        assert!(r.stderr.contains(want), "no {want:?} in: {}", r.stderr);
    }
    // Every other command refuses the file the same way.
    with_config(&env, &typo, &["snapshots"]).fails(2, "`files[1].pth`");

    let pw = env.path("open-password");
    std::fs::write(&pw, "pw").unwrap();
    std::fs::set_permissions(&pw, std::fs::Permissions::from_mode(0o644)).unwrap();
    let bad = write_config(
        &env,
        "bad.toml",
        &format!(
            r#"password_file = "{pw}"
[[postgres]]
name = "db"
connection = "host=127.0.0.1 port={port} user=postgres dbname=dms"
[[files]]
name = "api"
path = "{missing}"
[hooks]
stop = "no-such-program --flag"
health_timeout = "a while"
"#,
            pw = pw.display(),
            port = testkit::free_port(),
            missing = env.path("no/such/dir").display(),
        ),
    );
    let r = with_config(&env, &bad, &["config", "check"]).fails(2, "5 problem(s)");
    for want in [
        "`hooks.health_timeout`",
        "`password_file`: ",
        "readable by every user",
        "`postgres[0].connection`: cannot connect",
        "`files[0].path`",
        "no/such/dir",
        "`hooks.stop`",
        "\"no-such-program\" is not found",
    ] {
        assert!(r.stderr.contains(want), "no {want:?} in: {}", r.stderr);
    }
    let r = with_config(&env, &bad, &["config", "check", "--json"]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    let v = r.json();
    assert_eq!(v["ok"], false);
    let keys: Vec<&str> = v["problems"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["key"].as_str().unwrap())
        .collect();
    assert_eq!(
        keys,
        [
            "hooks.health_timeout",
            "password_file",
            "postgres[0].connection",
            "files[0].path",
            "hooks.stop"
        ],
        "{v}"
    );
    let gone = env.path("gone.toml");
    with_config(&env, &gone, &["config", "check"]).fails(2, "cannot read the config file");
    env.run(&["config", "check"]).fails(2, "--config FILE");
}
