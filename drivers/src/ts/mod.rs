//! The `ts` dialect, shared by its engines (`victoriametrics`, `memory`):
//! what a statement is (a line-protocol write, a PromQL query, or a
//! `DELETE` of series), its time window, and its result rows.
//!
//! A statement that parses as line protocol writes; `DELETE <selector>`
//! deletes the matching series (only with `allow_delete`); anything else is
//! a PromQL / MetricsQL expression, evaluated at `time` (an instant query)
//! or over `start`..`end` every `step` (a range query).

pub mod lineproto;
mod rows;
mod stream;
mod window;

pub use rows::{Series, columns, describe_objects, series_rows};
pub use stream::{slices, stream_slices};
pub use window::When;

pub use crate::options::{Precision, TsOptions};

use crate::{EngineError, Error, ExecuteOptions, Result, Statement};

/// One point to write: a series (name and labels) and a value.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    /// The metric name (`{measurement}_{field}`).
    pub name: String,
    /// The labels, sorted by name.
    pub labels: Vec<(String, String)>,
    /// Milliseconds since the epoch; `None`: the engine's current time.
    pub millis: Option<i64>,
    /// The value.
    pub value: f64,
}

/// What a `ts` statement does.
#[derive(Debug)]
pub enum TsStatement {
    /// Writes the statement's text, which is line protocol: these samples
    /// (`None` when the engine asked only for a count), and how many.
    Write {
        /// The samples, when asked for.
        samples: Option<Vec<Sample>>,
        /// How many samples the text holds.
        count: u64,
    },
    /// Evaluates an expression.
    Query {
        /// The expression as written.
        text: String,
        /// The parsed expression; `None` for MetricsQL that PromQL's parser
        /// does not read, passed to an engine that reads it.
        expr: Option<promql_parser::parser::Expr>,
        /// When.
        when: When,
    },
    /// Deletes the series a selector matches.
    Delete {
        /// The selector as written.
        selector: String,
        /// The parsed selector.
        parsed: promql_parser::parser::VectorSelector,
    },
}

/// How an engine reads `ts` statements.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reader {
    /// The memory engine: writes as samples; PromQL only.
    InProcess,
    /// VictoriaMetrics: writes checked and counted but sent as they are;
    /// text that is neither PromQL nor line protocol goes to the server as
    /// MetricsQL.
    Server,
}

/// Reads a statement of the `ts` dialect.
pub fn classify(
    kind: &'static str,
    statement: &Statement,
    options: &ExecuteOptions,
    now_millis: i64,
    reader: Reader,
) -> Result<TsStatement> {
    let metricsql = reader == Reader::Server;
    let text = statement.text.trim();
    let bad = |message: String| Error::InvalidStatement(EngineError::new(kind, None, message));
    // Before any parser: PromQL's parser and every walk of its tree recurse.
    let promql = |text: &str| {
        crate::nesting::check_promql(text).map_err(bad)?;
        Ok::<_, Error>(promql_parser::parser::parse(text))
    };
    if let Some(selector) = strip_keyword(text, "DELETE") {
        if !statement.params.is_empty() {
            return Err(Error::param(1, "DELETE takes no parameters"));
        }
        if !options.ts.allow_delete {
            return Err(Error::Precondition(EngineError::new(
                kind,
                None,
                "DELETE removes whole series: set options.ts.allow_delete to run it",
            )));
        }
        if options.read_only {
            return Err(Error::read_only(
                kind,
                "DELETE writes, but the request is read_only",
            ));
        }
        return match promql(selector)? {
            Ok(promql_parser::parser::Expr::VectorSelector(parsed)) => Ok(TsStatement::Delete {
                selector: selector.to_owned(),
                parsed,
            }),
            Ok(_) => Err(bad(
                "DELETE takes a series selector, e.g. DELETE cpu_usage{host=\"a\"}".into(),
            )),
            Err(e) => Err(bad(format!("bad selector: {}", e.trim()))),
        };
    }
    // Line protocol first when it looks like it: a large write never
    // goes through the PromQL parser. (`up == 1` looks like it too, and
    // falls through to PromQL when it does not parse as line protocol.)
    let line_protocol = looks_like_line_protocol(text);
    let written = if line_protocol {
        if !statement.params.is_empty() {
            return Err(Error::param(1, "line-protocol writes take no parameters"));
        }
        let parsed = match reader {
            Reader::InProcess => lineproto::parse(kind, text, options.ts.precision)
                .map(|samples| (samples.len() as u64, Some(samples))),
            Reader::Server => lineproto::check(kind, text, options.ts.precision).map(|n| (n, None)),
        };
        match parsed {
            Ok(_) if options.read_only => {
                return Err(Error::read_only(
                    kind,
                    "line protocol writes, but the request is read_only",
                ));
            }
            Ok((count, samples)) => return Ok(TsStatement::Write { samples, count }),
            Err(e) => Some(e),
        }
    } else {
        None
    };
    let (parsed, written) = match (promql(text), written) {
        (Ok(parsed), written) => (parsed, written),
        // Text meant as line protocol gets the line-protocol error.
        (Err(_), Some(line_error)) => return Err(line_error),
        (Err(too_deep), None) => return Err(too_deep),
    };
    match parsed {
        Ok(expr) => Ok(TsStatement::Query {
            text: text.to_owned(),
            expr: Some(expr),
            when: window::when(statement, &options.ts, now_millis)?,
        }),
        Err(promql_error) => match written {
            Some(line_error) => Err(line_error),
            None if metricsql => Ok(TsStatement::Query {
                text: text.to_owned(),
                expr: None,
                when: window::when(statement, &options.ts, now_millis)?,
            }),
            None => Err(bad(format!("bad PromQL: {}", promql_error.trim()))),
        },
    }
}

