//! The `ts` conformance suite: the same writes and queries give the same
//! answers on every engine of the dialect (the memory engine and real
//! VictoriaMetrics). The data is regular (a sample every 10 s) and the
//! queries stay inside it, where the engines' lookback rules agree.
//!
//! Each check writes metrics of its own, so the checks can share an engine.

use std::time::Duration;

use crate::ts::TsOptions;
use crate::{
    Dialect, Error, ExecuteOptions, ResultSet, Statement, StorageDriver, Timestamp, Value,
};

/// Runs every check in order.
pub async fn run_all(d: &dyn StorageDriver) {
    let base = base_millis();
    instant_queries_see_each_series(d, base).await;
    range_queries_align_to_the_step(d, base).await;
    aggregations_group_by_labels(d, base).await;
    rates_and_windows(d, base).await;
    line_protocol_edge_cases(d, base).await;
    bad_statements_write_nothing(d, base).await;
    replayed_writes_leave_one_sample(d, base).await;
    delete_needs_allow_delete(d, base).await;
    super::statement_checks(d, Dialect::Ts, "conf_checks_v").await;
}

/// Two hours ago, on a whole minute: inside any retention, and far enough
/// back that "now" never interferes.
pub fn base_millis() -> i64 {
    (crate::ts::now_millis() - 2 * 3_600_000) / 60_000 * 60_000
}

fn at(millis: i64) -> Timestamp {
    Timestamp {
        unix_micros: millis * 1000,
        zoned: true,
    }
}

/// Options of an instant query at `t`.
pub fn instant(t: i64) -> ExecuteOptions {
    ExecuteOptions {
        ts: TsOptions {
            time: Some(at(t)),
            ..TsOptions::default()
        },
        ..ExecuteOptions::default()
    }
}

/// Options of a range query.
pub fn range(start: i64, end: i64, step: Duration) -> ExecuteOptions {
    ExecuteOptions {
        ts: TsOptions {
            start: Some(at(start)),
            end: Some(at(end)),
            step: Some(step),
            ..TsOptions::default()
        },
        ..ExecuteOptions::default()
    }
}

/// Runs a statement.
pub async fn ts(
    d: &dyn StorageDriver,
    text: &str,
    options: &ExecuteOptions,
) -> crate::Result<ResultSet> {
    d.execute(Dialect::Ts, &Statement::new(text), options).await
}

/// Writes line protocol (precision: milliseconds).
pub async fn write(d: &dyn StorageDriver, lines: &str) -> ResultSet {
    let options = ExecuteOptions {
        ts: TsOptions {
            precision: crate::ts::Precision::Milliseconds,
            ..TsOptions::default()
        },
        ..ExecuteOptions::default()
    };
    match ts(d, lines, &options).await {
        Ok(result) => result,
        Err(e) => panic!("write failed: {e}"),
    }
}

/// `(labels as name=value text, seconds since base, value)` of each row.
pub async fn points(
    d: &dyn StorageDriver,
    text: &str,
    options: &ExecuteOptions,
    base: i64,
) -> Vec<(String, i64, f64)> {
    let result = match ts(d, text, options).await {
        Ok(result) => result,
        Err(e) => panic!("{text}: {e}"),
    };
    let names: Vec<&str> = result.columns.iter().map(|c| &*c.name).collect();
    assert_eq!(names, ["labels", "timestamp", "value"], "{text}");
    result
        .rows
        .into_iter()
        .map(|row| {
            let labels = match &row[0] {
                Value::Map(entries) => entries
                    .iter()
                    .map(|(k, v)| format!("{k}={}", v))
                    .collect::<Vec<_>>()
                    .join(","),
                other => panic!("labels are a map, not {other:?}"),
            };
            let Value::Timestamp(t) = &row[1] else {
                panic!("a timestamp")
            };
            let Value::Float(v) = &row[2] else {
                panic!("a float")
            };
            (
                labels,
                (t.unix_micros / 1000 - base) / 1000,
                (*v * 1e9).round() / 1e9,
            )
        })
        .collect()
}

/// `count` lines of `metric,host=H,region=R field=V` every 10 s from base,
/// with value `slope * i` per host.
fn series_lines(measurement: &str, base: i64, count: i64, hosts: &[(&str, &str, f64)]) -> String {
    let mut out = String::new();
    for i in 0..count {
        for (host, region, slope) in hosts {
            out.push_str(&format!(
                "{measurement},host={host},region={region} v={} {}\n",
                slope * i as f64,
                base + i * 10_000
            ));
        }
    }
    out
}

