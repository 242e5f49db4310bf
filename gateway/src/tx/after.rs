//! What follows a cross-engine commit's decision: a buffered engine's
//! failure after commit recorded for operators (with the writes it was to
//! apply), and the buffered engines' markers let go of once the
//! transaction has finished everywhere.

use std::sync::Arc;

use omnigate_drivers::StorageDriver;

use super::coordinator::Coordinator;
use super::log::{PartRecord, Record};
use crate::error::Error;

impl Coordinator {
    /// Records a transaction that committed but whose buffered engine
    /// failed a write as it was applied: for operators (in the log, opened
    /// now if it was not; in the error log and the counters if it cannot
    /// be).
    pub(super) async fn failed_after_commit(
        &self,
        tx: &str,
        engine: String,
        why: String,
        redo: Vec<Vec<String>>,
    ) -> Error {
        let record = Record::FailedAfterCommit {
            tx: tx.to_owned(),
            engine: engine.clone(),
            why: why.clone(),
            redo,
        };
        let recorded = match self.log().await {
            Ok(log) => self
                .log_step(log.append(record, true))
                .await
                .map_err(|e| e.to_string()),
            Err(e) => Err(e.to_string()),
        };
        if let Err(e) = recorded {
            tracing::error!(tx_id = %tx, engine = %engine, error = %e, "cannot record a failure after commit in the transaction log");
        }
        tracing::error!(tx_id = %tx, engine = %engine, why = %why, "transaction failed after commit");
        self.counters
            .failed_after_commit
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Error::TxFailedAfterCommit { engine, why }
    }
}

/// The writes `engine`'s buffered part of `record` was to apply.
pub(super) fn redo_of(record: &[PartRecord], engine: &str) -> Vec<Vec<String>> {
    record
        .iter()
        .filter_map(PartRecord::buffered)
        .find(|(e, _)| *e == engine)
        .map(|(_, redo)| redo.to_vec())
        .unwrap_or_default()
}

/// A buffered engine, its first redo entry and its marker, to let go of
/// the marker.
pub(super) type BufferedMarker = (
    Arc<dyn StorageDriver>,
    Option<omnigate_drivers::Redo>,
    String,
);

/// Lets go of transaction `tx`'s markers on its buffered engines (see
/// `StorageDriver::forget_marker`): it has finished everywhere, and its
/// deciding record is gone.
pub(super) async fn forget_buffered(tx: &str, engines: Vec<BufferedMarker>) {
    for (driver, head, marker) in engines {
        if let Err(e) = driver.forget_marker(&marker, head.as_ref()).await {
            tracing::debug!(tx_id = %tx, engine = %driver.descriptor().name, error = %e, "letting go of a finished transaction's marker");
        }
    }
}
