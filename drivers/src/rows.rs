//! A result's rows, held flat: every row's values one after another in one
//! vector. When every row has the same number of values (a table's rows
//! always do) that is all there is; rows of different lengths also keep
//! where each ends. A result of any number of rows costs one growing
//! vector, not one allocation per row (which, for a 10,000-row read, was
//! an eighth of the call's CPU).

use std::fmt;
use std::ops::Index;

use crate::Value;

/// One row, owned: a value per column.
pub type Row = Vec<Value>;

/// The rows of a result. A row is a slice of values (`rows[i][j]`), usually
/// one per column; rows of different lengths are kept as they are.
#[derive(Clone, Default)]
pub struct Rows {
    values: Vec<Value>,
    len: usize,
    shape: Shape,
}

/// How `Rows`' values divide into rows.
#[derive(Clone, Debug)]
enum Shape {
    /// Every row has this many values (any, while there are no rows).
    Even(usize),
    /// Where each row ends in the values.
    Ragged(Vec<usize>),
}

impl Default for Shape {
    fn default() -> Self {
        Shape::Even(0)
    }
}

impl Rows {
    /// No rows.
    pub const fn new() -> Self {
        Rows {
            values: Vec::new(),
            len: 0,
            shape: Shape::Even(0),
        }
    }

    /// No rows, with room for `rows` rows of `width` values each.
    pub fn with_capacity(rows: usize, width: usize) -> Self {
        Rows {
            values: Vec::with_capacity(rows.saturating_mul(width)),
            len: 0,
            shape: Shape::Even(width),
        }
    }

    /// One row, its vector kept as the values (no copy).
    pub fn one(row: Row) -> Self {
        Rows {
            shape: Shape::Even(row.len()),
            values: row,
            len: 1,
        }
    }

    /// How many rows.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Where row `i` starts and ends in the values.
    fn span(&self, i: usize) -> Option<(usize, usize)> {
        if i >= self.len {
            return None;
        }
        Some(match &self.shape {
            Shape::Even(width) => (i * width, (i + 1) * width),
            Shape::Ragged(ends) => (i.checked_sub(1).map_or(0, |p| ends[p]), ends[i]),
        })
    }

    /// Notes that a row of `width` values was added at the end.
    fn ended(&mut self, width: usize) {
        match &mut self.shape {
            Shape::Even(w) if self.len == 0 => *w = width,
            Shape::Even(w) if *w == width => {}
            Shape::Even(w) => {
                let w = *w;
                let mut ends: Vec<usize> = (1..=self.len).map(|i| i * w).collect();
                ends.push(self.values.len());
                self.shape = Shape::Ragged(ends);
            }
            Shape::Ragged(ends) => ends.push(self.values.len()),
        }
        self.len += 1;
    }

    /// Row `i`.
    pub fn get(&self, i: usize) -> Option<&[Value]> {
        self.span(i).map(|(start, end)| &self.values[start..end])
    }

    /// Row `i`, to change its values.
    pub fn get_mut(&mut self, i: usize) -> Option<&mut [Value]> {
        self.span(i)
            .map(|(start, end)| &mut self.values[start..end])
    }

    /// The first row.
    pub fn first(&self) -> Option<&[Value]> {
        self.get(0)
    }

    /// The last row.
    pub fn last(&self) -> Option<&[Value]> {
        self.len().checked_sub(1).and_then(|i| self.get(i))
    }

