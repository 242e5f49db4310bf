//! Codec bindings end to end, on the memory engine and on real Redis:
//! structured values written to bound keys are encoded, read back decoded,
//! plain values stay plain, and Describe lists the bindings.
#![allow(clippy::unwrap_used)]

use omnigate::codec::{Binding, Format};
use omnigate::config::{Config, DriverConfig, EngineConfig};
use omnigate_drivers::memory::MemoryConfig;
use omnigate_drivers::redis::RedisConfig;
use omnigate_proto::v1 as pb;
use omnigate_tests::redis::RedisServer;
use omnigate_tests::{TestGateway, exec, fail, i, request, s, scalar, v};
use pb::value::Kind;
use tonic::Code;

fn bindings() -> Vec<Binding> {
    vec![
        Binding {
            pattern: "session:*".into(),
            codec: Format::Msgpack,
            compress_above: 1024,
        },
        Binding {
            pattern: "profile:*".into(),
            codec: Format::Protobuf,
            compress_above: 64,
        },
    ]
}

fn map(entries: &[(&str, pb::Value)]) -> pb::Value {
    v(Kind::Map(pb::ValueMap {
        entries: entries
            .iter()
            .map(|(k, v)| pb::MapEntry {
                key: (*k).into(),
                value: Some(v.clone()),
            })
            .collect(),
    }))
}

fn list(items: Vec<pb::Value>) -> pb::Value {
    v(Kind::List(pb::ValueList { values: items }))
}

async fn check_codecs(gw: &mut TestGateway) {
    let c = &mut gw.client;
    let session = map(&[
        ("user", s("ada")),
        ("visits", i(3)),
        ("tags", list(vec![s("a"), v(Kind::Null(0))])),
    ]);
    exec(
        c,
        request("redis", "SET session:1 $1", vec![session.clone()]),
    )
    .await;
    let got = exec(c, request("redis", "GET session:1", vec![])).await;
    assert_eq!(
        got.rows[0].values[0], session,
        "a map written to a bound key reads back as the map"
    );

    let uuid = v(Kind::Uuid("67e55044-10b1-426f-9247-bb680e5fe0c8".into()));
    let profile = map(&[("id", uuid), ("bio", s(&"long text ".repeat(50)))]);
    exec(
        c,
        request(
            "redis",
            "HSET profile:1 data $1 plain $2",
            vec![profile.clone(), s("stays plain")],
        ),
    )
    .await;
    let hgetall = exec(c, request("redis", "HGETALL profile:1", vec![])).await;
    let Some(Kind::List(flat)) = scalar(&hgetall) else {
        panic!("a list reply")
    };
    let fields: Vec<(pb::Value, pb::Value)> = flat
        .values
        .chunks(2)
        .map(|p| (p[0].clone(), p[1].clone()))
        .collect();
    assert!(
        fields.contains(&(s("data"), profile.clone())),
        "protobuf keeps the uuid kind: {fields:?}"
    );
    assert!(
        fields.contains(&(s("plain"), s("stays plain"))),
        "plain strings are stored plain"
    );
    exec(c, request("redis", "SET session:plain $1", vec![s("text")])).await;
    let strlen = exec(c, request("redis", "STRLEN session:plain", vec![])).await;
    assert_eq!(
        scalar(&strlen),
        Some(Kind::Int(4)),
        "other clients read plain values as they are, even on a bound key"
    );

    exec(
        c,
        request(
            "redis",
            "RPUSH session:list $1 $2",
            vec![list(vec![i(1), i(2)]), s("x")],
        ),
    )
    .await;
    let lrange = exec(c, request("redis", "LRANGE session:list 0 -1", vec![])).await;
    assert_eq!(
        scalar(&lrange),
        Some(Kind::List(pb::ValueList {
            values: vec![list(vec![i(1), i(2)]), s("x")]
        }))
    );

    let status = fail(c, request("redis", "SET unbound:1 $1", vec![session])).await;
    assert_eq!(status.code(), Code::InvalidArgument);
    assert!(status.message().contains("needs a codec"), "{status:?}");

    let described = c
        .describe(pb::DescribeRequest {
            target: "cache".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let bound: Vec<(&str, &str)> = described
        .objects
        .iter()
        .filter(|o| o.kind == "binding")
        .map(|o| (o.name.as_str(), o.attributes["codec"].as_str()))
        .collect();
    assert_eq!(bound, [("session:*", "msgpack"), ("profile:*", "protobuf")]);
    let counters = omnigate_tests::engine(c, "cache").await.counters;
    assert!(
        counters["codec_binding_misses"] >= 3 && counters.contains_key("codec_binding_hits"),
        "{counters:?}"
    );
}

#[tokio::test]
async fn codecs_on_the_memory_engine() {
    let mut config = Config::default();
    config.engines.insert(
        "cache".into(),
        EngineConfig {
            bindings: bindings(),
            ..EngineConfig::new(DriverConfig::Memory(MemoryConfig::default()))
        },
    );
    check_codecs(&mut TestGateway::with_config(config).await).await;
}

#[tokio::test]
async fn codecs_on_real_redis() {
    let server = RedisServer::start();
    let mut config = Config::default();
    config.engines.insert(
        "cache".into(),
        EngineConfig {
            bindings: bindings(),
            ..EngineConfig::new(DriverConfig::Redis(RedisConfig {
                url: server.url(0),
                ..RedisConfig::default()
            }))
        },
    );
    check_codecs(&mut TestGateway::with_config(config).await).await;
}
