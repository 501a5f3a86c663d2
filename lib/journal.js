"use strict";

// Builds a SQLite rollback journal (the file format of sqlite3's pager) from
// before-images, so a commit too large for one putBatch can be made atomic:
// the journal is written to the KV under the journal tag before the main
// chunks, and deleting its metadata is the commit point. A crash in between
// leaves a hot journal that SQLite (this package, and 2.2.1 alike) rolls back
// on the next open.

const { CHUNK_SIZE } = require("./format");

const MAGIC = [0xd9, 0xd5, 0x05, 0xf9, 0x20, 0xa1, 0x63, 0xd7];
const SECTOR_SIZE = 512;
const RECORD_SIZE = 4 + CHUNK_SIZE + 4;

/** sqlite3's pager_cksum: the nonce plus every 200th byte, from the end. */
function checksum(nonce, page) {
	let sum = nonce;
	for (let i = CHUNK_SIZE - 200; i > 0; i -= 200) sum = (sum + page[i]) >>> 0;
	return sum;
}

/**
 * A rollback journal for `count` pages: its header, and room for the page
 * records that writeRecords fills in.
 * @param {number} originalSize the database size before the commit (bytes)
 * @returns {{ bytes: Uint8Array, nonce: number }}
 */
function newJournal(originalSize, count, nonce = (Math.random() * 2 ** 32) >>> 0) {
	const bytes = new Uint8Array(SECTOR_SIZE + count * RECORD_SIZE);
	const view = new DataView(bytes.buffer);
	bytes.set(MAGIC, 0);
	view.setUint32(8, count); // nRec
	view.setUint32(12, nonce); // cksumInit
	view.setUint32(16, Math.ceil(originalSize / CHUNK_SIZE)); // database size in pages
	view.setUint32(20, SECTOR_SIZE);
	view.setUint32(24, CHUNK_SIZE); // page size
	return { bytes, nonce };
}

/**
 * Writes the records of pages `first..end` of `pages` (chunk index and its
 * bytes before the commit; a shorter chunk, the file's last, reads as
 * zeros past its end) into `journal` (see newJournal).
 */
function writeRecords(journal, pages, first, end) {
	const { bytes, nonce } = journal;
	const view = new DataView(bytes.buffer);
	for (let i = first; i < end; i++) {
		const [index, image] = pages[i];
		const offset = SECTOR_SIZE + i * RECORD_SIZE;
		const page = bytes.subarray(offset + 4, offset + 4 + CHUNK_SIZE);
		view.setUint32(offset, index + 1); // page numbers start at 1
		page.set(image.subarray(0, CHUNK_SIZE));
		view.setUint32(offset + 4 + CHUNK_SIZE, checksum(nonce, page));
	}
}

/**
 * What the header of a rollback journal (`first`, its first bytes) says:
 * `{ pages, pageSize }`, the database's size in pages before the
 * transaction and the page size; null if SQLite would not read it as a
 * header (no magic, a page size that is none).
 * @param {Uint8Array | null} first
 */
function readHeader(first) {
	if (first === null || first.length < 28 || MAGIC.some((byte, i) => first[i] !== byte)) return null;
	const view = new DataView(first.buffer, first.byteOffset, first.byteLength);
	const pageSize = view.getUint32(24);
	if (pageSize < 512 || pageSize > 65536 || (pageSize & (pageSize - 1)) !== 0) return null;
	return { pages: view.getUint32(16), pageSize };
}

/**
 * @param {number} originalSize the database size before the commit (bytes)
 * @param {[number, Uint8Array][]} pages chunk index and its bytes before the commit
 * @returns {Uint8Array} the journal file
 */
function buildJournal(originalSize, pages, nonce) {
	const journal = newJournal(originalSize, pages.length, nonce);
	writeRecords(journal, pages, 0, pages.length);
	return journal.bytes;
}

module.exports = { buildJournal, newJournal, writeRecords, readHeader };
