//! The coordinator of transactions that span engines: where its log is,
//! the transactions this gateway is committing now (recovery leaves them),
//! the deciding engines' marker tables, counters and failpoints. The
//! commit protocol is in `commit.rs`, recovery in `recover.rs`.

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use omnigate_drivers::StorageDriver;

use super::failpoint::{Action, Failpoints};
use super::file_log;
use super::log::{FileLog, TableLog, TxLog};
use crate::config::TransactionsConfig;
use crate::error::{Error, Result};
use crate::router::Router;

/// How often recovery sweeps old done markers, fences and ended log rows.
const SWEEP_EVERY: Duration = Duration::from_secs(60);

/// Where the log is opened from.
#[derive(Debug, Clone)]
pub enum LogSource {
    /// A file.
    File(PathBuf),
    /// Tables in a PostgreSQL engine.
    Table(Arc<dyn StorageDriver>),
}

/// The log (opened at the first cross-engine commit, or at startup when
/// it exists) and the transactions this gateway is committing now.
#[derive(Debug)]
pub struct Coordinator {
    source: LogSource,
    log: tokio::sync::OnceCell<TxLog>,
    /// This gateway, as a shared log's rows and the markers name it.
    pub(super) owner: String,
    /// How long another gateway's row of a shared log waits before this
    /// gateway's recovery takes it over.
    pub(crate) takeover_after: Duration,
    /// How long one engine's step (or the log's) may take.
    step_timeout: Duration,
    committing: Mutex<HashSet<String>>,
    /// Engines whose marker table is known to exist, and whether each
    /// has the index of its markers not done.
    markers_ready: Mutex<std::collections::HashMap<String, bool>>,
    /// What transactions did since start.
    pub(crate) counters: super::TxCounters,
    /// Test-only failpoints (they do nothing without the feature).
    pub failpoints: Failpoints,
    /// Whether a log held by another gateway was said.
    warned_held: std::sync::atomic::AtomicBool,
    /// Lets go of finished transactions' markers, in batches.
    pub(super) forgetter: super::forgetter::Forgetter,
    /// When recovery last swept old done markers and fences (see
    /// [`Coordinator::sweep_due`]).
    swept: Mutex<Option<std::time::Instant>>,
}

impl Coordinator {
    /// A coordinator whose log is opened from `source`; `owner` names this
    /// gateway in a shared log (the same name after a restart, so that
    /// its own unfinished transactions are finished at once).
    pub fn new(source: LogSource, owner: String, config: &TransactionsConfig) -> Self {
        if let LogSource::File(path) = &source
            && ["/tmp/", "/var/tmp/", "/dev/shm/", "/run/"]
                .iter()
                .any(|dir| path.starts_with(dir))
        {
            tracing::warn!(log = %path.display(), "the transaction log is on a path that looks ephemeral: a reboot that clears it loses the record of transactions in doubt; put [transactions] log on persistent storage");
        }
        Coordinator {
            source,
            log: tokio::sync::OnceCell::new(),
            owner,
            takeover_after: config.takeover_after,
            step_timeout: config.step_timeout,
            committing: Mutex::new(HashSet::new()),
            markers_ready: Mutex::new(std::collections::HashMap::new()),
            counters: super::TxCounters::default(),
            failpoints: Failpoints::default(),
            warned_held: std::sync::atomic::AtomicBool::new(false),
            forgetter: super::forgetter::Forgetter::start(),
            swept: Mutex::new(None),
        }
    }

    /// Whether this recovery pass sweeps the engines' old done markers and
    /// fences and the log table's ended rows: at most once a minute (each
    /// sweep reads past every done marker on the engine, a busy engine's
    /// ended window holding millions), and at the first pass.
    pub(super) fn sweep_due(&self) -> bool {
        let mut swept = self
            .swept
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let due = swept.is_none_or(|at| at.elapsed() >= SWEEP_EVERY);
        if due {
            *swept = Some(std::time::Instant::now());
        }
        due
    }

    /// The log, opened now if it was not.
    pub(crate) async fn log(&self) -> Result<&TxLog> {
        self.log
            .get_or_try_init(|| async {
                match &self.source {
                    LogSource::File(path) => FileLog::open(path).map(TxLog::File),
                    LogSource::Table(driver) => {
                        TableLog::open(Arc::clone(driver), self.owner.clone())
                            .await
                            .map(|log| TxLog::Table(Arc::new(log)))
                    }
                }
            })
            .await
            .map_err(|e| Error::TxLog { why: e.to_string() })
    }

