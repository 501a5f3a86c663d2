//! The tracker's before-images, seals and restore, driven as the VFS shim
//! drives it: `before_*`, then the write through another handle (as SQLite's
//! own), then `after_*`.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};

use rivetkit_sqlite_engine::tracker::{max_cut, Delta, Tracker, CHUNK_SIZE};

const CHUNK: usize = CHUNK_SIZE as usize;

/// A file of `chunks` chunks, chunk `i` filled with byte `i + 1`, and a
/// tracker over it.
fn setup(chunks: u8) -> (tempfile::TempDir, File, Tracker) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db");
    let mut writer = OpenOptions::new()
        .create(true)
        .truncate(true)
        .read(true)
        .write(true)
        .open(&path)
        .unwrap();
    for i in 0..chunks {
        writer.write_all(&[i + 1; CHUNK]).unwrap();
    }
    let tracker = Tracker::new(
        File::options().read(true).write(true).open(&path).unwrap(),
        None,
    )
    .unwrap();
    (dir, writer, tracker)
}

fn write(tracker: &mut Tracker, file: &mut File, offset: u64, bytes: &[u8]) {
    tracker.before_write(offset, bytes.len() as u64).unwrap();
    file.seek(SeekFrom::Start(offset)).unwrap();
    file.write_all(bytes).unwrap();
    tracker.after_write(offset, bytes.len() as u64);
}

fn truncate(tracker: &mut Tracker, file: &File, size: u64) {
    tracker.before_truncate(size).unwrap();
    file.set_len(size).unwrap();
    tracker.after_truncate(size);
}

/// Seals, then takes the pending delta (an empty one when nothing changed).
fn seal(tracker: &mut Tracker) -> Delta {
    tracker.seal().unwrap();
    tracker.take().unwrap_or(Delta {
        size: 0,
        max_size: 0,
        chunks: Vec::new(),
    })
}

/// Whole chunks, chunk `i` filled with `bytes[i]`.
fn chunks_of(bytes: &[u8]) -> Vec<u8> {
    bytes.iter().flat_map(|&byte| [byte; CHUNK]).collect()
}

fn contents(file: &mut File) -> Vec<u8> {
    let mut bytes = Vec::new();
    file.seek(SeekFrom::Start(0)).unwrap();
    file.read_to_end(&mut bytes).unwrap();
    bytes
}

#[test]
fn a_seal_holds_exactly_the_chunks_whose_bytes_changed() {
    let (_dir, mut file, mut tracker) = setup(4);
    assert!(!tracker.has_changes());
    // A write inside chunk 1, one across chunks 2 and 3.
    write(&mut tracker, &mut file, CHUNK_SIZE + 10, &[0xaa; 20]);
    write(&mut tracker, &mut file, 3 * CHUNK_SIZE - 5, &[0xbb; 10]);
    assert!(tracker.has_changes());
    let delta = seal(&mut tracker);
    assert_eq!(
        (delta.size, delta.max_size),
        (4 * CHUNK_SIZE, 4 * CHUNK_SIZE)
    );
    let indexes: Vec<u32> = delta.chunks.iter().map(|(i, _)| *i).collect();
    assert_eq!(indexes, [1, 2, 3]);
    let now = contents(&mut file);
    for (index, bytes) in &delta.chunks {
        let start = *index as usize * CHUNK;
        assert_eq!(bytes.as_slice(), &now[start..start + CHUNK]);
    }
    assert!(!tracker.has_changes());
    tracker.seal().unwrap();
    assert!(tracker.take().is_none(), "nothing more is pending");
}

#[test]
fn a_chunk_rewritten_with_identical_bytes_is_not_sealed() {
    let (_dir, mut file, mut tracker) = setup(3);
    write(&mut tracker, &mut file, 0, &[1; CHUNK]);
    write(&mut tracker, &mut file, CHUNK_SIZE, &[9; 4]);
    write(&mut tracker, &mut file, CHUNK_SIZE, &[2; 4]);
    tracker.seal().unwrap();
    assert!(!tracker.has_pending(), "nothing to write");
    let delta = seal(&mut tracker);
    assert!(
        delta.chunks.is_empty(),
        "chunks {:?}",
        delta.chunks.iter().map(|c| c.0).collect::<Vec<_>>()
    );
}

