//! Schemas, tables and views with columns, types, nullability and primary
//! keys, from the catalog.

use deadpool_postgres::GenericClient;

use super::error::from_pg;
use crate::{ColumnInfo, Result, SchemaObject};

const CATALOG: &str = "
SELECT n.nspname, c.relname,
       CASE c.relkind WHEN 'v' THEN 'view' WHEN 'm' THEN 'materialized view' ELSE 'table' END,
       a.attname, format_type(a.atttypid, a.atttypmod), NOT a.attnotnull,
       COALESCE(array_position(i.indkey::int2[], a.attnum) - array_lower(i.indkey::int2[], 1) + 1, 0)::int4
FROM pg_class c
JOIN pg_namespace n ON n.oid = c.relnamespace
JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
LEFT JOIN pg_index i ON i.indrelid = c.oid AND i.indisprimary
WHERE c.relkind IN ('r', 'p', 'v', 'm', 'f')
  AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\\_%'
  AND ($1::text IS NULL OR c.relname = $1) AND n.nspname <> $2
ORDER BY n.nspname, c.relname, a.attnum";

const SCHEMAS: &str = "
SELECT nspname FROM pg_namespace
WHERE nspname NOT IN ('pg_catalog', 'information_schema') AND nspname NOT LIKE 'pg\\_%'
  AND ($1::text IS NULL OR nspname = $1) AND nspname <> $2
ORDER BY nspname";

pub(crate) async fn describe(
    client: &impl GenericClient,
    name: Option<&str>,
    gateway_schema: &str,
) -> Result<Vec<SchemaObject>> {
    let mut objects: Vec<SchemaObject> = client
        .query(SCHEMAS, &[&name, &gateway_schema])
        .await
        .map_err(|e| from_pg(e, None))?
        .into_iter()
        .map(|row| SchemaObject {
            kind: "schema".into(),
            name: row.get(0),
            ..SchemaObject::default()
        })
        .collect();
    let rows = client
        .query(CATALOG, &[&name, &gateway_schema])
        .await
        .map_err(|e| from_pg(e, None))?;
    let mut tables: Vec<(SchemaObject, Vec<(i32, String)>)> = Vec::new();
    for row in rows {
        let (schema, table, kind): (String, String, String) = (row.get(0), row.get(1), row.get(2));
        let is_same = tables
            .last()
            .is_some_and(|(t, _)| t.schema == schema && t.name == table);
        if !is_same {
            let object = SchemaObject {
                kind,
                schema,
                name: table,
                ..SchemaObject::default()
            };
            tables.push((object, Vec::new()));
        }
        let Some((object, key)) = tables.last_mut() else {
            continue;
        };
        let column: String = row.get(3);
        let pk_position: i32 = row.get(6);
        if pk_position > 0 {
            key.push((pk_position, column.clone()));
        }
        object.columns.push(ColumnInfo {
            name: column,
            type_name: row.get(4),
            nullable: row.get(5),
        });
    }
    objects.extend(tables.into_iter().map(|(mut object, mut key)| {
        key.sort();
        object.primary_key = key.into_iter().map(|(_, c)| c).collect();
        object
    }));
    Ok(objects)
}
