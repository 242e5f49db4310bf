//! Named parameters as FalkorDB's `CYPHER name=value ...` prefix. Every
//! value is written as a Cypher literal: strings quoted with `'` and their
//! `\` and `'` escaped, map keys in backticks, so no parameter can change
//! the query around it.

use base64::Engine as _;

use crate::cypher::check_param_name;
use crate::{Error, Result, Value};

/// Marks a string that holds bytes: FalkorDB has no byte strings, so bytes
/// are stored as this marker and their base64. 0xC1 never starts UTF-8
/// text, so no text reads as bytes.
pub(crate) const BYTES_MARK: &[u8] = b"\xC1B64:";

/// The `CYPHER a=1 b='x' ` prefix for `named` (empty without parameters).
pub(crate) fn prefix(named: &[(String, Value)]) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    if named.is_empty() {
        return Ok(out);
    }
    out.extend_from_slice(b"CYPHER ");
    for (name, value) in named {
        check_param_name(name)?;
        out.extend_from_slice(name.as_bytes());
        out.push(b'=');
        literal(value, &mut out).map_err(|why| Error::named_param(name, why))?;
        out.push(b' ');
    }
    Ok(out)
}

/// Writes `value` as a Cypher literal; `Err` says why it cannot be one.
pub(super) fn literal(value: &Value, out: &mut Vec<u8>) -> std::result::Result<(), String> {
    match value {
        Value::Null => out.extend_from_slice(b"null"),
        Value::Bool(b) => out.extend_from_slice(if *b { b"true" } else { b"false" }),
        Value::Int(i) => out.extend_from_slice(i.to_string().as_bytes()),
        Value::Float(f) if f.is_finite() => {
            // Debug prints the shortest text that reads back to the same f64.
            out.extend_from_slice(format!("{f:?}").as_bytes());
        }
        Value::Float(_) => return Err("FalkorDB takes no NaN or infinite float parameter".into()),
        Value::String(s) | Value::Json(s) => quoted(s.as_bytes(), out)?,
        Value::Uuid(u) => quoted(u.to_string().as_bytes(), out)?,
        Value::Bytes(b) => {
            let mut text = BYTES_MARK.to_vec();
            text.extend_from_slice(
                base64::engine::general_purpose::STANDARD
                    .encode(b)
                    .as_bytes(),
            );
            quoted(&text, out)?;
        }
        Value::List(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                literal(item, out)?;
            }
            out.push(b']');
        }
        Value::Map(entries) => {
            out.push(b'{');
            for (i, (key, item)) in entries.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                if key.contains('\0') {
                    return Err(
                        "a map key holds a NUL character, which FalkorDB cannot store".into(),
                    );
                }
                // FalkorDB's parameter syntax reads no escaped backtick in
                // a key (found by tests/tests/falkordb_fuzz_replay.rs:
                // the doubled one written before was a syntax error).
                if key.contains('`') {
                    return Err(format!(
                        "the map key {key:?} holds a backtick, which FalkorDB's parameter \
                         syntax cannot carry: rename the key"
                    ));
                }
                out.push(b'`');
                out.extend_from_slice(key.as_bytes());
                out.extend_from_slice(b"`:");
                literal(item, out)?;
            }
            out.push(b'}');
        }
        other => {
            return Err(format!(
                "FalkorDB cannot take a {} parameter: pass dates and times as ISO-8601 strings \
                 and convert them in the query (date($d), localdatetime($d)), decimals as \
                 strings or floats",
                other.kind_name()
            ));
        }
    }
    Ok(())
}

/// `text` in single quotes with `\` and `'` escaped.
fn quoted(text: &[u8], out: &mut Vec<u8>) -> std::result::Result<(), String> {
    if text.contains(&0) {
        return Err("the string holds a NUL character, which FalkorDB cannot store".into());
    }
    out.push(b'\'');
    for &byte in text {
        if byte == b'\\' || byte == b'\'' {
            out.push(b'\\');
        }
        out.push(byte);
    }
    out.push(b'\'');
    Ok(())
}

/// The bytes a stored string holds, when it carries [`BYTES_MARK`].
pub(crate) fn stored_bytes(text: &[u8]) -> Option<Vec<u8>> {
    let encoded = text.strip_prefix(BYTES_MARK)?;
    base64::engine::general_purpose::STANDARD
        .decode(encoded)
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(named: &[(&str, Value)]) -> String {
        let named: Vec<_> = named
            .iter()
            .map(|(k, v)| ((*k).to_owned(), v.clone()))
            .collect();
        String::from_utf8(prefix(&named).unwrap()).unwrap()
    }

    #[test]
    fn strings_are_quoted_and_escaped() {
        assert_eq!(
            text(&[("s", Value::from("it's a \\ 'x' */\n"))]),
            "CYPHER s='it\\'s a \\\\ \\'x\\' */\n' "
        );
    }

    #[test]
    fn lists_maps_and_scalars_are_literals() {
        let map = Value::Map(vec![
            ("a b".into(), Value::Int(1)),
            (
                "c.d".into(),
                Value::List(vec![Value::Null, Value::Bool(true)]),
            ),
        ]);
        assert_eq!(
            text(&[
                ("m", map),
                ("f", Value::Float(0.1)),
                ("i", Value::Int(i64::MIN))
            ]),
            "CYPHER m={`a b`:1,`c.d`:[null,true]} f=0.1 i=-9223372036854775808 "
        );
    }

    #[test]
    fn bytes_travel_as_marked_base64_and_come_back() {
        let raw = prefix(&[("b".into(), Value::Bytes(vec![0, 1, 0xC1].into()))]).unwrap();
        let start = raw.iter().position(|&b| b == 0xC1).unwrap();
        let stored = &raw[start..raw.len() - 2];
        assert_eq!(stored_bytes(stored), Some(vec![0, 1, 0xC1]));
    }

    #[test]
    fn what_cannot_be_a_literal_is_refused_naming_the_parameter() {
        for value in [
            Value::Float(f64::NAN),
            Value::from("nul\0"),
            Value::Decimal("1.5".into()),
            Value::Map(vec![("c`d".into(), Value::Null)]),
        ] {
            let err = prefix(&[("p".into(), value)]).unwrap_err();
            assert!(
                matches!(&err, Error::InvalidNamedParameter { name, .. } if name == "p"),
                "{err}"
            );
        }
        assert!(prefix(&[("bad name".into(), Value::Null)]).is_err());
    }
}