#[test]
fn growing_and_shrinking_report_sizes_and_the_last_partial_chunk() {
    let (_dir, mut file, mut tracker) = setup(2);
    // A write past the end: the gap (chunk 2) reads as zeros, chunk 3 is short.
    write(&mut tracker, &mut file, 3 * CHUNK_SIZE, &[7; 100]);
    let delta = seal(&mut tracker);
    assert_eq!(delta.size, 3 * CHUNK_SIZE + 100);
    assert_eq!(delta.max_size, 3 * CHUNK_SIZE + 100);
    let chunks: Vec<(u32, usize)> = delta.chunks.iter().map(|(i, b)| (*i, b.len())).collect();
    assert_eq!(chunks, [(2, CHUNK), (3, 100)]);
    assert!(delta.chunks[0].1.iter().all(|&b| b == 0));
    assert!(delta.chunks[1].1.iter().all(|&b| b == 7));

    // Shrinking sends no chunk past the end, only the new size; the size
    // before counts in max_size (the KV may hold chunks up to it).
    truncate(&mut tracker, &file, CHUNK_SIZE);
    let delta = seal(&mut tracker);
    assert_eq!(
        (delta.size, delta.max_size),
        (CHUNK_SIZE, 3 * CHUNK_SIZE + 100)
    );
    assert!(delta.chunks.is_empty());

    // Seals accumulate until taken: a chunk changed twice goes once, with
    // its bytes at the last seal; chunks past a later shrink are dropped.
    write(&mut tracker, &mut file, 0, &[5; 4]);
    tracker.seal().unwrap();
    write(&mut tracker, &mut file, 0, &[6; 4]);
    write(&mut tracker, &mut file, 2 * CHUNK_SIZE, &[8; 4]);
    tracker.seal().unwrap();
    truncate(&mut tracker, &file, 2 * CHUNK_SIZE);
    let delta = seal(&mut tracker);
    assert_eq!(
        (delta.size, delta.max_size),
        (2 * CHUNK_SIZE, 2 * CHUNK_SIZE + 4)
    );
    // Chunk 1 is the gap the write past the end opened: zeros now.
    assert_eq!(delta.chunks.iter().map(|c| c.0).collect::<Vec<_>>(), [0, 1]);
    assert_eq!(&delta.chunks[0].1[..4], &[6; 4]);
    assert!(delta.chunks[1].1.iter().all(|&b| b == 0));
}

#[test]
fn before_images_are_the_durable_bytes_until_ack() {
    let (_dir, mut file, mut tracker) = setup(3);
    let original = contents(&mut file);
    write(&mut tracker, &mut file, 0, &[0xcc; 8]);
    write(&mut tracker, &mut file, 2 * CHUNK_SIZE, &[0xdd; CHUNK]);
    tracker.seal().unwrap();
    let at_seal = contents(&mut file);
    // Sealed but not acknowledged: a second change to chunk 0, and chunk 1.
    write(&mut tracker, &mut file, 4, &[0xee; 8]);
    write(&mut tracker, &mut file, CHUNK_SIZE, &[0xff; 8]);
    let (size, images) = tracker.durable_images().unwrap();
    assert_eq!(size, 3 * CHUNK_SIZE);
    let indexes: Vec<u32> = images.iter().map(|(i, _)| *i).collect();
    assert_eq!(indexes, [0, 1, 2]);
    for (index, bytes) in images {
        let start = index as usize * CHUNK;
        assert_eq!(bytes, &original[start..start + CHUNK], "chunk {index}");
    }

    // After the ack, the durable state is the sealed one: chunk 2 is no
    // longer pending, chunks 0 and 1 keep their bytes as of the seal.
    tracker.ack();
    let (_, images) = tracker.durable_images().unwrap();
    let indexes: Vec<u32> = images.iter().map(|(i, _)| *i).collect();
    assert_eq!(indexes, [0, 1]);
    for (index, bytes) in images {
        let start = index as usize * CHUNK;
        assert_eq!(bytes, &at_seal[start..start + CHUNK], "chunk {index}");
    }
}

#[test]
fn restore_puts_the_file_back_to_the_durable_state() {
    let (_dir, mut file, mut tracker) = setup(3);
    let original = contents(&mut file);
    write(&mut tracker, &mut file, 10, &[0x11; 5000]);
    write(&mut tracker, &mut file, 5 * CHUNK_SIZE, &[0x22; 10]);
    tracker.seal().unwrap();
    truncate(&mut tracker, &file, CHUNK_SIZE + 1);
    tracker.restore().unwrap();
    // (Held-back chunks reach the file before anything reads it there.)
    tracker.flush().unwrap();
    assert_eq!(contents(&mut file), original);
    assert!(!tracker.has_changes());
    // The next change is measured from the restored state.
    write(&mut tracker, &mut file, 0, &[0x33; 1]);
    let delta = seal(&mut tracker);
    assert_eq!(
        (delta.size, delta.max_size),
        (3 * CHUNK_SIZE, 3 * CHUNK_SIZE)
    );
    assert_eq!(delta.chunks.iter().map(|c| c.0).collect::<Vec<_>>(), [0]);
}

/// A file of `chunks` chunks of zeros, none written (sparse), in a new
/// directory, and its path.
fn sparse_file(chunks: u64) -> (tempfile::TempDir, std::path::PathBuf, File) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db");
    let file = File::options()
        .create(true)
        .truncate(true)
        .read(true)
        .write(true)
        .open(&path)
        .unwrap();
    file.set_len(chunks * CHUNK_SIZE).unwrap();
    (dir, path, file)
}

