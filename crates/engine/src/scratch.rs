//! Where databases keep their local files, and what a process that died
//! left there.
//!
//! A process keeps one directory of its own in the OS temporary directory,
//! `rivetkit-sqlite-XXXXXX`, private to its user (0700 on Unix), and each
//! database a file inside it, `db-XXXXXX` (and SQLite's `db-XXXXXX-journal`
//! beside it, when a hot journal is brought from the KV): no directory of
//! its own, whose removal cost 100 µs of an open and close (ext4 with
//! `discard`, which frees a directory's block at once). Each database's
//! files are removed when it closes, and the process's directory once no
//! database and no [`Hold`] keeps it: the binding holds it for each JS
//! thread that opened a database, until that thread's environment goes
//! away, so that a process opening and closing one database at a time does
//! not make and remove it each time (which doubled the cost of an open and
//! close). A directory removed from under the process (by a cleaner of old
//! temporary files, say) is made again for the next database.
//!
//! A process killed with databases open (SIGKILL, the OOM killer, a crash)
//! removes nothing: its databases' pages would stay on the disk (or, on a
//! tmpfs, in memory) for good. So the process's directory holds a lock file,
//! locked (`File::lock`: `flock` on Unix, `LockFileEx` on Windows) for as long
//! as the directory is in use, and written to once locked. The OS releases
//! the lock when its holder dies, however it dies. The first database of a
//! process sweeps, on a thread of its own, the directories of that name
//! whose lock it can take and that were written to: their owner is gone.
//! A lock file still empty belongs to a process between creating it and
//! locking it, and is left alone; so is anything without a lock file, or
//! not a directory, or (on Unix) another user's. The lock file is removed
//! last, so that what a removal cut short leaves is swept in turn.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, Once, Weak};

/// Prefix of a process's directory in the OS temporary directory.
const PREFIX: &str = "rivetkit-sqlite-";
/// The lock file in a process's directory.
const LOCK: &str = "owner.lock";
/// What SQLite appends to a database's path for its rollback journal.
pub const JOURNAL_SUFFIX: &str = "-journal";

/// A process's directory. Dropped with the last database or [`Hold`] that
/// uses it.
struct ProcessDir {
    path: PathBuf,
    lock: Option<File>,
}

/// The process's directory while a database or a [`Hold`] uses it.
static CURRENT: Mutex<Weak<ProcessDir>> = Mutex::new(Weak::new());
static SWEEP: Once = Once::new();

/// A database's local file: removed, with the journal SQLite may have made
/// beside it, on [`LocalFile::close`] or drop.
pub struct LocalFile {
    // Field order matters for Drop: the database's files go before the
    // process's directory that holds them.
    path: Option<PathBuf>,
    _process: Arc<ProcessDir>,
}

impl LocalFile {
    /// A new, empty file for one database.
    pub fn new() -> io::Result<Self> {
        let mut process = process_dir(None)?;
        let made = match make_file(&process) {
            // The process's directory was removed from under it (by a
            // cleaner of old temporary files, say): a new one.
            Err(error) if error.kind() == io::ErrorKind::NotFound => {
                process = process_dir(Some(&process))?;
                make_file(&process)
            }
            made => made,
        };
        Ok(LocalFile {
            path: Some(made?),
            _process: process,
        })
    }

    /// The file's path: canonical, as SQLite resolves the paths it opens.
    pub fn path(&self) -> &Path {
        self.path
            .as_deref()
            .expect("a LocalFile has its path until it closes")
    }

    /// Removes the file and its journal.
    pub fn close(mut self) -> io::Result<()> {
        match self.path.take() {
            Some(path) => remove_database(&path),
            None => Ok(()),
        }
    }
}

impl Drop for LocalFile {
    fn drop(&mut self) {
        if let Some(path) = self.path.take() {
            let _ = remove_database(&path);
        }
    }
}

/// Removes a database's file `path` and SQLite's journal beside it.
fn remove_database(path: &Path) -> io::Result<()> {
    let mut journal = path.as_os_str().to_owned();
    journal.push(JOURNAL_SUFFIX);
    let mut result = Ok(());
    for file in [path.as_os_str(), journal.as_os_str()] {
        match fs::remove_file(file) {
            Err(error) if error.kind() != io::ErrorKind::NotFound && result.is_ok() => {
                result = Err(error)
            }
            _ => {}
        }
    }
    result
}

/// Keeps the process's directory while it lives (see the module's
/// documentation).
pub struct Hold {
    _dir: Arc<ProcessDir>,
}

/// A [`Hold`] of the process's directory, if it has one now.
pub fn hold() -> Option<Hold> {
    let current = CURRENT
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    current.upgrade().map(|dir| Hold { _dir: dir })
}

