"use strict";

// Reads a SQLite write-ahead log (the WAL file format of sqlite3's wal.c).
// This package never writes one, but 2.2.1 let `PRAGMA journal_mode=WAL`
// through, and kept the log in the KV under the WAL tag: the transactions
// committed since its last checkpoint live only there. Persistence copies
// their pages into the main file at open, as SQLite's checkpoint does (see
// Persistence#checkpointWal), so none of them is lost.

const { corrupt } = require("./errors");

const HEADER_SIZE = 32;
const FRAME_HEADER_SIZE = 24;
// The low bit says in which byte order the checksums read the log's words.
const MAGIC = 0x377f0682;
const VERSION = 3007000;

/**
 * sqlite3's walChecksumBytes: over the 32-bit words of bytes [from, to) of
 * `view` (read little-endian or big-endian), continuing from `sums`.
 */
function checksum(view, from, to, littleEndian, sums) {
	let s0 = sums[0];
	let s1 = sums[1];
	for (let at = from; at < to; at += 8) {
		s0 = (s0 + view.getUint32(at, littleEndian) + s1) >>> 0;
		s1 = (s1 + view.getUint32(at + 4, littleEndian) + s0) >>> 0;
	}
	return [s0, s1];
}

/**
 * The committed content of the log in `bytes` (its first bytes, as far as
 * the KV holds them: a missing chunk reads as zeros and ends it), as SQLite's
 * recovery finds it: the frames up to the last commit frame whose salts and
 * running checksum hold. Returns `{ pageSize, pageCount, pages }`, `pages`
 * a Map of page number to its bytes (the last frame's of each, none past
 * `pageCount`, the database's size in pages after that commit); or null
 * when the log holds no committed transaction (SQLite then treats it as
 * empty; so does a header that is not a valid log's). Throws SQLITE_CORRUPT
 * for a log of a version SQLite does not read.
 */
function readWal(bytes) {
	if (bytes.length < HEADER_SIZE) return null;
	const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
	const magic = view.getUint32(0);
	if ((magic & ~1) !== MAGIC) return null;
	const littleEndian = (magic & 1) === 0;
	const pageSize = view.getUint32(8);
	if (pageSize < 512 || pageSize > 65536 || (pageSize & (pageSize - 1)) !== 0) return null;
	let sums = checksum(view, 0, 24, littleEndian, [0, 0]);
	if (sums[0] !== view.getUint32(24) || sums[1] !== view.getUint32(28)) return null;
	if (view.getUint32(4) !== VERSION) throw corrupt(`the WAL in the KV is of version ${view.getUint32(4)}, not ${VERSION}`);
	const salt1 = view.getUint32(16);
	const salt2 = view.getUint32(20);
	const frameSize = FRAME_HEADER_SIZE + pageSize;
	// Frames seen since the last commit frame, and what that commit left.
	let pending = [];
	const pages = new Map();
	let pageCount = 0;
	for (let at = HEADER_SIZE; at + frameSize <= bytes.length; at += frameSize) {
		const page = view.getUint32(at);
		if (page === 0 || view.getUint32(at + 8) !== salt1 || view.getUint32(at + 12) !== salt2) break;
		sums = checksum(view, at, at + 8, littleEndian, sums);
		sums = checksum(view, at + FRAME_HEADER_SIZE, at + frameSize, littleEndian, sums);
		if (sums[0] !== view.getUint32(at + 16) || sums[1] !== view.getUint32(at + 20)) break;
		pending.push([page, bytes.subarray(at + FRAME_HEADER_SIZE, at + frameSize)]);
		const commitSize = view.getUint32(at + 4);
		if (commitSize !== 0) {
			for (const [number, image] of pending) pages.set(number, image);
			pending = [];
			pageCount = commitSize;
		}
	}
	if (pageCount === 0) return null;
	for (const number of pages.keys()) if (number > pageCount) pages.delete(number);
	return { pageSize, pageCount, pages };
}

module.exports = { readWal };
