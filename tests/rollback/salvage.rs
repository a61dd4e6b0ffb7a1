//! Salvage end to end: a v2 migration and business writes rolled back to
//! v1; the delta the rollback computed must count exactly the writes made,
//! show them, export them as SQL that makes the rolled-back database equal
//! to the replaced one again (once the fix re-adds the v2 columns), and
//! report, not overwrite, rows changed in the target since the rollback.

use super::support::*;
use crate::common::*;
use crate::postgres::support::{fingerprint, new_database, psql_file};
use serde_json::Value;
use std::collections::BTreeMap;
use std::time::Duration;
use testkit::Postgres;

const V1: &str = r#"
CREATE TABLE customers (id int PRIMARY KEY, name text NOT NULL, note text, avatar bytea, prefs jsonb, tags text[]);
CREATE TABLE orders (id bigserial PRIMARY KEY, customer int REFERENCES customers, amount numeric(10,2), qty int);
CREATE TABLE events (kind text, payload text);
CREATE TABLE legacy (id int PRIMARY KEY, v text);
CREATE TABLE untouched (id int PRIMARY KEY, v text);
CREATE TABLE archive (id int PRIMARY KEY, v text);
CREATE TABLE parts (id int, region text, qty int, PRIMARY KEY (id, region)) PARTITION BY LIST (region);
CREATE TABLE parts_north PARTITION OF parts FOR VALUES IN ('north');
CREATE TABLE parts_south PARTITION OF parts FOR VALUES IN ('south');
INSERT INTO customers SELECT i, 'customer ' || i, CASE WHEN i % 3 = 0 THEN 'note ' || i END,
  CASE WHEN i % 4 = 0 THEN decode('00ff' || lpad(to_hex(i), 4, '0'), 'hex') END,
  CASE WHEN i % 5 = 0 THEN jsonb_build_object('n', i) END, ARRAY['t' || i, NULL] FROM generate_series(1, 60) i;
INSERT INTO orders (customer, amount, qty) SELECT 1 + i % 40, i * 2.5, i % 7 FROM generate_series(1, 300) i;
INSERT INTO events SELECT 'kind ' || (i % 4), 'payload ' || (i % 10) FROM generate_series(1, 40) i;
INSERT INTO legacy SELECT i, 'old ' || i FROM generate_series(1, 10) i;
INSERT INTO untouched SELECT i, 'same ' || i FROM generate_series(1, 200) i;
INSERT INTO archive SELECT i, 'archived ' || i FROM generate_series(1, 20) i;
INSERT INTO parts SELECT i, CASE WHEN i % 2 = 0 THEN 'north' ELSE 'south' END, i FROM generate_series(1, 20) i;
"#;

const V2: &str = "
ALTER TABLE customers ADD COLUMN tier text DEFAULT 'basic';
ALTER TABLE orders ALTER COLUMN qty TYPE bigint;
CREATE TABLE repair_orders (id serial PRIMARY KEY, customer int REFERENCES customers, opened text);
DROP TABLE legacy;
";

/// The business writes, and what they must count as per table: (inserted,
/// updated, deleted).
const BUSINESS: &str = r#"
INSERT INTO customers (id, name, note, avatar, prefs, tags, tier) VALUES
  (1001, 'New Co', NULL, '\x00ff10', '{"vip": true}', '{a,"b c"}', 'gold'),
  (1002, E'Tab\there', E'line1\nline2', NULL, NULL, NULL, NULL);
UPDATE customers SET note = 'called', prefs = '{"x": [1, 2]}' WHERE id IN (3, 7);
UPDATE customers SET avatar = NULL, tags = '{}' WHERE id = 8;
DELETE FROM customers WHERE id IN (55, 56);
INSERT INTO orders (customer, amount, qty) SELECT 1001, 10 + i, 3000000000 FROM generate_series(1, 5) i;
UPDATE orders SET amount = amount + 1 WHERE id IN (10, 20, 30);
DELETE FROM orders WHERE id IN (5, 6);
INSERT INTO events VALUES ('kind 1', 'payload 1'), ('new', NULL), ('new', NULL);
DELETE FROM events WHERE ctid = (SELECT min(ctid) FROM events WHERE kind = 'kind 2');
INSERT INTO repair_orders (customer, opened) VALUES (1001, 'today'), (3, 'today'), (1002, NULL);
UPDATE parts SET region = 'south' WHERE id = 2;
UPDATE parts SET qty = 99 WHERE id = 4;
DELETE FROM archive WHERE id <= 3;
"#;