    /// The rows in order.
    pub fn iter(&self) -> Iter<'_> {
        Iter {
            rows: self,
            front: 0,
            back: self.len(),
        }
    }

    /// Every value of every row, in order (for work done on each value
    /// whatever its row).
    pub fn values(&self) -> &[Value] {
        &self.values
    }

    /// [`Rows::values`], to change them.
    pub fn values_mut(&mut self) -> &mut [Value] {
        &mut self.values
    }

    /// Adds a row.
    pub fn push(&mut self, row: impl IntoIterator<Item = Value>) {
        let start = self.values.len();
        self.values.extend(row);
        self.ended(self.values.len() - start);
    }

    /// Adds a row given as a vector: kept as the values (no copy) when it
    /// is the first.
    pub fn push_row(&mut self, row: Row) {
        if self.len == 0 && self.values.capacity() == 0 {
            *self = Rows::one(row);
        } else {
            self.push(row);
        }
    }

    /// Adds a row read value by value; when one fails, nothing of the row
    /// is kept and the error is returned.
    pub fn try_push<E>(
        &mut self,
        row: impl IntoIterator<Item = std::result::Result<Value, E>>,
    ) -> std::result::Result<(), E> {
        let start = self.values.len();
        for value in row {
            match value {
                Ok(value) => self.values.push(value),
                Err(e) => {
                    self.values.truncate(start);
                    return Err(e);
                }
            }
        }
        self.ended(self.values.len() - start);
        Ok(())
    }

    /// Adds every row of `other` after these.
    pub fn append(&mut self, other: Rows) {
        if self.is_empty() {
            *self = other;
            return;
        }
        if let (Shape::Even(a), Shape::Even(b)) = (&self.shape, &other.shape)
            && (a == b || other.is_empty())
        {
            self.values.extend(other.values);
            self.len += other.len;
            return;
        }
        other.map_rows(|row| self.push(row));
    }

    /// Keeps the first `len` rows.
    pub fn truncate(&mut self, len: usize) {
        if len >= self.len {
            return;
        }
        let end = match len {
            0 => 0,
            _ => self.span(len - 1).map_or(0, |(_, end)| end),
        };
        self.values.truncate(end);
        if let Shape::Ragged(ends) = &mut self.shape {
            ends.truncate(len);
        }
        self.len = len;
    }

    /// The rows in batches of `size` (at least one) rows, in order, each
    /// batch's values moved into it once.
    pub fn into_batches(self, size: usize) -> Batches {
        Batches {
            size: size.max(1),
            rows: self.into_iter(),
        }
    }

    /// Moves every row out in order through `f`, which gets an iterator
    /// over the row's values (no vector is made per row); what `f` made
    /// of each row. Values of a row `f` leaves unread are dropped.
    pub fn map_rows<T>(
        self,
        mut f: impl FnMut(std::iter::Take<&mut std::vec::IntoIter<Value>>) -> T,
    ) -> Vec<T> {
        let mut rows = self.into_iter();
        let mut out = Vec::with_capacity(rows.len());
        while let Some(width) = rows.next_width() {
            let before = rows.values.len();
            out.push(f(rows.values.by_ref().take(width)));
            let unread = width - (before - rows.values.len());
            rows.values.by_ref().take(unread).for_each(drop);
        }
        out
    }

    /// The rows as owned vectors (one allocation each).
    pub fn into_rows(self) -> Vec<Row> {
        self.into_iter().collect()
    }
}

impl PartialEq for Rows {
    fn eq(&self, other: &Rows) -> bool {
        self.len == other.len && self.iter().eq(other.iter())
    }
}

impl fmt::Debug for Rows {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

impl Index<usize> for Rows {
    type Output = [Value];

