//! Positional file I/O on Unix and Windows: reads and writes at an offset,
//! never through a shared file cursor. (On Windows the calls also move the
//! handle's cursor, which nothing here uses.)

use std::fs::File;
use std::io;

/// Reads up to `buf.len()` bytes at `offset`; returns how many were read
/// (0 at end of file).
pub fn read_at(file: &File, buf: &mut [u8], offset: u64) -> io::Result<usize> {
    #[cfg(unix)]
    return std::os::unix::fs::FileExt::read_at(file, buf, offset);
    #[cfg(windows)]
    return std::os::windows::fs::FileExt::seek_read(file, buf, offset);
}

fn write_at(file: &File, buf: &[u8], offset: u64) -> io::Result<usize> {
    #[cfg(unix)]
    return std::os::unix::fs::FileExt::write_at(file, buf, offset);
    #[cfg(windows)]
    return std::os::windows::fs::FileExt::seek_write(file, buf, offset);
}

/// Writes all of `buf` at `offset`.
pub fn write_all_at(file: &File, mut buf: &[u8], mut offset: u64) -> io::Result<()> {
    while !buf.is_empty() {
        match write_at(file, buf, offset) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => {
                buf = &buf[n..];
                offset += n as u64;
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Most bytes [`Runs`] gathers into one write (64 chunks: larger writes
/// gained nothing more in a measurement on ext4).
pub const RUN_BYTES: usize = 256 * 1024;

/// Writes pieces of a file, gathering neighbours into one write of up to
/// [`RUN_BYTES`]: a file system charges much of a write's cost per call
/// (ext4 took about five times as long to append 1 MiB a page at a time as
/// in one write). A piece alone is written without a copy. Call
/// [`Runs::flush`] at the end; a piece is on disk only once the write of
/// its run succeeded.
pub struct Runs<'a> {
    file: &'a File,
    /// The span of the run gathered so far.
    start: u64,
    end: u64,
    /// Its first piece, not copied while it is alone.
    first: &'a [u8],
    /// Its bytes, once it has more than one piece.
    joined: Vec<u8>,
}

impl<'a> Runs<'a> {
    pub fn new(file: &'a File) -> Self {
        Runs {
            file,
            start: 0,
            end: 0,
            first: &[],
            joined: Vec::new(),
        }
    }

    /// Writes `bytes` at `offset`, now or with the pieces that follow it.
    pub fn write(&mut self, offset: u64, bytes: &'a [u8]) -> io::Result<()> {
        if bytes.is_empty() {
            return Ok(());
        }
        let len = (self.end - self.start) as usize;
        if len > 0 && (offset != self.end || len + bytes.len() > RUN_BYTES) {
            self.flush()?;
        }
        if self.end == self.start {
            self.start = offset;
            self.first = bytes;
        } else {
            if self.joined.is_empty() {
                self.joined.extend_from_slice(self.first);
            }
            self.joined.extend_from_slice(bytes);
        }
        self.end = offset + bytes.len() as u64;
        Ok(())
    }

    /// Writes the run gathered so far.
    pub fn flush(&mut self) -> io::Result<()> {
        if self.end == self.start {
            return Ok(());
        }
        let bytes = if self.joined.is_empty() {
            self.first
        } else {
            &self.joined
        };
        write_all_at(self.file, bytes, self.start)?;
        self.joined.clear();
        self.end = self.start;
        Ok(())
    }
}
