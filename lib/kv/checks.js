"use strict";

// The actor KV's argument checks, shared by every KV store this package ships
// (in memory, LMDB, PostgreSQL), so that each rejects exactly what the actor
// KV would reject, with the same messages; and the durable stores' ownership
// of an actor (createOwnership, fencedError).

const { resolveLimits } = require("../persist");
const { isBytes } = require("../params");

/**
 * Returns checkers bound to `limits` (overrides of the actor KV limits). Each
 * throws on a call the actor KV would refuse:
 * - `keys(method, keys)`: the key count and every key;
 * - `key(key)`: a Uint8Array no longer than maxKeySize;
 * - `entries(entries)`: a putBatch's key count, keys, values and total bytes.
 */
function createChecks(overrides) {
	const limits = resolveLimits(overrides);
	const count = (method, n) => {
		if (n > limits.maxKeysPerCall) {
			throw new Error(`KV ${method}: ${n} keys exceed the limit of ${limits.maxKeysPerCall} per call`);
		}
	};
	const key = (k) => {
		if (!isBytes(k)) throw new TypeError("KV keys must be Uint8Array");
		if (k.length > limits.maxKeySize) throw new Error(`KV key of ${k.length} bytes exceeds ${limits.maxKeySize}`);
		return k;
	};
	const value = (v) => {
		if (!isBytes(v)) throw new TypeError("KV values must be Uint8Array");
		if (v.length > limits.maxValueSize) throw new Error(`KV value of ${v.length} bytes exceeds ${limits.maxValueSize}`);
		return v;
	};
	const list = (method, items) => {
		if (!Array.isArray(items)) throw new TypeError(`KV ${method} takes an array`);
		count(method, items.length);
	};
	return {
		limits,
		key,
		value,
		keys(method, keys) {
			list(method, keys);
			for (const k of keys) key(k);
			return keys;
		},
		entries(entries) {
			list("putBatch", entries);
			let bytes = 0;
			for (const entry of entries) {
				if (!Array.isArray(entry) || entry.length !== 2) throw new TypeError("KV putBatch entries must be [key, value] pairs");
				key(entry[0]);
				value(entry[1]);
				bytes += entry[0].length + entry[1].length;
			}
			if (bytes > limits.maxBatchBytes) {
				throw new Error(`KV putBatch: ${bytes} bytes exceed the limit of ${limits.maxBatchBytes} per call`);
			}
			return entries;
		},
	};
}

/**
 * The entries of a putBatch with one entry per key, the last one winning (as
 * when they are applied in order).
 */
function lastPerKey(entries) {
	const byKey = new Map();
	for (const [key, value] of entries) byKey.set(Buffer.from(key.buffer, key.byteOffset, key.byteLength).toString("latin1"), [key, value]);
	return byKey.size === entries.length ? entries : [...byKey.values()];
}

/**
 * A KV's ownership of its actor (see lib/kv/postgres.js and lmdb.js):
 * `own()` takes the actor over once, by `take()`, which raises the actor's
 * epoch and resolves to the new one (a failed take is tried again by the
 * next call); `epoch` is this KV's, null until taken.
 */
function createOwnership(take) {
	let epoch = null;
	let taking = null;
	return {
		get epoch() {
			return epoch;
		},
		own() {
			taking ??= take().then(
				(taken) => {
					epoch = taken;
				},
				(error) => {
					taking = null;
					throw error;
				},
			);
			return taking;
		},
	};
}

/** The error of a write by a KV whose actor another KV, created since, took over. */
function fencedError(actor) {
	const error = new Error(
		`actor ${JSON.stringify(actor)} was taken over by another KV (created since this one, in this process or another): this one's writes are refused`,
	);
	error.code = "ERR_SQLITE_KV_FENCED";
	return error;
}

module.exports = { createChecks, lastPerKey, createOwnership, fencedError };
