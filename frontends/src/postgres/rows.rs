//! Results as the wire's rows: each cell written straight into its row in
//! its field's format, every row of a response in one buffer, and a
//! PostgreSQL engine's own bytes forwarded where the client asked for
//! binary and the type is the one it was told.

use std::fmt::Write as _;
use std::sync::Arc;

use bytes::{BufMut, BytesMut};
use futures::stream;
use omnigate::drivers::postgres::binary;
use omnigate::drivers::{ResultSet, Rows, StatementShape, Value};
use pgwire::api::Type;
use pgwire::api::portal::Format;
use pgwire::api::results::{FieldFormat, FieldInfo, QueryResponse, Response};
use pgwire::error::{PgWireError, PgWireResult};
use pgwire::messages::data::DataRow;
use pgwire::types::ToSqlText;
use pgwire::types::format::FormatOptions;
use postgres_types::{IsNull, ToSql};

use super::encode::{named_type, tag, text};
use super::errors::error;

/// Whether every one of `width` result columns is asked for in binary.
pub(super) fn all_binary(formats: &Format, width: usize) -> bool {
    all_in(formats, width, FieldFormat::Binary)
}

/// Whether every one of `width` result columns is asked for in text.
pub(super) fn all_text(formats: &Format, width: usize) -> bool {
    all_in(formats, width, FieldFormat::Text)
}

/// Whether every one of `width` result columns is asked for in `format`.
fn all_in(formats: &Format, width: usize, format: FieldFormat) -> bool {
    match formats {
        Format::UnifiedBinary => format == FieldFormat::Binary,
        Format::UnifiedText => format == FieldFormat::Text,
        Format::Individual(codes) => {
            codes.len() == width && codes.iter().all(|c| FieldFormat::from(*c) == format)
        }
    }
}

/// Whether `result` has the columns `described` (when given) told the
/// client, type by type.
pub(super) fn as_shaped(described: Option<&StatementShape>, result: &ResultSet) -> bool {
    described.is_none_or(|shape| changed_column(shape, result).is_none())
}

/// The first of `result`'s columns that is not as `shape` described it
/// (past the shorter of the two when their widths differ).
fn changed_column(shape: &StatementShape, result: &ResultSet) -> Option<usize> {
    if shape.columns.len() != result.columns.len() {
        return Some(shape.columns.len().min(result.columns.len()));
    }
    shape
        .columns
        .iter()
        .zip(&result.columns)
        .position(|(was, is)| !same_type(&was.type_name, &is.type_name))
}

/// Whether a column described as of type `was` is still, its result's
/// column of type `is`: the unnamed path names a type that is not built
/// in as empty, which matches any such type.
fn same_type(was: &str, is: &str) -> bool {
    was == is || (is.is_empty() && named_type(was).is_none())
}

/// Checks that a PostgreSQL engine's result not forwarded in binary (its
/// cells PostgreSQL's own text, [`Cells::Text`](omnigate::drivers::Cells::Text),
/// or values to be written as text) has the columns `described` told the
/// client: a column whose type changed since (a table altered, another
/// `search_path`) is refused ([`changed_result_type`]), since the client
/// would read its text by the type it was told.
pub(super) fn as_described(
    described: Option<&StatementShape>,
    result: &ResultSet,
) -> PgWireResult<()> {
    let Some(shape) = described else {
        return Ok(());
    };
    match changed_column(shape, result) {
        None => Ok(()),
        Some(i) => Err(changed_result_type(
            i,
            result
                .columns
                .get(i)
                .map_or("gone", |c| c.type_name.as_str()),
        )),
    }
}

/// PostgreSQL's refusal of a prepared statement whose result type changed
/// (`0A000`), with the routine its drivers (pgjdbc, asyncpg, postgres.js)
/// know it by and re-prepare the statement on.
fn changed_result_type(column: usize, now: &str) -> PgWireError {
    let now = if now.is_empty() {
        "a type of the database's own"
    } else {
        now
    };
    let mut info = error(
        "0A000",
        format!(
            "cached plan must not change result type: column {} is now {now}; prepare the \
             statement again",
            column + 1
        ),
    );
    info.routine = Some("RevalidateCachedQuery".to_owned());
    PgWireError::UserError(Box::new(info))
}

