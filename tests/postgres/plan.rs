//! `rollback plan`: what rolling a database and two file trees (one of
//! them secret) back to a snapshot would change, checked against changes
//! the test makes and counts itself; the plan's hash and its check of the
//! live state (`--check`, exit 12 when the state moved).

use super::support::*;
use crate::common::*;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::time::Duration;
use testkit::Postgres;

/// A system description with database `dms` and the trees `api` and
/// `config` (secret).
fn system_file(env: &Env, pg: &Postgres, api: &Path, config: &Path, extra: &str) -> PathBuf {
    let p = env.path("system.toml");
    std::fs::write(
        &p,
        format!(
            "[[postgres]]\nname = \"dms\"\nconnection = \"{}\"\n\n\
             [[files]]\nname = \"api\"\npath = \"{}\"\n\n\
             [[files]]\nname = \"config\"\npath = \"{}\"\nsecret = true\n{extra}",
            pg.conninfo("dms"),
            api.display(),
            config.display()
        ),
    )
    .unwrap();
    p
}

/// `backup ARGS --config CFG`.
fn with_config(env: &Env, cfg: &Path, args: &[&str]) -> Run {
    let mut c = env.cmd(args);
    c.arg("--config").arg(cfg);
    Run::from(c.output().expect("spawn backup"))
}

/// Waits until the statistics show these counters for a table (a psql
/// session reports its counts as its backend exits, just after psql does).
fn wait_counters(pg: &Postgres, table: &str, ins_upd_del: &str) {
    wait_for(
        pg,
        "dms",
        &format!(
            "SELECT n_tup_ins || ' ' || n_tup_upd || ' ' || n_tup_del FROM pg_stat_user_tables WHERE relname = '{table}'"
        ),
        ins_upd_del,
        Duration::from_secs(20),
    );
}

fn write(path: &Path, text: &str) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
}

/// The `dms` database, the `api` tree and the secret `config` tree.
fn application(pg: &Postgres, env: &Env) -> (PathBuf, PathBuf) {
    new_database(
        pg,
        "dms",
        "CREATE TABLE orders (id int PRIMARY KEY, item text NOT NULL);
         INSERT INTO orders SELECT g, 'item ' || g FROM generate_series(1, 10) g;
         CREATE TABLE untouched (x int); INSERT INTO untouched VALUES (1), (2);",
    );
    wait_counters(pg, "orders", "10 0 0");
    wait_counters(pg, "untouched", "2 0 0");
    let api = env.path("srv/api");
    write(&api.join("main.js"), "console.log('v1');\n");
    write(&api.join("old-module.js"), "module.exports = 1;\n");
    write(&api.join("lib/util.js"), "exports.u = 1;\n");
    let config = env.path("etc/dms");
    write(&config.join("secret-token.env"), "TOKEN=first-value\n");
    write(&config.join("app.conf"), "port = 3000\n");
    (api, config)
}

/// The table `name` of the plan's first database.
fn table<'a>(plan: &'a Value, name: &str) -> &'a Value {
    plan["databases"][0]["tables"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["table"] == name)
        .unwrap_or_else(|| panic!("no table {name} in {}", plan["databases"][0]))
}

fn files<'a>(plan: &'a Value, name: &str) -> &'a Value {
    plan["files"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["name"] == name)
        .unwrap_or_else(|| panic!("no files {name} in {plan}"))
}

