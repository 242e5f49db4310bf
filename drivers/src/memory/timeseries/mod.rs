//! The memory engine's time series: samples by series in ordered maps,
//! and a PromQL subset evaluated in process (see `eval.rs`).

mod eval;

use std::collections::BTreeMap;

use promql_parser::label::Matcher;

pub(crate) use eval::evaluate;

use crate::ts::Sample;

/// A series' labels, `__name__` included, sorted by name.
pub(crate) type Labels = Vec<(String, String)>;

/// Every series and its samples (milliseconds → value). Writing the same
/// series and time again replaces the value, so a replayed write leaves
/// one sample, as VictoriaMetrics' deduplication does.
#[derive(Debug, Default)]
pub(crate) struct TsStore {
    series: BTreeMap<Labels, BTreeMap<i64, f64>>,
}

impl TsStore {
    /// Writes samples; those without a time get `now`.
    pub(crate) fn write(&mut self, samples: Vec<Sample>, now: i64) {
        for sample in samples {
            let mut labels = sample.labels;
            labels.push(("__name__".into(), sample.name));
            labels.sort();
            self.series
                .entry(labels)
                .or_default()
                .insert(sample.millis.unwrap_or(now), sample.value);
        }
    }

    /// How many series are stored.
    pub(crate) fn len(&self) -> usize {
        self.series.len()
    }

    /// The series every matcher accepts.
    pub(crate) fn select<'a>(
        &'a self,
        matchers: &'a [Matcher],
    ) -> impl Iterator<Item = (&'a Labels, &'a BTreeMap<i64, f64>)> + 'a {
        self.series
            .iter()
            .filter(move |(labels, _)| matchers.iter().all(|m| m.is_match(label(labels, &m.name))))
    }

    /// Deletes the series every matcher accepts; returns how many.
    pub(crate) fn delete(&mut self, matchers: &[Matcher]) -> usize {
        let before = self.series.len();
        self.series
            .retain(|labels, _| !matchers.iter().all(|m| m.is_match(label(labels, &m.name))));
        before - self.series.len()
    }

    /// Every series' labels.
    pub(crate) fn all_labels(&self) -> impl Iterator<Item = &Labels> {
        self.series.keys()
    }
}

/// A label's value; absent labels read as empty, as in PromQL.
pub(crate) fn label<'a>(labels: &'a Labels, name: &str) -> &'a str {
    labels
        .iter()
        .find(|(k, _)| k == name)
        .map_or("", |(_, v)| v.as_str())
}

/// Runs a `ts` statement: a write, a query or a delete.
pub(crate) fn run(
    store: &std::sync::Mutex<TsStore>,
    statement: &crate::Statement,
    options: &crate::ExecuteOptions,
    deadline: &crate::deadline::Deadline,
) -> crate::Result<crate::ResultSet> {
    use crate::ts::{TsStatement, classify, selector_matchers, series_rows};
    let now = crate::ts::now_millis();
    let lock = || {
        store
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    };
    match classify(
        super::KIND,
        statement,
        options,
        now,
        crate::ts::Reader::InProcess,
    )? {
        TsStatement::Write { samples, count } => {
            let written = count;
            lock().write(samples.unwrap_or_default(), now);
            Ok(crate::ResultSet {
                rows_affected: written,
                ..crate::ResultSet::default()
            })
        }
        TsStatement::Query {
            expr: Some(expr),
            when,
            ..
        } => {
            let series = evaluate(&lock(), &expr, when, deadline)?;
            // The caller (`Shared::run`) checks every result's limits.
            Ok(series_rows(series))
        }
        TsStatement::Query { expr: None, .. } => Err(crate::Error::Internal(
            crate::EngineError::new(super::KIND, None, "a query the PromQL parser did not read"),
        )),
        TsStatement::Delete { parsed, .. } => {
            let deleted = lock().delete(&selector_matchers(&parsed));
            Ok(crate::ResultSet {
                rows_affected: deleted as u64,
                ..crate::ResultSet::default()
            })
        }
    }
}

/// Metric names, and label names with their values.
pub(crate) fn describe(store: &std::sync::Mutex<TsStore>) -> Vec<crate::SchemaObject> {
    use std::collections::{BTreeMap, BTreeSet};
    let store = store
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let mut labels: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    for series in store.all_labels() {
        for (k, v) in series {
            labels.entry(k).or_default().insert(v);
        }
    }
    let metrics = labels
        .remove("__name__")
        .unwrap_or_default()
        .into_iter()
        .map(str::to_owned)
        .collect();
    crate::ts::describe_objects(
        metrics,
        labels
            .into_iter()
            .map(|(name, values)| {
                (
                    name.to_owned(),
                    values.into_iter().map(str::to_owned).collect(),
                )
            })
            .collect(),
    )
}
