//! What the crash trials know of each transaction (what its client heard)
//! and what the engines show, and how the two are judged: whole or
//! partial, applied once or twice, reported truly or not.

use std::collections::{BTreeMap, BTreeSet};

use super::{Engine, SHAPES};

/// What a client heard of its transaction's commit.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(super) enum Claim {
    /// Nothing it can act on (the kill cut the call, or "in doubt").
    #[default]
    Unknown,
    /// OK.
    Committed,
    /// Committed, but a buffered engine failed a write as it was applied.
    FailedAfterCommit,
    /// Rolled back (ABORTED, or FAILED_PRECONDITION "rolled back").
    RolledBack,
    /// NOT_FOUND: the gateway says it knows no such transaction, which is
    /// false of one that committed.
    NotFound,
}

/// A transaction a client began.
#[derive(Debug, Clone, Default)]
pub(super) struct Begun {
    /// Its value on every engine.
    pub(super) k: i64,
    /// Its shape (see `SHAPES`).
    pub(super) shape: usize,
    /// Its id.
    pub(super) tx: String,
    /// Its Commit was sent.
    pub(super) commit_sent: bool,
    /// What its client last heard of the commit.
    pub(super) claim: Claim,
    /// Its Commit was sent again (cut by its deadline, or by a kill).
    pub(super) retried: bool,
    /// Its Commit did not return within the call limit.
    pub(super) hung: bool,
}

impl Begun {
    /// Notes a Commit's answer.
    pub(super) fn hear(&mut self, answer: Result<(), tonic::Status>) {
        let claim = super::io::claim(answer);
        if claim != Claim::Unknown || self.claim == Claim::Unknown {
            self.claim = claim;
        }
    }

    /// The Commit said OK.
    pub(super) fn committed(&self) -> bool {
        self.claim == Claim::Committed
    }

    /// The engines of its shape it was found on.
    pub(super) fn found_on(&self, found: &Found) -> Vec<Engine> {
        SHAPES[self.shape]
            .iter()
            .copied()
            .filter(|e| found.on.get(e).is_some_and(|ks| ks.contains(&self.k)))
            .collect()
    }

    /// On some engines but not all; or said committed and found nowhere
    /// (a lost commit); or one of its two Redis writes applied without the
    /// other, whatever its client heard. A failed-after-commit transaction
    /// missing from an engine is the documented window, counted apart.
    pub(super) fn is_broken(&self, found: &Found) -> bool {
        let here = self.found_on(found).len();
        let partial = here != 0 && here != SHAPES[self.shape].len();
        let split = found.split.contains(&self.k);
        split
            || ((partial || (self.committed() && here == 0))
                && self.claim != Claim::FailedAfterCommit)
    }

    /// Its client heard an outcome the engines contradict: committed but
    /// not everywhere, or rolled back but somewhere.
    pub(super) fn is_misreported(&self, found: &Found) -> bool {
        let here = self.found_on(found).len();
        match self.claim {
            Claim::Committed => here != SHAPES[self.shape].len(),
            Claim::RolledBack => here != 0,
            Claim::NotFound => here != 0,
            Claim::Unknown | Claim::FailedAfterCommit => false,
        }
    }

    /// A non-idempotent write of it was applied more than once.
    pub(super) fn is_applied_twice(&self, found: &Found) -> bool {
        found.twice.iter().any(|(_, k)| *k == self.k)
    }
}

/// What the engines hold of a trial's transactions.
#[derive(Debug, Clone, Default)]
pub(super) struct Found {
    /// Each engine's values.
    pub(super) on: BTreeMap<Engine, BTreeSet<i64>>,
    /// Values whose non-idempotent write (Redis INCR, the graph counter)
    /// was applied more than once.
    pub(super) twice: BTreeSet<(Engine, i64)>,
    /// Values whose Redis counter is there without its partner key (one
    /// write of the pair applied, the other failed).
    pub(super) split: BTreeSet<i64>,
}

/// The transactions of `begun` that are not whole (see `Begun::is_broken`).
pub(super) fn broken<'a>(begun: &'a [Begun], found: &Found) -> Vec<&'a Begun> {
    begun.iter().filter(|b| b.is_broken(found)).collect()
}
