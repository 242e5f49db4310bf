//! Query results as rows: one row per series and time, with the columns
//! `labels` (a map, `__name__` included when the series has one),
//! `timestamp` and `value`. Series are ordered by their labels, points by
//! time.

use crate::{Column, ResultSet, Rows, Timestamp, Value};

/// One series of a query result.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    /// The labels, sorted by name.
    pub labels: Vec<(String, String)>,
    /// `(milliseconds since the epoch, value)`, by time.
    pub points: Vec<(i64, f64)>,
}

/// The columns of every query result.
pub fn columns() -> Vec<Column> {
    vec![
        Column::fixed("labels", "map"),
        Column::fixed("timestamp", "timestamp"),
        Column::fixed("value", "float"),
    ]
}

/// The rows of a query result.
pub fn series_rows(mut series: Vec<Series>) -> ResultSet {
    for s in &mut series {
        s.labels.sort();
    }
    series.sort_by(|a, b| a.labels.cmp(&b.labels));
    let points = series.iter().map(|s| s.points.len()).sum();
    let mut rows = Rows::with_capacity(points, 3);
    for s in series {
        let labels = Value::Map(
            s.labels
                .into_iter()
                .map(|(k, v)| (k.into(), Value::String(v.into())))
                .collect(),
        );
        for (t, v) in s.points {
            rows.push([
                labels.clone(),
                Value::Timestamp(Timestamp {
                    unix_micros: t.saturating_mul(1000),
                    zoned: true,
                }),
                Value::Float(v),
            ]);
        }
    }
    ResultSet {
        columns: columns(),
        rows,
        rows_affected: 0,
        wire_rows: None,
    }
}

/// The schema objects of a time-series engine: `metric` per metric name,
/// and `label` per label name (attributes `values`, the first 100, and
/// `value_count`).
pub fn describe_objects(
    metrics: Vec<String>,
    labels: Vec<(String, Vec<String>)>,
) -> Vec<crate::SchemaObject> {
    let metric_objects = metrics.into_iter().map(|name| crate::SchemaObject {
        kind: "metric".into(),
        name,
        ..crate::SchemaObject::default()
    });
    let label_objects = labels.into_iter().map(|(name, values)| {
        let count = values.len();
        let shown: Vec<String> = values.into_iter().take(100).collect();
        crate::SchemaObject {
            kind: "label".into(),
            name,
            attributes: vec![
                ("values".into(), shown.join(",")),
                ("value_count".into(), count.to_string()),
            ],
            ..crate::SchemaObject::default()
        }
    });
    metric_objects.chain(label_objects).collect()
}
