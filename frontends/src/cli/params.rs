//! Parameters on the command line: plain text is a string; a `type:` prefix
//! picks another kind (`int:42`, `float:1.5`, `bool:true`, `null:`,
//! `bytes:00ff` (hex), `decimal:1.10`, `uuid:...`, `json:{...}`, `str:int:1`).

use omnigate_proto::v1 as pb;
use pb::value::Kind;

/// Parses one command-line parameter (`label`, e.g. `$1`, names it in errors).
pub fn parse_param(label: &str, raw: &str) -> Result<pb::Value, String> {
    let bad = |what: &str| format!("parameter {label}: {what}");
    let Some((prefix, rest)) = raw.split_once(':') else {
        return Ok(kind(Kind::String(raw.to_owned())));
    };
    let value = match prefix {
        "str" => Kind::String(rest.to_owned()),
        "int" => Kind::Int(
            rest.parse()
                .map_err(|_| bad("int: expects a 64-bit integer"))?,
        ),
        "float" => Kind::Float(rest.parse().map_err(|_| bad("float: expects a number"))?),
        "bool" => Kind::Bool(
            rest.parse()
                .map_err(|_| bad("bool: expects true or false"))?,
        ),
        "null" if rest.is_empty() => Kind::Null(pb::Null::Null.into()),
        "decimal" => Kind::Decimal(rest.to_owned()),
        "uuid" => Kind::Uuid(rest.to_owned()),
        "json" => Kind::Json(rest.to_owned()),
        "bytes" => {
            Kind::Bytes(hex(rest).ok_or_else(|| bad("bytes: expects hex digits, e.g. bytes:00ff"))?)
        }
        // Any other text with a colon (a URL, a time) is a plain string.
        _ => Kind::String(raw.to_owned()),
    };
    Ok(kind(value))
}

fn kind(kind: Kind) -> pb::Value {
    pb::Value { kind: Some(kind) }
}

fn hex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
        .collect()
}

/// Parses one `--param name=value` (cypher's named parameters).
pub fn parse_named(pair: &str) -> Result<(String, pb::Value), String> {
    let (name, raw) = pair
        .split_once('=')
        .filter(|(name, _)| !name.is_empty())
        .ok_or_else(|| {
            format!("--param {pair:?}: write name=value, e.g. name=ada or age=int:36")
        })?;
    Ok((name.to_owned(), parse_param(&format!("${name}"), raw)?))
}

/// The ts dialect's options on the command line.
#[derive(Debug, Default, clap::Args)]
pub struct TsArgs {
    /// ts: an instant query's time (RFC 3339 or unix seconds).
    #[arg(long)]
    time: Option<String>,
    /// ts: a range query's start (RFC 3339 or unix seconds).
    #[arg(long)]
    start: Option<String>,
    /// ts: a range query's end (default: now).
    #[arg(long)]
    end: Option<String>,
    /// ts: a range query's step, e.g. 15s (default: 1m).
    #[arg(long, value_parser = humantime::parse_duration)]
    step: Option<std::time::Duration>,
    /// ts: the unit of line-protocol timestamps: ns, us, ms or s.
    #[arg(long)]
    precision: Option<String>,
    /// ts: let DELETE <selector> delete series.
    #[arg(long)]
    allow_delete: bool,
}

impl TsArgs {
    /// The proto options; `None` when no ts flag is set.
    pub fn to_proto(&self) -> Result<Option<pb::TsOptions>, String> {
        use pb::ts_options::Precision;
        let at = |flag: &str,
                  raw: &Option<String>|
         -> Result<Option<prost_types::Timestamp>, String> {
            let Some(raw) = raw else { return Ok(None) };
            let micros = match raw.parse::<f64>() {
                Ok(seconds) => (seconds * 1e6) as i64,
                Err(_) => chrono::DateTime::parse_from_rfc3339(raw)
                    .map_err(|_| {
                        format!("--{flag}: write RFC 3339 (2024-01-02T03:04:05Z) or unix seconds")
                    })?
                    .timestamp_micros(),
            };
            Ok(Some(prost_types::Timestamp {
                seconds: micros.div_euclid(1_000_000),
                nanos: (micros.rem_euclid(1_000_000) * 1000) as i32,
            }))
        };
        let precision = match self.precision.as_deref() {
            None | Some("ns") => Precision::Nanoseconds,
            Some("us") => Precision::Microseconds,
            Some("ms") => Precision::Milliseconds,
            Some("s") => Precision::Seconds,
            Some(_) => return Err("--precision: one of ns, us, ms, s".into()),
        };
        let options = pb::TsOptions {
            time: at("time", &self.time)?,
            start: at("start", &self.start)?,
            end: at("end", &self.end)?,
            step: self.step.map(|d| prost_types::Duration {
                seconds: d.as_secs() as i64,
                nanos: d.subsec_nanos() as i32,
            }),
            precision: precision as i32,
            allow_delete: self.allow_delete,
        };
        Ok((options != pb::TsOptions::default()).then_some(options))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_pick_the_kind() {
        assert_eq!(
            parse_param("$1", "hello").unwrap().kind,
            Some(Kind::String("hello".into()))
        );
        assert_eq!(
            parse_param("$1", "int:-4").unwrap().kind,
            Some(Kind::Int(-4))
        );
        assert_eq!(
            parse_param("$1", "float:1.5").unwrap().kind,
            Some(Kind::Float(1.5))
        );
        assert_eq!(
            parse_param("$1", "bool:true").unwrap().kind,
            Some(Kind::Bool(true))
        );
        assert_eq!(
            parse_param("$1", "null:").unwrap().kind,
            Some(Kind::Null(0))
        );
        assert_eq!(
            parse_param("$1", "bytes:00ff").unwrap().kind,
            Some(Kind::Bytes(vec![0, 255]))
        );
        assert_eq!(
            parse_param("$1", "str:int:1").unwrap().kind,
            Some(Kind::String("int:1".into()))
        );
        assert_eq!(
            parse_param("$1", "http://x").unwrap().kind,
            Some(Kind::String("http://x".into()))
        );
    }

    #[test]
    fn bad_values_name_the_parameter() {
        assert_eq!(
            parse_param("$2", "int:x").unwrap_err(),
            "parameter $2: int: expects a 64-bit integer"
        );
        assert!(parse_param("$1", "bytes:0").is_err());
        assert!(parse_param("$1", "bool:yes").is_err());
    }

    #[test]
    fn named_params_are_name_equals_value() {
        let (name, value) = parse_named("born=int:1815").unwrap();
        assert_eq!((name.as_str(), value.kind), ("born", Some(Kind::Int(1815))));
        assert_eq!(
            parse_named("s=a=b").unwrap().1.kind,
            Some(Kind::String("a=b".into()))
        );
        assert!(parse_named("novalue").unwrap_err().contains("name=value"));
        assert!(parse_named("=x").is_err());
        assert_eq!(
            parse_named("n=int:x").unwrap_err(),
            "parameter $n: int: expects a 64-bit integer"
        );
    }
}
