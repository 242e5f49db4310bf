//! Behavioural tests every driver of a dialect must pass, written once as
//! plain async functions taking `&dyn StorageDriver` (in the manner of
//! object_store's `integration.rs`). Each driver's tests call them; they
//! panic with a description on the first difference.

#![allow(clippy::unwrap_used, clippy::missing_panics_doc)]

pub mod redis;
pub mod sql;

use crate::{Dialect, Error, ExecuteOptions, Statement, StorageDriver, Value};

/// Runs `text` with `params` and returns the first value of the first row.
pub async fn value(
    driver: &dyn StorageDriver,
    dialect: Dialect,
    text: &str,
    params: &[Value],
) -> Value {
    let statement = Statement {
        text: text.to_owned(),
        params: params.to_vec(),
    };
    match driver
        .execute(dialect, &statement, &ExecuteOptions::default())
        .await
    {
        Ok(result) => result
            .rows
            .into_iter()
            .next()
            .and_then(|r| r.into_iter().next())
            .unwrap_or(Value::Null),
        Err(e) => panic!(
            "{} on {}: `{text}` failed: {e}",
            dialect,
            driver.descriptor().name
        ),
    }
}

/// Runs `text` with `params`, which must fail, and returns the error.
pub async fn error(
    driver: &dyn StorageDriver,
    dialect: Dialect,
    text: &str,
    params: &[Value],
) -> Error {
    let statement = Statement {
        text: text.to_owned(),
        params: params.to_vec(),
    };
    match driver
        .execute(dialect, &statement, &ExecuteOptions::default())
        .await
    {
        Ok(result) => panic!(
            "`{text}` should fail on {} but returned {result:?}",
            driver.descriptor().name
        ),
        Err(e) => e,
    }
}
