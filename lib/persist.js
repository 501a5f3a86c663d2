"use strict";

// The persistence layer, shared by every engine: loads a database from the
// actor's KV into an engine, and writes the engine's deltas back.

const {
	CHUNK_SIZE,
	TAG_MAIN,
	TAG_JOURNAL,
	DEFAULT_LIMITS,
	metaKey,
	chunkKey,
	encodeMeta,
	decodeMeta,
	chunkCount,
	describe,
} = require("./format");
const { kvFailure, corrupt } = require("./errors");
const { buildJournal } = require("./journal");

// getBatch calls in flight at once while loading a database.
const LOAD_CONCURRENCY = 32;

function resolveLimits(overrides = {}) {
	const limits = { ...DEFAULT_LIMITS };
	for (const [name, value] of Object.entries(overrides)) {
		if (!(name in DEFAULT_LIMITS)) throw new TypeError(`Unknown KV limit "${name}"`);
		if (value === undefined) continue;
		if (!Number.isSafeInteger(value) || value <= 0) {
			throw new TypeError(`KV limit "${name}" must be a positive integer`);
		}
		limits[name] = value;
	}
	// One chunk plus the metadata must fit in a single call.
	if (limits.maxKeysPerCall < 2) throw new RangeError("maxKeysPerCall must be at least 2");
	if (limits.maxValueSize < CHUNK_SIZE) throw new RangeError(`maxValueSize must be at least ${CHUNK_SIZE}`);
	if (limits.maxKeySize < 8) throw new RangeError("maxKeySize must be at least 8");
	if (limits.maxBatchBytes < CHUNK_SIZE + 8 + 14) {
		throw new RangeError(`maxBatchBytes must be at least ${CHUNK_SIZE + 22}`);
	}
	return Object.freeze(limits);
}

/** Splits entries into putBatch calls that respect the KV's limits, in order. */
function planBatches(entries, limits) {
	const batches = [];
	let batch = [];
	let bytes = 0;
	for (const entry of entries) {
		const size = entry[0].length + entry[1].length;
		if (batch.length > 0 && (batch.length === limits.maxKeysPerCall || bytes + size > limits.maxBatchBytes)) {
			batches.push(batch);
			batch = [];
			bytes = 0;
		}
		batch.push(entry);
		bytes += size;
	}
	if (batch.length > 0) batches.push(batch);
	return batches;
}

/** Runs `task` over `items` with at most `limit` in flight; settles all before throwing. */
async function forEachConcurrent(items, limit, task) {
	let next = 0;
	let failure = null;
	const worker = async () => {
		while (failure === null && next < items.length) {
			const item = items[next++];
			try {
				await task(item);
			} catch (error) {
				if (failure === null) failure = { error };
			}
		}
	};
	await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
	if (failure) throw failure.error;
}

function range(start, end, step = 1) {
	const out = [];
	for (let i = start; i < end; i += step) out.push(i);
	return out;
}

class Persistence {
	#kv;
	#limits;
	/** The main file size the KV's metadata holds, or null if it has none. */
	#kvSize = null;

	constructor(kv, limits) {
		this.#kv = kv;
		this.#limits = limits;
	}

