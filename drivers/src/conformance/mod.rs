//! Behavioural tests every driver of a dialect must pass, written once as
//! plain async functions taking `&dyn StorageDriver` (in the manner of
//! object_store's `integration.rs`). Each driver's tests call them; they
//! panic with a description on the first difference.

#![allow(clippy::unwrap_used, clippy::missing_panics_doc)]

pub mod cypher;
pub mod decision;
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
        Ok(result) => result.into_scalar(),
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

/// What every driver checks before anything is sent, whoever calls it (a
/// library user of the driver alone included): the parameter style of the
/// dialect, NUL bytes and empty text, and the nesting of parameters, on
/// `execute` and `execute_stream` alike. `probe` is a statement of
/// `dialect` that runs without parameters.
pub async fn statement_checks(d: &dyn StorageDriver, dialect: Dialect, probe: &str) {
    let engine = &d.descriptor().name;
    let wrong_style = if dialect == Dialect::Cypher {
        Statement::new(probe).bind(1)
    } else {
        Statement::new(probe).bind_named("name", 1)
    };
    let mut deep = Value::Int(1);
    for _ in 0..crate::MAX_DEPTH {
        deep = Value::List(vec![deep]);
    }
    let too_deep = if dialect == Dialect::Cypher {
        Statement::new(probe).bind_named("deep", deep)
    } else {
        Statement::new(probe).bind(deep)
    };
    let style = if dialect == Dialect::Cypher {
        "cypher takes named parameters"
    } else {
        "named parameters are for cypher"
    };
    let cases = [
        (wrong_style, style),
        (Statement::new(format!("{probe}\0")), "NUL byte"),
        (Statement::new(" \n "), "the statement is empty"),
        (too_deep, "at most 32 levels"),
    ];
    for (statement, what) in cases {
        let options = ExecuteOptions::default();
        let err = d.execute(dialect, &statement, &options).await.unwrap_err();
        let refused = matches!(
            err,
            Error::InvalidParameter { .. }
                | Error::InvalidNamedParameter { .. }
                | Error::InvalidStatement(_)
        );
        assert!(
            refused && err.to_string().contains(what),
            "{engine}: {what}: {err}"
        );
        let streamed = d
            .execute_stream(dialect, statement, crate::ExecuteOptions::default())
            .await;
        assert!(
            streamed.is_err(),
            "{engine}: {what} is refused when streamed too"
        );
    }
    d.execute(dialect, &Statement::new(probe), &ExecuteOptions::default())
        .await
        .unwrap_or_else(|e| panic!("{engine}: `{probe}` still runs: {e}"));
}
