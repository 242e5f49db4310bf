//! The short version of the spikes (`omnigate-soak --spikes N` runs the
//! long one): the embedded default through two rounds of a transaction of
//! 100,000 buffered writes, a 64 MiB value built and deleted, and a
//! refused 5M-row result; its RSS must come back near where it started
//! after each (it stayed at 620 MB after such a transaction, from 18 MB).
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use omnigate_tests::spikes::{Spikes, run};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rss_comes_back_after_each_spike() {
    let spikes = Spikes {
        rounds: 2,
        writes: 100_000,
        append_mib: 64,
        settle: Duration::from_secs(3),
        binary: env!("CARGO_BIN_EXE_omnigate").into(),
    };
    let report = run(&spikes, |s| println!("{s:?}")).await;
    println!("{report:?}");
    let limit = report.baseline_kib + 32 * 1024;
    for spike in &report.spikes {
        assert!(
            spike.after_kib <= limit,
            "{} left {} KiB resident (baseline {} KiB, peak {} KiB)",
            spike.name,
            spike.after_kib,
            report.baseline_kib,
            spike.peak_kib
        );
    }
}