    /// Row `i`; panics when there is no such row, as a vector's index does.
    fn index(&self, i: usize) -> &[Value] {
        match self.get(i) {
            Some(row) => row,
            None => panic!("row {i} of {}", self.len()),
        }
    }
}

impl From<Vec<Row>> for Rows {
    fn from(rows: Vec<Row>) -> Self {
        rows.into_iter().collect()
    }
}

impl<const N: usize> From<[Row; N]> for Rows {
    fn from(rows: [Row; N]) -> Self {
        rows.into_iter().collect()
    }
}

impl FromIterator<Row> for Rows {
    fn from_iter<I: IntoIterator<Item = Row>>(rows: I) -> Self {
        let mut out = Rows::new();
        for row in rows {
            out.push_row(row);
        }
        out
    }
}

impl<R: AsRef<[Value]>> PartialEq<[R]> for Rows {
    fn eq(&self, other: &[R]) -> bool {
        self.len() == other.len() && self.iter().zip(other).all(|(a, b)| a == b.as_ref())
    }
}

impl<R: AsRef<[Value]>> PartialEq<Vec<R>> for Rows {
    fn eq(&self, other: &Vec<R>) -> bool {
        *self == *other.as_slice()
    }
}

impl<R: AsRef<[Value]>, const N: usize> PartialEq<[R; N]> for Rows {
    fn eq(&self, other: &[R; N]) -> bool {
        *self == *other.as_slice()
    }
}

impl PartialEq<Rows> for Vec<Row> {
    fn eq(&self, other: &Rows) -> bool {
        other == self
    }
}

/// The rows of [`Rows`] in order, as slices.
#[derive(Debug, Clone)]
pub struct Iter<'a> {
    rows: &'a Rows,
    front: usize,
    back: usize,
}

impl<'a> Iterator for Iter<'a> {
    type Item = &'a [Value];

    fn next(&mut self) -> Option<&'a [Value]> {
        if self.front == self.back {
            return None;
        }
        let row = self.rows.get(self.front);
        self.front += 1;
        row
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let left = self.back - self.front;
        (left, Some(left))
    }
}

impl DoubleEndedIterator for Iter<'_> {
    fn next_back(&mut self) -> Option<Self::Item> {
        if self.front == self.back {
            return None;
        }
        self.back -= 1;
        self.rows.get(self.back)
    }
}

impl ExactSizeIterator for Iter<'_> {}

impl<'a> IntoIterator for &'a Rows {
    type Item = &'a [Value];
    type IntoIter = Iter<'a>;

    fn into_iter(self) -> Iter<'a> {
        self.iter()
    }
}

/// The rows of [`Rows`] in order, each moved into a vector of its own.
#[derive(Debug)]
pub struct IntoIter {
    values: std::vec::IntoIter<Value>,
    shape: Shape,
    /// The next row.
    row: usize,
    len: usize,
    /// Where the next row starts in the values.
    at: usize,
}

impl IntoIter {
    /// How many values the next row has (`None` after the last), counting
    /// it as taken.
    fn next_width(&mut self) -> Option<usize> {
        if self.row >= self.len {
            return None;
        }
        let width = match &self.shape {
            Shape::Even(width) => *width,
            Shape::Ragged(ends) => ends[self.row] - self.at,
        };
        self.row += 1;
        self.at += width;
        Some(width)
    }
}

impl Iterator for IntoIter {
    type Item = Row;

    fn next(&mut self) -> Option<Row> {
        let width = self.next_width()?;
        Some(self.values.by_ref().take(width).collect())
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let left = self.len - self.row;
        (left, Some(left))
    }
}

impl ExactSizeIterator for IntoIter {}

impl IntoIterator for Rows {
    type Item = Row;
    type IntoIter = IntoIter;

    fn into_iter(self) -> IntoIter {
        IntoIter {
            values: self.values.into_iter(),
            shape: self.shape,
            row: 0,
            len: self.len,
            at: 0,
        }
    }
}

/// The rows of [`Rows`] in batches ([`Rows::into_batches`]).
#[derive(Debug)]
pub struct Batches {
    size: usize,
    rows: IntoIter,
}

impl Iterator for Batches {
    type Item = Rows;

    fn next(&mut self) -> Option<Rows> {
        let rows = &mut self.rows;
        let n = self.size.min(rows.len - rows.row);
        if n == 0 {
            return None;
        }
        let mut batch = match &rows.shape {
            Shape::Even(width) => Rows::with_capacity(n, *width),
            Shape::Ragged(_) => Rows::new(),
        };
        for _ in 0..n {
            if let Some(width) = rows.next_width() {
                batch.push(rows.values.by_ref().take(width));
            }
        }
        Some(batch)
    }
}

#[cfg(test)]
#[path = "rows_tests.rs"]
mod tests;
