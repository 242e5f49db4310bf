//! Calls on a driver's own transaction that must succeed, for tests.

use omnigate_drivers::{Dialect, DriverTransaction, ExecuteOptions, Statement};

/// Sends `text` in `tx` (a buffered engine queues it); it must succeed.
pub async fn queue(tx: &mut Box<dyn DriverTransaction>, dialect: Dialect, text: &str) {
    tx.execute(dialect, &Statement::new(text), &ExecuteOptions::default())
        .await
        .unwrap_or_else(|e| panic!("`{text}` is queued: {e}"));
}
