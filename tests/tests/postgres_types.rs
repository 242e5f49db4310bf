//! Every PostgreSQL type the engine maps, both ways, against a real server.
#![allow(clippy::unwrap_used)]

use chrono::{NaiveDate, NaiveTime};
use omnigate_drivers::conformance::{error, value};
use omnigate_drivers::{Dialect, Error, Interval, StorageDriver, Timestamp, Value};
use omnigate_tests::postgres::PgServer;

async fn echo(d: &dyn StorageDriver, ty: &str, input: Value) -> Value {
    value(d, Dialect::Sql, &format!("SELECT $1::{ty}"), &[input]).await
}

fn s(text: &str) -> Value {
    Value::String(text.into())
}

fn map(entries: &[(&str, Value)]) -> Value {
    Value::Map(
        entries
            .iter()
            .map(|(k, v)| ((*k).into(), v.clone()))
            .collect(),
    )
}

#[tokio::test]
async fn every_type_round_trips() {
    let server = PgServer::start();
    let d = &server.engine().await;

    // The same value back, for each type.
    let same = [
        ("bool", Value::Bool(true)),
        ("int2", Value::Int(-32768)),
        ("int4", Value::Int(2_147_483_647)),
        ("int8", Value::Int(i64::MIN)),
        ("float4", Value::Float(1.5)),
        ("float8", Value::Float(-0.1)),
        (
            "numeric",
            Value::Decimal("12345678901234567890.123456789".into()),
        ),
        ("numeric", Value::Decimal("-0.00001".into())),
        ("numeric", Value::Decimal("NaN".into())),
        ("text", s("héllo ✓ \"quoted\" 'single'")),
        ("varchar(20)", s("bounded")),
        ("name", s("a_name")),
        (
            "bytea",
            Value::Bytes(bytes::Bytes::from_static(b"\x00\xff\x01")),
        ),
        (
            "uuid",
            Value::Uuid(uuid::Uuid::from_u128(
                0x67e5_5044_10b1_426f_9247_bb68_0e5f_e0c8,
            )),
        ),
        (
            "jsonb",
            map(&[
                ("a", Value::Int(1)),
                ("b", Value::List(vec![Value::Bool(true), Value::Null])),
            ]),
        ),
        (
            "json",
            Value::List(vec![
                Value::Int(1),
                s("two"),
                map(&[("x", Value::Float(1.5))]),
            ]),
        ),
        (
            "date",
            Value::Date(NaiveDate::from_ymd_opt(2024, 2, 29).unwrap().into()),
        ),
        (
            "date",
            Value::Date(NaiveDate::from_ymd_opt(1901, 1, 1).unwrap().into()),
        ),
        (
            "time",
            Value::Time(NaiveTime::from_hms_micro_opt(13, 45, 0, 123_456).unwrap()),
        ),
        (
            "timestamp",
            Value::Timestamp(Timestamp {
                unix_micros: 1_709_214_300_123_456,
                zoned: false,
            }),
        ),
        (
            "timestamptz",
            Value::Timestamp(Timestamp {
                unix_micros: -1_000_000,
                zoned: true,
            }),
        ),
        (
            "interval",
            Value::Interval(Interval {
                months: 14,
                days: 3,
                micros: 5_000_001,
            }),
        ),
        (
            "int4[]",
            Value::List(vec![Value::Int(1), Value::Null, Value::Int(3)]),
        ),
        ("text[]", Value::List(vec![s("a"), s("b c"), Value::Null])),
        ("float8[]", Value::List(vec![])),
        ("uuid[]", Value::List(vec![Value::Uuid(uuid::Uuid::nil())])),
    ];
    for (ty, input) in same {
        assert_eq!(echo(d, ty, input.clone()).await, input, "{ty}");
        assert_eq!(echo(d, ty, Value::Null).await, Value::Null, "NULL as {ty}");
    }

    // Values converted to the parameter's type.
    let converted = [
        (
            "uuid",
            s("67e55044-10b1-426f-9247-bb680e5fe0c8"),
            Value::Uuid(uuid::Uuid::parse_str("67e55044-10b1-426f-9247-bb680e5fe0c8").unwrap()),
        ),
        ("numeric", s("1.10"), Value::Decimal("1.10".into())),
        ("numeric", Value::Int(5), Value::Decimal("5".into())),
        ("int2", s("12"), Value::Int(12)),
        ("int8", Value::Int(7), Value::Int(7)),
        ("bool", s("t"), Value::Bool(true)),
        ("jsonb", s("{\"x\": 1.5}"), map(&[("x", Value::Float(1.5))])),
        ("jsonb", Value::Json("\"scalar\"".into()), s("scalar")),
        ("jsonb", Value::Int(3), Value::Int(3)),
        (
            "date",
            s("2024-02-29"),
            Value::Date(NaiveDate::from_ymd_opt(2024, 2, 29).unwrap().into()),
        ),
        (
            "timestamptz",
            s("2024-02-29T13:45:00+02:00"),
            Value::Timestamp(Timestamp {
                unix_micros: 1_709_207_100_000_000,
                zoned: true,
            }),
        ),
        (
            "timestamp",
            s("2024-02-29 13:45:00"),
            Value::Timestamp(Timestamp {
                unix_micros: 1_709_214_300_000_000,
                zoned: false,
            }),
        ),
        ("char(4)", s("ab"), s("ab  ")),
        ("inet", s("192.168.0.1"), s("192.168.0.1")),
        ("inet", s("10.1.0.0/16"), s("10.1.0.0/16")),
        ("cidr", s("10.0.0.0/8"), s("10.0.0.0/8")),
        ("text", Value::Int(42), s("42")),
    ];
    for (ty, input, expected) in converted {
        assert_eq!(
            echo(d, ty, input.clone()).await,
            expected,
            "{ty} from {input:?}"
        );
    }

    // Refused with the parameter and the expected type named.
    for (ty, input, expected) in [
        (
            "int2",
            Value::Int(40_000),
            "expected int2 (out of range for int2)",
        ),
        ("uuid", s("not-a-uuid"), "expected uuid"),
        ("numeric", s("12a"), "expected numeric"),
        ("jsonb", s("{oops"), "expected jsonb"),
        ("int4[]", Value::Int(1), "expected _int4 (send a list)"),
        ("timestamptz", s("yesterday-ish"), "expected timestamptz"),
        ("point", s("(1,2)"), "cast the parameter in SQL"),
    ] {
        let err = error(d, Dialect::Sql, &format!("SELECT $1::{ty}"), &[input]).await;
        assert!(
            matches!(err, Error::InvalidParameter { index: 1, .. }),
            "{ty}: {err}"
        );
        assert!(err.to_string().contains(expected), "{ty}: {err}");
        assert!(
            !err.to_string().contains("not-a-uuid") && !err.to_string().contains("oops"),
            "no values in errors: {err}"
        );
    }

    // Special values and shapes from SQL.
    assert_eq!(
        value(d, Dialect::Sql, "SELECT 'infinity'::date", &[]).await,
        s("infinity")
    );
    assert_eq!(
        value(d, Dialect::Sql, "SELECT '-infinity'::timestamptz", &[]).await,
        s("-infinity")
    );
    let nested = value(d, Dialect::Sql, "SELECT '{{1,2},{3,NULL}}'::int4[]", &[]).await;
    assert_eq!(
        nested,
        Value::List(vec![
            Value::List(vec![Value::Int(1), Value::Int(2)]),
            Value::List(vec![Value::Int(3), Value::Null])
        ])
    );
    let big = value(
        d,
        Dialect::Sql,
        "SELECT '123456789012345678901234567890'::jsonb",
        &[],
    )
    .await;
    assert_eq!(
        big,
        Value::Decimal("123456789012345678901234567890".into()),
        "a JSON number too big for i64 stays exact"
    );

    // Enums travel as text, and a label outside the enum is refused.
    value(
        d,
        Dialect::Sql,
        "CREATE TYPE mood AS ENUM ('sad', 'happy')",
        &[],
    )
    .await;
    assert_eq!(echo(d, "mood", s("happy")).await, s("happy"));
    assert_eq!(
        echo(d, "mood[]", Value::List(vec![s("sad")])).await,
        Value::List(vec![s("sad")])
    );
    let err = error(d, Dialect::Sql, "SELECT $1::mood", &[s("angry")]).await;
    assert!(err.to_string().contains("one of sad, happy"), "{err}");

    // A type the engine does not map comes back as text, with its type name.
    let result = omnigate_drivers::conformance::run(
        d,
        Dialect::Sql,
        "SELECT point(1, 2) AS p, 7 AS n, '$1.50'::money AS m, 'sad'::mood AS e",
        &[],
    )
    .await
    .unwrap();
    assert_eq!(
        result.rows,
        vec![vec![s("(1,2)"), Value::Int(7), s("$1.50"), s("sad")]]
    );
    let names: Vec<(&str, &str)> = result
        .columns
        .iter()
        .map(|c| (&*c.name, &*c.type_name))
        .collect();
    // A type of the database's own is named with its schema: never taken
    // for a built-in type of the same name.
    assert_eq!(
        names,
        [
            ("p", "point"),
            ("n", "int4"),
            ("m", "money"),
            ("e", "public.mood")
        ]
    );
}
