//! The transaction log as an append-only file of JSON lines, each record
//! fsynced before the step it records is taken. The file is locked by the
//! gateway that opened it (another gateway cannot use it at once), and is
//! compacted once every transaction in it has ended.

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use super::log::{Failure, InDoubt, Record};

/// What the error of a log another gateway holds says.
pub(super) const HELD: &str = "another gateway holds the transaction log";

/// Records appended since the last compaction before one is tried.
const COMPACT_AFTER: usize = 1000;

/// The log file.
#[derive(Debug)]
pub struct FileLog {
    path: PathBuf,
    id: String,
    inner: Mutex<Inner>,
    /// Records waiting to be written: concurrent commits share one write
    /// and one fsync (group commit).
    queue: Mutex<Queue>,
}

#[derive(Debug)]
struct Inner {
    file: File,
    appended: usize,
    /// A failed write's partial bytes could not be cut off: nothing more
    /// is written (it would be glued to them) until the log is reopened,
    /// which trims them.
    broken: bool,
}

#[derive(Debug, Default)]
struct Queue {
    pending: Vec<Pending>,
    /// A writer is draining the queue.
    flushing: bool,
}

#[derive(Debug)]
struct Pending {
    line: Vec<u8>,
    /// It must be on disk before its step is taken.
    durable: bool,
    written: tokio::sync::oneshot::Sender<Result<(), String>>,
}

/// A log failure, said with the file's name.
fn failure(path: &Path, what: &str, e: impl std::fmt::Display) -> std::io::Error {
    std::io::Error::other(format!("{what} {}: {e}", path.display()))
}

impl FileLog {
    /// Opens (or creates) the log at `path` and locks it for this gateway.
    pub fn open(path: &Path) -> std::io::Result<Arc<Self>> {
        let file = OpenOptions::new()
            .create(true)
            .read(true)
            .append(true)
            .open(path)
            .map_err(|e| failure(path, "cannot open the transaction log", e))?;
        file.try_lock().map_err(|e| {
            failure(
                path,
                HELD,
                format!("{e}; give each gateway its own [transactions] log"),
            )
        })?;
        trim_torn(&file, path)?;
        let records = read(path)?;
        let id = match records.iter().find_map(|r| match r {
            Record::Log { id } => Some(id.clone()),
            _ => None,
        }) {
            Some(id) => id,
            None => uuid::Uuid::new_v4().simple().to_string()[..12].to_owned(),
        };
        let log = Arc::new(FileLog {
            path: path.to_owned(),
            id: id.clone(),
            inner: Mutex::new(Inner {
                file,
                appended: 0,
                broken: false,
            }),
            queue: Mutex::new(Queue::default()),
        });
        if records.is_empty() {
            log.append_now(&Record::Log { id })?;
        }
        Ok(log)
    }