/// A new, empty file for a database in `process`'s directory.
fn make_file(process: &ProcessDir) -> io::Result<PathBuf> {
    let (_, path) = tempfile::Builder::new()
        .prefix("db-")
        .tempfile_in(&process.path)?
        .keep()
        .map_err(|error| error.error)?;
    Ok(path)
}

/// The process's directory, created if nothing uses one now, or if the one
/// in use is `gone` (its directory was removed).
fn process_dir(gone: Option<&Arc<ProcessDir>>) -> io::Result<Arc<ProcessDir>> {
    let mut current = CURRENT
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    if let Some(dir) = current.upgrade() {
        if !gone.is_some_and(|gone| Arc::ptr_eq(gone, &dir)) {
            return Ok(dir);
        }
    }
    let dir = Arc::new(ProcessDir::create()?);
    *current = Arc::downgrade(&dir);
    let (parent, own) = (std::env::temp_dir(), dir.path.clone());
    SWEEP.call_once(|| {
        // Best effort, off the caller's thread: a failure to sweep (or to
        // start the thread) leaves what was there before.
        let _ = std::thread::Builder::new()
            .name("rivetkit-sqlite-sweep".into())
            .spawn(move || sweep(&parent, &own));
    });
    Ok(dir)
}

impl ProcessDir {
    fn create() -> io::Result<Self> {
        let mut builder = tempfile::Builder::new();
        builder.prefix(PREFIX);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            builder.permissions(fs::Permissions::from_mode(0o700));
        }
        let dir = builder.tempdir()?;
        // Canonical, so the paths of the databases inside are too.
        let path = fs::canonicalize(dir.path())?;
        let mut lock = File::create(path.join(LOCK))?;
        // Written once locked: a sweeper that takes the lock of a file with
        // something in it knows the owner is gone. Where the file system
        // cannot lock (some network or FUSE file systems), or the write
        // fails (a full disk), the file stays empty: sweepers leave the
        // directory alone, and only this process removes it.
        if lock.lock().is_ok() {
            let _ = lock.write_all(format!("{}\n", std::process::id()).as_bytes());
        }
        // From here on the lock, not the TempDir, decides when it goes.
        let _ = dir.keep();
        Ok(ProcessDir {
            path,
            lock: Some(lock),
        })
    }
}

impl Drop for ProcessDir {
    fn drop(&mut self) {
        // The lock goes first (Windows removes no open file); a sweeper that
        // takes it in between removes the directory too, which is as well.
        drop(self.lock.take());
        remove(&self.path);
    }
}

/// Removes a process's directory `dir`, its lock file last: a process that
/// dies meanwhile leaves what is left to the next sweep, which needs the
/// lock file to know it may.
fn remove(dir: &Path) {
    if let Ok(entries) = fs::read_dir(dir) {
        for entry in entries.flatten() {
            if entry.file_name() == LOCK {
                continue;
            }
            // The entry itself, not what a symbolic link points to.
            let path = entry.path();
            let _ = match entry.file_type() {
                Ok(kind) if kind.is_dir() => fs::remove_dir_all(&path),
                _ => fs::remove_file(&path),
            };
        }
    }
    let _ = fs::remove_file(dir.join(LOCK));
    let _ = fs::remove_dir(dir);
}

/// Removes the directories in `parent` left by processes that are gone
/// (see the module's documentation); `own` is this process's.
fn sweep(parent: &Path, own: &Path) {
    let Ok(entries) = fs::read_dir(parent) else {
        return;
    };
    #[cfg(unix)]
    let uid = {
        use std::os::unix::fs::MetadataExt;
        match fs::metadata(own) {
            Ok(meta) => meta.uid(),
            Err(_) => return,
        }
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let ours = entry
            .file_name()
            .to_str()
            .is_some_and(|name| name.starts_with(PREFIX));
        if !ours || fs::canonicalize(&path).is_ok_and(|path| path == own) {
            continue;
        }
        // The entry itself, not what a symbolic link points to.
        let Ok(meta) = fs::symlink_metadata(&path) else {
            continue;
        };
        if !meta.is_dir() {
            continue;
        }
        #[cfg(unix)]
        {
            use std::os::unix::fs::MetadataExt;
            if meta.uid() != uid {
                continue;
            }
        }
        if owner_gone(&path) {
            remove(&path);
        }
    }
}

