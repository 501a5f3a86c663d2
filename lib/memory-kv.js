"use strict";

// The embedded default KV: an in-memory store with the actor KV's interface
// and limits, for tests, the demo and quick starts. Values are copied in and
// out, as a real store's would be.

const { createChecks } = require("./kv/checks");

// Keys up to this many bytes become strings without a Buffer: reading
// `key.buffer` of a small typed array makes V8 move its bytes off its heap.
const SHORT_KEY = 64;

function keyString(key) {
	if (key.length <= SHORT_KEY) return String.fromCharCode.apply(null, key);
	return Buffer.from(key.buffer, key.byteOffset, key.byteLength).toString("latin1");
}

function keyBytes(str) {
	return new Uint8Array(Buffer.from(str, "latin1"));
}

/**
 * @param {{ limits?: object }} [options] override the actor KV limits it enforces
 */
function createMemoryKv(options = {}) {
	const check = createChecks(options.limits);
	const store = new Map();
	const checkKey = (key) => keyString(check.key(key));

	return {
		async get(key) {
			const value = store.get(checkKey(key));
			return value === undefined ? null : value.slice();
		},
		async getBatch(keys) {
			return check.keys("getBatch", keys).map((key) => {
				const value = store.get(keyString(key));
				return value === undefined ? null : value.slice();
			});
		},
		async put(key, value) {
			store.set(checkKey(key), check.value(value).slice());
		},
		async putBatch(entries) {
			// All or nothing: every entry is checked before any is stored.
			for (const [key, value] of check.entries(entries)) store.set(keyString(key), value.slice());
		},
		async deleteBatch(keys) {
			for (const key of check.keys("deleteBatch", keys)) store.delete(keyString(key));
		},
		/** Number of keys stored. */
		get size() {
			return store.size;
		},
		/** Every [key, value] pair (copies), in insertion order. */
		entries() {
			return [...store].map(([key, value]) => [keyBytes(key), value.slice()]);
		},
		/** An independent copy of this store, with the same limits. */
		clone() {
			const copy = createMemoryKv(options);
			for (const [key, value] of store) copy._load(key, value);
			return copy;
		},
		/** @internal */
		_load(key, value) {
			store.set(key, value.slice());
		},
	};
}

// keyString and keyBytes serve the benchmark's KV too (bench/kv.js).
module.exports = { createMemoryKv, keyString, keyBytes };
