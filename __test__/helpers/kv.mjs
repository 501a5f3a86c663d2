// A counting, fault-injecting KV for tests, over the package's embedded
// default KV (which enforces the actor KV limits), or over a real store when
// SQLITE_VFS_TEST_KV is "lmdb" or "postgres" (see ./mirrored.mjs).

import { createMemoryKv } from "../../index.mjs";
import { storeFactory } from "./stores.mjs";
import { createMirroredKv } from "./mirrored.mjs";

/** The store under the test KVs: "memory" (default), "lmdb" or "postgres". */
export const STORE = process.env.SQLITE_VFS_TEST_KV || "memory";
const realKv = STORE === "memory" ? null : await storeFactory(STORE);

/** A fresh, empty store with `limits`: in memory, or a new actor on the real store. */
function createStore(options = {}) {
	return realKv ? createMirroredKv(realKv, options) : createMemoryKv(options);
}

export const METHODS = ["get", "getBatch", "put", "putBatch", "deleteBatch"];
export const MUTATIONS = new Set(["put", "putBatch", "deleteBatch"]);

export const hex = (bytes) => Buffer.from(bytes).toString("hex");

/**
 * Options: `limits` (KV limits), `latencyMs`.
 * Returns a KV with:
 * - `calls`: every call as `{ method, keys: [hex...], bytes }` (bytes of keys+values written);
 * - `failWhen(predicate, { sync, error, applied })`: make calls matching `predicate(call, n)` fail
 *   (reject, or throw synchronously with `sync`); `n` is the 1-based call number; with
 *   `applied`, the call takes effect and then rejects (a networked KV timing out);
 * - `onMutation`: a hook receiving a deep copy of each successful mutation;
 * - `errors`: what `onError` received;
 * - `inner`: the underlying store (`entries()`, `clone()`, `size`).
 */
export function createTestKv(options = {}) {
	const inner = options.inner ?? createStore({ limits: options.limits });
	const kv = {
		inner,
		calls: [],
		errors: [],
		fault: null,
		onMutation: null,
		onError(error) {
			kv.errors.push(error);
		},
		failWhen(predicate, { sync = false, error = undefined, applied = false } = {}) {
			kv.fault = { predicate, sync, error, applied };
		},
		clearFaults() {
			kv.fault = null;
		},
		resetCounts() {
			kv.calls = [];
		},
		count(method) {
			return kv.calls.filter((c) => method === undefined || c.method === method).length;
		},
		mutations() {
			return kv.calls.filter((c) => MUTATIONS.has(c.method));
		},
		clone() {
			return createTestKv({ inner: inner.clone() });
		},
		entries() {
			return inner.entries();
		},
	};
	for (const method of METHODS) {
		kv[method] = (arg, value) => {
			const call = describeCall(method, arg, value);
			kv.calls.push(call);
			const n = kv.calls.length;
			const run = async () => {
				if (options.latencyMs) await new Promise((r) => setTimeout(r, options.latencyMs));
				const result = await inner[method](arg, value);
				if (MUTATIONS.has(method) && kv.onMutation) kv.onMutation(copyMutation(method, arg, value));
				return result;
			};
			if (kv.fault?.predicate(call, n)) {
				const error = kv.fault.error ?? new Error(`injected ${method} failure (call ${n})`);
				call.failed = true;
				if (kv.fault.applied) {
					return run().then(() => {
						throw error;
					});
				}
				if (kv.fault.sync) throw error;
				return Promise.reject(error);
			}
			return run();
		};
	}
	return kv;
}

function describeCall(method, arg, value) {
	switch (method) {
		case "get":
			return { method, keys: [hex(arg)], bytes: 0 };
		case "put":
			return { method, keys: [hex(arg)], bytes: arg.length + value.length };
		case "getBatch":
		case "deleteBatch":
			return { method, keys: arg.map(hex), bytes: 0 };
		case "putBatch":
			return {
				method,
				keys: arg.map(([k]) => hex(k)),
				bytes: arg.reduce((n, [k, v]) => n + k.length + v.length, 0),
			};
	}
}

function copyMutation(method, arg, value) {
	switch (method) {
		case "put":
			return { method: "putBatch", entries: [[arg.slice(), value.slice()]] };
		case "putBatch":
			return { method, entries: arg.map(([k, v]) => [k.slice(), v.slice()]) };
		case "deleteBatch":
			return { method, keys: arg.map((k) => k.slice()) };
	}
}

/**
 * Applies recorded mutations, in order, to a copy of `base` (a memory KV) or
 * to an empty one: the KV's state after exactly those calls (crash simulation).
 */
export function kvFromMutations(mutations, base = undefined) {
	const kv = base ? base.clone() : createStore();
	const apply = async () => {
		for (const m of mutations) {
			if (m.method === "putBatch") await kv.putBatch(m.entries);
			else await kv.deleteBatch(m.keys);
		}
		return kv;
	};
	return apply();
}

/** A plain `{ hexKey: hexValue }` view of a KV, for equality checks. */
export function kvDump(kv) {
	const out = {};
	for (const [k, v] of (kv.inner ?? kv).entries()) out[hex(k)] = hex(v);
	return out;
}
