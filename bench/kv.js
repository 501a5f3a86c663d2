"use strict";

// The in-memory KV store every KV-backed backend of the benchmark runs on:
// the actor KV interface (get, getBatch, put, putBatch, deleteBatch; async,
// Uint8Array keys and values), an optional per-call latency, counters of
// calls, keys and bytes, and a count of calls that break the actor KV limits
// (such calls are still carried out: the benchmark observes, it does not
// enforce). Values are copied in and out, as a real store's would be: each
// call's values into one buffer (a networked store sends a call as one
// message and answers with one; a buffer per value would cost V8 about 3 µs
// per 4 KiB value, a cost of this store, not of the library it measures).
// With a `backing` store (LMDB, PostgreSQL: see stores.js), the calls are
// counted and checked the same way and carried out by that store instead.

const fs = require("node:fs");

const { planBatches } = require("../lib/persist");
const { keyString, keyBytes } = require("../lib/memory-kv");

/** The actor KV limits the counters check against. */
const LIMITS = Object.freeze({
	maxKeysPerCall: 128,
	maxValueSize: 128 * 1024,
	maxBatchBytes: 976 * 1024,
	maxKeySize: 2048,
});

const METHODS = ["get", "getBatch", "put", "putBatch", "deleteBatch"];

/** Copies of `values` (null stays null), all views of one new buffer. */
function copyValues(values) {
	let total = 0;
	for (let i = 0; i < values.length; i++) if (values[i] != null) total += values[i].length;
	const buffer = new Uint8Array(total);
	const out = new Array(values.length);
	let at = 0;
	for (let i = 0; i < values.length; i++) {
		const value = values[i];
		if (value == null) {
			out[i] = null;
			continue;
		}
		const copy = buffer.subarray(at, at + value.length);
		copy.set(value);
		at += value.length;
		out[i] = copy;
	}
	return out;
}

function emptyCounters() {
	const calls = {};
	for (const method of METHODS) calls[method] = 0;
	return {
		calls,
		totalCalls: 0,
		keysRead: 0,
		keysWritten: 0,
		keysDeleted: 0,
		// Values returned by get/getBatch (missing keys count 0 bytes).
		bytesRead: 0,
		// Keys plus values sent by put/putBatch.
		bytesWritten: 0,
		violations: 0,
		violationKinds: {},
	};
}

/** The difference `after - before` of two counter snapshots. */
function diffCounters(after, before) {
	const out = emptyCounters();
	for (const method of METHODS) out.calls[method] = after.calls[method] - before.calls[method];
	for (const name of ["totalCalls", "keysRead", "keysWritten", "keysDeleted", "bytesRead", "bytesWritten", "violations"]) {
		out[name] = after[name] - before[name];
	}
	for (const [kind, n] of Object.entries(after.violationKinds)) {
		const d = n - (before.violationKinds[kind] ?? 0);
		if (d > 0) out.violationKinds[kind] = d;
	}
	return out;
}

class BenchKv {
	#store;
	#latencyMs;
	#backing;
	#counters = emptyCounters();

	/**
	 * @param {{ latencyMs?: number, store?: Map<string, Uint8Array> }} [options]
	 *   latencyMs: delay added to every call (0: none, the call still settles
	 *   asynchronously); store: initial contents (taken over, not copied);
	 *   backing: a real KV store that carries out the calls instead.
	 */
	constructor(options = {}) {
		this.#latencyMs = options.latencyMs ?? 0;
		this.#store = options.store ?? new Map();
		this.#backing = options.backing ?? null;
	}

	get latencyMs() {
		return this.#latencyMs;
	}

	/** Number of keys held. */
	get size() {
		return this.#store.size;
	}

	/** A copy of the counters so far. */
	counters() {
		const c = this.#counters;
		return { ...c, calls: { ...c.calls }, violationKinds: { ...c.violationKinds } };
	}

	resetCounters() {
		this.#counters = emptyCounters();
	}