#[test]
fn remote_chunks_are_fetched_marked_local_and_restored_as_remote() {
    // A sparse file of 200 chunks, of which only chunk 0 is local.
    let (_dir, path, file) = sparse_file(200);
    let mut writer = File::options().write(true).open(&path).unwrap();
    let mut tracker = Tracker::new(file, Some(1)).unwrap();
    assert_eq!(tracker.remote_chunks(), (1..200).collect::<Vec<u32>>());

    // A read of chunk 10 asks for it alone; the next, just past it, for more.
    let first = tracker.plan_fetch(10 * CHUNK_SIZE, CHUNK_SIZE).unwrap();
    assert_eq!(first, vec![10]);
    tracker.fill(&first, &[Some(&[7u8; CHUNK][..])]).unwrap();
    assert!(
        tracker.plan_fetch(10 * CHUNK_SIZE, 100).is_none(),
        "local now"
    );
    let next = tracker.plan_fetch(11 * CHUNK_SIZE, CHUNK_SIZE).unwrap();
    assert_eq!(next, vec![11, 12]);
    // Reads going backwards from below a fetch ask for more and more below.
    let mut below: u32 = 190;
    let far = tracker
        .plan_fetch(u64::from(below) * CHUNK_SIZE, CHUNK_SIZE)
        .unwrap();
    assert_eq!(far, vec![190], "far from the last fetch: alone");
    let mut sizes = vec![];
    for _ in 0..4 {
        below -= 1;
        let wanted = tracker
            .plan_fetch(u64::from(below) * CHUNK_SIZE, CHUNK_SIZE)
            .unwrap();
        assert_eq!(*wanted.last().unwrap(), below);
        sizes.push(wanted.len());
        below = wanted[0];
        let none: Vec<Option<&[u8]>> = vec![None; wanted.len()];
        tracker.fill(&wanted, &none).unwrap();
    }
    assert_eq!(sizes, [2, 4, 8, 16]);
    let chunks: Vec<Option<&[u8]>> = vec![None, Some(&[9u8; 100][..])];
    tracker.fill(&next, &chunks).unwrap();
    let mut bytes = vec![0u8; 3 * CHUNK];
    let mut reader = File::open(&path).unwrap();
    reader.seek(SeekFrom::Start(10 * CHUNK_SIZE)).unwrap();
    reader.read_exact(&mut bytes).unwrap();
    assert!(bytes[..CHUNK].iter().all(|&b| b == 7));
    assert!(
        bytes[CHUNK..2 * CHUNK].iter().all(|&b| b == 0),
        "a missing chunk reads as zeros"
    );
    assert!(bytes[2 * CHUNK..2 * CHUNK + 100].iter().all(|&b| b == 9));
    assert!(
        bytes[2 * CHUNK + 100..].iter().all(|&b| b == 0),
        "a short chunk ends in zeros"
    );

    // A remote chunk written whole, without being read: its before-image is
    // unknown until the KV's bytes are handed over.
    assert!(tracker
        .plan_fetch_for_write(50 * CHUNK_SIZE, CHUNK_SIZE)
        .is_none());
    assert_eq!(
        tracker.plan_fetch_for_write(60 * CHUNK_SIZE, 10),
        Some(vec![60])
    );
    write(&mut tracker, &mut writer, 50 * CHUNK_SIZE, &[5u8; CHUNK]);
    tracker.seal().unwrap();
    assert!(tracker.take().is_some());
    assert_eq!(tracker.unknown_images(), vec![50]);
    assert!(tracker.durable_images().is_none());
    tracker.set_image(50, &[3u8; CHUNK]);
    assert!(tracker.unknown_images().is_empty());
    assert_eq!(
        tracker.durable_images().unwrap().1,
        vec![(50, &[3u8; CHUNK][..])]
    );

    // Truncating drops the remote chunks past the end; a restore brings back
    // the durable state, the chunks written while remote remote again.
    tracker.before_truncate(100 * CHUNK_SIZE).unwrap();
    writer.set_len(100 * CHUNK_SIZE).unwrap();
    tracker.after_truncate(100 * CHUNK_SIZE);
    assert!(tracker.remote_chunks().iter().all(|&i| i < 100));
    let mut tracker2 = {
        // The same, written blind and never given its image: restored remote.
        let file = File::options().read(true).write(true).open(&path).unwrap();
        Tracker::new(file, Some(1)).unwrap()
    };
    write(&mut tracker2, &mut writer, 70 * CHUNK_SIZE, &[1u8; CHUNK]);
    assert!(!tracker2.remote_chunks().contains(&70));
    tracker2.restore().unwrap();
    assert!(tracker2.remote_chunks().contains(&70));
}

/// As SQLite's writes reach the tracker through the VFS shim: with their
/// bytes, which the tracker may keep.
fn write_bytes(tracker: &mut Tracker, file: &mut File, offset: u64, bytes: &[u8]) {
    tracker.before_write(offset, bytes.len() as u64).unwrap();
    file.seek(SeekFrom::Start(offset)).unwrap();
    file.write_all(bytes).unwrap();
    tracker.after_write_bytes(offset, bytes);
}

