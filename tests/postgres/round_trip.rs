//! Round trips: the rich fixture through `create` and `restore`, and a
//! capture taken while transfers run between two tables.

use super::support::*;
use crate::common::*;
use std::collections::BTreeMap;
use std::process::Stdio;
use std::time::Duration;
use testkit::Postgres;

#[test]
fn fixture_round_trips_schema_rows_sequences_large_objects_and_matviews() {
    let pg = Postgres::start();
    fixture_db(&pg, "dms");
    let env = Env::local();
    env.init();
    let want = fingerprint(&pg, "dms");
    let want_schema = schema_dump(&pg, "dms");

    let created = create(&env, &[&pg.conninfo("dms")], &[]);
    let id = id_of(&created);
    let dbs = created["databases"].as_array().unwrap();
    assert_eq!(dbs.len(), 1, "{created}");
    assert_eq!(dbs[0]["database"], "dms");
    assert_eq!(dbs[0]["tables"], FIXTURE_TABLES, "{created}");
    let want_rows: u64 = want
        .keys()
        .filter(|k| k.starts_with("table "))
        .map(|k| rows_of(&want, k))
        .sum();
    assert_eq!(dbs[0]["rows"], want_rows, "{created}");
    assert!(dbs[0]["bytes"].as_u64().unwrap() > 2_000_000, "{created}");
    assert!(created["new_bytes"].as_u64().unwrap() > 0);
    assert!(created["stored_bytes"].as_u64().unwrap() > 0);

    // The manifest: partitions (not their parent), COPY columns without
    // generated or dropped ones, sequences, large objects, matviews.
    let shown = env.run(&["show", &id, "--json"]).ok().json();
    let m = &shown["databases"][0];
    assert!(m["server_version_num"].as_u64().unwrap() >= 150000, "{m}");
    let tables = manifest_tables(m);
    for t in [
        "sales.orders_2023",
        "sales.orders_2024",
        "sales.orders_other",
        "Kunden Übersicht.weird\"name",
        "audit.empty_table",
        "audit.log_archive",
    ] {
        assert!(tables.contains_key(t), "{t} missing from {tables:?}");
    }
    assert!(!tables.contains_key("sales.orders"), "{tables:?}");
    assert_eq!(tables["audit.empty_table"].0, 0);
    assert_eq!(
        tables["audit.log"].0,
        rows_of(&want, "table audit.log"),
        "the parent's rows only"
    );
    let customers = m["tables"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "customers")
        .unwrap();
    let cols: Vec<&str> = customers["columns"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap())
        .collect();
    assert!(
        cols.contains(&"id") && cols.contains(&"history"),
        "{cols:?}"
    );
    assert!(
        !cols.contains(&"name_upper") && !cols.contains(&"obsolete"),
        "{cols:?}"
    );
    let seq = |name: &str| {
        m["sequences"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["name"] == name)
            .unwrap_or_else(|| panic!("sequence {name} not in {}", m["sequences"]))
            .clone()
    };
    assert_eq!(seq("batch_no")["last_value"], -17);
    assert_eq!(seq("batch_no")["is_called"], false);
    assert_eq!(seq("untouched")["is_called"], false);
    assert_eq!(seq("invoice_print_no")["last_value"], 5042);
    assert_eq!(seq("invoice_print_no")["is_called"], true);
    let oids: Vec<u64> = m["large_objects"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["oid"].as_u64().unwrap())
        .collect();
    assert_eq!(oids, [424242, 424243, 424244]);
    let populated: BTreeMap<String, bool> = m["matviews"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| {
            (
                v["name"].as_str().unwrap().to_string(),
                v["populated"].as_bool().unwrap(),
            )
        })
        .collect();
    assert!(populated["mv_totals"]);
    assert!(populated["mv_by_status"]);
    assert!(!populated["mv_never_refreshed"]);

    // Restore into a new database and compare with the source.
    let r = env
        .run(&[
            "restore",
            &id,
            "--postgres-target",
            &pg.conninfo("dms_copy"),
            "--json",
        ])
        .ok()
        .json();
    assert_eq!(r["snapshot"], id.as_str());
    let d = &r["database"];
    assert_eq!(d["database"], "dms_copy", "{r}");
    assert_eq!(d["tables"], FIXTURE_TABLES);
    assert_eq!(d["rows"], want_rows);
    assert!(
        d["previous"].is_null() && d["downtime_secs"].is_null(),
        "{r}"
    );
    assert!(d["duration_secs"].as_f64().unwrap() > 0.0);
    assert_same(
        "the restored database differs from the source",
        &want,
        &fingerprint(&pg, "dms_copy"),
    );
    assert_same_schema(&want_schema, &schema_dump(&pg, "dms_copy"));

    // A capture of the copy carries the same rows and digests, and `diff`
    // sees no change between the two snapshots.
    let again = create(&env, &[&pg.conninfo("dms_copy")], &[]);
    let id2 = id_of(&again);
    let shown2 = env.run(&["show", &id2, "--json"]).ok().json();
    assert_eq!(tables, manifest_tables(&shown2["databases"][0]));
    let diff = env.run(&["diff", &id, &id2, "--json"]).ok().json();
    assert_eq!(diff, serde_json::json!([]), "{diff}");

    // Identity and serial columns continue where the source stands.
    for db in ["dms", "dms_copy"] {
        let next = pg.psql(
            db,
            "INSERT INTO sales.customers (name) VALUES ('next') RETURNING id, name_upper",
        );
        assert_eq!(next, "201|NEXT", "{db}");
        let inv = pg.psql(
            db,
            "INSERT INTO sales.invoices (period) VALUES ('[2030-01-01,2030-01-02)') RETURNING no",
        );
        assert_eq!(inv, "2200", "{db}");
    }
    // The triggers were created after the data: the audit log was not
    // doubled by the load, and they fire in the copy.
    assert_eq!(
        pg.psql("dms_copy", "SELECT count(*) FROM ONLY audit.log"),
        pg.psql("dms", "SELECT count(*) FROM ONLY audit.log")
    );
}

