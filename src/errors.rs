//! Engine errors as JS errors.

use napi::bindgen_prelude::*;

use rivetkit_sqlite_engine::errors::{code_name, disk_full, EngineError};

/// An engine error as a JS error whose `code` says what it is: SQLite's
/// extended result code name, `ERR_SQLITE_RANGE` for parameters that do not
/// fit, `ERR_SQLITE_CLOSED` after close. The JS layer turns these into
/// `SqliteError`, `RangeError` and `Error`.
pub(crate) fn to_js(error: EngineError) -> Error<String> {
    match error {
        EngineError::Sqlite { code, message } => Error::new(code_name(code), message),
        EngineError::Range(message) => Error::new("ERR_SQLITE_RANGE".to_owned(), message),
        EngineError::Closed => Error::new(
            "ERR_SQLITE_CLOSED".to_owned(),
            "The database is closed".to_owned(),
        ),
        EngineError::Io(error) if disk_full(&error) => Error::new(
            "SQLITE_FULL".to_owned(),
            format!("local file I/O failed: {error}"),
        ),
        EngineError::Io(error) => Error::new(
            "SQLITE_IOERR".to_owned(),
            format!("local file I/O failed: {error}"),
        ),
    }
}

pub(crate) fn napi_err(error: Error) -> Error<String> {
    Error::new(error.status.as_ref().to_owned(), error.reason.clone())
}
