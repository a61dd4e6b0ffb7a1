//! `diff` between two captures of a database: changed tables and
//! sequences are listed, untouched ones are not.

use super::support::*;
use crate::common::*;
use serde_json::Value;
use testkit::Postgres;

#[test]
fn diff_lists_the_tables_and_sequences_that_changed_between_two_captures() {
    let pg = Postgres::start();
    new_database(
        &pg,
        "shop",
        "CREATE SCHEMA sales;
         CREATE TABLE sales.prices (id int PRIMARY KEY, amount numeric NOT NULL);
         INSERT INTO sales.prices VALUES (1, 10), (2, 20), (3, 30);
         CREATE TABLE sales.orders (id int PRIMARY KEY, item text NOT NULL);
         INSERT INTO sales.orders VALUES (1, 'bolt');
         CREATE TABLE public.untouched (x int); INSERT INTO public.untouched VALUES (7), (8);
         CREATE SEQUENCE sales.order_no; SELECT setval('sales.order_no', 41);
         CREATE SEQUENCE public.idle_no;",
    );
    let env = Env::local();
    env.init();
    let a = id_of(&create(&env, &[&pg.conninfo("shop")], &[]));

    // One row changes in place (same row count), one row is added, the
    // sequence advances; the other table and sequence stay as they were.
    psql_file(
        &pg,
        "shop",
        "UPDATE sales.prices SET amount = 25 WHERE id = 2;
         INSERT INTO sales.orders VALUES (2, 'nut');
         SELECT nextval('sales.order_no');",
    );
    let b = id_of(&create(&env, &[&pg.conninfo("shop")], &[]));

    let diff = env.run(&["diff", &a, &b, "--json"]).ok().json();
    let changes = diff.as_array().unwrap_or_else(|| panic!("{diff}"));
    let listed: Vec<(&str, &str)> = changes
        .iter()
        .map(|c| (c["kind"].as_str().unwrap(), c["path"].as_str().unwrap()))
        .collect();
    let mut want = vec![
        ("modified", "postgres:shop/table sales.prices"),
        ("modified", "postgres:shop/table sales.orders"),
        ("modified", "postgres:shop/sequence sales.order_no"),
    ];
    let mut got = listed.clone();
    want.sort();
    got.sort();
    assert_eq!(got, want, "{diff}");
    assert!(
        !listed
            .iter()
            .any(|(_, p)| p.contains("untouched") || p.contains("idle_no")),
        "an unchanged table or sequence is listed: {diff}"
    );
    let details = |path: &str| -> String {
        let c: &Value = changes.iter().find(|c| c["path"] == path).unwrap();
        c["details"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d.as_str().unwrap())
            .collect::<Vec<_>>()
            .join(", ")
    };
    assert!(
        details("postgres:shop/table sales.orders").contains("2 rows"),
        "{diff}"
    );
    assert!(
        details("postgres:shop/sequence sales.order_no").contains("42"),
        "{diff}"
    );

    // A snapshot compared with itself: no change.
    let same = env.run(&["diff", &a, &a, "--json"]).ok().json();
    assert_eq!(same, serde_json::json!([]), "{same}");
}
