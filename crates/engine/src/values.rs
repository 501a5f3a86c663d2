//! Values crossing between JS and SQLite: parameters in, cells out.
//!
//! The JS layer has already checked the parameters' types (and turned
//! booleans into 0/1); what is left here is matching them to a statement.

use std::collections::HashMap;

use rusqlite::types::{ToSqlOutput, ValueRef};
use rusqlite::{Row, Statement, ToSql};

use crate::errors::EngineError;

/// One parameter value.
pub enum Param {
    Null,
    Integer(i64),
    Real(f64),
    Text(String),
    Blob(Vec<u8>),
}

impl ToSql for Param {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(ToSqlOutput::Borrowed(match self {
            Param::Null => ValueRef::Null,
            Param::Integer(i) => ValueRef::Integer(*i),
            Param::Real(f) => ValueRef::Real(*f),
            Param::Text(s) => ValueRef::Text(s.as_bytes()),
            Param::Blob(b) => ValueRef::Blob(b),
        }))
    }
}

impl Param {
    /// A JS number: integral values within ±(2^53 − 1) bind as INTEGER, the
    /// rest as REAL (as the 2.2.1 package did for 32-bit integers).
    pub fn number(n: f64) -> Param {
        const MAX_SAFE: f64 = 9_007_199_254_740_991.0;
        if n.fract() == 0.0 && n.abs() <= MAX_SAFE {
            Param::Integer(n as i64)
        } else {
            Param::Real(n)
        }
    }
}

/// The parameters of one call: by position (an array), by name (an object
/// whose keys have their sigil removed), or none.
pub enum Params {
    None,
    Positional(Vec<Param>),
    Named(HashMap<String, Param>),
}

impl Params {
    /// The bytes of the text and blob values.
    pub fn bytes(&self) -> usize {
        let bytes = |param: &Param| match param {
            Param::Text(s) => s.len(),
            Param::Blob(b) => b.len(),
            _ => 0,
        };
        match self {
            Params::None => 0,
            Params::Positional(values) => values.iter().map(bytes).sum(),
            Params::Named(values) => values.values().map(bytes).sum(),
        }
    }
}

/// The name of the first parameter of `stmt` from `index` on that the
/// statement uses: `?NNN` leaves the numbers below it without a name, and
/// unused (`SELECT ?3` uses the third only).
fn first_named(stmt: &Statement<'_>, index: usize) -> String {
    (index..=stmt.parameter_count())
        .find_map(|i| stmt.parameter_name(i))
        .map_or_else(|| format!("?{index}"), str::to_owned)
}

/// Binds `params` to every parameter of `stmt`.
///
/// A missing value is an error. With `exact` (a single-statement call), so
/// is a positional value no parameter takes.
pub fn bind_all(stmt: &mut Statement<'_>, params: &Params, exact: bool) -> Result<(), EngineError> {
    let count = stmt.parameter_count();
    match params {
        Params::None => {
            if count > 0 {
                let name = first_named(stmt, 1);
                return Err(EngineError::Range(format!(
                    "Missing value for parameter {name}: the statement has {count} parameter(s) and none were given"
                )));
            }
        }
        Params::Positional(values) => {
            // Positional values bind by index, to `?`, `?NNN` and named
            // parameters alike (the 2.2.1 package bound arrays this way).
            for index in 1..=count {
                match values.get(index - 1) {
                    Some(value) => stmt.raw_bind_parameter(index, value)?,
                    None => {
                        let name = first_named(stmt, index);
                        return Err(EngineError::Range(format!(
                            "Missing value for parameter {name}: {} value(s) given, the statement needs {count}",
                            values.len()
                        )));
                    }
                }
            }
            if exact && values.len() > count {
                return Err(EngineError::Range(format!(
                    "Too many parameter values: {} given, the statement takes {count}",
                    values.len()
                )));
            }
        }
        Params::Named(values) => {
            for index in 1..=count {
                let name = match stmt.parameter_name(index) {
                    Some(name) if !name.starts_with('?') => name.to_owned(),
                    _ => {
                        return Err(EngineError::Range(format!(
                            "Parameter ?{index} is positional: pass an array, not an object"
                        )))
                    }
                };
                match values.get(&name[1..]) {
                    Some(value) => stmt.raw_bind_parameter(index, value)?,
                    None => {
                        return Err(EngineError::Range(format!(
                            "Missing named parameter \"{name}\""
                        )))
                    }
                }
            }
        }
    }
    Ok(())
}

