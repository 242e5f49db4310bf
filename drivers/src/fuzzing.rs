//! Entry points for the fuzz targets (`fuzz/`, cargo feature `fuzzing`):
//! the parts of the drivers a client's bytes reach, each callable with
//! any input. Every function returns normally for any input; a panic is a
//! finding. Where two implementations must agree, a disagreement panics.

use std::sync::Mutex;
use std::time::Duration;

use bytes::Bytes;

use crate::deadline::Deadline;
use crate::memory::timeseries::TsStore;
use crate::ts::Precision;
use crate::{ExecuteOptions, Statement, Value};

/// A `redis` statement split redis-cli style and its `$n` bound.
pub fn redis_command(text: &str, params: &[Value]) {
    if let Ok(args) = crate::redis_syntax::parse_command(text, params, "fuzz") {
        assert!(!args.is_empty(), "a parsed command has a name");
        let class = classes(&args);
        // Redis finds a command (and a container's subcommand) by its name
        // in any ASCII case, and reads options (`BLOCK`, `DB`) so too: so
        // must authorization and the checks, or `fLuShDb` would pass a
        // rule on `FLUSHDB` and `xread block` the blocking check.
        let flipped: Vec<Bytes> = args
            .iter()
            .map(|a| Bytes::from(a.iter().map(|b| flip_case(*b)).collect::<Vec<u8>>()))
            .collect();
        assert_eq!(
            classes(&flipped),
            class,
            "the case of a command's words changed its class"
        );
        // However a client quotes the same arguments, they parse to the
        // same ones and are classified the same (`'FLUSHDB'`, "KEYS").
        let quoted: Vec<String> = args.iter().map(|a| quote(a)).collect();
        let reparsed = crate::redis_syntax::parse_command(&quoted.join(" "), &[], "fuzz")
            .expect("quoted arguments parse");
        assert_eq!(reparsed, args, "quoting changed the arguments");
        assert_eq!(classes(&reparsed), class, "quoting changed the class");
    }
    // The same text as SQL: the PostgreSQL session scan takes any input.
    let _ = crate::postgres::changes_session(text);
}

/// What authorization and the connection checks read of a command: its
/// full name, whether it is admin, a script, blocking, refused.
fn classes(args: &[Bytes]) -> (Option<String>, bool, bool, bool, Option<&'static str>) {
    let full = crate::redis_commands::full_name(args);
    let admin = full.as_deref().is_some_and(crate::redis_commands::is_admin);
    let script = full
        .as_deref()
        .is_some_and(crate::redis_commands::is_script);
    let blocking = crate::redis::commands::is_blocking(args);
    let refusal = crate::redis::commands::refusal(args);
    (full, admin, script, blocking, refusal)
}

fn flip_case(b: u8) -> u8 {
    if b.is_ascii_alphabetic() { b ^ 0x20 } else { b }
}

/// `arg` double-quoted, every byte that is not alphanumeric escaped.
fn quote(arg: &[u8]) -> String {
    let mut out = String::from("\"");
    for &b in arg {
        if b.is_ascii_alphanumeric() {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("\\x{b:02x}"));
        }
    }
    out.push('"');
    out
}

/// Line protocol: the fast scanner must agree with the full parser
/// (`influxdb-line-protocol`) whenever it answers, on the count of samples.
pub fn line_protocol(text: &str) {
    for precision in [Precision::Nanoseconds, Precision::Seconds] {
        let full = crate::ts::lineproto::parse("fuzz", text, precision).map(|s| s.len() as u64);
        if let Some(fast) = crate::ts::lineproto::fast_check(text, precision) {
            assert_eq!(
                full.as_ref().ok(),
                Some(&fast),
                "the fast scanner counted {fast} samples where the full parser says {full:?}"
            );
        }
        let checked = crate::ts::lineproto::check("fuzz", text, precision).ok();
        assert_eq!(checked, full.ok(), "check and parse disagree");
    }
}

/// A `ts` statement (PromQL, a line-protocol write, a delete) run on the
/// memory engine's series, under a short deadline.
pub fn ts_statement(text: &str) {
    let store = Mutex::new(TsStore::default());
    let seed = Statement::new("cpu,host=a usage=1,idle=2\ncpu,host=b usage=3\nmem,host=a used=4");
    let options = ExecuteOptions::default();
    let deadline = Deadline::after(Some(Duration::from_millis(200)));
    let _ = crate::memory::timeseries::run(&store, &seed, &options, &deadline);
    let deadline = Deadline::after(Some(Duration::from_millis(200)));
    let _ = crate::memory::timeseries::run(&store, &Statement::new(text), &options, &deadline);
}

