//! Crash trials: a real `omnigate serve` process under concurrent
//! cross-engine transactions, killed with SIGKILL at random moments (or a
//! backend killed instead, or both), restarted, then every transaction any
//! client began is looked for on every engine it wrote to: on all of them
//! or on none. `omnigate-crash-trials` (the bench crate) runs many; the
//! test command runs a few (`gateway/tests/crash_trials.rs`).
//!
//! Each transaction writes one value, its number `k`, to each engine of
//! its shape: a row of `crash` on PostgreSQL (`main-db`) and on SQLite
//! (`main`, the deciding engine when present), a Redis key `crash:k`, a
//! FalkorDB node `(:Crash {k})`, a VictoriaMetrics sample `crash_v{k}`.
//! Redis gets two counters, `crash:k` and `crash:k:b`, which must land
//! together; in some trials a mutator turns `crash:k:b` into a list while
//! the transaction is under way.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::time::{Duration, Instant};

use omnigate_proto::v1 as pb;
use pb::gateway_client::GatewayClient;
use tonic::transport::Channel;

mod config;
mod io;
mod outcome;
mod process;

pub(crate) use config::write_config;
use config::write_replica_config;
pub(crate) use process::Gateway;

use io::{client_loop, counters, read_all, retry_unanswered, setup};
use outcome::{Begun, Claim, Found, broken};

use crate::falkordb::FalkorServer;
use crate::postgres::PgServer;
use crate::redis::RedisServer;
use crate::victoria::VictoriaServer;

/// How to run the trials.
#[derive(Debug, Clone)]
pub struct Trials {
    /// How many.
    pub trials: usize,
    /// Client tasks committing transactions at once.
    pub clients: usize,
    /// The `omnigate` binary to run.
    pub binary: PathBuf,
    /// The random seed (the same seed, the same kill moments and shapes).
    pub seed: u64,
    /// Gateway processes at once (1, or 2-3 replicas sharing a log table
    /// in PostgreSQL, the clients spread over them, one or all killed).
    pub replicas: usize,
}

/// What the trials found.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Report {
    /// Trials run.
    pub trials: u64,
    /// Trials in which the gateway was killed / a backend was killed.
    pub gateway_kills: u64,
    /// Trials in which a backend was killed.
    pub backend_kills: u64,
    /// Transactions begun.
    pub begun: u64,
    /// Transactions whose Commit returned OK.
    pub committed: u64,
    /// Transactions found on every engine (committed, or finished by
    /// recovery after a commit the kill cut).
    pub present_everywhere: u64,
    /// Transactions found on no engine (rolled back, or never committed).
    pub present_nowhere: u64,
    /// Transactions recovery finished forward / rolled back, as the
    /// gateways counted them.
    pub recovered_forward: u64,
    /// See `recovered_forward`.
    pub recovered_backward: u64,
    /// Transactions whose Commit said they committed but a buffered write
    /// failed as it was applied (the documented Redis window, and Redis
    /// refusing at EXEC in the noeviction trials), counted apart.
    pub failed_after_commit: u64,
    /// Commits sent again: cut by a deadline shorter than a commit step,
    /// or unanswered when the gateway was killed (asked of the restarted
    /// one).
    pub retried_commits: u64,
    /// Transactions whose client heard an outcome the engines contradict
    /// (OK but not everywhere, rolled back but somewhere): must be 0.
    pub misreported: u64,
    /// Transactions a non-idempotent write of which (Redis INCR, a graph
    /// counter) was applied more than once: must be 0.
    pub double_applied: u64,
    /// Trials whose gateway's log was torn (a partial record appended
    /// after the kill) / whose Redis refused writes (noeviction at its
    /// limit) for the trial.
    pub torn_logs: u64,
    /// See `torn_logs`.
    pub noeviction_trials: u64,
    /// Trials with a mutator turning the keys of transactions under way
    /// into lists (between the vote and EXEC, now and then).
    pub mutator_trials: u64,
    /// Commits that did not return within a minute (a defect, counted
    /// apart from partial: the transaction is still checked).
    pub hung_commits: u64,
    /// Transactions not whole a minute after the restart but whole within
    /// five (recovery was late: a defect too, told apart from lost).
    pub late: u64,
    /// Transactions on some of their engines but not all (or said
    /// committed and found nowhere) five minutes after: must be 0.
    pub partial: u64,
    /// The first partial ones, with where they were found.
    pub partial_examples: Vec<String>,
    /// The longest time from a gateway's restart (the process started
    /// again) to every transaction being whole, in milliseconds.
    pub max_recovery_ms: u64,
    /// Where the run's files (config, the gateway's log) were kept, when
    /// something was partial.
    pub kept: Option<String>,
}