#[test]
fn bytes_kept_from_a_small_seal_are_the_next_before_images() {
    let (_dir, mut file, mut tracker) = setup(3);
    // A small commit of whole chunks: their bytes stay known after the seal.
    write_bytes(&mut tracker, &mut file, CHUNK_SIZE, &[9; CHUNK]);
    write_bytes(&mut tracker, &mut file, 2 * CHUNK_SIZE, &[8; CHUNK]);
    let delta = seal(&mut tracker);
    assert_eq!(delta.chunks.iter().map(|c| c.0).collect::<Vec<_>>(), [1, 2]);
    tracker.ack();
    // The next transaction: a whole chunk, a chunk in part, and a shrink
    // that drops the kept bytes of chunk 2.
    write_bytes(&mut tracker, &mut file, CHUNK_SIZE, &[7; CHUNK]);
    write_bytes(&mut tracker, &mut file, 10, &[6; 4]);
    truncate(&mut tracker, &file, 2 * CHUNK_SIZE);
    write_bytes(&mut tracker, &mut file, 2 * CHUNK_SIZE, &[5; CHUNK]);
    let journal = tracker.durable_images().unwrap();
    assert_eq!(journal.0, 3 * CHUNK_SIZE);
    let images: Vec<(u32, Vec<u8>)> = journal.1.iter().map(|(i, b)| (*i, b.to_vec())).collect();
    assert_eq!(
        images,
        [
            (0, vec![1; CHUNK]),
            (1, vec![9; CHUNK]),
            (2, vec![8; CHUNK])
        ]
    );
    // Put back, the file is what the first commit left.
    tracker.restore().unwrap();
    // (Held-back chunks reach the file before anything reads it there.)
    tracker.flush().unwrap();
    assert_eq!(contents(&mut file), chunks_of(&[1, 9, 8]));
    // A failed write leaves chunk 1 holding any part of it: nothing since
    // the last seal is sealed, and discarding puts the sealed bytes back.
    write_bytes(&mut tracker, &mut file, CHUNK_SIZE, &[3; CHUNK]);
    seal(&mut tracker);
    tracker.ack();
    tracker.before_write(CHUNK_SIZE, CHUNK_SIZE).unwrap();
    file.seek(SeekFrom::Start(CHUNK_SIZE)).unwrap();
    file.write_all(&[4; 100]).unwrap();
    tracker.write_failed(CHUNK_SIZE, CHUNK_SIZE);
    assert!(tracker.seal().is_err());
    assert!(tracker.seal().is_err(), "a refused seal refuses again");
    tracker.discard_unsealed().unwrap();
    tracker.flush().unwrap();
    assert_eq!(contents(&mut file), chunks_of(&[1, 3, 8]));
    assert!(seal(&mut tracker).chunks.is_empty());
}

/// As the VFS shim hands SQLite's writes over: the tracker may hold one back
/// (true), else the file gets it.
fn write_held(tracker: &mut Tracker, file: &mut File, offset: u64, bytes: &[u8]) -> bool {
    if tracker.write(offset, bytes).unwrap() {
        return true;
    }
    file.seek(SeekFrom::Start(offset)).unwrap();
    file.write_all(bytes).unwrap();
    tracker.after_write_bytes(offset, bytes);
    false
}

#[test]
fn held_back_writes_reach_the_file_before_anything_reads_or_restores_it() {
    let (_dir, mut file, mut tracker) = setup(3);
    // Whole chunks are held back: the file keeps its bytes, its size counts them.
    assert!(write_held(&mut tracker, &mut file, CHUNK_SIZE, &[9; CHUNK]));
    assert!(write_held(
        &mut tracker,
        &mut file,
        3 * CHUNK_SIZE,
        &[8; CHUNK]
    ));
    assert_eq!(contents(&mut file).len(), 3 * CHUNK);
    assert_eq!(tracker.size_with_unwritten(3 * CHUNK_SIZE), 4 * CHUNK_SIZE);
    // A write of part of a chunk goes to the file, after the chunk's held bytes.
    assert!(!write_held(
        &mut tracker,
        &mut file,
        CHUNK_SIZE + 10,
        &[7; 4]
    ));
    assert_eq!(
        contents(&mut file)[CHUNK..CHUNK + 12],
        [9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 7, 7]
    );
    // The seal sends the held bytes, and keeps holding those of a small seal.
    let delta = seal(&mut tracker);
    assert_eq!(delta.chunks.iter().map(|c| c.0).collect::<Vec<_>>(), [1, 3]);
    assert_eq!(*delta.chunks[1].1, vec![8; CHUNK]);
    assert_eq!(delta.size, 4 * CHUNK_SIZE);
    tracker.ack();
    assert_eq!(contents(&mut file).len(), 3 * CHUNK);
    // A read of the file there writes them out first.
    tracker.flush_range(3 * CHUNK_SIZE, 100).unwrap();
    assert_eq!(contents(&mut file)[3 * CHUNK..], [8; CHUNK]);
    // Chunk 0, durable and still held back, leaves the tracker's memory at
    // the next seal (not among its chunks): it must reach the file then, or
    // putting back that seal's failed commit (of chunk 2) would lose it.
    assert!(write_held(&mut tracker, &mut file, 0, &[6; CHUNK]));
    seal(&mut tracker);
    tracker.ack();
    assert!(write_held(
        &mut tracker,
        &mut file,
        2 * CHUNK_SIZE,
        &[5; CHUNK]
    ));
    seal(&mut tracker);
    tracker.restore().unwrap();
    // (Held-back chunks reach the file before anything reads it there.)
    tracker.flush().unwrap();
    let now = contents(&mut file);
    assert_eq!(now[..CHUNK], [6; CHUNK]);
    assert_eq!(now[2 * CHUNK..3 * CHUNK], [3; CHUNK]);
    assert_eq!(now[3 * CHUNK..], [8; CHUNK]);
    // A seal of more chunks than it keeps writes them all to the file.
    for i in 0..10u8 {
        assert!(write_held(
            &mut tracker,
            &mut file,
            i as u64 * CHUNK_SIZE,
            &[20 + i; CHUNK]
        ));
    }
    seal(&mut tracker);
    let now = contents(&mut file);
    assert_eq!(now.len(), 10 * CHUNK);
    for i in 0..10 {
        assert_eq!(now[i * CHUNK..(i + 1) * CHUNK], [20 + i as u8; CHUNK]);
    }
}