fn want_counts() -> BTreeMap<&'static str, (u64, u64, u64)> {
    BTreeMap::from([
        ("dms:public.customers", (2, 3, 2)),
        ("dms:public.orders", (5, 3, 2)),
        ("dms:public.events", (3, 0, 1)),
        ("dms:public.repair_orders", (3, 0, 0)),
        ("dms:public.legacy", (0, 0, 0)),
        ("dms:public.parts_north", (0, 1, 1)),
        ("dms:public.parts_south", (1, 0, 0)),
        ("dms:public.archive", (0, 0, 3)),
    ])
}

/// Per table of a delta's `tables`: (inserted, updated, deleted).
pub(super) fn counts(tables: &Value) -> BTreeMap<String, (u64, u64, u64)> {
    tables
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            let n = |k: &str| t[k].as_u64().unwrap();
            (
                t["table"].as_str().unwrap().to_string(),
                (n("inserted"), n("updated"), n("deleted")),
            )
        })
        .collect()
}

struct Setup {
    pg: Postgres,
    sys: System,
    report: Value,
    kept: String,
}

/// v1 captured, then v2 and the business writes, not rolled back yet.
fn deployed() -> (Postgres, System) {
    let pg = Postgres::start();
    let sys = System::with_env(
        Env::local(),
        &[("dms", pg.conninfo("dms"))],
        &Hooks::default(),
    );
    // The customers' preferences are secret: shown masked, exported as they are.
    let text = std::fs::read_to_string(&sys.config).unwrap();
    let conn = format!("connection = {:?}\n", pg.conninfo("dms"));
    assert!(text.contains(&conn), "{text}");
    let text = text.replace(
        &conn,
        &format!("{conn}secret_columns = [\"customers.prefs\"]\n"),
    );
    std::fs::write(&sys.config, text).unwrap();
    capture_then_deploy(&pg, &sys, [V1, V2, BUSINESS]);
    (pg, sys)
}

/// Database `dms` made by `v1` and captured with the v1 trees (tag
/// `pre-deploy`), then the `v2` migration and the `business` writes.
pub(super) fn capture_then_deploy(pg: &Postgres, sys: &System, [v1, v2, business]: [&str; 3]) {
    new_database(pg, "dms", v1);
    sys.v1();
    sys.run(&["init"]).ok();
    sys.run(&["create", "--tag", "pre-deploy"]).ok();
    psql_file(pg, "dms", v2);
    psql_file(pg, "dms", business);
}

fn rolled_back() -> Setup {
    let (pg, sys) = deployed();
    let report = sys.roll_back_to_pre_deploy();
    let kept = kept_of(&report, "dms");
    Setup {
        pg,
        sys,
        report,
        kept,
    }
}

fn table_of<'a>(show: &'a Value, name: &str) -> &'a Value {
    show["databases"][0]["tables"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["table"] == name)
        .unwrap_or_else(|| panic!("no table {name} in {show}"))
}

