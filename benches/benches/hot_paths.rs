//! Micro-benchmarks of the gateway's own work per call and per value,
//! without any engine: `cargo bench -p omnigate-bench`.
#![allow(missing_docs, clippy::unwrap_used)]

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use omnigate::codec::protobuf::to_proto;
use omnigate::codec::{Codec, Format, decode};
use omnigate_drivers::Value;
use omnigate_drivers::redis_syntax::parse_command;
use omnigate_drivers::ts::{Precision, lineproto};

fn redis_statement(c: &mut Criterion) {
    let params = vec![Value::from("bench:100b:42")];
    c.bench_function("redis_syntax: GET $1", |b| {
        b.iter(|| parse_command(black_box("GET $1"), black_box(&params), "bench").unwrap())
    });
}

/// What every PostgreSQL call adds for the session reset: the scan that
/// decides whether the connection needs one.
fn session_scan(c: &mut Criterion) {
    let point = "SELECT id, name, balance FROM bench_accounts WHERE id = $1";
    c.bench_function("postgres: session scan of a point read", |b| {
        b.iter(|| omnigate_drivers::postgres::changes_session(black_box(point)))
    });
}

fn line_protocol(c: &mut Criterion) {
    let lines: String = (0..1000)
        .map(|i| {
            format!(
                "cpu,host=h{},region=eu usage={i}.5,idle=99i {}\n",
                i % 10,
                1_700_000_000_000i64 + i
            )
        })
        .collect();
    c.bench_function("line protocol: check 1000 lines", |b| {
        b.iter(|| lineproto::check("bench", black_box(&lines), Precision::Milliseconds).unwrap())
    });
}

fn values(c: &mut Criterion) {
    let row = Value::Map(vec![
        ("id".into(), Value::Int(42)),
        ("name".into(), Value::from("account 42")),
        ("balance".into(), Value::Decimal("63.00".into())),
        (
            "tags".into(),
            Value::List(vec![Value::from("a"), Value::from("b")]),
        ),
    ]);
    c.bench_function("value -> proto (a 4-field map)", |b| {
        b.iter(|| to_proto(black_box(row.clone())))
    });
    let codec = Codec {
        format: Format::Msgpack,
        compress_above: 1024,
    };
    let encoded = codec.encode(&row);
    c.bench_function("codec: msgpack encode", |b| {
        b.iter(|| codec.encode(black_box(&row)))
    });
    c.bench_function("codec: msgpack decode", |b| {
        b.iter(|| decode(black_box(&encoded)).unwrap())
    });
}

criterion_group!(
    hot_paths,
    redis_statement,
    session_scan,
    line_protocol,
    values
);
criterion_main!(hot_paths);