/// One result cell.
pub enum Cell {
    Null,
    Integer(i64),
    Real(f64),
    Text(String),
    Blob(Vec<u8>),
}

/// Cells per segment of [`Cells`]: 32 MiB of them, the size from which the
/// C allocator always maps memory of its own for a block (glibc's largest
/// mmap threshold) and gives it back to the system when it is freed. Freed
/// smaller blocks stay with the allocator, out of reach of the JS heap,
/// which the freed cells of a result make room for.
const SEGMENT_CELLS: usize = 1 << 20;

/// The cells of a result set, row after row (a row may span two segments),
/// kept in segments of 2^20 cells (32 MiB): a large result grows without
/// copying what it holds, and as it is consumed ([`Cells::into_iter`]) each
/// segment is freed once its cells are taken, so that a result going to JS
/// in parts is not held whole until its last part is made.
#[derive(Default)]
pub struct Cells {
    /// Full segments, in order.
    full: Vec<Vec<Cell>>,
    /// The segment being filled.
    last: Vec<Cell>,
}

impl Cells {
    /// How many cells.
    pub fn len(&self) -> usize {
        self.full.len() * SEGMENT_CELLS + self.last.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Room for `additional` more cells in the segment being filled, as far
    /// as it goes: the first segment grows as a vector does (a point
    /// query's result stays small), up to [`SEGMENT_CELLS`].
    fn reserve(&mut self, additional: usize) {
        let wanted = (self.last.len() + additional).min(SEGMENT_CELLS);
        if wanted > self.last.capacity() {
            let grown = (self.last.capacity() * 2).clamp(wanted, SEGMENT_CELLS);
            self.last.reserve_exact(grown - self.last.len());
        }
    }

    fn push(&mut self, cell: Cell) {
        if self.last.len() == SEGMENT_CELLS {
            let full = std::mem::replace(&mut self.last, Vec::with_capacity(SEGMENT_CELLS));
            self.full.push(full);
        }
        self.last.push(cell);
    }
}

impl IntoIterator for Cells {
    type Item = Cell;
    type IntoIter = CellsIter;

    /// The cells in order, each segment freed as soon as its last is taken.
    /// (Allocates nothing: a small result is one segment.)
    fn into_iter(self) -> CellsIter {
        let mut full = self.full.into_iter();
        let (current, last) = match full.next() {
            Some(first) => (first.into_iter(), Some(self.last)),
            None => (self.last.into_iter(), None),
        };
        CellsIter {
            current,
            full,
            last,
        }
    }
}

/// [`Cells`] consumed in order (see [`Cells::into_iter`]).
pub struct CellsIter {
    /// The segment under way.
    current: std::vec::IntoIter<Cell>,
    /// The full segments after it, then the last one, if not under way.
    full: std::vec::IntoIter<Vec<Cell>>,
    last: Option<Vec<Cell>>,
}

impl Iterator for CellsIter {
    type Item = Cell;

