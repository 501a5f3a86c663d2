"use strict";

// The embedded default KV: an in-memory store with the actor KV's interface
// and limits, for tests, the demo and quick starts. Values are copied in and
// out, as a real store's would be.

const { resolveLimits } = require("./persist");

function keyString(key) {
	if (!(key instanceof Uint8Array)) throw new TypeError("KV keys must be Uint8Array");
	return Buffer.from(key.buffer, key.byteOffset, key.byteLength).toString("latin1");
}

function keyBytes(str) {
	return new Uint8Array(Buffer.from(str, "latin1"));
}

/**
 * @param {{ limits?: object }} [options] override the actor KV limits it enforces
 */
function createMemoryKv(options = {}) {
	const limits = resolveLimits(options.limits);
	const store = new Map();

	const checkKeys = (method, count) => {
		if (count > limits.maxKeysPerCall) {
			throw new Error(`KV ${method}: ${count} keys exceed the limit of ${limits.maxKeysPerCall} per call`);
		}
	};
	const checkKey = (key) => {
		const k = keyString(key);
		if (key.length > limits.maxKeySize) throw new Error(`KV key of ${key.length} bytes exceeds ${limits.maxKeySize}`);
		return k;
	};
	const checkValue = (value) => {
		if (!(value instanceof Uint8Array)) throw new TypeError("KV values must be Uint8Array");
		if (value.length > limits.maxValueSize) {
			throw new Error(`KV value of ${value.length} bytes exceeds ${limits.maxValueSize}`);
		}
		return value.slice();
	};

	return {
		async get(key) {
			const value = store.get(checkKey(key));
			return value === undefined ? null : value.slice();
		},
		async getBatch(keys) {
			checkKeys("getBatch", keys.length);
			return keys.map((key) => {
				const value = store.get(checkKey(key));
				return value === undefined ? null : value.slice();
			});
		},
		async put(key, value) {
			store.set(checkKey(key), checkValue(value));
		},
		async putBatch(entries) {
			checkKeys("putBatch", entries.length);
			let bytes = 0;
			const checked = entries.map(([key, value]) => {
				bytes += key.length + value.length;
				return [checkKey(key), checkValue(value)];
			});
			if (bytes > limits.maxBatchBytes) {
				throw new Error(`KV putBatch: ${bytes} bytes exceed the limit of ${limits.maxBatchBytes} per call`);
			}
			// All or nothing: every entry was checked before any is stored.
			for (const [key, value] of checked) store.set(key, value);
		},
		async deleteBatch(keys) {
			checkKeys("deleteBatch", keys.length);
			for (const key of keys.map(checkKey)) store.delete(key);
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

module.exports = { createMemoryKv };
