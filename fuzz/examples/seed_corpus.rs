//! Writes the seed corpora (`corpus/TARGET/seed-*`): shapes a client can
//! send, with the hostile ones the defects issue found (deep nesting, huge
//! sizes, NUL bytes, CPU-heavy queries). Run from the workspace root:
//! `cargo run -p omnigate-fuzz --example seed_corpus`.
#![allow(clippy::unwrap_used)]

use std::path::Path;

use bytes::Bytes;
use omnigate::codec::protobuf::to_proto;
use omnigate::codec::{Codec, Format};
use omnigate_drivers::Value;
use omnigate_fuzz::SEPARATOR;
use omnigate_proto::v1 as pb;
use prost::Message;

fn write(target: &str, seeds: Vec<Vec<u8>>) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("corpus")
        .join(target);
    std::fs::create_dir_all(&dir).unwrap();
    for (i, seed) in seeds.into_iter().enumerate() {
        std::fs::write(dir.join(format!("seed-{i:03}")), seed).unwrap();
    }
}

fn nested(depth: usize) -> Value {
    (0..depth).fold(Value::Int(1), |inner, _| Value::List(vec![inner]))
}

/// Values of every kind, and hostile ones.
fn values() -> Vec<Value> {
    vec![
        Value::Null,
        Value::Bool(true),
        Value::Int(i64::MIN),
        Value::Float(f64::NAN),
        Value::Float(-0.0),
        Value::Decimal("-12345678901234567890.000000001".into()),
        Value::String("it's a \"quote\" \\ and a\0NUL".into()),
        Value::Bytes(Bytes::from_static(b"\x00\xff\xc1B64:not")),
        Value::Json("{\"a\": [1, {\"b\": null}]}".into()),
        Value::Uuid(uuid::Uuid::nil()),
        Value::List(vec![Value::Int(1), Value::String("x".into())]),
        Value::Map(vec![
            ("k`ey".into(), Value::Bool(false)),
            ("n".into(), Value::Map(vec![])),
        ]),
        nested(40),
        nested(200),
        Value::String("x".repeat(64 << 10).into()),
    ]
}

fn redis_commands() -> Vec<Vec<u8>> {
    let with = |text: &str, params: &[&[u8]]| {
        let mut out = text.as_bytes().to_vec();
        for p in params {
            out.push(SEPARATOR);
            out.extend_from_slice(p);
        }
        out
    };
    vec![
        with("PING", &[]),
        with("SET k $1", &[b"value"]),
        with("SET $1 $2 EX $3", &[b"k\0ey", b"\xff\x00", b"i60"]),
        with("HSET h f1 $1 f2 $1", &[b"f1.5"]),
        with("SET \"a\\x00b\\n\" 'it\\'s'", &[]),
        with("SET \"unterminated", &[]),
        with("GET \"$1\" $1", &[b"x"]),
        with("SET k \"\\xZZ\"x", &[]),
        with("SET k $99", &[b"unused"]),
        with(&format!("SET k {}", "v".repeat(100_000)), &[]),
        with(&"MSET k v ".repeat(2_000), &[]),
        with("  \t\n ", &[]),
    ]
}

fn line_protocol() -> Vec<Vec<u8>> {
    [
        "cpu,host=a usage=1.5,idle=2i 1700000000000000000",
        "cpu usage=1",
        "# a comment\n\ncpu,host=a usage=1\nmem used=2u",
        "weather,loc=us\\ west temp=82,desc=\"sunny, \\\"hot\\\"\" 9223372036854775807",
        "m,t=\\,\\=\\ x f=t,g=FALSE,h=-1e308",
        "m f=1 -9223372036854775808",
        "m f=\"a\0b\"",
        "héllo,ünï=côdé f=1",
        "m f=1 12abc",
        "m,=x f=1",
        "m f=",
        "m f=1i\r\nn g=2",
    ]
    .iter()
    .map(|s| s.as_bytes().to_vec())
    .chain([
        "m f=1\n".repeat(5_000).into_bytes(),
        format!(
            "m {} 1",
            (0..500)
                .map(|i| format!("f{i}=1"))
                .collect::<Vec<_>>()
                .join(",")
        )
        .into_bytes(),
    ])
    .collect()
}

