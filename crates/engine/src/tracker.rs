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
//! The local file is a page cache of the KV: a chunk may still be *remote*,
//! its bytes only in the KV (the file has a hole there). SQLite never reads a
//! remote chunk: the VFS asks for it first ([`Tracker::plan_fetch`], then
//! [`Tracker::fill`]). SQLite may write a remote chunk without reading it (a
//! page taken from the freelist); its before-image is then *unknown*: the
//! bytes the KV holds, which the persistence layer reads and hands over
//! ([`Tracker::unknown_images`], [`Tracker::set_image`]) before it writes
//! anything that needs them.
//!
//! The tracker also holds back SQLite's writes of whole chunks (write-back):
//! their bytes, which it keeps anyway, reach the file only when they leave
//! its memory or something reads the file there ([`Tracker::write`]). A
//! small commit then costs no file system call: the pages it writes (the
//! header, a table's last leaf) are most often the ones the next one
//! writes again.
//!
//! Everything here is safe Rust over a `std::fs::File` opened on the same
//! local path that SQLite writes through the OS VFS.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fs::File;
use std::hash::{BuildHasherDefault, Hasher};
use std::io;
use std::sync::Arc;

use crate::pos_io;

/// Hashes chunk indices for the tracker's maps: a multiplication (Fibonacci
/// hashing) instead of the standard SipHash, which costs several times as
/// much and guards against keys chosen to collide. Chunk indices are
/// page numbers SQLite assigns, a few per write: a workload cannot choose
/// them freely, and the maps hold at most what one transaction changed.
#[derive(Default)]
struct IndexHasher(u64);

impl Hasher for IndexHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &byte in bytes {
            self.0 = (self.0.rotate_left(8) ^ u64::from(byte)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        }
    }

    fn write_u32(&mut self, index: u32) {
        self.0 = u64::from(index).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }
}

/// A map keyed by chunk index.
type IndexMap<V> = HashMap<u32, V, BuildHasherDefault<IndexHasher>>;

/// Bytes per KV chunk: one SQLite page.
pub const CHUNK_SIZE: u64 = 4096;

/// Chunks by index, with their bytes.
pub type Chunks = Vec<(u32, Vec<u8>)>;

/// The durable size and the durable bytes of chunks, by index.
pub type Images<'a> = (u64, Vec<(u32, &'a [u8])>);

/// A chunk's bytes at some moment, or `None`: what the KV holds (the chunk
/// was remote then).
/// Shared: the durable and sealed images of a chunk are often the same bytes.
type Image = Option<Arc<Vec<u8>>>;

/// A past state of the file that [`Tracker`] can put back.
#[derive(Clone, Copy)]
enum State {
    /// What the KV holds: the state at the last acknowledged seal.
    Durable,
    /// The state at the last seal.
    Sealed,
}

/// Most chunks whose latest bytes the tracker keeps between two seals (a
/// larger transaction's chunks are read back at the seal).
const LATEST_CAPACITY: usize = 1024;

/// A seal of at most this many chunks keeps their bytes for the next
/// transaction: the pages a small commit wrote (the header, a table's last
/// leaf) are most often the ones the next one writes, and their
/// before-images then need no read of the file. A larger seal keeps none:
/// an idle database holds at most this many chunks (32 KiB) this way.
const KEEP_AFTER_SEAL: usize = 8;

/// A seal that leaves at least this many held-back chunks (128 KiB) keeps
/// them held back, and [`Tracker::write_back`] writes them to the file
/// later: on an engine thread, while the JS thread writes the delta to the
/// KV (writing 1 MiB to a file that grows took about 0.5 ms on ext4 in a
/// VM, a tenth of a 1 MiB transaction's time). Fewer are written at the
/// seal: a few writes cost less than handing them to another thread.
pub const WRITE_BACK_LATER: usize = 32;

/// Most buffers of one chunk the tracker keeps for reuse (see
/// [`Tracker::copy_chunk`]): a small commit (one row) frees about as many
/// as it takes, one to three. An idle database keeps at most 16 KiB so.
const SPARE_BUFFERS: usize = 4;

/// Fewest and most chunks one page fetch asks for: a miss far from the last
/// one fetches [`MIN_WINDOW`] chunks; each miss near the previous fetch
/// doubles the window, up to [`MAX_WINDOW`] (eight `getBatch` calls of 128
/// keys, sent at once), so a cold scan makes few round trips.
pub const MIN_WINDOW: u32 = 1;
pub const MAX_WINDOW: u32 = 1024;

/// Most chunks one page fetch asks for below the last (a scan going
/// backwards): fewer than the JS layer's read-ahead takes for a scan
/// (`READ_AHEAD_MIN` in lib/persist.js, 512), which reads ahead forwards.
pub const MAX_BACKWARD_WINDOW: u32 = 256;

