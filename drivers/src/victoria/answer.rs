//! VictoriaMetrics' query answers as series.

use serde_json::Value as Json;

use super::KIND;
use crate::ts::Series;
use crate::{EngineError, Error, Result};

/// Series from a `vector`, `matrix` or `scalar` result.
pub(super) fn parse_result(data: &Json) -> Result<Vec<Series>> {
    let bad = |why: &str| {
        Error::Internal(EngineError::new(
            KIND,
            None,
            format!("unexpected answer: {why}"),
        ))
    };
    let point = |pair: &Json| -> Result<(i64, f64)> {
        let t = pair
            .get(0)
            .and_then(Json::as_f64)
            .ok_or_else(|| bad("a point without a time"))?;
        let v = pair
            .get(1)
            .and_then(Json::as_str)
            .and_then(|s| s.parse::<f64>().ok())
            .ok_or_else(|| bad("a point without a value"))?;
        Ok(((t * 1000.0).round() as i64, v))
    };
    let result = data.get("result").ok_or_else(|| bad("no result"))?;
    match data.get("resultType").and_then(Json::as_str) {
        Some("scalar") => Ok(vec![Series {
            labels: Vec::new(),
            points: vec![point(result)?],
        }]),
        Some("vector" | "matrix") => result
            .as_array()
            .ok_or_else(|| bad("the result is not a list"))?
            .iter()
            .map(|item| {
                let labels = item
                    .get("metric")
                    .and_then(Json::as_object)
                    .map(|m| {
                        m.iter()
                            .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_owned()))
                            .collect()
                    })
                    .unwrap_or_default();
                let points = match (item.get("value"), item.get("values")) {
                    (Some(value), _) => vec![point(value)?],
                    (None, Some(Json::Array(values))) => {
                        values.iter().map(point).collect::<Result<_>>()?
                    }
                    _ => return Err(bad("a series without values")),
                };
                Ok(Series { labels, points })
            })
            .collect(),
        other => Err(bad(&format!("result type {other:?}"))),
    }
}
