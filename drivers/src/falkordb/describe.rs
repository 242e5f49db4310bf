//! `Describe` for FalkorDB: the default graph's labels, relationship
//! types, property keys, indexes and constraints.

use super::{FalkorDriver, malformed, reply};
use crate::{DescribeOptions, Error, Result, SchemaObject, Value};

/// The schema objects of the engine's default graph.
pub(super) async fn describe(
    driver: &FalkorDriver,
    options: &DescribeOptions,
) -> Result<Vec<SchemaObject>> {
    let graph = driver.graph.as_str();
    let tables = match driver.tables(graph, true).await {
        Ok(tables) => tables,
        Err(e) => return Err(e),
    };
    let mut objects = Vec::new();
    for (kind, names) in [
        ("label", &tables.labels),
        ("relationship_type", &tables.types),
        ("property_key", &tables.keys),
    ] {
        objects.extend(names.iter().map(|name| SchemaObject {
            kind: kind.into(),
            schema: graph.into(),
            name: name.clone(),
            ..SchemaObject::default()
        }));
    }
    for (kind, procedure) in [
        ("index", "CALL db.indexes()"),
        ("constraint", "CALL db.constraints()"),
    ] {
        let reply = match driver.query(graph, procedure.as_bytes(), true, None).await {
            Ok(reply) => reply,
            Err(Error::NotFound(_)) => continue,
            Err(e) => return Err(e),
        };
        let set = reply::result_set(&reply, &tables).map_err(malformed)?;
        for row in set.rows {
            let attributes: Vec<(String, String)> = set
                .columns
                .iter()
                .zip(row)
                .filter(|(_, v)| !matches!(v, Value::Null))
                .map(|(c, v)| (c.name.as_str().to_owned(), flat(&v)))
                .collect();
            let field = |key: &str| {
                attributes
                    .iter()
                    .find(|(k, _)| k == key)
                    .map(|(_, v)| v.clone())
                    .unwrap_or_default()
            };
            let name = format!("{}({})", field("label"), field("properties"));
            objects.push(SchemaObject {
                kind: kind.into(),
                schema: graph.into(),
                name,
                attributes,
                ..SchemaObject::default()
            });
        }
    }
    objects.retain(|o| options.wants(&o.name));
    Ok(objects)
}

/// A value as one line of text: lists joined with commas.
fn flat(value: &Value) -> String {
    match value {
        Value::String(s) => s.as_str().to_owned(),
        Value::List(items) => items.iter().map(flat).collect::<Vec<_>>().join(","),
        Value::Map(entries) => entries
            .iter()
            .map(|(k, v)| format!("{k}:{}", flat(v)))
            .collect::<Vec<_>>()
            .join(","),
        other => other.to_string(),
    }
}
