//! The short version of the crash trials (`omnigate-crash-trials` runs the
//! long one): this crate's `omnigate` binary, killed with SIGKILL at random
//! moments under concurrent cross-engine transactions over PostgreSQL,
//! SQLite, Redis, FalkorDB and VictoriaMetrics (a backend killed instead in
//! some trials), restarted; every transaction must be on all of its
//! engines or on none, its non-idempotent writes (INCR, a graph counter)
//! applied once, and what its client heard true — with commits cut by
//! short deadlines and retried, commits unanswered at a kill asked of the
//! restarted gateway, torn logs, a graph write that matches nothing, and
//! Redis refusing writes at its memory limit, and a mutator changing the
//! keys of transactions under way (two Redis writes that must land
//! together).
#![allow(clippy::unwrap_used)]

use omnigate_tests::crash::{Report, Trials, run};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_kills_leave_no_transaction_partial() {
    let trials = Trials {
        trials: 20,
        clients: 4,
        binary: env!("CARGO_BIN_EXE_omnigate").into(),
        seed: 7,
        replicas: 1,
    };
    let report = run(&trials, |_, _| {}).await;
    assert_whole(&report, 20);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_kills_of_two_replicas_on_one_log_leave_no_transaction_partial() {
    let trials = Trials {
        trials: 10,
        clients: 4,
        binary: env!("CARGO_BIN_EXE_omnigate").into(),
        seed: 11,
        replicas: 2,
    };
    let report = run(&trials, |_, _| {}).await;
    assert_whole(&report, 10);
}

/// Every trial ran, some transactions committed, and none is partial,
/// late, hung, misreported or applied twice.
fn assert_whole(report: &Report, trials: u64) {
    println!("{report:#?}");
    assert_eq!(report.trials, trials);
    assert!(report.gateway_kills > 0 && report.begun > 0, "{report:?}");
    assert!(
        report.present_everywhere > 0,
        "some transactions committed: {report:?}"
    );
    assert_eq!(
        report.hung_commits, 0,
        "commits that never returned: {report:?}"
    );
    assert_eq!(report.late, 0, "recovery took over a minute: {report:?}");
    assert!(
        report.retried_commits > 0,
        "commits were retried: {report:?}"
    );
    assert_eq!(
        (report.misreported, report.double_applied),
        (0, 0),
        "outcomes misreported / writes applied twice: {:?}",
        report.partial_examples
    );
    assert_eq!(
        report.partial, 0,
        "partial transactions: {:?} (files kept in {:?})",
        report.partial_examples, report.kept
    );
}