fn ts_statements() -> Vec<Vec<u8>> {
    [
        "cpu_usage",
        "cpu_usage{host=\"a\"}",
        "cpu_usage{host=~\"a|b\", host!=\"c\"}",
        "rate(cpu_usage[5m])",
        "sum by (host) (cpu_usage)",
        "avg_over_time(cpu_usage[1h:1m])",
        "cpu_usage[1000000d:1ms]",
        "histogram_quantile(0.9, rate(x[5m]))",
        "topk(2, cpu_usage) or mem_used",
        "-cpu_usage * 2 / 0",
        "label_replace(cpu_usage, \"dst\", \"$1\", \"host\", \"(.*)\")",
        "count_values(\"v\", cpu_usage)",
        "DELETE cpu_usage{host=\"a\"}",
        "cpu,host=c usage=9",
        "{__name__=~\".+\"}",
        "cpu_usage offset 1h @ 1700000000",
    ]
    .iter()
    .map(|s| s.as_bytes().to_vec())
    .chain([
        format!("{}cpu_usage{}", "(".repeat(300), ")".repeat(300)).into_bytes(),
        format!("{}cpu_usage", "-".repeat(5_000)).into_bytes(),
        std::iter::repeat_n("cpu_usage", 300)
            .collect::<Vec<_>>()
            .join(" + ")
            .into_bytes(),
    ])
    .collect()
}

fn codec() -> Vec<Vec<u8>> {
    let mut seeds = Vec::new();
    for value in values() {
        for format in [Format::Msgpack, Format::Protobuf] {
            for compress_above in [0, 1 << 20] {
                let codec = Codec {
                    format,
                    compress_above,
                };
                seeds.push(codec.encode(&value).to_vec());
            }
        }
    }
    // A header with garbage, an unknown format, and a snappy length that
    // claims far more than the body.
    let header = Codec {
        format: Format::Msgpack,
        compress_above: 0,
    }
    .encode(&Value::Int(1));
    let magic = &header[..3];
    seeds.push([magic, &[0x10], b"\xdd\xff\xff\xff\xff"].concat());
    seeds.push([magic, &[0x70], b"x"].concat());
    seeds.push([magic, &[0x11], b"\xff\xff\xff\xff\x0f"].concat());
    seeds.push(b"plain text".to_vec());
    seeds
}

/// Replies as a Redis server sends them to the link, each after a byte
/// giving the size of the pieces they arrive in.
fn redis_replies() -> Vec<Vec<u8>> {
    let piece = |size: u8, wire: &[u8]| [&[size][..], wire].concat();
    vec![
        piece(3, b"+OK\r\n:42\r\n$-1\r\n"),
        piece(2, b"$5\r\nhello\r\n$0\r\n\r\n*-1\r\n"),
        piece(5, b"*3\r\n:1\r\n$1\r\nv\r\n*2\r\n+a\r\n-ERR no\r\n"),
        piece(
            4,
            b"%2\r\n$1\r\na\r\n,1.5\r\n+b\r\n#t\r\n~1\r\n:3\r\n(123\r\n=7\r\ntxt:abc\r\n_\r\n",
        ),
        piece(
            7,
            b">2\r\n$10\r\ninvalidate\r\n*0\r\n|1\r\n+k\r\n:1\r\n!3\r\nERR\r\n",
        ),
        // A map keyed by an array (a script returns one), then a reply.
        piece(6, b"%1\r\n*1\r\n:1\r\n$1\r\nv\r\n+NEXT\r\n"),
        piece(16, &[&b"*1\r\n".repeat(40)[..], b":1\r\n"].concat()),
        piece(1, b"-ERR unknown \xff\r\n"),
    ]
}