    /// The prefix of every global id this log issues.
    pub fn gid_prefix(&self) -> String {
        format!("omnigate-{}-", self.id)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Appends `record` and waits until it is on disk.
    pub async fn append(self: &Arc<Self>, record: Record) -> std::io::Result<()> {
        self.write(&record, true).await
    }

    /// Appends `record` without waiting for the disk: for records whose
    /// loss recovery makes good (DONE, ABORT, a COMMIT that an engine's
    /// marker already decided).
    pub async fn append_lazy(self: &Arc<Self>, record: Record) -> std::io::Result<()> {
        self.write(&record, false).await
    }

    async fn write(self: &Arc<Self>, record: &Record, durable: bool) -> std::io::Result<()> {
        let line = encode(&self.path, record)?;
        let (written, done) = tokio::sync::oneshot::channel();
        let lead = {
            let mut queue = self
                .queue
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            queue.pending.push(Pending {
                line,
                durable,
                written,
            });
            !std::mem::replace(&mut queue.flushing, true)
        };
        if lead {
            let log = Arc::clone(self);
            tokio::task::spawn_blocking(move || log.drain());
        }
        match done.await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(why)) => Err(std::io::Error::other(why)),
            Err(_) => Err(failure(&self.path, "the writer of", "it stopped")),
        }
    }

    /// Writes what is queued, batch after batch, until nothing is.
    fn drain(&self) {
        loop {
            let batch = {
                let mut queue = self
                    .queue
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                if queue.pending.is_empty() {
                    queue.flushing = false;
                    return;
                }
                std::mem::take(&mut queue.pending)
            };
            let outcome = self.write_batch(&batch).map_err(|e| e.to_string());
            for pending in batch {
                let _ = pending.written.send(outcome.clone());
            }
        }
    }

    fn write_batch(&self, batch: &[Pending]) -> std::io::Result<()> {
        let bytes: Vec<u8> = batch.iter().flat_map(|p| p.line.iter().copied()).collect();
        let durable = batch.iter().any(|p| p.durable);
        let mut inner = self.lock();
        self.write_locked(&mut inner, &bytes, durable)?;
        inner.appended += batch.len();
        if inner.appended >= COMPACT_AFTER {
            inner.appended = 0;
            self.compact(&mut inner)?;
        }
        Ok(())
    }

    /// Writes `record` at once and waits for the disk (the log's identity,
    /// when the file is new).
    fn append_now(&self, record: &Record) -> std::io::Result<()> {
        let line = encode(&self.path, record)?;
        self.write_locked(&mut self.lock(), &line, true)
    }

    /// Appends `bytes` (whole lines) to the file, and waits for the disk
    /// when `durable`. A write that fails part way (ENOSPC, EIO) is cut
    /// off again, so the next record starts on a line of its own.
    fn write_locked(&self, inner: &mut Inner, bytes: &[u8], durable: bool) -> std::io::Result<()> {
        if inner.broken {
            return Err(failure(
                &self.path,
                "cannot write the transaction log",
                "an earlier failed write could not be cut off; restart the gateway (the log is trimmed when opened)",
            ));
        }
        let before = inner.file.metadata().map(|m| m.len());
        inner
            .file
            .write_all(bytes)
            .and_then(|()| {
                if durable {
                    inner.file.sync_data()
                } else {
                    Ok(())
                }
            })
            .map_err(|e| {
                let cut = match before {
                    Ok(before) => inner.file.set_len(before).map_err(|e| e.to_string()),
                    Err(e) => Err(e.to_string()),
                };
                if let Err(cut) = cut {
                    inner.broken = true;
                    tracing::error!(log = %self.path.display(), error = %cut, "cannot cut a failed write off the transaction log: it takes no more records until reopened (trimmed then)");
                }
                failure(&self.path, "cannot write the transaction log", e)
            })
    }

    /// The failures after commit not yet acknowledged.
    pub fn failures(&self) -> std::io::Result<Vec<Failure>> {
        let _held = self.lock();
        Ok(unresolved(&read(&self.path)?))
    }

    /// How `tx` ended as the file records it: `Some(true)` committed,
    /// `Some(false)` rolled back, `None` unknown or undecided.
    pub fn outcome(
        &self,
        tx: &str,
    ) -> std::io::Result<Option<(bool, Vec<super::log::PartRecord>)>> {
        let _held = self.lock();
        let mut parts = Vec::new();
        let mut ended = None;
        for record in read(&self.path)? {
            match record {
                Record::Prepared {
                    tx: t, parts: p, ..
                } if t == tx => parts = p,
                Record::Commit { tx: t } | Record::Done { tx: t } if t == tx => ended = Some(true),
                Record::Abort { tx: t } if t == tx => ended = Some(false),
                _ => {}
            }
        }
        Ok(ended.map(|committed| (committed, parts)))
    }

    /// The transactions with no DONE or ABORT.
    pub fn in_doubt(&self) -> std::io::Result<Vec<InDoubt>> {
        let _held = self.lock();
        Ok(fold(read(&self.path)?))
    }

    /// Rewrites the log with only what is still in doubt (atomically: a
    /// new file renamed over the old one).
    fn compact(&self, inner: &mut Inner) -> std::io::Result<()> {
        let records = read(&self.path)?;
        let open: Vec<String> = fold(records.clone()).into_iter().map(|d| d.tx).collect();
        let failed: Vec<String> = unresolved(&records).into_iter().map(|f| f.tx).collect();
        // Ended within the window a retried Commit is answered in: kept.
        let since = omnigate_drivers::ts::now_millis()
            - i64::try_from(super::registry::REMEMBER_ENDED.as_millis()).unwrap_or(i64::MAX);
        let recent: Vec<&str> = records
            .iter()
            .filter_map(|r| match r {
                Record::Prepared {
                    tx, at: Some(at), ..
                } if *at >= since => Some(tx.as_str()),
                _ => None,
            })
            .collect();
        let keep: Vec<&Record> = records
            .iter()
            .filter(|r| match r {
                Record::Log { .. } => true,
                Record::Prepared { tx, .. }
                | Record::Commit { tx }
                | Record::Done { tx }
                | Record::Abort { tx } => open.contains(tx) || recent.contains(&tx.as_str()),
                Record::FailedAfterCommit { tx, .. } => failed.contains(tx),
                _ => false,
            })
            .collect();
        let mut fresh = self.path.clone().into_os_string();
        fresh.push(".compacting");
        let fresh = PathBuf::from(fresh);
        {
            let mut out = File::create(&fresh)
                .map_err(|e| failure(&fresh, "cannot compact the transaction log into", e))?;
            for record in keep {
                let mut line = serde_json::to_vec(record)
                    .map_err(|e| failure(&fresh, "cannot encode a record for", e))?;
                line.push(b'\n');
                out.write_all(&line)?;
            }
            out.sync_all()?;
        }
        let file = OpenOptions::new().read(true).append(true).open(&fresh)?;
        file.try_lock()
            .map_err(|e| failure(&fresh, "cannot lock the compacted log", e))?;
        std::fs::rename(&fresh, &self.path)?;
        // The path names the new file now: appends go to it whatever follows.
        inner.file = file;
        // The rename is durable only once its directory is; failing that,
        // a crash may bring the old file back, which holds every record the
        // new one does (and more): warned of, not fatal.
        if let Err(e) = sync_dir(&self.path) {
            tracing::warn!(log = %self.path.display(), error = %e, "the compacted transaction log's directory could not be synced");
        }
        Ok(())
    }
}

