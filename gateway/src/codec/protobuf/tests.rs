//! Tests of the conversion between the proto and the gateway's values.

use super::*;

fn round_trip(value: Value) {
    let back = from_proto(&ParamRef::Position(1), to_proto(value.clone())).unwrap();
    assert_eq!(back, value);
}

/// Found by the FalkorDB replay of the fuzz corpus: a map with a key
/// twice reached the engines, which each kept one their own way.
#[test]
fn a_map_key_given_twice_is_refused() {
    let map = |keys: &[&str]| pb::Value {
        kind: Some(Kind::Map(pb::ValueMap {
            entries: keys
                .iter()
                .map(|k| pb::MapEntry {
                    key: (*k).into(),
                    value: None,
                })
                .collect(),
        })),
    };
    let err = from_proto(&ParamRef::Position(1), map(&["a", "b", "a"])).unwrap_err();
    assert!(err.to_string().contains("\"a\" appears twice"), "{err}");
    assert!(from_proto(&ParamRef::Position(1), map(&["a", "b"])).is_ok());
}

#[test]
fn every_kind_round_trips() {
    let node = Node {
        id: 7,
        labels: vec!["Person".into()],
        properties: vec![("name".into(), Value::from("ada"))],
    };
    let rel = Relationship {
        id: 9,
        rel_type: "KNOWS".into(),
        start_node_id: 7,
        end_node_id: 8,
        properties: vec![("since".into(), Value::Int(1843))],
    };
    for value in [
        Value::Null,
        Value::Bool(true),
        Value::Int(i64::MIN),
        Value::Float(-0.25),
        Value::Decimal("-12345678901234567890.000000001".into()),
        Value::String("héllo".into()),
        Value::Bytes(bytes::Bytes::from_static(b"\x00\xff")),
        Value::Timestamp(Timestamp {
            unix_micros: -1,
            zoned: true,
        }),
        Value::Timestamp(Timestamp {
            unix_micros: 1_700_000_000_000_001,
            zoned: false,
        }),
        Value::Date(Date::from_ymd(1969, 12, 31).unwrap()),
        Value::Date(Date::from_ymd(2024, 2, 29).unwrap()),
        Value::Date(Date::from_ymd(300_000, 1, 1).unwrap()),
        // Every day count is a date (chrono's range once made this one an error).
        Value::Date(Date::from_days(i32::MAX)),
        Value::Time(NaiveTime::from_hms_micro_opt(23, 59, 59, 999_999).unwrap()),
        Value::Interval(Interval {
            months: 14,
            days: -3,
            micros: 5,
        }),
        Value::Uuid(uuid::Uuid::from_u128(42)),
        Value::Json(r#"{"a":[1,null]}"#.into()),
        Value::List(vec![Value::Int(1), Value::Null, Value::List(vec![])]),
        Value::Map(vec![("b".into(), Value::Int(1)), ("a".into(), Value::Null)]),
        Value::Node(node.clone()),
        Value::Relationship(rel.clone()),
        Value::Path(Path {
            nodes: vec![node],
            relationships: vec![rel],
        }),
    ] {
        round_trip(value);
    }
}

#[test]
fn a_value_without_kind_is_null() {
    assert_eq!(
        from_proto(&ParamRef::Position(1), pb::Value { kind: None }).unwrap(),
        Value::Null
    );
}

#[test]
fn malformed_values_name_the_parameter() {
    let cases = [
        Kind::Uuid("not-a-uuid".into()),
        Kind::Json("{oops".into()),
        Kind::Decimal("12a".into()),
        Kind::Time(pb::Time {
            micros_since_midnight: -1,
        }),
    ];
    for kind in cases {
        let err = from_proto(
            &ParamRef::Position(4),
            pb::Value {
                kind: Some(kind.clone()),
            },
        )
        .unwrap_err();
        assert!(
            matches!(
                &err,
                Error::BadParameter {
                    param: ParamRef::Position(4),
                    ..
                }
            ),
            "{kind:?}: {err}"
        );
    }
    let nested = pb::Value {
        kind: Some(Kind::List(pb::ValueList {
            values: vec![pb::Value {
                kind: Some(Kind::Uuid("x".into())),
            }],
        })),
    };
    assert!(from_proto(&ParamRef::Position(2), nested).is_err());
}

#[test]
fn decimals_are_checked_not_rounded() {
    for ok in ["0", "-1.5", "+2", ".5", "1e10", "1.5E-3", "NaN"] {
        assert!(is_decimal(ok), "{ok}");
    }
    for bad in ["", "-", "1.2.3", "1e", "e5", "1,5", "0x10"] {
        assert!(!is_decimal(bad), "{bad}");
    }
}
