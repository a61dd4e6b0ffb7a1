//! Captures that must fail cleanly (no snapshot, no lock): bad
//! connections, missing privileges, locks, broken or old `pg_dump`s, the
//! server going away.

use super::support::*;
use crate::common::*;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};
use testkit::Postgres;

#[test]
fn connection_faults_fail_with_exit_8_and_write_nothing() {
    let mut pg = Postgres::start();
    pg.psql("postgres", "CREATE DATABASE dms");
    pg.psql("dms", "CREATE TABLE t (x int); INSERT INTO t VALUES (1)");
    let env = Env::local();
    env.init();
    let port = pg.port();
    let base = |rest: &str| format!("host=127.0.0.1 port={port} {rest}");

    let r = env
        .run(&[
            "create",
            "--postgres",
            "postgresql://u:Leak3d-Pw@127.0.0.1/db?bogus=1",
        ])
        .fails(2, "bad connection string");
    assert!(!r.stderr.contains("Leak3d-Pw"), "{r:?}");
    assert_nothing_written(&env, 0);

    env.run(&[
        "create",
        "--postgres",
        &base("user=postgres dbname=no_such_db"),
    ])
    .fails(8, "no_such_db")
    .fails(8, "does not exist")
    .fails(8, "check the database and user names");
    assert_nothing_written(&env, 0);
    env.run(&[
        "create",
        "--postgres",
        &base("user=no_such_role dbname=dms"),
    ])
    .fails(8, "no_such_role")
    .fails(8, "does not exist")
    .fails(8, "check the database and user names");
    assert_nothing_written(&env, 0);

    // Password authentication for one role (the cluster trusts everyone else).
    pg.psql(
        "postgres",
        "SET password_encryption = 'scram-sha-256'; \
         CREATE ROLE secure_user LOGIN SUPERUSER PASSWORD 'Corr3ct-Horse'",
    );
    let hba = pg.data_dir().join("pg_hba.conf");
    let text = std::fs::read_to_string(&hba).unwrap();
    std::fs::write(
        &hba,
        format!("host all secure_user 127.0.0.1/32 scram-sha-256\n{text}"),
    )
    .unwrap();
    pg.psql("postgres", "SELECT pg_reload_conf()");
    std::thread::sleep(Duration::from_millis(500));

    let secret = "Wr0ng-Secret-xyz";
    let r = env
        .run(&[
            "create",
            "--postgres",
            &base(&format!("user=secure_user dbname=dms password={secret}")),
        ])
        .fails(8, "password authentication failed")
        .fails(8, "check the password");
    assert!(
        !r.stderr.contains(secret) && !r.stdout.contains(secret),
        "{r:?}"
    );
    let uri = format!("postgresql://secure_user:{secret}@127.0.0.1:{port}/dms");
    let r = env
        .run(&["create", "--postgres", &uri])
        .fails(8, "password");
    assert!(
        !r.stderr.contains(secret) && !r.stdout.contains(secret),
        "{r:?}"
    );
    let no_password = Run::from(
        env.cmd(&["create", "--postgres", &base("user=secure_user dbname=dms")])
            .env_remove("PGPASSWORD")
            .env("PGPASSFILE", env.path("no-pgpass"))
            .output()
            .unwrap(),
    );
    no_password.fails(8, "give the password with PGPASSWORD");
    assert_nothing_written(&env, 0);

    // The right password works and is stored nowhere.
    let good = create(
        &env,
        &[&base("user=secure_user dbname=dms password=Corr3ct-Horse")],
        &[],
    );
    let shown = env.run(&["show", &id_of(&good), "--json"]).ok();
    assert!(!shown.stdout.contains("Corr3ct-Horse"), "{}", shown.stdout);
    assert!(
        shown.stdout.contains("user=secure_user"),
        "{}",
        shown.stdout
    );
    assert_eq!(snapshot_count(&env), 1);

    // The server is down.
    pg.stop();
    let (r, took) = run_limited(
        env.cmd(&["create", "--postgres", &pg.conninfo("dms")]),
        Duration::from_secs(60),
    );
    let r = r.fails(8, "cannot connect");
    assert!(r.stderr.contains("is the server running"), "{r:?}");
    assert!(took < Duration::from_secs(15), "took {took:?}");
    assert_nothing_written(&env, 1);
}

