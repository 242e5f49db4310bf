//! `Execute`'s, `ExecuteStream`'s and `ExecuteBatch`'s replies written
//! straight from the gateway's results, in the wire format of
//! `omnigate.v1.ExecuteResponse` and `ExecuteBatchResponse`: the bytes
//! prost writes for those messages built of the same results (see
//! `omnigate_proto::encoded`). A reply's length is known
//! before a byte is written, so one past the server's
//! `max_response_bytes` is refused before its buffer is allocated, and
//! the one that is built takes one buffer (and a vector of its rows'
//! lengths).

use bytes::BytesMut;
use omnigate::codec::protobuf::wire::{
    delimited_len, put_bytes, put_delimited, put_key, put_value, put_varint, value_len,
};
use omnigate::error::Error;
use omnigate_drivers::{Column, Rows, Value};
use omnigate_proto::encoded::EncodedReply;
use omnigate_proto::v1 as pb;
use prost::encoding::{WireType, encoded_len_varint, key_len, message};

/// The fields of the replies and of the messages they hold.
mod field {
    /// `ExecuteResponse`'s.
    pub(super) const COLUMNS: u32 = 1;
    pub(super) const ROWS: u32 = 2;
    pub(super) const ROWS_AFFECTED: u32 = 3;
    pub(super) const ENGINE: u32 = 4;
    /// `Column.name`, `Column.type_name`.
    pub(super) const COLUMN_NAME: u32 = 1;
    pub(super) const COLUMN_TYPE: u32 = 2;
    /// `Row.values`.
    pub(super) const ROW_VALUES: u32 = 1;
    /// `ExecuteBatchResponse`'s.
    pub(super) const BATCH_RESULTS: u32 = 1;
    pub(super) const BATCH_ENGINE: u32 = 2;
    /// `BatchResult`'s outcome.
    pub(super) const OUTCOME_RESULT: u32 = 1;
    pub(super) const OUTCOME_ERROR: u32 = 2;
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

impl<'a> Reply<'a> {
    /// The reply encoded; `Err(ResponseTooLarge)` when it would take more
    /// than `limit` bytes.
    pub(super) fn encode(self, limit: usize) -> Result<EncodedReply, Error> {
        let sized = self.sized();
        let mut buf = buffer(sized.len, limit)?;
        sized.write(&mut buf);
        Ok(done(buf, sized.len))
    }

    /// The reply with its length and its rows' lengths.
    fn sized(self) -> SizedReply<'a> {
        let rows: Vec<usize> = self.rows.iter().map(row_len).collect();
        let len = self.columns.iter().map(column_len).sum::<usize>()
            + rows
                .iter()
                .map(|&len| delimited_len(field::ROWS, len))
                .sum::<usize>()
            + match self.rows_affected {
                0 => 0,
                n => key_len(field::ROWS_AFFECTED) + encoded_len_varint(n),
            }
            + string_len(field::ENGINE, self.engine);
        SizedReply {
            reply: self,
            rows,
            len,
        }
    }
}

/// A reply whose length is known.
struct SizedReply<'a> {
    reply: Reply<'a>,
    /// Each row's length (without its delimiter).
    rows: Vec<usize>,
    /// The reply's (without a delimiter).
    len: usize,
}

impl SizedReply<'_> {
    /// Writes the reply's fields: `self.len` bytes.
    fn write(&self, buf: &mut BytesMut) {
        let reply = &self.reply;
        for column in reply.columns {
            put_delimited(field::COLUMNS, column_body_len(column), buf);
            put_string(field::COLUMN_NAME, &column.name, buf);
            put_string(field::COLUMN_TYPE, &column.type_name, buf);
        }
        for (row, &len) in reply.rows.iter().zip(&self.rows) {
            put_delimited(field::ROWS, len, buf);
            for value in row {
                put_delimited(field::ROW_VALUES, value_len(value), buf);
                put_value(value, buf);
            }
        }
        if reply.rows_affected != 0 {
            put_key(field::ROWS_AFFECTED, WireType::Varint, buf);
            put_varint(reply.rows_affected, buf);
        }
        put_string(field::ENGINE, reply.engine, buf);
    }
}

