//! Range queries streamed in time slices: one slice's rows in memory at a
//! time.

use std::future::Future;
use std::sync::Arc;

use futures::StreamExt;

use super::When;
use crate::{Result, ResultSet, RowStream, Rows};

/// The slices of `when`, each at most `points` evaluation times.
pub fn slices(when: When, points: i64) -> Vec<When> {
    match when {
        When::Instant(_) => vec![when],
        When::Range { start, end, step } => {
            let width = step.saturating_mul(points.max(1));
            let mut out = Vec::new();
            let mut from = start;
            while from <= end {
                let to = end.min(from.saturating_add(width - step));
                out.push(When::Range {
                    start: from,
                    end: to,
                    step,
                });
                from = to.saturating_add(step);
            }
            out
        }
    }
}

/// A stream that runs `run` on each slice of `when` in turn and sends its
/// rows in batches of `batch_size`. Rows come slice by slice; within a
/// slice, by series and then time.
pub fn stream_slices<F, Fut>(when: When, points: i64, batch_size: usize, run: F) -> RowStream
where
    F: Fn(When) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<ResultSet>> + Send + 'static,
{
    let batch_size = batch_size.max(1);
    let run = Arc::new(run);
    let batches = futures::stream::iter(slices(when, points))
        .then(move |slice| {
            let run = Arc::clone(&run);
            async move { run(slice).await }
        })
        .flat_map(move |result| {
            let batches: Vec<Result<Rows>> = match result {
                Ok(set) => set.rows.into_batches(batch_size).map(Ok).collect(),
                Err(e) => vec![Err(e)],
            };
            futures::stream::iter(batches)
        });
    RowStream {
        columns: super::columns(),
        batches: batches.boxed(),
        rows_affected: Arc::new(0.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slices_cover_the_range_without_overlap() {
        let when = When::Range {
            start: 0,
            end: 95,
            step: 10,
        };
        let got = slices(when, 4);
        let times: Vec<i64> = got.iter().flat_map(|w| w.times()).collect();
        assert_eq!(times, when.times().collect::<Vec<_>>());
        assert_eq!(got.len(), 3);
        assert_eq!(
            got[0],
            When::Range {
                start: 0,
                end: 30,
                step: 10
            }
        );
    }
}