#[test]
fn held_back_runs_of_chunks_reach_the_file_with_every_byte_in_place() {
    let (_dir, mut file, mut tracker) = setup(1);
    // 200 chunks, with gaps, in runs longer than one write takes: each chunk
    // gets its own bytes, so a chunk written at another's place shows.
    let held: Vec<u32> = (0..200).filter(|i| i % 37 != 5).collect();
    let bytes = |i: u32| -> Vec<u8> { (0..CHUNK).map(|at| (i as usize * 7 + at) as u8).collect() };
    for &i in held.iter().rev() {
        assert!(write_held(
            &mut tracker,
            &mut file,
            i as u64 * CHUNK_SIZE,
            &bytes(i)
        ));
    }
    // A read of part of them writes those out, and no other.
    tracker
        .flush_range(60 * CHUNK_SIZE, 10 * CHUNK_SIZE)
        .unwrap();
    let now = contents(&mut file);
    assert_eq!(now.len(), 70 * CHUNK);
    for i in 60..70u32 {
        assert_eq!(now[i as usize * CHUNK..(i as usize + 1) * CHUNK], bytes(i));
    }
    assert_eq!(now[1..CHUNK], [1; CHUNK - 1][..]);
    assert_eq!(now[CHUNK..60 * CHUNK], vec![0; 59 * CHUNK][..]);
    // The seal sends them all, the gaps as zeros (they changed: the file
    // grew over them). It leaves the rest held back, and write_back writes
    // them.
    let delta = seal(&mut tracker);
    assert_eq!(delta.chunks.len(), 200);
    assert_eq!(contents(&mut file).len(), 70 * CHUNK);
    assert!(tracker.has_later_writes());
    tracker.write_back().unwrap();
    assert!(!tracker.has_later_writes());
    let now = contents(&mut file);
    assert_eq!(now.len(), 200 * CHUNK);
    for i in 0..200u32 {
        let chunk = &now[i as usize * CHUNK..(i as usize + 1) * CHUNK];
        if held.contains(&i) {
            assert_eq!(chunk, bytes(i), "chunk {i}");
        } else {
            assert_eq!(chunk, [0; CHUNK], "chunk {i}");
        }
    }
}

#[test]
fn changes_that_cannot_be_sealed_are_discarded_without_writing_the_file() {
    // A tracker whose file refuses every write, as a full disk would: held
    // back chunks are all it can take.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db");
    std::fs::write(&path, [[1u8; CHUNK], [2u8; CHUNK]].concat()).unwrap();
    let mut tracker = Tracker::new(File::open(&path).unwrap(), None).unwrap();
    let held = |tracker: &mut Tracker, index: u64, byte: u8| {
        assert!(tracker.write(index * CHUNK_SIZE, &[byte; CHUNK]).unwrap());
    };
    let read = |tracker: &Tracker, offset: u64| {
        let mut buf = [0u8; 16];
        tracker.read_held_back(offset, &mut buf).then_some(buf[0])
    };
    // A small seal keeps its chunks held back: it writes nothing.
    held(&mut tracker, 2, 9);
    tracker.seal().unwrap();
    assert_eq!(tracker.take().unwrap().chunks.len(), 1);
    tracker.ack();
    assert_eq!(read(&tracker, 2 * CHUNK_SIZE + 100), Some(9));
    assert_eq!(read(&tracker, CHUNK_SIZE), None, "chunk 1 is not held back");
    // A larger one must write the file, and cannot: it refuses, and so does
    // every seal after, until the changes are discarded.
    held(&mut tracker, 0, 5);
    for index in 3..12 {
        held(&mut tracker, index, 6);
    }
    assert!(tracker.seal().is_err());
    assert!(tracker.seal().is_err());
    tracker.discard_unsealed().unwrap();
    // The last seal's state: chunk 0's sealed bytes and chunk 2 held back,
    // the chunks past its end gone.
    assert_eq!(tracker.size_with_unwritten(2 * CHUNK_SIZE), 3 * CHUNK_SIZE);
    assert_eq!(read(&tracker, 0), Some(1));
    assert_eq!(read(&tracker, 2 * CHUNK_SIZE), Some(9));
    assert_eq!(read(&tracker, 3 * CHUNK_SIZE), None);
    assert!(seal(&mut tracker).chunks.is_empty());
    // While the file takes no writes, a seal that must write the held-back
    // chunks (not its own) refuses too, and discarding works again.
    held(&mut tracker, 1, 7);
    assert!(tracker.seal().is_err());
    tracker.discard_unsealed().unwrap();
    assert_eq!(read(&tracker, CHUNK_SIZE), Some(2));
    assert_eq!(read(&tracker, 2 * CHUNK_SIZE), Some(9));
    // Putting back the durable state (after a failed KV write) needs no
    // write of the file either.
    held(&mut tracker, 0, 4);
    tracker.seal().unwrap_err();
    tracker.discard_unsealed().unwrap();
    held(&mut tracker, 2, 3);
    tracker.restore().unwrap();
    assert_eq!(tracker.size_with_unwritten(2 * CHUNK_SIZE), 3 * CHUNK_SIZE);
    assert_eq!(read(&tracker, 0), Some(1));
    assert_eq!(read(&tracker, 2 * CHUNK_SIZE), Some(9));
}

