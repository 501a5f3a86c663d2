//! What the engine needs to know of SQL text before running it: where the
//! first statement of a script ends (so a script handed to an engine thread
//! midway goes on from the right statement), and whether a statement may run
//! long.

use std::ffi::c_char;
use std::ptr;

use rusqlite::{ffi, Connection};

/// A script's text, with a NUL after it, to be split into statements.
/// SQLite copies a text it is handed with a length and no NUL at its end:
/// finding each statement from where the last ended, over the rest of a
/// text without one, copied the rest each time (200,000 statements took 5 s).
pub struct Script {
    /// The text's bytes and a NUL.
    text: Vec<u8>,
}

impl Script {
    pub fn new(sql: &str) -> Self {
        let mut text = Vec::with_capacity(sql.len() + 1);
        text.extend_from_slice(sql.as_bytes());
        text.push(0);
        Script { text }
    }

    /// The length in bytes of the first statement from byte `at` (with what
    /// follows it up to the next statement), and whether there is a
    /// statement at all (false for whitespace and comments). If SQLite
    /// cannot compile it, the whole rest of the text is taken: compiling it
    /// again reports the error. `at` is a character boundary of the text.
    pub fn first_statement(&self, conn: &Connection, at: usize) -> (usize, bool) {
        let rest_len = self.text.len() - 1 - at;
        let rest = &self.text[at..];
        let mut stmt: *mut ffi::sqlite3_stmt = ptr::null_mut();
        let mut tail: *const c_char = ptr::null();
        // SAFETY: `conn.handle()` is the open connection, used on this
        // thread while `conn` is borrowed; `rest` ends with a NUL (the last
        // byte of `text`), so SQLite, given length -1, reads no further; the
        // statement SQLite prepares is finalized before returning, and `tail`
        // points into `rest` (or is null).
        let (rc, has_statement, end) = unsafe {
            let rc = ffi::sqlite3_prepare_v3(
                conn.handle(),
                rest.as_ptr().cast(),
                -1,
                0,
                &mut stmt,
                &mut tail,
            );
            let has_statement = !stmt.is_null();
            ffi::sqlite3_finalize(stmt);
            let end = if tail.is_null() {
                rest_len
            } else {
                tail.offset_from(rest.as_ptr().cast()) as usize
            };
            (rc, has_statement, end)
        };
        // A character boundary: the end, or a byte that starts a character.
        let boundary = |end: usize| end == rest_len || (rest[end] as i8) >= -0x40;
        if rc != ffi::SQLITE_OK || end == 0 || end > rest_len || !boundary(end) {
            return (rest_len, true);
        }
        (end, has_statement)
    }
}

/// Whether `sql` may hold a single statement: it has no `;`, or only one
/// followed by nothing but whitespace. A script never passes; a statement
/// with a `;` inside a literal or a trigger body does not either (it runs as
/// a script of one statement).
///
/// Nor does SQL with other Unicode whitespace at either end: rusqlite's
/// statement cache prepares `sql.trim()`, and SQLite reads such characters
/// (U+00A0, U+3000, …) as part of a name, or refuses them (U+000B). That SQL
/// runs as a script, so SQLite sees all of it.
pub fn may_be_single(sql: &str) -> bool {
    sql.trim().len() == sql.trim_matches(is_sqlite_space).len()
        && sql
            .find(';')
            .is_none_or(|at| sql[at + 1..].trim_start_matches(is_sqlite_space).is_empty())
}

/// Whitespace to SQLite's tokenizer.
fn is_sqlite_space(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\n' | '\x0c' | '\r')
}

/// The first word of `sql`, after whitespace and comments (empty if none):
/// the keyword that says what kind of statement it is.
pub fn first_word(sql: &str) -> &[u8] {
    let mut rest = sql.as_bytes();
    let rest = loop {
        let trimmed = rest.trim_ascii_start();
        rest = if let Some(comment) = trimmed.strip_prefix(b"--") {
            comment
                .iter()
                .position(|&b| b == b'\n')
                .map_or(&[][..], |end| &comment[end..])
        } else if let Some(comment) = trimmed.strip_prefix(b"/*") {
            comment
                .windows(2)
                .position(|w| w == b"*/")
                .map_or(&[][..], |end| &comment[end + 2..])
        } else {
            break trimmed;
        };
    };
    let end = rest
        .iter()
        .position(|&b| !(b.is_ascii_alphanumeric() || b == b'_' || b >= 0x80))
        .unwrap_or(rest.len());
    &rest[..end]
}

/// Instructions that loop over rows, or do work that grows with the
/// database (clearing a table, checking it, changing the schema).
const HEAVY_OPS: &[&str] = &[
    "Next",
    "Prev",
    "SorterNext",
    "SorterSort",
    "Sort",
    "Rewind",
    "Last",
    "VNext",
    "VFilter",
    "RowSetRead",
    "Program",
    "Clear",
    "Destroy",
    "DropTable",
    "IntegrityCk",
    "ParseSchema",
    "SqlExec",
    "Vacuum",
    "IncrVacuum",
    "Count",
    "Yield",
    // A write to a virtual table: its module may do any amount of work in
    // one call (FTS5's 'rebuild' and 'optimize' commands go over the whole
    // index), which nothing can stop.
    "VUpdate",
    "VDestroy",
];

