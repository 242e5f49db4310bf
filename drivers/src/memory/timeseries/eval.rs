//! A PromQL subset, evaluated the way VictoriaMetrics evaluates it for
//! regularly sampled data: instant and range vector selectors with label
//! matchers and `offset`; `rate`, `avg_over_time`, `min_over_time`,
//! `max_over_time`, `sum_over_time`, `count_over_time`; `sum`, `avg`, `min`, `max`, `count` with `by` /
//! `without`; parentheses and number literals. Anything else is
//! `NotSupported`, naming what.
//!
//! - A plain selector at time t takes each series' last sample in
//!   (t − 5m, t].
//! - `f_over_time(s[d])` at t looks at the samples in (t − d, t].
//! - `rate(s[d])` at t is (last − previous) / (their time apart), where
//!   previous is the last sample before the window when there is one (else
//!   the window's first), counting counter resets, as VictoriaMetrics does.
//! - `avg_over_time`, `min_over_time` and `max_over_time` keep
//!   `__name__`; the other functions and aggregations drop it (as
//!   VictoriaMetrics does).

use std::collections::BTreeMap;

use promql_parser::parser::token::{T_AVG, T_COUNT, T_MAX, T_MIN, T_SUM};
use promql_parser::parser::{AggregateExpr, Call, Expr, LabelModifier, Offset, VectorSelector};

use super::{Labels, TsStore};
use crate::deadline::Deadline;
use crate::ts::{Series, When, selector_matchers};
use crate::{Error, Result};

/// How far back a plain selector looks for a sample.
const LOOKBACK_MS: i64 = 5 * 60 * 1000;

/// The most points a range query may return per series (as
/// VictoriaMetrics' `-search.maxPointsPerTimeseries`).
pub(crate) const MAX_POINTS: i64 = 30_000;

type Vector = Vec<(Labels, f64)>;

/// Evaluates `expr` at every time of `when`.
pub(crate) fn evaluate(
    store: &TsStore,
    expr: &Expr,
    when: When,
    deadline: &Deadline,
) -> Result<Vec<Series>> {
    if when.points() > MAX_POINTS {
        return Err(Error::InvalidStatement(crate::EngineError::new(
            super::super::KIND,
            None,
            format!(
                "the range has {} points per series, over the limit of {MAX_POINTS}: raise the step or narrow the range",
                when.points()
            ),
        )));
    }
    let mut series: BTreeMap<Labels, Vec<(i64, f64)>> = BTreeMap::new();
    for t in when.times() {
        // Each time looks at every series: the deadline is checked per
        // series-time, so a long range stops when the call's time is up.
        deadline.advance(store.len().max(1))?;
        for (labels, value) in vector(store, expr, t)? {
            series.entry(labels).or_default().push((t, value));
        }
    }
    Ok(series
        .into_iter()
        .map(|(labels, points)| Series { labels, points })
        .collect())
}

fn not_supported(what: impl Into<String>) -> Error {
    Error::not_supported(what, super::super::KIND)
}

fn vector(store: &TsStore, expr: &Expr, t: i64) -> Result<Vector> {
    match expr {
        Expr::Paren(inner) => vector(store, &inner.expr, t),
        Expr::NumberLiteral(n) => Ok(vec![(Vec::new(), n.val)]),
        Expr::VectorSelector(selector) => Ok(select(store, selector, t, LOOKBACK_MS)
            .into_iter()
            .filter_map(|(labels, samples)| samples.last().map(|(_, v)| (labels, *v)))
            .collect()),
        Expr::Call(call) => function(store, call, t),
        Expr::Aggregate(aggregate) => aggregation(store, aggregate, t),
        Expr::MatrixSelector(_) => Err(Error::InvalidStatement(crate::EngineError::new(
            super::super::KIND,
            None,
            "a range selector (x[5m]) needs a function such as rate() or avg_over_time() around it",
        ))),
        Expr::Binary(_) => Err(not_supported("binary operators in PromQL")),
        Expr::Unary(_) => Err(not_supported("unary minus in PromQL")),
        Expr::Subquery(_) => Err(not_supported("PromQL subqueries")),
        Expr::StringLiteral(_) => Err(not_supported("string literals in PromQL")),
        Expr::Extension(_) => Err(not_supported("PromQL extensions")),
    }
}

