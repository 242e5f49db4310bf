//! VictoriaMetrics' HTTP errors as meaning-based errors.

use super::KIND;
use crate::{EngineError, Error};

/// The error of a request that could not be sent or answered.
pub(super) fn from_reqwest(err: reqwest::Error, limit: Option<std::time::Duration>) -> Error {
    if err.is_timeout() && !err.is_connect() {
        return Error::Timeout {
            after: limit.unwrap_or_default(),
        };
    }
    let message = format!("cannot talk to VictoriaMetrics: {}", without_url(&err));
    Error::Unavailable(EngineError::new(KIND, None, message).with_source(err))
}

/// reqwest's message without the URL (which holds the query).
fn without_url(err: &reqwest::Error) -> String {
    let mut source: Option<&dyn std::error::Error> = std::error::Error::source(err);
    let mut last = None;
    while let Some(e) = source {
        last = Some(e.to_string());
        source = e.source();
    }
    last.unwrap_or_else(|| {
        if err.is_connect() {
            "connection failed".into()
        } else {
            "request failed".into()
        }
    })
}

/// The error of a non-success answer: VictoriaMetrics' own message, without
/// its echo of the query.
pub(super) fn from_status(status: u16, body: &str) -> Error {
    let message = serde_json::from_str::<serde_json::Value>(body)
        .ok()
        .and_then(|v| v.get("error").and_then(|e| e.as_str()).map(str::to_owned))
        .unwrap_or_else(|| body.trim().to_owned());
    let message = match message.split_once("): ") {
        Some((head, rest)) if head.starts_with("error when executing query") => rest.to_owned(),
        _ => message,
    };
    let report = EngineError::new(KIND, Some(&status.to_string()), message);
    match status {
        400 | 422 => Error::InvalidStatement(report),
        404 => Error::NotFound(report),
        401 | 403 => Error::PermissionDenied(report),
        429 | 503 => Error::Overloaded(report),
        502 | 504 => Error::Unavailable(report),
        _ => Error::Internal(report),
    }
}

#[cfg(test)]
mod tests {
    use super::from_status;
    use crate::Error;

    #[test]
    fn answers_map_by_status_without_the_query_echo() {
        let body = r#"{"status":"error","errorType":"422","error":"error when executing query=\"sum(\" for (time=1, step=300000): argList: unexpected token"}"#;
        match from_status(422, body) {
            Error::InvalidStatement(report) => {
                assert_eq!(report.message, "argList: unexpected token");
                assert_eq!(report.code.as_deref(), Some("422"));
            }
            other => panic!("{other}"),
        }
        assert!(matches!(
            from_status(503, "too many requests"),
            Error::Overloaded(_)
        ));
        assert!(matches!(from_status(429, ""), Error::Overloaded(_)));
        assert!(matches!(from_status(500, "boom"), Error::Internal(_)));
    }
}