fn objects(diff: &Value, what: &str) -> Vec<String> {
    diff[what]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["object"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn the_plan_reports_every_change_since_the_snapshot_and_hides_secret_paths() {
    let pg = Postgres::start();
    let env = Env::local();
    let (api, config) = application(&pg, &env);
    let cfg = system_file(&env, &pg, &api, &config, "");
    env.init();
    let id = id_of(&with_config(&env, &cfg, &["create", "--json"]).ok().json());

    // The capture recorded the write counters the plan subtracts from.
    let show = env.run(&["show", &id, "--json"]).ok().json();
    let db = &show["snapshot"]["components"][0];
    let orders = db["tables"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "orders")
        .unwrap();
    assert_eq!(
        orders["stats"],
        serde_json::json!({"n_tup_ins": 10, "n_tup_upd": 0, "n_tup_del": 0}),
        "{db}"
    );

    // Schema: a new column, a new table. Rows: 3 inserted, 2 updated, 1 deleted.
    psql_file(
        &pg,
        "dms",
        "ALTER TABLE orders ADD COLUMN note text;
         CREATE TABLE audit (id int, what text);
         INSERT INTO audit VALUES (1, 'rolled out v2');
         INSERT INTO orders (id, item) SELECT g, 'new' FROM generate_series(11, 13) g;
         UPDATE orders SET item = 'changed' WHERE id IN (1, 2);
         DELETE FROM orders WHERE id = 5;",
    );
    wait_counters(&pg, "orders", "13 2 1");
    wait_counters(&pg, "audit", "1 0 0");
    // Files: one added, one removed, one changed; one secret file changed.
    write(&api.join("new-module.js"), "module.exports = 2;\n");
    std::fs::remove_file(api.join("old-module.js")).unwrap();
    write(&api.join("main.js"), "console.log('v2, longer');\n");
    write(&config.join("secret-token.env"), "TOKEN=second-value-QZX\n");

    let plan_path = env.path("plan.json");
    let text = with_config(
        &env,
        &cfg,
        &["rollback", "plan", &id, "-o", plan_path.to_str().unwrap()],
    )
    .ok()
    .stdout;
    let raw = std::fs::read_to_string(&plan_path).unwrap();
    let plan: Value = serde_json::from_str(&raw).unwrap();
    assert_eq!(plan["version"], 1);
    assert_eq!(plan["snapshot"], id.as_str());

    // Schema: orders changed (its new column), audit added, nothing removed.
    let schema = &plan["databases"][0]["schema"];
    assert!(
        objects(schema, "added").contains(&"TABLE public.audit".to_string()),
        "{schema}"
    );
    assert!(objects(schema, "removed").is_empty(), "{schema}");
    let changed = schema["changed"].as_array().unwrap();
    let orders_ddl = changed
        .iter()
        .find(|c| c["object"] == "TABLE public.orders")
        .unwrap_or_else(|| panic!("orders not changed: {schema}"));
    assert!(
        orders_ddl["diff"]
            .as_array()
            .unwrap()
            .iter()
            .any(|l| l == "+    note text"),
        "{orders_ddl}"
    );
    assert!(
        text.contains("TABLE public.audit") && text.contains("+    note text"),
        "{text}"
    );

    // Rows: the written estimates equal the writes; counts are exact here.
    let o = table(&plan, "public.orders");
    assert_eq!(
        o["written"],
        serde_json::json!({"inserted": 3, "updated": 2, "deleted": 1}),
        "{o}"
    );
    assert_eq!(
        (o["snapshot_rows"].as_u64(), o["live_rows"].as_u64()),
        (Some(10), Some(12)),
        "{o}"
    );
    assert_eq!(o["live_rows_from"], "count");
    let a = table(&plan, "public.audit");
    assert_eq!(a["snapshot_rows"], Value::Null, "{a}");
    assert_eq!(a["live_rows"], 1, "{a}");
    assert!(
        a["note"]
            .as_str()
            .unwrap()
            .contains("created since the snapshot"),
        "{a}"
    );
    let u = table(&plan, "public.untouched");
    assert_eq!(
        u["written"],
        serde_json::json!({"inserted": 0, "updated": 0, "deleted": 0}),
        "{u}"
    );
    assert_eq!(plan["databases"][0]["statistics"]["reset_since"], false);
    assert!(text.contains("3 inserted, 2 updated, 1 deleted"), "{text}");
    assert!(
        !text.contains("public.untouched"),
        "an unwritten table is listed: {text}"
    );

    // Files by path; the secret tree by counts only.
    let f = files(&plan, "api");
    assert_eq!(
        (
            f["added"].as_u64(),
            f["removed"].as_u64(),
            f["changed"].as_u64()
        ),
        (Some(1), Some(1), Some(1)),
        "{f}"
    );
    let paths: Vec<(&str, &str)> = f["changes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| (c["kind"].as_str().unwrap(), c["path"].as_str().unwrap()))
        .collect();
    let at = |n: &str| api.join(n).display().to_string();
    let (new_js, old_js, main_js) = (at("new-module.js"), at("old-module.js"), at("main.js"));
    assert_eq!(
        paths,
        [
            ("modified", main_js.as_str()),
            ("added", new_js.as_str()),
            ("removed", old_js.as_str())
        ],
        "{f}"
    );
    for line in [
        format!("+ {new_js}"),
        format!("- {old_js}"),
        format!("M {main_js} (content"),
    ] {
        assert!(text.contains(&line), "{line:?} not in:\n{text}");
    }
    let s = files(&plan, "config");
    assert_eq!(
        (
            s["added"].as_u64(),
            s["removed"].as_u64(),
            s["changed"].as_u64()
        ),
        (Some(0), Some(0), Some(1)),
        "{s}"
    );
    assert_eq!(s["secret"], true);
    assert!(s.get("changes").is_none() && s.get("path").is_none(), "{s}");
    assert_eq!(s["changes_sha256"].as_str().unwrap().len(), 64, "{s}");
    assert!(text.contains("0 added, 0 removed, 1 changed"), "{text}");

    let markdown = with_config(&env, &cfg, &["rollback", "plan", &id, "--markdown"])
        .ok()
        .stdout;
    assert!(markdown.starts_with("# Rollback plan"), "{markdown}");
    assert!(
        markdown.contains("| `public.orders` | 10 | 12 (count) | 3 | 2 | 1 |"),
        "{markdown}"
    );
    assert!(
        markdown.contains(&format!("| added | `{new_js}` |")),
        "{markdown}"
    );
    let json = with_config(&env, &cfg, &["rollback", "plan", &id, "--json"])
        .ok()
        .stdout;
    assert_eq!(
        serde_json::from_str::<Value>(&json).unwrap()["databases"],
        plan["databases"]
    );
    for (what, out) in [
        ("text", &text),
        ("plan file", &raw),
        ("markdown", &markdown),
        ("--json", &json),
    ] {
        for secret in [
            "secret-token",
            "app.conf",
            "QZX",
            "first-value",
            &config.display().to_string(),
        ] {
            assert!(
                !out.contains(secret),
                "the {what} shows {secret:?} of the secret tree:\n{out}"
            );
        }
    }
    assert!(
        raw.contains("api") && raw.contains("old-module.js"),
        "the plan file lacks the open tree's paths"
    );
}

#[test]
fn an_edited_plan_is_refused_and_the_check_sees_one_more_row_or_one_touched_file() {
    let pg = Postgres::start();
    let env = Env::local();
    let (api, config) = application(&pg, &env);
    let cfg = system_file(&env, &pg, &api, &config, "");
    env.init();
    let id = id_of(&with_config(&env, &cfg, &["create", "--json"]).ok().json());
    let plan_path = env.path("plan.json");
    let plan_arg = plan_path.to_str().unwrap();
    let plan = || {
        with_config(
            &env,
            &cfg,
            &["rollback", "plan", &id, "-o", plan_arg, "--quiet"],
        )
        .ok();
    };
    plan();

    // Right after the plan nothing moved.
    let r = with_config(&env, &cfg, &["rollback", "plan", "--check", plan_arg]).ok();
    assert!(r.stdout.contains("is what the plan"), "{}", r.stdout);

    // The hash covers the canonical form: re-formatting is fine, an edit is not.
    let mut v: Value = serde_json::from_str(&std::fs::read_to_string(&plan_path).unwrap()).unwrap();
    let compact = env.path("compact.json");
    std::fs::write(&compact, serde_json::to_string(&v).unwrap()).unwrap();
    with_config(
        &env,
        &cfg,
        &["rollback", "plan", "--check", compact.to_str().unwrap()],
    )
    .ok();
    v["databases"][0]["tables"][0]["snapshot_rows"] = serde_json::json!(999);
    let edited = env.path("edited.json");
    std::fs::write(&edited, serde_json::to_string_pretty(&v).unwrap()).unwrap();
    with_config(
        &env,
        &cfg,
        &["rollback", "plan", "--check", edited.to_str().unwrap()],
    )
    .fails(3, "the plan file was edited or damaged");
    std::fs::write(&edited, "{\"version\": 1, \"snapshot\": ").unwrap();
    with_config(
        &env,
        &cfg,
        &["rollback", "plan", "--check", edited.to_str().unwrap()],
    )
    .fails(3, "edited or damaged");

    // One more row: the database moved (seen at once, before the counters).
    pg.psql("dms", "INSERT INTO orders VALUES (100, 'late order')");
    let r = with_config(
        &env,
        &cfg,
        &["rollback", "plan", "--check", plan_arg, "--json"],
    );
    assert_eq!(r.code, 12, "{} {}", r.stdout, r.stderr);
    let moved = r.json()["moved"].clone();
    assert!(
        moved
            .as_array()
            .unwrap()
            .iter()
            .any(|m| m["component"] == "dms"
                && m["what"].as_str().unwrap().contains("table public.orders")),
        "{moved}"
    );
    assert!(
        !moved
            .as_array()
            .unwrap()
            .iter()
            .any(|m| m["component"] != "dms"),
        "only the database moved: {moved}"
    );

    // A new plan sees it (once the counters tell of the row, so that they
    // do not move after it); then one touched file moves the tree.
    wait_counters(&pg, "orders", "11 0 0");
    plan();
    with_config(&env, &cfg, &["rollback", "plan", "--check", plan_arg]).ok();
    let stamp = filetime::FileTime::from_unix_time(1_700_000_000, 5);
    filetime::set_file_mtime(api.join("lib/util.js"), stamp).unwrap();
    let r = with_config(&env, &cfg, &["rollback", "plan", "--check", plan_arg]);
    assert_eq!(r.code, 12, "{} {}", r.stdout, r.stderr);
    assert!(
        r.stdout
            .contains("api: files: 0 added, 0 removed, 1 changed"),
        "{}",
        r.stdout
    );
    assert!(
        !r.stdout.contains("dms:") && !r.stdout.contains("config:"),
        "{}",
        r.stdout
    );

    // A touched secret file moves its tree too, still without its name.
    plan();
    write(&config.join("app.conf"), "port = 3001\n");
    let r = with_config(&env, &cfg, &["rollback", "plan", "--check", plan_arg]);
    assert_eq!(r.code, 12, "{} {}", r.stdout, r.stderr);
    assert!(
        r.stdout
            .contains("config: files: 0 added, 0 removed, 1 changed"),
        "{}",
        r.stdout
    );
    assert!(!r.stdout.contains("app.conf"), "{}", r.stdout);
}

#[test]
fn a_plan_needs_the_system_description_and_every_component_it_names() {
    let pg = Postgres::start();
    let env = Env::local();
    let (api, config) = application(&pg, &env);
    let cfg = system_file(&env, &pg, &api, &config, "");
    env.init();
    let id = id_of(&with_config(&env, &cfg, &["create", "--json"]).ok().json());
    env.run(&["rollback", "plan", &id]).fails(2, "--config");

    let more = env.path("more");
    std::fs::create_dir_all(&more).unwrap();
    let bigger = system_file(
        &env,
        &pg,
        &api,
        &config,
        &format!(
            "\n[[files]]\nname = \"assets\"\npath = \"{}\"\n",
            more.display()
        ),
    );
    let plan_path = env.path("never.json");
    with_config(
        &env,
        &bigger,
        &["rollback", "plan", &id, "-o", plan_path.to_str().unwrap()],
    )
    .fails(2, "no files component named \"assets\"");
    assert!(!plan_path.exists(), "a refused plan was written");

    // A description of the database alone: the trees are not rolled back,
    // and an unnamed capture (`create --postgres`) is found by its database.
    let only_db = env.path("db.toml");
    std::fs::write(
        &only_db,
        format!(
            "[[postgres]]\nname = \"dms\"\nconnection = \"{}\"\n",
            pg.conninfo("dms")
        ),
    )
    .unwrap();
    let p = with_config(&env, &only_db, &["rollback", "plan", &id, "--json"])
        .ok()
        .json();
    assert_eq!(
        p["not_rolled_back"],
        serde_json::json!(["api", "config"]),
        "{p}"
    );
    assert!(p["files"].as_array().unwrap().is_empty(), "{p}");
    let unnamed = id_of(&create(&env, &[&pg.conninfo("dms")], &[]));
    let p = with_config(&env, &only_db, &["rollback", "plan", &unnamed, "--json"])
        .ok()
        .json();
    assert_eq!(p["databases"][0]["name"], "dms", "{p}");
    assert_eq!(p["snapshot"], unnamed.as_str());
    assert_eq!(table(&p, "public.orders")["snapshot_rows"], 10, "{p}");

    // The database's server does not answer (its probe, started while the
    // repository opens, fails): the plan names the component and writes
    // nothing.
    let closed = testkit::free_port();
    let down = env.path("down.toml");
    std::fs::write(
        &down,
        format!(
            "[[postgres]]\nname = \"dms\"\nconnection = \"host=127.0.0.1 port={closed} dbname=dms user=postgres\"\n"
        ),
    )
    .unwrap();
    let r = with_config(
        &env,
        &down,
        &["rollback", "plan", &id, "-o", plan_path.to_str().unwrap()],
    );
    assert_eq!(r.code, 8, "{} {}", r.stdout, r.stderr);
    for says in [
        "database dms".to_string(),
        format!("port={closed}"),
        "is the server running".to_string(),
    ] {
        assert!(r.stderr.contains(&says), "{says:?} not in {}", r.stderr);
    }
    assert!(!plan_path.exists(), "a failed plan was written");
}

#[test]
fn after_a_statistics_reset_the_plan_says_so_instead_of_estimating() {
    let pg = Postgres::start();
    let env = Env::local();
    let (api, config) = application(&pg, &env);
    let cfg = system_file(&env, &pg, &api, &config, "");
    env.init();
    let id = id_of(&with_config(&env, &cfg, &["create", "--json"]).ok().json());
    pg.psql("dms", "INSERT INTO orders VALUES (100, 'late order')");
    wait_counters(&pg, "orders", "11 0 0");
    pg.psql("dms", "SELECT pg_stat_reset()");
    wait_counters(&pg, "orders", "0 0 0");

    let plan = with_config(&env, &cfg, &["rollback", "plan", &id, "--json"])
        .ok()
        .json();
    let st = &plan["databases"][0]["statistics"];
    assert_eq!(st["reset_since"], true, "{st}");
    assert!(
        st["note"]
            .as_str()
            .unwrap()
            .contains("reset since the snapshot"),
        "{st}"
    );
    let o = table(&plan, "public.orders");
    assert_eq!(o["written"], Value::Null, "an estimate after a reset: {o}");
    assert_eq!(
        (o["snapshot_rows"].as_u64(), o["live_rows"].as_u64()),
        (Some(10), Some(11)),
        "{o}"
    );
    let text = with_config(&env, &cfg, &["rollback", "plan", &id])
        .ok()
        .stdout;
    assert!(text.contains("reset since the snapshot"), "{text}");
}
