//! Bindings: key patterns (Redis globs, e.g. `session:*`) of an engine
//! bound to a codec, looked up per key through a moka cache.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;
use omnigate_drivers::glob::glob_match;
use omnigate_drivers::redis_syntax::parse_command;
use omnigate_drivers::{MAX_DEPTH, Statement, Value};
use serde::Deserialize;

use super::{Codec, Format, is_structured};
use crate::error::{Error, ParamRef};

fn default_compress_above() -> usize {
    1024
}

/// One binding, as configured.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Binding {
    /// A Redis glob over keys, e.g. `session:*`.
    pub pattern: String,
    /// The codec's format.
    pub codec: Format,
    /// Payloads over this many bytes are snappy-compressed.
    #[serde(default = "default_compress_above")]
    pub compress_above: usize,
}

/// An engine's bindings, with a cache of which binding each key uses.
#[derive(Debug)]
pub struct Bindings {
    list: Vec<Binding>,
    by_key: moka::sync::Cache<Bytes, Option<usize>>,
    hits: AtomicU64,
    misses: AtomicU64,
}

impl Bindings {
    /// Bindings in order: the first pattern that matches a key wins.
    pub fn new(list: Vec<Binding>) -> Arc<Self> {
        Arc::new(Bindings {
            list,
            by_key: moka::sync::Cache::new(100_000),
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
        })
    }

    /// The configured bindings.
    pub fn list(&self) -> &[Binding] {
        &self.list
    }

    /// The codec bound to `key`, if any.
    pub fn codec_for(&self, key: &[u8]) -> Option<Codec> {
        let index = match self.by_key.get(key) {
            Some(index) => {
                self.hits.fetch_add(1, Ordering::Relaxed);
                index
            }
            None => {
                self.misses.fetch_add(1, Ordering::Relaxed);
                let index = self
                    .list
                    .iter()
                    .position(|b| glob_match(b.pattern.as_bytes(), key));
                self.by_key.insert(Bytes::copy_from_slice(key), index);
                index
            }
        };
        index.map(|i| Codec {
            format: self.list[i].codec,
            compress_above: self.list[i].compress_above,
        })
    }

    /// (hits, misses) of the key cache.
    pub fn counts(&self) -> (u64, u64) {
        (
            self.hits.load(Ordering::Relaxed),
            self.misses.load(Ordering::Relaxed),
        )
    }

    /// Encodes the structured parameters of a Redis statement with the
    /// codec bound to its key (the command's first argument). Plain values
    /// stay plain.
    pub fn encode_params(&self, statement: &mut Statement) -> Result<(), Error> {
        let Some(first) = statement.params.iter().position(is_structured) else {
            return Ok(());
        };
        if statement.params.iter().any(|p| p.depth() > MAX_DEPTH) {
            // The encoder recurses: a value nested this deep is left as it
            // is, for the driver's statement check to refuse by its rule.
            return Ok(());
        }
        // Find the key with the structured values stood in for.
        let stand_ins: Vec<Value> = statement
            .params
            .iter()
            .map(|p| {
                if is_structured(p) {
                    Value::Bytes(Bytes::new())
                } else {
                    p.clone()
                }
            })
            .collect();
        let args = parse_command(&statement.text, &stand_ins, "gateway")?;
        let codec = args
            .get(1)
            .and_then(|key| self.codec_for(key))
            .ok_or_else(|| Error::BadParameter {
                param: ParamRef::Position(first + 1),
                message: format!(
                    "a {} needs a codec: bind this key's pattern to one (engines.<name>.bindings)",
                    statement.params[first].kind_name()
                ),
            })?;
        for param in &mut statement.params {
            if is_structured(param) {
                *param = Value::Bytes(codec.encode(param));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bindings() -> Arc<Bindings> {
        Bindings::new(vec![
            Binding {
                pattern: "session:*".into(),
                codec: Format::Msgpack,
                compress_above: 1024,
            },
            Binding {
                pattern: "profile:*".into(),
                codec: Format::Protobuf,
                compress_above: 1024,
            },
        ])
    }

    #[test]
    fn the_first_matching_pattern_wins_and_lookups_are_cached() {
        let b = bindings();
        assert_eq!(
            b.codec_for(b"session:1").map(|c| c.format),
            Some(Format::Msgpack)
        );
        assert_eq!(
            b.codec_for(b"profile:9").map(|c| c.format),
            Some(Format::Protobuf)
        );
        assert_eq!(b.codec_for(b"other"), None);
        assert_eq!(
            b.codec_for(b"session:1").map(|c| c.format),
            Some(Format::Msgpack)
        );
        assert_eq!(b.counts(), (1, 3));
    }

    #[test]
    fn structured_params_are_encoded_for_the_bound_key() {
        let b = bindings();
        let map = Value::Map(vec![("a".into(), Value::Int(1))]);
        let mut statement = Statement::new("SET $1 $2")
            .bind("session:7")
            .bind(map.clone());
        b.encode_params(&mut statement).unwrap();
        let Value::Bytes(encoded) = &statement.params[1] else {
            panic!("encoded to bytes")
        };
        assert_eq!(super::super::decode(encoded).unwrap(), Some(map.clone()));
        assert_eq!(
            statement.params[0],
            Value::from("session:7"),
            "plain values stay plain"
        );

        let mut unbound = Statement::new("SET other $1").bind(map);
        let err = b.encode_params(&mut unbound).unwrap_err();
        assert!(err.to_string().contains("needs a codec"), "{err}");
    }
}
