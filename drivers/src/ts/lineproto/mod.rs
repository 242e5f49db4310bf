//! InfluxDB line protocol (parsed by `influxdb-line-protocol`) as samples,
//! named the way VictoriaMetrics names them: one series per field,
//! `{measurement}_{field}`, the tags as labels.

mod fast;

use influxdb_line_protocol::{Error as LineError, FieldValue, ParsedLine, parse_lines};

use super::{Precision, Sample};
use crate::{EngineError, Error, Result};

/// Parses every line of `text`, or fails naming the first bad line and
/// column. Nothing is returned for a statement with a bad line, so nothing
/// of it is written.
pub fn parse(kind: &'static str, text: &str, precision: Precision) -> Result<Vec<Sample>> {
    let mut samples = Vec::new();
    walk(kind, text, precision, |line, millis| {
        let mut labels: Vec<(String, String)> = line
            .series
            .tag_set
            .iter()
            .flatten()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        labels.sort();
        let measurement = line.series.measurement.as_str();
        for (field, value) in &line.field_set {
            samples.push(Sample {
                name: format!("{measurement}_{}", field.as_str()),
                labels: labels.clone(),
                millis,
                value: number(value).unwrap_or_default(),
            });
        }
    })?;
    Ok(samples)
}

/// Checks every line of `text` as [`parse`] does and counts the samples,
/// without building them (for an engine that takes the text as it is).
pub fn check(kind: &'static str, text: &str, precision: Precision) -> Result<u64> {
    if let Some(count) = fast_check(text, precision) {
        return Ok(count);
    }
    let mut count = 0;
    walk(kind, text, precision, |line, _| {
        count += line.field_set.len() as u64
    })?;
    Ok(count)
}

/// The samples of `text` when every line has the plain shape
/// [`fast::fields`] reads; `None` sends the text through the full parser.
pub(crate) fn fast_check(text: &str, precision: Precision) -> Option<u64> {
    let mut count = 0;
    let mut lines = 0;
    for line in text.lines().filter(|line| !skipped(line)) {
        count += fast::fields(line, precision)?;
        lines += 1;
    }
    (lines > 0).then_some(count)
}

/// Blank lines and comments carry no samples.
fn skipped(line: &str) -> bool {
    line.trim().is_empty() || line.trim_start().starts_with('#')
}

pub(super) fn number(value: &FieldValue<'_>) -> Option<f64> {
    match value {
        FieldValue::F64(f) => Some(*f),
        FieldValue::I64(i) => Some(*i as f64),
        FieldValue::U64(u) => Some(*u as f64),
        FieldValue::Boolean(b) => Some(f64::from(u8::from(*b))),
        FieldValue::String(_) => None,
    }
}

/// Parses and checks each line, handing the good ones to `each` with
/// their time in milliseconds.
fn walk(
    kind: &'static str,
    text: &str,
    precision: Precision,
    mut each: impl FnMut(&ParsedLine<'_>, Option<i64>),
) -> Result<()> {
    let mut lines = 0;
    for (index, line) in text.lines().enumerate() {
        if skipped(line) {
            continue;
        }
        let bad = |column: usize, why: String| {
            Error::InvalidStatement(EngineError::new(
                kind,
                None,
                format!("line protocol, line {} column {column}: {why}", index + 1),
            ))
        };
        let parsed = match parse_lines(line).next() {
            Some(Ok(parsed)) => parsed,
            Some(Err(e)) => return Err(bad(column_of(&e, line), e.to_string())),
            None => continue,
        };
        let millis = parsed
            .timestamp
            .map(|t| precision.to_millis(t))
            .transpose()
            .map_err(|why| bad(line.trim_end().len(), why))?;
        if let Some((field, _)) = parsed.field_set.iter().find(|(_, v)| number(v).is_none()) {
            let column = line.find(field.as_str()).map_or(1, |c| c + 1);
            return Err(bad(
                column,
                format!(
                    "field {:?} is a string; time series hold numbers: write it as a tag, or as a number",
                    field.as_str()
                ),
            ));
        }
        each(&parsed, millis);
        lines += 1;
    }
    if lines == 0 {
        return Err(Error::InvalidStatement(EngineError::new(
            kind,
            None,
            "the statement holds no line-protocol lines to write",
        )));
    }
    Ok(())
}

/// The 1-based column an error points at, as near as the parser tells.
fn column_of(err: &LineError, line: &str) -> usize {
    let find = |needle: &str| line.find(needle).map(|c| c + 1);
    let end = line.trim_end().len() + 1;
    match err {
        LineError::CannotParseEntireLine { trailing_content } => {
            line.len() - trailing_content.len() + 1
        }
        LineError::IntegerValueInvalid { value, .. }
        | LineError::UIntegerValueInvalid { value, .. }
        | LineError::FloatValueInvalid { value, .. }
        | LineError::TimestampValueInvalid { value, .. } => find(value).unwrap_or(end),
        LineError::DuplicateTag { tag_key } => line
            .match_indices(tag_key.as_str())
            .nth(1)
            .map_or(end, |(c, _)| c + 1),
        LineError::MeasurementValueInvalid => 1,
        LineError::FieldSetMissing => line.find(' ').map_or(end, |c| c + 2),
        _ => end,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(text: &str) -> Vec<Sample> {
        parse("test", text, Precision::Nanoseconds).unwrap()
    }

    fn error(text: &str) -> String {
        parse("test", text, Precision::Nanoseconds)
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn each_field_is_a_series_with_the_tags_as_labels() {
        let samples = one("cpu,region=eu,host=a usage=0.5,idle=99i,up=true 1700000000000000000");
        let names: Vec<_> = samples.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["cpu_usage", "cpu_idle", "cpu_up"]);
        assert_eq!(
            samples[0].labels,
            vec![("host".into(), "a".into()), ("region".into(), "eu".into())]
        );
        assert_eq!(samples[0].millis, Some(1_700_000_000_000));
        assert_eq!((samples[1].value, samples[2].value), (99.0, 1.0));
    }

    #[test]
    fn escapes_missing_timestamps_and_precision() {
        let samples = one("disk\\ io,path=/var\\ lib,dev=a\\,b read=1u");
        assert_eq!(samples[0].name, "disk io_read");
        assert_eq!(samples[0].labels[1], ("path".into(), "/var lib".into()));
        assert_eq!(samples[0].labels[0], ("dev".into(), "a,b".into()));
        assert_eq!(samples[0].millis, None);
        let seconds = parse("test", "m v=1 1700000000", Precision::Seconds).unwrap();
        assert_eq!(seconds[0].millis, Some(1_700_000_000_000));
    }

    #[test]
    fn errors_name_the_line_and_column() {
        let err = error("ok v=1\n\ncpu,host=a usage=abc");
        assert!(err.contains("line 3"), "{err}");
        assert!(err.contains("column"), "{err}");
        assert!(error("cpu,host=a").contains("line 1"));
        let string_field = error("cpu,host=a name=\"x\",v=1");
        assert!(
            string_field.contains("column 12") && string_field.contains("string"),
            "{string_field}"
        );
        assert!(error("\n\n").contains("no line-protocol lines"));
    }
}