/// Which of a result's columns (its cells PostgreSQL's own bytes) can be
/// forwarded: those whose type is still the one `described` told the
/// client. The cells of any other column (its type changed since the
/// statement was described: a table altered, another `search_path`) are
/// decoded by the type they have, to be encoded in the one described, as
/// any value is; a type that is not a built-in one cannot be, and is said
/// so (`0A000`, as PostgreSQL says a cached plan's changed result type).
pub(super) fn forwarded(
    described: Option<&StatementShape>,
    result: &mut ResultSet,
) -> PgWireResult<Vec<bool>> {
    let same = |i: usize| {
        described.is_some_and(|shape| {
            shape.columns.len() == result.columns.len()
                && shape.columns[i].type_name == result.columns[i].type_name
        })
    };
    let forward: Vec<bool> = (0..result.columns.len()).map(same).collect();
    if forward.iter().all(|f| *f) {
        return Ok(forward);
    }
    // Some column's cells are decoded: the rows as values.
    if let Some(wire) = result.wire_rows.take() {
        result.rows = wire
            .into_values()
            .map_err(|e| PgWireError::UserError(Box::new(error("XX000", e.to_string()))))?;
    }
    for (i, _) in forward.iter().enumerate().filter(|(_, f)| !**f) {
        let column = &result.columns[i];
        let Some(ty) = named_type(&column.type_name) else {
            return Err(changed_result_type(i, &column.type_name));
        };
        for r in 0..result.rows.len() {
            let Some(cell) = result.rows.get_mut(r).and_then(|row| row.get_mut(i)) else {
                continue;
            };
            if let Value::Bytes(raw) = cell {
                *cell = binary::decode(i + 1, &ty, raw).map_err(|_| {
                    PgWireError::UserError(Box::new(error(
                        "XX000",
                        format!(
                            "column {}: a malformed {} from the engine",
                            i + 1,
                            ty.name()
                        ),
                    )))
                })?;
            }
        }
    }
    Ok(forward)
}

/// A result as the response of one statement (both protocols): its
/// command tag when it has no columns, else its rows described by
/// `fields`, each value in its field's format (binary by the PostgreSQL
/// driver's own codec). `command` is the statement's
/// ([`command`](super::encode::command)); a query completes as `SELECT n`,
/// `INSERT ... RETURNING` as `INSERT 0 n`. Rows that came as the wire's
/// own ([`ResultSet::wire_rows`], the engine's bytes in the fields'
/// formats) are written as they are. Else `forward[i]`: column `i`'s
/// values are PostgreSQL's own binary bytes of the type its field names
/// ([`Cells::Binary`](omnigate::drivers::Cells::Binary)), written as they
/// are.
pub(super) fn response(
    command: &str,
    result: ResultSet,
    fields: Vec<FieldInfo>,
    forward: &[bool],
) -> PgWireResult<Response> {
    if result.columns.is_empty() {
        return Ok(Response::Execution(tag(command, result.rows_affected)));
    }
    let rows = match result.wire_rows {
        // Every cell as PostgreSQL sent it, of the type described.
        Some(wire) => {
            let count = field_count(fields.len())?;
            if wire.width() != fields.len() {
                return Err(PgWireError::UserError(Box::new(error(
                    "XX000",
                    format!(
                        "the engine sent rows of {} cells for {} columns",
                        wire.width(),
                        fields.len()
                    ),
                ))));
            }
            wire.into_rows()
                .map(|row| Ok(DataRow::new(row, count)))
                .collect()
        }
        None => data_rows(&result.rows, &fields, forward)?,
    };
    let mut response = QueryResponse::new(Arc::new(fields), stream::iter(rows));
    match command {
        "INSERT" => response.set_command_tag("INSERT 0"),
        "UPDATE" | "DELETE" | "MERGE" => response.set_command_tag(command),
        _ => response.set_command_tag("SELECT"),
    }
    Ok(Response::Query(response))
}