#[test]
fn restore_puts_back_a_file_that_ends_within_a_chunk() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db");
    let original: Vec<u8> = (0..2 * CHUNK + 100).map(|i| (i % 251) as u8).collect();
    std::fs::write(&path, &original).unwrap();
    let mut file = File::options().read(true).write(true).open(&path).unwrap();
    let mut tracker = Tracker::new(
        File::options().read(true).write(true).open(&path).unwrap(),
        None,
    )
    .unwrap();
    // The last chunk grows whole, a chunk is rewritten whole, then the file
    // shrinks to within the first chunk.
    write_held(&mut tracker, &mut file, 2 * CHUNK_SIZE, &[7; CHUNK]);
    write_held(&mut tracker, &mut file, CHUNK_SIZE, &[8; CHUNK]);
    truncate(&mut tracker, &file, 10);
    tracker.restore().unwrap();
    tracker.flush().unwrap();
    assert_eq!(contents(&mut file), original);
    assert_eq!(
        tracker.size_with_unwritten(file.metadata().unwrap().len()),
        original.len() as u64
    );
    // The same, put back to the last seal.
    write_held(&mut tracker, &mut file, 2 * CHUNK_SIZE, &[7; CHUNK]);
    tracker.write_failed(0, 1);
    tracker.seal().unwrap_err();
    tracker.discard_unsealed().unwrap();
    tracker.flush().unwrap();
    assert_eq!(contents(&mut file), original);
}

#[test]
fn a_packed_delta_is_taken_only_while_it_is_the_pending_delta() {
    let (_dir, mut file, mut tracker) = setup(4);
    write(&mut tracker, &mut file, 0, &[9; CHUNK]);
    write(&mut tracker, &mut file, 2 * CHUNK_SIZE, &[8; 10]);
    tracker.seal().unwrap();
    // The packed copy holds the chunks end to end, in index order.
    let packed = tracker.pack().unwrap();
    assert_eq!(packed.chunks, vec![(0, CHUNK), (2, CHUNK)]);
    let mut third = vec![3; CHUNK];
    third[..10].copy_from_slice(&[8; 10]);
    assert_eq!(packed.bytes, [vec![9; CHUNK], third].concat());
    assert_eq!(
        (packed.size, packed.max_size),
        (4 * CHUNK_SIZE, 4 * CHUNK_SIZE)
    );
    let taken = tracker.take_packed(packed).unwrap();
    assert_eq!(taken.chunks.len(), 2);
    assert!(!tracker.has_pending());

    // A seal after the copy: the copy is stale, the delta stays pending.
    tracker.ack();
    write(&mut tracker, &mut file, CHUNK_SIZE, &[7; CHUNK]);
    tracker.seal().unwrap();
    let stale = tracker.pack().unwrap();
    write(&mut tracker, &mut file, 3 * CHUNK_SIZE, &[6; CHUNK]);
    tracker.seal().unwrap();
    assert!(tracker.take_packed(stale).is_none());
    let delta = tracker.take().unwrap();
    let indices: Vec<u32> = delta.chunks.iter().map(|(index, _)| *index).collect();
    assert_eq!(indices, vec![1, 3]);

    // A restore after the copy: nothing is pending any more.
    tracker.ack();
    write(&mut tracker, &mut file, 0, &[5; CHUNK]);
    tracker.seal().unwrap();
    let dropped = tracker.pack().unwrap();
    tracker.restore().unwrap();
    assert!(tracker.take_packed(dropped).is_none());
    assert!(!tracker.has_pending());

    // A take after the copy: the copy is stale too.
    write(&mut tracker, &mut file, 0, &[4; CHUNK]);
    tracker.seal().unwrap();
    let copy = tracker.pack().unwrap();
    tracker.take().unwrap();
    write(&mut tracker, &mut file, 0, &[4; CHUNK]);
    assert!(tracker.take_packed(copy).is_none());
}

/// Writes whole chunks `indices`, chunk `i` filled with `byte(i)`: each is
/// held back.
fn hold_all(
    tracker: &mut Tracker,
    file: &mut File,
    indices: impl IntoIterator<Item = u64>,
    byte: impl Fn(u64) -> u8,
) {
    for index in indices {
        assert!(
            write_held(tracker, file, index * CHUNK_SIZE, &[byte(index); CHUNK]),
            "chunk {index}"
        );
    }
}