/// Parameters as each engine's client encodes them: PostgreSQL's binary
/// format for each type the driver maps, SQLite, Bolt, and
/// FalkorDB's `CYPHER name=literal` prefix (whose quoting must read back).
pub fn engine_params(params: &[Value], named: &[(String, Value)]) {
    use tokio_postgres::types::Type;
    // Every type the driver maps, and arrays of some.
    let arrays = [Type::INT4_ARRAY, Type::TEXT_ARRAY, Type::JSONB_ARRAY];
    let pg_types: Vec<&Type> = crate::postgres::decode::MAPPED
        .iter()
        .chain(&arrays)
        .collect();
    for (index, value) in params.iter().enumerate() {
        for ty in &pg_types {
            let _ = crate::postgres::encode::encode(index, value, ty);
        }
        let _ = crate::sqlite::convert::to_sql(index, value);
        let _ = crate::neo4j::convert::to_bolt(value);
    }
    if let Ok(prefix) = crate::falkordb::params::prefix(named) {
        assert!(
            prefix.is_empty() || prefix.starts_with(b"CYPHER "),
            "{prefix:?}"
        );
    }
    // A string or bytes literal reads back as exactly its value: nothing
    // in a parameter can end the literal early.
    for (_, value) in named {
        let Ok(prefix) = crate::falkordb::params::prefix(&[("p".into(), value.clone())]) else {
            continue;
        };
        let literal = &prefix[b"CYPHER p=".len()..prefix.len() - 1];
        match value {
            Value::String(text) => assert_eq!(unquote(literal), text.as_bytes()),
            Value::Bytes(bytes) => assert_eq!(
                crate::falkordb::params::stored_bytes(&unquote(literal)).as_deref(),
                Some(&bytes[..])
            ),
            _ => {}
        }
    }
}

/// A `'...'` literal's bytes; panics when an unescaped quote ends it early.
fn unquote(literal: &[u8]) -> Vec<u8> {
    let inner = literal
        .strip_prefix(b"'")
        .and_then(|l| l.strip_suffix(b"'"))
        .unwrap_or_else(|| panic!("not a quoted literal: {literal:?}"));
    let mut out = Vec::with_capacity(inner.len());
    let mut bytes = inner.iter();
    while let Some(&b) = bytes.next() {
        match b {
            b'\\' => out.push(*bytes.next().expect("an escape at the end of a literal")),
            b'\'' => panic!("an unescaped quote inside a literal: {literal:?}"),
            b => out.push(b),
        }
    }
    out
}

/// A FalkorDB reply (RESP bytes) read as a result set, in compact form.
pub fn falkor_reply(resp: &[u8]) {
    let Ok(reply) = ::redis::parse_redis_value(resp) else {
        return;
    };
    let tables = crate::falkordb::reply::Tables {
        labels: vec!["Person".into()],
        types: vec!["KNOWS".into()],
        keys: vec!["name".into(), "age".into()],
    };
    let _ = crate::falkordb::reply::result_set(&reply, &tables);
    let _ = crate::falkordb::reply::first_column(&reply);
}

/// A Redis server's bytes as the redis engine's link reads them, in both
/// protocols: framed reply by reply as they arrive in pieces (cut where
/// the first byte says), each reply decoded to a value with and without
/// `raw_bytes`. Framing in pieces must find the same replies as framing
/// the whole, and whatever the framing passes must decode or be an error.
pub fn redis_reply(data: &[u8]) {
    use crate::resp::Protocol;
    let Some((cut, wire)) = data.split_first() else {
        return;
    };
    for protocol in [Protocol::Resp2, Protocol::Resp3] {
        let mut replies = Vec::new();
        let whole = frame_in(protocol, std::iter::once(wire), &mut replies);
        for reply in replies {
            let raw = reply.clone();
            let _ = reply.into_value("fuzz", false);
            let _ = raw.into_value("fuzz", true);
        }
        let pieces = frame_in(
            protocol,
            wire.chunks(usize::from(*cut).max(1)),
            &mut Vec::new(),
        );
        assert_eq!(
            pieces, whole,
            "framing in pieces disagrees with framing whole"
        );
    }
}

/// Frames `chunks` arriving one after another, as the link reads them:
/// each reply's length, and the bytes left unframed at the end (or why
/// framing failed).
fn frame_in<'a>(
    protocol: crate::resp::Protocol,
    chunks: impl Iterator<Item = &'a [u8]>,
    replies: &mut Vec<crate::resp::Reply>,
) -> (Vec<usize>, Result<usize, &'static str>) {
    let mut buf = bytes::BytesMut::new();
    let mut framer = crate::resp::Framer::new(protocol);
    let mut lengths = Vec::new();
    for chunk in chunks {
        buf.extend_from_slice(chunk);
        loop {
            let before = buf.len();
            match framer.next(&mut buf) {
                Ok(Some(reply)) => {
                    lengths.push(before - buf.len());
                    replies.push(reply);
                }
                Ok(None) => break,
                Err(e) => return (lengths, Err(e)),
            }
        }
    }
    (lengths, Ok(buf.len()))
}

/// Bytes as the value of a parameter, for targets that take raw input.
pub fn bytes_param(data: &[u8]) -> Value {
    Value::Bytes(Bytes::copy_from_slice(data))
}
