//! Tests of [`Rows`](super::Rows).

use super::*;

fn row(values: &[i64]) -> Row {
    values.iter().map(|v| Value::Int(*v)).collect()
}

#[test]
fn rows_of_any_length_read_back_as_pushed() {
    let pushed = vec![row(&[1, 2]), row(&[]), row(&[3]), row(&[4, 5, 6])];
    let rows = Rows::from(pushed.clone());
    assert_eq!(rows.len(), 4);
    assert_eq!(rows, pushed);
    assert_eq!(&rows[3], row(&[4, 5, 6]).as_slice());
    assert_eq!(rows.get(1), Some(&[][..]));
    assert_eq!(rows.get(4), None);
    assert_eq!(rows.last(), Some(&row(&[4, 5, 6])[..]));
    assert_eq!(rows.iter().next_back(), rows.last());
    assert_eq!(rows.iter().len(), 4);
    assert_eq!(rows.clone().into_rows(), pushed);
    assert_eq!(rows.clone().map_rows(|row| row.collect::<Row>()), pushed);
    assert_eq!(format!("{rows:?}"), format!("{pushed:?}"));
}

#[test]
fn a_row_that_fails_midway_leaves_nothing() {
    let mut rows = Rows::from(vec![row(&[1])]);
    let failed = rows.try_push([Ok(Value::Int(2)), Err("bad"), Ok(Value::Int(3))]);
    assert_eq!(failed, Err("bad"));
    assert_eq!(rows, vec![row(&[1])]);
    rows.try_push::<()>([Ok(Value::Int(7))]).unwrap();
    assert_eq!(rows, vec![row(&[1]), row(&[7])]);
}

#[test]
fn rows_batch_append_and_truncate_at_row_bounds() {
    let ragged = vec![row(&[1, 2]), row(&[3]), row(&[]), row(&[4, 5])];
    let even = vec![row(&[1, 2]), row(&[3, 4]), row(&[5, 6]), row(&[7, 8])];
    let empty = vec![row(&[]), row(&[]), row(&[])];
    for all in [ragged, even, empty] {
        for size in 0..=5 {
            let batches: Vec<Rows> = Rows::from(all.clone()).into_batches(size).collect();
            let size = size.max(1);
            assert_eq!(batches.len(), all.len().div_ceil(size), "batches of {size}");
            for (batch, expected) in batches.iter().zip(all.chunks(size)) {
                assert_eq!(batch, &expected.to_vec(), "a batch of {size}");
            }
            let mut joined = Rows::new();
            batches.into_iter().for_each(|batch| joined.append(batch));
            assert_eq!(joined, all);
            let n = size.min(all.len());
            joined.truncate(n);
            assert_eq!(joined, all[..n].to_vec());
            assert_eq!(joined.clone().into_rows(), all[..n].to_vec());
            joined.push_row(row(&[9]));
            let mut expected = all[..n].to_vec();
            expected.push(row(&[9]));
            assert_eq!(joined, expected);
            assert_eq!(joined.clone().map_rows(|r| r.collect::<Row>()), expected);
            // A row left half read does not shift the next.
            let firsts = joined.map_rows(|mut r| r.next());
            let want: Vec<Option<Value>> = expected.iter().map(|r| r.first().cloned()).collect();
            assert_eq!(firsts, want);
        }
    }
}

#[test]
fn rows_of_one_width_turn_ragged_when_one_differs() {
    let mut rows = Rows::one(row(&[1, 2]));
    rows.push(row(&[3, 4]));
    let mut other = Rows::from(vec![row(&[5])]);
    other.push(row(&[6, 7, 8]));
    rows.append(other);
    rows.push(row(&[]));
    let all = vec![
        row(&[1, 2]),
        row(&[3, 4]),
        row(&[5]),
        row(&[6, 7, 8]),
        row(&[]),
    ];
    assert_eq!(rows, all);
    assert_eq!(rows.values().len(), 8);
    assert_eq!(rows.get(3), Some(&row(&[6, 7, 8])[..]));
    assert_eq!(
        rows.iter().map(<[Value]>::len).collect::<Vec<_>>(),
        [2, 2, 1, 3, 0]
    );
}