/// Each matching series' samples in (t − window, t], shifted by `offset`.
fn select(
    store: &TsStore,
    selector: &VectorSelector,
    t: i64,
    window: i64,
) -> Vec<(Labels, Vec<(i64, f64)>)> {
    let t = t - offset_ms(selector.offset.as_ref());
    let matchers = selector_matchers(selector);
    store
        .select(&matchers)
        .map(|(labels, samples)| {
            let inside = samples
                .range(t - window + 1..=t)
                .map(|(k, v)| (*k, *v))
                .collect();
            (labels.clone(), inside)
        })
        .filter(|(_, inside): &(Labels, Vec<_>)| !inside.is_empty())
        .collect()
}

fn offset_ms(offset: Option<&Offset>) -> i64 {
    let ms = |d: &std::time::Duration| i64::try_from(d.as_millis()).unwrap_or(i64::MAX);
    match offset {
        Some(Offset::Pos(d)) => ms(d),
        Some(Offset::Neg(d)) => -ms(d),
        None => 0,
    }
}

fn without_name(mut labels: Labels) -> Labels {
    labels.retain(|(k, _)| k != "__name__");
    labels
}

/// The PromQL functions this engine evaluates (the README lists them, and
/// the ts conformance suite runs each on both engines).
pub(crate) const FUNCTIONS: [&str; 6] = [
    "rate",
    "avg_over_time",
    "min_over_time",
    "max_over_time",
    "sum_over_time",
    "count_over_time",
];

fn function(store: &TsStore, call: &Call, t: i64) -> Result<Vector> {
    let name = call.func.name;
    if !FUNCTIONS.contains(&name) {
        return Err(not_supported(format!("the PromQL function {name}()")));
    }
    let Some(Expr::MatrixSelector(matrix)) = call.args.args.first().map(|a| a.as_ref()) else {
        return Err(Error::InvalidStatement(crate::EngineError::new(
            super::super::KIND,
            None,
            format!("{name}() takes a range selector such as x[5m]"),
        )));
    };
    if matrix.vs.at.is_some() {
        return Err(not_supported("the PromQL @ modifier"));
    }
    let window = i64::try_from(matrix.range.as_millis()).unwrap_or(i64::MAX);
    let mut out = Vec::new();
    for (labels, samples) in select(store, &matrix.vs, t, window) {
        let values = samples.iter().map(|(_, v)| *v);
        let value = match name {
            "avg_over_time" => values.clone().sum::<f64>() / samples.len() as f64,
            "min_over_time" => values.fold(f64::INFINITY, f64::min),
            "max_over_time" => values.fold(f64::NEG_INFINITY, f64::max),
            "sum_over_time" => values.sum(),
            "count_over_time" => samples.len() as f64,
            _ => match rate(store, &matrix.vs, &labels, &samples, t - window) {
                Some(rate) => rate,
                None => continue,
            },
        };
        let keeps_name = matches!(name, "avg_over_time" | "min_over_time" | "max_over_time");
        out.push((
            if keeps_name {
                labels
            } else {
                without_name(labels)
            },
            value,
        ));
    }
    Ok(out)
}

/// VictoriaMetrics' rate: from the last sample before the window (or the
/// window's first) to the window's last, counting counter resets.
fn rate(
    store: &TsStore,
    selector: &VectorSelector,
    labels: &Labels,
    samples: &[(i64, f64)],
    window_start: i64,
) -> Option<f64> {
    let shift = offset_ms(selector.offset.as_ref());
    let previous = store
        .series
        .get(labels)
        .and_then(|all| all.range(..=window_start - shift).next_back())
        .map(|(k, v)| (*k, *v));
    let mut points: Vec<(i64, f64)> = previous
        .into_iter()
        .chain(samples.iter().copied())
        .collect();
    points.dedup_by_key(|p| p.0);
    let (first, last) = (points.first()?, points.last()?);
    if points.len() < 2 || last.0 == first.0 {
        return None;
    }
    let mut increase = 0.0;
    for pair in points.windows(2) {
        let delta = pair[1].1 - pair[0].1;
        increase += if delta < 0.0 { pair[1].1 } else { delta };
    }
    Some(increase / ((last.0 - first.0) as f64 / 1000.0))
}

