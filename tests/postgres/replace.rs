//! Restores onto existing names: `--replace`, `verify --restore-test`,
//! and failed restores that must leave nothing behind.

use super::support::*;
use crate::common::*;
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};
use testkit::Postgres;

#[test]
fn replace_swaps_in_the_snapshot_and_keeps_the_previous_database() {
    let pg = Postgres::start();
    fixture_db(&pg, "dms");
    let env = Env::local();
    env.init();
    let at_snapshot = fingerprint(&pg, "dms");
    let schema_at_snapshot = schema_dump(&pg, "dms");
    let id = id_of(&create(&env, &[&pg.conninfo("dms")], &[]));

    // The live database moves on.
    psql_file(
        &pg,
        "dms",
        "INSERT INTO sales.events SELECT i, now(), 'late', NULL FROM generate_series(40001, 40100) i;
         DELETE FROM sales.kitchen_sink WHERE id = 3;
         DROP TABLE audit.cache;
         CREATE TABLE public.added_after (x int);
         INSERT INTO public.added_after VALUES (1);
         SELECT nextval('sales.invoice_print_no');
         SELECT lo_unlink(424242);
         REFRESH MATERIALIZED VIEW sales.mv_never_refreshed;",
    );
    let changed = fingerprint(&pg, "dms");
    assert_ne!(changed, at_snapshot);

    // A plain restore into it is refused and touches nothing.
    let before = databases(&pg);
    env.run(&["restore", &id, "--postgres-target", &pg.conninfo("dms")])
        .fails(9, "not empty");
    assert_same(
        "a refused restore changed the target",
        &changed,
        &fingerprint(&pg, "dms"),
    );
    assert_eq!(
        databases(&pg),
        before,
        "a refused restore left a database behind"
    );

    // Sessions on the live database: one busy, one idle in a transaction.
    let mut sleeper = pg
        .client_command("psql")
        .args(["-X", "-q", "-d", "dms", "-c", "SELECT pg_sleep(60)"])
        .env("PGAPPNAME", "sleeper")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut idler = Session::open(&pg, "dms", "idler");
    idler.send("BEGIN; SELECT 1;");
    wait_for(
        &pg,
        "postgres",
        "SELECT count(*) FROM pg_stat_activity WHERE datname = 'dms' \
         AND ((application_name = 'sleeper' AND state = 'active') \
           OR (application_name = 'idler' AND state = 'idle in transaction'))",
        "2",
        Duration::from_secs(10),
    );

    let (r, took) = run_limited(
        env.cmd(&[
            "restore",
            &id,
            "--postgres-target",
            &pg.conninfo("dms"),
            "--replace",
            "--json",
        ]),
        Duration::from_secs(120),
    );
    let r = r.ok().json();
    let d = &r["database"];
    assert_eq!(d["database"], "dms", "{r}");
    let previous = d["previous"]
        .as_str()
        .unwrap_or_else(|| panic!("{r}"))
        .to_string();
    assert!(previous.starts_with("dms__before_restore_"), "{r}");
    let downtime = d["downtime_secs"].as_f64().unwrap_or_else(|| panic!("{r}"));
    assert!((0.0..5.0).contains(&downtime), "downtime {downtime}s: {r}");
    assert!(downtime < took.as_secs_f64());

    // The live name holds the snapshot; the previous state is kept.
    assert_same(
        "the live database after --replace",
        &at_snapshot,
        &fingerprint(&pg, "dms"),
    );
    assert_same_schema(&schema_at_snapshot, &schema_dump(&pg, "dms"));
    assert_same(
        "the kept previous database",
        &changed,
        &fingerprint(&pg, &previous),
    );
    let dbs = databases(&pg);
    assert!(
        !dbs.iter().any(|n| n.contains("__restore_")),
        "side database left behind: {dbs:?}"
    );
    assert_eq!(
        pg.psql(
            "postgres",
            &format!(
                "SELECT string_agg(datallowconn::text, ',' ORDER BY datname) FROM pg_database \
                 WHERE datname IN ('dms', {})",
                lit(&previous)
            )
        ),
        "true,true",
        "both databases must accept connections again"
    );

    // The sessions on the old database were ended.
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(s) = sleeper.try_wait().unwrap() {
            break s;
        }
        if Instant::now() > deadline {
            let _ = sleeper.kill();
            panic!("the busy session on the replaced database was not terminated");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(!status.success(), "pg_sleep(60) cannot have finished");
    assert_eq!(
        pg.psql(
            "postgres",
            "SELECT count(*) FROM pg_stat_activity WHERE application_name IN ('sleeper', 'idler')"
        ),
        "0"
    );
    drop(idler);

    // --replace onto a name that does not exist yet: nothing to keep.
    let r = env
        .run(&[
            "restore",
            &id,
            "--postgres-target",
            &pg.conninfo("dms_new"),
            "--replace",
            "--json",
        ])
        .ok()
        .json();
    assert_eq!(r["database"]["database"], "dms_new", "{r}");
    assert!(r["database"]["previous"].is_null(), "{r}");
    assert_same(
        "--replace onto a new name",
        &at_snapshot,
        &fingerprint(&pg, "dms_new"),
    );
}

#[test]
fn verify_restore_test_passes_then_a_flipped_byte_fails_without_leftovers() {
    let pg = Postgres::start();
    fixture_db(&pg, "dms");
    let env = Env::local();
    env.init();
    let created = create(&env, &[&pg.conninfo("dms")], &[]);
    let id = id_of(&created);
    let server = pg.conninfo("postgres");
    let scratch_dbs =
        "SELECT count(*) FROM pg_database WHERE datname LIKE 'backup\\_restore\\_test\\_%'";

    let v = env
        .run(&["verify", &id, "--restore-test", &server, "--json"])
        .ok()
        .json();
    let tests = v["restore_tests"]
        .as_array()
        .unwrap_or_else(|| panic!("{v}"));
    assert_eq!(tests.len(), 1, "{v}");
    let t = &tests[0];
    assert_eq!(t["database"], "dms");
    assert!(
        t["scratch"]
            .as_str()
            .unwrap()
            .starts_with("backup_restore_test_"),
        "{t}"
    );
    assert_eq!(t["tables"], FIXTURE_TABLES);
    assert_eq!(t["rows"], created["databases"][0]["rows"]);
    assert_eq!(t["mismatches"], serde_json::json!([]), "{t}");
    assert_eq!(
        pg.psql("postgres", scratch_dbs),
        "0",
        "scratch database left behind"
    );
    // Without an id: the latest snapshot.
    env.run(&["verify", "--restore-test", &server]).ok();
    assert_eq!(pg.psql("postgres", scratch_dbs), "0");

    // Damage every pack in the middle: same size, so only reading finds it.
    let packs = files_under(&Path::new(&env.repo).join("data"));
    assert!(!packs.is_empty());
    for p in &packs {
        let len = std::fs::metadata(p).unwrap().len() as i64;
        flip_byte(p, len / 2);
    }
    let before = databases(&pg);
    let r = env.run(&["verify", &id, "--restore-test", &server, "--json"]);
    assert_eq!(r.code, 3, "{r:?}");
    assert_eq!(
        pg.psql("postgres", scratch_dbs),
        "0",
        "scratch database left behind"
    );
    env.run(&[
        "restore",
        &id,
        "--postgres-target",
        &pg.conninfo("dms_copy"),
    ])
    .fails(3, "damaged");
    assert_eq!(
        databases(&pg),
        before,
        "a refused restore left a database behind"
    ); // A damaged snapshot never replaces the live database.
    let live = fingerprint(&pg, "dms");
    env.run(&[
        "restore",
        &id,
        "--postgres-target",
        &pg.conninfo("dms"),
        "--replace",
    ])
    .fails(3, "damaged");
    assert_eq!(
        databases(&pg),
        before,
        "a refused --replace left a database behind"
    );
    assert_same(
        "the live database after a refused --replace",
        &live,
        &fingerprint(&pg, "dms"),
    );
}

#[test]
fn a_role_missing_on_the_target_fails_the_restore_with_exit_9_unless_no_owner() {
    let pg = Postgres::start();
    psql_file(
        &pg,
        "postgres",
        "CREATE ROLE gone_owner; CREATE ROLE gone_reader; CREATE DATABASE dms;",
    );
    psql_file(
        &pg,
        "dms",
        "CREATE TABLE public.t (x int); INSERT INTO public.t SELECT generate_series(1, 100);
         ALTER TABLE public.t OWNER TO gone_owner;
         GRANT SELECT ON public.t TO gone_reader;
         SELECT lo_from_bytea(880001, 'owned by a role that goes away'::bytea);
         ALTER LARGE OBJECT 880001 OWNER TO gone_owner;",
    );
    let want = fingerprint(&pg, "dms");
    let env = Env::local();
    env.init();
    let id = id_of(&create(&env, &[&pg.conninfo("dms")], &["--globals"]));
    // The roles disappear (as on another server).
    pg.psql("postgres", "DROP DATABASE dms");
    pg.psql("postgres", "DROP ROLE gone_owner; DROP ROLE gone_reader");

    let before = databases(&pg);
    env.run(&["restore", &id, "--postgres-target", &pg.conninfo("dms")])
        .fails(9, "pg_restore")
        .fails(9, "gone_owner");
    assert_eq!(
        databases(&pg),
        before,
        "a failed restore left its database behind"
    );

    let r = env
        .run(&[
            "restore",
            &id,
            "--postgres-target",
            &pg.conninfo("dms"),
            "--no-owner",
            "--json",
        ])
        .ok()
        .json();
    assert_eq!(r["database"]["rows"], 100, "{r}");
    let got = fingerprint(&pg, "dms");
    assert_eq!(got["table public.t"], want["table public.t"]);
    assert_eq!(
        got["large object 880001"].split(' ').nth(1),
        want["large object 880001"].split(' ').nth(1),
        "large object content"
    );
    assert_eq!(
        pg.psql(
            "dms",
            "SELECT pg_get_userbyid(relowner) FROM pg_class WHERE relname = 't'"
        ),
        "postgres"
    );
    // A restore test needs no roles either.
    env.run(&["verify", &id, "--restore-test", &pg.conninfo("postgres")])
        .ok();

    // --globals replays the captured roles first: owner and grants come back.
    let r = env.run(&[
        "restore",
        &id,
        "--postgres-target",
        &pg.conninfo("dms_globals"),
        "--globals",
    ]);
    assert_eq!(
        r.code, 0,
        "restore --globals failed (roles of the capture not replayed?):\n{}",
        r.stderr
    );
    assert_eq!(
        pg.psql(
            "dms_globals",
            "SELECT pg_get_userbyid(relowner) || ' ' || relacl::text FROM pg_class WHERE relname = 't'"
        ),
        "gone_owner {gone_owner=arwdDxt/gone_owner,gone_reader=r/gone_owner}"
    );
    assert_same("restore --globals", &want, &fingerprint(&pg, "dms_globals"));
}

#[test]
fn a_failed_restore_into_an_existing_empty_database_leaves_it_empty() {
    let pg = Postgres::start();
    psql_file(
        &pg,
        "postgres",
        "CREATE ROLE gone_owner; CREATE DATABASE dms;",
    );
    psql_file(
        &pg,
        "dms",
        "CREATE TABLE public.a (x int); INSERT INTO public.a VALUES (1);
         CREATE TABLE public.b (y int); ALTER TABLE public.b OWNER TO gone_owner;",
    );
    let env = Env::local();
    env.init();
    let id = id_of(&create(&env, &[&pg.conninfo("dms")], &[]));
    pg.psql("postgres", "DROP DATABASE dms");
    pg.psql("postgres", "DROP ROLE gone_owner");
    // The DBA prepares an empty database; the restore fails half-way
    // (pg_restore cannot give table b to the missing role).
    pg.psql("postgres", "CREATE DATABASE dms");
    env.run(&["restore", &id, "--postgres-target", &pg.conninfo("dms")])
        .fails(9, "gone_owner");
    let left = pg.psql(
        "dms",
        "SELECT coalesce(string_agg(relname::text, ',' ORDER BY relname), '') FROM pg_class \
         WHERE relnamespace = 'public'::regnamespace",
    );
    assert_eq!(
        left, "",
        "a failed restore left a half-restored database behind (a retry is then refused as not empty)"
    );
    env.run(&[
        "restore",
        &id,
        "--postgres-target",
        &pg.conninfo("dms"),
        "--no-owner",
    ])
    .ok();
}