/// A plain selector sees each series' sample at the query time.
pub async fn instant_queries_see_each_series(d: &dyn StorageDriver, base: i64) {
    let written = write(
        d,
        &series_lines("conf_inst", base, 31, &[("a", "eu", 1.0), ("b", "us", 2.0)]),
    )
    .await;
    assert_eq!(written.rows_affected, 62, "one sample per line and field");
    let got = points(d, "conf_inst_v", &instant(base + 100_000), base).await;
    assert_eq!(
        got,
        vec![
            ("__name__=conf_inst_v,host=a,region=eu".into(), 100, 10.0),
            ("__name__=conf_inst_v,host=b,region=us".into(), 100, 20.0),
        ]
    );
    let matched = points(
        d,
        "conf_inst_v{host=~\"b|c\", region!=\"eu\"}",
        &instant(base + 50_000),
        base,
    )
    .await;
    assert_eq!(
        matched,
        vec![("__name__=conf_inst_v,host=b,region=us".into(), 50, 10.0)]
    );
}

/// A range query has a point at every step from start to end.
pub async fn range_queries_align_to_the_step(d: &dyn StorageDriver, base: i64) {
    write(
        d,
        &series_lines("conf_range", base, 31, &[("a", "eu", 1.0)]),
    )
    .await;
    let aligned = points(
        d,
        "conf_range_v",
        &range(base + 60_000, base + 120_000, Duration::from_secs(20)),
        base,
    )
    .await;
    let times: Vec<(i64, f64)> = aligned.iter().map(|p| (p.1, p.2)).collect();
    assert_eq!(times, vec![(60, 6.0), (80, 8.0), (100, 10.0), (120, 12.0)]);
    // Between samples, each point takes the last sample before it.
    let offset = points(
        d,
        "conf_range_v",
        &range(base + 65_000, base + 105_000, Duration::from_secs(20)),
        base,
    )
    .await;
    let times: Vec<(i64, f64)> = offset.iter().map(|p| (p.1, p.2)).collect();
    assert_eq!(times, vec![(65, 6.0), (85, 8.0), (105, 10.0)]);
}

/// sum/avg/min/max/count with by and without.
pub async fn aggregations_group_by_labels(d: &dyn StorageDriver, base: i64) {
    write(
        d,
        &series_lines(
            "conf_agg",
            base,
            31,
            &[("a", "eu", 1.0), ("b", "eu", 3.0), ("c", "us", 5.0)],
        ),
    )
    .await;
    let t = instant(base + 100_000);
    let cases: [(&str, Vec<(&str, f64)>); 5] = [
        (
            "sum by (region) (conf_agg_v)",
            vec![("region=eu", 40.0), ("region=us", 50.0)],
        ),
        ("avg(conf_agg_v)", vec![("", 30.0)]),
        (
            "min by (region) (conf_agg_v)",
            vec![("region=eu", 10.0), ("region=us", 50.0)],
        ),
        (
            "max without (host) (conf_agg_v)",
            vec![("region=eu", 30.0), ("region=us", 50.0)],
        ),
        ("count without (host, region) (conf_agg_v)", vec![("", 3.0)]),
    ];
    for (query, want) in cases {
        let got: Vec<(String, f64)> = points(d, query, &t, base)
            .await
            .into_iter()
            .map(|p| (p.0, p.2))
            .collect();
        let want: Vec<(String, f64)> = want.into_iter().map(|(l, v)| (l.to_owned(), v)).collect();
        assert_eq!(got, want, "{query}");
    }
}

/// rate() of a steady counter is its slope; *_over_time look at the window.
pub async fn rates_and_windows(d: &dyn StorageDriver, base: i64) {
    write(
        d,
        &series_lines(
            "conf_rate",
            base,
            61,
            &[("a", "eu", 5.0), ("b", "eu", 20.0)],
        ),
    )
    .await;
    let rates = points(
        d,
        "rate(conf_rate_v[1m])",
        &range(base + 120_000, base + 240_000, Duration::from_secs(60)),
        base,
    )
    .await;
    let got: Vec<(String, i64, f64)> = rates;
    assert_eq!(
        got,
        vec![
            ("host=a,region=eu".into(), 120, 0.5),
            ("host=a,region=eu".into(), 180, 0.5),
            ("host=a,region=eu".into(), 240, 0.5),
            ("host=b,region=eu".into(), 120, 2.0),
            ("host=b,region=eu".into(), 180, 2.0),
            ("host=b,region=eu".into(), 240, 2.0),
        ],
        "rate drops the metric name"
    );
    let t = instant(base + 300_000);
    let window = |f: &str| format!("{f}(conf_rate_v{{host=\"a\"}}[1m])");
    for (f, want) in [
        ("max_over_time", 150.0),
        ("min_over_time", 125.0),
        ("avg_over_time", 137.5),
    ] {
        let got = points(d, &window(f), &t, base).await;
        assert_eq!(
            got,
            vec![("__name__=conf_rate_v,host=a,region=eu".into(), 300, want)],
            "{f} keeps the metric name"
        );
    }
    // Samples at 250..300 s (the window excludes 240): 125, 130, .., 150.
    for (f, want) in [("sum_over_time", 825.0), ("count_over_time", 6.0)] {
        let got = points(d, &window(f), &t, base).await;
        assert_eq!(
            got,
            vec![("host=a,region=eu".into(), 300, want)],
            "{f} drops the metric name"
        );
    }
}

