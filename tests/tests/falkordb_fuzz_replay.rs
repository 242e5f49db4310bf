//! The differential half of the fuzzing that needs a server: every
//! parameter in the committed request corpus (`fuzz/corpus/execute_request`,
//! which the fuzzer grows) that FalkorDB can hold is sent as the
//! `CYPHER p=...` literal the driver writes, to a real FalkorDB, and must
//! come back as exactly itself (`RETURN $p`): the quoting is checked
//! against FalkorDB's own parser, not against ours.
#![allow(clippy::unwrap_used)]

use omnigate_drivers::falkordb::{FalkorConfig, FalkorDriver};
use omnigate_drivers::{Dialect, ExecuteOptions, MAX_DEPTH, Statement, StorageDriver, Value};
use omnigate_proto::v1 as pb;
use omnigate_tests::falkordb::FalkorServer;
use prost::Message;

/// The parameters of every request in the corpus, and some written here.
fn corpus() -> Vec<Value> {
    let dir = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../fuzz/corpus/execute_request"
    );
    let mut values: Vec<Value> = [
        "' RETURN 1 //",
        "\\",
        "\\'",
        "'}) DETACH DELETE n //",
        "`backtick`",
        "line\nbreak\ttab",
        "ünïcödé ✓ 😀",
    ]
    .map(Value::from)
    .into();
    for entry in std::fs::read_dir(dir).unwrap() {
        let bytes = std::fs::read(entry.unwrap().path()).unwrap();
        let Ok(request) = pb::ExecuteRequest::decode(bytes.as_slice()) else {
            continue;
        };
        let params = omnigate_frontends::grpc::convert::params_from_proto(request.params);
        let named = omnigate_frontends::grpc::convert::named_from_proto(request.named_params);
        values.extend(params.into_iter().flatten());
        values.extend(named.into_iter().flatten().map(|(_, v)| v));
    }
    values
}

/// What FalkorDB can hold (the driver refuses the rest, saying why).
fn storable(value: &Value) -> bool {
    match value {
        Value::Null | Value::Bool(_) | Value::Int(_) | Value::Bytes(_) => true,
        Value::Float(f) => f.is_finite(),
        Value::String(s) => !s.contains('\0'),
        Value::List(items) => items.iter().all(storable),
        Value::Map(entries) => entries
            .iter()
            .all(|(k, v)| !k.contains(['\0', '`']) && storable(v)),
        _ => false,
    }
}

/// Maps compared without their order (FalkorDB keeps its own).
fn canonical(value: Value) -> Value {
    match value {
        Value::List(items) => Value::List(items.into_iter().map(canonical).collect()),
        Value::Map(entries) => {
            let mut entries: Vec<_> = entries
                .into_iter()
                .map(|(k, v)| (k, canonical(v)))
                .collect();
            entries.sort_by(|a, b| a.0.cmp(&b.0));
            Value::Map(entries)
        }
        other => other,
    }
}

/// Equal, but for floats: FalkorDB replies with 15 significant digits
/// (`%.15g`), so a double comes back within that (found by this test on
/// the corpus the fuzzer grew; README, "Graph engines").
fn same(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Float(x), Value::Float(y)) => {
            x == y || (x - y).abs() <= 1e-14 * x.abs().max(y.abs())
        }
        (Value::List(x), Value::List(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(x, y)| same(x, y))
        }
        (Value::Map(x), Value::Map(y)) => {
            x.len() == y.len()
                && x.iter()
                    .zip(y)
                    .all(|((kx, x), (ky, y))| kx == ky && same(x, y))
        }
        _ => a == b,
    }
}

#[tokio::test]
async fn every_corpus_parameter_round_trips_through_a_real_falkordb() {
    let server = FalkorServer::start();
    let driver = FalkorDriver::connect(
        "graph",
        FalkorConfig {
            url: server.url(),
            graph: "replay".into(),
            ..FalkorConfig::default()
        },
    )
    .await
    .unwrap();
    let values: Vec<Value> = corpus()
        .into_iter()
        .filter(|v| storable(v) && v.depth() <= MAX_DEPTH)
        .collect();
    assert!(values.len() >= 20, "only {} values", values.len());
    let mut failures = Vec::new();
    for value in values {
        let statement = Statement {
            text: "RETURN $p".into(),
            params: Vec::new(),
            named: vec![("p".into(), value.clone())],
        };
        let shown = format!("{value:?}").chars().take(200).collect::<String>();
        match driver
            .execute(Dialect::Cypher, &statement, &ExecuteOptions::default())
            .await
        {
            Ok(result) if result.rows.len() == 1 => {
                let back = result.rows[0][0].clone();
                if !same(&canonical(back.clone()), &canonical(value)) {
                    failures.push(format!("{shown} came back as {back:?}"));
                }
            }
            Ok(other) => failures.push(format!("{shown}: {other:?}")),
            Err(e) => failures.push(format!("{shown}: {e}")),
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