/// One statement's outcome in a batch.
#[derive(Debug)]
pub(super) enum Outcome<'a> {
    /// Its result.
    Result(Reply<'a>),
    /// Why it failed.
    Error(&'a pb::StatementError),
}

/// An `ExecuteBatchResponse` of `outcomes` on `engine`, encoded;
/// `Err(ResponseTooLarge)` when it would take more than `limit` bytes.
pub(super) fn encode_batch(
    outcomes: Vec<Outcome<'_>>,
    engine: &str,
    limit: usize,
) -> Result<EncodedReply, Error> {
    enum Sized<'a> {
        Result(SizedReply<'a>),
        Error(&'a pb::StatementError),
    }
    let outcomes: Vec<(Sized<'_>, usize)> = outcomes
        .into_iter()
        .map(|outcome| match outcome {
            Outcome::Result(reply) => {
                let sized = reply.sized();
                let len = delimited_len(field::OUTCOME_RESULT, sized.len);
                (Sized::Result(sized), len)
            }
            Outcome::Error(error) => {
                let len = message::encoded_len(field::OUTCOME_ERROR, error);
                (Sized::Error(error), len)
            }
        })
        .collect();
    let len = outcomes
        .iter()
        .map(|(_, len)| delimited_len(field::BATCH_RESULTS, *len))
        .sum::<usize>()
        + string_len(field::BATCH_ENGINE, engine);
    let mut buf = buffer(len, limit)?;
    for (outcome, outcome_len) in &outcomes {
        put_delimited(field::BATCH_RESULTS, *outcome_len, &mut buf);
        match outcome {
            Sized::Result(sized) => {
                put_delimited(field::OUTCOME_RESULT, sized.len, &mut buf);
                sized.write(&mut buf);
            }
            Sized::Error(error) => message::encode(field::OUTCOME_ERROR, *error, &mut buf),
        }
    }
    put_string(field::BATCH_ENGINE, engine, &mut buf);
    Ok(done(buf, len))
}

/// A buffer for a reply of `len` bytes; `Err(ResponseTooLarge)` past
/// `limit`.
fn buffer(len: usize, limit: usize) -> Result<BytesMut, Error> {
    if len > limit {
        return Err(Error::ResponseTooLarge { size: len, limit });
    }
    Ok(BytesMut::with_capacity(len))
}

/// The reply written in `buf`, which its length said would take `len`.
fn done(buf: BytesMut, len: usize) -> EncodedReply {
    debug_assert_eq!(buf.len(), len, "a reply's length and its bytes disagree");
    EncodedReply::from_encoded(buf)
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
    use bytes::Bytes;
    use omnigate::codec::protobuf::to_proto;
    use omnigate_drivers::ResultSet;
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

    /// The message prost would write: what the server built before.
    fn result_to_proto(result: ResultSet, engine: String) -> pb::ExecuteResponse {
        pb::ExecuteResponse {
            columns: (result.columns.into_iter())
                .map(|c| pb::Column {
                    name: c.name.into_string(),
                    type_name: c.type_name.into_string(),
                })
                .collect(),
            rows: result.rows.map_rows(|row| pb::Row {
                values: row.map(to_proto).collect(),
            }),
            rows_affected: result.rows_affected,
            engine,
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
    fn batch_replies_are_the_bytes_prost_writes_for_the_message() {
        let mut rows = Rows::new();
        rows.push([Value::String("v".into())]);
        let ok = result(rows, 0);
        let written = result(Rows::new(), 1);
        let error = pb::StatementError {
            code: 9,
            message: "WRONGTYPE".into(),
            reason: "INVALID_STATEMENT".into(),
            metadata: [("engine".to_owned(), "cache".to_owned())].into(),
        };
        fn reply(result: &ResultSet) -> Outcome<'_> {
            Outcome::Result(Reply {
                columns: &result.columns,
                rows: &result.rows,
                rows_affected: result.rows_affected,
                engine: "cache",
            })
        }
        let outcomes = vec![reply(&ok), Outcome::Error(&error), reply(&written)];
        let encoded = encode_batch(outcomes, "cache", usize::MAX).unwrap();
        let expected = pb::ExecuteBatchResponse {
            results: [
                pb::batch_result::Outcome::Result(result_to_proto(ok.clone(), "cache".into())),
                pb::batch_result::Outcome::Error(error.clone()),
                pb::batch_result::Outcome::Result(result_to_proto(written, "cache".into())),
            ]
            .into_iter()
            .map(|outcome| pb::BatchResult {
                outcome: Some(outcome),
            })
            .collect(),
            engine: "cache".into(),
        };
        assert_eq!(encoded.encoded(), &expected.encode_to_vec()[..]);
        let empty = encode_batch(Vec::new(), "", usize::MAX).unwrap();
        assert!(empty.encoded().is_empty());
        // Refused past the limit, whole.
        let outcomes = vec![reply(&ok), Outcome::Error(&error)];
        let size = encode_batch(outcomes, "cache", usize::MAX)
            .unwrap()
            .encoded()
            .len();
        let outcomes = vec![reply(&ok), Outcome::Error(&error)];
        assert!(matches!(
            encode_batch(outcomes, "cache", size - 1),
            Err(Error::ResponseTooLarge { .. })
        ));
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