/// Escapes, field types and a missing timestamp.
pub async fn line_protocol_edge_cases(d: &dyn StorageDriver, base: i64) {
    let t = base + 30_000;
    write(
        d,
        &format!(
            "conf\\ lp,path=/var\\ lib,dev=a\\,b\\=c f=1.5,i=-7i,u=9u,yes=true,no=false {t}\n\n# a comment\nconf_now,host=x v=4\n"
        ),
    )
    .await;
    let got = points(d, "{__name__=~\"conf lp_.*\"}", &instant(t), base).await;
    let want: Vec<(String, i64, f64)> = [
        ("f", 1.5),
        ("i", -7.0),
        ("no", 0.0),
        ("u", 9.0),
        ("yes", 1.0),
    ]
    .into_iter()
    .map(|(field, v)| {
        (
            format!("__name__=conf lp_{field},dev=a,b=c,path=/var lib"),
            30,
            v,
        )
    })
    .collect();
    assert_eq!(got, want);
    // Written at the engine's now; VictoriaMetrics makes the newest
    // samples searchable within about a second.
    let mut now = ResultSet::default();
    for _ in 0..30 {
        now = ts(d, "conf_now_v", &ExecuteOptions::default())
            .await
            .unwrap();
        if !now.rows.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        now.rows.len(),
        1,
        "a line without a timestamp is written at the engine's now"
    );
    assert_eq!(now.rows[0][2], Value::Float(4.0));
}

/// A bad line fails the statement naming its line and column, and nothing
/// of the statement is written; bad PromQL is InvalidStatement.
pub async fn bad_statements_write_nothing(d: &dyn StorageDriver, base: i64) {
    let t = base + 10_000;
    let bad =
        format!("conf_bad,host=a v=1 {t}\nconf_bad,host=b v=2 {t}\nconf_bad,host=c v=oops {t}\n");
    let options = ExecuteOptions {
        ts: TsOptions {
            precision: crate::ts::Precision::Milliseconds,
            ..TsOptions::default()
        },
        ..ExecuteOptions::default()
    };
    let err = ts(d, &bad, &options).await.unwrap_err();
    assert!(matches!(err, Error::InvalidStatement(_)), "{err}");
    assert!(err.to_string().contains("line 3 column"), "{err}");
    let string_field = ts(d, &format!("conf_bad,host=d name=\"x\" {t}"), &options)
        .await
        .unwrap_err();
    assert!(
        string_field.to_string().contains("string"),
        "{string_field}"
    );
    assert!(
        points(d, "conf_bad_v", &instant(t), base).await.is_empty(),
        "nothing was written"
    );
    let promql = ts(d, "sum(rate(conf_bad_v[1m]", &instant(t))
        .await
        .unwrap_err();
    assert!(matches!(promql, Error::InvalidStatement(_)), "{promql}");
}

/// The same write twice leaves one sample per series and time.
pub async fn replayed_writes_leave_one_sample(d: &dyn StorageDriver, base: i64) {
    let lines = series_lines("conf_replay", base, 6, &[("a", "eu", 1.0)]);
    write(d, &lines).await;
    write(d, &lines).await;
    let got = points(
        d,
        "conf_replay_v",
        &range(base, base + 50_000, Duration::from_secs(10)),
        base,
    )
    .await;
    assert_eq!(got.len(), 6);
    let sum = points(d, "sum(conf_replay_v)", &instant(base + 50_000), base).await;
    assert_eq!(sum[0].2, 5.0, "one series, not two");
}

/// DELETE removes the matching series, and only with allow_delete.
pub async fn delete_needs_allow_delete(d: &dyn StorageDriver, base: i64) {
    write(
        d,
        &series_lines("conf_del", base, 3, &[("a", "eu", 1.0), ("b", "eu", 1.0)]),
    )
    .await;
    let refused = ts(
        d,
        "DELETE conf_del_v{host=\"a\"}",
        &ExecuteOptions::default(),
    )
    .await
    .unwrap_err();
    assert!(matches!(refused, Error::Precondition(_)), "{refused}");
    let allowed = ExecuteOptions {
        ts: TsOptions {
            allow_delete: true,
            ..TsOptions::default()
        },
        ..ExecuteOptions::default()
    };
    let deleted = ts(d, "DELETE conf_del_v{host=\"a\"}", &allowed)
        .await
        .unwrap();
    assert_eq!(deleted.rows_affected, 1);
    let left = points(d, "conf_del_v", &instant(base + 20_000), base).await;
    assert_eq!(left.len(), 1);
    assert!(left[0].0.contains("host=b"));
}
