//! What the driver keeps of statements across calls (each connection's
//! prepared statements, the parameter types by text) follows the schema:
//! a schema change drops it, and a statement that fails as one prepared
//! before a table changed would is prepared anew.

use deadpool_postgres::Object;

use super::types_cache::StatementTypes;
use crate::Error;

/// Whether PostgreSQL refused a cached plan because a table changed under it.
pub(super) fn is_stale_plan(err: &Error) -> bool {
    matches!(err, Error::NotSupported { operation, .. } if operation.contains("cached plan must not change result type"))
}

/// Whether `err` may come of a statement prepared before a table changed
/// (a column's or a parameter's type, a table dropped: SQLSTATE class 42
/// but a denial), so that the statement is prepared anew rather than kept.
pub(super) fn may_be_stale(err: &Error) -> bool {
    err.engine_code()
        .is_some_and(|code| code.starts_with("42") && code != "42501")
}

/// Whether `text`, kept prepared on `client`, takes other parameter types
/// now than when it was prepared (a column it compares or writes changed
/// type): it is prepared anew, and kept, to see. Such a statement failed
/// as it was planned, before anything ran. `false` when it was not kept:
/// the failure of a statement prepared for its call is its own.
pub(super) async fn params_changed(client: &Object, types: &StatementTypes, text: &str) -> bool {
    let Some(old) = client.statement_cache.remove(text, &[]) else {
        return false;
    };
    types.forget(text);
    match client.prepare_cached(text).await {
        Ok(new) => new.params() != old.params(),
        Err(_) => false,
    }
}

/// Drops what is kept of `text`: on `client`, and its parameter types.
pub(super) fn forget(client: Option<&Object>, types: &StatementTypes, text: &str) {
    if let Some(client) = client {
        client.statement_cache.remove(text, &[]);
    }
    types.forget(text);
}

/// Drops everything kept: on `client`, and every parameter type (after a
/// schema change).
pub(super) fn forget_all(client: Option<&Object>, types: &StatementTypes) {
    if let Some(client) = client {
        client.statement_cache.clear();
    }
    types.clear();
}
