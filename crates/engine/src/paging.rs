//! Lazy paging: the local file is a page cache of the KV, and a chunk SQLite
//! needs that is not local yet is read from the KV first.
//!
//! Only the JS thread can call the KV. An engine thread that needs chunks asks
//! its [`PageSource`] (the binding hands the request to JS and waits for the
//! answer); on the JS thread itself there is no source, so a miss stops the
//! statement with [`Stop::Miss`], and the engine finishes the call on an
//! engine thread, as it does when the inline budget runs out.

use std::ffi::c_int;
use std::sync::{Arc, Mutex, MutexGuard};

use rusqlite::ffi;

use crate::control::{Control, Stop};
use crate::tracker::Tracker;

/// Chunks read from the KV, in the order asked for: their bytes end to end
/// (one buffer: a cold scan hands over thousands at a time), and the length
/// of each (`None`: the KV has no such chunk).
#[derive(Default)]
pub struct Fetched {
    pub bytes: Vec<u8>,
    pub lengths: Vec<Option<usize>>,
}

impl Fetched {
    /// From chunks one by one.
    pub fn from_chunks<'a>(chunks: impl IntoIterator<Item = Option<&'a [u8]>>) -> Self {
        let mut fetched = Fetched::default();
        for chunk in chunks {
            fetched.lengths.push(chunk.map(<[u8]>::len));
            fetched.bytes.extend_from_slice(chunk.unwrap_or_default());
        }
        fetched
    }

    /// Each chunk, in order.
    pub fn chunks(&self) -> Option<Vec<Option<&[u8]>>> {
        let mut at = 0usize;
        let mut out = Vec::with_capacity(self.lengths.len());
        for length in &self.lengths {
            out.push(match length {
                Some(len) => {
                    let chunk = self.bytes.get(at..at.checked_add(*len)?)?;
                    at += len;
                    Some(chunk)
                }
                None => None,
            });
        }
        (at == self.bytes.len()).then_some(out)
    }
}

/// Why a fetch gave no chunks.
pub enum FetchError {
    /// The KV failed (its error stays on the JS side; this is its message).
    Failed(String),
    /// The call was interrupted, or passed its deadline, while waiting.
    Stopped,
}

/// Reads chunks of the main file from the KV for an engine thread.
pub trait PageSource: Send + Sync {
    /// Blocks until chunks `indices` are read, or the call is stopped (checked
    /// with `control` while waiting).
    fn fetch(&self, indices: &[u32], control: &Control) -> Result<Fetched, FetchError>;
}

/// What the VFS shim knows of an open main database file.
pub struct FileState {
    pub tracker: Mutex<Tracker>,
    pub control: Arc<Control>,
    source: Mutex<Option<Arc<dyn PageSource>>>,
    /// The message of the last failed page read or truncation.
    failure: Mutex<Option<String>>,
}

fn lock<T: ?Sized>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl FileState {
    pub fn new(tracker: Tracker, control: Arc<Control>) -> Self {
        FileState {
            tracker: Mutex::new(tracker),
            control,
            source: Mutex::new(None),
            failure: Mutex::new(None),
        }
    }

    /// Locks the tracker, ignoring poisoning (a panic never leaves it
    /// half-updated in a way that matters more than the error the caller
    /// already reported).
    pub fn tracker(&self) -> MutexGuard<'_, Tracker> {
        lock(&self.tracker)
    }

    /// Where pages come from while this thread runs the database (`None`:
    /// this thread may not wait for the KV).
    pub fn set_source(&self, source: Option<Arc<dyn PageSource>>) {
        *lock(&self.source) = source;
    }

    /// Takes the message of the last failed page read or truncation.
    pub fn take_failure(&self) -> Option<String> {
        lock(&self.failure).take()
    }

    /// Notes why a truncation failed, for the error of the statement that
    /// made it (SQLite's own message for it is "disk I/O error").
    pub fn note_failed_truncation(&self, message: String) {
        *lock(&self.failure) = Some(message);
    }

    /// Makes the chunks SQLite is about to read local (for a write: those it
    /// covers in part). Returns SQLite's result code on failure: the
    /// statement stops with `SQLITE_INTERRUPT` and [`Control::stopped`] says
    /// why (a miss on the JS thread, a failed read, an interrupt).
    pub fn make_local(&self, offset: u64, len: u64, write: bool) -> Result<(), c_int> {
        loop {
            let wanted = {
                let mut tracker = self.tracker();
                if write {
                    tracker.plan_fetch_for_write(offset, len)
                } else {
                    tracker.plan_fetch(offset, len)
                }
            };
            let Some(wanted) = wanted else {
                return Ok(());
            };
            let source = lock(&self.source).clone();
            let Some(source) = source else {
                self.control.stop_for(Stop::Miss);
                return Err(ffi::SQLITE_INTERRUPT);
            };
            match source.fetch(&wanted, &self.control) {
                Ok(fetched) => {
                    let chunks = fetched.chunks().filter(|c| c.len() == wanted.len());
                    let Some(chunks) = chunks else {
                        *lock(&self.failure) = Some(format!(
                            "malformed answer to a request for {} chunks",
                            wanted.len()
                        ));
                        self.control.stop_for(Stop::ReadFailed);
                        return Err(ffi::SQLITE_INTERRUPT);
                    };
                    if self.tracker().fill(&wanted, &chunks).is_err() {
                        return Err(ffi::SQLITE_IOERR_READ);
                    }
                }
                Err(FetchError::Failed(message)) => {
                    *lock(&self.failure) = Some(message);
                    self.control.stop_for(Stop::ReadFailed);
                    return Err(ffi::SQLITE_INTERRUPT);
                }
                // Control::should_stop recorded why.
                Err(FetchError::Stopped) => return Err(ffi::SQLITE_INTERRUPT),
            }
        }
    }
}
