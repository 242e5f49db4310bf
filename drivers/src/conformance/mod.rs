//! Behavioural tests every driver of a dialect must pass, written once as
//! plain async functions taking `&dyn StorageDriver` (in the manner of
//! object_store's `integration.rs`). Each driver's tests call them; they
//! panic with a description on the first difference.

#![allow(clippy::unwrap_used, clippy::missing_panics_doc)]

pub mod cypher;
pub mod redis;
pub mod sql;
pub mod ts;

use crate::{Dialect, Error, ExecuteOptions, Result, ResultSet, Statement, StorageDriver, Value};

/// Runs `text` with `params` and default options.
pub async fn run(
    driver: &dyn StorageDriver,
    dialect: Dialect,
    text: &str,
    params: &[Value],
) -> Result<ResultSet> {
    let statement = Statement {
        text: text.to_owned(),
        params: params.to_vec(),
        named: Vec::new(),
    };
    driver
        .execute(dialect, &statement, &ExecuteOptions::default())
        .await
}

/// Runs `text` with `params` and returns the first value of the first row.
pub async fn value(
    driver: &dyn StorageDriver,
    dialect: Dialect,
    text: &str,
    params: &[Value],
) -> Value {
    match run(driver, dialect, text, params).await {
        Ok(result) => result
            .rows
            .into_iter()
            .next()
            .and_then(|r| r.into_iter().next())
            .unwrap_or(Value::Null),
        Err(e) => panic!(
            "{dialect} on {}: `{text}` failed: {e}",
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
    match run(driver, dialect, text, params).await {
        Ok(result) => panic!(
            "`{text}` should fail on {} but returned {result:?}",
            driver.descriptor().name
        ),
        Err(e) => e,
    }
}
