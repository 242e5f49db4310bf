//! Transactions on a real VictoriaMetrics: writes parsed and timed when
//! sent and kept, queries of committed state, one import at commit, a
//! replay that deduplication makes harmless, and the refusal to vote for a
//! cross-engine commit when the server does not deduplicate.
#![allow(clippy::unwrap_used)]

use omnigate_drivers::conformance::ts::{base_millis, instant, points};
use omnigate_drivers::ts::{Precision, TsOptions};
use omnigate_drivers::victoria::{VictoriaConfig, VictoriaDriver};
use omnigate_drivers::{BeginOptions, Dialect, Error, ExecuteOptions, Statement, StorageDriver};
use omnigate_tests::victoria::VictoriaServer;

async fn victoria(server: &VictoriaServer) -> VictoriaDriver {
    let config = VictoriaConfig {
        url: server.url(),
        read_your_writes: true,
        ..VictoriaConfig::default()
    };
    VictoriaDriver::connect("metrics", config).await.unwrap()
}

fn millis() -> ExecuteOptions {
    ExecuteOptions {
        ts: TsOptions {
            precision: Precision::Milliseconds,
            ..TsOptions::default()
        },
        ..ExecuteOptions::default()
    }
}

fn ts(text: &str) -> Statement {
    Statement::new(text)
}

async fn count(d: &VictoriaDriver, metric: &str, at: i64, base: i64) -> f64 {
    let query = format!("sum(count_over_time({metric}[3h]))");
    points(d, &query, &instant(at), base)
        .await
        .first()
        .map_or(0.0, |p| p.2)
}

#[tokio::test]
async fn writes_are_checked_timed_kept_and_imported_at_commit() {
    let server = VictoriaServer::start();
    let d = victoria(&server).await;
    let base = base_millis();
    d.execute(Dialect::Ts, &ts(&format!("seen v=1 {base}")), &millis())
        .await
        .unwrap();
    let mut tx = d.begin(&BeginOptions::default()).await.unwrap();
    let written = tx
        .execute(
            Dialect::Ts,
            &ts(&format!(
                "cpu,host=a usage=0.5 {base}\ncpu,host=b usage=0.7 {base}"
            )),
            &millis(),
        )
        .await
        .unwrap();
    assert_eq!(written.rows_affected, 2);
    // A line without a time gets the time it was sent.
    tx.execute(Dialect::Ts, &ts("now_written v=3"), &millis())
        .await
        .unwrap();
    tx.execute(
        Dialect::Ts,
        &ts(&format!("seen v=2 {}", base + 1000)),
        &millis(),
    )
    .await
    .unwrap();
    let now = omnigate_drivers::ts::now_millis() + 60_000;
    assert_eq!(
        count(&d, "seen_v", now, base).await,
        1.0,
        "committed state only"
    );
    assert_eq!(
        count(&d, "cpu_usage", now, base).await,
        0.0,
        "nothing imported yet"
    );

    // Refused when sent; the transaction goes on.
    let bad = tx
        .execute(Dialect::Ts, &ts("cpu,host=a usage=oops 1"), &millis())
        .await
        .unwrap_err();
    assert!(matches!(bad, Error::InvalidStatement(_)), "{bad:?}");
    let delete_options = ExecuteOptions {
        ts: TsOptions {
            allow_delete: true,
            ..TsOptions::default()
        },
        ..ExecuteOptions::default()
    };
    let delete = tx
        .execute(Dialect::Ts, &ts("DELETE cpu_usage"), &delete_options)
        .await
        .unwrap_err();
    assert!(delete.to_string().contains("outside one"), "{delete}");

    tx.commit().await.unwrap();
    assert_eq!(count(&d, "cpu_usage", now, base).await, 2.0);
    assert_eq!(count(&d, "seen_v", now, base).await, 2.0);
    assert_eq!(count(&d, "now_written_v", now, base).await, 1.0);
}

#[tokio::test]
async fn rollback_imports_nothing_read_only_refuses_and_a_replay_stores_once() {
    let server = VictoriaServer::start();
    let d = victoria(&server).await;
    let base = base_millis();
    let now = omnigate_drivers::ts::now_millis() + 60_000;
    let mut tx = d.begin(&BeginOptions::default()).await.unwrap();
    tx.execute(Dialect::Ts, &ts(&format!("gone v=1 {base}")), &millis())
        .await
        .unwrap();
    tx.rollback().await.unwrap();
    assert_eq!(count(&d, "gone_v", now, base).await, 0.0);

    let read_only = BeginOptions {
        read_only: true,
        ..BeginOptions::default()
    };
    let mut tx = d.begin(&read_only).await.unwrap();
    let refused = tx
        .execute(Dialect::Ts, &ts(&format!("no v=1 {base}")), &millis())
        .await
        .unwrap_err();
    assert!(matches!(refused, Error::ReadOnly(_)), "{refused:?}");

    let mut tx = d.begin(&BeginOptions::default()).await.unwrap();
    tx.execute(Dialect::Ts, &ts("twice v=4"), &millis())
        .await
        .unwrap();
    tx.prepare("tx-1").await.unwrap();
    let redo = tx.redo();
    tx.commit().await.unwrap();
    d.replay("tx-1", &redo).await.unwrap();
    d.replay("tx-1", &redo).await.unwrap();
    assert_eq!(
        count(&d, "twice_v", now, base).await,
        1.0,
        "deduplication keeps one sample per series and time"
    );
}

#[tokio::test]
async fn without_deduplication_a_cross_engine_vote_is_refused() {
    let server = VictoriaServer::start_with(&["-dedup.minScrapeInterval=0s"]);
    let d = victoria(&server).await;
    let mut tx = d.begin(&BeginOptions::default()).await.unwrap();
    tx.execute(Dialect::Ts, &ts("x v=1"), &millis())
        .await
        .unwrap();
    let refused = tx.prepare("tx-1").await.unwrap_err();
    assert!(matches!(refused, Error::Precondition(_)), "{refused:?}");
    assert!(
        refused.to_string().contains("-dedup.minScrapeInterval=1ms"),
        "{refused}"
    );
    // On its own (no replay needed) it still commits.
    tx.commit().await.unwrap();
}
