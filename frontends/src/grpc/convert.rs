//! The gRPC front end's messages to and from the core's types: options,
//! parameters, results, pools and schema objects. Values themselves
//! convert in the core ([`omnigate::codec::protobuf`]), where the
//! protobuf codec needs them too.

use omnigate_drivers::{PoolStats, SchemaObject, Timestamp, Value};
use omnigate_proto::v1 as pb;

pub use omnigate::codec::protobuf::{from_proto, to_proto};
use omnigate::error::{Error, ParamRef};

/// A request's proto options as the one options type (what is left unset
/// takes the server's default when the call is routed).
pub fn options_from_proto(
    options: Option<pb::ExecuteOptions>,
) -> Result<omnigate_drivers::ExecuteOptions, tonic::Status> {
    let options = options.unwrap_or_default();
    let timeout = options
        .timeout
        .map(|t| {
            std::time::Duration::try_from(t).map_err(|_| {
                tonic::Status::invalid_argument("options.timeout must be a positive duration")
            })
        })
        .transpose()?;
    Ok(omnigate_drivers::ExecuteOptions {
        max_rows: (options.max_rows > 0).then_some(options.max_rows),
        max_bytes: None,
        timeout,
        read_only: options.read_only,
        restricted: false,
        raw_bytes: options.raw_bytes,
        cells: omnigate_drivers::Cells::Values,
        database: (!options.database.is_empty()).then_some(options.database),
        ts: ts_options(options.ts)?,
        batch_size: (options.batch_size > 0).then_some(options.batch_size as usize),
    })
}

/// The ts dialect's proto options as the drivers'.
pub fn ts_options(
    options: Option<pb::TsOptions>,
) -> Result<omnigate_drivers::ts::TsOptions, tonic::Status> {
    use omnigate_drivers::ts::{Precision, TsOptions};
    use pb::ts_options::Precision as P;
    let Some(options) = options else {
        return Ok(TsOptions::default());
    };
    let at = |t: Option<prost_types::Timestamp>| {
        t.map(|t| Timestamp {
            unix_micros: t
                .seconds
                .saturating_mul(1_000_000)
                .saturating_add(i64::from(t.nanos) / 1000),
            zoned: true,
        })
    };
    let step = options
        .step
        .map(|d| {
            std::time::Duration::try_from(d).map_err(|_| {
                tonic::Status::invalid_argument("options.ts.step must be a positive duration")
            })
        })
        .transpose()?;
    Ok(TsOptions {
        time: at(options.time),
        start: at(options.start),
        end: at(options.end),
        step,
        precision: match P::try_from(options.precision) {
            Ok(P::Microseconds) => Precision::Microseconds,
            Ok(P::Milliseconds) => Precision::Milliseconds,
            Ok(P::Seconds) => Precision::Seconds,
            Ok(P::Nanoseconds) => Precision::Nanoseconds,
            Err(_) => {
                return Err(tonic::Status::invalid_argument(
                    "options.ts.precision: use NANOSECONDS, MICROSECONDS, MILLISECONDS or SECONDS",
                ));
            }
        },
        allow_delete: options.allow_delete,
    })
}

/// Positional proto parameters as Omnigate's.
pub fn params_from_proto(values: Vec<pb::Value>) -> Result<Vec<Value>, Error> {
    values
        .into_iter()
        .enumerate()
        .map(|(i, v)| from_proto(&ParamRef::Position(i + 1), v))
        .collect()
}

/// Named proto parameters as Omnigate's, in name order.
pub fn named_from_proto(
    values: std::collections::HashMap<String, pb::Value>,
) -> Result<Vec<(String, Value)>, Error> {
    let mut named = values
        .into_iter()
        .map(|(name, v)| {
            let value = from_proto(&ParamRef::Name(name.clone()), v)?;
            Ok((name, value))
        })
        .collect::<Result<Vec<_>, Error>>()?;
    named.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(named)
}

/// Pool statistics as proto.
pub fn pool_to_proto(pool: PoolStats) -> pb::PoolStats {
    pb::PoolStats {
        max_size: pool.max_size,
        size: pool.size,
        idle: pool.idle,
        in_use: pool.in_use,
        waiters: pool.waiters,
        created: pool.created,
        acquired: pool.acquired,
        acquire_p50_us: pool.acquire_p50_us,
        acquire_p99_us: pool.acquire_p99_us,
    }
}

/// A schema object as proto.
pub fn object_to_proto(object: &SchemaObject) -> pb::SchemaObject {
    pb::SchemaObject {
        kind: object.kind.clone(),
        schema: object.schema.clone(),
        name: object.name.clone(),
        columns: object
            .columns
            .iter()
            .map(|c| pb::ColumnInfo {
                name: c.name.clone(),
                type_name: c.type_name.clone(),
                nullable: c.nullable,
            })
            .collect(),
        primary_key: object.primary_key.clone(),
        attributes: object.attributes.iter().cloned().collect(),
    }
}
