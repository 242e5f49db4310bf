//! What transactions did since the gateway started, counted.

use std::sync::atomic::{AtomicU64, Ordering};

use super::Ended;

/// Counts of what transactions did since the gateway started.
#[derive(Debug, Default)]
pub struct TxCounters {
    pub(super) begun: AtomicU64,
    committed: AtomicU64,
    rolled_back: AtomicU64,
    expired: AtomicU64,
    in_doubt_at_end: AtomicU64,
    pub(crate) failed_after_commit: AtomicU64,
    pub(crate) recovered_forward: AtomicU64,
    pub(crate) recovered_backward: AtomicU64,
    pub(crate) orphans_rolled_back: AtomicU64,
}

impl TxCounters {
    pub(super) fn ended(&self, how: Ended) {
        let counter = match how {
            Ended::Committed => &self.committed,
            Ended::RolledBack => &self.rolled_back,
            Ended::Expired => &self.expired,
            Ended::InDoubt => &self.in_doubt_at_end,
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// The counts, by name.
    pub fn snapshot(&self) -> Vec<(String, u64)> {
        let read = |c: &AtomicU64| c.load(Ordering::Relaxed);
        [
            ("begun", &self.begun),
            ("committed", &self.committed),
            ("rolled_back", &self.rolled_back),
            ("expired", &self.expired),
            ("in_doubt_at_end", &self.in_doubt_at_end),
            ("failed_after_commit", &self.failed_after_commit),
            ("recovered_forward", &self.recovered_forward),
            ("recovered_backward", &self.recovered_backward),
            ("orphans_rolled_back", &self.orphans_rolled_back),
        ]
        .into_iter()
        .map(|(name, counter)| (name.to_owned(), read(counter)))
        .collect()
    }
}