fn aggregation(store: &TsStore, aggregate: &AggregateExpr, t: i64) -> Result<Vector> {
    let op = aggregate.op.id();
    if ![T_SUM, T_AVG, T_MIN, T_MAX, T_COUNT].contains(&op) {
        return Err(not_supported(format!(
            "the PromQL aggregation {}",
            aggregate.op
        )));
    }
    if aggregate.param.is_some() {
        return Err(not_supported(format!("{} with a parameter", aggregate.op)));
    }
    let mut groups: BTreeMap<Labels, Vec<f64>> = BTreeMap::new();
    for (labels, value) in vector(store, &aggregate.expr, t)? {
        let key = match &aggregate.modifier {
            Some(LabelModifier::Include(by)) => {
                let mut kept: Labels = labels
                    .into_iter()
                    .filter(|(k, _)| by.labels.contains(k))
                    .collect();
                kept.sort();
                kept
            }
            Some(LabelModifier::Exclude(without)) => without_name(labels)
                .into_iter()
                .filter(|(k, _)| !without.labels.contains(k))
                .collect(),
            None => Vec::new(),
        };
        groups.entry(key).or_default().push(value);
    }
    Ok(groups
        .into_iter()
        .map(|(labels, values)| {
            let n = values.len() as f64;
            let value = match op {
                T_SUM => values.iter().sum(),
                T_AVG => values.iter().sum::<f64>() / n,
                T_MIN => values.iter().copied().fold(f64::INFINITY, f64::min),
                T_MAX => values.iter().copied().fold(f64::NEG_INFINITY, f64::max),
                _ => n,
            };
            (labels, value)
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ts::Sample;

    fn store() -> TsStore {
        let mut store = TsStore::default();
        let mut samples = Vec::new();
        for i in 0..=30 {
            for (host, slope) in [("a", 1.0), ("b", 3.0)] {
                samples.push(Sample {
                    name: "requests".into(),
                    labels: vec![("host".into(), host.into()), ("job".into(), "api".into())],
                    millis: Some(i * 10_000),
                    value: slope * i as f64 * 10.0,
                });
            }
        }
        store.write(samples, 0);
        store
    }

    fn at(expr: &str, t: i64) -> Vec<Series> {
        let expr = promql_parser::parser::parse(expr).unwrap();
        evaluate(&store(), &expr, When::Instant(t), &Deadline::none()).unwrap()
    }

    #[test]
    fn selectors_rates_and_windows() {
        let plain = at("requests{host=\"b\"}", 100_000);
        assert_eq!(plain.len(), 1);
        assert_eq!(plain[0].points, vec![(100_000, 300.0)]);
        assert!(
            plain[0]
                .labels
                .contains(&("__name__".into(), "requests".into()))
        );
        let rates = at("rate(requests[1m])", 200_000);
        let values: Vec<f64> = rates.iter().map(|s| s.points[0].1).collect();
        assert_eq!(values, vec![1.0, 3.0]);
        assert!(!rates[0].labels.iter().any(|(k, _)| k == "__name__"));
        let max = at("max_over_time(requests{host=\"a\"}[1m])", 200_000);
        assert_eq!(max[0].points[0].1, 200.0);
        let min = at("min_over_time(requests{host=\"a\"}[1m])", 200_000);
        assert_eq!(min[0].points[0].1, 150.0, "the window is left-open");
    }

    #[test]
    fn aggregations_group_by_and_without() {
        let sum = at("sum(requests)", 100_000);
        assert_eq!((sum[0].labels.clone(), sum[0].points[0].1), (vec![], 400.0));
        let by = at("max by (host) (requests)", 100_000);
        assert_eq!(by.len(), 2);
        assert_eq!(by[1].labels, vec![("host".to_owned(), "b".to_owned())]);
        let without = at("count without (host) (requests)", 100_000);
        assert_eq!(
            without[0].labels,
            vec![("job".to_owned(), "api".to_owned())]
        );
        assert_eq!(without[0].points[0].1, 2.0);
    }

    #[test]
    fn what_is_not_in_the_subset_is_named() {
        let expr = promql_parser::parser::parse("histogram_quantile(0.9, requests)").unwrap();
        let err = evaluate(&store(), &expr, When::Instant(0), &Deadline::none()).unwrap_err();
        assert!(err.to_string().contains("histogram_quantile"), "{err}");
        let expr = promql_parser::parser::parse("requests * 2").unwrap();
        assert!(matches!(
            evaluate(&store(), &expr, When::Instant(0), &Deadline::none()),
            Err(Error::NotSupported { .. })
        ));
    }
}