/// The engines a transaction writes to.
const SHAPES: [&[Engine]; 3] = [
    // SQLite decides, PostgreSQL prepares, the rest are buffered.
    &[
        Engine::Sqlite,
        Engine::Postgres,
        Engine::Redis,
        Engine::Falkor,
        Engine::Victoria,
    ],
    // PostgreSQL decides.
    &[
        Engine::Postgres,
        Engine::Redis,
        Engine::Falkor,
        Engine::Victoria,
    ],
    // No live engine: the log decides.
    &[Engine::Redis, Engine::Falkor, Engine::Victoria],
];

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Engine {
    Sqlite,
    Postgres,
    Redis,
    Falkor,
    Victoria,
}

/// A small deterministic generator (xorshift), so a seed replays a run.
#[derive(Debug, Clone)]
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

/// The backends, started once for all trials.
/// The four backend servers (SQLite is a file of the gateway's).
pub(crate) struct Backends {
    pub(crate) pg: PgServer,
    pub(crate) redis: RedisServer,
    pub(crate) graph: FalkorServer,
    pub(crate) metrics: VictoriaServer,
}

impl Backends {
    /// Starts them durable: PostgreSQL, Redis and FalkorDB are killed
    /// now and then and must keep what they acknowledged (the tests'
    /// defaults do not).
    pub(crate) fn start_durable() -> Backends {
        // FalkorDB also replicates every write as its query (an effects
        // threshold no write reaches): 4.16.3 mixes effects and queries in
        // its AOF, and a restart then gave properties each other's names
        // (found by the crash trials; FalkorDB #2235 is of the same
        // family). The AOF is rewritten (as an RDB preamble plus a tail)
        // once it passes 1 MB: replaying hundreds of thousands of graph
        // queries made a FalkorDB restart take a minute and more after a
        // few hundred trials.
        let durable = [
            "--appendonly",
            "yes",
            "--appendfsync",
            "always",
            "--auto-aof-rewrite-min-size",
            "1mb",
        ];
        let mut graph_args = vec!["EFFECTS_THRESHOLD", "4294967295"];
        graph_args.extend(durable);
        Backends {
            pg: PgServer::start_durable(),
            redis: RedisServer::start_with(&durable),
            graph: FalkorServer::start_with(&graph_args),
            metrics: VictoriaServer::start(),
        }
    }
}