#[test]
fn a_seal_of_up_to_8_chunks_holds_them_back_and_no_more_than_8_stay_held() {
    let (_dir, mut file, mut tracker) = setup(20);
    // 8 whole chunks, sealed and acknowledged: none reaches the file.
    hold_all(&mut tracker, &mut file, 0..8, |_| 50);
    assert_eq!(seal(&mut tracker).chunks.len(), 8);
    tracker.ack();
    let now = contents(&mut file);
    for index in 0..8 {
        assert_eq!(now[index * CHUNK], index as u8 + 1, "chunk {index}");
    }
    // The next commit writes 1 other chunk: the 8 it does not write leave
    // the tracker's memory (to the file), the 1 stays held back.
    assert!(write_held(
        &mut tracker,
        &mut file,
        10 * CHUNK_SIZE,
        &[60; CHUNK]
    ));
    seal(&mut tracker);
    tracker.ack();
    let now = contents(&mut file);
    for index in 0..8 {
        assert_eq!(now[index * CHUNK..(index + 1) * CHUNK], [50; CHUNK]);
    }
    assert_eq!(now[10 * CHUNK], 11);
    // 9 chunks (the held one among them): all reach the file at the seal.
    hold_all(&mut tracker, &mut file, 10..19, |_| 70);
    assert_eq!(seal(&mut tracker).chunks.len(), 9);
    let now = contents(&mut file);
    for index in 10..19 {
        assert_eq!(now[index * CHUNK..(index + 1) * CHUNK], [70; CHUNK]);
    }
}

#[test]
fn a_large_seal_leaves_its_chunks_held_back_for_write_back() {
    let (_dir, mut file, mut tracker) = setup(1);
    let read = |tracker: &Tracker, index: u64| {
        let mut buf = [0u8; 16];
        tracker
            .read_held_back(index * CHUNK_SIZE + 7, &mut buf)
            .then_some(buf[0])
    };
    // 40 chunks: the seal sends them and writes none of them yet.
    hold_all(&mut tracker, &mut file, 0..40, |index| 100 + index as u8);
    assert_eq!(seal(&mut tracker).chunks.len(), 40);
    tracker.ack();
    assert!(tracker.has_later_writes());
    assert_eq!(contents(&mut file), [1; CHUNK]);
    assert_eq!(tracker.size_with_unwritten(CHUNK_SIZE), 40 * CHUNK_SIZE);
    assert_eq!(read(&tracker, 5), Some(105));
    // The next transaction writes chunk 3 again before write_back runs:
    // the file gets its latest bytes, which the next seal still has.
    hold_all(&mut tracker, &mut file, [3], |_| 7);
    tracker.write_back().unwrap();
    assert!(!tracker.has_later_writes());
    let now = contents(&mut file);
    assert_eq!(now.len(), 40 * CHUNK);
    for index in 0..40 {
        let expected = if index == 3 { 7 } else { 100 + index as u8 };
        assert_eq!(now[index * CHUNK..(index + 1) * CHUNK], [expected; CHUNK]);
        assert_eq!(read(&tracker, index as u64), None, "chunk {index}");
    }
    let delta = seal(&mut tracker);
    assert_eq!(delta.chunks.len(), 1);
    assert_eq!(*delta.chunks[0].1, vec![7; CHUNK]);
    tracker.ack();
    // A seal before write_back (a call held the database) writes them
    // itself, and a restore after a large seal (its KV write failed) puts
    // back the durable bytes, which a late write_back does not undo.
    hold_all(&mut tracker, &mut file, 40..80, |_| 9);
    seal(&mut tracker);
    tracker.ack();
    hold_all(&mut tracker, &mut file, [0], |_| 8);
    seal(&mut tracker);
    tracker.ack();
    assert!(!tracker.has_later_writes());
    assert_eq!(contents(&mut file)[40 * CHUNK..], vec![9; 40 * CHUNK][..]);
    hold_all(&mut tracker, &mut file, (0..80).step_by(2), |_| 5);
    seal(&mut tracker);
    assert!(tracker.has_later_writes());
    tracker.restore().unwrap();
    tracker.write_back().unwrap();
    tracker.flush().unwrap();
    let now = contents(&mut file);
    assert_eq!(now.len(), 80 * CHUNK);
    for index in 0..80 {
        let expected = match index {
            0 => 8,
            3 => 7,
            40.. => 9,
            _ => 100 + index as u8,
        };
        assert_eq!(
            now[index * CHUNK..(index + 1) * CHUNK],
            [expected; CHUNK],
            "chunk {index}"
        );
    }
}

#[test]
fn a_failed_write_back_leaves_the_chunks_held_back_for_the_next_seal() {
    // A file that refuses every write, as a full disk would.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db");
    std::fs::write(&path, [1u8; CHUNK]).unwrap();
    let mut tracker = Tracker::new(File::open(&path).unwrap(), None).unwrap();
    let read = |tracker: &Tracker, index: u64| {
        let mut buf = [0u8; 16];
        tracker
            .read_held_back(index * CHUNK_SIZE, &mut buf)
            .then_some(buf[0])
    };
    // A large seal needs no write: it succeeds, and its delta is the KV's.
    for index in 0..40u64 {
        assert!(tracker.write(index * CHUNK_SIZE, &[9; CHUNK]).unwrap());
    }
    tracker.seal().unwrap();
    assert_eq!(tracker.take().unwrap().chunks.len(), 40);
    tracker.ack();
    // Its write-back fails: the chunks stay held back, readable.
    assert!(tracker.write_back().is_err());
    assert_eq!(read(&tracker, 0), Some(9));
    assert_eq!(read(&tracker, 39), Some(9));
    assert_eq!(tracker.size_with_unwritten(CHUNK_SIZE), 40 * CHUNK_SIZE);
    // The next seal must write them, and cannot: it refuses, and its own
    // change is discarded; what the large seal made stays.
    assert!(tracker.write(45 * CHUNK_SIZE, &[5; CHUNK]).unwrap());
    assert!(tracker.seal().is_err());
    tracker.discard_unsealed().unwrap();
    assert_eq!(read(&tracker, 45), None);
    assert_eq!(read(&tracker, 20), Some(9));
    assert_eq!(tracker.size_with_unwritten(CHUNK_SIZE), 40 * CHUNK_SIZE);
}