/// Milliseconds since the epoch, now.
pub fn now_millis() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

fn strip_keyword<'a>(text: &'a str, keyword: &str) -> Option<&'a str> {
    let head = text.get(..keyword.len())?;
    let rest = &text[keyword.len()..];
    (head.eq_ignore_ascii_case(keyword) && rest.starts_with(char::is_whitespace))
        .then(|| rest.trim())
}

/// Whether text that is not PromQL was meant as line protocol: its first
/// line has a field set (`key=value` after the series, outside braces and
/// parentheses).
fn looks_like_line_protocol(text: &str) -> bool {
    let first = text.lines().find(|l| !l.trim().is_empty()).unwrap_or("");
    if first.contains('(') || first.contains('{') || first.contains('[') {
        return false;
    }
    let mut escaped = false;
    for (i, c) in first.char_indices() {
        match c {
            '\\' if !escaped => escaped = true,
            ' ' if !escaped => return first[i..].contains('='),
            _ => escaped = false,
        }
    }
    false
}

/// A label set's matchers from a selector: `__name__` from the name and
/// every matcher, for the memory engine.
pub fn selector_matchers(
    selector: &promql_parser::parser::VectorSelector,
) -> Vec<promql_parser::label::Matcher> {
    let mut matchers = selector.matchers.matchers.clone();
    if let Some(name) = &selector.name {
        matchers.push(promql_parser::label::Matcher::new(
            promql_parser::label::MatchOp::Equal,
            "__name__",
            name,
        ));
    }
    matchers
}

#[cfg(test)]
mod tests {
    use super::*;

    fn classify_text(text: &str, options: &ExecuteOptions) -> Result<TsStatement> {
        classify(
            "test",
            &Statement::new(text),
            options,
            1_700_000_000_000,
            Reader::InProcess,
        )
    }

    #[test]
    fn line_protocol_writes_promql_queries_and_delete_deletes() {
        let options = ExecuteOptions::default();
        assert!(matches!(
            classify_text("cpu,host=a usage=1 1", &options),
            Ok(TsStatement::Write { .. })
        ));
        assert!(matches!(
            classify_text("sum by (host) (rate(cpu_usage[5m]))", &options),
            Ok(TsStatement::Query { .. })
        ));
        let delete = classify_text("DELETE cpu_usage{host=\"a\"}", &options).unwrap_err();
        assert!(delete.to_string().contains("allow_delete"), "{delete}");
        let allowed = ExecuteOptions {
            ts: TsOptions {
                allow_delete: true,
                ..TsOptions::default()
            },
            ..ExecuteOptions::default()
        };
        assert!(matches!(
            classify_text("delete cpu_usage{host=\"a\"}", &allowed),
            Ok(TsStatement::Delete { .. })
        ));
    }

    #[test]
    fn bad_text_gets_the_error_of_what_it_looks_like() {
        let options = ExecuteOptions::default();
        let lp = classify_text("cpu,host=a usage=oops", &options).unwrap_err();
        assert!(lp.to_string().contains("line 1"), "{lp}");
        let promql = classify_text("sum(rate(cpu[5m]", &options).unwrap_err();
        assert!(promql.to_string().contains("bad PromQL"), "{promql}");
        let read_only = ExecuteOptions {
            read_only: true,
            ..ExecuteOptions::default()
        };
        assert!(matches!(
            classify_text("cpu usage=1", &read_only),
            Err(Error::ReadOnly(_))
        ));
    }
}
