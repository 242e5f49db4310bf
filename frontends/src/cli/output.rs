//! Printing results: an aligned table, or JSON.

use std::io::{self, Write};

use omnigate_drivers::Value;
use serde_json::{Value as Json, json};

use crate::grpc::convert::from_proto;
use omnigate_proto::v1 as pb;

/// Values of a proto row as Omnigate values (server output is trusted, a
/// malformed value prints as its debug form).
fn row_values(row: &pb::Row) -> Vec<Value> {
    row.values
        .iter()
        .map(|v| {
            from_proto(&omnigate::error::ParamRef::Position(0), v.clone())
                .unwrap_or_else(|_| Value::String(format!("{v:?}").into()))
        })
        .collect()
}

/// Renders an aligned text table with a header.
pub fn table(columns: &[String], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = columns.iter().map(|c| c.chars().count()).collect();
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            if let Some(w) = widths.get_mut(i) {
                *w = (*w).max(cell.chars().count());
            }
        }
    }
    let mut out = String::new();
    out.push_str(&line(columns, &widths));
    out.push('\n');
    out.push_str(&rule(&widths));
    out.push('\n');
    for row in rows {
        out.push_str(&line(row, &widths));
        out.push('\n');
    }
    out
}

/// One table line: cells padded to their column's width.
fn line(cells: &[String], widths: &[usize]) -> String {
    let padded: Vec<String> = cells
        .iter()
        .zip(widths)
        .map(|(c, w)| format!("{c}{}", " ".repeat(w.saturating_sub(c.chars().count()))))
        .collect();
    padded.join(" | ").trim_end().to_owned()
}

/// The line under a table's header.
fn rule(widths: &[usize]) -> String {
    widths
        .iter()
        .map(|w| "-".repeat(*w))
        .collect::<Vec<_>>()
        .join("-+-")
}

