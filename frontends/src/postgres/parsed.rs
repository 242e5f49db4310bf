//! The statements a session has parsed outside a transaction block, by
//! text. Drivers send the same statement's `Parse` with every call
//! (pgbench `-M extended`, JDBC, node-postgres, asyncpg: an unnamed
//! statement each time), and a text seen before takes its description
//! from here instead of from the engine again, which cost a pooled
//! connection and the route's checks (about a tenth of the gateway's CPU
//! per call). The run itself is checked and admitted as any call is.
//!
//! An entry holds while the session's engine is the one configured when
//! it was described, that engine has run no schema change since (its
//! [schema epoch](omnigate::drivers::SchemaEpoch)) and the caller is the
//! same (a reload that changes a principal's grant makes a new one). A
//! table changed outside the gateway is seen when a statement runs: the
//! driver moves the epoch when a kept statement had to be prepared anew,
//! and a call refused as a changed statement would be (class 42, `0A000`)
//! or a result whose columns are not the ones described drops its entry,
//! so the next `Parse` asks the engine.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};

use omnigate::drivers::StorageDriver;
use omnigate::security::Principal;

use super::extended::Prepared;

/// How many texts one session keeps described; past that, a new one
/// takes the place of one kept.
const MAX_PARSED: usize = 256;

/// The longest text kept (a statement sent again and again is short).
const MAX_TEXT: usize = 4 * 1024;

/// What a description was made under (see the module docs).
#[derive(Clone)]
pub(super) struct Under {
    /// The engine's driver: weak, so that a driver a reload replaced is
    /// not kept (its pools with it) by an idle session. Held, its address
    /// is never another driver's.
    driver: Weak<dyn StorageDriver>,
    epoch: u64,
    caller: Option<Arc<Principal>>,
}

impl Under {
    /// The conditions now, for a session on `driver` as `caller`.
    pub(super) fn now(driver: &Arc<dyn StorageDriver>, caller: Option<Arc<Principal>>) -> Under {
        Under {
            driver: Arc::downgrade(driver),
            epoch: driver.schema_epoch(),
            caller,
        }
    }

    fn same(&self, other: &Under) -> bool {
        Weak::ptr_eq(&self.driver, &other.driver)
            && self.epoch == other.epoch
            && match (&self.caller, &other.caller) {
                (Some(a), Some(b)) => Arc::ptr_eq(a, b),
                (None, None) => true,
                _ => false,
            }
    }
}

/// Descriptions made under one set of conditions, by text.
type Kept = Option<(Under, HashMap<Arc<str>, Prepared>)>;

/// One session's described statements.
#[derive(Default)]
pub(super) struct Parsed(Mutex<Kept>);

impl std::fmt::Debug for Parsed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Parsed").finish_non_exhaustive()
    }
}

impl Parsed {
    fn entries(&self) -> MutexGuard<'_, Kept> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// `text`'s description, when it was made under `under`.
    pub(super) fn get(&self, under: &Under, text: &str) -> Option<Prepared> {
        match &*self.entries() {
            Some((made, entries)) if made.same(under) => entries.get(text).cloned(),
            _ => None,
        }
    }

    /// Keeps `prepared`, described under `under` (read before it was).
    pub(super) fn put(&self, under: Under, prepared: Prepared) {
        let text = prepared.text();
        if text.len() > MAX_TEXT {
            return;
        }
        let mut entries = self.entries();
        match &mut *entries {
            Some((made, kept)) if made.same(&under) => {
                if kept.len() >= MAX_PARSED
                    && let Some(any) = kept.keys().next().cloned()
                {
                    kept.remove(&any);
                }
                kept.insert(text, prepared);
            }
            _ => *entries = Some((under, HashMap::from([(text, prepared)]))),
        }
    }

    /// Drops `text`'s description: a call of it failed, or its result had
    /// other columns (the statement may have changed since).
    pub(super) fn forget(&self, text: &str) {
        if let Some((_, kept)) = &mut *self.entries() {
            kept.remove(text);
        }
    }
}