    fn next(&mut self) -> Option<Cell> {
        loop {
            if let Some(cell) = self.current.next() {
                return Some(cell);
            }
            // (The segment taken last is dropped here, with its buffer.)
            let next = match self.full.next() {
                Some(segment) => segment,
                None => self.last.take()?,
            };
            self.current = next.into_iter();
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        // (Full segments hold SEGMENT_CELLS each.)
        let left = self.current.len()
            + self.full.len() * SEGMENT_CELLS
            + self.last.as_ref().map_or(0, Vec::len);
        (left, Some(left))
    }
}

impl ExactSizeIterator for CellsIter {}

/// The UTF-16 code units of the text `bytes` becomes (as read_row makes it:
/// bytes that are not UTF-8 become U+FFFD).
fn utf16_units(bytes: &[u8]) -> usize {
    String::from_utf8_lossy(bytes).encode_utf16().count()
}

/// The bytes the TEXT and BLOB values of a call's results may still take
/// (`left`), of `max` in all.
pub struct ByteRoom {
    pub left: usize,
    pub max: usize,
}

/// Appends the `column_count` cells of `row` to `cells`. A TEXT value of
/// more than `max_text` UTF-16 code units (what the JS runtime's strings
/// hold at most) is `SQLITE_TOOBIG`, and so is a TEXT or BLOB value that
/// takes more bytes than `room` has left (checked before it is copied).
pub fn read_row(
    row: &Row<'_>,
    column_count: usize,
    cells: &mut Cells,
    max_text: usize,
    room: &mut ByteRoom,
) -> Result<(), EngineError> {
    cells.reserve(column_count);
    for i in 0..column_count {
        let value = row.get_ref(i)?;
        if let ValueRef::Text(bytes) | ValueRef::Blob(bytes) = value {
            if bytes.len() > room.left {
                return Err(EngineError::Sqlite {
                    code: rusqlite::ffi::SQLITE_TOOBIG,
                    message: format!(
                        "the call's results would hold more than {} bytes of TEXT and BLOB \
                         values (its statements together; see maxResultBytes)",
                        room.max
                    ),
                });
            }
            room.left -= bytes.len();
        }
        if let ValueRef::Text(bytes) = value {
            let units = if bytes.len() > max_text {
                utf16_units(bytes)
            } else {
                0
            };
            if units > max_text {
                return Err(EngineError::Sqlite {
                    code: rusqlite::ffi::SQLITE_TOOBIG,
                    message: format!(
                        "a TEXT value of {units} UTF-16 code units is longer than the longest \
                         string this JS runtime holds ({max_text})"
                    ),
                });
            }
        }
        cells.push(match value {
            ValueRef::Null => Cell::Null,
            ValueRef::Integer(v) => Cell::Integer(v),
            ValueRef::Real(v) => Cell::Real(v),
            // TEXT keeps every byte, NUL included; bytes that are not UTF-8
            // (only possible through casts) become U+FFFD.
            // (Checking for UTF-8 first is much faster than a lossy
            // conversion of text that is valid, as nearly all is.)
            ValueRef::Text(bytes) => Cell::Text(match std::str::from_utf8(bytes) {
                Ok(text) => text.to_owned(),
                Err(_) => String::from_utf8_lossy(bytes).into_owned(),
            }),
            ValueRef::Blob(bytes) => Cell::Blob(bytes.to_vec()),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn integers(cells: CellsIter) -> Vec<i64> {
        cells
            .map(|cell| match cell {
                Cell::Integer(v) => v,
                _ => panic!("not an integer"),
            })
            .collect()
    }

    #[test]
    fn cells_keep_their_order_across_segments() {
        let mut cells = Cells::default();
        let count = 2 * SEGMENT_CELLS + 3;
        for i in 0..count {
            // Rows of 3: some span two segments.
            if i % 3 == 0 {
                cells.reserve(3);
            }
            cells.push(Cell::Integer(i as i64));
        }
        assert_eq!(cells.len(), count);
        assert_eq!(cells.full.len(), 2);
        let iter = cells.into_iter();
        assert_eq!(iter.len(), count);
        let expected: Vec<i64> = (0..count as i64).collect();
        assert_eq!(integers(iter), expected);
    }

    #[test]
    fn a_segment_is_freed_once_its_cells_are_taken() {
        let mut cells = Cells::default();
        for i in 0..3 * SEGMENT_CELLS {
            cells.push(Cell::Integer(i as i64));
        }
        // Three segments: the first under way, the second full, the last.
        let mut iter = cells.into_iter();
        assert_eq!(iter.full.len(), 1);
        assert!(iter.last.is_some());
        iter.by_ref().take(SEGMENT_CELLS).for_each(drop);
        // The first segment is still the current one, exhausted.
        assert_eq!((iter.current.len(), iter.full.len()), (0, 1));
        assert!(iter.next().is_some());
        // The first is gone: the second is current, the last next.
        assert_eq!(iter.full.len(), 0);
        assert_eq!(iter.current.len(), SEGMENT_CELLS - 1);
        assert_eq!(iter.len(), 2 * SEGMENT_CELLS - 1);
        iter.by_ref().take(2 * SEGMENT_CELLS - 1).for_each(drop);
        assert_eq!(iter.len(), 0);
        assert!(iter.next().is_none() && iter.last.is_none());
    }

    #[test]
    fn a_small_result_takes_little_room() {
        let mut cells = Cells::default();
        cells.reserve(3);
        for i in 0..3 {
            cells.push(Cell::Integer(i));
        }
        assert!(cells.last.capacity() < 8);
        assert!(cells.full.is_empty());
        // Rows added one by one grow the segment as a vector grows.
        for i in 0..SEGMENT_CELLS as i64 {
            cells.reserve(1);
            cells.push(Cell::Integer(i));
        }
        assert!(cells.full.len() == 1 && cells.full[0].capacity() == SEGMENT_CELLS);
        assert_eq!(cells.len(), SEGMENT_CELLS + 3);
        let empty = Cells::default();
        assert!(empty.is_empty());
        assert_eq!(empty.into_iter().next().map(|_| ()), None);
    }
}