#[test]
fn the_delta_counts_the_writes_and_its_export_restores_the_replaced_rows() {
    let s = rolled_back();
    let step = s.report["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|st| st["name"] == "salvage")
        .unwrap_or_else(|| panic!("no salvage step: {}", s.report));
    assert_eq!(step["ok"], true, "{step}");
    let id = s.report["id"].as_str().unwrap().to_string();
    let got = counts(&s.report["salvage"]["tables"]);
    let want = want_counts();
    let want: BTreeMap<String, _> = want.iter().map(|(k, v)| (k.to_string(), *v)).collect();
    assert_eq!(got, want, "per-table counts in the rollback report");
    check_show(&s, &id);
    check_export(&s, &id);
}

/// `salvage show` and `rollback history` of the delta.
fn check_show(s: &Setup, id: &str) {
    let show = s
        .sys
        .run(&["salvage", "show", id, "--json", "--rows", "100"])
        .ok()
        .json();
    assert_eq!(show["databases"][0]["identities_used"], true, "{show}");
    let customers = table_of(&show, "public.customers");
    assert_eq!(customers["carried"], serde_json::json!(["tier"]));
    assert_eq!(customers["key"], serde_json::json!(["id"]));
    let sample = customers["sample"].to_string();
    assert!(
        sample.contains("\\\\x00ff10")
            && sample.contains("b c")
            && sample.contains("line1\\nline2"),
        "{sample}"
    );
    assert!(
        sample.contains("***") && !sample.contains("vip"),
        "{sample}"
    );
    assert_eq!(
        table_of(&show, "public.events")["key"],
        serde_json::json!([])
    );
    assert_eq!(table_of(&show, "public.legacy")["status"], "dropped");
    assert_eq!(table_of(&show, "public.legacy")["snapshot_rows"], 10);
    assert_eq!(table_of(&show, "public.repair_orders")["status"], "added");
    let untouched = table_of(&show, "public.untouched");
    assert_eq!(untouched["status"], "unchanged");
    assert_eq!(untouched["rows_read"], 0);
    let text = s
        .sys
        .run(&["salvage", "show", id, "--table", "orders"])
        .ok()
        .stdout;
    assert!(
        text.contains("public.orders") && text.contains("update"),
        "{text}"
    );
    let history = s.sys.run(&["rollback", "history"]).ok().stdout;
    assert!(
        history.contains("dms:public.customers") && history.contains("+2 ~3 -2"),
        "{history}"
    );
}

/// The exported delta, applied after the fix, gives the replaced rows back.
fn check_export(s: &Setup, id: &str) {
    // The fix: the v2 columns and table again, then the exported delta.
    psql_file(&s.pg, "dms", &V2.replace("DROP TABLE legacy;", ""));
    let sql = s.sys.env.path("delta.sql");
    s.sys
        .run(&["salvage", "export", id, "-o", sql.to_str().unwrap()])
        .ok();
    psql_file(&s.pg, "dms", &std::fs::read_to_string(&sql).unwrap());
    let live = fingerprint(&s.pg, "dms");
    let kept = fingerprint(&s.pg, &s.kept);
    for (k, v) in &kept {
        if k.starts_with("table ") {
            assert_eq!(live.get(k), Some(v), "{k} differs from the replaced state");
        }
    }
    let seq = |db: &str| {
        s.pg.psql(db, "SELECT last_value FROM orders_id_seq")
            .trim()
            .parse::<i64>()
            .unwrap()
    };
    assert!(
        seq("dms") >= seq(&s.kept),
        "orders_id_seq not moved forward"
    );
    // Applied again, the delta meets its own rows: the deleted ones are
    // gone, so nothing is applied.
    s.sys
        .run(&["salvage", "apply", id])
        .fails(12, "changed in the target");
    assert_eq!(fingerprint(&s.pg, "dms"), live);

    let csv = s.sys.env.path("csv");
    s.sys
        .run(&[
            "salvage",
            "export",
            id,
            "--format",
            "csv",
            "-o",
            csv.to_str().unwrap(),
        ])
        .ok();
    let ins = std::fs::read_to_string(csv.join("public.customers.insert.csv")).unwrap();
    assert!(
        ins.contains("\n1001,New Co,") && ins.contains("\n1002,"),
        "{ins}"
    );
    assert!(
        ins.starts_with("id,name,note,avatar,prefs,tags,tier\n"),
        "{ins}"
    );
    assert!(ins.contains("\"line1\nline2\""), "{ins}");
}

#[test]
fn rows_changed_after_the_rollback_are_conflicts_not_overwritten() {
    let s = rolled_back();
    let id = s.report["id"].as_str().unwrap().to_string();
    psql_file(&s.pg, "dms", &V2.replace("DROP TABLE legacy;", ""));
    psql_file(
        &s.pg,
        "dms",
        "UPDATE customers SET note = 'changed after the rollback' WHERE id = 3;",
    );
    let before = fingerprint(&s.pg, "dms");
    let r = s.sys.run(&["salvage", "apply", &id]);
    assert_eq!(r.code, 12, "{}{}", r.stdout, r.stderr);
    assert!(
        r.stdout.contains("conflict: public.customers update"),
        "{}",
        r.stdout
    );
    assert_eq!(fingerprint(&s.pg, "dms"), before, "nothing may be applied");
    let dry = s
        .sys
        .run(&[
            "salvage",
            "apply",
            &id,
            "--on-conflict",
            "skip",
            "--dry-run",
            "--json",
        ])
        .ok()
        .json();
    assert_eq!(dry["committed"], false);
    assert_eq!(dry["conflicts"].as_array().unwrap().len(), 1, "{dry}");
    assert_eq!(
        fingerprint(&s.pg, "dms"),
        before,
        "a dry run changes nothing"
    );
    let done = s
        .sys
        .run(&["salvage", "apply", &id, "--on-conflict", "skip", "--json"])
        .ok()
        .json();
    assert_eq!(done["committed"], true, "{done}");
    let note = s.pg.psql("dms", "SELECT note FROM customers WHERE id = 3");
    assert_eq!(note.trim(), "changed after the rollback");
    let new =
        s.pg.psql("dms", "SELECT name FROM customers WHERE id = 1001");
    assert_eq!(new.trim(), "New Co");
}

#[test]
fn rows_written_after_the_rollback_are_not_taken_for_the_snapshots() {
    let s = rolled_back();
    let id = s.report["id"].as_str().unwrap().to_string();
    // The application, up again on the rolled-back database: a new row, and
    // a change to a row the delta updates.
    psql_file(
        &s.pg,
        "dms",
        "INSERT INTO customers (id, name) VALUES (5000, 'after the rollback'); \
         UPDATE customers SET name = 'renamed after the rollback' WHERE id = 7;",
    );
    let again = s
        .sys
        .run(&["salvage", "compute", &id, "--json"])
        .ok()
        .json();
    let want = want_counts();
    let want: BTreeMap<String, _> = want.iter().map(|(k, v)| (k.to_string(), *v)).collect();
    assert_eq!(
        counts(&again["tables"]),
        want,
        "the new row must not count as deleted"
    );
    let show = s.sys.run(&["salvage", "show", &id, "--json"]).ok().json();
    let customers = table_of(&show, "public.customers");
    assert_eq!(customers["written_after_rollback"], 2, "{customers}");
    // Re-applying reports the row changed after the rollback, whatever the
    // target holds now.
    psql_file(&s.pg, "dms", &V2.replace("DROP TABLE legacy;", ""));
    let r = s
        .sys
        .run(&["salvage", "apply", &id, "--dry-run", "--json"])
        .ok()
        .json();
    let conflicts = r["conflicts"].as_array().unwrap();
    assert_eq!(conflicts.len(), 1, "{r}");
    assert!(
        conflicts[0]["why"]
            .as_str()
            .unwrap()
            .contains("after the rollback"),
        "{r}"
    );
}

#[test]
fn the_plan_computes_the_exact_delta_before_anything_changes() {
    let (pg, sys) = deployed();
    let before = fingerprint(&pg, "dms");
    let plan = sys
        .run(&[
            "rollback",
            "plan",
            "latest",
            "--tag",
            "pre-deploy",
            "--exact",
            "--json",
        ])
        .ok()
        .json();
    let got: BTreeMap<String, _> = plan["exact"]["databases"][0]["tables"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            let n = |k: &str| t[k].as_u64().unwrap();
            (
                format!("dms:{}", t["table"].as_str().unwrap()),
                (n("inserted"), n("updated"), n("deleted")),
            )
        })
        .collect();
    let want: BTreeMap<String, _> = want_counts()
        .iter()
        .map(|(k, v)| (k.to_string(), *v))
        .collect();
    assert_eq!(got, want, "{}", plan["exact"]);
    assert_eq!(fingerprint(&pg, "dms"), before, "the live database changed");
    let names = crate::postgres::support::databases(&pg);
    assert!(
        !names.iter().any(|n| n.contains("__salvage_plan_")),
        "scratch left: {names:?}"
    );
    let text = sys
        .run(&[
            "rollback",
            "plan",
            "latest",
            "--tag",
            "pre-deploy",
            "--exact",
        ])
        .ok()
        .stdout;
    assert!(
        text.contains("dms:public.customers") && text.contains("+2 ~3 -2"),
        "{text}"
    );
}

