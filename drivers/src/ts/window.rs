//! When a query is evaluated: an instant, or a range with a step, from
//! the request's options or from `$1` (time) / `$1..$3` (start, end, step).

use std::time::Duration;

use super::TsOptions;
use crate::{Error, Result, Statement, Timestamp, Value};

/// The default step of a range query.
const DEFAULT_STEP: Duration = Duration::from_secs(60);

/// When a query is evaluated, in milliseconds since the epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum When {
    /// At one time.
    Instant(i64),
    /// From `start` to `end` (both included) every `step`.
    Range {
        /// The first evaluation time.
        start: i64,
        /// The last evaluation time (at most).
        end: i64,
        /// Between evaluations; at least one millisecond.
        step: i64,
    },
}

impl When {
    /// The evaluation times.
    pub fn times(self) -> impl Iterator<Item = i64> {
        let (start, end, step) = match self {
            When::Instant(t) => (t, t, 1),
            When::Range { start, end, step } => (start, end, step),
        };
        (0..)
            .map(move |i: i64| start + i * step)
            .take_while(move |t| *t <= end)
    }

    /// How many evaluation times.
    pub fn points(self) -> i64 {
        match self {
            When::Instant(_) => 1,
            When::Range { start, end, step } => (end - start) / step + 1,
        }
    }
}

fn millis(t: &Timestamp) -> i64 {
    t.unix_micros.div_euclid(1000)
}

/// The window of a query statement.
pub(super) fn when(statement: &Statement, options: &TsOptions, now: i64) -> Result<When> {
    // A bad window is named as the client gave it: `$3`, or `options.ts.step`.
    let from_params = !statement.params.is_empty();
    let bad = |index: usize, option: &str, message: &str| {
        if from_params {
            Error::param(index, message)
        } else {
            Error::InvalidStatement(crate::EngineError::new(
                "gateway",
                None,
                format!("options.ts.{option}: {message}"),
            ))
        }
    };
    let (time, start, end, step) = match statement.params.as_slice() {
        [] => (
            options.time.as_ref().map(millis),
            options.start.as_ref().map(millis),
            options.end.as_ref().map(millis),
            options.step,
        ),
        [time] => (Some(instant(1, time)?), None, None, None),
        [start, end, step] => (
            None,
            Some(instant(1, start)?),
            Some(instant(2, end)?),
            Some(interval(3, step)?),
        ),
        _ => {
            return Err(Error::param(
                statement.params.len(),
                "a query takes $1 (time) or $1..$3 (start, end, step)",
            ));
        }
    };
    let Some(start) = start else {
        if end.is_some() || step.is_some() {
            return Err(bad(
                1,
                "start",
                "a range query needs a start (options.ts.start or $1)",
            ));
        }
        return Ok(When::Instant(time.unwrap_or(now)));
    };
    let end = end.unwrap_or(now);
    let step = i64::try_from(step.unwrap_or(DEFAULT_STEP).as_millis()).unwrap_or(i64::MAX);
    if step < 1 {
        return Err(bad(3, "step", "the step must be at least 1ms"));
    }
    if end < start {
        return Err(bad(2, "end", "the end is before the start"));
    }
    Ok(When::Range { start, end, step })
}

fn instant(index: usize, value: &Value) -> Result<i64> {
    match value {
        Value::Timestamp(t) => Ok(millis(t)),
        Value::Int(seconds) => seconds
            .checked_mul(1000)
            .ok_or_else(|| Error::param(index, "the time is out of range")),
        Value::Float(seconds) if seconds.is_finite() => Ok((seconds * 1000.0).round() as i64),
        Value::String(text) => chrono::DateTime::parse_from_rfc3339(text)
            .map(|t| t.timestamp_millis())
            .map_err(|_| {
                Error::param(
                    index,
                    "a time is a timestamp, unix seconds, or RFC 3339 text",
                )
            }),
        other => Err(Error::param(
            index,
            format!(
                "a time is a timestamp, unix seconds, or RFC 3339 text, not a {}",
                other.kind_name()
            ),
        )),
    }
}

fn interval(index: usize, value: &Value) -> Result<Duration> {
    let bad = || Error::param(index, "a step is an interval, seconds, or text like 15s");
    match value {
        Value::Interval(i) if i.months == 0 && i.micros >= 0 && i.days >= 0 => {
            let micros = i.micros + i64::from(i.days) * 86_400_000_000;
            Ok(Duration::from_micros(
                u64::try_from(micros).map_err(|_| bad())?,
            ))
        }
        Value::Int(seconds) => u64::try_from(*seconds)
            .map(Duration::from_secs)
            .map_err(|_| bad()),
        Value::Float(seconds) => Duration::try_from_secs_f64(*seconds).map_err(|_| bad()),
        Value::String(text) => humantime::parse_duration(text).map_err(|_| bad()),
        _ => Err(bad()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn params_give_an_instant_or_a_range() {
        let now = 1_700_000_000_000;
        let none = Statement::new("up");
        assert_eq!(
            when(&none, &TsOptions::default(), now).unwrap(),
            When::Instant(now)
        );
        let instant = Statement::new("up").bind(1_600_000_000i64);
        assert_eq!(
            when(&instant, &TsOptions::default(), now).unwrap(),
            When::Instant(1_600_000_000_000)
        );
        let range = Statement::new("up")
            .bind("2023-11-14T22:13:20Z")
            .bind(1_700_000_060i64)
            .bind("15s");
        let got = when(&range, &TsOptions::default(), now).unwrap();
        assert_eq!(
            got,
            When::Range {
                start: 1_700_000_000_000,
                end: 1_700_000_060_000,
                step: 15_000
            }
        );
        assert_eq!(got.points(), 5);
        assert_eq!(got.times().last(), Some(1_700_000_060_000));
    }

    #[test]
    fn bad_windows_name_the_parameter() {
        let backwards = Statement::new("up").bind(10i64).bind(5i64).bind(1i64);
        let err = when(&backwards, &TsOptions::default(), 0).unwrap_err();
        assert!(
            matches!(err, Error::InvalidParameter { index: 2, .. }),
            "{err}"
        );
        let two = Statement::new("up").bind(1i64).bind(2i64);
        assert!(when(&two, &TsOptions::default(), 0).is_err());
        let bad_step = Statement::new("up").bind(1i64).bind(2i64).bind("soon");
        assert!(matches!(
            when(&bad_step, &TsOptions::default(), 0).unwrap_err(),
            Error::InvalidParameter { index: 3, .. }
        ));
    }
}
