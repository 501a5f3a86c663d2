//! Dirty-chunk tracking for the main database file.
//!
//! The VFS shim calls [`Tracker::before_write`] and [`Tracker::before_truncate`]
//! before it lets SQLite change the local file, so the tracker can keep the
//! bytes each 4 KiB chunk held at two moments:
//!
//! * `durable`: the state the KV holds (the last acknowledged persist). These
//!   before-images let [`Tracker::restore`] put the file back when a persist
//!   fails.
//! * `sealed`: the state at the last [`Tracker::seal`]. A seal hands out every
//!   chunk that differs from it, so a chunk rewritten with identical bytes (a
//!   rolled-back statement, an UPDATE to the same value) is not sent again.
//!
//! Everything here is safe Rust over a `std::fs::File` opened on the same
//! local path that SQLite writes through the OS VFS.

use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::io;

use crate::pos_io;

/// Bytes per KV chunk: one SQLite page.
pub const CHUNK_SIZE: u64 = 4096;

/// Chunks by index, with their bytes.
pub type Chunks = Vec<(u32, Vec<u8>)>;

/// What changed in the main file since the previous seal.
pub struct Delta {
    /// File size now.
    pub size: u64,
    /// File size at the previous seal.
    pub previous_size: u64,
    /// Chunks whose bytes differ from the previous seal, in index order. Each
    /// holds the chunk's bytes within `size` (the last one may be shorter).
    pub chunks: Chunks,
}

pub struct Tracker {
    file: File,
    durable_size: u64,
    sealed_size: u64,
    size: u64,
    durable: HashMap<u32, Vec<u8>>,
    sealed: HashMap<u32, Vec<u8>>,
}

fn chunk_range(start: u64, end: u64) -> std::ops::Range<u32> {
    if end <= start {
        return 0..0;
    }
    ((start / CHUNK_SIZE) as u32)..((end - 1) / CHUNK_SIZE + 1) as u32
}

impl Tracker {
    /// Tracks `file`, whose current contents are what the KV holds.
    pub fn new(file: File) -> io::Result<Self> {
        let size = file.metadata()?.len();
        Ok(Tracker {
            file,
            durable_size: size,
            sealed_size: size,
            size,
            durable: HashMap::new(),
            sealed: HashMap::new(),
        })
    }

    fn read_chunk(&self, index: u32) -> io::Result<Vec<u8>> {
        let start = index as u64 * CHUNK_SIZE;
        let len = self.size.saturating_sub(start).min(CHUNK_SIZE) as usize;
        let mut buf = vec![0u8; len];
        let mut done = 0;
        while done < len {
            let n = pos_io::read_at(&self.file, &mut buf[done..], start + done as u64)?;
            if n == 0 {
                // Past the physical end of file: the rest reads as zeros.
                break;
            }
            done += n;
        }
        Ok(buf)
    }

    fn capture(&mut self, index: u32) -> io::Result<()> {
        let need_durable = !self.durable.contains_key(&index);
        let need_sealed = !self.sealed.contains_key(&index);
        if !need_durable && !need_sealed {
            return Ok(());
        }
        let bytes = self.read_chunk(index)?;
        if need_durable && need_sealed {
            self.durable.insert(index, bytes.clone());
            self.sealed.insert(index, bytes);
        } else if need_durable {
            self.durable.insert(index, bytes);
        } else {
            self.sealed.insert(index, bytes);
        }
        Ok(())
    }

    /// Called before SQLite writes `len` bytes at `offset`.
    pub fn before_write(&mut self, offset: u64, len: u64) -> io::Result<()> {
        // A write past the end also changes the gap between the old end and
        // the write (it reads as zeros now, the KV may hold stale chunks).
        let start = offset.min(self.size);
        for index in chunk_range(start, offset + len) {
            self.capture(index)?;
        }
        Ok(())
    }

    /// Called after a successful write of `len` bytes at `offset`.
    pub fn after_write(&mut self, offset: u64, len: u64) {
        self.size = self.size.max(offset + len);
    }

    /// Called before SQLite truncates (or extends) the file to `new_size`.
    pub fn before_truncate(&mut self, new_size: u64) -> io::Result<()> {
        let (low, high) = if new_size < self.size {
            (new_size, self.size)
        } else {
            (self.size, new_size)
        };
        for index in chunk_range(low, high) {
            self.capture(index)?;
        }
        Ok(())
    }

    /// Called after a successful truncate.
    pub fn after_truncate(&mut self, new_size: u64) {
        self.size = new_size;
    }

    /// Whether anything changed since the last seal.
    pub fn has_changes(&self) -> bool {
        !self.sealed.is_empty() || self.size != self.sealed_size
    }

    /// Takes what changed since the last seal.
    pub fn seal(&mut self) -> io::Result<Delta> {
        let mut changed = BTreeMap::new();
        let sealed = std::mem::take(&mut self.sealed);
        for (index, before) in sealed {
            if index as u64 * CHUNK_SIZE >= self.size {
                continue;
            }
            let now = self.read_chunk(index)?;
            if now != before {
                changed.insert(index, now);
            }
        }
        let delta = Delta {
            size: self.size,
            previous_size: self.sealed_size,
            chunks: changed.into_iter().collect(),
        };
        self.sealed_size = self.size;
        Ok(delta)
    }

    /// Everything sealed so far is now durable in the KV.
    pub fn ack(&mut self) {
        // The durable state is now the sealed state: the before-images still
        // needed are those of chunks changed since the seal, taken at the seal.
        self.durable = self.sealed.clone();
        self.durable_size = self.sealed_size;
    }

    /// Puts the file back to the last durable state. SQLite must not hold the
    /// file open (its page cache would be stale).
    pub fn restore(&mut self) -> io::Result<()> {
        for (index, bytes) in &self.durable {
            let start = *index as u64 * CHUNK_SIZE;
            if start < self.durable_size {
                pos_io::write_all_at(&self.file, bytes, start)?;
            }
        }
        self.file.set_len(self.durable_size)?;
        self.durable.clear();
        self.sealed.clear();
        self.size = self.durable_size;
        self.sealed_size = self.durable_size;
        Ok(())
    }

    /// The durable size, and the durable bytes of every chunk changed since
    /// the durable state that lies within it, by index: what a rollback
    /// journal for the pending commit must hold.
    pub fn durable_images(&self) -> (u64, Vec<(u32, &[u8])>) {
        let mut images: Vec<(u32, &[u8])> = self
            .durable
            .iter()
            .filter(|(index, _)| (**index as u64) * CHUNK_SIZE < self.durable_size)
            .map(|(index, bytes)| (*index, bytes.as_slice()))
            .collect();
        images.sort_unstable_by_key(|(index, _)| *index);
        (self.durable_size, images)
    }
}