/// Which chunks are remote: those of the file as the KV held it (below
/// `end`) not marked local since, and those a restore made remote again
/// after a truncation had cut them away (`cut`). The marks are a bit per
/// chunk up to the highest one marked: a file that metadata claims to be
/// huge (a damaged KV can claim terabytes) costs memory for the chunks read,
/// not for its size.
#[derive(Default)]
struct Remote {
    /// Bit `i % 64` of word `i / 64`: chunk `i` is local.
    local: Vec<u64>,
    end: u32,
    /// Remote chunks at or past `end` (as many as a restore put back: no
    /// more than the before-images it had).
    cut: BTreeSet<u32>,
    /// How many chunks are remote.
    count: usize,
}

impl Remote {
    /// Chunks `from..end` remote.
    fn new(from: u32, end: u32) -> Self {
        let from = from.min(end);
        let mut local = vec![u64::MAX; from as usize / 64];
        if !from.is_multiple_of(64) {
            local.push((1 << (from % 64)) - 1);
        }
        Remote {
            local,
            end,
            cut: BTreeSet::new(),
            count: (end - from) as usize,
        }
    }

    fn is_local(&self, index: u32) -> bool {
        let (word, bit) = (index as usize / 64, index % 64);
        self.local.get(word).is_some_and(|w| w & (1 << bit) != 0)
    }

    fn get(&self, index: u32) -> bool {
        if index < self.end {
            !self.is_local(index)
        } else {
            self.cut.contains(&index)
        }
    }

    /// Marks chunk `index` remote or local. Only a chunk the KV holds may be
    /// made remote: one of the file as the KV held it, or one a truncation
    /// cut away, made remote again as the file is restored.
    fn set(&mut self, index: u32, remote: bool) {
        if self.get(index) == remote {
            return;
        }
        if remote {
            self.count += 1;
        } else {
            self.count -= 1;
        }
        if index >= self.end {
            if remote {
                self.cut.insert(index);
            } else {
                self.cut.remove(&index);
            }
            return;
        }
        let (word, bit) = (index as usize / 64, index % 64);
        if remote {
            self.local[word] &= !(1 << bit);
        } else {
            if word >= self.local.len() {
                self.local.resize(word + 1, 0);
            }
            self.local[word] |= 1 << bit;
        }
    }

    /// No chunk `from..` is remote.
    fn clear_from(&mut self, from: u32) {
        // (split_off keeps the chunks below `from`.)
        self.cut.split_off(&from);
        if from < self.end {
            self.end = from;
            self.local.truncate(from.div_ceil(64) as usize);
            if let Some(last) = self.local.last_mut().filter(|_| !from.is_multiple_of(64)) {
                *last &= (1 << (from % 64)) - 1;
            }
        }
        let local: usize = self.local.iter().map(|w| w.count_ones() as usize).sum();
        self.count = self.end as usize - local + self.cut.len();
    }

    /// The chunks below which some may be remote.
    fn len(&self) -> u32 {
        self.cut
            .last()
            .map_or(self.end, |&last| self.end.max(last + 1))
    }

    /// The remote chunks, in order.
    fn indices(&self) -> Vec<u32> {
        let mut out = Vec::with_capacity(self.count);
        'marks: for (w, &word) in self.local.iter().enumerate() {
            let mut bits = !word;
            while bits != 0 {
                let index = (w * 64) as u32 + bits.trailing_zeros();
                if index >= self.end {
                    break 'marks;
                }
                out.push(index);
                bits &= bits - 1;
            }
        }
        let marked = (self.local.len() * 64).min(u32::MAX as usize) as u32;
        out.extend(marked..self.end);
        out.extend(&self.cut);
        out
    }
}

/// What the seals since the last [`Tracker::take`] changed in the main file.
pub struct Delta {
    /// File size at the last seal.
    pub size: u64,
    /// The largest size the file had at any of those seals, or before them.
    pub max_size: u64,
    /// Chunks whose bytes changed, in index order, each with its bytes at the
    /// last seal that changed it, within `size` (the last may be shorter).
    pub chunks: Vec<(u32, Arc<Vec<u8>>)>,
}

/// A copy of the pending delta with its chunks' bytes end to end in one
/// buffer ([`Tracker::pack`]): made where copying costs nobody (an engine
/// thread), taken later in the delta's place ([`Tracker::take_packed`]).
pub struct Packed {
    /// As [`Delta::size`].
    pub size: u64,
    /// As [`Delta::max_size`].
    pub max_size: u64,
    /// Each changed chunk's index and length in `bytes`, in index order.
    pub chunks: Vec<(u32, usize)>,
    pub bytes: Vec<u8>,
    /// The pending delta's version it copies (see [`Tracker::pending_version`]).
    version: u64,
}