    /// The log if it is open or exists (then it is opened): a file that
    /// was never made holds nothing to recover.
    pub(crate) async fn existing_log(&self) -> Option<&TxLog> {
        if let LogSource::File(path) = &self.source
            && self.log.get().is_none()
            && !path.exists()
        {
            return None;
        }
        match self.log().await {
            Ok(log) => Some(log),
            Err(e) => {
                if let (LogSource::File(path), true) =
                    (&self.source, e.to_string().contains(file_log::HELD))
                {
                    // Another gateway's (one started in the same directory):
                    // said once, as what it means, not as a loss.
                    if self
                        .warned_held
                        .swap(true, std::sync::atomic::Ordering::Relaxed)
                    {
                        return None;
                    }
                    tracing::warn!(log = %path.display(), "the transaction log is held by another gateway: this one neither recovers from it nor writes it, and its cross-engine commits that need a log fail; give each gateway its own [transactions] log, or share a PostgreSQL log");
                } else {
                    tracing::error!(error = %e, "cannot open the transaction log for recovery");
                }
                None
            }
        }
    }

    /// `work`, one engine's step of a commit or of recovery, cut at the
    /// step timeout with `Timeout` (a stalled engine must not hold a
    /// commit, or recovery, for ever).
    pub(super) async fn step<T>(
        &self,
        work: impl std::future::Future<Output = omnigate_drivers::Result<T>>,
    ) -> omnigate_drivers::Result<T> {
        omnigate_drivers::deadline::within(Some(self.step_timeout), work).await
    }

    /// [`Coordinator::step`] for a step of the log.
    pub(super) async fn log_step<T>(
        &self,
        work: impl std::future::Future<Output = std::io::Result<T>>,
    ) -> std::io::Result<T> {
        tokio::time::timeout(self.step_timeout, work)
            .await
            .unwrap_or_else(|_| {
                Err(std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    format!(
                        "the transaction log did not answer within {:?}",
                        self.step_timeout
                    ),
                ))
            })
    }

    /// Notes that this gateway is committing `tx` now, or no longer.
    pub(super) fn committing(&self, tx: &str, now: bool) {
        if now {
            self.lock().insert(tx.to_owned());
        } else {
            self.lock().remove(tx);
        }
    }

    /// Whether this gateway is committing `tx` now, or letting go of its
    /// markers (recovery leaves it).
    pub(crate) fn is_committing(&self, tx: &str) -> bool {
        self.lock().contains(tx) || self.forgetter.is_pending(tx)
    }

    /// Whether `gid` belongs to a transaction this gateway is committing.
    pub(crate) fn is_committing_gid(&self, prefix: &str, gid: &str) -> bool {
        self.lock()
            .iter()
            .any(|tx| gid.starts_with(&format!("{prefix}{tx}-")))
    }

    /// `Err` when the failpoint `point` stops the commit here (a crash);
    /// `Ok(true)` when it makes the step fail.
    pub(super) fn at(&self, point: &'static str) -> Result<bool> {
        match self.failpoints.hit(point) {
            Some(Action::Stop) => Err(Error::TxLog {
                why: format!("stopped at failpoint {point}"),
            }),
            Some(Action::Fail) => Ok(true),
            None => Ok(false),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashSet<String>> {
        self.committing
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Makes sure deciding engine `engine` is ready to hold markers (once
    /// per engine, until it succeeds); the reason when it is not (no
    /// privilege to make them, or an earlier version's markers that still
    /// hold records beside them): its markers are then neither written nor
    /// trusted when read. Ready, whether it has the index of its markers
    /// not done (recovery then reads only those).
    pub(crate) async fn ready_markers(
        &self,
        engine: &str,
        decider: super::markers::Decider<'_>,
    ) -> std::result::Result<bool, omnigate_drivers::Error> {
        if let Some(indexed) = self
            .markers_ready
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(engine)
        {
            return Ok(*indexed);
        }
        let indexed = match decider.setup().await {
            Ok(indexed) => indexed,
            Err(e) => {
                tracing::warn!(engine = %engine, error = %e, "the engine cannot hold transaction markers: cross-engine transactions it would decide fail, and recovery leaves what it may have decided alone, until this is fixed");
                return Err(e);
            }
        };
        self.markers_ready
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(engine.to_owned(), indexed);
        Ok(indexed)
    }

    /// The engines that can decide a transaction, each as a deciding
    /// engine, made ready to hold markers; and the names of those that
    /// could not be (see [`Coordinator::ready_markers`]).
    pub(super) async fn deciders<'r>(&self, router: &'r Router) -> Deciders<'r> {
        let mut deciders = Deciders::default();
        for (engine, decider) in super::recover::deciding_engines(router) {
            match self.ready_markers(engine.name(), decider).await {
                Ok(indexed) => deciders
                    .ready
                    .push((engine, decider.with_open_index(indexed))),
                Err(_) => deciders.unready.push(engine.name().to_owned()),
            }
        }
        deciders
    }
}

/// The deciding engines of a router (see [`Coordinator::deciders`]).
#[derive(Default)]
pub(super) struct Deciders<'r> {
    /// Those whose markers may be written and read.
    pub(super) ready: Vec<(
        &'r Arc<crate::engines::EngineEntry>,
        super::markers::Decider<'r>,
    )>,
    /// Those that could not be made ready: what they may have decided is
    /// unknown.
    pub(super) unready: Vec<String>,
}