fn falkor_replies() -> Vec<Vec<u8>> {
    let header = "*1\r\n*2\r\n:1\r\n$1\r\nn\r\n";
    let stats = "*2\r\n$16\r\nNodes created: 1\r\n$38\r\nQuery internal execution time: 0.1 ms\r\n";
    let reply = |cell: &str| format!("*3\r\n{header}*1\r\n*1\r\n{cell}{stats}");
    [
        reply("*2\r\n:3\r\n:42\r\n"),
        reply("*2\r\n:2\r\n$5\r\nhello\r\n"),
        reply("*2\r\n:5\r\n$3\r\n1.5\r\n"),
        reply("*2\r\n:6\r\n*2\r\n*2\r\n:3\r\n:1\r\n*1\r\n:1\r\n"),
        reply("*2\r\n:8\r\n*3\r\n:7\r\n*1\r\n:0\r\n*1\r\n*3\r\n:0\r\n:2\r\n$3\r\nada\r\n"),
        reply("*2\r\n:7\r\n*5\r\n:1\r\n:0\r\n:0\r\n:7\r\n*0\r\n"),
        reply("*2\r\n:10\r\n*2\r\n$1\r\nk\r\n*2\r\n:3\r\n:1\r\n"),
        reply("*2\r\n:11\r\n*2\r\n$3\r\n1.5\r\n$3\r\n2.5\r\n"),
        reply("*2\r\n:13\r\n:99999999999999\r\n"),
        reply("*2\r\n:15\r\n:-1\r\n"),
        reply("*2\r\n:8\r\n*3\r\n:7\r\n*1\r\n:99\r\n*0\r\n"),
        format!("*1\r\n{stats}"),
        "*1\r\n*2\r\n$35\r\nNodes created: 18446744073709551615\r\n$35\r\nNodes deleted: 18446744073709551615\r\n".into(),
        format!("{}:1\r\n", "*1\r\n".repeat(2_000)),
        "-ERR boom\r\n".into(),
    ]
    .iter()
    .map(|s| s.as_bytes().to_vec())
    .collect()
}

fn request(dialect: &str, statement: &str, params: Vec<Value>) -> pb::ExecuteRequest {
    pb::ExecuteRequest {
        dialect: dialect.into(),
        statement: statement.into(),
        named_params: params
            .iter()
            .enumerate()
            .map(|(i, v)| (format!("p{i}"), to_proto(v.clone())))
            .collect(),
        params: params.into_iter().map(to_proto).collect(),
        ..pb::ExecuteRequest::default()
    }
}

fn execute_requests() -> Vec<Vec<u8>> {
    let mut seeds: Vec<pb::ExecuteRequest> = values()
        .into_iter()
        .map(|v| request("sql", "SELECT $1", vec![v]))
        .collect();
    seeds.extend([
        request(
            "redis",
            "SET k $1",
            vec![Value::Bytes(Bytes::from_static(b"\0"))],
        ),
        request("ts", "cpu,host=a usage=1", vec![]),
        request("ts", "rate(cpu_usage[5m])", vec![]),
        request(
            "cypher",
            "CREATE (:P {name: $p0})",
            vec![Value::String("x".into())],
        ),
        request("sql", "SELECT 'a' || $1 -- 42", vec![Value::Int(42)]),
        request("mongo", "", vec![]),
    ]);
    let mut with_options = request("ts", "cpu_usage", vec![]);
    with_options.options = Some(pb::ExecuteOptions {
        max_rows: u64::MAX,
        timeout: Some(prost_types::Duration {
            seconds: i64::MAX,
            nanos: -1,
        }),
        batch_size: u32::MAX,
        ..pb::ExecuteOptions::default()
    });
    seeds.push(with_options);
    seeds.into_iter().map(|r| r.encode_to_vec()).collect()
}

fn batch_requests() -> Vec<Vec<u8>> {
    let statement = |text: &str, params: Vec<Value>| pb::BatchStatement {
        statement: text.into(),
        params: params.into_iter().map(to_proto).collect(),
        ..pb::BatchStatement::default()
    };
    let batch = |dialect: &str, statements| pb::ExecuteBatchRequest {
        dialect: dialect.into(),
        statements,
        ..pb::ExecuteBatchRequest::default()
    };
    vec![
        batch(
            "redis",
            vec![
                statement("SET a $1", vec![Value::Int(1)]),
                statement("INCR a", vec![]),
                statement("GET \"unterminated", vec![]),
            ],
        ),
        batch("sql", vec![statement("SELECT $1", vec![nested(150)])]),
        batch(
            "cypher",
            vec![pb::BatchStatement {
                statement: "MATCH (n {k: $k}) RETURN n".into(),
                named_params: [("k".to_owned(), to_proto(Value::String("it's".into())))].into(),
                ..pb::BatchStatement::default()
            }],
        ),
        batch("redis", vec![]),
        batch(
            "ts",
            (0..1_000)
                .map(|i| statement(&format!("m,i={i} f=1"), vec![]))
                .collect(),
        ),
    ]
    .into_iter()
    .map(|b| b.encode_to_vec())
    .collect()
}

fn main() {
    write("redis_command", redis_commands());
    write("line_protocol", line_protocol());
    write("ts_statement", ts_statements());
    write("codec", codec());
    write("falkor_reply", falkor_replies());
    write("redis_reply", redis_replies());
    write("execute_request", execute_requests());
    write("batch_request", batch_requests());
}
