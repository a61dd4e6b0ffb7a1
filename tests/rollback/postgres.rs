//! Rollback of a database with its trees: a v2 deployment (migration,
//! new release, config) and business writes rolled back to v1 as one
//! unit, checked by PostgreSQL itself (schema dump and row digests), then
//! undone; a failed health check and kills at the database's steps.

use super::files::Trees;
use super::support::*;
use crate::common::*;
use crate::postgres::support::{databases, fingerprint, new_database, psql_file, schema_dump};
use std::collections::BTreeMap;
use testkit::{Garage, Postgres};

const V1: &str = "
CREATE TYPE deal_state AS ENUM ('open', 'signed');
CREATE TABLE dealers (id int PRIMARY KEY, name text NOT NULL, region text);
CREATE TABLE deals (id bigserial PRIMARY KEY, dealer int REFERENCES dealers, amount numeric(12,2), state deal_state, note text);
CREATE INDEX deals_dealer ON deals (dealer);
INSERT INTO dealers SELECT i, 'dealer ' || i, CASE WHEN i % 2 = 0 THEN 'north' END FROM generate_series(1, 50) i;
INSERT INTO deals (dealer, amount, state, note) SELECT 1 + i % 50, i * 1.5, 'open', repeat('x', i % 40) FROM generate_series(1, 5000) i;
CREATE MATERIALIZED VIEW deal_totals AS SELECT dealer, sum(amount) AS total FROM deals GROUP BY dealer;
";

const V2: &str = "
ALTER TABLE deals ADD COLUMN currency text DEFAULT 'EUR';
ALTER TABLE dealers ALTER COLUMN id TYPE bigint;
CREATE TABLE repair_orders (id serial PRIMARY KEY, deal bigint REFERENCES deals, opened timestamptz DEFAULT now());
ALTER TYPE deal_state ADD VALUE 'cancelled';
DROP MATERIALIZED VIEW deal_totals;
";

const BUSINESS: &str = "
INSERT INTO deals (dealer, amount, state, note) SELECT 1, 99.5, 'signed', 'after go-live' FROM generate_series(1, 40);
UPDATE deals SET state = 'signed' WHERE id % 97 = 0;
DELETE FROM deals WHERE id % 501 = 0;
INSERT INTO repair_orders (deal) SELECT id FROM deals WHERE id < 20;
";

/// The database's state by the oracle: schema and row digests.
fn db_state(pg: &Postgres, db: &str) -> (String, BTreeMap<String, String>) {
    (schema_dump(pg, db), fingerprint(pg, db))
}

struct Deployed {
    v1: Trees,
    v2: Trees,
    db_v1: (String, BTreeMap<String, String>),
    db_v2: (String, BTreeMap<String, String>),
}

fn deploy(sys: &System, pg: &Postgres) -> Deployed {
    new_database(pg, "dms", V1);
    sys.v1();
    sys.run(&["init"]).ok();
    let v1 = sys.trees();
    let db_v1 = db_state(pg, "dms");
    sys.run(&["create", "--tag", "pre-deploy", "--label", "v1.4"])
        .ok();
    psql_file(pg, "dms", V2);
    sys.v2();
    psql_file(pg, "dms", BUSINESS);
    let d = Deployed {
        v1,
        v2: sys.trees(),
        db_v1,
        db_v2: db_state(pg, "dms"),
    };
    assert_ne!(d.db_v1, d.db_v2);
    d
}

fn assert_db(what: &str, pg: &Postgres, want: &(String, BTreeMap<String, String>)) {
    let got = db_state(pg, "dms");
    assert_eq!(want.0, got.0, "{what}: schema differs");
    assert_eq!(want.1, got.1, "{what}: rows differ");
}

fn system_with(pg: &Postgres, env: Env) -> System {
    System::with_env(env, &[("dms", pg.conninfo("dms"))], &Hooks::default())
}

fn full_cycle(sys: &System, pg: &Postgres) {
    let d = deploy(sys, pg);
    let r = sys.roll_back_to_pre_deploy();
    assert_db("after rollback", pg, &d.db_v1);
    assert_trees("after rollback", &d.v1, &sys.trees());
    assert_eq!(
        sys.take_log(),
        ["stop rollback dms api web config nginx", "start", "health"]
    );
    let kept_db = kept_of(&r, "dms");
    assert!(kept_db.starts_with("dms__before_rollback_"), "{kept_db}");
    assert_eq!(
        db_state(pg, &kept_db).1,
        d.db_v2.1,
        "the kept database is the replaced one"
    );
    assert!(
        !databases(pg).iter().any(|n| n.contains("__rollback_")),
        "staged database left: {:?}",
        databases(pg)
    );
    // The safety snapshot holds the replaced database under its live name.
    let safety = r["safety_snapshot"].as_str().unwrap();
    let show = sys.run(&["show", safety, "--json"]).ok().json();
    let comps = show["snapshot"]["components"].as_array().unwrap();
    let db = comps.iter().find(|c| c["kind"] == "postgres").unwrap();
    assert_eq!(db["database"], "dms", "{db}");
    assert_eq!(db["name"], "dms");

    let u = sys
        .run(&["rollback", "undo", "--yes", "--json"])
        .ok()
        .json();
    assert_eq!(u["result"], "undone", "{u}");
    assert_db("after undo", pg, &d.db_v2);
    assert_trees("after undo", &d.v2, &sys.trees());
}

