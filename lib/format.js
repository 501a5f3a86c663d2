"use strict";

// The KV storage format of @rivetkit/sqlite-vfs 2.2.1 (see README, "Storage
// format"): byte for byte, so either library opens what the other wrote.

const { corrupt } = require("./errors");
const { isBytes } = require("./params");

const CHUNK_SIZE = 4096;
const SQLITE_PREFIX = 0x08;
const SCHEMA_VERSION = 0x01;
const META_PREFIX = 0x00;
const CHUNK_PREFIX = 0x01;
const TAG_MAIN = 0;
const TAG_JOURNAL = 1;
// Written by 2.2.1 only, when it ran with journal_mode=WAL (see lib/wal.js).
const TAG_WAL = 2;
const META_VERSION = 1;
const META_LENGTH = 10;
// Chunk indices are u32: a file spans at most 2^32 chunks (16 TiB).
const MAX_FILE_SIZE = 2 ** 32 * CHUNK_SIZE;

/** Limits of the actor KV; every one can be overridden per database. */
const DEFAULT_LIMITS = Object.freeze({
	maxKeysPerCall: 128,
	maxValueSize: 128 * 1024,
	maxBatchBytes: 976 * 1024,
	maxKeySize: 2048,
});

function metaKey(tag) {
	return Uint8Array.of(SQLITE_PREFIX, SCHEMA_VERSION, META_PREFIX, tag);
}

/** Chunk key: the prefix, the file's tag, then the index as u32 big-endian. */
function chunkKey(tag, index) {
	// Bytes set one by one: a DataView per key costs 15 times the key (1 µs).
	const key = new Uint8Array(8);
	key[0] = SQLITE_PREFIX;
	key[1] = SCHEMA_VERSION;
	key[2] = CHUNK_PREFIX;
	key[3] = tag;
	key[4] = index >>> 24;
	key[5] = (index >>> 16) & 0xff;
	key[6] = (index >>> 8) & 0xff;
	key[7] = index & 0xff;
	return key;
}

/** Metadata value: u16 LE version 1, then BARE `FileMeta { size: u64 }`. */
function encodeMeta(size) {
	const value = new Uint8Array(META_LENGTH);
	const view = new DataView(value.buffer);
	view.setUint16(0, META_VERSION, true);
	view.setBigUint64(2, BigInt(size), true);
	return value;
}

/** Decodes and checks a metadata value; throws SQLITE_CORRUPT if invalid. */
function decodeMeta(value, tag) {
	const what = tag === TAG_MAIN ? "database" : tag === TAG_JOURNAL ? "journal" : "WAL";
	if (!isBytes(value)) {
		throw corrupt(`corrupt ${what} metadata in the KV: expected a Uint8Array, got ${describe(value)}`);
	}
	// A copy: its length is the bytes' own, whatever getters the KV's value has.
	const bytes = new Uint8Array(value);
	if (bytes.length !== META_LENGTH) {
		throw corrupt(`corrupt ${what} metadata in the KV: ${bytes.length} bytes, expected ${META_LENGTH}`);
	}
	const view = new DataView(bytes.buffer);
	const version = view.getUint16(0, true);
	if (version !== META_VERSION) {
		throw corrupt(`corrupt ${what} metadata in the KV: unknown version ${version}`);
	}
	const size = view.getBigUint64(2, true);
	if (size > BigInt(MAX_FILE_SIZE)) {
		throw corrupt(`corrupt ${what} metadata in the KV: size ${size} exceeds the maximum file size`);
	}
	return Number(size);
}

const HEADER_MAGIC = Buffer.from("SQLite format 3\0", "latin1");

/** Whether `page` (chunk 0 of a main file) starts with SQLite's header. */
function isDatabaseHeader(page) {
	return isBytes(page) && page.length >= 100 && HEADER_MAGIC.equals(page.subarray(0, 16));
}

/** Whether the header in `page` (chunk 0) gives pages of one chunk each. */
function hasChunkPages(page) {
	return isDatabaseHeader(page) && new DataView(page.buffer, page.byteOffset, page.byteLength).getUint16(16) === CHUNK_SIZE;
}

/**
 * The database size, in bytes, that the header in `page` (chunk 0) gives,
 * when SQLite trusts it (its "in-header database size": non-zero, and the
 * change counter equals the version-valid-for number) and the page size is
 * the chunk size; else null. SQLite reads no page past it.
 */
function headerSize(page) {
	if (!isDatabaseHeader(page)) return null;
	const view = new DataView(page.buffer, page.byteOffset, page.byteLength);
	if (view.getUint16(16) !== CHUNK_SIZE) return null;
	const pages = view.getUint32(28);
	if (pages === 0 || view.getUint32(24) !== view.getUint32(92)) return null;
	return pages * CHUNK_SIZE;
}

function describe(value) {
	if (value === null) return "null";
	if (value instanceof Uint8Array) return "an object that is no typed array (a Proxy of one?)";
	if (typeof value === "object") return value.constructor?.name ?? "object";
	return typeof value;
}

function chunkCount(size) {
	return Math.ceil(size / CHUNK_SIZE);
}

module.exports = {
	CHUNK_SIZE,
	TAG_MAIN,
	TAG_JOURNAL,
	TAG_WAL,
	DEFAULT_LIMITS,
	MAX_FILE_SIZE,
	metaKey,
	chunkKey,
	encodeMeta,
	decodeMeta,
	chunkCount,
	isDatabaseHeader,
	hasChunkPages,
	headerSize,
	describe,
};