#[test]
fn a_table_the_role_cannot_read_fails_the_capture() {
    let pg = Postgres::start();
    new_database(
        &pg,
        "dms",
        "CREATE ROLE clerk LOGIN;
         CREATE TABLE public.open_data (x int); INSERT INTO public.open_data VALUES (1);
         CREATE TABLE public.payroll (x int); INSERT INTO public.payroll VALUES (2);
         GRANT SELECT ON public.open_data TO clerk;",
    );
    let env = Env::local();
    env.init();
    let conn = format!("host=127.0.0.1 port={} user=clerk dbname=dms", pg.port());
    env.run(&["create", "--postgres", &conn])
        .fails(8, "public.payroll")
        .fails(8, "permission denied");
    assert_nothing_written(&env, 0);
    pg.psql("dms", "GRANT SELECT ON public.payroll TO clerk");
    let ok = create(&env, &[&conn], &[]);
    assert_eq!(ok["databases"][0]["rows"], 2, "{ok}");
}

#[test]
fn an_unreadable_large_object_is_named_in_the_error() {
    let pg = Postgres::start();
    new_database(
        &pg,
        "dms",
        "CREATE ROLE reader LOGIN IN ROLE pg_read_all_data;
         CREATE TABLE public.t (x int);
         SELECT lo_from_bytea(777001, 'private scan'::bytea);",
    );
    let env = Env::local();
    env.init();
    let conn = format!("host=127.0.0.1 port={} user=reader dbname=dms", pg.port());
    env.run(&["create", "--postgres", &conn])
        .fails(8, "large object 777001")
        .fails(8, "permission denied");
    assert_nothing_written(&env, 0);
}

#[test]
fn a_lock_that_cannot_be_taken_fails_within_the_lock_timeout() {
    let pg = Postgres::start();
    pg.psql("postgres", "CREATE DATABASE dms");
    pg.psql(
        "dms",
        "CREATE TABLE public.free (x int); CREATE TABLE public.busy (x int); INSERT INTO public.busy VALUES (1)",
    );
    let env = Env::local();
    env.init();
    let mut holder = Session::open(&pg, "dms", "holder");
    holder.send("BEGIN; LOCK TABLE public.busy IN ACCESS EXCLUSIVE MODE;");
    wait_for(
        &pg,
        "dms",
        "SELECT count(*) FROM pg_locks l JOIN pg_stat_activity a USING (pid) \
         WHERE a.application_name = 'holder' AND l.mode = 'AccessExclusiveLock' AND l.granted \
         AND l.relation = 'public.busy'::regclass",
        "1",
        Duration::from_secs(10),
    );
    let (r, took) = run_limited(
        env.cmd(&[
            "create",
            "--postgres",
            &pg.conninfo("dms"),
            "--lock-timeout",
            "1",
        ]),
        Duration::from_secs(60),
    );
    assert!(
        took < Duration::from_secs(8),
        "took {took:?} with --lock-timeout 1"
    );
    r.fails(8, "cannot lock table public.busy")
        .fails(8, "--lock-timeout");
    assert_nothing_written(&env, 0);
    holder.send("COMMIT;");
    drop(holder);
    create(&env, &[&pg.conninfo("dms")], &["--lock-timeout", "5"]);
}

#[test]
fn pg_dump_older_than_the_server_is_refused() {
    let pg = Postgres::start();
    pg.psql("postgres", "CREATE DATABASE dms");
    pg.psql("dms", "CREATE TABLE t (x int)");
    let mut env = Env::local();
    env.init();
    let dir = fake_pg_dump(
        &env,
        "old-bin",
        "#!/bin/sh\nif [ \"$1\" = \"--version\" ]; then echo 'pg_dump (PostgreSQL) 9.6.0'; exit 0; fi\n\
         echo 'the old pg_dump must not be run' >&2\nexit 1\n",
    );
    env.extra
        .push(("BACKUP_PG_BIN".into(), dir.display().to_string()));
    // BACKUP_PG_BIN names the tools to use: an old one there is refused,
    // not silently replaced by another pg_dump found elsewhere.
    let r = env.run(&["create", "--postgres", &pg.conninfo("dms")]);
    assert_ne!(
        r.code, 0,
        "the pg_dump 9.6 in BACKUP_PG_BIN was skipped silently and another pg_dump used:\n{}",
        r.stdout
    );
    r.fails(8, "older than the server");
    assert_nothing_written(&env, 0);
}

