//! Database parts of export bundles: every stored stream as a plain file
//! (`schema.dump` for `pg_restore`, one `.copy` file per table part, large
//! objects as `.bin`), plus `load.sql`, `refresh.sql` and `RESTORE.txt` so
//! that the database can be rebuilt with the standard PostgreSQL tools.

use crate::snapshot::{Component, PostgresComponent, Snapshot, StreamRef};
use crate::source::postgres::catalog::{
    column_list, grant_statement, literal, property_statements, qualified, session_settings,
};

/// Which stream of a database component a bundle member holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Slot {
    /// The `pg_dump` archive.
    Schema,
    /// `pg_dumpall --globals-only` output.
    Globals,
    /// Table `t`, part `s`.
    Table(usize, usize),
    /// Large object number `l`.
    LargeObject(usize),
}

/// One bundle member holding a database stream.
#[derive(Debug, Clone)]
pub struct Member {
    /// Path in the bundle.
    pub name: String,
    /// Index of the component in the snapshot.
    pub component: usize,
    /// Which stream.
    pub slot: Slot,
    /// The stream.
    pub stream: StreamRef,
}

fn base(ci: usize, db: &PostgresComponent) -> String {
    let safe: String = db
        .database
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect();
    format!("databases/{ci}-{safe}")
}

fn table_file(t: usize, s: usize) -> String {
    format!("tables/{t:05}.{s:03}.copy")
}

/// Every database stream of a snapshot, with its member name.
pub fn members(snap: &Snapshot) -> Vec<Member> {
    let mut out = Vec::new();
    for (ci, c) in snap.components.iter().enumerate() {
        let Component::Postgres(db) = c else { continue };
        let b = base(ci, db);
        out.push(Member {
            name: format!("{b}/schema.dump"),
            component: ci,
            slot: Slot::Schema,
            stream: db.schema.clone(),
        });
        if let Some(g) = &db.globals {
            out.push(Member {
                name: format!("{b}/globals.sql"),
                component: ci,
                slot: Slot::Globals,
                stream: g.clone(),
            });
        }
        for (ti, t) in db.tables.iter().enumerate() {
            for (si, s) in t.streams.iter().enumerate() {
                out.push(Member {
                    name: format!("{b}/{}", table_file(ti, si)),
                    component: ci,
                    slot: Slot::Table(ti, si),
                    stream: s.data.clone(),
                });
            }
        }
        for (li, lo) in db.large_objects.iter().enumerate() {
            out.push(Member {
                name: format!("{b}/large_objects/{}.bin", lo.oid),
                component: ci,
                slot: Slot::LargeObject(li),
                stream: lo.data.clone(),
            });
        }
    }
    out
}

/// Puts re-stored blobs into a component.
pub fn set_blobs(db: &mut PostgresComponent, slot: Slot, blobs: Vec<crate::id::Id>) {
    match slot {
        Slot::Schema => db.schema.blobs = blobs,
        Slot::Globals => {
            if let Some(g) = db.globals.as_mut() {
                g.blobs = blobs;
            }
        }
        Slot::Table(t, s) => db.tables[t].streams[s].data.blobs = blobs,
        Slot::LargeObject(l) => db.large_objects[l].data.blobs = blobs,
    }
}

fn shell_quote(s: &str) -> String {
    if !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "_-.".contains(c))
    {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', "'\\''"))
    }
}

/// The scripts that rebuild each database with standard tools.
pub fn scripts(snap: &Snapshot) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for (ci, c) in snap.components.iter().enumerate() {
        let Component::Postgres(db) = c else { continue };
        let b = base(ci, db);
        let mut load = String::from(
            "-- Loads the table data, sequences and large objects (psql, from this directory).\n",
        );
        load.push_str("\\set ON_ERROR_STOP on\n");
        for stmt in session_settings(&db.encoding, &db.lc_monetary).split("; ") {
            load.push_str(stmt.trim_end_matches(';'));
            load.push_str(";\n");
        }
        for (ti, t) in db.tables.iter().enumerate() {
            let list = column_list(&t.columns);
            for si in 0..t.streams.len() {
                load.push_str(&format!(
                    "\\copy {}{list} FROM '{}'\n",
                    qualified(&t.schema, &t.name),
                    table_file(ti, si)
                ));
            }
        }
        for s in &db.sequences {
            load.push_str(&format!(
                "SELECT pg_catalog.setval({}, {}, {});\n",
                literal(&qualified(&s.schema, &s.name)),
                s.last_value,
                s.is_called
            ));
        }
        for lo in &db.large_objects {
            load.push_str(&format!(
                "SELECT lo_create({oid});\n\\set lo_data `base64 -w0 large_objects/{oid}.bin`\nSELECT lo_put({oid}, 0, decode(:'lo_data', 'base64'));\nALTER LARGE OBJECT {oid} OWNER TO {owner};\n",
                oid = lo.oid,
                owner = crate::source::postgres::catalog::ident(&lo.owner)
            ));
            if let Some(acl) = &lo.acl {
                load.push_str(&format!(
                    "REVOKE ALL ON LARGE OBJECT {} FROM PUBLIC;\n",
                    lo.oid
                ));
                for g in acl {
                    load.push_str(&format!(
                        "{};\n",
                        grant_statement(g, &format!("LARGE OBJECT {}", lo.oid))
                    ));
                }
            }
            if let Some(c) = &lo.comment {
                load.push_str(&format!(
                    "COMMENT ON LARGE OBJECT {} IS {};\n",
                    lo.oid,
                    literal(c)
                ));
            }
        }
        // Database-level properties, applied to the database psql is connected to.
        for stmt in property_statements(&db.properties, ":\"DBNAME\"", false) {
            load.push_str(&stmt);
            load.push_str(";\n");
        }
        let mut refresh = String::from(
            "-- Refreshes the materialized views that held data.\n\\set ON_ERROR_STOP on\n",
        );
        for m in db.matviews.iter().filter(|m| m.populated) {
            refresh.push_str(&format!(
                "REFRESH MATERIALIZED VIEW {};\n",
                qualified(&m.schema, &m.name)
            ));
        }
        let restore = format!(
            "Database {db} (PostgreSQL {ver}, encoding {enc}, collate {col}, ctype {ctype}).\n\
             Rebuild it with the PostgreSQL {major} (or newer) client tools, from this directory:\n\n\
             \x20 createdb -T template0 -E {enc} --lc-collate={col} --lc-ctype={ctype} {db}\n\
             {globals}\
             \x20 pg_restore --section=pre-data --exit-on-error -d {db} schema.dump\n\
             \x20 psql -X -d {db} -f load.sql\n\
             \x20 pg_restore --section=post-data --exit-on-error -j 4 -d {db} schema.dump\n\
             \x20 psql -X -d {db} -f refresh.sql\n\n\
             Check the files first with `sha256sum -c SHA256SUMS` at the bundle's top level.\n",
            db = shell_quote(&db.database),
            ver = db.server_version,
            enc = db.encoding,
            col = db.collate,
            ctype = db.ctype,
            major = db.server_version_num / 10000,
            globals = if db.globals.is_some() { "  psql -X -d postgres -f globals.sql       # roles and tablespaces (superuser)\n" } else { "" },
        );
        out.push((format!("{b}/load.sql"), load));
        out.push((format!("{b}/refresh.sql"), refresh));
        out.push((format!("{b}/RESTORE.txt"), restore));
    }
    out
}
