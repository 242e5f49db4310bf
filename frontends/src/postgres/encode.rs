//! What the PostgreSQL wire says of a result: a column's type (the
//! engine's own when it names a built-in PostgreSQL type, else the one its
//! values have), a value in PostgreSQL's text format, and the command tag.
//! The rows themselves are written by `rows.rs`.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::OnceLock;

use omnigate::drivers::{Column, Rows, Value};
use pgwire::api::Type;
use pgwire::api::portal::Format;
use pgwire::api::results::{FieldFormat, FieldInfo, Tag};

/// The built-in PostgreSQL type named `name` (`int4`, `_text`, ...).
pub(super) fn named_type(name: &str) -> Option<Type> {
    types_by_name()
        .get(name.to_ascii_lowercase().as_str())
        .cloned()
}

/// Every built-in PostgreSQL type by its name (`int4`, `_text`, ...).
fn types_by_name() -> &'static HashMap<String, Type> {
    static TYPES: OnceLock<HashMap<String, Type>> = OnceLock::new();
    TYPES.get_or_init(|| {
        (0..=10_000u32)
            .filter_map(Type::from_oid)
            .map(|t| (t.name().to_owned(), t))
            .collect()
    })
}

/// The type a column is sent as: the engine's type when it is a built-in
/// PostgreSQL type; on a PostgreSQL engine (`postgres`), `text` for a type
/// of the database's own (an enum, a composite: sent as its
/// text); else the type SQLite's declared type has by its affinity rules,
/// else the type of the column's first non-null value, else `text`.
pub(super) fn column_type(column: &Column, index: usize, rows: &Rows, postgres: bool) -> Type {
    if let Some(t) = named_type(&column.type_name) {
        return t;
    }
    if postgres {
        return Type::TEXT;
    }
    if let Some(t) = affinity(&column.type_name) {
        return t;
    }
    rows.iter()
        .filter_map(|row| row.get(index))
        .find(|v| !matches!(v, Value::Null))
        .map_or(Type::TEXT, value_type)
}

/// The PostgreSQL type of a declared type that is not PostgreSQL's, by
/// SQLite's affinity rules (`INTEGER`, `VARCHAR(20)`, `DOUBLE`, ...); `None`
/// when nothing is declared.
fn affinity(declared: &str) -> Option<Type> {
    let upper = declared.to_ascii_uppercase();
    Some(if upper.is_empty() {
        return None;
    } else if upper.contains("INT") {
        Type::INT8
    } else if ["CHAR", "CLOB", "TEXT"].iter().any(|k| upper.contains(k)) {
        Type::TEXT
    } else if upper.contains("BLOB") {
        Type::BYTEA
    } else if ["REAL", "FLOA", "DOUB"].iter().any(|k| upper.contains(k)) {
        Type::FLOAT8
    } else if upper.contains("BOOL") {
        Type::BOOL
    } else {
        Type::NUMERIC
    })
}

/// The PostgreSQL type of a value of the value model.
pub(super) fn value_type(value: &Value) -> Type {
    match value {
        Value::Bool(_) => Type::BOOL,
        Value::Int(_) => Type::INT8,
        Value::Float(_) => Type::FLOAT8,
        Value::Decimal(_) => Type::NUMERIC,
        Value::Bytes(_) => Type::BYTEA,
        Value::Timestamp(t) if t.zoned => Type::TIMESTAMPTZ,
        Value::Timestamp(_) => Type::TIMESTAMP,
        Value::Date(_) => Type::DATE,
        Value::Time(_) => Type::TIME,
        Value::Interval(_) => Type::INTERVAL,
        Value::Uuid(_) => Type::UUID,
        Value::Json(_)
        | Value::Map(_)
        | Value::Node(_)
        | Value::Relationship(_)
        | Value::Path(_) => Type::JSON,
        Value::Null | Value::String(_) | Value::List(_) => Type::TEXT,
    }
}

/// The wire's description of `columns` in `formats` (text when unsaid),
/// typed by [`column_type`] (from `rows` where the engine's types are not
/// PostgreSQL's; `postgres`: the engine is PostgreSQL).
pub(super) fn fields(
    columns: &[Column],
    rows: &Rows,
    formats: Option<&Format>,
    postgres: bool,
) -> Vec<FieldInfo> {
    columns
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let ty = column_type(c, i, rows, postgres);
            FieldInfo::new(
                c.name.as_str().to_owned(),
                None,
                None,
                ty,
                format_of(formats, i),
            )
        })
        .collect()
}