/// Every row as a `DataRow` message's body, all written into one buffer
/// sized from the values (each row a slice of it).
fn data_rows(
    rows: &Rows,
    fields: &[FieldInfo],
    forward: &[bool],
) -> PgWireResult<Vec<PgWireResult<DataRow>>> {
    let count = field_count(fields.len())?;
    let values = rows.values();
    // Each cell: its 4-byte length and about its value's size.
    let size = values.iter().map(|v| v.size_estimate() + 1).sum::<u64>();
    let mut buf = BytesMut::with_capacity(usize::try_from(size).unwrap_or(0));
    let mut out = Vec::with_capacity(rows.len());
    for row in rows {
        for (i, (value, field)) in row.iter().zip(fields).enumerate() {
            let forwarded = forward.get(i).copied().unwrap_or(false);
            write_cell(&mut buf, i + 1, value, field, forwarded)?;
        }
        out.push(Ok(DataRow::new(buf.split(), count)));
    }
    Ok(out)
}

/// A row's cell count as `DataRow` carries it.
fn field_count(columns: usize) -> PgWireResult<i16> {
    i16::try_from(columns).map_err(|_| {
        PgWireError::UserError(Box::new(error(
            "54011",
            format!(
                "a result of {columns} columns: the wire carries at most {}",
                i16::MAX
            ),
        )))
    })
}

/// Writes column `column`'s cell as the wire has it: its length (-1 for
/// NULL), then its bytes in its field's format (`forwarded`: the value's
/// bytes are already the field's binary format).
fn write_cell(
    buf: &mut BytesMut,
    column: usize,
    value: &Value,
    field: &FieldInfo,
    forwarded: bool,
) -> PgWireResult<()> {
    let at = buf.len();
    buf.put_i32(-1);
    let cell = Cell { column, value };
    let ty = field.datatype();
    let written = match (field.format(), value) {
        (FieldFormat::Text, _) => cell.to_sql_text(ty, buf, field.format_options()),
        (FieldFormat::Binary, Value::Bytes(raw)) if forwarded => {
            buf.put_slice(raw);
            Ok(IsNull::No)
        }
        // Text's binary format is its text (whatever the value: a column
        // of a type the client is not told of is described as text).
        (FieldFormat::Binary, _) if *ty == Type::TEXT => {
            cell.to_sql_text(ty, buf, field.format_options())
        }
        (FieldFormat::Binary, _) => cell.to_sql(ty, buf).map_err(|_| {
            format!(
                "column {column} ({}): a {} has no binary form of that type here; ask for \
                 the column in text format, or for every column in binary (a PostgreSQL \
                 engine's own bytes are then forwarded)",
                ty.name(),
                value.kind_name()
            )
            .into()
        }),
    };
    let cut = |why: String| PgWireError::UserError(Box::new(error("XX000", why)));
    if let IsNull::No = written.map_err(|e| cut(e.to_string()))? {
        let len = i32::try_from(buf.len() - at - 4)
            .map_err(|_| cut(format!("column {column}: a value past 2 GiB")))?;
        buf[at..at + 4].copy_from_slice(&len.to_be_bytes());
    }
    Ok(())
}

/// Column `column`'s value, written straight into the row being built in
/// its field's format: binary by the PostgreSQL driver's own codec, text
/// as PostgreSQL prints it (strings and numbers copied once, no value
/// built on the way).
#[derive(Debug)]
struct Cell<'a> {
    column: usize,
    value: &'a Value,
}

impl ToSql for Cell<'_> {
    fn to_sql(
        &self,
        ty: &Type,
        out: &mut BytesMut,
    ) -> Result<IsNull, Box<dyn std::error::Error + Sync + Send>> {
        match binary::encode_into(self.column, self.value, ty, out)? {
            true => Ok(IsNull::Yes),
            false => Ok(IsNull::No),
        }
    }

    fn accepts(_: &Type) -> bool {
        true
    }

    postgres_types::to_sql_checked!();
}

