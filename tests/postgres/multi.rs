//! Several sources in one snapshot: two databases and a file tree.

use super::support::*;
use crate::common::*;
use testkit::Postgres;

#[test]
fn two_databases_and_a_file_tree_in_one_snapshot() {
    // The second database has a name that needs quoting everywhere.
    const CRM: &str = "crm Ü's";
    let pg = Postgres::start();
    fixture_db(&pg, "dms");
    pg.psql("postgres", "CREATE DATABASE \"crm Ü's\"");
    psql_file(
        &pg,
        CRM,
        "CREATE TABLE public.leads (id serial PRIMARY KEY, name text, score real);
         INSERT INTO public.leads (name, score) SELECT 'lead ' || i, i / 7.0 FROM generate_series(1, 500) i;
         CREATE SEQUENCE public.campaign_no; SELECT setval('public.campaign_no', 77);",
    );
    let conn = |db: &str| {
        format!(
            "host=127.0.0.1 port={} user=postgres dbname='{}'",
            pg.port(),
            db.replace('\\', "\\\\").replace('\'', "\\'")
        )
    };
    let env = Env::local();
    env.init();
    let tree = env.path("srv/dms");
    fixture(&tree);
    let want_crm = fingerprint(&pg, CRM);

    env.run(&[
        "create",
        "--postgres",
        &pg.conninfo("dms"),
        "--postgres",
        &pg.conninfo("dms"),
    ])
    .fails(2, "given twice");
    assert_nothing_written(&env, 0);

    let created = create(
        &env,
        &[&pg.conninfo("dms"), &conn(CRM)],
        &["--files", tree.to_str().unwrap()],
    );
    let id = id_of(&created);
    let names: Vec<&str> = created["databases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["database"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["dms", CRM], "{created}");
    assert!(created["files"].as_u64().unwrap() > 0, "{created}");

    let before = databases(&pg);
    env.run(&[
        "restore",
        &id,
        "--postgres-target",
        &pg.conninfo("some_copy"),
    ])
    .fails(2, "several databases");
    env.run(&[
        "restore",
        &id,
        "--postgres-target",
        &pg.conninfo("some_copy"),
        "--database",
        "nope",
    ])
    .fails(2, "nope");
    assert_eq!(databases(&pg), before);

    // Into an existing, empty database.
    let copy = "crm copy ü's";
    pg.psql("postgres", "CREATE DATABASE \"crm copy ü's\"");
    let r = env
        .run(&[
            "restore",
            &id,
            "--postgres-target",
            &conn(copy),
            "--database",
            CRM,
            "--json",
        ])
        .ok()
        .json();
    assert_eq!(r["database"]["database"], copy);
    assert_eq!(r["database"]["rows"], 500);
    assert_same(
        "a database restored from a two-database snapshot",
        &want_crm,
        &fingerprint(&pg, copy),
    );
    // Again, over it, with --replace.
    pg.psql(copy, "DELETE FROM public.leads WHERE id > 10");
    let r = env
        .run(&[
            "restore",
            &id,
            "--postgres-target",
            &conn(copy),
            "--database",
            CRM,
            "--replace",
            "--json",
        ])
        .ok()
        .json();
    let previous = r["database"]["previous"]
        .as_str()
        .unwrap_or_else(|| panic!("{r}"));
    assert!(previous.starts_with("crm copy ü's__before_restore_"), "{r}");
    assert_same("after --replace", &want_crm, &fingerprint(&pg, copy));
    assert_eq!(pg.psql(previous, "SELECT count(*) FROM public.leads"), "10");

    let target = env.path("restore");
    env.run(&["restore", &id, "--target", target.to_str().unwrap()])
        .ok();
    assert_eq!(digest(&tree), digest(&restored(&target, &tree)));
}