	#violation(kind) {
		this.#counters.violations++;
		this.#counters.violationKinds[kind] = (this.#counters.violationKinds[kind] ?? 0) + 1;
	}

	#checkKeys(method, keys) {
		this.#checkCount(method, keys.length);
		for (let i = 0; i < keys.length; i++) this.#checkKey(method, keys[i]);
	}

	#checkCount(method, count) {
		if (count > LIMITS.maxKeysPerCall) this.#violation(`${method}: more than ${LIMITS.maxKeysPerCall} keys`);
	}

	#checkKey(method, key) {
		if (key.length > LIMITS.maxKeySize) this.#violation(`${method}: key over ${LIMITS.maxKeySize} bytes`);
	}

	#checkValue(method, value) {
		if (value.length > LIMITS.maxValueSize) this.#violation(`${method}: value over ${LIMITS.maxValueSize} bytes`);
	}

	/**
	 * Counts a call and carries it out (`apply`): at once when there is no
	 * latency and no backing store (one settled promise, the least a call
	 * can cost), else after the latency.
	 */
	#call(method, apply) {
		this.#counters.calls[method]++;
		this.#counters.totalCalls++;
		if (this.#latencyMs === 0 && this.#backing === null) {
			try {
				return Promise.resolve(apply());
			} catch (error) {
				return Promise.reject(error);
			}
		}
		return this.#later(apply);
	}

	async #later(apply) {
		if (this.#latencyMs > 0) await new Promise((resolve) => setTimeout(resolve, this.#latencyMs));
		return apply();
	}

	#counted(value) {
		this.#counters.keysRead++;
		if (value === undefined || value === null) return null;
		this.#counters.bytesRead += value.length;
		return value;
	}

	#read(keys) {
		if (this.#backing) return this.#backing.getBatch(keys).then((values) => values.map((value) => this.#counted(value)));
		return copyValues(keys.map((key) => this.#counted(this.#store.get(keyString(key)))));
	}

	#write(entries) {
		const counters = this.#counters;
		const values = new Array(entries.length);
		for (let i = 0; i < entries.length; i++) {
			const entry = entries[i];
			counters.keysWritten++;
			counters.bytesWritten += entry[0].length + entry[1].length;
			values[i] = entry[1];
		}
		if (this.#backing) return this.#backing.putBatch(entries);
		const copies = copyValues(values);
		for (let i = 0; i < entries.length; i++) this.#store.set(keyString(entries[i][0]), copies[i]);
		return undefined;
	}

	get(key) {
		this.#checkKeys("get", [key]);
		return this.#call("get", () => this.#read([key])).then((values) => values[0]);
	}

	getBatch(keys) {
		this.#checkKeys("getBatch", keys);
		return this.#call("getBatch", () => this.#read(keys));
	}

	put(key, value) {
		this.#checkKeys("put", [key]);
		this.#checkValue("put", value);
		return this.#call("put", () => this.#write([[key, value]]));
	}

	putBatch(entries) {
		this.#checkCount("putBatch", entries.length);
		let bytes = 0;
		for (let i = 0; i < entries.length; i++) {
			const entry = entries[i];
			this.#checkKey("putBatch", entry[0]);
			this.#checkValue("putBatch", entry[1]);
			bytes += entry[0].length + entry[1].length;
		}
		if (bytes > LIMITS.maxBatchBytes) this.#violation(`putBatch: over ${LIMITS.maxBatchBytes} bytes`);
		return this.#call("putBatch", () => this.#write(entries));
	}

	deleteBatch(keys) {
		this.#checkKeys("deleteBatch", keys);
		return this.#call("deleteBatch", () => {
			this.#counters.keysDeleted += keys.length;
			if (this.#backing) return this.#backing.deleteBatch(keys);
			for (const key of keys) this.#store.delete(keyString(key));
			return undefined;
		});
	}

	/** Every [key, value] pair, without copying or counting. */
	entries() {
		return [...this.#store].map(([key, value]) => [keyBytes(key), value]);
	}

	/** A KV with the (in-memory) contents copied into `backing` first, uncounted. */
	async copyTo(backing, options = {}) {
		for (const batch of planBatches(this.entries(), LIMITS)) await backing.putBatch(batch);
		return new BenchKv({ latencyMs: options.latencyMs ?? this.#latencyMs, backing });
	}

	/**
	 * Writes the contents to `file` (u16 key length, u32 value length, key,
	 * value; little endian), in blocks of a few MiB (a 1 GB image is not
	 * assembled in memory first), through a temporary file renamed at the end.
	 */
	saveImage(file) {
		const temporary = `${file}.${process.pid}.tmp`;
		const fd = fs.openSync(temporary, "w");
		let written = false;
		try {
			let parts = [];
			let pending = 0;
			const flush = () => {
				const block = Buffer.concat(parts, pending);
				for (let at = 0; at < block.length; ) at += fs.writeSync(fd, block, at);
				parts = [];
				pending = 0;
			};
			for (const [key, value] of this.#store) {
				const k = Buffer.from(key, "latin1");
				const head = Buffer.alloc(6);
				head.writeUInt16LE(k.length, 0);
				head.writeUInt32LE(value.length, 2);
				parts.push(head, k, value);
				pending += head.length + k.length + value.length;
				if (pending >= 8 * 2 ** 20) flush();
			}
			flush();
			written = true;
		} finally {
			fs.closeSync(fd);
			if (!written) fs.rmSync(temporary, { force: true });
		}
		fs.renameSync(temporary, file);
	}

	/**
	 * A KV holding the image `data` (the bytes of a file saveImage wrote).
	 * Its values are views into `data`, not copies: copying the 262,144
	 * values of a 1 GB image one by one takes seconds. The store never writes
	 * a value in place (a put stores a copy, a read returns one), so several
	 * KVs can share one `data` and stay independent.
	 */
	static fromImage(data, options = {}) {
		const store = new Map();
		let at = 0;
		while (at < data.length) {
			const keyLength = data.readUInt16LE(at);
			const valueLength = data.readUInt32LE(at + 2);
			at += 6;
			const key = data.toString("latin1", at, at + keyLength);
			at += keyLength;
			store.set(key, new Uint8Array(data.buffer, data.byteOffset + at, valueLength));
			at += valueLength;
		}
		return new BenchKv({ ...options, store });
	}
}

module.exports = { BenchKv, LIMITS, diffCounters, emptyCounters };
