//! What SQL may do here: the rules of the authorizer every connection gets.
//!
//! The KV is the database's only durable home, so nothing a statement does
//! may reach a host file or change how the file maps onto KV chunks. The VFS
//! shim refuses unknown files as a second line; these rules refuse the
//! statements up front, with `SQLITE_AUTH` ("not authorized").

use rusqlite::ffi;
use rusqlite::hooks::{AuthAction, AuthContext, Authorization};

/// Pragmas that may be read but not set: they would change the journal, the
/// locking, the page size or memory mapping the persistence relies on, send
/// temporary data to host files, or let SQL rewrite the schema table.
const READ_ONLY_PRAGMAS: &[&str] = &[
    "journal_mode",
    "locking_mode",
    "page_size",
    "mmap_size",
    "temp_store",
    "writable_schema",
    "schema_version",
];

/// Pragmas that may not be used at all: they name host directories.
const DENIED_PRAGMAS: &[&str] = &["temp_store_directory", "data_store_directory"];

/// The authorizer of every connection.
pub fn authorize(context: AuthContext<'_>) -> Authorization {
    match context.action {
        // Only in-memory databases may be attached, named by a literal: a
        // name computed by an expression or bound as a parameter is not known
        // when the statement is prepared, so it is refused.
        AuthAction::Unknown {
            code: ffi::SQLITE_ATTACH,
            ..
        } => Authorization::Deny,
        AuthAction::Attach { filename } => {
            if filename.is_empty() || filename == ":memory:" {
                Authorization::Allow
            } else {
                Authorization::Deny
            }
        }
        AuthAction::Pragma {
            pragma_name,
            pragma_value,
        } => {
            let name = pragma_name.to_ascii_lowercase();
            if DENIED_PRAGMAS.contains(&name.as_str())
                || (pragma_value.is_some() && READ_ONLY_PRAGMAS.contains(&name.as_str()))
            {
                Authorization::Deny
            } else {
                Authorization::Allow
            }
        }
        AuthAction::Function { function_name }
            if function_name.eq_ignore_ascii_case("load_extension") =>
        {
            Authorization::Deny
        }
        _ => Authorization::Allow,
    }
}
