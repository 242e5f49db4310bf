//! The fuzz targets: each takes any bytes and must return normally (a
//! panic is a finding). `fuzz_targets/` runs them under libFuzzer
//! (nightly); `tests/corpus.rs` replays the committed corpora and
//! mutations of them on stable, as the CI test command does.

use bytes::Bytes;
use omnigate_drivers::Value;
use omnigate_drivers::fuzzing as drivers;

/// A target: any bytes in, a panic on a finding.
pub type Target = fn(&[u8]);

/// Every target by name (its corpus is `corpus/NAME/`).
pub const TARGETS: &[(&str, Target)] = &[
    ("redis_command", redis_command),
    ("line_protocol", line_protocol),
    ("ts_statement", ts_statement),
    ("codec", codec),
    ("falkor_reply", falkor_reply),
    ("redis_reply", redis_reply),
    ("execute_request", execute_request),
    ("batch_request", batch_request),
    ("pg_wire", pg_wire),
    ("resp_request", resp_request),
    ("resp_session", resp_session),
];

/// The byte that separates a `redis_command` input's statement from its
/// parameters and them from each other (never part of UTF-8 text).
pub const SEPARATOR: u8 = 0xFF;

/// A redis statement and its parameters: `text 0xFF param 0xFF param...`;
/// a parameter `i<digits>` is an integer, `f<digits>` a float, anything
/// else bytes.
pub fn redis_command(data: &[u8]) {
    let mut parts = data.split(|b| *b == SEPARATOR);
    let text = String::from_utf8_lossy(parts.next().unwrap_or_default());
    let params: Vec<Value> = parts
        .take(64)
        .map(|p| {
            let text = std::str::from_utf8(p).unwrap_or("");
            let int = text.strip_prefix('i').and_then(|t| t.parse().ok());
            let float = text.strip_prefix('f').and_then(|t| t.parse().ok());
            match (int, float) {
                (Some(i), _) => Value::Int(i),
                (None, Some(f)) => Value::Float(f),
                (None, None) => Value::Bytes(Bytes::copy_from_slice(p)),
            }
        })
        .collect();
    drivers::redis_command(&text, &params);
}

/// Line protocol, the fast scanner against the full parser.
pub fn line_protocol(data: &[u8]) {
    drivers::line_protocol(&String::from_utf8_lossy(data));
}

/// A `ts` statement on the memory engine (PromQL, writes, deletes).
pub fn ts_statement(data: &[u8]) {
    drivers::ts_statement(&String::from_utf8_lossy(data));
}

/// Stored bytes through the codec.
pub fn codec(data: &[u8]) {
    omnigate_frontends::fuzzing::codec(data);
}

/// A FalkorDB reply (RESP) read as a result set.
pub fn falkor_reply(data: &[u8]) {
    drivers::falkor_reply(data);
}

/// A Redis server's bytes as the redis engine's link frames and decodes
/// them (the first byte: the size of the pieces they arrive in).
pub fn redis_reply(data: &[u8]) {
    drivers::redis_reply(data);
}

/// An `ExecuteRequest` as the server receives it.
pub fn execute_request(data: &[u8]) {
    omnigate_frontends::fuzzing::execute_request(data);
}

/// A PostgreSQL-wire client's bytes and query strings.
pub fn pg_wire(data: &[u8]) {
    omnigate_frontends::fuzzing::pg_wire(data);
}

/// A Redis client's bytes through the RESP front end's decoder, whole and
/// split (a differential: the resumable decoder must read the same).
pub fn resp_request(data: &[u8]) {
    omnigate_frontends::fuzzing::resp_request(data);
}

/// A Redis client's whole session through the RESP front end, against an
/// embedded gateway: the first byte picks one with a principal (odd;
/// `AUTH fuzz-token`) or an open one; the rest is what the client sends.
pub fn resp_session(data: &[u8]) {
    omnigate_frontends::fuzzing::resp_session(data);
}

/// An `ExecuteBatchRequest` as the server receives it.
pub fn batch_request(data: &[u8]) {
    omnigate_frontends::fuzzing::batch_request(data);
}