/// Whether the process that made the directory `dir` is gone: its lock file
/// was written to, and its lock can be taken.
fn owner_gone(dir: &Path) -> bool {
    let Ok(lock) = OpenOptions::new().read(true).open(dir.join(LOCK)) else {
        return false;
    };
    if lock.try_lock().is_err() {
        return false;
    }
    lock.metadata().is_ok_and(|meta| meta.len() > 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A directory in `parent` as a process would leave it: its lock file
    /// holding `lock` (None: no lock file), and a database's files.
    fn process_dir(parent: &Path, name: &str, lock: Option<&[u8]>) -> PathBuf {
        let dir = parent.join(name);
        fs::create_dir_all(&dir).unwrap();
        fs::write(dir.join("db-x"), b"pages").unwrap();
        fs::write(dir.join("db-x-journal"), b"images").unwrap();
        if let Some(bytes) = lock {
            fs::write(dir.join(LOCK), bytes).unwrap();
        }
        dir
    }

    #[test]
    fn sweep_removes_only_what_dead_processes_left() {
        let parent = tempfile::tempdir().unwrap();
        let parent = fs::canonicalize(parent.path()).unwrap();
        let own = process_dir(&parent, "rivetkit-sqlite-own", Some(b"1\n"));
        let dead = process_dir(&parent, "rivetkit-sqlite-dead", Some(b"1\n"));
        let creating = process_dir(&parent, "rivetkit-sqlite-creating", Some(b""));
        let unlocked = process_dir(&parent, "rivetkit-sqlite-nolock", None);
        let other = process_dir(&parent, "other-dead", Some(b"1\n"));
        let live = process_dir(&parent, "rivetkit-sqlite-live", Some(b"1\n"));
        // Held through another open file, as another process holds it.
        let held = File::open(live.join(LOCK)).unwrap();
        held.lock().unwrap();
        // As a sweep that was cut short leaves it: the lock file, nothing else.
        let emptied = parent.join("rivetkit-sqlite-emptied");
        fs::create_dir(&emptied).unwrap();
        fs::write(emptied.join(LOCK), b"1\n").unwrap();
        let file = parent.join("rivetkit-sqlite-file");
        fs::write(&file, b"not a directory").unwrap();

        sweep(&parent, &own);

        assert!(!dead.exists(), "a dead process's directory is removed");
        assert!(!emptied.exists(), "and one whose removal was cut short");
        for kept in [&own, &creating, &unlocked, &other, &live, &file] {
            assert!(kept.exists(), "{} is kept", kept.display());
        }
        assert!(own.join("db-x").exists());
        drop(held);
        sweep(&parent, &own);
        assert!(!live.exists(), "removed once its owner is gone");
    }

    #[cfg(unix)]
    #[test]
    fn sweep_does_not_follow_symbolic_links() {
        let parent = tempfile::tempdir().unwrap();
        let parent = fs::canonicalize(parent.path()).unwrap();
        let elsewhere = tempfile::tempdir().unwrap();
        let target = process_dir(elsewhere.path(), "target", Some(b"1\n"));
        let own = process_dir(&parent, "rivetkit-sqlite-own", Some(b"1\n"));
        let link = parent.join("rivetkit-sqlite-link");
        std::os::unix::fs::symlink(&target, &link).unwrap();

        sweep(&parent, &own);

        assert!(
            target.join("db-x").exists(),
            "what the link points to is kept"
        );
        assert!(fs::symlink_metadata(&link).is_ok());
    }

    #[test]
    fn the_process_directory_goes_with_its_last_database_or_hold() {
        let first = LocalFile::new().unwrap();
        let second = LocalFile::new().unwrap();
        let process = first.path().parent().unwrap().to_path_buf();
        assert_eq!(second.path().parent().unwrap(), process);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = fs::metadata(&process).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o700);
        }
        let lock = File::open(process.join(LOCK)).unwrap();
        assert!(lock.try_lock().is_err(), "its lock is held");
        drop(lock);
        // A database's journal goes with it.
        let journal = format!("{}-journal", first.path().display());
        fs::write(&journal, b"images").unwrap();
        let held = hold().unwrap();
        let first_path = first.path().to_path_buf();
        first.close().unwrap();
        assert!(!first_path.exists() && !Path::new(&journal).exists());
        assert!(process.exists());
        second.close().unwrap();
        assert!(process.exists(), "kept by its hold");
        let third = LocalFile::new().unwrap();
        assert_eq!(third.path().parent().unwrap(), process);
        let dropped = third.path().to_path_buf();
        drop(third);
        assert!(!dropped.exists(), "removed when dropped without close");
        drop(held);
        assert!(!process.exists());

        // A directory removed from under its databases is made again.
        // (Here, not in a test of its own: tests run at once, and share it.)
        let before = LocalFile::new().unwrap();
        let removed = before.path().parent().unwrap().to_path_buf();
        fs::remove_dir_all(&removed).unwrap();
        let after = LocalFile::new().unwrap();
        let made = after.path().parent().unwrap().to_path_buf();
        assert_ne!(made, removed);
        assert!(after.path().exists());
        assert!(before.close().is_ok(), "its files are gone already");
        after.close().unwrap();
        assert!(!made.exists());
    }
}
