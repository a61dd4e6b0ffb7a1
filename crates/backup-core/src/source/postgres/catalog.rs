//! Catalog queries: what a database holds.

use super::conninfo::db_error;
use crate::error::Result;
use postgres::Client;

/// Quotes an identifier.
pub fn ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
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
    /// Size of the main fork in bytes.
    pub bytes: i64,
    /// Block size.
    pub block_size: i64,
}

const USER_OBJECTS: &str = "n.nspname NOT IN ('pg_catalog', 'information_schema') \
     AND n.nspname NOT LIKE 'pg\\_toast%' AND n.nspname NOT LIKE 'pg\\_temp%' \
     AND NOT EXISTS (SELECT 1 FROM pg_depend dep WHERE dep.classid = 'pg_class'::regclass \
                     AND dep.objid = c.oid AND dep.deptype = 'e')";

/// Tables whose rows are captured: ordinary tables and partitions.
pub fn tables(c: &mut Client) -> Result<Vec<TableInfo>> {
    let sql = format!(
        "SELECT n.nspname::text, c.relname::text, pg_relation_size(c.oid), current_setting('block_size')::int8, \
                ARRAY(SELECT a.attname::text FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attnum > 0 \
                      AND NOT a.attisdropped AND a.attgenerated = '' ORDER BY a.attnum) \
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
            bytes: r.get(2),
            block_size: r.get(3),
            columns: r.get(4),
        })
        .collect())
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

/// Large objects (oid, owner).
pub fn large_objects(c: &mut Client) -> Result<Vec<(u32, String)>> {
    Ok(c.query(
        "SELECT oid, pg_get_userbyid(lomowner)::text FROM pg_largeobject_metadata ORDER BY oid",
        &[],
    )
    .map_err(|e| db_error("listing large objects", e))?
    .iter()
    .map(|r| (r.get::<_, u32>(0), r.get(1)))
    .collect())
}

/// Session settings that fix the text form of values, for capture,
/// restore and checks alike.
pub fn session_settings(encoding: &str, lc_monetary: &str) -> String {
    format!(
        "SET client_encoding = {}; SET datestyle = 'ISO, YMD'; SET intervalstyle = 'postgres'; \
         SET extra_float_digits = 3; SET bytea_output = 'hex'; SET timezone = 'UTC'; \
         SET lc_monetary = {}; SET statement_timeout = 0; SET idle_in_transaction_session_timeout = 0",
        literal(encoding),
        literal(lc_monetary)
    )
}