	/**
	 * Calls the KV. A KV that throws synchronously is treated like one that
	 * rejects; either way `onError` hears of it and the error keeps it as cause.
	 */
	async #call(method, arg, code) {
		try {
			return await this.#kv[method](arg);
		} catch (error) {
			try {
				this.#kv.onError?.(error);
			} catch {
				// A failing onError must not hide the KV's error.
			}
			throw kvFailure(method, error, code);
		}
	}

	async #getBatch(keys) {
		const values = await this.#call("getBatch", keys, "SQLITE_IOERR_READ");
		if (!Array.isArray(values) || values.length !== keys.length) {
			throw corrupt(`KV getBatch returned ${Array.isArray(values) ? `${values.length} values` : describe(values)} for ${keys.length} keys`);
		}
		return values;
	}

	/**
	 * Reads the database (and a rollback journal, if the KV holds one) into
	 * `engine`. Returns the sizes the metadata gives: `journalSize` is null
	 * when there is no journal.
	 */
	async load(engine) {
		const [mainMeta, journalMeta] = await this.#getBatch([metaKey(TAG_MAIN), metaKey(TAG_JOURNAL)]);
		const mainSize = mainMeta == null ? 0 : decodeMeta(mainMeta, TAG_MAIN);
		const journalSize = journalMeta == null ? null : decodeMeta(journalMeta, TAG_JOURNAL);
		this.#kvSize = mainMeta == null ? null : mainSize;
		await this.#loadFile(engine, TAG_MAIN, mainSize);
		if (journalSize !== null) await this.#loadFile(engine, TAG_JOURNAL, journalSize);
		return { mainSize, journalSize };
	}

	async #loadFile(engine, tag, size) {
		const step = this.#limits.maxKeysPerCall;
		const count = chunkCount(size);
		await forEachConcurrent(range(0, count, step), LOAD_CONCURRENCY, async (first) => {
			const indices = range(first, Math.min(first + step, count));
			const values = await this.#getBatch(indices.map((i) => chunkKey(tag, i)));
			for (let i = 0; i < values.length; i++) {
				const value = values[i];
				if (value === undefined) {
					values[i] = null;
				} else if (value !== null) {
					if (!(value instanceof Uint8Array)) {
						throw corrupt(`corrupt chunk ${indices[i]} in the KV: expected a Uint8Array, got ${describe(value)}`);
					}
					if (value.length > CHUNK_SIZE) {
						throw corrupt(`corrupt chunk ${indices[i]} in the KV: ${value.length} bytes, at most ${CHUNK_SIZE} expected`);
					}
				}
			}
			engine.loadChunks(tag, first, values);
		});
	}

	/**
	 * Makes `delta` durable: `{ size, maxSize, chunks: Map<index, bytes> }`
	 * (maxSize: the largest size the file had since the last write).
	 *
	 * A delta that fits one putBatch is written in exactly one, which the KV
	 * applies atomically. A larger one is made atomic with a rollback journal:
	 * `journalSource()` gives `{ size, pages }`, the durable size and the
	 * durable bytes of the chunks being replaced. The journal goes to the KV
	 * first (its metadata last), then the main chunks and metadata, then the
	 * journal's metadata is deleted: the commit point. A crash before it
	 * leaves a hot journal that the next open rolls back.
	 */
	async write(delta, journalSource) {
		await this.#finishRollback();
		const limit = chunkCount(delta.size);
		const entries = [];
		for (const [index, bytes] of [...delta.chunks].sort((a, b) => a[0] - b[0])) {
			if (index < limit) entries.push([chunkKey(TAG_MAIN, index), bytes]);
		}
		if (delta.size !== this.#kvSize) entries.push([metaKey(TAG_MAIN), encodeMeta(delta.size)]);
		const batches = planBatches(entries, this.#limits);
		const previous = this.#kvSize ?? 0;
		if (batches.length > 1) {
			const journal = journalSource();
			const journalBytes = buildJournal(journal.size, journal.pages);
			// From here until the journal is gone, the KV may hold part of the
			// commit (or a journal): if anything fails, the next write undoes it.
			this.#pendingRollback = { journal, journalLength: journalBytes.length };
			this.#kvSize = null;
			const journalLength = await this.#putFile(TAG_JOURNAL, journalBytes);
			for (const batch of batches) await this.#call("putBatch", batch, "SQLITE_IOERR_WRITE");
			await this.removeFile(TAG_JOURNAL, journalLength);
			this.#pendingRollback = null;
		} else {
			for (const batch of batches) await this.#call("putBatch", batch, "SQLITE_IOERR_WRITE");
		}
		this.#kvSize = delta.size;
		// Chunks past the new end are invisible (readers stop at the size in
		// the metadata, and a file that grows again rewrites them): removing
		// them only frees space, so a failure here is reported, not thrown.
		const stale = range(limit, chunkCount(Math.max(delta.maxSize, previous)));
		await this.#deleteQuietly(stale.map((i) => chunkKey(TAG_MAIN, i)));
	}

	/** A journaled commit that failed midway; undone before the next write. */
	#pendingRollback = null;

	/**
	 * Puts the KV back to the state before a journaled commit that failed
	 * midway (the live database already is): the journal's pages and size go
	 * back into the main file, then the journal is removed. Until then the
	 * hot journal keeps any reader (and a crash) at that same state.
	 */
	async #finishRollback() {
		const pending = this.#pendingRollback;
		if (pending === null) return;
		const { journal, journalLength } = pending;
		const entries = journal.pages.map(([index, bytes]) => [chunkKey(TAG_MAIN, index), bytes]);
		entries.push([metaKey(TAG_MAIN), encodeMeta(journal.size)]);
		for (const batch of planBatches(entries, this.#limits)) {
			await this.#call("putBatch", batch, "SQLITE_IOERR_WRITE");
		}
		await this.removeFile(TAG_JOURNAL, journalLength);
		this.#pendingRollback = null;
		this.#kvSize = journal.size;
	}

	/** Writes a whole file under `tag`: chunks first, its metadata in the last call. */
	async #putFile(tag, bytes) {
		const entries = [];
		for (let i = 0; i * CHUNK_SIZE < bytes.length; i++) {
			entries.push([chunkKey(tag, i), bytes.subarray(i * CHUNK_SIZE, (i + 1) * CHUNK_SIZE)]);
		}
		entries.push([metaKey(tag), encodeMeta(bytes.length)]);
		for (const batch of planBatches(entries, this.#limits)) {
			await this.#call("putBatch", batch, "SQLITE_IOERR_WRITE");
		}
		return bytes.length;
	}

	/**
	 * Removes a file's metadata and chunks (a journal, once its commit is done
	 * or rolled back). The first call removes the metadata: after it the file
	 * no longer exists, so only that call's failure is thrown.
	 */
	async removeFile(tag, size) {
		const keys = [metaKey(tag), ...range(0, chunkCount(size)).map((i) => chunkKey(tag, i))];
		const max = this.#limits.maxKeysPerCall;
		await this.#call("deleteBatch", keys.slice(0, max), "SQLITE_IOERR_DELETE");
		await this.#deleteQuietly(keys.slice(max));
	}

	async #deleteQuietly(keys) {
		try {
			for (const first of range(0, keys.length, this.#limits.maxKeysPerCall)) {
				await this.#call("deleteBatch", keys.slice(first, first + this.#limits.maxKeysPerCall), "SQLITE_IOERR_DELETE");
			}
		} catch {
			// Already reported through onError; the data is durable.
		}
	}
}

module.exports = { Persistence, resolveLimits, planBatches };