fn scans(pg: &Postgres, db: &str, table: &str) -> String {
    std::thread::sleep(Duration::from_millis(1500));
    pg.psql(
        db,
        &format!(
            "SELECT pg_stat_clear_snapshot(); SELECT coalesce(seq_scan, 0) + coalesce(idx_scan, 0) || ' ' || coalesce(seq_tup_read, 0) \
             FROM pg_stat_user_tables WHERE relname = '{table}'"
        ),
    )
    .lines()
    .last()
    .unwrap_or_default()
    .to_string()
}

#[test]
fn an_unchanged_table_is_not_read_and_bad_rollbacks_are_refused() {
    let s = rolled_back();
    let id = s.report["id"].as_str().unwrap().to_string();
    let live_before = scans(&s.pg, "dms", "untouched");
    let kept_before = scans(&s.pg, &s.kept, "orders");
    let again = s
        .sys
        .run(&["salvage", "compute", &id, "--json"])
        .ok()
        .json();
    assert!(again["tables_skipped"].as_u64().unwrap() >= 1, "{again}");
    assert_eq!(
        scans(&s.pg, "dms", "untouched"),
        live_before,
        "the rolled-back copy of an unchanged table was read"
    );
    assert_ne!(
        scans(&s.pg, &s.kept, "orders"),
        kept_before,
        "the oracle sees reads of a changed table"
    );
    let want = want_counts();
    let want: BTreeMap<String, _> = want.iter().map(|(k, v)| (k.to_string(), *v)).collect();
    assert_eq!(counts(&again["tables"]), want);

    s.sys
        .run(&["salvage", "show", "20990101T000000Z-abcdef"])
        .fails(2, "no delta of a rollback");
    s.sys
        .run(&["salvage", "compute", "20990101T000000Z-abcdef"])
        .fails(2, "no rollback");
    s.sys.run(&["rollback", "cleanup"]).ok();
    s.sys
        .run(&["salvage", "compute", &id])
        .fails(2, "cleaned up");
    // The stored delta outlives the kept database.
    s.sys.run(&["salvage", "show", &id]).ok();
}
