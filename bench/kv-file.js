"use strict";

// A whole SQLite file in the KV storage format of @rivetkit/sqlite-vfs 2.2.1:
// metadata at [0x08, 0x01, 0x00, tag] holding u16 LE version 1 + u64 LE
// size, and 4 KiB chunks at [0x08, 0x01, 0x01, tag, u32 BE index]. The
// benchmark's own small implementation: the seed design stores its snapshots
// with it, and the backends without a KV read their database image with it.

const CHUNK_SIZE = 4096;
const TAG_MAIN = 0;
const MAX_KEYS = 128;
const MAX_BATCH_BYTES = 976 * 1024;

function metaKey(tag = TAG_MAIN) {
	return Uint8Array.of(0x08, 0x01, 0x00, tag);
}

function chunkKey(index, tag = TAG_MAIN) {
	const key = new Uint8Array(8);
	key.set([0x08, 0x01, 0x01, tag]);
	new DataView(key.buffer).setUint32(4, index, false);
	return key;
}

function encodeMeta(size) {
	const value = new Uint8Array(10);
	const view = new DataView(value.buffer);
	view.setUint16(0, 1, true);
	view.setBigUint64(2, BigInt(size), true);
	return value;
}

function decodeMeta(value) {
	const view = new DataView(value.buffer, value.byteOffset, value.byteLength);
	if (value.length !== 10 || view.getUint16(0, true) !== 1) throw new Error("unknown KV file metadata");
	return Number(view.getBigUint64(2, true));
}

/** Reads the main file from `kv`; null when the KV holds none. */
async function readFile(kv) {
	const meta = await kv.get(metaKey());
	if (meta === null) return null;
	const size = decodeMeta(meta);
	const count = Math.ceil(size / CHUNK_SIZE);
	const bytes = new Uint8Array(size);
	const reads = [];
	for (let first = 0; first < count; first += MAX_KEYS) {
		const indices = [];
		for (let i = first; i < Math.min(first + MAX_KEYS, count); i++) indices.push(i);
		reads.push(
			kv.getBatch(indices.map((i) => chunkKey(i))).then((values) => {
				values.forEach((value, n) => {
					if (value !== null) bytes.set(value.subarray(0, Math.min(value.length, size - indices[n] * CHUNK_SIZE)), indices[n] * CHUNK_SIZE);
				});
			}),
		);
	}
	await Promise.all(reads);
	return bytes;
}

/**
 * Writes `bytes` as the whole main file: every chunk, then the metadata, in
 * putBatch calls within the KV limits; then deletes chunks past the end when
 * the file shrank from `previousSize`.
 */
async function writeFile(kv, bytes, previousSize = 0) {
	const entries = [];
	const count = Math.ceil(bytes.length / CHUNK_SIZE);
	for (let i = 0; i < count; i++) {
		entries.push([chunkKey(i), bytes.slice(i * CHUNK_SIZE, Math.min((i + 1) * CHUNK_SIZE, bytes.length))]);
	}
	entries.push([metaKey(), encodeMeta(bytes.length)]);
	let batch = [];
	let batchBytes = 0;
	for (const entry of entries) {
		const size = entry[0].length + entry[1].length;
		if (batch.length === MAX_KEYS || (batch.length > 0 && batchBytes + size > MAX_BATCH_BYTES)) {
			await kv.putBatch(batch);
			batch = [];
			batchBytes = 0;
		}
		batch.push(entry);
		batchBytes += size;
	}
	if (batch.length > 0) await kv.putBatch(batch);
	const stale = [];
	for (let i = count; i < Math.ceil(previousSize / CHUNK_SIZE); i++) stale.push(chunkKey(i));
	for (let first = 0; first < stale.length; first += MAX_KEYS) {
		await kv.deleteBatch(stale.slice(first, first + MAX_KEYS));
	}
}

module.exports = { CHUNK_SIZE, metaKey, chunkKey, encodeMeta, decodeMeta, readFile, writeFile };