#[test]
fn database_and_trees_roll_back_as_one_unit_and_undo_returns_v2() {
    let pg = Postgres::start();
    let sys = system_with(&pg, Env::local());
    full_cycle(&sys, &pg);
}

#[test]
fn the_same_against_garage_s3() {
    let pg = Postgres::start();
    let garage = Garage::start();
    let mut env = Env::local();
    env.repo = format!("s3://{}/rollback", garage.bucket());
    env.extra = garage.env();
    let sys = system_with(&pg, env);
    full_cycle(&sys, &pg);
}

#[test]
fn a_failing_health_check_puts_the_database_back_too() {
    let pg = Postgres::start();
    let sys = system_with(&pg, Env::local());
    let hooks = Hooks {
        health: format!("grep -q 'dms v2' {}/index.html", sys.path("web").display()),
        health_timeout: Some("1s"),
        ..Hooks::default()
    };
    sys.write_config(&[("dms", pg.conninfo("dms"))], &hooks);
    let d = deploy(&sys, &pg);
    let r = sys.run(&["rollback", "latest", "--yes"]);
    assert_eq!(r.code, 11, "{}", r.stderr);
    assert_db("after a failed health check", &pg, &d.db_v2);
    assert_trees("after a failed health check", &d.v2, &sys.trees());
    let names = databases(&pg);
    assert!(
        !names.iter().any(|n| n.starts_with("dms__")),
        "databases left: {names:?}"
    );
}

#[test]
fn kills_around_the_database_switch_are_finished_or_reverted() {
    let pg = Postgres::start();
    let sys = system_with(&pg, Env::local());
    let d = deploy(&sys, &pg);
    // Killed while the staged database is being loaded, after the database
    // was switched but before the trees, and after every switch.
    for (point, switched) in [
        ("staging", false),
        ("switch:api", false),
        ("switched", true),
    ] {
        assert_eq!(
            sys.roll_back_failing_at(point).code,
            -1,
            "{point}: not killed"
        );
        let r = sys.run(&["rollback", "resume", "--yes", "--json"]);
        assert_eq!(
            r.json()["result"],
            if switched { "rolled-back" } else { "reverted" },
            "{point}"
        );
        let (db, trees) = if switched {
            (&d.db_v1, &d.v1)
        } else {
            (&d.db_v2, &d.v2)
        };
        assert_db(&format!("resume after {point}"), &pg, db);
        assert_trees(&format!("resume after {point}"), trees, &sys.trees());
        if switched {
            sys.run(&["rollback", "undo", "--yes"]).ok();
            assert_db("undo", &pg, &d.db_v2);
        }
        let names = databases(&pg);
        assert!(
            !names.iter().any(|n| n.contains("__rollback_")),
            "{point}: staged database left: {names:?}"
        );
    }
}

#[test]
fn a_reviewed_plan_is_applied_and_refused_once_the_live_state_moved() {
    let pg = Postgres::start();
    let sys = system_with(&pg, Env::local());
    let d = deploy(&sys, &pg);
    let plan = sys.env.path("plan.json");
    let p = plan.to_str().unwrap();
    sys.run(&["rollback", "plan", "latest", "--tag", "pre-deploy", "-o", p])
        .ok();
    // Business goes on after the review: the plan no longer describes the
    // live state, and applying it is refused with what moved.
    psql_file(
        &pg,
        "dms",
        "INSERT INTO dealers VALUES (999, 'late dealer', 'south');",
    );
    let moved_state = db_state(&pg, "dms");
    let r = sys.run(&["rollback", "apply", p, "--yes"]);
    assert_eq!(r.code, 12, "{}", r.stderr);
    assert!(
        r.stderr.contains("dms") && r.stderr.contains("nothing was changed"),
        "{}",
        r.stderr
    );
    assert_db("a refused apply", &pg, &moved_state);
    assert_trees("a refused apply", &d.v2, &sys.trees());
    assert!(sys.take_log().is_empty(), "the application was stopped");
    // --replan writes a fresh plan instead, still changing nothing.
    let before = std::fs::read(&plan).unwrap();
    assert_eq!(
        sys.run(&["rollback", "apply", p, "--replan", "--yes"]).code,
        12
    );
    assert_ne!(std::fs::read(&plan).unwrap(), before, "no fresh plan");
    assert_db("a replan", &pg, &moved_state);
    // The fresh plan applies: exactly v1, and the audit record names it.
    let hash = serde_json::from_slice::<serde_json::Value>(&std::fs::read(&plan).unwrap()).unwrap()
        ["hash"]
        .clone();
    let r = sys
        .run(&["rollback", "apply", p, "--yes", "--json"])
        .ok()
        .json();
    assert_eq!(r["result"], "rolled-back", "{r}");
    assert_db("after apply", &pg, &d.db_v1);
    assert_trees("after apply", &d.v1, &sys.trees());
    let h = sys.run(&["rollback", "history", "--json"]).ok().json();
    assert_eq!(h[0]["plan_hash"], hash, "{h}");
    // An edited plan is refused as damaged.
    let mut v: serde_json::Value = serde_json::from_slice(&std::fs::read(&plan).unwrap()).unwrap();
    v["snapshot_label"] = serde_json::json!("edited");
    std::fs::write(&plan, serde_json::to_vec_pretty(&v).unwrap()).unwrap();
    sys.run(&["rollback", "apply", p, "--yes"])
        .fails(3, "edited or damaged");
}