impl ToSqlText for Cell<'_> {
    fn to_sql_text(
        &self,
        _: &Type,
        out: &mut BytesMut,
        _: &FormatOptions,
    ) -> Result<IsNull, Box<dyn std::error::Error + Sync + Send>> {
        match self.value {
            Value::Null => return Ok(IsNull::Yes),
            Value::Decimal(s) | Value::String(s) | Value::Json(s) => out.put_slice(s.as_bytes()),
            Value::Int(i) => write!(out, "{i}")?,
            Value::Bool(b) => out.put_u8(if *b { b't' } else { b'f' }),
            other => out.put_slice(text(other).unwrap_or_default().as_bytes()),
        }
        Ok(IsNull::No)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pgwire::api::results::FieldFormat;

    fn field(ty: Type, format: FieldFormat) -> FieldInfo {
        FieldInfo::new("c".into(), None, None, ty, format)
    }

    #[test]
    fn a_result_read_as_text_must_have_the_types_described() {
        use omnigate::drivers::Column;
        assert!(all_text(&Format::UnifiedText, 2));
        assert!(all_text(&Format::Individual(vec![0, 0]), 2));
        assert!(!all_text(&Format::Individual(vec![0]), 2));
        assert!(!all_text(&Format::UnifiedBinary, 2));
        let shape = |types: &[&str]| StatementShape {
            params: Vec::new(),
            columns: types.iter().map(|t| Column::new("c", *t)).collect(),
        };
        let result = |types: &[&str]| ResultSet {
            columns: types.iter().map(|t| Column::new("c", *t)).collect(),
            ..ResultSet::default()
        };
        let check = |was: &[&str], is: &[&str]| as_described(Some(&shape(was)), &result(is));
        assert!(check(&["int4", "public.mood"], &["int4", "public.mood"]).is_ok());
        // The unnamed path names a type of the database's own "".
        assert!(check(&["public.mood"], &[""]).is_ok());
        assert!(check(&["int4"], &[""]).is_err());
        assert!(check(&["public.mood"], &["int4"]).is_err());
        assert!(check(&["int4"], &["int8"]).is_err());
        assert!(check(&["int4", "text"], &["int4"]).is_err());
        assert!(as_described(None, &result(&["int8"])).is_ok());
    }

    #[test]
    fn only_a_result_asked_for_wholly_in_binary_is_forwarded() {
        assert!(all_binary(&Format::UnifiedBinary, 3));
        assert!(!all_binary(&Format::UnifiedText, 3));
        assert!(all_binary(&Format::Individual(vec![1, 1]), 2));
        assert!(!all_binary(&Format::Individual(vec![1, 0]), 2));
        assert!(!all_binary(&Format::Individual(vec![1, 1]), 3));
    }

    #[test]
    fn cells_are_written_with_their_lengths_and_refused_clearly() {
        let mut buf = BytesMut::new();
        let raw = Value::Bytes(vec![0, 0, 0, 7].into());
        write_cell(
            &mut buf,
            1,
            &raw,
            &field(Type::INT4, FieldFormat::Binary),
            true,
        )
        .unwrap();
        write_cell(
            &mut buf,
            2,
            &Value::Null,
            &field(Type::INT4, FieldFormat::Binary),
            true,
        )
        .unwrap();
        write_cell(
            &mut buf,
            3,
            &Value::Int(7),
            &field(Type::TEXT, FieldFormat::Binary),
            false,
        )
        .unwrap();
        assert_eq!(
            &buf[..],
            [0, 0, 0, 4, 0, 0, 0, 7, 255, 255, 255, 255, 0, 0, 0, 1, b'7']
        );
        // A point's text (the driver's when it does not forward) has no
        // binary form here: the error says what to ask for instead.
        let text = Value::from("(1,2)");
        let err = write_cell(
            &mut buf,
            4,
            &text,
            &field(Type::POINT, FieldFormat::Binary),
            false,
        )
        .unwrap_err();
        let said = err.to_string();
        assert!(said.contains("column 4 (point)"), "{said}");
        assert!(said.contains("every column in binary"), "{said}");
        assert!(!said.contains("(1,2)"), "no values in errors: {said}");
    }
}
