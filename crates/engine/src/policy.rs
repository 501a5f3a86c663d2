//! What SQL may do here: the rules of the authorizer every connection gets.
//!
//! The KV is the database's only durable home, so nothing a statement does
//! may reach a host file or change how the file maps onto KV chunks. The VFS
//! shim refuses unknown files as a second line; these rules refuse the
//! statements up front, with `SQLITE_AUTH` ("not authorized").

use rusqlite::ffi;
use std::ffi::c_int;

use rusqlite::hooks::Authorization;
use rusqlite::limits::Limit;

/// The rules, shared with the WASM engine: `read-only NAME`, `denied NAME`
/// or `only NAME VALUE…` for pragmas, `limit NAME VALUE` for SQLite's
/// limits, `kept NAME` for the settings a restore keeps, one per line (see
/// the file for why each is there).
const RULES: &str = include_str!("../../../lib/policy.txt");

/// The rules' lines, as words.
fn rules() -> impl Iterator<Item = std::str::SplitWhitespace<'static>> {
    RULES
        .lines()
        .filter(|line| !line.starts_with('#'))
        .map(str::split_whitespace)
}

/// What the rules say of pragma `name` (lower case), set to `value` or read
/// (`None`): allowed, refused, or ignored (a `fixed` one set to another
/// value: it does nothing, with no error).
fn pragma_rule(name: &str, value: Option<&str>) -> Authorization {
    let mut decision = Authorization::Allow;
    for mut words in rules() {
        let (Some(kind), Some(pragma)) = (words.next(), words.next()) else {
            continue;
        };
        if pragma != name {
            continue;
        }
        // Set to one of the values the rule lists.
        let listed = value.is_some_and(|value| words.any(|word| word.eq_ignore_ascii_case(value)));
        decision = match (kind, value.is_some(), listed) {
            ("denied", _, _) | ("read-only", true, _) | ("only", true, false) => {
                Authorization::Deny
            }
            ("fixed", true, false) => Authorization::Ignore,
            _ => continue,
        };
    }
    decision
}

fn limit_named(name: &str) -> Option<Limit> {
    Some(match name {
        "length" => Limit::SQLITE_LIMIT_LENGTH,
        "sql_length" => Limit::SQLITE_LIMIT_SQL_LENGTH,
        "column" => Limit::SQLITE_LIMIT_COLUMN,
        "expr_depth" => Limit::SQLITE_LIMIT_EXPR_DEPTH,
        "compound_select" => Limit::SQLITE_LIMIT_COMPOUND_SELECT,
        "vdbe_op" => Limit::SQLITE_LIMIT_VDBE_OP,
        "function_arg" => Limit::SQLITE_LIMIT_FUNCTION_ARG,
        "attached" => Limit::SQLITE_LIMIT_ATTACHED,
        "like_pattern_length" => Limit::SQLITE_LIMIT_LIKE_PATTERN_LENGTH,
        "variable_number" => Limit::SQLITE_LIMIT_VARIABLE_NUMBER,
        "trigger_depth" => Limit::SQLITE_LIMIT_TRIGGER_DEPTH,
        "worker_threads" => Limit::SQLITE_LIMIT_WORKER_THREADS,
        _ => return None,
    })
}

/// The settings of a connection that outlive a restore (`kept NAME`
/// rules): the engine reads them before it closes SQLite and sets them again
/// once it has connected it again. Each comes with the words that set the
/// values it reads as 0, 1, 2… when a number would not (`secure_delete`
/// reads FAST as 2, but takes 2 as ON), or none.
pub fn kept() -> impl Iterator<Item = (&'static str, Vec<&'static str>)> {
    rules().filter_map(|mut words| match words.next() {
        Some("kept") => words.next().map(|name| (name, words.collect())),
        _ => None,
    })
}

/// The value of this package's bound `name` (a `bound NAME VALUE` rule), or
/// `None` if no rule sets it.
pub fn bound(name: &str) -> Option<u64> {
    rules().find_map(|mut words| match (words.next(), words.next()) {
        (Some("bound"), Some(rule)) if rule == name => words.next()?.parse().ok(),
        _ => None,
    })
}

/// The limits every connection gets: `(limit, value)`, or the rule that
/// names no limit or no value.
pub fn limits() -> impl Iterator<Item = Result<(Limit, i32), String>> {
    rules().filter_map(|mut words| {
        if words.next() != Some("limit") {
            return None;
        }
        let name = words.next().unwrap_or("");
        let value = words.next().and_then(|value| value.parse().ok());
        Some(match (limit_named(name), value) {
            (Some(limit), Some(value)) => Ok((limit, value)),
            _ => Err(format!("lib/policy.txt: bad limit rule for \"{name}\"")),
        })
    })
}

/// An authorizer request as SQLite makes it (see `sqlite3_set_authorizer`):
/// its action code and its first two arguments, whose meaning depends on
/// the code (a pragma's name and value, an attached file's name; a
/// function's name is the second).
#[derive(Clone, Copy, Debug)]
pub struct Request<'a> {
    pub code: c_int,
    pub arg1: Option<&'a str>,
    pub arg2: Option<&'a str>,
}

/// The rules of the authorizer of every connection (see authorizer.rs).
pub fn authorize(request: Request<'_>) -> Authorization {
    match (request.code, request.arg1) {
        // Only in-memory databases may be attached, named by a literal: a
        // name computed by an expression or bound as a parameter is not known
        // when the statement is prepared (no argument), so it is refused.
        (ffi::SQLITE_ATTACH, Some(filename)) if filename.is_empty() || filename == ":memory:" => {
            Authorization::Allow
        }
        (ffi::SQLITE_ATTACH, _) => Authorization::Deny,
        (ffi::SQLITE_PRAGMA, Some(pragma_name)) => {
            pragma_rule(&pragma_name.to_ascii_lowercase(), request.arg2)
        }
        (ffi::SQLITE_FUNCTION, _)
            if request
                .arg2
                .is_some_and(|name| name.eq_ignore_ascii_case("load_extension")) =>
        {
            Authorization::Deny
        }
        _ => Authorization::Allow,
    }
}

/// Whether a statement making `request` may change what other statements
/// compile to: anything but reading and writing rows, calling a function,
/// a transaction or savepoint, and reading a pragma. A trigger, table,
/// view, index or virtual table created, dropped or altered, a database
/// attached or detached (a name may then mean another table), `ANALYZE`,
/// a pragma set (`foreign_keys` adds the cascades of a `DELETE`,
/// `recursive_triggers` lets a trigger loop), or what SQLite does not name.
pub fn changes_programs(request: Request<'_>) -> bool {
    !matches!(
        (request.code, request.arg2),
        (ffi::SQLITE_READ, _)
            | (ffi::SQLITE_SELECT, _)
            | (ffi::SQLITE_INSERT, _)
            | (ffi::SQLITE_UPDATE, _)
            | (ffi::SQLITE_DELETE, _)
            | (ffi::SQLITE_FUNCTION, _)
            | (ffi::SQLITE_TRANSACTION, _)
            | (ffi::SQLITE_SAVEPOINT, _)
            | (ffi::SQLITE_RECURSIVE, _)
            | (ffi::SQLITE_PRAGMA, None)
    )
}
