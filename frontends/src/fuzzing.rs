//! Entry points for the fuzz targets (`fuzz/`, cargo feature `fuzzing`):
//! what the server does with a request's bytes before an engine sees
//! them, and the codec's decoding. Every function returns normally for
//! any input; a panic is a finding.

use omnigate_drivers::fuzzing as drivers;
use omnigate_drivers::{Dialect, Value};
use omnigate_proto::v1 as pb;
use prost::Message;

use crate::grpc::request;
use crate::trace;
use omnigate::CallContext;

/// An `ExecuteRequest` as the server decodes it, converted to the
/// gateway's types, and its statement and parameters as each engine's
/// client would take them.
pub fn execute_request(data: &[u8]) {
    let Ok(message) = pb::ExecuteRequest::decode(data) else {
        return;
    };
    let Ok(request) = request::to_request(message, CallContext::anonymous()) else {
        return;
    };
    statement(&request.dialect, &request.statement, &request.params);
    drivers::engine_params(&request.params, &request.named);
}

/// An `ExecuteBatchRequest` likewise.
pub fn batch_request(data: &[u8]) {
    let Ok(message) = pb::ExecuteBatchRequest::decode(data) else {
        return;
    };
    let Ok(batch) = request::to_batch_request(message, CallContext::anonymous()) else {
        return;
    };
    for s in &batch.statements {
        statement(&batch.dialect, &s.text, &s.params);
        drivers::engine_params(&s.params, &s.named);
    }
}

/// A statement's text where the gateway reads it: its log fingerprint,
/// and the dialect's own syntax where the gateway parses it.
fn statement(dialect: &str, text: &str, params: &[Value]) {
    let _ = trace::fingerprint(dialect, text);
    match Dialect::parse(dialect) {
        Some(Dialect::Redis) => drivers::redis_command(text, params),
        Some(Dialect::Ts) => {
            drivers::line_protocol(text);
            drivers::ts_statement(text);
        }
        _ => {}
    }
}

/// Stored bytes through the codec: decoding never panics; a decoded
/// value written with protobuf reads back as itself, and with msgpack
/// (where kinds other than null, bool, numbers, text, bytes, lists and
/// maps travel as their text) reads back the same after one pass.
pub fn codec(data: &[u8]) {
    use omnigate::codec::{Codec, Format, decode};
    let _ = omnigate::codec::decode_all(drivers::bytes_param(data));
    let Ok(Some(value)) = decode(data) else {
        return;
    };
    // Debug text: NaN is equal to itself there.
    let through = |format, value: &Value, compress_above| {
        let codec = Codec {
            format,
            compress_above,
        };
        format!("{:?}", decode(&codec.encode(value)).ok().flatten())
    };
    for compress_above in [0, usize::MAX] {
        assert_eq!(
            through(Format::Protobuf, &value, compress_above),
            format!("{:?}", Some(&value)),
            "protobuf does not read back what it wrote"
        );
        let codec = Codec {
            format: Format::Msgpack,
            compress_above,
        };
        let Ok(Some(once)) = decode(&codec.encode(&value)) else {
            panic!("msgpack does not read what it wrote");
        };
        assert_eq!(
            through(Format::Msgpack, &once, compress_above),
            format!("{:?}", Some(&once)),
            "msgpack does not read back what it wrote"
        );
    }
}

/// A PostgreSQL-wire client's bytes: the protocol decoder, and its query
/// strings as the front end splits and reads them.
pub fn pg_wire(data: &[u8]) {
    crate::postgres::fuzz(data);
}

/// A Redis client's bytes through the RESP front end's request decoder.
pub fn resp_request(data: &[u8]) {
    crate::resp::fuzz(data);
}

/// A Redis client's whole session through the RESP front end's dispatch,
/// against an embedded gateway (see `resp/session_fuzz.rs`).
pub fn resp_session(data: &[u8]) {
    crate::resp::session_fuzz::fuzz_session(data);
}
