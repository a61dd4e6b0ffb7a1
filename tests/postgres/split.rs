//! Large tables are read in `ctid` page ranges by parallel workers; the
//! parts must add up to exactly the table, also while rows are added.

use super::support::*;
use crate::common::*;
use testkit::Postgres;

#[test]
fn a_table_read_in_page_ranges_restores_exactly() {
    let pg = Postgres::start();
    new_database(
        &pg,
        "big",
        "CREATE TABLE public.events (id bigint PRIMARY KEY, kind text, payload text);
         INSERT INTO public.events SELECT g, 'kind-' || (g % 17), repeat(md5(g::text), 8)
           FROM generate_series(1, 40000) g;
         DELETE FROM public.events WHERE id % 7 = 0;
         CREATE TABLE public.small (x int); INSERT INTO public.small VALUES (1);",
    );
    let want = fingerprint(&pg, "big");
    let env = Env::local();
    env.init();
    // 1 MiB: the ~12 MiB table is split into many ranges of 64 pages.
    let created = create(
        &env,
        &[&pg.conninfo("big")],
        &["--table-split-mib", "1", "--jobs", "3"],
    );
    let id = id_of(&created);
    let shown = env.run(&["show", &id, "--json"]).ok().json();
    let tables = shown["databases"][0]["tables"].as_array().unwrap();
    let events = tables.iter().find(|t| t["name"] == "events").unwrap();
    let parts = events["streams"].as_array().unwrap();
    assert!(
        parts.len() >= 5,
        "expected several page ranges: {}",
        parts.len()
    );
    // Ranges are contiguous, start at page 0 and the last one is open.
    assert_eq!(parts[0]["first_page"], 0);
    for w in parts.windows(2) {
        assert_eq!(w[0]["end_page"], w[1]["first_page"]);
    }
    assert!(parts.last().unwrap()["end_page"].is_null());
    let rows: u64 = parts.iter().map(|p| p["rows"].as_u64().unwrap()).sum();
    assert_eq!(rows, events["rows"].as_u64().unwrap());
    assert_eq!(rows, 40000 - 40000 / 7);
    let small = tables.iter().find(|t| t["name"] == "small").unwrap();
    assert_eq!(small["streams"].as_array().unwrap().len(), 1);

    // Restore loads several ranges of the table at once.
    let r = env
        .run(&[
            "restore",
            &id,
            "--postgres-target",
            &pg.conninfo("big_copy"),
            "--jobs",
            "3",
            "--json",
        ])
        .ok()
        .json();
    assert_eq!(r["database"]["rows"], rows + 1);
    assert_same(
        "the restored database differs from the source",
        &want,
        &fingerprint(&pg, "big_copy"),
    );
    // One worker loads the split table whole, its parts one after another
    // in one transaction.
    restore_matches(&env, &pg, &id, "big_serial", &want, &["--jobs", "1"]);
    // COPY FREEZE marks the pages all-frozen in the visibility map.
    let frozen = pg.psql(
        "big_serial",
        "CREATE EXTENSION IF NOT EXISTS pg_visibility; \
         SELECT all_frozen > 0 AND all_frozen = (pg_relation_size('public.events') / 8192) \
         FROM pg_visibility_map_summary('public.events')",
    );
    assert_eq!(
        frozen.trim(),
        "t",
        "the whole-table load should land frozen"
    );
    env.run(&["verify", &id, "--restore-test", &pg.conninfo("postgres")])
        .ok();
}
