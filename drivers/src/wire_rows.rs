//! Rows as PostgreSQL's `DataRow` messages carry them, for a caller that
//! forwards them as they came ([`Cells`]): every
//! row of a result in one buffer, each cell its length then its bytes, so
//! a PostgreSQL-wire front end writes each row with no cell-by-cell work
//! and no value made per cell.
//!
//! [`Cells`]: crate::Cells

use bytes::{BufMut, Bytes, BytesMut};

use crate::{EngineError, Error, Result, Rows, Value};

/// Rows in PostgreSQL's `DataRow` layout (without the message's header
/// and cell count): each cell its length as a 4-byte big-endian integer
/// (-1 for NULL), then its bytes in the format the caller asked for
/// (its type's binary format, or PostgreSQL's text).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WireRows {
    data: BytesMut,
    /// Where each row ends in `data`.
    ends: Vec<usize>,
    /// Cells per row.
    width: usize,
}

/// The bytes a `DataRow` message takes besides its cells: its type, its
/// length and its cell count.
const DATA_ROW_HEADER: usize = 7;

/// The size of a `DataRow` message whose cells take `cells` bytes.
fn message_size(cells: usize) -> usize {
    DATA_ROW_HEADER + cells
}

impl WireRows {
    /// How many rows.
    pub fn len(&self) -> usize {
        self.ends.len()
    }

    /// Whether there is no row.
    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    /// Cells per row.
    pub fn width(&self) -> usize {
        self.width
    }

    /// Where each row begins and ends in the buffer.
    fn spans(&self) -> impl Iterator<Item = (usize, usize)> + '_ {
        let starts = std::iter::once(0).chain(self.ends.iter().copied());
        starts.zip(self.ends.iter().copied())
    }

    /// Each row's cells.
    pub fn iter(&self) -> impl Iterator<Item = &[u8]> + '_ {
        self.spans().map(|(start, end)| &self.data[start..end])
    }

    /// Each row's size as a `DataRow` message.
    pub fn message_sizes(&self) -> impl Iterator<Item = usize> + '_ {
        self.spans().map(|(start, end)| message_size(end - start))
    }

    /// Each row's cells, split off the one buffer (no copy).
    pub fn into_rows(self) -> impl Iterator<Item = BytesMut> {
        let mut data = self.data;
        let mut at = 0;
        self.ends.into_iter().map(move |end| {
            let row = data.split_to(end - at);
            at = end;
            row
        })
    }

    /// The rows as values: a non-null cell is [`Value::Bytes`] of its
    /// bytes as sent (for a caller that must decode some of them), a
    /// slice of the one buffer.
    pub fn into_values(self) -> Result<Rows> {
        let width = self.width;
        let mut rows = Rows::new();
        for row in self.into_rows() {
            let mut rest = row.freeze();
            rows.try_push((0..width).map(|_| next_cell(&mut rest)))?;
        }
        Ok(rows)
    }
}

/// The next cell of a row's `rest`, as a value.
fn next_cell(rest: &mut Bytes) -> Result<Value> {
    let malformed = || {
        Error::Internal(EngineError::new(
            "postgres",
            None,
            "a forwarded row is malformed",
        ))
    };
    let header: [u8; 4] = rest
        .get(..4)
        .and_then(|h| h.try_into().ok())
        .ok_or_else(malformed)?;
    let len = i32::from_be_bytes(header);
    let cell = rest.slice(4..);
    let Ok(len) = usize::try_from(len) else {
        *rest = cell;
        return Ok(Value::Null);
    };
    if cell.len() < len {
        return Err(malformed());
    }
    *rest = cell.slice(len..);
    Ok(Value::Bytes(cell.slice(..len)))
}

/// Builds [`WireRows`] a row at a time.
#[derive(Debug, Default)]
pub struct WireWriter {
    data: BytesMut,
    ends: Vec<usize>,
    width: usize,
    /// Where the row being written began.
    row_start: usize,
}

impl WireWriter {
    /// A writer of rows of `width` cells.
    pub fn new(width: usize) -> Self {
        WireWriter {
            width,
            ..WireWriter::default()
        }
    }

    /// Adds a cell to the row being written (`None`: NULL). A cell longer
    /// than the wire can say (2 GiB; PostgreSQL's own limit is 1 GiB) is
    /// refused.
    pub fn cell(&mut self, raw: Option<&[u8]>) -> Result<()> {
        match raw {
            None => self.data.put_i32(-1),
            Some(raw) => {
                let len = i32::try_from(raw.len()).map_err(|_| {
                    Error::Internal(EngineError::new(
                        "postgres",
                        None,
                        format!(
                            "a cell of {} bytes is longer than the wire can carry",
                            raw.len()
                        ),
                    ))
                })?;
                self.data.reserve(4 + raw.len());
                self.data.put_i32(len);
                self.data.extend_from_slice(raw);
            }
        }
        Ok(())
    }

    /// Ends the row being written; its size as a `DataRow` message.
    pub fn end_row(&mut self) -> usize {
        let size = message_size(self.data.len() - self.row_start);
        self.ends.push(self.data.len());
        self.row_start = self.data.len();
        size
    }

    /// Drops what was written of the row being written.
    pub fn abandon_row(&mut self) {
        self.data.truncate(self.row_start);
    }

    /// The rows written.
    pub fn finish(self) -> WireRows {
        WireRows {
            data: self.data,
            ends: self.ends,
            width: self.width,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_are_written_in_the_data_row_layout_and_read_back() {
        let mut writer = WireWriter::new(2);
        writer.cell(Some(b"\x00\x00\x00\x07")).unwrap();
        writer.cell(None).unwrap();
        assert_eq!(writer.end_row(), 12 + DATA_ROW_HEADER);
        writer.cell(Some(b"")).unwrap();
        writer.cell(Some(b"ab")).unwrap();
        writer.end_row();
        // A row that failed half-way leaves nothing.
        writer.cell(Some(b"x")).unwrap();
        writer.abandon_row();
        let rows = writer.finish();
        assert_eq!(rows.len(), 2);
        let bodies: Vec<&[u8]> = rows.iter().collect();
        assert_eq!(
            bodies[0],
            b"\x00\x00\x00\x04\x00\x00\x00\x07\xff\xff\xff\xff"
        );
        assert_eq!(bodies[1], b"\x00\x00\x00\x00\x00\x00\x00\x02ab");
        let split: Vec<BytesMut> = rows.clone().into_rows().collect();
        assert_eq!(split.len(), 2);
        assert_eq!(split[1].as_ref(), bodies[1]);
        let values = rows.into_values().unwrap();
        assert_eq!(
            values,
            vec![
                vec![
                    Value::Bytes(Bytes::from_static(b"\x00\x00\x00\x07")),
                    Value::Null
                ],
                vec![
                    Value::Bytes(Bytes::new()),
                    Value::Bytes(Bytes::from_static(b"ab"))
                ],
            ]
        );
    }

    #[test]
    fn a_malformed_row_is_an_error_not_a_panic() {
        let rows = WireRows {
            data: BytesMut::from(&b"\x00\x00\x00\x09ab"[..]),
            ends: vec![6],
            width: 1,
        };
        assert!(rows.into_values().is_err());
        let short = WireRows {
            data: BytesMut::from(&b"\x00\x00"[..]),
            ends: vec![2],
            width: 1,
        };
        assert!(short.into_values().is_err());
    }
}
