//! The `[transactions]` section.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use super::{DriverConfig, EngineConfig};

/// Transaction settings.
///
/// ```toml
/// [transactions]
/// log = "main-db"          # a PostgreSQL engine's name, or a file path
/// idle_timeout = "60s"
/// recovery_interval = "10s"
/// takeover_after = "60s"
/// step_timeout = "30s"
/// # instance = "gw-1"      # default: host name and listen port
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TransactionsConfig {
    /// A transaction idle this long (no statement, no commit) is rolled
    /// back; Begin may ask for another timeout.
    #[serde(with = "humantime_serde")]
    pub idle_timeout: Duration,
    /// Where the log of cross-engine commits is kept: the name of a
    /// PostgreSQL engine (tables in it, shared by every gateway replica
    /// that names it) or a file path (an append-only file, fsynced at each
    /// step, locked by the one gateway that uses it; relative paths are
    /// from the working directory). Unset: the one PostgreSQL engine when
    /// there is exactly one, else the file `omnigate-tx.log`.
    pub log: Option<String>,
    /// How often recovery looks for transactions a failure left unfinished
    /// (it also runs at startup).
    #[serde(with = "humantime_serde")]
    pub recovery_interval: Duration,
    /// On a shared log, how long another gateway's unfinished transaction
    /// must sit untouched before this gateway's recovery finishes it (its
    /// gateway is taken to be gone). A gateway's own are finished at once.
    #[serde(with = "humantime_serde")]
    pub takeover_after: Duration,
    /// How long one engine's step of a commit (prepare, the deciding
    /// commit, a rollback, applying buffered writes) or of recovery may
    /// take. Before the decision a step past it rolls the transaction
    /// back; from the decision on, it leaves the step to recovery (the
    /// commit answers that its outcome is in doubt when the decision
    /// itself did not answer).
    #[serde(with = "humantime_serde")]
    pub step_timeout: Duration,
    /// This gateway's name in a shared log, the same across its restarts
    /// (default: the host's name and the listen port). Replicas need
    /// distinct names.
    pub instance: Option<String>,
    /// Statements one transaction may send to the engines that keep its
    /// writes in the gateway until commit (Redis, memory, FalkorDB,
    /// VictoriaMetrics); one more is refused with RESOURCE_EXHAUSTED, the
    /// transaction still usable. A principal's `limits` may set less.
    pub max_buffered_statements: u64,
    /// Bytes of statements (text and parameters) one transaction may send
    /// to those engines, likewise.
    pub max_buffered_bytes: u64,
}

impl Default for TransactionsConfig {
    fn default() -> Self {
        TransactionsConfig {
            idle_timeout: Duration::from_secs(60),
            log: None,
            recovery_interval: Duration::from_secs(10),
            takeover_after: Duration::from_secs(60),
            step_timeout: Duration::from_secs(30),
            instance: None,
            max_buffered_statements: 100_000,
            max_buffered_bytes: 64 << 20,
        }
    }
}

/// Where the transaction log is kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LogLocation {
    /// An append-only file.
    File(PathBuf),
    /// Tables in the PostgreSQL engine of this name.
    Table(String),
}

/// The name in `names` nearest to `word` by edit distance, if it is near
/// (a typo's distance: at most a third of the word).
pub(crate) fn closest<'a>(word: &str, names: impl Iterator<Item = &'a str>) -> Option<&'a str> {
    names
        .map(|name| (distance(word, name), name))
        .filter(|(d, _)| *d <= word.chars().count().div_ceil(3).max(1))
        .min()
        .map(|(_, name)| name)
}

/// Levenshtein distance, by characters.
fn distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut prev = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(ca != *cb);
            let next = (row[j + 1] + 1).min(row[j] + 1).min(prev + cost);
            prev = row[j + 1];
            row[j + 1] = next;
        }
    }
    row[b.len()]
}

/// The file log's path when none is configured.
pub const DEFAULT_LOG_FILE: &str = "omnigate-tx.log";

impl TransactionsConfig {
    /// This gateway's name in a shared log: `instance`, else the host's
    /// name and the port the gateway listens on (a port chosen by the
    /// system, 0, is not stable: then a random name).
    pub fn instance_name(&self, listen: std::net::SocketAddr) -> String {
        if let Some(name) = &self.instance {
            return name.clone();
        }
        if listen.port() == 0 {
            return uuid::Uuid::new_v4().simple().to_string()[..12].to_owned();
        }
        let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
            .ok()
            .or_else(|| std::env::var("HOSTNAME").ok())
            .map(|h| h.trim().to_owned())
            .filter(|h| !h.is_empty())
            .unwrap_or_else(|| "localhost".into());
        format!("{host}:{}", listen.port())
    }

    /// Where the log is, given the engines; `Err` says what to fix.
    pub fn location(
        &self,
        engines: &BTreeMap<String, EngineConfig>,
    ) -> Result<LogLocation, String> {
        let postgres: Vec<&String> = engines
            .iter()
            .filter(|(_, e)| matches!(e.driver, DriverConfig::Postgres(_)))
            .map(|(name, _)| name)
            .collect();
        match &self.log {
            Some(name) if engines.contains_key(name) => {
                if postgres.contains(&name) {
                    Ok(LogLocation::Table(name.clone()))
                } else {
                    Err(format!(
                        "transactions.log: engine {name} is not PostgreSQL; name a PostgreSQL \
                         engine, or give a file path"
                    ))
                }
            }
            Some(path) if path.trim().is_empty() => {
                Err("transactions.log: empty; name a PostgreSQL engine or give a file path".into())
            }
            // A bare word is meant as an engine's name: a typo of one must
            // not become a file of that name.
            Some(word) if !word.contains(['/', '.']) => {
                let near = closest(word, engines.keys().map(String::as_str));
                let hint = match near {
                    Some(name) => format!("did you mean {name:?}? "),
                    None => String::new(),
                };
                Err(format!(
                    "transactions.log: {word:?} is no engine's name ({hint}engines: {}); a file \
                     log needs a path with a '/' or an extension, e.g. \"./{word}.log\"",
                    engines.keys().cloned().collect::<Vec<_>>().join(", ")
                ))
            }
            Some(path) => Ok(LogLocation::File(PathBuf::from(path))),
            None => match postgres[..] {
                [only] => Ok(LogLocation::Table(only.clone())),
                _ => Ok(LogLocation::File(PathBuf::from(DEFAULT_LOG_FILE))),
            },
        }
    }
}
