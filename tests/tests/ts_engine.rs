//! The ts dialect on both of its engines: the conformance suite against
//! the memory engine and a real VictoriaMetrics, then what only the real
//! server shows: a million points in batches, streamed ranges, Describe,
//! gzip writes, and a server killed and restarted.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use futures::StreamExt;
use omnigate_drivers::conformance::ts::{
    self as suite, base_millis, instant, points, range, write,
};
use omnigate_drivers::memory::{MemoryConfig, MemoryDriver};
use omnigate_drivers::victoria::{VictoriaConfig, VictoriaDriver};
use omnigate_drivers::{
    DescribeOptions, Dialect, Error, ExecuteOptions, Statement, StorageDriver, Value,
};
use omnigate_tests::victoria::VictoriaServer;

async fn victoria(server: &VictoriaServer) -> VictoriaDriver {
    let config = VictoriaConfig {
        url: server.url(),
        read_your_writes: true,
        gzip_above: 4096,
        stream_points: 50,
        ..VictoriaConfig::default()
    };
    VictoriaDriver::connect("metrics", config).await.unwrap()
}

#[tokio::test]
async fn the_memory_engine_passes_the_ts_conformance_suite() {
    let d = MemoryDriver::new("cache", MemoryConfig::default());
    suite::run_all(&d).await;
}

#[tokio::test]
async fn victoriametrics_passes_the_ts_conformance_suite() {
    let server = VictoriaServer::start();
    suite::run_all(&victoria(&server).await).await;
}

#[tokio::test]
async fn a_million_points_are_written_in_batches_and_add_up() {
    let server = VictoriaServer::start();
    let d = victoria(&server).await;
    let base = base_millis();
    // 1000 series × 1000 points, 100k points per statement.
    for batch in 0..10 {
        let mut lines = String::with_capacity(4 << 20);
        for i in batch * 100..(batch + 1) * 100 {
            for series in 0..1000 {
                lines.push_str(&format!("bulk,s=s{series} v=1 {}\n", base + i * 1000));
            }
        }
        let written = write(&d, &lines).await;
        assert_eq!(written.rows_affected, 100_000);
    }
    // `read_your_writes` flushes after each write, but VictoriaMetrics'
    // own flusher (every second) can be turning the last samples into a
    // part just then, and the forced flush does not wait for it: those
    // samples show up a few milliseconds later. So the sum is read until it
    // is whole (bounded), and it must never exceed the points written.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let total = loop {
        let total = points(
            &d,
            "sum(count_over_time(bulk_v[1000s]))",
            &instant(base + 999_000),
            base,
        )
        .await
        .first()
        .map_or(0.0, |point| point.2);
        assert!(total <= 1_000_000.0, "{total} points counted, 1e6 written");
        if total == 1_000_000.0 || std::time::Instant::now() > deadline {
            break total;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(total, 1_000_000.0);
}

#[tokio::test]
async fn long_ranges_stream_in_slices() {
    let server = VictoriaServer::start();
    let d = victoria(&server).await;
    let base = base_millis();
    let mut lines = String::new();
    for i in 0..360 {
        for host in ["a", "b"] {
            lines.push_str(&format!("stream,host={host} v={i} {}\n", base + i * 10_000));
        }
    }
    write(&d, &lines).await;
    let options = range(base, base + 3_590_000, Duration::from_secs(10));
    let stream = d
        .execute_stream(
            Dialect::Ts,
            Statement::new("stream_v"),
            ExecuteOptions {
                batch_size: Some(100),
                ts: options.ts.clone(),
                ..ExecuteOptions::default()
            },
        )
        .await
        .unwrap();
    let batches: Vec<_> = stream.batches.collect().await;
    let rows: Vec<_> = batches.into_iter().flat_map(|b| b.unwrap()).collect();
    assert_eq!(rows.len(), 720, "both series, every step");
    let last = rows.last().unwrap();
    assert_eq!(last[2], Value::Float(359.0));
    let whole = d
        .execute(Dialect::Ts, &Statement::new("stream_v"), &options)
        .await
        .unwrap();
    assert_eq!(whole.rows.len(), 720, "the same rows as one Execute");
}

#[tokio::test]
async fn describe_lists_metrics_and_labels_on_both_engines() {
    let server = VictoriaServer::start();
    let real = victoria(&server).await;
    let memory = MemoryDriver::new("cache", MemoryConfig::default());
    let base = base_millis();
    for d in [&real as &dyn StorageDriver, &memory] {
        write(
            d,
            &format!("disk,host=a,dev=sda used=1 {base}\ndisk,host=b,dev=sdb used=2 {base}"),
        )
        .await;
        let objects = d.describe(&DescribeOptions::default()).await.unwrap();
        let has = |kind: &str, name: &str| objects.iter().any(|o| o.kind == kind && o.name == name);
        assert!(has("metric", "disk_used"), "{objects:?}");
        let host = objects
            .iter()
            .find(|o| o.kind == "label" && o.name == "host")
            .unwrap();
        assert!(
            host.attributes.contains(&("values".into(), "a,b".into())),
            "{host:?}"
        );
    }
}

#[tokio::test]
async fn metricsql_reaches_victoriametrics_and_its_errors_carry_its_message() {
    let server = VictoriaServer::start();
    let d = victoria(&server).await;
    let base = base_millis();
    // MetricsQL beyond PromQL: VictoriaMetrics reads it.
    let got = points(
        &d,
        "label_set(vector(1), \"team\", \"db\")",
        &instant(base),
        base,
    )
    .await;
    assert_eq!(got, vec![("team=db".to_owned(), 0, 1.0)]);
    // Too many points: VictoriaMetrics' own message, without its echo of the query.
    let err = suite::ts(
        &d,
        "vector(1)",
        &range(base, base + 3_600_000, Duration::from_millis(10)),
    )
    .await
    .unwrap_err();
    match err {
        Error::InvalidStatement(report) => {
            assert!(report.message.contains("points"), "{}", report.message);
            assert!(
                !report.message.contains("error when executing"),
                "{}",
                report.message
            );
        }
        other => panic!("{other}"),
    }
    // The memory engine names what its subset lacks.
    let memory = MemoryDriver::new("cache", MemoryConfig::default());
    let err = suite::ts(&memory, "histogram_quantile(0.9, x)", &instant(0))
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::NotSupported { .. }) && err.to_string().contains("histogram_quantile"),
        "{err}"
    );
    let err = suite::ts(&memory, "label_set(vector(1), \"a\", \"b\")", &instant(0))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::InvalidStatement(_)), "{err}");
}