/// Whether the statement `sql` may run long: its program loops (over rows,
/// a subquery, a trigger) or does work that grows with the data. A
/// statement without either does a bounded number of B-tree steps. When its
/// program cannot be read, it counts as heavy.
pub fn is_heavy(conn: &Connection, sql: &str) -> bool {
    explain_heavy(conn, sql).unwrap_or(true)
}

fn explain_heavy(conn: &Connection, sql: &str) -> rusqlite::Result<bool> {
    let mut stmt = conn.prepare(&format!("EXPLAIN {sql}"))?;
    let mut rows = stmt.raw_query();
    while let Some(row) = rows.next()? {
        let addr: i64 = row.get(0)?;
        let opcode: String = row.get(1)?;
        let p2: i64 = row.get(3)?;
        if HEAVY_OPS.contains(&opcode.as_str()) {
            return Ok(true);
        }
        // A jump back is a loop, but for the jump from the end of the
        // program to its start (address 1) that every program makes once.
        if opcode == "Goto" && p2 <= addr && p2 > 1 {
            return Ok(true);
        }
    }
    Ok(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tells_scripts_from_single_statements() {
        for sql in [
            "SELECT 1",
            "SELECT 1;",
            "SELECT 1; \n",
            "",
            "  ",
            "\t\r\n\x0c SELECT 1 \x0c",
        ] {
            assert!(may_be_single(sql), "{sql:?}");
        }
        for sql in [
            "SELECT 1; SELECT 2",
            "SELECT 1;;",
            "SELECT 1; -- done",
            "INSERT INTO t VALUES ('a;b')",
            // Whitespace to Rust, not to SQLite: rusqlite's cache would trim it.
            "SELECT v FROM t\u{3000}",
            "\u{a0}SELECT 1",
            "SELECT 1\x0b",
            "SELECT 1;\u{2028}",
        ] {
            assert!(!may_be_single(sql), "{sql:?}");
        }
    }

    #[test]
    fn finds_the_first_keyword_past_whitespace_and_comments() {
        for sql in [
            "VACUUM",
            "vacuum;",
            "  \n\tVacuum main",
            "-- tidy\nVACUUM",
            "/* a */ /* b */VACUUM",
            "/**/VACUUM",
        ] {
            assert!(first_word(sql).eq_ignore_ascii_case(b"VACUUM"), "{sql:?}");
        }
        for sql in [
            "",
            "VACUUMED",
            "vacuum_t",
            "SELECT 'VACUUM'",
            "-- VACUUM",
            "/* VACUUM",
            "/* VACUUM */",
            "VACUU",
        ] {
            assert!(!first_word(sql).eq_ignore_ascii_case(b"VACUUM"), "{sql:?}");
        }
    }

    #[test]
    fn splits_scripts_at_statements() {
        let conn = Connection::open_in_memory().unwrap();
        let sql = "SELECT 1; SELECT ';' -- x;\n; /* c */ SELECT 3";
        let script = Script::new(sql);
        let (a, has) = script.first_statement(&conn, 0);
        assert!(has);
        assert_eq!(&sql[..a], "SELECT 1;");
        let (b, has) = script.first_statement(&conn, a);
        assert!(has);
        assert_eq!(&sql[a..a + b], " SELECT ';' -- x;\n;");
        let (c, has) = script.first_statement(&conn, a + b);
        assert!(has);
        assert_eq!(c, sql.len() - a - b);
        let (_, has) = Script::new("  -- only a comment").first_statement(&conn, 0);
        assert!(!has);
        // A text SQLite cannot compile is taken whole, from where it is.
        let bad = Script::new("SELECT 1; SELEC 2; SELECT 3");
        assert_eq!(bad.first_statement(&conn, 9), (18, true));
    }

    #[test]
    fn knows_loops_from_point_statements() {
        let conn = Connection::open_in_memory().unwrap();
        conn.execute_batch(
            "CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT UNIQUE, b BLOB);
             CREATE TABLE u(x);
             CREATE TRIGGER tr AFTER INSERT ON u BEGIN DELETE FROM t; END;",
        )
        .unwrap();
        for light in [
            "INSERT INTO t(v, b) VALUES (?, ?)",
            "UPDATE t SET v = ? WHERE id = ?",
            "DELETE FROM t WHERE id = 5",
            "INSERT OR REPLACE INTO t(id, v) VALUES (1, 'x')",
            "SELECT v FROM t WHERE id = 1",
        ] {
            assert!(!is_heavy(&conn, light), "{light}");
        }
        for heavy in [
            "UPDATE t SET v = v || 'x'",
            "DELETE FROM t",
            "INSERT INTO t(v) SELECT v || 'y' FROM t",
            "INSERT INTO u VALUES (1)",
            "CREATE INDEX i ON t(b)",
            "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT count(*) FROM c",
            "INSERT INTO t(v) VALUES ('a'), ('b'), ('c')",
            "not sql",
        ] {
            assert!(is_heavy(&conn, heavy), "{heavy}");
        }
    }
}
