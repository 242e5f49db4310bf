//! `Execute`'s, `ExecuteStream`'s and `ExecuteBatch`'s replies written
//! straight from the gateway's results, in the wire format of
//! `omnigate.v1.ExecuteResponse` and `ExecuteBatchResponse`: the bytes
//! prost writes for those messages built of the same results (see
//! `omnigate_proto::encoded`). Each message is written once, as the
//! core's values are ([`omnigate::codec::protobuf::wire`]'s `Emit`),
//! counted then written: a reply past the server's `max_response_bytes`
//! is refused before its buffer is allocated, and the one that is built
//! takes one buffer (and a vector of its rows' lengths, counted once).

use bytes::BytesMut;
use omnigate::codec::protobuf::wire::{Emit, Sink, Writer, counted};
use omnigate::error::Error;
use omnigate_drivers::{Column, Rows, Value};
use omnigate_proto::encoded::EncodedReply;
use omnigate_proto::v1 as pb;

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
        encoded(&self.sized(), limit)
    }

    /// The reply with its rows' lengths, each counted once.
    fn sized(self) -> SizedReply<'a> {
        SizedReply {
            rows: self
                .rows
                .iter()
                .map(|row| counted(&RowFields(row)))
                .collect(),
            reply: self,
        }
    }
}

/// A reply whose rows' lengths are known.
struct SizedReply<'a> {
    reply: Reply<'a>,
    /// Each row's length (without its delimiter).
    rows: Vec<usize>,
}

impl Emit for SizedReply<'_> {
    fn emit<S: Sink>(&self, sink: &mut S) {
        let reply = &self.reply;
        for column in reply.columns {
            sink.message(field::COLUMNS, &ColumnFields(column));
        }
        for (row, &len) in reply.rows.iter().zip(&self.rows) {
            sink.sized_message(field::ROWS, len, &RowFields(row));
        }
        sink.uint(field::ROWS_AFFECTED, reply.rows_affected);
        sink.string(field::ENGINE, reply.engine);
    }
}

/// `Column`.
struct ColumnFields<'a>(&'a Column);

impl Emit for ColumnFields<'_> {
    fn emit<S: Sink>(&self, sink: &mut S) {
        sink.string(field::COLUMN_NAME, &self.0.name);
        sink.string(field::COLUMN_TYPE, &self.0.type_name);
    }
}

/// `Row`.
struct RowFields<'a>(&'a [Value]);

impl Emit for RowFields<'_> {
    fn emit<S: Sink>(&self, sink: &mut S) {
        for value in self.0 {
            sink.message(field::ROW_VALUES, &value);
        }
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

/// A `BatchResult`: a result with its length, or an error.
enum SizedOutcome<'a> {
    Result(SizedReply<'a>, usize),
    Error(&'a pb::StatementError),
}

impl Emit for SizedOutcome<'_> {
    fn emit<S: Sink>(&self, sink: &mut S) {
        match self {
            SizedOutcome::Result(reply, len) => {
                sink.sized_message(field::OUTCOME_RESULT, *len, reply);
            }
            SizedOutcome::Error(error) => sink.prost_message(field::OUTCOME_ERROR, *error),
        }
    }
}

/// An `ExecuteBatchResponse`.
struct Batch<'a> {
    outcomes: Vec<SizedOutcome<'a>>,
    engine: &'a str,
}

impl Emit for Batch<'_> {
    fn emit<S: Sink>(&self, sink: &mut S) {
        for outcome in &self.outcomes {
            sink.message(field::BATCH_RESULTS, outcome);
        }
        sink.string(field::BATCH_ENGINE, self.engine);
    }
}

/// An `ExecuteBatchResponse` of `outcomes` on `engine`, encoded;
/// `Err(ResponseTooLarge)` when it would take more than `limit` bytes.
pub(super) fn encode_batch(
    outcomes: Vec<Outcome<'_>>,
    engine: &str,
    limit: usize,
) -> Result<EncodedReply, Error> {
    let outcomes = (outcomes.into_iter())
        .map(|outcome| match outcome {
            Outcome::Result(reply) => {
                let sized = reply.sized();
                let len = counted(&sized);
                SizedOutcome::Result(sized, len)
            }
            Outcome::Error(error) => SizedOutcome::Error(error),
        })
        .collect();
    encoded(&Batch { outcomes, engine }, limit)
}

/// `reply` encoded in one buffer of its length; `Err(ResponseTooLarge)`
/// when that is past `limit`, before the buffer is allocated.
fn encoded(reply: &impl Emit, limit: usize) -> Result<EncodedReply, Error> {
    let len = counted(reply);
    if len > limit {
        return Err(Error::ResponseTooLarge { size: len, limit });
    }
    let mut buf = BytesMut::with_capacity(len);
    reply.emit(&mut Writer(&mut buf));
    debug_assert_eq!(buf.len(), len, "a reply's length and its bytes disagree");
    Ok(EncodedReply::from_encoded(buf))
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
