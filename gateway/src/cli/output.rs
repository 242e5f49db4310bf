//! Printing results: an aligned table, or JSON.

use omnigate_drivers::Value;
use serde_json::{Value as Json, json};

use crate::service::convert::from_proto;
use omnigate_proto::v1 as pb;

/// Values of a proto row as Omnigate values (server output is trusted, a
/// malformed value prints as its debug form).
fn row_values(row: &pb::Row) -> Vec<Value> {
    row.values
        .iter()
        .map(|v| {
            from_proto(&crate::error::ParamRef::Position(0), v.clone())
                .unwrap_or_else(|_| Value::String(format!("{v:?}")))
        })
        .collect()
}

/// Renders an aligned text table with a header and a row count.
pub fn table(columns: &[String], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = columns.iter().map(|c| c.chars().count()).collect();
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            if let Some(w) = widths.get_mut(i) {
                *w = (*w).max(cell.chars().count());
            }
        }
    }
    let line = |cells: &[String]| {
        let padded: Vec<String> = cells
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c}{}", " ".repeat(w - c.chars().count())))
            .collect();
        padded.join(" | ").trim_end().to_owned()
    };
    let mut out = String::new();
    out.push_str(&line(columns));
    out.push('\n');
    out.push_str(
        &widths
            .iter()
            .map(|w| "-".repeat(*w))
            .collect::<Vec<_>>()
            .join("-+-"),
    );
    out.push('\n');
    for row in rows {
        out.push_str(&line(row));
        out.push('\n');
    }
    out
}

/// Prints an Execute result as a table.
pub fn result_table(response: &pb::ExecuteResponse) -> String {
    let columns: Vec<String> = response.columns.iter().map(|c| c.name.clone()).collect();
    if columns.is_empty() {
        return format!("({} rows affected)\n", response.rows_affected);
    }
    let rows: Vec<Vec<String>> = response
        .rows
        .iter()
        .map(|r| row_values(r).iter().map(display_cell).collect())
        .collect();
    let count = rows.len();
    format!(
        "{}({count} row{})\n",
        table(&columns, &rows),
        if count == 1 { "" } else { "s" }
    )
}

fn display_cell(value: &Value) -> String {
    value.to_string().replace('\n', "\\n")
}

/// A value as JSON: JSON-native kinds as themselves, the rest as text.
pub fn value_json(value: &Value) -> Json {
    match value {
        Value::Null => Json::Null,
        Value::Bool(b) => json!(b),
        Value::Int(i) => json!(i),
        Value::Float(f) => {
            serde_json::Number::from_f64(*f).map_or_else(|| json!(f.to_string()), Json::Number)
        }
        Value::Json(text) => serde_json::from_str(text).unwrap_or_else(|_| json!(text)),
        Value::List(items) => Json::Array(items.iter().map(value_json).collect()),
        Value::Map(entries) => Json::Object(
            entries
                .iter()
                .map(|(k, v)| (k.clone(), value_json(v)))
                .collect(),
        ),
        other => json!(other.to_string()),
    }
}

/// An Execute result as JSON: `{engine, columns, rows, rows_affected}`.
pub fn result_json(response: &pb::ExecuteResponse) -> Json {
    json!({
        "engine": response.engine,
        "columns": response.columns.iter().map(|c| json!({"name": c.name, "type": c.type_name})).collect::<Vec<_>>(),
        "rows": response.rows.iter().map(|r| Json::Array(row_values(r).iter().map(value_json).collect())).collect::<Vec<_>>(),
        "rows_affected": response.rows_affected,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_align_columns() {
        let out = table(
            &["id".into(), "name".into()],
            &[
                vec!["1".into(), "ada".into()],
                vec!["10".into(), "é".into()],
            ],
        );
        assert_eq!(out, "id | name\n---+-----\n1  | ada\n10 | é\n");
    }

    #[test]
    fn json_keeps_native_kinds() {
        assert_eq!(value_json(&Value::Int(3)), json!(3));
        assert_eq!(
            value_json(&Value::Json("{\"a\":1}".into())),
            json!({"a": 1})
        );
        assert_eq!(
            value_json(&Value::Bytes(bytes::Bytes::from_static(b"\x01"))),
            json!("\\x01")
        );
        assert_eq!(value_json(&Value::Float(f64::NAN)), json!("NaN"));
    }
}
