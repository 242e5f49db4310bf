//! The short version of the soak (`omnigate-soak` runs the long one): a
//! minute of mixed load on PostgreSQL, SQLite, Redis, FalkorDB and
//! VictoriaMetrics through this crate's `omnigate` binary, each backend
//! killed and restarted once: no call hangs past its deadline, file
//! descriptors do not grow, and every engine serves again after its
//! restart.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use omnigate_tests::soak::{Soak, run};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_minute_with_every_backend_restarted_once() {
    let soak = Soak {
        duration: Duration::from_secs(60),
        clients: 8,
        kill_every: Duration::from_secs(13),
        sample_every: Duration::from_secs(3),
        call_timeout: Duration::from_secs(2),
        binary: env!("CARGO_BIN_EXE_omnigate").into(),
    };
    let report = run(&soak, |_| {}).await;
    let summary = format!(
        "calls {:?}, hung {}, restarts {:?}, rss KiB warm/max/end {}/{}/{}, fds warm/max/end {}/{}/{}",
        report.calls,
        report.hung,
        report.restarts,
        report.rss_kib_warm,
        report.rss_kib_max,
        report.rss_kib_end,
        report.fds_warm,
        report.fds_max,
        report.fds_end
    );
    println!("{summary}");
    assert_eq!(report.hung, 0, "calls past their deadline: {summary}");
    assert!(
        report.calls.get("OK").copied().unwrap_or(0) > 1000,
        "{summary}"
    );
    assert_eq!(report.restarts.len(), 4, "{summary}");
    for restart in &report.restarts {
        assert!(
            restart.serving_after_ms.is_some(),
            "{} did not serve again within a minute of its restart: {summary}",
            restart.engine
        );
    }
    // Pools refill after each restart; a leak grows past them.
    assert!(
        report.fds_end <= report.fds_warm + 24,
        "file descriptors grew: {summary}"
    );
}