#[tokio::test]
async fn victoriametrics_fails_fast_while_down_and_recovers() {
    let mut server = VictoriaServer::start();
    let d = victoria(&server).await;
    let base = base_millis();
    write(&d, &format!("before v=1 {base}")).await;
    // Killed, not stopped: VictoriaMetrics may lose its last second of
    // writes (its documented behaviour); replayed writes are idempotent.
    server.kill();
    omnigate_tests::outage_then_recovery(&d, Dialect::Ts, "vector(1)", || server.restart()).await;
    write(&d, &format!("after v=2 {base}")).await;
    let after = points(&d, "after_v", &instant(base), base).await;
    assert_eq!(after, vec![("__name__=after_v".to_owned(), 0, 2.0)]);
}

#[tokio::test]
async fn an_overloaded_server_is_resource_exhausted_and_retryable() {
    // One search at a time, and no queueing: concurrent queries get 503.
    let server = VictoriaServer::start_with(&[
        "-search.maxConcurrentRequests=1",
        "-search.maxQueueDuration=1ms",
    ]);
    let d = std::sync::Arc::new(victoria(&server).await);
    let base = base_millis();
    let mut lines = String::new();
    for i in 0..720 {
        for s in 0..50 {
            lines.push_str(&format!("load,s=s{s} v={i} {}\n", base + i * 5_000));
        }
    }
    write(d.as_ref(), &lines).await;
    let heavy = range(base, base + 3_595_000, Duration::from_secs(1));
    let calls = (0..32).map(|_| {
        let d = std::sync::Arc::clone(&d);
        let heavy = heavy.clone();
        tokio::spawn(async move { suite::ts(d.as_ref(), "sum(rate(load_v[5m]))", &heavy).await })
    });
    let outcomes = futures::future::join_all(calls).await;
    let overloaded: Vec<Error> = outcomes
        .into_iter()
        .filter_map(|o| o.unwrap().err())
        .collect();
    assert!(
        !overloaded.is_empty(),
        "some of 32 concurrent heavy queries were refused"
    );
    for err in &overloaded {
        assert!(matches!(err, Error::Overloaded(_)), "{err}");
        assert!(err.is_retryable());
    }
    // It serves again once the burst is over.
    assert_eq!(
        points(d.as_ref(), "vector(1)", &instant(base), base)
            .await
            .len(),
        1
    );
}
