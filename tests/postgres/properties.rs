//! Properties beyond rows: database owner, settings and privileges,
//! large object privileges, row-level security, tables without columns.

use super::support::*;
use crate::common::*;
use testkit::Postgres;

#[test]
fn database_owner_settings_and_privileges_survive_a_replace() {
    let pg = Postgres::start();
    psql_file(
        &pg,
        "postgres",
        "CREATE ROLE app_owner LOGIN;
         CREATE ROLE app_user LOGIN;
         CREATE DATABASE dms OWNER app_owner;
         ALTER DATABASE dms SET search_path = sales, public;
         ALTER ROLE app_user IN DATABASE dms SET work_mem = '8MB';
         COMMENT ON DATABASE dms IS 'DMS production';
         REVOKE CONNECT, TEMPORARY ON DATABASE dms FROM PUBLIC;
         GRANT CONNECT ON DATABASE dms TO app_user;",
    );
    pg.psql(
        "dms",
        "CREATE SCHEMA sales; CREATE TABLE sales.t (x int); INSERT INTO sales.t VALUES (1)",
    );
    let props = |db: &str| {
        pg.psql(
            "postgres",
            &format!(
                "SELECT 'owner=' || pg_get_userbyid(d.datdba) || E'\\nacl=' || coalesce(d.datacl::text, '-') \
                 || E'\\ncomment=' || coalesce(shobj_description(d.oid, 'pg_database'), '-') \
                 || E'\\nsettings=' || coalesce((SELECT string_agg(coalesce(pg_get_userbyid(nullif(s.setrole, 0)), '*') \
                     || ':' || array_to_string(s.setconfig, ','), ';' ORDER BY s.setrole) \
                     FROM pg_db_role_setting s WHERE s.setdatabase = d.oid), '-') \
                 FROM pg_database d WHERE d.datname = {}",
                lit(db)
            ),
        )
    };
    let want = props("dms");
    let env = Env::local();
    env.init();
    let id = id_of(&create(&env, &[&pg.conninfo("dms")], &[]));
    // A rollback onto the live database.
    let r = env
        .run(&[
            "restore",
            &id,
            "--postgres-target",
            &pg.conninfo("dms"),
            "--replace",
            "--json",
        ])
        .ok()
        .json();
    assert!(r["database"]["previous"].is_string(), "{r}");
    let got = props("dms");
    assert_eq!(
        got, want,
        "after --replace the live database lost its owner, settings, comment or privileges"
    );
}

#[test]
fn large_object_privileges_survive_a_restore() {
    let pg = Postgres::start();
    new_database(
        &pg,
        "dms",
        "CREATE ROLE scanner;
         SELECT lo_from_bytea(55501, 'invoice scan'::bytea);
         GRANT SELECT ON LARGE OBJECT 55501 TO scanner;
         COMMENT ON LARGE OBJECT 55501 IS 'scan of invoice 1';",
    );
    let env = Env::local();
    env.init();
    let id = id_of(&create(&env, &[&pg.conninfo("dms")], &[]));
    env.run(&[
        "restore",
        &id,
        "--postgres-target",
        &pg.conninfo("dms_copy"),
    ])
    .ok();
    let q = "SELECT oid || ' ' || pg_get_userbyid(lomowner) || ' ' || coalesce(lomacl::text, '-') || ' ' \
             || coalesce(obj_description(oid, 'pg_largeobject'), '-') FROM pg_largeobject_metadata";
    assert_eq!(
        pg.psql("dms_copy", q),
        pg.psql("dms", q),
        "large object privileges or comment lost"
    );
}

#[test]
fn a_table_hidden_by_row_level_security_is_not_captured_partially() {
    let pg = Postgres::start();
    new_database(
        &pg,
        "dms",
        "CREATE ROLE reader LOGIN IN ROLE pg_read_all_data;
         CREATE TABLE public.notes (author text, body text);
         INSERT INTO public.notes VALUES ('alice', 'one'), ('bob', 'two');
         ALTER TABLE public.notes ENABLE ROW LEVEL SECURITY;
         CREATE POLICY own_notes ON public.notes USING (author = current_user);",
    );
    let env = Env::local();
    env.init();
    // `reader` may read every table, but the policy shows it no row: a
    // capture must fail (like pg_dump's row_security = off), never store
    // an empty table.
    let conn = format!("host=127.0.0.1 port={} user=reader dbname=dms", pg.port());
    let r = env.run(&["create", "--postgres", &conn, "--json"]);
    assert_eq!(
        r.code, 8,
        "a table filtered by a row-level security policy was captured silently \
         (the snapshot holds fewer rows than the table):\n{}{}",
        r.stdout, r.stderr
    );
    r.fails(8, "row-level security");
    assert_nothing_written(&env, 0);
}

#[test]
fn a_table_without_columns_round_trips() {
    let pg = Postgres::start();
    new_database(
        &pg,
        "dms",
        "CREATE TABLE public.marker ();
         INSERT INTO public.marker DEFAULT VALUES; INSERT INTO public.marker DEFAULT VALUES;
         INSERT INTO public.marker DEFAULT VALUES;
         CREATE TABLE public.t (x int); INSERT INTO public.t VALUES (1);",
    );
    let env = Env::local();
    env.init();
    let r = env.run(&["create", "--postgres", &pg.conninfo("dms"), "--json"]);
    assert_eq!(
        r.code, 0,
        "a table with no columns breaks the capture: {}",
        r.stderr
    );
    let id = id_of(&r.json());
    restore_matches(&env, &pg, &id, "dms_copy", &fingerprint(&pg, "dms"), &[]);
}