#[test]
fn a_failing_or_killed_pg_dump_writes_no_snapshot() {
    let pg = Postgres::start();
    pg.psql("postgres", "CREATE DATABASE dms");
    pg.psql("dms", "CREATE TABLE t (x int); INSERT INTO t VALUES (1)");
    let major = server_major(&pg);
    let version = format!(
        "#!/bin/sh\nif [ \"$1\" = \"--version\" ]; then echo 'pg_dump (PostgreSQL) {major}.99'; exit 0; fi\n"
    );
    let mut env = Env::local();
    env.init();

    let failing = fake_pg_dump(
        &env,
        "failing-bin",
        &format!("{version}printf 'PGDMP-partial-archive'\necho 'pg_dump: error: simulated failure' >&2\nexit 1\n"),
    );
    env.extra = vec![("BACKUP_PG_BIN".into(), failing.display().to_string())];
    env.run(&["create", "--postgres", &pg.conninfo("dms")])
        .fails(8, "pg_dump failed")
        .fails(8, "simulated failure");
    assert_nothing_written(&env, 0);

    let killed = fake_pg_dump(
        &env,
        "killed-bin",
        &format!("{version}printf 'PGDMP-partial-archive'\nkill -9 $$\n"),
    );
    env.extra = vec![("BACKUP_PG_BIN".into(), killed.display().to_string())];
    env.run(&["create", "--postgres", &pg.conninfo("dms")])
        .fails(8, "pg_dump failed");
    assert_nothing_written(&env, 0);

    // The real one works from the same repository, over the Unix socket
    // and with a URI as well.
    env.extra.clear();
    let socket = format!(
        "host={} port={} user=postgres dbname=dms",
        pg.socket_dir().display(),
        pg.port()
    );
    let id = id_of(&create(&env, &[&socket], &[]));
    assert_eq!(snapshot_count(&env), 1);
    let uri = format!("postgresql://postgres@127.0.0.1:{}/dms_uri", pg.port());
    env.run(&["restore", &id, "--postgres-target", &uri]).ok();
    assert_eq!(pg.psql("dms_uri", "SELECT x FROM t"), "1");
}

/// Starts `create` in the background and waits until one of its
/// connections runs a COPY.
fn create_until_copying(env: &Env, pg: &Postgres, db: &str) -> Child {
    let mut child = env
        .cmd(&["create", "--postgres", &pg.conninfo(db), "--jobs", "1"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let copying = pg.psql(
            "postgres",
            "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'backup' \
             AND state = 'active' AND query LIKE 'COPY%'",
        );
        if copying != "0" {
            return child;
        }
        if let Some(st) = child.try_wait().unwrap() {
            let run = collect(&mut child, Duration::from_secs(1));
            panic!("create ended ({st}) before a COPY was seen; make the table bigger: {run:?}");
        }
        assert!(Instant::now() < deadline, "no COPY seen");
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn the_server_going_away_mid_capture_writes_no_snapshot() {
    let mut pg = Postgres::start();
    pg.psql("postgres", "CREATE DATABASE big");
    pg.psql(
        "big",
        "CREATE TABLE big AS SELECT i AS id, md5(i::text) || md5((i + 1)::text) || md5((i + 2)::text) AS payload \
         FROM generate_series(1, 300000) i",
    );
    let env = Env::local();
    env.init();

    // Its sessions are terminated.
    let mut child = create_until_copying(&env, &pg, "big");
    pg.psql(
        "postgres",
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'backup'",
    );
    collect(&mut child, Duration::from_secs(60)).fails(8, "table public.big");
    assert_nothing_written(&env, 0);

    // The server stops at once.
    let mut child = create_until_copying(&env, &pg, "big");
    pg.stop();
    collect(&mut child, Duration::from_secs(60)).fails(8, "table public.big");
    assert_nothing_written(&env, 0);
}
