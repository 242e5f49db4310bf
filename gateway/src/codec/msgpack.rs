//! Values as MessagePack through serde: null, bool, int, float, string,
//! bytes, list and map map natively; other kinds travel as their text.

use std::cell::Cell;
use std::fmt;

use omnigate_drivers::{MAX_DEPTH, Value};
use serde::de::{self, DeserializeSeed, MapAccess, SeqAccess, Visitor};
use serde::ser::{SerializeMap, SerializeSeq};
use serde::{Deserializer, Serialize, Serializer};

/// Serializes a borrowed value.
pub(super) struct Out<'a>(pub(super) &'a Value);

impl Serialize for Out<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self.0 {
            Value::Null => s.serialize_unit(),
            Value::Bool(b) => s.serialize_bool(*b),
            Value::Int(i) => s.serialize_i64(*i),
            Value::Float(f) => s.serialize_f64(*f),
            Value::String(text) => s.serialize_str(text),
            Value::Bytes(bytes) => s.serialize_bytes(bytes),
            Value::List(items) => {
                let mut seq = s.serialize_seq(Some(items.len()))?;
                for item in items {
                    seq.serialize_element(&Out(item))?;
                }
                seq.end()
            }
            Value::Map(entries) => {
                let mut map = s.serialize_map(Some(entries.len()))?;
                for (key, value) in entries {
                    map.serialize_entry(key.as_str(), &Out(value))?;
                }
                map.end()
            }
            other => s.serialize_str(&other.to_string()),
        }
    }
}

/// Reads a MessagePack value within a budget: at most `elements` values
/// in all and [`MAX_DEPTH`] levels, checked as each value is read, so a
/// small payload (10M nils are 10 MB, 457 KB compressed) cannot make the
/// reader allocate for millions of values before it refuses.
pub(super) fn read(payload: &[u8], elements: usize) -> Result<Value, rmp_serde::decode::Error> {
    let budget = Budget {
        elements: Cell::new(elements),
        depth: Cell::new(0),
    };
    let mut de = rmp_serde::Deserializer::from_read_ref(payload);
    Seed(&budget).deserialize(&mut de)
}

struct Budget {
    elements: Cell<usize>,
    depth: Cell<usize>,
}

#[derive(Clone, Copy)]
struct Seed<'b>(&'b Budget);

impl<'de> DeserializeSeed<'de> for Seed<'_> {
    type Value = Value;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        let left = self.0.elements.get();
        if left == 0 {
            return Err(de::Error::custom(
                "the value holds more elements than a codec value may",
            ));
        }
        self.0.elements.set(left - 1);
        d.deserialize_any(ValueVisitor(self.0))
    }
}

struct ValueVisitor<'b>(&'b Budget);

impl ValueVisitor<'_> {
    fn enter<E: de::Error>(&self) -> Result<(), E> {
        let depth = self.0.depth.get() + 1;
        if depth >= MAX_DEPTH {
            return Err(E::custom(format!(
                "the value nests deeper than {MAX_DEPTH} levels"
            )));
        }
        self.0.depth.set(depth);
        Ok(())
    }

    fn leave(&self) {
        self.0.depth.set(self.0.depth.get() - 1);
    }
}

impl<'de> Visitor<'de> for ValueVisitor<'_> {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a MessagePack value")
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::Int(v))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(i64::try_from(v).map_or_else(|_| Value::Decimal(v.to_string().into()), Value::Int))
    }
    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(Value::Float(v))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.into()))
    }
    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v.into()))
    }
    fn visit_bytes<E>(self, v: &[u8]) -> Result<Value, E> {
        Ok(Value::Bytes(bytes::Bytes::copy_from_slice(v)))
    }
    fn visit_byte_buf<E>(self, v: Vec<u8>) -> Result<Value, E> {
        Ok(Value::Bytes(v.into()))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        self.enter()?;
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(4096));
        while let Some(item) = seq.next_element_seed(Seed(self.0))? {
            items.push(item);
        }
        self.leave();
        Ok(Value::List(items))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        self.enter()?;
        let mut entries = Vec::with_capacity(map.size_hint().unwrap_or(0).min(4096));
        let mut seen = std::collections::HashSet::new();
        while let Some((key, value)) = map.next_entry_seed(Seed(self.0), Seed(self.0))? {
            let key = match key {
                Value::String(text) => text,
                other => other.to_string().into(),
            };
            // As a request's map: one value per key (the codec fuzz
            // target found msgpack and protobuf disagreeing on this).
            if !seen.insert(key.clone()) {
                return Err(de::Error::custom(format!(
                    "the map key {key:?} appears twice"
                )));
            }
            entries.push((key, value));
        }
        self.leave();
        Ok(Value::Map(entries))
    }
}