pub struct Tracker {
    file: File,
    durable_size: u64,
    sealed_size: u64,
    size: u64,
    durable: IndexMap<Image>,
    sealed: IndexMap<Image>,
    /// Sealed changes not yet taken: chunk bytes at their last seal.
    pending: BTreeMap<u32, Arc<Vec<u8>>>,
    /// `Some((size, max_size))` while a sealed delta waits to be taken.
    pending_size: Option<(u64, u64)>,
    /// Seals that added to the pending delta, ever (callers compare counts).
    seals: u64,
    /// Changes of the pending delta, ever: a seal that added to it, a take,
    /// a restore (a [`Packed`] copy is good while this stays the same).
    pending_version: u64,
    /// A write or truncate of the file failed since the last seal: the file
    /// may hold any part of it. The next seal refuses, and the changes since
    /// the last seal are discarded (see [`Tracker::discard_unsealed`]).
    damaged: bool,
    remote: Remote,
    /// The file's bytes of some whole chunks, as SQLite last wrote them: the
    /// chunks written since the last seal (at most [`LATEST_CAPACITY`]; a
    /// chunk written in part, or truncated, is dropped), and those of the
    /// last seal if it was small (see [`KEEP_AFTER_SEAL`]). A seal takes a
    /// chunk's bytes from here, and so does a before-image, instead of
    /// reading the file.
    latest: IndexMap<Arc<Vec<u8>>>,
    /// Chunks of `latest` whose bytes the file does not have yet: SQLite
    /// wrote them whole, and the tracker held the write back (see
    /// [`Tracker::write`]). They are written to the file before they leave
    /// `latest`, and before anything reads or changes the file there.
    unwritten: BTreeSet<u32>,
    /// The chunks a large seal left held back for [`Tracker::write_back`],
    /// in increasing order (some may have been written out since).
    later: Vec<u32>,
    /// Buffers of one chunk no image uses any more, for the next copies
    /// (see [`Tracker::copy_chunk`]), each still in its `Arc`, which only
    /// the tracker holds.
    spare: Vec<Arc<Vec<u8>>>,
    /// The vectors each seal fills and empties again (see
    /// [`Tracker::seal_changes`]), kept with their room: a small commit
    /// would otherwise allocate and free both.
    seal_before: Vec<(u32, Image)>,
    seal_now: Vec<SealedChunk>,
    /// Read-ahead: the span of the last fetch, and its window's length.
    window_start: u32,
    window_end: u32,
    window: u32,
}

/// A chunk a seal looks at: its index, its bytes at the last seal, its
/// bytes now, and whether those are the ones `latest` keeps.
type SealedChunk = (u32, Image, Arc<Vec<u8>>, bool);

/// Most entries a vector the tracker keeps for its next seal has room for
/// (see [`small`]).
const SCRATCH_CAPACITY: usize = 64;

/// `scratch` (empty) to keep for the next seal, or a vector without room if
/// it has room for more than [`SCRATCH_CAPACITY`] entries: a large
/// transaction's room is not kept by an idle database.
fn small<T>(scratch: Vec<T>) -> Vec<T> {
    debug_assert!(scratch.is_empty());
    if scratch.capacity() > SCRATCH_CAPACITY {
        Vec::new()
    } else {
        scratch
    }
}

/// The most chunks one truncation may cut away or add: the `cut_chunks`
/// bound of lib/policy.txt (each needs its before-image kept, and a damaged
/// KV can claim a file of terabytes). None without the rule.
pub fn max_cut() -> u64 {
    static MAX_CUT: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    *MAX_CUT.get_or_init(|| crate::policy::bound("cut_chunks").unwrap_or(0))
}

fn chunk_range(start: u64, end: u64) -> std::ops::Range<u32> {
    if end <= start {
        return 0..0;
    }
    ((start / CHUNK_SIZE) as u32)..((end - 1) / CHUNK_SIZE + 1) as u32
}

impl Tracker {
    /// Tracks `file`, whose contents are what the KV holds, except chunks
    /// `remote_from..` (if given) that are still only in the KV.
    pub fn new(file: File, remote_from: Option<u32>) -> io::Result<Self> {
        let size = file.metadata()?.len();
        let end = size.div_ceil(CHUNK_SIZE).min(u32::MAX as u64) as u32;
        let remote = remote_from.map_or_else(Remote::default, |from| Remote::new(from, end));
        Ok(Tracker {
            latest: IndexMap::default(),
            unwritten: BTreeSet::new(),
            later: Vec::new(),
            spare: Vec::new(),
            seal_before: Vec::new(),
            seal_now: Vec::new(),
            remote,
            // No fetch yet: no miss is near it.
            window_start: u32::MAX,
            window_end: u32::MAX,
            window: MIN_WINDOW,
            file,
            durable_size: size,
            sealed_size: size,
            size,
            durable: IndexMap::default(),
            sealed: IndexMap::default(),
            pending: BTreeMap::new(),
            pending_size: None,
            seals: 0,
            pending_version: 0,
            damaged: false,
        })
    }

    /// A copy of `bytes` (one whole chunk), in a spare buffer if there is
    /// one: each small commit copies the pages it writes and drops the
    /// images of the one before, and a buffer of 4 KiB is above what the
    /// allocator serves from its per-thread cache. The buffer's `Arc` is
    /// reused too.
    fn copy_chunk(&mut self, bytes: &[u8]) -> Arc<Vec<u8>> {
        if let Some(mut spare) = self.spare.pop() {
            if let Some(buffer) = Arc::get_mut(&mut spare) {
                buffer.copy_from_slice(bytes);
                return spare;
            }
        }
        Arc::new(bytes.to_vec())
    }

