"use strict";

// The KV storage format of @rivetkit/sqlite-vfs 2.2.1 (see README, "Storage
// format"): byte for byte, so either library opens what the other wrote.

const { corrupt } = require("./errors");

const CHUNK_SIZE = 4096;
const SQLITE_PREFIX = 0x08;
const SCHEMA_VERSION = 0x01;
const META_PREFIX = 0x00;
const CHUNK_PREFIX = 0x01;
const TAG_MAIN = 0;
const TAG_JOURNAL = 1;
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

function chunkKey(tag, index) {
	const key = new Uint8Array(8);
	key[0] = SQLITE_PREFIX;
	key[1] = SCHEMA_VERSION;
	key[2] = CHUNK_PREFIX;
	key[3] = tag;
	new DataView(key.buffer).setUint32(4, index, false);
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
	const what = tag === TAG_MAIN ? "database" : "journal";
	if (!(value instanceof Uint8Array)) {
		throw corrupt(`corrupt ${what} metadata in the KV: expected a Uint8Array, got ${describe(value)}`);
	}
	if (value.length !== META_LENGTH) {
		throw corrupt(`corrupt ${what} metadata in the KV: ${value.length} bytes, expected ${META_LENGTH}`);
	}
	const view = new DataView(value.buffer, value.byteOffset, value.byteLength);
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

function describe(value) {
	if (value === null) return "null";
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
	DEFAULT_LIMITS,
	MAX_FILE_SIZE,
	metaKey,
	chunkKey,
	encodeMeta,
	decodeMeta,
	chunkCount,
	describe,
};
