//! Catalog queries: what a database holds.

use super::conninfo::db_error;
use crate::error::{Error, Result};
use postgres::Client;

/// Quotes an identifier.
pub fn ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// `"a", "b", "c"`: quoted column names joined by commas.
pub fn quoted_columns(columns: &[String]) -> String {
    columns
        .iter()
        .map(|c| ident(c))
        .collect::<Vec<_>>()
        .join(", ")
}

/// ` ("a", "b", "c")` for a COPY column list; empty for a table without columns.
pub fn column_list(columns: &[String]) -> String {
    if columns.is_empty() {
        String::new()
    } else {
        format!(" ({})", quoted_columns(columns))
    }
}

/// `schema.name`, quoted.
pub fn qualified(schema: &str, name: &str) -> String {
    format!("{}.{}", ident(schema), ident(name))
}

/// A string literal.
pub fn literal(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

/// Facts about the server and the database.
#[derive(Debug, Clone)]
pub struct ServerInfo {
    /// `server_version_num`.
    pub version_num: u32,
    /// `server_version`.
    pub version: String,
    /// Database encoding.
    pub encoding: String,
    /// LC_COLLATE.
    pub collate: String,
    /// LC_CTYPE.
    pub ctype: String,
    /// The session's lc_monetary (money text form depends on it).
    pub lc_monetary: String,
    /// Installed extensions: name, version.
    pub extensions: Vec<(String, String)>,
}

/// Reads the server facts.
pub fn server_info(c: &mut Client) -> Result<ServerInfo> {
    let row = c
        .query_one(
            "SELECT current_setting('server_version_num')::int4, current_setting('server_version'), \
             pg_encoding_to_char(d.encoding)::text, d.datcollate::text, d.datctype::text, current_setting('lc_monetary') \
             FROM pg_database d WHERE d.datname = current_database()",
            &[],
        )
        .map_err(|e| db_error("reading server information", e))?;
    let extensions = c
        .query(
            "SELECT extname::text, extversion FROM pg_extension ORDER BY extname",
            &[],
        )
        .map_err(|e| db_error("listing extensions", e))?
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    Ok(ServerInfo {
        version_num: row.get::<_, i32>(0) as u32,
        version: row.get(1),
        encoding: row.get(2),
        collate: row.get(3),
        ctype: row.get(4),
        lc_monetary: row.get(5),
        extensions,
    })
}

/// A table with data.
#[derive(Debug, Clone)]
pub struct TableInfo {
    /// Schema.
    pub schema: String,
    /// Name.
    pub name: String,
    /// Columns that COPY must carry (no dropped or generated columns).
    pub columns: Vec<String>,
    /// The table's oid.
    pub oid: u32,
    /// Hash of its column definitions (number, name, type, modifier, generated, dropped).
    pub layout: String,
    /// Size of the main fork in bytes (filled in once the table is locked).
    pub bytes: i64,
    /// Block size.
    pub block_size: i64,
}

/// The condition that keeps user objects: not in system schemas, not
/// belonging to an extension (`c` is the `pg_class` row, `n` its schema).
pub(crate) const USER_OBJECTS: &str = "n.nspname NOT IN ('pg_catalog', 'information_schema') \
     AND n.nspname NOT LIKE 'pg\\_toast%' AND n.nspname NOT LIKE 'pg\\_temp%' \
     AND NOT EXISTS (SELECT 1 FROM pg_depend dep WHERE dep.classid = 'pg_class'::regclass \
                     AND dep.objid = c.oid AND dep.deptype = 'e')";

/// Tables whose rows are captured: ordinary tables and partitions.
pub fn tables(c: &mut Client) -> Result<Vec<TableInfo>> {
    let sql = format!(
        "SELECT n.nspname::text, c.relname::text, c.oid, current_setting('block_size')::int8, \
                ARRAY(SELECT a.attname::text FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attnum > 0 \
                      AND NOT a.attisdropped AND a.attgenerated = '' ORDER BY a.attnum), \
                coalesce((SELECT md5(string_agg(a.attnum::text || ':' || a.attname::text || ':' || a.atttypid::text || ':' \
                                                || a.atttypmod::text || ':' || a.attgenerated::text || ':' || a.attisdropped::text, ',' \
                                                ORDER BY a.attnum)) \
                          FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attnum > 0), '') \
         FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
         WHERE c.relkind = 'r' AND {USER_OBJECTS} ORDER BY n.nspname, c.relname"
    );
    let rows = c
        .query(&sql, &[])
        .map_err(|e| db_error("listing tables", e))?;
    Ok(rows
        .iter()
        .map(|r| TableInfo {
            schema: r.get(0),
            name: r.get(1),
            oid: r.get(2),
            bytes: 0,
            block_size: r.get(3),
            columns: r.get(4),
            layout: r.get(5),
        })
        .collect())
}

/// Fills in table sizes (call after locking: `pg_relation_size` waits for locks).
pub fn fill_sizes(c: &mut Client, tables: &mut [TableInfo]) -> Result<()> {
    let oids: Vec<u32> = tables.iter().map(|t| t.oid).collect();
    let rows = c
        .query(
            "SELECT c.oid, pg_relation_size(c.oid) FROM pg_class c WHERE c.oid = ANY($1)",
            &[&oids],
        )
        .map_err(|e| db_error("measuring tables", e))?;
    let sizes: std::collections::HashMap<u32, i64> =
        rows.iter().map(|r| (r.get(0), r.get(1))).collect();
    for t in tables {
        t.bytes = sizes.get(&t.oid).copied().unwrap_or(0);
    }
    Ok(())
}

/// Sequences (schema, name).
pub fn sequences(c: &mut Client) -> Result<Vec<(String, String)>> {
    let sql = format!(
        "SELECT n.nspname::text, c.relname::text FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
         WHERE c.relkind = 'S' AND {USER_OBJECTS} ORDER BY 1, 2"
    );
    Ok(c.query(&sql, &[])
        .map_err(|e| db_error("listing sequences", e))?
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect())
}

/// Materialized views (schema, name, populated), in creation order.
pub fn matviews(c: &mut Client) -> Result<Vec<(String, String, bool)>> {
    let sql = format!(
        "SELECT n.nspname::text, c.relname::text, c.relispopulated FROM pg_class c \
         JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.relkind = 'm' AND {USER_OBJECTS} ORDER BY c.oid"
    );
    Ok(c.query(&sql, &[])
        .map_err(|e| db_error("listing materialized views", e))?
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect())
}

/// Two columns that spell out an ACL: whether it is the default (`NULL`),
/// and its entries as a JSON array of [`crate::snapshot::Grant`].
fn acl_columns(acl: &str) -> String {
    format!(
        "{acl} IS NULL, (SELECT coalesce(json_agg(json_build_object(\
           'grantee', CASE WHEN a.grantee = 0 THEN NULL ELSE pg_get_userbyid(a.grantee)::text END, \
           'privilege', a.privilege_type, 'grantable', a.is_grantable) \
           ORDER BY pg_get_userbyid(a.grantee), a.privilege_type), '[]')::text FROM aclexplode({acl}) a)"
    )
}

/// Reads the columns of [`acl_columns`] starting at `at`.
fn acl_from_row(r: &postgres::Row, at: usize) -> Result<Option<Vec<crate::snapshot::Grant>>> {
    if r.get::<_, bool>(at) {
        return Ok(None);
    }
    let json: String = r.get(at + 1);
    serde_json::from_str(&json).map(Some).map_err(|e| {
        Error::new(
            crate::error::ErrorKind::Source,
            format!("unexpected privilege list from the server: {e}"),
        )
    })
}

/// A large object's oid, owner, privileges (`None`: default) and comment.
pub type LargeObjectInfo = (
    u32,
    String,
    Option<Vec<crate::snapshot::Grant>>,
    Option<String>,
);

/// Large objects with owner, privileges and comment, in one query.
pub fn large_object_details(c: &mut Client) -> Result<Vec<LargeObjectInfo>> {
    let sql = format!(
        "SELECT l.oid, pg_get_userbyid(l.lomowner)::text, obj_description(l.oid, 'pg_largeobject'), {} \
         FROM pg_largeobject_metadata l ORDER BY l.oid",
        acl_columns("l.lomacl")
    );
    let rows = c
        .query(&sql, &[])
        .map_err(|e| db_error("listing large objects", e))?;
    rows.iter()
        .map(|r| Ok((r.get(0), r.get(1), acl_from_row(r, 3)?, r.get(2))))
        .collect()
}

/// Owner, privileges, settings, comment and connection limit of the
/// current database.
pub fn database_properties(c: &mut Client) -> Result<crate::snapshot::DatabaseProperties> {
    let sql = format!(
        "SELECT pg_get_userbyid(d.datdba)::text, d.datconnlimit, shobj_description(d.oid, 'pg_database'), {} \
         FROM pg_database d WHERE d.datname = current_database()",
        acl_columns("d.datacl")
    );
    let r = c
        .query_one(&sql, &[])
        .map_err(|e| db_error("reading database properties", e))?;
    let acl = acl_from_row(&r, 3)?;
    let settings = c
        .query(
            "SELECT r.rolname::text, unnest(s.setconfig) FROM pg_db_role_setting s LEFT JOIN pg_roles r ON r.oid = s.setrole \
             WHERE s.setdatabase = (SELECT oid FROM pg_database WHERE datname = current_database()) ORDER BY 1 NULLS FIRST, 2",
            &[],
        )
        .map_err(|e| db_error("reading database settings", e))?
        .iter()
        .map(|r| crate::snapshot::DatabaseSetting { role: r.get(0), setting: r.get(1) })
        .collect();
    Ok(crate::snapshot::DatabaseProperties {
        owner: r.get(0),
        connection_limit: r.get(1),
        comment: r.get(2),
        acl,
        settings,
    })
}

/// Settings whose values are lists that PostgreSQL stores already quoted.
const LIST_SETTINGS: &[&str] = &[
    "local_preload_libraries",
    "search_path",
    "session_preload_libraries",
    "shared_preload_libraries",
    "temp_tablespaces",
    "unix_socket_directories",
];

/// The `SET name = value` tail for a stored `name=value` setting.
pub fn setting_clause(setting: &str) -> Option<String> {
    let (name, value) = setting.split_once('=')?;
    let value = if LIST_SETTINGS.contains(&name.to_ascii_lowercase().as_str()) {
        value.to_string()
    } else {
        literal(value)
    };
    Some(format!("SET {} = {value}", ident(name)))
}

/// SQL that gives a database the captured properties; `db` is the SQL
/// that names it (a quoted identifier, or psql's `:"DBNAME"`).
pub fn property_statements(
    p: &crate::snapshot::DatabaseProperties,
    db: &str,
    no_owner: bool,
) -> Vec<String> {
    let mut v = Vec::new();
    if !no_owner && !p.owner.is_empty() {
        v.push(format!("ALTER DATABASE {db} OWNER TO {}", ident(&p.owner)));
    }
    if !no_owner {
        if let Some(acl) = &p.acl {
            v.push(format!("REVOKE ALL ON DATABASE {db} FROM PUBLIC"));
            if !p.owner.is_empty() {
                v.push(format!(
                    "REVOKE ALL ON DATABASE {db} FROM {}",
                    ident(&p.owner)
                ));
            }
            v.extend(
                acl.iter()
                    .map(|g| grant_statement(g, &format!("DATABASE {db}"))),
            );
        }
    }
    if p.connection_limit != -1 {
        v.push(format!(
            "ALTER DATABASE {db} CONNECTION LIMIT {}",
            p.connection_limit
        ));
    }
    if let Some(c) = &p.comment {
        v.push(format!("COMMENT ON DATABASE {db} IS {}", literal(c)));
    }
    for s in &p.settings {
        let Some(clause) = setting_clause(&s.setting) else {
            continue;
        };
        match &s.role {
            None => v.push(format!("ALTER DATABASE {db} {clause}")),
            Some(r) if !no_owner => {
                v.push(format!("ALTER ROLE {} IN DATABASE {db} {clause}", ident(r)))
            }
            Some(_) => {}
        }
    }
    v
}

/// `GRANT privilege ON object TO grantee`.
pub fn grant_statement(g: &crate::snapshot::Grant, object: &str) -> String {
    let to = g
        .grantee
        .as_deref()
        .map(ident)
        .unwrap_or_else(|| "PUBLIC".into());
    let opt = if g.grantable {
        " WITH GRANT OPTION"
    } else {
        ""
    };
    format!("GRANT {} ON {object} TO {to}{opt}", g.privilege)
}

/// Session settings that fix the text form of values, for capture,
/// restore and checks alike.
pub fn session_settings(encoding: &str, lc_monetary: &str) -> String {
    format!(
        "SET client_encoding = {}; SET datestyle = 'ISO, YMD'; SET intervalstyle = 'postgres'; \
         SET extra_float_digits = 3; SET bytea_output = 'hex'; SET timezone = 'UTC'; \
         SET lc_monetary = {}; SET row_security = off; SET statement_timeout = 0; SET idle_in_transaction_session_timeout = 0",
        literal(encoding),
        literal(lc_monetary)
    )
}
