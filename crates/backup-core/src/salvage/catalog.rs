//! What the delta needs to know of each database: its tables with column
//! types and the key rows are paired by, its sequences, and which table
//! references which.

use super::SequenceValue;
use crate::error::Result;
use crate::source::postgres::catalog::USER_OBJECTS;
use crate::source::postgres::conninfo::db_error;
use postgres::Client;

/// A table as the delta sees it.
#[derive(Debug, Clone)]
pub struct Table {
    /// Schema.
    pub schema: String,
    /// Name.
    pub name: String,
    /// Columns (not dropped, not generated), in `attnum` order.
    pub columns: Vec<String>,
    /// Their types, `format_type` of each.
    pub types: Vec<String>,
    /// The primary key, else the first unique index whose columns are all
    /// `NOT NULL` (no expressions, no predicate); empty when none.
    pub key: Vec<String>,
}

impl Table {
    /// The type of column `c`.
    pub fn type_of(&self, c: &str) -> Option<&str> {
        let i = self.columns.iter().position(|x| x == c)?;
        Some(self.types[i].as_str())
    }
}

/// Every table with rows (ordinary tables and partitions), by schema and
/// name.
pub fn tables(c: &mut Client) -> Result<Vec<Table>> {
    let sql = format!(
        "SELECT n.nspname::text, c.relname::text, \
                ARRAY(SELECT a.attname::text FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attnum > 0 \
                      AND NOT a.attisdropped AND a.attgenerated = '' ORDER BY a.attnum), \
                ARRAY(SELECT format_type(a.atttypid, a.atttypmod) FROM pg_attribute a WHERE a.attrelid = c.oid \
                      AND a.attnum > 0 AND NOT a.attisdropped AND a.attgenerated = '' ORDER BY a.attnum), \
                coalesce((SELECT ARRAY(SELECT a.attname::text FROM unnest(i.indkey::int2[]) WITH ORDINALITY k(num, ord) \
                                       JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = k.num \
                                       WHERE k.ord <= i.indnkeyatts ORDER BY k.ord) \
                          FROM pg_index i WHERE i.indrelid = c.oid AND i.indisunique AND i.indisvalid \
                            AND i.indpred IS NULL AND i.indexprs IS NULL AND 0 <> ALL (i.indkey::int2[]) \
                            AND NOT EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = c.oid \
                                            AND a.attnum = ANY (i.indkey::int2[]) AND NOT a.attnotnull) \
                          ORDER BY i.indisprimary DESC, i.indnkeyatts, i.indexrelid LIMIT 1), '{{}}') \
         FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
         WHERE c.relkind = 'r' AND {USER_OBJECTS} ORDER BY n.nspname, c.relname"
    );
    let rows = c
        .query(&sql, &[])
        .map_err(|e| db_error("listing tables and their keys", e))?;
    Ok(rows
        .iter()
        .map(|r| Table {
            schema: r.get(0),
            name: r.get(1),
            columns: r.get(2),
            types: r.get(3),
            key: r.get(4),
        })
        .collect())
}

/// Every sequence with its `last_value`.
pub fn sequences(c: &mut Client) -> Result<Vec<SequenceValue>> {
    let rows = c
        .query(
            "SELECT schemaname::text, sequencename::text, last_value FROM pg_sequences \
             WHERE schemaname NOT IN ('pg_catalog', 'information_schema') ORDER BY 1, 2",
            &[],
        )
        .map_err(|e| db_error("reading sequences", e))?;
    Ok(rows
        .iter()
        .map(|r| SequenceValue {
            schema: r.get(0),
            name: r.get(1),
            last_value: r.get(2),
        })
        .collect())
}

/// Foreign keys as `(child, parent)` pairs of `schema.name` labels, a
/// partitioned table standing for each of its partitions.
pub fn references(c: &mut Client) -> Result<Vec<(String, String)>> {
    let rows = c
        .query(
            "SELECT DISTINCT cn.nspname || '.' || cc.relname, pn.nspname || '.' || pc.relname \
             FROM pg_constraint k \
             CROSS JOIN LATERAL pg_partition_tree(k.conrelid) ct \
             CROSS JOIN LATERAL pg_partition_tree(k.confrelid) pt \
             JOIN pg_class cc ON cc.oid = ct.relid JOIN pg_namespace cn ON cn.oid = cc.relnamespace \
             JOIN pg_class pc ON pc.oid = pt.relid JOIN pg_namespace pn ON pn.oid = pc.relnamespace \
             WHERE k.contype = 'f' AND ct.isleaf AND pt.isleaf",
            &[],
        )
        .map_err(|e| db_error("reading foreign keys", e))?;
    Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
}