/// Write calls this thread has made so far (Linux's per-thread I/O count).
#[cfg(target_os = "linux")]
fn write_calls() -> u64 {
    let io = std::fs::read_to_string("/proc/thread-self/io").unwrap();
    io.lines()
        .find_map(|line| line.strip_prefix("syscw: "))
        .unwrap()
        .parse()
        .unwrap()
}

#[cfg(target_os = "linux")]
#[test]
fn held_back_neighbours_reach_the_file_in_writes_of_up_to_64_chunks() {
    let (_dir, mut file, mut tracker) = setup(1);
    // Chunks 0..200 but 100: two runs, of 100 and 99 chunks.
    hold_all(
        &mut tracker,
        &mut file,
        (0..200).filter(|&index| index != 100),
        |index| index as u8,
    );
    let before = write_calls();
    assert_eq!(seal(&mut tracker).chunks.len(), 200);
    assert_eq!(write_calls(), before, "a large seal writes later");
    tracker.write_back().unwrap();
    // 64 + 36 and 64 + 35 chunks: 4 writes.
    assert_eq!(write_calls() - before, 4);
    let now = contents(&mut file);
    assert_eq!(now.len(), 200 * CHUNK);
    for index in 0..200 {
        let expected = if index == 100 { 0 } else { index as u8 };
        assert_eq!(now[index * CHUNK..(index + 1) * CHUNK], [expected; CHUNK]);
    }
}

/// This process's resident memory, in bytes (Linux).
#[cfg(target_os = "linux")]
fn resident() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap();
    let pages: u64 = statm.split_whitespace().nth(1).unwrap().parse().unwrap();
    pages * 4096
}

#[cfg(target_os = "linux")]
#[test]
fn a_file_claimed_huge_costs_memory_for_the_chunks_read_not_for_its_size() {
    // A sparse file of 4 TiB (2^30 chunks), as metadata and a header that
    // lie make it: only chunk 0 is local.
    let chunks: u32 = 1 << 30;
    let (_dir, path, file) = sparse_file(chunks.into());
    let before = resident();
    let mut tracker = Tracker::new(file, Some(1)).unwrap();
    // A bit per chunk would be 128 MiB.
    let grown = resident().saturating_sub(before);
    assert!(grown < 32 << 20, "{grown} bytes for the tracker");
    assert!(tracker.has_remote());
    // Chunks read are marked local; the claimed end is still remote.
    for index in [5, 1000] {
        let wanted = tracker
            .plan_fetch(u64::from(index) * CHUNK_SIZE, CHUNK_SIZE)
            .unwrap();
        assert_eq!(wanted, vec![index]);
        tracker.fill(&wanted, &[Some(&[9u8; CHUNK][..])]).unwrap();
        assert!(tracker
            .plan_fetch(u64::from(index) * CHUNK_SIZE, CHUNK_SIZE)
            .is_none());
    }
    let last = u64::from(chunks - 1) * CHUNK_SIZE;
    assert_eq!(tracker.plan_fetch(last, CHUNK_SIZE), Some(vec![chunks - 1]));
    // Shrinking it to 70 chunks would cut away 2^30 - 70: past the bound
    // (lib/policy.txt), it fails and changes nothing.
    assert_eq!(max_cut(), 1 << 20);
    assert!(tracker.before_truncate(70 * CHUNK_SIZE).is_err());
    assert!(!tracker.has_changes());
    assert_eq!(tracker.plan_fetch(last, CHUNK_SIZE), Some(vec![chunks - 1]));
    let grown = resident().saturating_sub(before);
    assert!(grown < 32 << 20, "{grown} bytes for the tracker");
    // Within the bound a truncation is made as ever: the chunks cut away
    // stay remote until the commit is durable (restored, they are remote).
    let size = u64::from(chunks) * CHUNK_SIZE;
    let writer = File::options().write(true).open(&path).unwrap();
    let new_size = size - max_cut() * CHUNK_SIZE;
    truncate(&mut tracker, &writer, new_size);
    assert!(tracker.has_changes());
    assert_eq!(tracker.plan_fetch(last, CHUNK_SIZE), None);
    tracker.restore().unwrap();
    assert_eq!(writer.metadata().unwrap().len(), size);
    assert_eq!(tracker.plan_fetch(last, CHUNK_SIZE), Some(vec![chunks - 1]));
}
