//! PostgreSQL end to end: the real `backup` binary against throwaway
//! clusters (`testkit::Postgres`, one per test).
//!
//! The oracle of a round trip is PostgreSQL itself: `pg_dump --schema-only`
//! of source and copy, an MD5 over the sorted text of every row of every
//! table, sequence states, large objects and materialized views, all
//! computed by the server, never by the code under test.

mod diff;
mod export;
mod faults;
mod multi;
mod plan;
mod properties;
mod replace;
mod round_trip;
mod split;
pub(crate) mod support;
mod unchanged;
