// A real KV store (LMDB, PostgreSQL) checked against the in-memory model as
// the suites run over it: every call goes to the real store, every mutation
// that it accepted is applied to the model too, and every read's answer from
// the real store must equal the model's (else the call fails, and so does the
// test). The model answers the suites' synchronous inspections (`entries()`,
// `size`); `clone()` copies the model's contents into a new actor on the real
// store, which the clone's first call waits for.

import { createRequire } from "node:module";

import { createMemoryKv } from "../../index.mjs";

// How the persistence layer splits writes into putBatch calls within limits.
const { planBatches } = createRequire(import.meta.url)("../../lib/persist.js");

const hex = (bytes) => (bytes == null ? String(bytes) : Buffer.from(bytes).toString("hex"));

/**
 * @param {(options) => object} realKv makes a fresh actor's KV on the real store
 * @param {{ limits?: object }} options
 * @param {Array<[Uint8Array, Uint8Array]>} [seed] initial contents
 */
export function createMirroredKv(realKv, options = {}, seed = []) {
	const model = createMemoryKv(options);
	const real = realKv(options);
	for (const [key, value] of seed) model._load(Buffer.from(key).toString("latin1"), value);
	const ready = copyInto(real, seed);
	ready.catch(() => {}); // reported by the first call, which awaits it

	const compare = (method, keys, got, want) => {
		for (let i = 0; i < keys.length; i++) {
			if (hex(got[i] ?? null) !== hex(want[i])) {
				throw new Error(`the real store's ${method} disagrees with the model for key ${hex(keys[i])}: ${hex(got[i])} vs ${hex(want[i])}`);
			}
		}
	};

	return {
		async get(key) {
			await ready;
			const got = await real.get(key);
			compare("get", [key], [got], [await model.get(key)]);
			return got;
		},
		async getBatch(keys) {
			await ready;
			const got = await real.getBatch(keys);
			if (!Array.isArray(got) || got.length !== keys.length)
				throw new Error(`real getBatch returned ${got?.length} values for ${keys.length} keys`);
			compare("getBatch", keys, got, await model.getBatch(keys));
			return got;
		},
		async put(key, value) {
			await ready;
			await real.put(key, value);
			await model.put(key, value);
		},
		async putBatch(entries) {
			await ready;
			await real.putBatch(entries);
			await model.putBatch(entries);
		},
		async deleteBatch(keys) {
			await ready;
			await real.deleteBatch(keys);
			await model.deleteBatch(keys);
		},
		get size() {
			return model.size;
		},
		entries() {
			return model.entries();
		},
		clone() {
			return createMirroredKv(realKv, options, model.entries());
		},
		/** The real store's own contents, which must equal the model's. */
		async check() {
			await ready;
			const got = (await real.entries()).map(([k, v]) => `${hex(k)}=${hex(v)}`).sort();
			const want = model
				.entries()
				.map(([k, v]) => `${hex(k)}=${hex(v)}`)
				.sort();
			if (got.join() !== want.join()) throw new Error("the real store's contents differ from the model's");
		},
	};
}

/** Writes `entries` into `kv` in putBatch calls within its limits. */
async function copyInto(kv, entries) {
	for (const batch of planBatches(entries, kv.limits)) await kv.putBatch(batch);
}