    /// Keeps the buffer of `image`, in its `Arc`, for reuse if nothing else
    /// holds it.
    fn recycle(&mut self, image: Image) {
        if let Some(mut image) = image {
            let whole =
                Arc::get_mut(&mut image).is_some_and(|buffer| buffer.len() == CHUNK_SIZE as usize);
            if whole && self.spare.len() < SPARE_BUFFERS {
                self.spare.push(image);
            }
        }
    }

    /// Chunk `index` as the file holds it (within the file's size).
    fn read_chunk(&mut self, index: u32) -> io::Result<Vec<u8>> {
        self.write_out(index)?;
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
        let bytes = if self.remote.get(index) {
            None
        } else if let Some(bytes) = self.latest.get(&index) {
            Some(bytes.clone())
        } else {
            Some(Arc::new(self.read_chunk(index)?))
        };
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

    /// Takes the before-images a write of `len` bytes at `offset` needs.
    fn capture_range(&mut self, offset: u64, len: u64) -> io::Result<()> {
        // A write past the end also changes the gap between the old end and
        // the write (it reads as zeros now, the KV may hold stale chunks).
        let start = offset.min(self.size);
        for index in chunk_range(start, offset + len) {
            self.capture(index)?;
        }
        Ok(())
    }

    /// Called before SQLite's write of `len` bytes at `offset` goes to the
    /// file; [`Tracker::after_write`] (or [`Tracker::write_failed`]) follows.
    pub fn before_write(&mut self, offset: u64, len: u64) -> io::Result<()> {
        self.capture_range(offset, len)?;
        // Held-back bytes the write changes in part go to the file first.
        self.flush_range(offset, len)
    }

    /// SQLite writes `bytes` at `offset`. A write of one whole chunk, when
    /// the tracker has room to keep it, is held back: its bytes stay here
    /// (the chunk is *unwritten*) and SQLite's write must not reach the file;
    /// returns true then. Otherwise it is [`Tracker::before_write`], and
    /// returns false: write the file, then call
    /// [`Tracker::after_write_bytes`] (or [`Tracker::write_failed`]).
    pub fn write(&mut self, offset: u64, bytes: &[u8]) -> io::Result<bool> {
        let len = bytes.len() as u64;
        let index = offset / CHUNK_SIZE;
        let whole = offset.is_multiple_of(CHUNK_SIZE) && len == CHUNK_SIZE;
        let room = index <= u32::MAX as u64
            && (self.latest.len() < LATEST_CAPACITY || self.latest.contains_key(&(index as u32)));
        if !(whole && room) {
            self.before_write(offset, len)?;
            return Ok(false);
        }
        self.capture_range(offset, len)?;
        let index = index as u32;
        self.remote.set(index, false);
        let copy = self.copy_chunk(bytes);
        let replaced = self.latest.insert(index, copy);
        self.recycle(replaced);
        self.unwritten.insert(index);
        self.size = self.size.max(offset + len);
        Ok(true)
    }

    /// Copies the bytes at `offset` into `buf` if they lie within one chunk
    /// the tracker holds back (the file does not have them yet): true then.
    /// Such a read needs no write of the file first.
    pub fn read_held_back(&self, offset: u64, buf: &mut [u8]) -> bool {
        let within = offset % CHUNK_SIZE;
        if buf.is_empty() || within + buf.len() as u64 > CHUNK_SIZE {
            return false;
        }
        let Ok(index) = u32::try_from(offset / CHUNK_SIZE) else {
            return false;
        };
        if !self.unwritten.contains(&index) {
            return false;
        }
        match self.latest.get(&index) {
            Some(bytes) => {
                let at = within as usize;
                buf.copy_from_slice(&bytes[at..at + buf.len()]);
                true
            }
            None => false,
        }
    }

    /// Writes chunk `index` to the file if the tracker held its bytes back.
    fn write_out(&mut self, index: u32) -> io::Result<()> {
        if self.unwritten.contains(&index) {
            self.write_out_sorted(&[index])?;
        }
        Ok(())
    }

    /// Writes the held-back chunks `indices` (in increasing order, each held
    /// back) to the file, neighbours in one write (see [`pos_io::Runs`]).
    /// They stay held back unless every write succeeded.
    fn write_out_sorted(&mut self, indices: &[u32]) -> io::Result<()> {
        let mut runs = pos_io::Runs::new(&self.file);
        for index in indices {
            if let Some(bytes) = self.latest.get(index) {
                runs.write(*index as u64 * CHUNK_SIZE, bytes)?;
            }
        }
        runs.flush()?;
        for index in indices {
            self.unwritten.remove(index);
        }
        Ok(())
    }

    /// Writes the held-back chunks among those `len` bytes at `offset` cover
    /// to the file: before the file is read there, or written in part.
    pub fn flush_range(&mut self, offset: u64, len: u64) -> io::Result<()> {
        if self.unwritten.is_empty() {
            return Ok(());
        }
        let range = chunk_range(offset, offset + len);
        let indices: Vec<u32> = self.unwritten.range(range).copied().collect();
        self.write_out_sorted(&indices)
    }

    /// Writes every held-back chunk to the file: before something reads the
    /// file whole, truncates it or puts it back.
    pub fn flush(&mut self) -> io::Result<()> {
        let indices: Vec<u32> = self.unwritten.iter().copied().collect();
        self.write_out_sorted(&indices)
    }

    /// Writes to the file the chunks the last large seal left held back (a
    /// seal leaving 32 or more), and lets go of their bytes. A chunk written
    /// again since is written with its latest bytes, and kept if the next
    /// seal needs them. If a write fails, every chunk not written stays held
    /// back, and the next seal writes it (or fails, as it would have).
    pub fn write_back(&mut self) -> io::Result<()> {
        let later = std::mem::take(&mut self.later);
        let indices: Vec<u32> = later
            .iter()
            .copied()
            .filter(|index| self.unwritten.contains(index))
            .collect();
        self.write_out_sorted(&indices)?;
        for index in &later {
            if !self.unwritten.contains(index) && !self.sealed.contains_key(index) {
                self.latest.remove(index);
            }
        }
        Ok(())
    }

    /// Whether a large seal left chunks for [`Tracker::write_back`].
    pub fn has_later_writes(&self) -> bool {
        !self.later.is_empty()
    }

    /// The file's size counting the chunks held back (the file itself may
    /// end before them).
    pub fn size_with_unwritten(&self, file_size: u64) -> u64 {
        self.unwritten.last().map_or(file_size, |&last| {
            file_size.max((last as u64 + 1) * CHUNK_SIZE)
        })
    }

    /// Called after a successful write of `len` bytes at `offset`. The chunks
    /// it covers are local now (a write covers every remote chunk it touches
    /// whole: see [`Tracker::plan_fetch_for_write`]).
    pub fn after_write(&mut self, offset: u64, len: u64) {
        for index in chunk_range(offset, offset + len) {
            self.remote.set(index, false);
            self.latest.remove(&index);
        }
        self.size = self.size.max(offset + len);
    }

    /// [`Tracker::after_write`] of `bytes`, written at `offset`: keeps the
    /// bytes of the whole chunks it wrote for the next seal.
    pub fn after_write_bytes(&mut self, offset: u64, bytes: &[u8]) {
        self.after_write(offset, bytes.len() as u64);
        if self.latest.len() >= LATEST_CAPACITY {
            return;
        }
        let end = offset + bytes.len() as u64;
        for index in chunk_range(offset, end) {
            let start = index as u64 * CHUNK_SIZE;
            if start >= offset && start + CHUNK_SIZE <= end {
                let at = (start - offset) as usize;
                let copy = self.copy_chunk(&bytes[at..at + CHUNK_SIZE as usize]);
                let replaced = self.latest.insert(index, copy);
                self.recycle(replaced);
            }
        }
    }

    /// Called after a failed write of `len` bytes at `offset`: the chunks it
    /// covers may hold any part of it, so their bytes are read back, and the
    /// changes since the last seal will not be sealed.
    pub fn write_failed(&mut self, offset: u64, len: u64) {
        for index in chunk_range(offset, offset + len) {
            self.latest.remove(&index);
        }
        self.damaged = true;
    }

    /// Called after a failed truncate: as [`Tracker::write_failed`], the
    /// changes since the last seal will not be sealed.
    pub fn truncate_failed(&mut self) {
        self.damaged = true;
    }

    /// Whether a write or truncate of the file failed since the last seal
    /// (or a seal failed): the changes since must be discarded.
    pub fn is_damaged(&self) -> bool {
        self.damaged
    }

    /// Called before SQLite truncates (or extends) the file to `new_size`.
    /// Fails, changing nothing, if that cuts away (or adds) more chunks than
    /// [`max_cut`] allows.
    pub fn before_truncate(&mut self, new_size: u64) -> io::Result<()> {
        let (low, high) = if new_size < self.size {
            (new_size, self.size)
        } else {
            (self.size, new_size)
        };
        let range = chunk_range(low, high);
        let (cut, bound) = (range.len() as u64, max_cut());
        if cut > bound {
            return Err(io::Error::other(format!(
                "a truncation of {cut} chunks of 4 KiB is past the bound of {bound} (bound cut_chunks of lib/policy.txt)"
            )));
        }
        self.flush()?;
        for index in range {
            self.capture(index)?;
        }
        Ok(())
    }

    /// Called after a successful truncate. Chunks past the new end are no
    /// longer the KV's (they read as zeros if the file grows again).
    pub fn after_truncate(&mut self, new_size: u64) {
        let end = new_size / CHUNK_SIZE;
        self.latest.retain(|&index, _| (index as u64) < end);
        // (None is held back: before_truncate wrote them all.)
        self.unwritten.retain(|&index| (index as u64) < end);
        self.remote
            .clear_from(new_size.div_ceil(CHUNK_SIZE).min(u32::MAX as u64) as u32);
        self.size = new_size;
    }

    /// Whether some chunk is still only in the KV.
    pub fn has_remote(&self) -> bool {
        self.remote.count > 0
    }

    /// The remote chunks, in index order.
    pub fn remote_chunks(&self) -> Vec<u32> {
        self.remote.indices()
    }

    /// Before SQLite reads `len` bytes at `offset`: the chunks to fetch from
    /// the KV first (none if they are all local). Besides the remote chunks
    /// the read touches, the request reads ahead: a miss just past the last
    /// fetch doubles the window of chunks fetched after it.
    pub fn plan_fetch(&mut self, offset: u64, len: u64) -> Option<Vec<u32>> {
        let needed: Vec<u32> = chunk_range(offset, offset + len)
            .filter(|&i| self.remote.get(i))
            .collect();
        let (first, last) = (*needed.first()?, *needed.last()?);
        // Just below the last fetch: a scan going backwards (SQLite's
        // integrity check walks a table's pages so, as does a descending
        // scan of a table built in order). The window grows downwards; its
        // top stays where it was, for a scan that turns forward again.
        if last.checked_add(1) == Some(self.window_start) {
            self.window = (self.window * 2).min(MAX_BACKWARD_WINDOW);
            let start = first.saturating_sub(self.window - 1);
            self.window_start = start;
            return Some((start..=last).filter(|&i| self.remote.get(i)).collect());
        }
        // Near the last fetch (a scan reads pages roughly in order, an
        // interior page now and then out of it): a longer window, from where
        // the last one ended if the miss skipped some (they come next).
        let slack = self.window.max(16);
        let near = first.saturating_add(slack) >= self.window_start
            && first < self.window_end.saturating_add(slack);
        let start = if near {
            self.window = (self.window * 2).min(MAX_WINDOW);
            first.min(self.window_end).max(self.window_start)
        } else {
            self.window = MIN_WINDOW;
            first
        };
        let end = first
            .saturating_add(self.window)
            .min(self.remote.len())
            .max(last + 1);
        let mut wanted = needed;
        wanted.extend((start..end).filter(|&i| (i < first || i > last) && self.remote.get(i)));
        wanted.sort_unstable();
        self.window_start = start.min(first);
        self.window_end = end;
        Some(wanted)
    }

    /// Before SQLite writes `len` bytes at `offset`: the remote chunks the
    /// write covers only in part, which must be fetched first.
    pub fn plan_fetch_for_write(&self, offset: u64, len: u64) -> Option<Vec<u32>> {
        let end = offset + len;
        let partial: Vec<u32> = chunk_range(offset, end)
            .filter(|&i| {
                let start = i as u64 * CHUNK_SIZE;
                let chunk_end = (start + CHUNK_SIZE).min(self.size.max(end));
                self.remote.get(i) && (offset > start || end < chunk_end)
            })
            .collect();
        (!partial.is_empty()).then_some(partial)
    }

    /// Writes chunks fetched from the KV into the local file (`None`: the KV
    /// has no such chunk, it reads as zeros) and marks them local. Chunks no
    /// longer remote (written meanwhile) are left alone.
    pub fn fill(&mut self, indices: &[u32], chunks: &[Option<&[u8]>]) -> io::Result<()> {
        static ZEROS: [u8; CHUNK_SIZE as usize] = [0; CHUNK_SIZE as usize];
        let mut runs = pos_io::Runs::new(&self.file);
        for (&index, chunk) in indices.iter().zip(chunks) {
            if !self.remote.get(index) {
                continue;
            }
            let start = index as u64 * CHUNK_SIZE;
            let len = self.size.saturating_sub(start).min(CHUNK_SIZE) as usize;
            let bytes = chunk.unwrap_or_default();
            let take = bytes.len().min(len);
            runs.write(start, &bytes[..take])?;
            runs.write(start + take as u64, &ZEROS[..len - take])?;
            self.remote.set(index, false);
        }
        runs.flush()
    }

    /// Whether anything changed since the last seal.
    pub fn has_changes(&self) -> bool {
        !self.sealed.is_empty() || self.size != self.sealed_size
    }

    /// Adds what changed since the last seal to the pending delta. Only at a
    /// point where no transaction is open: the file then holds a state the KV
    /// may take.
    ///
    /// Fails, changing nothing, if a write to the file failed since the last
    /// seal, or if this seal's own writes or reads fail: the changes since
    /// the last seal must then be discarded ([`Tracker::discard_unsealed`]).
    pub fn seal(&mut self) -> io::Result<()> {
        if self.damaged {
            return Err(io::Error::other(
                "a write to the local file failed: the changes since the last seal are discarded",
            ));
        }
        let sealed = self.seal_changes();
        if sealed.is_err() {
            self.damaged = true;
        }
        sealed
    }

    fn seal_changes(&mut self) -> io::Result<()> {
        if !self.has_changes() {
            return Ok(());
        }
        let keep = self.sealed.len() <= KEEP_AFTER_SEAL;
        // Held-back chunks whose bytes this seal does not keep go to the file
        // (all but whole chunks of this seal, which the loop below keeps:
        // it reads any other chunk from the file); many of them, later (see
        // WRITE_BACK_LATER).
        let size = self.size;
        let leaving: Vec<u32> = self
            .unwritten
            .iter()
            .filter(|&&index| {
                let end = (index as u64 + 1) * CHUNK_SIZE;
                !(keep && self.sealed.contains_key(&index) && end <= size)
            })
            .copied()
            .collect();
        let later = !keep && leaving.len() >= WRITE_BACK_LATER;
        if !later {
            self.write_out_sorted(&leaving)?;
        }
        // Every chunk's bytes now, before anything changes: a failed read
        // leaves the tracker as it was. (Both vectors are left empty, to
        // hold no image: an image's buffer is reused only when nothing else
        // holds it.)
        let mut entries = std::mem::take(&mut self.seal_before);
        entries.extend(
            self.sealed
                .iter()
                .map(|(&index, before)| (index, before.clone())),
        );
        let mut now = std::mem::take(&mut self.seal_now);
        for (index, before) in entries.drain(..) {
            let start = index as u64 * CHUNK_SIZE;
            if start >= self.size {
                continue;
            }
            let len = self.size.saturating_sub(start).min(CHUNK_SIZE) as usize;
            // Kept bytes are whole chunks; a chunk the file's end cuts is read.
            let (bytes, kept) = match self.latest.get(&index) {
                Some(bytes) if bytes.len() == len => (bytes.clone(), true),
                _ => (Arc::new(self.read_chunk(index)?), false),
            };
            now.push((index, before, bytes, kept));
        }
        self.seal_before = small(entries);
        self.sealed.clear();
        if later {
            // (Every held-back chunk is `leaving`: none is kept.)
            let unwritten = &self.unwritten;
            self.latest.retain(|index, _| unwritten.contains(index));
            self.later = leaving;
        } else {
            self.latest.clear();
            self.later.clear();
        }
        let mut changed = false;
        for (index, before, bytes, kept) in now.drain(..) {
            if keep && kept {
                self.latest.insert(index, bytes.clone());
            }
            // An unknown before-image (the chunk was remote) counts as changed.
            if before.as_deref() != Some(&bytes) {
                self.pending.insert(index, bytes);
                changed = true;
            }
        }
        self.seal_now = small(now);
        if !changed && self.size == self.sealed_size {
            return Ok(());
        }
        // Chunks past the new end are not part of the file any more. (Split
        // only if some are: a split makes a new map, even when empty.)
        let end = self.size.div_ceil(CHUNK_SIZE);
        let past_end = self
            .pending
            .last_key_value()
            .is_some_and(|(&last, _)| last as u64 >= end);
        if past_end {
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
        self.pending_version += 1;
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

    /// The pending delta's bytes and number of chunks, if one waits to be
    /// taken: the extent of what [`Tracker::take`] will return.
    pub fn pending_extent(&self) -> Option<(usize, usize)> {
        self.pending_size?;
        let bytes = self.pending.values().map(|chunk| chunk.len()).sum();
        Some((bytes, self.pending.len()))
    }

    /// Chunks changed since the last seal, as far as the file has seen them
    /// (SQLite's page cache may hold more): about what a commit now seals.
    pub fn changed_since_seal(&self) -> usize {
        self.sealed.len()
    }

    /// A copy of the pending delta, its bytes end to end, if one is pending.
    pub fn pack(&self) -> Option<Packed> {
        let (size, max_size) = self.pending_size?;
        let total = self.pending.values().map(|chunk| chunk.len()).sum();
        let mut bytes = Vec::with_capacity(total);
        let mut chunks = Vec::with_capacity(self.pending.len());
        for (&index, chunk) in &self.pending {
            bytes.extend_from_slice(chunk);
            chunks.push((index, chunk.len()));
        }
        Some(Packed {
            size,
            max_size,
            chunks,
            bytes,
            version: self.pending_version,
        })
    }

    /// Takes the pending delta as `packed` holds it, if `packed` is a copy of
    /// it as it is now; else changes nothing and returns `None`.
    pub fn take_packed(&mut self, packed: Packed) -> Option<Packed> {
        if packed.version != self.pending_version || self.pending_size.is_none() {
            return None;
        }
        self.take();
        Some(packed)
    }

    /// Takes the pending delta, if any, for the persistence layer to write.
    pub fn take(&mut self) -> Option<Delta> {
        let (size, max_size) = self.pending_size.take()?;
        self.pending_version += 1;
        // Emptied in place: the map keeps its node for the next seal's
        // chunks (a small commit's one or two).
        let mut chunks = Vec::with_capacity(self.pending.len());
        while let Some(chunk) = self.pending.pop_first() {
            chunks.push(chunk);
        }
        Some(Delta {
            size,
            max_size,
            chunks,
        })
    }

    /// The delta taken last (and everything before it) is durable in the KV.
    pub fn ack(&mut self) {
        // The durable state is now the sealed state: the before-images still
        // needed are those of chunks changed since the seal, taken at the seal.
        let mut durable = std::mem::take(&mut self.durable);
        for (_, image) in durable.drain() {
            self.recycle(image);
        }
        durable.extend(
            self.sealed
                .iter()
                .map(|(&index, image)| (index, image.clone())),
        );
        self.durable = durable;
        self.durable_size = self.sealed_size;
    }

    /// Puts the file back to the last durable state. SQLite must not hold the
    /// file open (its page cache would be stale). Writes no more than
    /// [`Tracker::discard_unsealed`] does.
    pub fn restore(&mut self) -> io::Result<()> {
        self.put_back(State::Durable)?;
        self.pending.clear();
        self.pending_size = None;
        self.pending_version += 1;
        self.sealed.clear();
        self.sealed_size = self.durable_size;
        Ok(())
    }

    /// Puts the file back to its state at the last seal, dropping every
    /// change since (a call whose changes cannot be sealed has no effects).
    /// SQLite must not hold the file open (its page cache would be stale).
    /// On failure the tracker stays damaged, and a later call tries again.
    pub fn discard_unsealed(&mut self) -> io::Result<()> {
        self.put_back(State::Sealed)
    }

    /// Puts the file back to `state`, from the images of the chunks changed
    /// since (the durable or the sealed ones). The bytes of whole chunks are
    /// held back (see [`Tracker::write`]) rather than written: a full disk,
    /// which may be why the file must be put back, does not stop it. Only a
    /// chunk the end cuts is written, and a longer file shortened. On failure
    /// nothing changed.
    fn put_back(&mut self, state: State) -> io::Result<()> {
        let (images, size) = match state {
            State::Durable => (&self.durable, self.durable_size),
            State::Sealed => (&self.sealed, self.sealed_size),
        };
        let end = size.div_ceil(CHUNK_SIZE);
        // A chunk is held back if it is whole then; else its bytes of then,
        // up to the end, are written.
        let whole = |index: u32, bytes: &[u8]| {
            bytes.len() as u64 == CHUNK_SIZE && (index as u64 + 1) * CHUNK_SIZE <= size
        };
        for (&index, image) in images {
            let start = index as u64 * CHUNK_SIZE;
            if let Some(bytes) = image {
                if start < size && !whole(index, bytes) {
                    let len = bytes.len().min((size - start) as usize);
                    pos_io::write_all_at(&self.file, &bytes[..len], start)?;
                }
            }
        }
        // The file ends at `size`: past it nothing is kept, and up to it
        // held-back chunks or the file itself reach.
        let dropped = |images: &IndexMap<Image>, index: &u32| {
            images.contains_key(index) || *index as u64 >= end
        };
        let last_held = self
            .unwritten
            .iter()
            .filter(|index| !dropped(images, index))
            .chain(
                images
                    .iter()
                    .filter(|(index, image)| {
                        (**index as u64) < end
                            && image.as_deref().is_some_and(|bytes| whole(**index, bytes))
                    })
                    .map(|(index, _)| index),
            )
            .max()
            .map_or(0, |&index| (index as u64 + 1) * CHUNK_SIZE);
        let physical = self.file.metadata()?.len();
        if physical > size || physical.max(last_held) < size {
            self.file.set_len(size)?;
        }
        let images = std::mem::take(match state {
            State::Durable => &mut self.durable,
            State::Sealed => &mut self.sealed,
        });
        self.latest.retain(|index, _| !dropped(&images, index));
        self.unwritten.retain(|index| !dropped(&images, index));
        for (index, image) in images {
            if index as u64 >= end {
                continue;
            }
            match image {
                Some(bytes) if whole(index, &bytes) => {
                    self.latest.insert(index, bytes);
                    self.unwritten.insert(index);
                }
                Some(_) => {}
                // Written while remote: the KV's bytes are the ones of then.
                None => self.remote.set(index, true),
            }
        }
        self.remote.clear_from(end.min(u32::MAX as u64) as u32);
        self.size = size;
        self.damaged = false;
        Ok(())
    }

    /// The durable size, and the durable bytes of every chunk changed since
    /// the durable state that lies within it, by index: what a rollback
    /// journal for the pending commit must hold. `None` while some of them
    /// are unknown (see [`Tracker::unknown_images`]).
    pub fn durable_images(&self) -> Option<Images<'_>> {
        let mut images = Vec::new();
        for (index, image) in &self.durable {
            if (*index as u64) * CHUNK_SIZE < self.durable_size {
                images.push((*index, image.as_deref()?.as_slice()));
            }
        }
        images.sort_unstable_by_key(|(index, _)| *index);
        Some((self.durable_size, images))
    }

    /// The chunks changed since the durable state whose durable bytes are
    /// not known here (they were remote when first written), in index order.
    pub fn unknown_images(&self) -> Vec<u32> {
        let mut unknown: Vec<u32> = self
            .durable
            .iter()
            .filter(|(index, image)| {
                image.is_none() && (**index as u64) * CHUNK_SIZE < self.durable_size
            })
            .map(|(index, _)| *index)
            .collect();
        unknown.sort_unstable();
        unknown
    }

    /// The KV's bytes of chunk `index`, read while the KV holds the durable
    /// state: fills in its unknown before-images.
    pub fn set_image(&mut self, index: u32, bytes: &[u8]) {
        let len = self
            .durable_size
            .saturating_sub(index as u64 * CHUNK_SIZE)
            .min(CHUNK_SIZE) as usize;
        let mut image = bytes[..bytes.len().min(len)].to_vec();
        image.resize(len, 0);
        let image = Arc::new(image);
        for map in [&mut self.durable, &mut self.sealed] {
            if let Some(slot @ None) = map.get_mut(&index) {
                *slot = Some(image.clone());
            }
        }
    }
}