/// The command a statement's tag names: its first keyword, and for DDL
/// the kind of object too (`CREATE TABLE`, `DROP INDEX`), as PostgreSQL
/// tags them.
pub(super) fn command(statement: &str) -> String {
    let mut words = omnigate::drivers::sql::words(statement)
        .map(|w| String::from_utf8_lossy(w).to_ascii_uppercase());
    let first = words.next().unwrap_or_default();
    if !matches!(first.as_str(), "CREATE" | "DROP" | "ALTER") {
        return first;
    }
    let modifiers = [
        "OR",
        "REPLACE",
        "UNIQUE",
        "TEMP",
        "TEMPORARY",
        "UNLOGGED",
        "GLOBAL",
        "LOCAL",
    ];
    match words.find(|w| !modifiers.contains(&w.as_str())) {
        Some(object) if object.chars().all(|c| c.is_ascii_alphabetic()) => {
            format!("{first} {object}")
        }
        _ => first,
    }
}

/// The format of column `i` under `formats` (text when unsaid).
pub(super) fn format_of(formats: Option<&Format>, i: usize) -> FieldFormat {
    match formats {
        None | Some(Format::UnifiedText) => FieldFormat::Text,
        Some(Format::UnifiedBinary) => FieldFormat::Binary,
        Some(Format::Individual(codes)) => codes
            .get(i)
            .map_or(FieldFormat::Text, |c| FieldFormat::from(*c)),
    }
}

/// The command tag of a statement that returned no rows.
pub(super) fn tag(command: &str, rows: u64) -> Tag {
    let rows = usize::try_from(rows).unwrap_or(usize::MAX);
    match command {
        "INSERT" => Tag::new("INSERT").with_oid(0).with_rows(rows),
        "UPDATE" | "DELETE" | "MERGE" | "COPY" | "MOVE" | "FETCH" | "SELECT" => {
            Tag::new(command).with_rows(rows)
        }
        other => Tag::new(other),
    }
}

/// A value in PostgreSQL's text format (`None`: SQL NULL).
pub(super) fn text(value: &Value) -> Option<String> {
    Some(match value {
        Value::Null => return None,
        Value::Bool(b) => if *b { "t" } else { "f" }.to_owned(),
        Value::Int(i) => i.to_string(),
        Value::Float(f) => float(*f),
        Value::Decimal(s) | Value::String(s) | Value::Json(s) => s.as_str().to_owned(),
        Value::Bytes(b) => {
            let mut out = String::with_capacity(2 + b.len() * 2);
            out.push_str("\\x");
            for byte in b.iter() {
                let _ = write!(out, "{byte:02x}");
            }
            out
        }
        Value::Timestamp(ts) => match ts.to_naive() {
            Some(dt) if ts.zoned => format!("{}+00", dt.format("%Y-%m-%d %H:%M:%S%.f")),
            Some(dt) => dt.format("%Y-%m-%d %H:%M:%S%.f").to_string(),
            None => ts.unix_micros.to_string(),
        },
        Value::Date(d) => d.to_string(),
        Value::Time(t) => t.format("%H:%M:%S%.f").to_string(),
        Value::Interval(i) => interval(i.months, i.days, i.micros),
        Value::Uuid(u) => u.to_string(),
        Value::List(items) => array(items),
        other => crate::cli::output::value_json(other).to_string(),
    })
}

/// A float as PostgreSQL prints it: shortest round-trip digits, and its
/// names for the special values.
fn float(f: f64) -> String {
    if f.is_nan() {
        "NaN".to_owned()
    } else if f.is_infinite() {
        if f > 0.0 { "Infinity" } else { "-Infinity" }.to_owned()
    } else {
        f.to_string()
    }
}