/// Prints an Execute result as a table.
pub fn result_table(response: &pb::ExecuteResponse) -> String {
    let columns: Vec<String> = response.columns.iter().map(|c| c.name.clone()).collect();
    if columns.is_empty() {
        return affected(response.rows_affected);
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

/// `(1 row affected)`, `(2 rows affected)`.
fn affected(n: u64) -> String {
    format!("({n} row{} affected)\n", if n == 1 { "" } else { "s" })
}

/// Prints a streamed result batch by batch, keeping nothing of a batch
/// once it is written: a table whose header comes with the first batch
/// (columns are as wide as the header and the widest cell seen so far),
/// or with `--json` one JSON line per batch, shaped as the whole result
/// of a call that is not streamed.
#[derive(Debug)]
pub struct Printer {
    json: bool,
    columns: Vec<String>,
    widths: Vec<usize>,
    rows: u64,
    rows_affected: u64,
    engine: String,
    lines: u64,
}

impl Printer {
    /// A printer of tables, or of JSON lines.
    pub fn new(json: bool) -> Self {
        Printer {
            json,
            columns: Vec::new(),
            widths: Vec::new(),
            rows: 0,
            rows_affected: 0,
            engine: String::new(),
            lines: 0,
        }
    }

    /// The rows printed so far.
    pub fn rows(&self) -> u64 {
        self.rows
    }

    /// Writes one batch.
    pub fn batch(&mut self, batch: &pb::ExecuteResponse, out: &mut dyn Write) -> io::Result<()> {
        self.rows_affected += batch.rows_affected;
        if !batch.engine.is_empty() {
            self.engine.clone_from(&batch.engine);
        }
        if self.json {
            if batch.rows.is_empty() && (self.lines > 0 || batch.rows_affected == 0) {
                return Ok(());
            }
            self.rows += batch.rows.len() as u64;
            self.lines += 1;
            return writeln!(out, "{}", result_json(batch));
        }
        let first = self.columns.is_empty() && !batch.columns.is_empty();
        if first {
            self.columns = batch.columns.iter().map(|c| c.name.clone()).collect();
            self.widths = self.columns.iter().map(|c| c.chars().count()).collect();
        }
        let rows: Vec<Vec<String>> = batch
            .rows
            .iter()
            .map(|r| row_values(r).iter().map(display_cell).collect())
            .collect();
        for row in &rows {
            for (cell, width) in row.iter().zip(self.widths.iter_mut()) {
                *width = (*width).max(cell.chars().count());
            }
        }
        if first {
            writeln!(out, "{}", line(&self.columns, &self.widths))?;
            writeln!(out, "{}", rule(&self.widths))?;
        }
        for row in &rows {
            writeln!(out, "{}", line(row, &self.widths))?;
        }
        self.rows += rows.len() as u64;
        Ok(())
    }

    /// Writes the end: the row count, or the rows affected.
    pub fn end(&self, out: &mut dyn Write) -> io::Result<()> {
        if self.json {
            if self.lines == 0 {
                let empty = pb::ExecuteResponse {
                    engine: self.engine.clone(),
                    rows_affected: self.rows_affected,
                    ..Default::default()
                };
                writeln!(out, "{}", result_json(&empty))?;
            }
            return Ok(());
        }
        if self.columns.is_empty() {
            return out.write_all(affected(self.rows_affected).as_bytes());
        }
        let n = self.rows;
        writeln!(out, "({n} row{})", if n == 1 { "" } else { "s" })
    }
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
        Value::Json(text) => serde_json::from_str(text).unwrap_or_else(|_| json!(text.as_str())),
        Value::List(items) => Json::Array(items.iter().map(value_json).collect()),
        Value::Map(entries) => Json::Object(
            entries
                .iter()
                .map(|(k, v)| (k.as_str().to_owned(), value_json(v)))
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

    fn batch(columns: &[&str], rows: &[&[i64]]) -> pb::ExecuteResponse {
        pb::ExecuteResponse {
            columns: columns
                .iter()
                .map(|c| pb::Column {
                    name: (*c).to_owned(),
                    ..Default::default()
                })
                .collect(),
            rows: rows
                .iter()
                .map(|r| pb::Row {
                    values: r
                        .iter()
                        .map(|i| pb::Value {
                            kind: Some(pb::value::Kind::Int(*i)),
                        })
                        .collect(),
                })
                .collect(),
            rows_affected: 0,
            engine: "main".into(),
        }
    }

    #[test]
    fn streamed_tables_print_each_batch_under_one_header() {
        let mut printer = Printer::new(false);
        let mut out = Vec::new();
        printer
            .batch(&batch(&["id", "n"], &[&[1, 2]]), &mut out)
            .unwrap();
        assert_eq!(String::from_utf8_lossy(&out), "id | n\n---+--\n1  | 2\n");
        out.clear();
        printer.batch(&batch(&[], &[&[100, 3]]), &mut out).unwrap();
        printer.batch(&batch(&[], &[]), &mut out).unwrap();
        printer.end(&mut out).unwrap();
        assert_eq!(String::from_utf8_lossy(&out), "100 | 3\n(2 rows)\n");
    }

    #[test]
    fn streamed_json_is_one_line_per_batch() {
        let mut printer = Printer::new(true);
        let mut out = Vec::new();
        printer.batch(&batch(&["id"], &[&[1]]), &mut out).unwrap();
        printer.batch(&batch(&[], &[&[2], &[3]]), &mut out).unwrap();
        printer.batch(&batch(&[], &[]), &mut out).unwrap();
        printer.end(&mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        let lines: Vec<Json> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines.len(), 2, "{text}");
        assert_eq!(lines[1]["rows"], json!([[2], [3]]));
        assert_eq!(printer.rows(), 3);
    }

    #[test]
    fn writes_say_row_or_rows() {
        let mut printer = Printer::new(false);
        let mut out = Vec::new();
        let mut one = batch(&[], &[]);
        one.rows_affected = 1;
        printer.batch(&one, &mut out).unwrap();
        printer.end(&mut out).unwrap();
        assert_eq!(String::from_utf8_lossy(&out), "(1 row affected)\n");
        assert_eq!(result_table(&one), "(1 row affected)\n");
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