/// Runs the trials; `progress` hears each one finish.
pub async fn run(trials: &Trials, mut progress: impl FnMut(usize, &Report)) -> Report {
    let dir = tempfile::tempdir().expect("a temp dir");
    let mut backends = Backends::start_durable();
    let replicas = trials.replicas.max(1);
    let mut nodes = Vec::new();
    for n in 0..replicas {
        let addr = SocketAddr::from(([127, 0, 0, 1], crate::free_port()));
        let replica = (replicas > 1).then_some(n);
        let config = write_replica_config(dir.path(), &backends, addr, replica);
        nodes.push((config, addr));
    }
    let mut rng = Rng(trials.seed.max(1));
    let mut report = Report::default();
    let next_k = Arc::new(AtomicI64::new(1));
    let mut gateways = Vec::new();
    for (config, addr) in &nodes {
        gateways.push(Gateway::start(&trials.binary, config, *addr, dir.path()).await);
    }
    setup(&mut gateways[0].client).await;
    for trial in 0..trials.trials {
        // Mostly the gateway; some trials a backend, some both.
        let kind = rng.below(10);
        let kill_gateway = kind < 7 || kind == 9;
        // With replicas: one of them, or (one trial in three) all.
        let killed: Vec<usize> = if !kill_gateway {
            Vec::new()
        } else if replicas > 1 && rng.below(3) != 0 {
            vec![rng.below(replicas as u64) as usize]
        } else {
            (0..replicas).collect()
        };
        let backend = (kind >= 7).then(|| rng.below(3));
        // Some trials: Redis at its memory limit with noeviction, so it
        // refuses writes at EXEC (never to be taken as applied).
        let noeviction = rng.below(8) == 0;
        if noeviction {
            io::redis_limit(&mut gateways[0].client, true).await;
            report.noeviction_trials += 1;
        }
        let stop = Arc::new(AtomicBool::new(false));
        // Some trials: keys changed under the transactions writing them.
        let mutator = (rng.below(4) == 0).then(|| {
            report.mutator_trials += 1;
            tokio::spawn(io::mutator_loop(
                gateways[0].client.clone(),
                Arc::clone(&stop),
                Arc::clone(&next_k),
                trials.clients,
                rng.next(),
            ))
        });
        let mut clients = Vec::new();
        for c in 0..trials.clients {
            let client = gateways[c % replicas].client.clone();
            let stop = Arc::clone(&stop);
            let next_k = Arc::clone(&next_k);
            let seed = rng.next() ^ c as u64;
            clients.push(tokio::spawn(client_loop(client, stop, next_k, seed, trial)));
        }
        // A random moment: early, mid-commit, or later under load.
        tokio::time::sleep(Duration::from_millis(20 + rng.below(400))).await;
        if let Some(which) = backend {
            match which {
                0 => backends.pg.kill(),
                1 => backends.redis.kill(),
                _ => backends.graph.server().kill(),
            }
            report.backend_kills += 1;
        }
        for &n in &killed {
            gateways[n].kill();
        }
        if kill_gateway {
            report.gateway_kills += 1;
        }
        if let Some(which) = backend {
            tokio::time::sleep(Duration::from_millis(100 + rng.below(300))).await;
            match which {
                0 => backends.pg.restart(),
                1 => backends.redis.restart(),
                _ => backends.graph.server().restart(),
            }
        }
        stop.store(true, Ordering::Relaxed);
        let mut begun: Vec<Begun> = Vec::new();
        for client in clients {
            begun.extend(client.await.unwrap_or_default());
        }
        if let Some(mutator) = mutator {
            let _ = mutator.await;
        }
        // From the restart (the gateway recovers before it serves) to every
        // transaction being whole.
        let started = Instant::now();
        if kill_gateway && replicas == 1 && rng.below(3) == 0 {
            // Some kills tear the log's last record (a write the kill cut).
            io::tear(&dir.path().join("tx.log"));
            report.torn_logs += 1;
        }
        for &n in &killed {
            let (config, addr) = &nodes[n];
            gateways[n] = Gateway::start(&trials.binary, config, *addr, dir.path()).await;
        }
        if noeviction {
            io::redis_limit(&mut gateways[0].client, false).await;
        }
        // Commits the kill left unanswered, asked again: the restarted
        // gateway (with replicas, any one: the first) must answer what the
        // engines show.
        let gateway = &mut gateways[0];
        retry_unanswered(&mut gateway.client, &mut begun).await;
        let mut found = settle(&mut gateway.client, &begun, trial, Duration::from_secs(60)).await;
        report.max_recovery_ms = report
            .max_recovery_ms
            .max(started.elapsed().as_millis() as u64);
        // A commit answered "in doubt" then (its log or deciding engine
        // unreadable, say PostgreSQL killed this trial) is asked again, as
        // its client would once recovery has had its minute: the answer
        // must then be what the engines show.
        if !broken(&begun, &found).is_empty() {
            retry_unanswered(&mut gateway.client, &mut begun).await;
        }
        let broken_now = broken(&begun, &found).len();
        if broken_now > 0 {
            // Not whole after a minute: a defect either way, but a late
            // one (whole after all) is told apart from a lost one.
            found = settle(&mut gateway.client, &begun, trial, Duration::from_secs(240)).await;
            let still = broken(&begun, &found).len();
            report.late += (broken_now - still) as u64;
        }
        for gateway in &mut gateways {
            let counts = counters(&mut gateway.client).await;
            report.recovered_forward += counts.get("recovered_forward").copied().unwrap_or(0);
            report.recovered_backward += counts.get("recovered_backward").copied().unwrap_or(0);
        }
        report.trials += 1;
        report.begun += begun.len() as u64;
        report.committed += begun.iter().filter(|b| b.committed()).count() as u64;
        report.failed_after_commit += begun
            .iter()
            .filter(|b| b.claim == Claim::FailedAfterCommit)
            .count() as u64;
        report.retried_commits += begun.iter().filter(|b| b.retried).count() as u64;
        for b in &begun {
            let (misreported, twice) = (b.is_misreported(&found), b.is_applied_twice(&found));
            report.misreported += u64::from(misreported);
            report.double_applied += u64::from(twice);
            if (misreported || twice) && report.partial_examples.len() < 20 {
                report.partial_examples.push(format!(
                    "trial {trial}: k={} heard {:?}{} on {:?} of {:?}{}",
                    b.k,
                    b.claim,
                    if b.retried { " (retried)" } else { "" },
                    b.found_on(&found),
                    SHAPES[b.shape],
                    if twice { ", applied twice" } else { "" }
                ));
            }
        }
        report.hung_commits += begun.iter().filter(|b| b.hung).count() as u64;
        for b in &begun {
            let here = b.found_on(&found);
            if here.len() == SHAPES[b.shape].len() {
                report.present_everywhere += 1;
            } else if here.is_empty() {
                report.present_nowhere += 1;
            }
        }
        for b in broken(&begun, &found) {
            report.partial += 1;
            if report.partial_examples.len() < 20 {
                report.partial_examples.push(format!(
                    "trial {trial}: k={} heard {:?} on {:?} of {:?}{}",
                    b.k,
                    b.claim,
                    b.found_on(&found),
                    SHAPES[b.shape],
                    if found.split.contains(&b.k) {
                        ", one of its two Redis writes without the other"
                    } else {
                        ""
                    }
                ));
            }
        }
        progress(trial + 1, &report);
    }
    if report.partial > 0
        && let Ok(hold) = std::env::var("OMNIGATE_CRASH_HOLD")
    {
        // For a post-mortem on the live servers.
        eprintln!(
            "\nholding for {hold} s: gateway {}, postgres {}, redis {}, falkordb {}, victoriametrics {}",
            nodes[0].1,
            backends.pg.url("postgres"),
            backends.redis.url(0),
            backends.graph.url(),
            backends.metrics.url()
        );
        let secs = hold.parse().unwrap_or(600);
        tokio::time::sleep(Duration::from_secs(secs)).await;
    }
    for gateway in &mut gateways {
        gateway.kill();
    }
    if report.partial > 0 {
        // Kept for a post-mortem: the gateway's log and config.
        report.kept = Some(dir.path().display().to_string());
        std::mem::forget(dir);
    }
    report
}

/// Every engine's values, once every transaction of `begun` is whole or
/// absent (recovery has finished), or after `wait` when some still is not.
async fn settle(
    client: &mut GatewayClient<Channel>,
    begun: &[Begun],
    trial: usize,
    wait: Duration,
) -> Found {
    let deadline = Instant::now() + wait;
    loop {
        let lo = begun.iter().map(|b| b.k).min().unwrap_or(0);
        let hi = begun.iter().map(|b| b.k).max().unwrap_or(-1);
        let found = read_all(client, lo..=hi, trial).await;
        let whole = found
            .as_ref()
            .is_ok_and(|found| broken(begun, found).is_empty());
        match found {
            Ok(found) if whole || Instant::now() >= deadline => return found,
            // The harness cannot tell whole from partial: stop, saying why.
            Err(why) if Instant::now() >= deadline => {
                panic!("an engine stayed unreadable for {wait:?}: {why}")
            }
            _ => {}
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}