/// An interval in PostgreSQL's default output style
/// (`1 year 2 mons 3 days 04:05:06.5`).
fn interval(months: i32, days: i32, micros: i64) -> String {
    let mut parts = Vec::new();
    let (years, months) = (months / 12, months % 12);
    let unit = |n: i64, one: &str, many: &str| format!("{n} {}", if n == 1 { one } else { many });
    if years != 0 {
        parts.push(unit(years.into(), "year", "years"));
    }
    if months != 0 {
        parts.push(unit(months.into(), "mon", "mons"));
    }
    if days != 0 {
        parts.push(unit(days.into(), "day", "days"));
    }
    if micros != 0 || parts.is_empty() {
        let sign = if micros < 0 { "-" } else { "" };
        let total = micros.unsigned_abs();
        let (secs, frac) = (total / 1_000_000, total % 1_000_000);
        let mut clock = format!(
            "{sign}{:02}:{:02}:{:02}",
            secs / 3600,
            secs / 60 % 60,
            secs % 60
        );
        if frac != 0 {
            let digits = format!("{frac:06}");
            clock.push('.');
            clock.push_str(digits.trim_end_matches('0'));
        }
        parts.push(clock);
    }
    parts.join(" ")
}

/// A list as a PostgreSQL array literal: `{1,2,NULL,"a b"}`.
fn array(items: &[Value]) -> String {
    let mut out = String::from("{");
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        match (item, text(item)) {
            (_, None) => out.push_str("NULL"),
            (Value::List(_), Some(nested)) => out.push_str(&nested),
            (_, Some(element)) => {
                let plain = !element.is_empty()
                    && !element.eq_ignore_ascii_case("null")
                    && !element
                        .chars()
                        .any(|c| matches!(c, '{' | '}' | ',' | '"' | '\\') || c.is_whitespace());
                if plain {
                    out.push_str(&element);
                } else {
                    out.push('"');
                    for c in element.chars() {
                        if matches!(c, '"' | '\\') {
                            out.push('\\');
                        }
                        out.push(c);
                    }
                    out.push('"');
                }
            }
        }
    }
    out.push('}');
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use omnigate::drivers::Timestamp;

    #[test]
    fn values_print_as_postgresql_prints_them() {
        assert_eq!(text(&Value::Bool(true)).unwrap(), "t");
        assert_eq!(text(&Value::Null), None);
        assert_eq!(text(&Value::Float(f64::NEG_INFINITY)).unwrap(), "-Infinity");
        assert_eq!(text(&Value::Bytes(vec![0, 255].into())).unwrap(), "\\x00ff");
        let ts = Timestamp {
            unix_micros: 1_500_000,
            zoned: true,
        };
        assert_eq!(
            text(&Value::Timestamp(ts)).unwrap(),
            "1970-01-01 00:00:01.500+00"
        );
        assert_eq!(
            interval(14, 3, 4 * 3_600_000_000 + 500_000),
            "1 year 2 mons 3 days 04:00:00.5"
        );
        assert_eq!(interval(0, 0, 0), "00:00:00");
        let list = Value::List(vec![
            Value::Int(1),
            Value::Null,
            Value::from("a b"),
            Value::from("q\"x"),
        ]);
        assert_eq!(text(&list).unwrap(), "{1,NULL,\"a b\",\"q\\\"x\"}");
    }

    #[test]
    fn columns_take_postgresql_types_or_their_values_types() {
        let rows = Rows::from(vec![
            vec![Value::Null, Value::Int(3)],
            vec![Value::from("x"), Value::Int(4)],
        ]);
        let pg = Column::new("a", "int4");
        let sqlite = Column::new("b", "INTEGER");
        assert_eq!(column_type(&pg, 0, &rows, true), Type::INT4);
        assert_eq!(column_type(&sqlite, 1, &rows, false), Type::INT8);
        let mood = Column::new("m", "mood");
        assert_eq!(column_type(&mood, 0, &rows, true), Type::TEXT);
        assert_eq!(column_type(&mood, 0, &rows, false), Type::NUMERIC);
        assert_eq!(
            column_type(&Column::new("d", "VARCHAR(20)"), 0, &Rows::new(), false),
            Type::TEXT
        );
        assert_eq!(
            column_type(&Column::new("c", ""), 0, &rows, false),
            Type::TEXT
        );
        assert_eq!(
            tag("INSERT", 2).clone(),
            Tag::new("INSERT").with_oid(0).with_rows(2)
        );
        assert_eq!(tag("CREATE", 0), Tag::new("CREATE"));
        assert_eq!(command("create unique index i on t (a)"), "CREATE INDEX");
        assert_eq!(command("CREATE OR REPLACE FUNCTION f()"), "CREATE FUNCTION");
        assert_eq!(command("drop table t"), "DROP TABLE");
        assert_eq!(command("select 1"), "SELECT");
        assert_eq!(command("/* c */ UPDATE t SET a = 1"), "UPDATE");
    }
}