#[test]
fn concurrent_transfers_between_two_tables_are_captured_consistently() {
    const ACCOUNTS: i64 = 20_000;
    const START: i64 = 1_000;
    let pg = Postgres::start();
    new_database(
        &pg,
        "bank",
        &format!(
            "CREATE TABLE accounts_a (id int PRIMARY KEY, balance bigint NOT NULL, pad text);
             CREATE TABLE accounts_b (id int PRIMARY KEY, balance bigint NOT NULL, pad text);
             CREATE TABLE ledger (id bigserial PRIMARY KEY, a int NOT NULL, b int NOT NULL, amount bigint NOT NULL);
             INSERT INTO accounts_a SELECT i, {START}, repeat(md5(i::text), 6) FROM generate_series(1, {ACCOUNTS}) i;
             INSERT INTO accounts_b SELECT i, {START}, repeat(md5(i::text), 6) FROM generate_series(1, {ACCOUNTS}) i;"
        ),
    );
    let env = Env::local();
    env.init();
    let script = env.path("transfer.sql");
    std::fs::write(
        &script,
        format!(
            "\\set a random(1, {ACCOUNTS})\n\\set b random(1, {ACCOUNTS})\n\\set x random(1, 100)\n\
             BEGIN;\n\
             UPDATE accounts_a SET balance = balance - :x WHERE id = :a;\n\
             INSERT INTO ledger (a, b, amount) VALUES (:a, :b, :x);\n\
             UPDATE accounts_b SET balance = balance + :x WHERE id = :b;\n\
             COMMIT;\n"
        ),
    )
    .unwrap();
    let mut writer = pg
        .client_command("pgbench")
        .args(["-n", "-c", "2", "-j", "1", "-T", "300", "-f"])
        .arg(&script)
        .arg("bank")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("run pgbench");
    wait_for(
        &pg,
        "postgres",
        "SELECT (SELECT count(*) FROM pg_stat_activity WHERE datname = 'bank') >= 2",
        "t",
        Duration::from_secs(10),
    );
    std::thread::sleep(Duration::from_millis(300));
    let before: i64 = pg
        .psql("bank", "SELECT count(*) FROM ledger")
        .parse()
        .unwrap();
    assert!(before > 0, "the writer does not run");

    let id = id_of(&create(&env, &[&pg.conninfo("bank")], &["--jobs", "2"]));
    std::thread::sleep(Duration::from_millis(200));
    let after: i64 = pg
        .psql("bank", "SELECT count(*) FROM ledger")
        .parse()
        .unwrap();
    let _ = writer.kill();
    let _ = writer.wait();

    env.run(&[
        "restore",
        &id,
        "--postgres-target",
        &pg.conninfo("bank_copy"),
    ])
    .ok();
    let captured: i64 = pg
        .psql("bank_copy", "SELECT count(*) FROM ledger")
        .parse()
        .unwrap();
    assert!(
        before < captured && captured < after,
        "the capture must fall inside the writes: {before} < {captured} < {after}"
    );
    let total = 2 * ACCOUNTS * START;
    let check = pg.psql(
        "bank_copy",
        &format!(
            "SELECT (SELECT sum(balance) FROM accounts_a) + (SELECT sum(balance) FROM accounts_b) = {total}, \
                    (SELECT sum(balance) FROM accounts_b) - {ACCOUNTS} * {START} = (SELECT coalesce(sum(amount), 0) FROM ledger), \
                    (SELECT count(*) FROM accounts_a x LEFT JOIN (SELECT a, sum(amount) s FROM ledger GROUP BY a) l ON l.a = x.id \
                     WHERE x.balance <> {START} - coalesce(l.s, 0)) = 0, \
                    (SELECT count(*) FROM accounts_b x LEFT JOIN (SELECT b, sum(amount) s FROM ledger GROUP BY b) l ON l.b = x.id \
                     WHERE x.balance <> {START} + coalesce(l.s, 0)) = 0, \
                    (SELECT last_value FROM ledger_id_seq) >= (SELECT max(id) FROM ledger)"
        ),
    );
    assert_eq!(
        check, "t|t|t|t|t",
        "invariants (total, ledger vs b, per account a, per account b, sequence) of the restored copy"
    );
}
