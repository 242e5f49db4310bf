//! FalkorDB's error replies as meaning-based errors.

use ::redis::RedisError;

use super::KIND;
use crate::redis_syntax::classify_error;
use crate::{EngineError, Error};

/// Redis error codes whose meaning the shared Redis table knows.
const REDIS_CODES: [&str; 13] = [
    "WRONGTYPE",
    "READONLY",
    "NOSCRIPT",
    "NOPERM",
    "NOAUTH",
    "WRONGPASS",
    "LOADING",
    "BUSY",
    "MASTERDOWN",
    "CLUSTERDOWN",
    "OOM",
    "TRYAGAIN",
    "EXECABORT",
];

/// The error of a failed FalkorDB call.
pub(super) fn from_falkor(err: RedisError) -> Error {
    let Some(code) = err.code() else {
        if err.is_io_error()
            || err.is_connection_dropped()
            || err.is_connection_refusal()
            || err.is_timeout()
        {
            let message = format!("cannot talk to FalkorDB: {err}");
            return Error::Unavailable(EngineError::new(KIND, None, message).with_source(err));
        }
        return Error::Internal(EngineError::new(KIND, None, err.to_string()).with_source(err));
    };
    let code = code.to_owned();
    let full = match err.detail() {
        Some(detail) => format!("{code} {detail}"),
        None => code.clone(),
    };
    if REDIS_CODES.contains(&code.as_str()) {
        return classify_error(KIND, &code, full);
    }
    classify(&full)
}

/// FalkorDB's messages carry no code of their own; they are read by their
/// words. The echo of the query (`errCtx`) is cut off.
fn classify(full: &str) -> Error {
    let message = full
        .split(" errCtx:")
        .next()
        .unwrap_or(full)
        .trim_start_matches("errMsg: ")
        .trim_start_matches("ERR ")
        .trim()
        .to_owned();
    let lower = message.to_ascii_lowercase();
    let report = EngineError::new(KIND, None, message);
    if lower.contains("timed out") {
        // The caller knows the limit and replaces this.
        return Error::Timeout {
            after: std::time::Duration::ZERO,
        };
    }
    if lower.contains("constraint violation") || lower.contains("violates") {
        return Error::ConstraintViolation(report);
    }
    if lower.contains("ro_query is to be executed only on read-only") {
        return Error::Precondition(report);
    }
    if lower.contains("empty key") {
        return Error::NotFound(report);
    }
    if lower.contains("missing parameters") {
        return Error::InvalidStatement(EngineError::new(
            KIND,
            None,
            "the query uses a $parameter that named_params does not give",
        ));
    }
    Error::InvalidStatement(report)
}

#[cfg(test)]
mod tests {
    use super::classify;
    use crate::Error;

    #[test]
    fn messages_map_to_meanings_without_the_query_echo() {
        let syntax = classify(
            "errMsg: Invalid input 'R': expected a label line: 1, column: 10, offset: 9 errCtx: MATCH (n RETURN n errCtxOffset: 9",
        );
        match syntax {
            Error::InvalidStatement(report) => {
                assert!(report.message.starts_with("Invalid input"));
                assert!(!report.message.contains("MATCH"), "{}", report.message);
            }
            other => panic!("{other}"),
        }
        assert!(matches!(
            classify("unique constraint violation on node of type P"),
            Error::ConstraintViolation(_)
        ));
        assert!(matches!(classify("Query timed out"), Error::Timeout { .. }));
        assert!(matches!(
            classify("graph.RO_QUERY is to be executed only on read-only queries"),
            Error::Precondition(_)
        ));
        assert!(matches!(
            classify("Division by zero"),
            Error::InvalidStatement(_)
        ));
    }
}
