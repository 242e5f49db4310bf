//! Query results as rows: one row per series and time, with the columns
//! `labels` (a map, `__name__` included when the series has one),
//! `timestamp` and `value`. Series are ordered by their labels, points by
//! time.

use crate::{Column, ResultSet, Timestamp, Value};

/// One series of a query result.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    /// The labels, sorted by name.
    pub labels: Vec<(String, String)>,
    /// `(milliseconds since the epoch, value)`, by time.
    pub points: Vec<(i64, f64)>,
}

/// The rows of a query result.
pub fn series_rows(mut series: Vec<Series>) -> ResultSet {
    for s in &mut series {
        s.labels.sort();
    }
    series.sort_by(|a, b| a.labels.cmp(&b.labels));
    let rows = series
        .into_iter()
        .flat_map(|s| {
            let labels = Value::Map(
                s.labels
                    .into_iter()
                    .map(|(k, v)| (k, Value::String(v)))
                    .collect(),
            );
            s.points.into_iter().map(move |(t, v)| {
                vec![
                    labels.clone(),
                    Value::Timestamp(Timestamp {
                        unix_micros: t.saturating_mul(1000),
                        zoned: true,
                    }),
                    Value::Float(v),
                ]
            })
        })
        .collect();
    ResultSet {
        columns: vec![
            Column::new("labels", "map"),
            Column::new("timestamp", "timestamp"),
            Column::new("value", "float"),
        ],
        rows,
        rows_affected: 0,
    }
}