/// A record as one line.
fn encode(path: &Path, record: &Record) -> std::io::Result<Vec<u8>> {
    let mut line =
        serde_json::to_vec(record).map_err(|e| failure(path, "cannot encode a record for", e))?;
    line.push(b'\n');
    Ok(line)
}

/// Cuts a torn last record (a crash, ENOSPC or EIO mid-write) off the
/// file: its step was never taken, and left there the next record would be
/// glued to it and lost with it.
fn trim_torn(file: &File, path: &Path) -> std::io::Result<()> {
    let bytes =
        std::fs::read(path).map_err(|e| failure(path, "cannot read the transaction log", e))?;
    let whole = bytes.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
    if whole < bytes.len() {
        tracing::warn!(log = %path.display(), bytes = bytes.len() - whole, "cutting a torn last record off the transaction log (a write that never finished; its step was not taken)");
        file.set_len(whole as u64)
            .and_then(|()| file.sync_all())
            .map_err(|e| failure(path, "cannot trim the torn end of the transaction log", e))?;
    }
    Ok(())
}

/// Makes a rename in `path`'s directory durable.
fn sync_dir(path: &Path) -> std::io::Result<()> {
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| failure(dir, "cannot sync the directory of the transaction log", e))
}

/// Every record of the file; a torn last line (a crash mid-write, before
/// the log was reopened and trimmed) is ignored, since its step was never
/// taken. Lines are read as bytes: a torn multi-byte character is one
/// unreadable line, not an unreadable log.
fn read(path: &Path) -> std::io::Result<Vec<Record>> {
    let file = File::open(path).map_err(|e| failure(path, "cannot read the transaction log", e))?;
    let mut records = Vec::new();
    for line in BufReader::new(file).split(b'\n') {
        let line = line?;
        if line.trim_ascii().is_empty() {
            continue;
        }
        match serde_json::from_slice(&line) {
            Ok(record) => records.push(record),
            Err(e) => {
                tracing::warn!(log = %path.display(), error = %e, "skipping an unreadable log line")
            }
        }
    }
    Ok(records)
}

/// What the records leave in doubt, in the order begun.
fn fold(records: Vec<Record>) -> Vec<InDoubt> {
    let mut open: Vec<InDoubt> = Vec::new();
    let mut index: HashMap<String, usize> = HashMap::new();
    for record in records {
        match record {
            Record::Prepared { tx, parts, at } => {
                index.insert(tx.clone(), open.len());
                open.push(InDoubt {
                    tx,
                    parts,
                    committed: false,
                    at_ms: at,
                });
            }
            Record::Commit { tx } => {
                if let Some(&i) = index.get(&tx) {
                    open[i].committed = true;
                }
            }
            Record::Done { tx } | Record::Abort { tx } => {
                if let Some(i) = index.remove(&tx) {
                    open[i].tx.clear();
                }
            }
            Record::Log { .. } | Record::FailedAfterCommit { .. } | Record::Resolved { .. } => {}
        }
    }
    open.retain(|d| !d.tx.is_empty());
    open
}

/// The failures after commit no Resolved record acknowledged.
fn unresolved(records: &[Record]) -> Vec<Failure> {
    let mut failures: Vec<Failure> = Vec::new();
    for record in records {
        match record {
            Record::FailedAfterCommit {
                tx,
                engine,
                why,
                redo,
            } => failures.push(Failure {
                tx: tx.clone(),
                engine: engine.clone(),
                why: why.clone(),
                redo: redo.clone(),
            }),
            Record::Resolved { tx } => failures.retain(|f| &f.tx != tx),
            _ => {}
        }
    }
    failures
}

#[cfg(test)]
#[path = "file_log_tests.rs"]
mod tests;
