//! `Execute`'s and `ExecuteStream`'s replies written straight from the
//! gateway's result, in `omnigate.v1.ExecuteResponse`'s wire format, the
//! bytes prost writes for the message [`super::convert::result_to_proto`]
//! builds (see `omnigate_proto::encoded`). Its length is known before a
//! byte is written, so a reply past the server's `max_response_bytes` is
//! refused without being built, and the one that is built takes one
//! allocation.

use bytes::BytesMut;
use omnigate::codec::protobuf::wire::{
    delimited_len, put_bytes, put_delimited, put_value, value_len,
};
use omnigate::error::Error;
use omnigate_drivers::{Column, Rows, Value};
use omnigate_proto::encoded::ExecuteReply;
use prost::encoding::{WireType, encode_key, encode_varint, encoded_len_varint, key_len};

/// `ExecuteResponse`'s fields, and those of the messages it holds.
mod field {
    pub(super) const COLUMNS: u32 = 1;
    pub(super) const ROWS: u32 = 2;
    pub(super) const ROWS_AFFECTED: u32 = 3;
    pub(super) const ENGINE: u32 = 4;
    /// `Column.name`, `Column.type_name`.
    pub(super) const COLUMN_NAME: u32 = 1;
    pub(super) const COLUMN_TYPE: u32 = 2;
    /// `Row.values`.
    pub(super) const ROW_VALUES: u32 = 1;
}

/// An `ExecuteResponse`, as its parts.
#[derive(Debug, Clone, Copy)]
pub(super) struct Reply<'a> {
    /// The result's columns (ExecuteStream: in the first message only).
    pub(super) columns: &'a [Column],
    /// Its rows (or one batch of them).
    pub(super) rows: &'a Rows,
    /// Rows written by a statement that returns none.
    pub(super) rows_affected: u64,
    /// The engine that ran the statement.
    pub(super) engine: &'a str,
}

impl Reply<'_> {
    /// The reply encoded; `Err(ResponseTooLarge)` when it would take more
    /// than `limit` bytes.
    pub(super) fn encode(&self, limit: usize) -> Result<ExecuteReply, Error> {
        let rows: Vec<usize> = self.rows.iter().map(row_len).collect();
        let size = self.columns.iter().map(column_len).sum::<usize>()
            + rows
                .iter()
                .map(|&len| delimited_len(field::ROWS, len))
                .sum::<usize>()
            + match self.rows_affected {
                0 => 0,
                n => key_len(field::ROWS_AFFECTED) + encoded_len_varint(n),
            }
            + string_len(field::ENGINE, self.engine);
        if size > limit {
            return Err(Error::ResponseTooLarge { size, limit });
        }
        let mut buf = BytesMut::with_capacity(size);
        for column in self.columns {
            put_delimited(field::COLUMNS, column_body_len(column), &mut buf);
            put_string(field::COLUMN_NAME, &column.name, &mut buf);
            put_string(field::COLUMN_TYPE, &column.type_name, &mut buf);
        }
        for (row, len) in self.rows.iter().zip(rows) {
            put_delimited(field::ROWS, len, &mut buf);
            for value in row {
                put_delimited(field::ROW_VALUES, value_len(value), &mut buf);
                put_value(value, &mut buf);
            }
        }
        if self.rows_affected != 0 {
            encode_key(field::ROWS_AFFECTED, WireType::Varint, &mut buf);
            encode_varint(self.rows_affected, &mut buf);
        }
        put_string(field::ENGINE, self.engine, &mut buf);
        debug_assert_eq!(buf.len(), size, "a reply's length and its bytes disagree");
        Ok(ExecuteReply::from_encoded(buf))
    }
}

/// A proto3 string field's length: none when it is empty.
fn string_len(tag: u32, s: &str) -> usize {
    if s.is_empty() {
        0
    } else {
        delimited_len(tag, s.len())
    }
}

/// Writes a proto3 string field, unless it is empty.
fn put_string(tag: u32, s: &str, buf: &mut BytesMut) {
    if !s.is_empty() {
        put_bytes(tag, s.as_bytes(), buf);
    }
}

fn column_body_len(column: &Column) -> usize {
    string_len(field::COLUMN_NAME, &column.name) + string_len(field::COLUMN_TYPE, &column.type_name)
}

fn column_len(column: &Column) -> usize {
    delimited_len(field::COLUMNS, column_body_len(column))
}

/// A `Row`'s length (without its delimiter).
fn row_len(row: &[Value]) -> usize {
    row.iter()
        .map(|value| delimited_len(field::ROW_VALUES, value_len(value)))
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::grpc::convert::result_to_proto;
    use bytes::Bytes;
    use omnigate_drivers::ResultSet;
    use omnigate_proto::v1 as pb;
    use prost::Message;

    fn result(rows: Rows, rows_affected: u64) -> ResultSet {
        ResultSet {
            columns: vec![
                Column {
                    name: "id".into(),
                    type_name: "int8".into(),
                },
                Column {
                    name: "".into(),
                    type_name: "".into(),
                },
            ],
            rows,
            rows_affected,
            ..ResultSet::default()
        }
    }

    fn check(result: ResultSet, engine: &str) {
        let reply = Reply {
            columns: &result.columns,
            rows: &result.rows,
            rows_affected: result.rows_affected,
            engine,
        }
        .encode(usize::MAX)
        .unwrap();
        let expected = result_to_proto(result, engine.to_owned());
        assert_eq!(reply.encoded(), &expected.encode_to_vec()[..]);
        assert_eq!(
            pb::ExecuteResponse::decode(reply.encoded()).unwrap(),
            expected
        );
    }

    #[test]
    fn replies_are_the_bytes_prost_writes_for_the_message() {
        let mut rows = Rows::new();
        rows.push([Value::Int(-3), Value::String("a\u{e9}".into())]);
        rows.push([Value::Null, Value::Bytes(Bytes::from_static(b"\0\xff"))]);
        check(result(rows, 0), "pg");
        // No rows, rows affected, no engine name.
        check(result(Rows::new(), 42), "");
        // Rows of no values, and ragged rows.
        let mut empty = Rows::new();
        empty.push([]);
        empty.push([]);
        check(result(empty, 0), "cache");
        let ragged: Rows = vec![vec![Value::Int(1)], vec![], vec![Value::Float(2.0); 3]].into();
        check(result(ragged, 0), "x");
    }

    #[test]
    fn a_reply_past_the_limit_is_refused_with_its_size() {
        let mut rows = Rows::new();
        rows.push([Value::String("x".repeat(100).into())]);
        let result = result(rows, 0);
        let reply = Reply {
            columns: &result.columns,
            rows: &result.rows,
            rows_affected: 0,
            engine: "pg",
        };
        let size = reply.encode(usize::MAX).unwrap().encoded().len();
        assert!(reply.encode(size).is_ok());
        match reply.encode(size - 1) {
            Err(Error::ResponseTooLarge { size: s, limit }) => {
                assert_eq!((s, limit), (size, size - 1));
            }
            other => panic!("expected ResponseTooLarge, got {other:?}"),
        }
    }
}
