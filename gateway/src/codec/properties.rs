//! Graph properties the engines cannot store natively (a map, or a list
//! holding maps or lists) go through a codec: bytes with the header, which
//! reads decode back.
//!
//! Which values are properties: a map parameter is a property map (as in
//! `CREATE (n $props)` or `SET n += $props`), and a list of maps is rows of
//! property maps (as in `UNWIND $rows AS row CREATE (n) SET n = row`). The
//! entries of those maps that are maps, or lists holding maps or lists, are
//! encoded. A parameter's own top-level value is never encoded: it may be
//! used as a whole (`UNWIND $list`, `$map.key`).

use omnigate_drivers::Value;

use super::Codec;

/// Encodes the nested property values of every parameter in `named`.
pub fn encode_nested(codec: Codec, named: &mut [(String, Value)]) {
    for (_, value) in named.iter_mut() {
        match value {
            Value::Map(entries) => encode_entries(codec, entries),
            Value::List(items) => {
                for item in items.iter_mut() {
                    if let Value::Map(entries) = item {
                        encode_entries(codec, entries);
                    }
                }
            }
            _ => {}
        }
    }
}

fn encode_entries<K>(codec: Codec, entries: &mut [(K, Value)]) {
    for (_, value) in entries.iter_mut() {
        // The encoder recurses: a value nested past MAX_DEPTH is left as it
        // is, for the driver's statement check to refuse by its rule.
        if needs_codec(value) && value.depth() <= omnigate_drivers::MAX_DEPTH {
            *value = Value::Bytes(codec.encode(value));
        }
    }
}

/// A map, or a list holding a map or a list: no graph engine stores these
/// as a property.
fn needs_codec(value: &Value) -> bool {
    match value {
        Value::Map(_) => true,
        Value::List(items) => items
            .iter()
            .any(|item| matches!(item, Value::Map(_) | Value::List(_))),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::{Format, decode_all};

    #[test]
    fn nested_maps_and_lists_of_maps_are_encoded_and_decode_back() {
        let codec = Codec {
            format: Format::Protobuf,
            compress_above: 1024,
        };
        let nested = Value::Map(vec![("x".into(), Value::Int(1))]);
        let rows = Value::List(vec![Value::List(vec![Value::Int(1)])]);
        let props = Value::Map(vec![
            ("name".into(), Value::from("ada")),
            ("tags".into(), Value::List(vec![Value::from("a")])),
            ("meta".into(), nested.clone()),
            ("grid".into(), rows.clone()),
        ]);
        let mut named = vec![
            ("props".to_owned(), props),
            ("list".to_owned(), Value::List(vec![Value::Int(1)])),
        ];
        encode_nested(codec, &mut named);
        let Value::Map(entries) = &named[0].1 else {
            panic!()
        };
        assert_eq!(entries[0].1, Value::from("ada"));
        assert!(
            matches!(entries[1].1, Value::List(_)),
            "a scalar list stays native"
        );
        assert!(matches!(entries[2].1, Value::Bytes(_)));
        assert!(matches!(entries[3].1, Value::Bytes(_)));
        assert_eq!(named[1].1, Value::List(vec![Value::Int(1)]));
        let Value::Map(back) = decode_all(named[0].1.clone()) else {
            panic!()
        };
        assert_eq!(back[2].1, nested);
        assert_eq!(back[3].1, rows);
    }
}
