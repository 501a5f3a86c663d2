//! Dirty-chunk tracking for the main database file.
//!
//! The VFS shim calls [`Tracker::before_write`] and [`Tracker::before_truncate`]
//! before it lets SQLite change the local file, so the tracker can keep the
//! bytes each 4 KiB chunk held at two moments:
//!
//! * `durable`: the state the KV holds (the last acknowledged persist). These
//!   before-images let [`Tracker::restore`] put the file back when a persist
//!   fails.
//! * `sealed`: the state at the last [`Tracker::seal`]. A seal adds every
//!   chunk that differs from it to the pending delta, so a chunk rewritten
//!   with identical bytes (a rolled-back statement, an UPDATE to the same
//!   value) is not sent again.
//!
//! The engine seals at every point where no transaction is open and the file
//! changed (after each call, and between the statements of a script); the
//! persistence layer takes the pending delta ([`Tracker::take`]), writes it to
//! the KV, then acknowledges it ([`Tracker::ack`]) or goes back to the durable
//! state ([`Tracker::restore`]).
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

/// What the seals since the last [`Tracker::take`] changed in the main file.
pub struct Delta {
    /// File size at the last seal.
    pub size: u64,
    /// The largest size the file had at any of those seals, or before them.
    pub max_size: u64,
    /// Chunks whose bytes changed, in index order, each with its bytes at the
    /// last seal that changed it, within `size` (the last may be shorter).
    pub chunks: Chunks,
}

pub struct Tracker {
    file: File,
    durable_size: u64,
    sealed_size: u64,
    size: u64,
    durable: HashMap<u32, Vec<u8>>,
    sealed: HashMap<u32, Vec<u8>>,
    /// Sealed changes not yet taken: chunk bytes at their last seal.
    pending: BTreeMap<u32, Vec<u8>>,
    /// `Some((size, max_size))` while a sealed delta waits to be taken.
    pending_size: Option<(u64, u64)>,
    /// Seals that added to the pending delta, ever (callers compare counts).
    seals: u64,
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
            pending: BTreeMap::new(),
            pending_size: None,
            seals: 0,
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

    /// Adds what changed since the last seal to the pending delta. Only at a
    /// point where no transaction is open: the file then holds a state the KV
    /// may take.
    pub fn seal(&mut self) -> io::Result<()> {
        if !self.has_changes() {
            return Ok(());
        }
        let sealed = std::mem::take(&mut self.sealed);
        let mut changed = false;
        for (index, before) in sealed {
            if index as u64 * CHUNK_SIZE >= self.size {
                continue;
            }
            let now = self.read_chunk(index)?;
            if now != before {
                self.pending.insert(index, now);
                changed = true;
            }
        }
        if !changed && self.size == self.sealed_size {
            return Ok(());
        }
        // Chunks past the new end are not part of the file any more.
        let end = self.size.div_ceil(CHUNK_SIZE);
        if end <= u32::MAX as u64 {
            self.pending.split_off(&(end as u32));
        }
        // The size before the first of these seals counts too: the KV may hold
        // chunks up to it, which a shrunken file no longer has.
        let max_size = self
            .pending_size
            .map_or(self.sealed_size, |(_, max)| max)
            .max(self.size);
        self.pending_size = Some((self.size, max_size));
        self.sealed_size = self.size;
        self.seals += 1;
        Ok(())
    }

    /// How many seals added to the pending delta so far.
    pub fn seals(&self) -> u64 {
        self.seals
    }

    /// Whether a sealed delta waits to be taken.
    pub fn has_pending(&self) -> bool {
        self.pending_size.is_some()
    }

    /// Takes the pending delta, if any, for the persistence layer to write.
    pub fn take(&mut self) -> Option<Delta> {
        let (size, max_size) = self.pending_size.take()?;
        Some(Delta {
            size,
            max_size,
            chunks: std::mem::take(&mut self.pending).into_iter().collect(),
        })
    }

    /// The delta taken last (and everything before it) is durable in the KV.
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
        self.pending.clear();
        self.pending_size = None;
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
