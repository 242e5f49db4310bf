//! Transactions on VictoriaMetrics, buffered: a write is parsed and
//! checked when sent, its samples given their time then (the time the
//! write was sent, for a line without one), and kept; a query runs at once
//! and sees committed state. Commit imports every kept sample in one
//! request (`/api/v1/import/prometheus`, each with its time in
//! milliseconds). VictoriaMetrics has no transaction: what makes a replay
//! after a crash harmless is deduplication (`-dedup.minScrapeInterval`),
//! which keeps one sample per series and time; a cross-engine commit
//! refuses to go on without it (the vote, `prepare`).

use async_trait::async_trait;
use bytes::Bytes;

use super::{Http, KIND, VictoriaDriver};
use crate::ts::{Sample, TsStatement, classify, lineproto, now_millis};
use crate::{
    BeginOptions, Dialect, DriverTransaction, Error, ExecuteOptions, Participation, Redo, Result,
    ResultSet, Statement, StorageDriver,
};

/// A VictoriaMetrics transaction (see the module docs).
#[derive(Debug)]
pub(super) struct VictoriaTransaction {
    pub(super) driver: VictoriaDriver,
    pub(super) options: BeginOptions,
    /// The kept writes, as import bodies.
    pub(super) queued: Vec<String>,
}

#[async_trait]
impl DriverTransaction for VictoriaTransaction {
    fn participation(&self) -> Participation {
        Participation::Buffered
    }

    async fn execute(
        &mut self,
        dialect: Dialect,
        statement: &Statement,
        options: &ExecuteOptions,
    ) -> Result<ResultSet> {
        self.driver.descriptor.accept(dialect, statement)?;
        let options = self.options.apply(options);
        let now = now_millis();
        match classify(KIND, statement, &options, now, crate::ts::Reader::Server)? {
            TsStatement::Write { count, .. } => {
                let samples = lineproto::parse(KIND, statement.text.trim(), options.ts.precision)?;
                self.queued.push(exposition(&samples, now));
                Ok(ResultSet {
                    rows_affected: count,
                    ..ResultSet::default()
                })
            }
            TsStatement::Delete { .. } => Err(Error::precondition(
                KIND,
                "DELETE cannot run inside a transaction (VictoriaMetrics cannot undo it); send \
                 it outside one",
            )),
            // A query sees committed state.
            TsStatement::Query { .. } => self.driver.execute(dialect, statement, &options).await,
        }
    }

    /// A replay is harmless only with deduplication on: without it, a
    /// cross-engine commit is refused here, before anything is decided.
    async fn prepare(&mut self, _global_id: &str) -> Result<()> {
        if self.driver.http.dedup {
            Ok(())
        } else {
            Err(Error::precondition(
                KIND,
                "VictoriaMetrics runs without -dedup.minScrapeInterval, so writes replayed after \
                 a crash would be stored twice; start it with -dedup.minScrapeInterval=1ms to \
                 write time series in a transaction that spans engines",
            ))
        }
    }

    /// Each write as its import body.
    fn redo(&self) -> Vec<Redo> {
        self.queued
            .iter()
            .map(|body| vec![Bytes::from(body.clone())])
            .collect()
    }

    fn has_redo(&self) -> bool {
        !self.queued.is_empty()
    }

    fn redo_head(&self) -> Option<Redo> {
        let first = self.queued.first()?;
        Some(vec![Bytes::from(first.clone())])
    }

    async fn commit(self: Box<Self>) -> Result<()> {
        self.driver.http.import(&self.queued.concat()).await
    }

    async fn rollback(self: Box<Self>) -> Result<()> {
        Ok(()) // nothing was applied
    }

    fn engine(&self) -> &'static str {
        KIND
    }
}

/// Samples in the Prometheus text format, each with its time in
/// milliseconds (`now` for a sample without one).
fn exposition(samples: &[Sample], now: i64) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    for sample in samples {
        out.push_str(&sample.name);
        if !sample.labels.is_empty() {
            out.push('{');
            for (n, (name, value)) in sample.labels.iter().enumerate() {
                if n > 0 {
                    out.push(',');
                }
                let value = value
                    .replace('\\', "\\\\")
                    .replace('"', "\\\"")
                    .replace('\n', "\\n");
                let _ = write!(out, "{name}=\"{value}\"");
            }
            out.push('}');
        }
        let value = match sample.value {
            v if v.is_nan() => "NaN".to_owned(),
            v if v == f64::INFINITY => "+Inf".to_owned(),
            v if v == f64::NEG_INFINITY => "-Inf".to_owned(),
            v => v.to_string(),
        };
        let _ = writeln!(out, " {value} {}", sample.millis.unwrap_or(now));
    }
    out
}

/// Imports the redo again: deduplication keeps one sample per series and
/// time, so a write applied before is not stored twice.
pub(super) async fn replay(http: &Http, redo: &[Redo]) -> Result<()> {
    let body: Vec<u8> = redo.iter().flatten().flat_map(|b| b.to_vec()).collect();
    http.import(&String::from_utf8_lossy(&body)).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn samples_are_written_with_their_times_and_escaped_labels() {
        let samples = vec![
            Sample {
                name: "cpu_usage".into(),
                labels: vec![("host".into(), "a\"b\\c".into())],
                millis: None,
                value: 0.5,
            },
            Sample {
                name: "up".into(),
                labels: Vec::new(),
                millis: Some(7),
                value: f64::INFINITY,
            },
        ];
        assert_eq!(
            exposition(&samples, 1000),
            "cpu_usage{host=\"a\\\"b\\\\c\"} 0.5 1000\nup +Inf 7\n"
        );
    }
}
