//! Table parts whose tuples are unchanged since the last capture are reused
//! unread; every kind of change (rows, columns, enum labels) is read again,
//! and each snapshot restores to the state it captured.

use super::support::*;
use crate::common::*;
use serde_json::Value;
use testkit::Postgres;

fn reused(v: &Value) -> (u64, u64) {
    let d = &v["databases"][0];
    (
        d["reused_parts"].as_u64().unwrap(),
        d["parts"].as_u64().unwrap(),
    )
}

#[test]
fn unchanged_parts_are_reused_and_every_change_is_read_again() {
    let pg = Postgres::start();
    new_database(
        &pg,
        "inc",
        "CREATE TYPE mood AS ENUM ('sad', 'ok', 'happy');
         CREATE TABLE public.log (id bigint PRIMARY KEY, body text);
         INSERT INTO public.log SELECT g, repeat(md5(g::text), 8) FROM generate_series(1, 30000) g;
         CREATE TABLE public.people (id int PRIMARY KEY, name text, m mood);
         INSERT INTO public.people SELECT g, 'p' || g, 'ok' FROM generate_series(1, 100) g;
         CREATE TABLE public.other (x int);
         INSERT INTO public.other VALUES (1), (2);",
    );
    let env = Env::local();
    env.init();
    let conn = pg.conninfo("inc");
    let split = ["--table-split-mib", "1"];

    let first = create(&env, &[&conn], &split);
    let (r, parts) = reused(&first);
    assert_eq!(r, 0, "{first}");
    assert!(parts >= 5, "log should be read in several ranges: {first}");

    // Unchanged: every part is reused and no table data is stored again.
    let second = create(&env, &[&conn], &split);
    assert_eq!(reused(&second), (parts, parts), "{second}");
    assert!(second["new_bytes"].as_u64().unwrap() < 100_000, "{second}");

    // One row updated (same size): only that table is read again.
    pg.psql("inc", "UPDATE public.people SET name = 'q7' WHERE id = 7");
    let third = create(&env, &[&conn], &split);
    assert_eq!(reused(&third), (parts - 1, parts), "{third}");
    pg.psql("postgres", "CREATE DATABASE at_third TEMPLATE inc");

    // One row deleted: read again.
    pg.psql("inc", "DELETE FROM public.people WHERE id = 8");
    let fourth = create(&env, &[&conn], &split);
    assert_eq!(reused(&fourth), (parts - 1, parts), "{fourth}");

    // Rows appended to the log land in its last pages: the earlier ranges
    // are reused, the last one (or two, if a range boundary was crossed) read.
    pg.psql(
        "inc",
        "INSERT INTO public.log SELECT g, repeat(md5(g::text), 8) FROM generate_series(30001, 30200) g",
    );
    let fifth = create(&env, &[&conn], &split);
    let (r, now) = reused(&fifth);
    assert!(r + 2 >= now && r < now, "{fifth}");

    // An enum label renamed changes the text of untouched rows: nothing is reused.
    pg.psql("inc", "ALTER TYPE mood RENAME VALUE 'ok' TO 'fine'");
    let sixth = create(&env, &[&conn], &split);
    assert_eq!(reused(&sixth).0, 0, "{sixth}");

    // A column added with a default rewrites no row but changes the COPY
    // text: that table is read again, the others are reused.
    pg.psql("inc", "ALTER TABLE public.other ADD COLUMN y int DEFAULT 5");
    let seventh = create(&env, &[&conn], &split);
    let (r, now) = reused(&seventh);
    assert_eq!(r, now - 1, "{seventh}");

    // --force reads everything.
    let forced = create(&env, &[&conn], &["--table-split-mib", "1", "--force"]);
    assert_eq!(reused(&forced).0, 0, "{forced}");

    // Every snapshot restores to what it captured.
    restore_matches(
        &env,
        &pg,
        &id_of(&third),
        "third_copy",
        &fingerprint(&pg, "at_third"),
        &[],
    );
    restore_matches(
        &env,
        &pg,
        &id_of(&seventh),
        "seventh_copy",
        &fingerprint(&pg, "inc"),
        &[],
    );
    let people = pg.psql(
        "seventh_copy",
        "SELECT string_agg(DISTINCT m::text, ',') || ' ' || count(*) FROM people",
    );
    assert_eq!(people.trim(), "fine 99");
    env.run(&["verify", "--read-data"]).ok();
}

#[test]
fn without_access_to_the_control_data_every_table_is_read_and_the_capture_still_works() {
    let pg = Postgres::start();
    new_database(
        &pg,
        "locked",
        "CREATE TABLE public.t (id int PRIMARY KEY, v text);
         INSERT INTO public.t SELECT g, 'v' || g FROM generate_series(1, 500) g;
         CREATE ROLE reader LOGIN IN ROLE pg_read_all_data;
         REVOKE EXECUTE ON FUNCTION pg_control_system() FROM PUBLIC;",
    );
    let conn = format!(
        "host=127.0.0.1 port={} user=reader dbname=locked",
        pg.port()
    );
    let env = Env::local();
    env.init();
    let first = create(&env, &[&conn], &[]);
    let second = create(&env, &[&conn], &[]);
    assert_eq!(reused(&first), (0, 1), "{first}");
    assert_eq!(reused(&second), (0, 1), "{second}");
    // The superuser may read it: from then on the table is reused.
    let third = create(&env, &[&pg.conninfo("locked")], &[]);
    let fourth = create(&env, &[&pg.conninfo("locked")], &[]);
    assert_eq!(reused(&third), (0, 1), "{third}");
    assert_eq!(reused(&fourth), (1, 1), "{fourth}");
    restore_matches(
        &env,
        &pg,
        &id_of(&second),
        "locked_copy",
        &fingerprint(&pg, "locked"),
        &[],
    );
}
