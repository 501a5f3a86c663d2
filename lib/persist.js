"use strict";

// The persistence layer, shared by every engine: loads a database from the
// actor's KV into an engine, and writes the engine's deltas back.

const {
	CHUNK_SIZE,
	TAG_MAIN,
	TAG_JOURNAL,
	TAG_WAL,
	DEFAULT_LIMITS,
	metaKey,
	chunkKey,
	encodeMeta,
	decodeMeta,
	chunkCount,
	isDatabaseHeader,
	hasChunkPages,
	headerSize,
	describe,
} = require("./format");
const { SqliteError, kvFailure, corrupt } = require("./errors");
const { buildJournal, newJournal, writeRecords, readHeader } = require("./journal");
const { readWal } = require("./wal");
const { isBytes, byteLength, plainBytes } = require("./params");
const { NOTHING_PENDING, TOO_SMALL } = require("./engines");

// What commit() returns when there is nothing to write.
const DONE = Promise.resolve();

// getBatch calls in flight at once while loading a database.
const LOAD_CONCURRENCY = 32;

// putBatch calls in flight at once for the calls of a large commit whose
// order does not matter (see Persistence#putBatches). At 1 ms of KV latency
// a 64 MiB commit (132 calls) took 164 ms, against 300 ms one at a time.
const WRITE_CONCURRENCY = 8;

// A journal whose page images take at most this many bytes is read on the
// JS thread (journal(maxBytes)), a larger one on an engine thread
// (packedJournal). Copying 256 KiB costs less than the round trip: 87 µs
// with the process idle, 0.5-0.6 ms amid the writes of a 1 MiB commit's
// loop (W2c, whose journal holds a few pages).
const JOURNAL_INLINE_BYTES = 256 * 1024;

// Chunks read with the metadata by the first getBatch of an open: a database
// of up to 64 KiB opens with that one call.
const FIRST_CHUNKS = 16;

// Databases up to this size are read whole at open (unless `preload: false`);
// larger ones are paged lazily (see Persistence#open). Measured at 1 ms of KV
// latency (bench/eager-threshold.mjs):
// reading 4 MiB whole takes about 10 ms (its getBatch calls go at once), as
// much as a lazy open plus its first 10 cold point queries; and then every
// call runs inline with no page to wait for. 8 MiB took 27 ms: past 4 MiB the
// eager load grows with the size, while a lazy session pays for what it reads.
const EAGER_SIZE = 4 * 1024 * 1024;

// A page request of at least this many chunks comes from a scan: as it is
// read, as many chunks after it are read too (see #readPages), in at most
// READ_AHEAD_WINDOWS windows kept at once.
const READ_AHEAD_MIN = 512;
const READ_AHEAD_WINDOWS = 3;

/**
 * Chunks as one buffer, end to end, and their lengths (-1: none). Chunks
 * that already lie end to end, whole, in one buffer of #readChunks (a scan's
 * window, most often) are passed on as that buffer, not copied again.
 */
function pack(chunks) {
	const lengths = new Int32Array(chunks.length);
	const whole = inPlace(chunks);
	if (whole !== null) {
		lengths.fill(CHUNK_SIZE);
		return [whole, lengths];
	}
	let total = 0;
	for (const chunk of chunks) if (chunk !== null) total += chunk.length;
	const bytes = new Uint8Array(total);
	let at = 0;
	chunks.forEach((chunk, i) => {
		if (chunk === null) {
			lengths[i] = -1;
			return;
		}
		bytes.set(chunk, at);
		at += chunk.length;
		lengths[i] = chunk.length;
	});
	return [bytes, lengths];
}

/** The bytes of `chunks` if each is whole and they lie end to end in one buffer, else null. */
function inPlace(chunks) {
	const first = chunks[0];
	if (first == null) return null;
	const { buffer, byteOffset } = first;
	for (let i = 0; i < chunks.length; i++) {
		const chunk = chunks[i];
		if (chunk === null || chunk.length !== CHUNK_SIZE || chunk.buffer !== buffer || chunk.byteOffset !== byteOffset + i * CHUNK_SIZE) {
			return null;
		}
	}
	return new Uint8Array(buffer, byteOffset, chunks.length * CHUNK_SIZE);
}

function resolveLimits(overrides = {}) {
	if (overrides === null || typeof overrides !== "object") throw new TypeError("limits must be an object");
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
	for (let i = 0; i < entries.length; i++) {
		const entry = entries[i];
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

/**
 * Runs `task` over `items`, one started per turn of the JS thread's other
 * work (see nextTurn) and at most `limit` in flight; starts none after a
 * failure, and settles all before throwing. A task that is done at once
 * (a KV in memory) leaves the next its turn: one runs per turn, as one
 * after another would. A task that waits (a KV's latency) leaves the next
 * to start meanwhile.
 */
async function forEachInTurns(items, limit, task) {
	const inFlight = new Set();
	let failure = null;
	for (let i = 0; i < items.length && failure === null; i++) {
		if (i > 0) await nextTurn();
		while (inFlight.size >= limit) await Promise.race(inFlight);
		if (failure !== null) break;
		const done = Promise.resolve()
			.then(() => task(items[i]))
			.then(undefined, (error) => {
				failure ??= { error };
			})
			.then(() => inFlight.delete(done));
		inFlight.add(done);
	}
	await Promise.all(inFlight);
	if (failure !== null) throw failure.error;
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

/** Chunk `index` as read from the KV, checked; a missing one is null. */
function checkChunk(value, index) {
	if (value === undefined || value === null) return null;
	if (!isBytes(value)) {
		throw corrupt(`corrupt chunk ${index} in the KV: expected a Uint8Array, got ${describe(value)}`);
	}
	// Its bytes' own length, whatever its `length` getter says.
	const length = byteLength(value);
	if (length > CHUNK_SIZE) {
		throw corrupt(`corrupt chunk ${index} in the KV: ${length} bytes, at most ${CHUNK_SIZE} expected`);
	}
	// A view of a buffer the store transferred away reads as empty, and
	// copying it throws a TypeError.
	if (length === 0 && isDetached(value)) {
		throw corrupt(`corrupt chunk ${index} in the KV: its buffer was detached (transferred) before it was read`);
	}
	return plainBytes(value);
}

/** Whether `bytes`, of length 0, views a detached buffer (ArrayBuffer#detached is Node 22's). */
function isDetached(bytes) {
	try {
		new Uint8Array(0).set(bytes);
		return false;
	} catch {
		return true;
	}
}

/** Chunks `first..` as read from the KV, checked; a missing one is null. */
function checkChunks(values, first) {
	return values.map((value, i) => checkChunk(value, first + i));
}

// Engines copy a delta's chunks into a slab, and the KV gets views of it: a
// new ArrayBuffer per chunk costs V8 1-3 µs (its allocation and collection),
// more than the rest of a small commit's JS work. Each database has a slab of
// its own (allocated at its first write): a store that keeps or clones a
// value's whole `buffer` (structured clone does) gets this database's bytes
// only, never another's. A slab's bytes are never written again once handed
// out. The delta's sizes, indices and lengths come in `meta`, shared by every
// database (read before takeDelta returns): an array made across N-API costs
// a call per element. It never leaves this file (an engine may keep it: see
// lib/engines.js).
const SLAB_SIZE = 64 * 1024;
// Entries of the shared `meta`: a delta of up to 64 chunks.
const META_SIZE = 2 + 2 * 64;
// Chunks of a large delta handled between two turns of the JS thread's
// other work (see unpack and #mainEntriesInSteps).
const STEP_CHUNKS = 1024;
const meta = new Float64Array(META_SIZE);

/** A database's slab: `bytes` (null until its first write), of which `used` are handed out. */
class Slab {
	bytes = null;
	used = 0;

	/** Room for `size` more bytes: a new slab if this one has less. */
	reserve(size) {
		if (this.bytes === null || this.bytes.length - this.used < size) {
			this.bytes = newSlab(SLAB_SIZE);
			this.used = 0;
		}
	}
}

/**
 * A slab of `size` bytes, zeroed: memory not zeroed may hold what another
 * database freed, and a store may read a value's whole buffer.
 */
function newSlab(size) {
	return new Uint8Array(size);
}

/**
 * Takes the engine's pending delta (see lib/engines.js) as `{ size, maxSize,
 * chunks: [[index, bytes], …] }`, or null when it has none; the bytes of a
 * small one go to `slab`, the database's. A large delta the engine packed
 * off this thread comes with `chunks` null and its bytes and layout in
 * `packed`: see unpack.
 */
function takeDelta(engine, slab) {
	slab.reserve(CHUNK_SIZE);
	let into = meta;
	let target = slab.bytes;
	let count = engine.takeDelta(target, slab.used, into);
	if (count === NOTHING_PENDING) return null;
	if (count === TOO_SMALL) {
		const [bytes, entries] = into;
		if (entries > into.length) into = new Float64Array(entries);
		if (bytes > SLAB_SIZE) {
			// A delta larger than a slab gets one of its own, not kept: the
			// engine's, if it packed the delta off this thread.
			const packed = engine.takePackedDelta?.(into) ?? null;
			if (packed !== null) {
				const layout = into === meta ? into.slice(0, entries) : into;
				return { size: layout[0], maxSize: layout[1], chunks: null, packed: { bytes: packed, layout } };
			}
			target = newSlab(bytes);
		} else {
			slab.reserve(bytes);
			target = slab.bytes;
		}
		count = engine.takeDelta(target, target === slab.bytes ? slab.used : 0, into);
	}
	const chunks = new Array(count);
	const end = viewChunks(target, target === slab.bytes ? slab.used : 0, into, 0, count, chunks);
	if (target === slab.bytes) slab.used = end;
	return { size: into[0], maxSize: into[1], chunks, packed: null };
}

/**
 * Views of chunks `first..end` of a delta whose bytes lie end to end in
 * `bytes` from byte `at` (chunk `first`'s), as `meta` describes them (see
 * takeDelta), into `chunks`. Returns where chunk `end`'s bytes start.
 */
function viewChunks(bytes, at, meta, first, end, chunks) {
	for (let i = first; i < end; i++) {
		const next = at + meta[3 + 2 * i];
		chunks[i] = [meta[2 + 2 * i], bytes.subarray(at, next)];
		at = next;
	}
	return at;
}

/**
 * Gives a delta the engine packed its `chunks`, STEP_CHUNKS at a time, other
 * work of the JS thread getting a turn between steps: views of 80 MB of
 * chunks (20,480) cost about 15 ms, and its KV entries as much again.
 */
async function unpack(delta) {
	const { bytes, layout } = delta.packed;
	const chunks = new Array((layout.length - 2) / 2);
	let at = 0;
	await inSteps(chunks.length, (first, end) => {
		at = viewChunks(bytes, at, layout, first, end, chunks);
	});
	delta.chunks = chunks;
	delta.packed = null;
}

/**
 * Runs `step(first, end)` over `0..count`, STEP_CHUNKS at a time, other work
 * of the JS thread getting a turn between two steps.
 */
async function inSteps(count, step) {
	for (let first = 0; first < count; first += STEP_CHUNKS) {
		if (first > 0) await nextTurn();
		step(first, Math.min(count, first + STEP_CHUNKS));
	}
}

/**
 * The rollback journal of what a large commit replaces (see buildJournal),
 * built in steps (see inSteps): `images` as the engine's journal() gives
 * them.
 */
async function buildJournalInSteps(images) {
	const journal = newJournal(images.size, images.pages.length);
	await inSteps(images.pages.length, (first, end) => writeRecords(journal, images.pages, first, end));
	return journal.bytes;
}

/** Adds the KV entries of `delta`'s chunks `first..end` within its size to `entries`. */
function addChunkEntries(delta, first, end, entries) {
	const limit = chunkCount(delta.size);
	const chunks = delta.chunks;
	for (let i = first; i < end; i++) {
		const index = chunks[i][0];
		if (index < limit) entries.push([chunkKey(TAG_MAIN, index), chunks[i][1]]);
	}
}

/** Adds the main file's metadata entry to `entries` if `delta`'s size is not `kvSize`, the KV's. */
function addMetaEntry(delta, kvSize, entries) {
	if (delta.size !== kvSize) entries.push([metaKey(TAG_MAIN), encodeMeta(delta.size)]);
}

/**
 * The main file's entries for `delta` (its chunks', then its metadata's) as
 * the one putBatch that writes them all, or null if there are none or they
 * take more than one call within `limits` (as planBatches would split
 * them). Every autocommit write goes through here: no planning.
 */
function singleBatch(delta, kvSize, limits) {
	// More chunks than one call takes: not worth building.
	if (delta.chunks.length > limits.maxKeysPerCall) return null;
	const batch = [];
	addChunkEntries(delta, 0, delta.chunks.length, batch);
	addMetaEntry(delta, kvSize, batch);
	if (batch.length === 0 || batch.length > limits.maxKeysPerCall) return null;
	// One entry goes alone whatever its size (see planBatches).
	if (batch.length === 1) return batch;
	let bytes = 0;
	for (let i = 0; i < batch.length; i++) bytes += batch[i][0].length + batch[i][1].length;
	return bytes > limits.maxBatchBytes ? null : batch;
}

/**
 * Throws SQLITE_CORRUPT if the header of a hot journal `size` bytes long (in
 * `first`, its chunk 0, or null) gives an original database size that the
 * main file (`mainSize` bytes in the KV) and the journal's page records
 * together cannot hold. A header SQLite would not read as one is left to
 * SQLite, which then rolls nothing back.
 */
function checkJournalHeader(first, size, mainSize) {
	const header = readHeader(first);
	if (header === null) return;
	const { pages, pageSize } = header;
	const records = Math.ceil(size / (pageSize + 8));
	const most = Math.ceil(mainSize / pageSize) + records;
	if (pages > most) {
		throw corrupt(
			`corrupt rollback journal in the KV: its header gives the database ${pages} pages before the transaction, but the main file and the journal's ${records} page records hold at most ${most}`,
		);
	}
}

/** Resolves once the event loop has had a turn (timers and I/O included). */
function nextTurn() {
	return new Promise((resolve) => setImmediate(resolve));
}

function range(start, end, step = 1) {
	const out = [];
	for (let i = start; i < end; i += step) out.push(i);
	return out;
}

/**
 * The one owner of the commit sequence: loads a database from the KV into an
 * engine, and after the calls that changed it, takes the engine's pending
 * delta, writes it to the KV, then acknowledges it to the engine, or, if the
 * KV failed, puts the engine back to the durable state.
 *
 * Engines know files, pages and bytes (see lib/engines.js); the keys and the
 * order of the KV calls are decided here and in format.js and journal.js.
 *
 * Every KV write that fails is taken as "maybe applied" (a networked KV that
 * times out cannot say): the next write first puts the KV back to the durable
 * state (see #repair), then writes its own pages.
 */
class Persistence {
	#kv;
	#limits;
	#engine;
	/** true: read the whole database at open; false: page lazily; undefined: by size. */
	#preload;
	/** Whether the database was opened paged lazily (it may then write pages it never read). */
	#lazy = false;
	/** The main file size the KV's metadata holds, or null if it has none (or may be wrong). */
	#kvSize = null;
	/**
	 * Set when a write failed after it sent something: `{ size, pages,
	 * journal }`, the durable size and the durable bytes of every page the
	 * failed write may have changed, and the journal it wrote (null if none).
	 * Until the repair is done, the KV may hold any part of the failed write;
	 * the journal, if any, keeps readers and crashes at the durable state,
	 * and pages read meanwhile come from `byIndex`, the durable pages by index.
	 */
	#repair = null;
	/**
	 * Windows of chunks read ahead of a scan: `{ first, end, chunks }`, chunks
	 * `first..end` (a promise of them, null if the read failed). Dropped at
	 * each write: they are the KV's bytes from before it.
	 */
	#ahead = [];
	/** Whether putting the engine back to the durable state failed (see #restore). */
	#unrestored = false;
	/**
	 * What cleanups failed to delete (see #deleteQuietly), or null: `{ mainTo,
	 * journalTo }`, main chunks from the file's end up to `mainTo` and journal
	 * chunks up to `journalTo`. Deleted again once the next commit is made
	 * (see #committed): no reader sees them, and then no journal is in the KV.
	 */
	#leftovers = null;
	/** Where the engine puts the bytes of small deltas (see takeDelta). */
	#slab = new Slab();

	constructor(kv, limits, engine, { preload } = {}) {
		this.#kv = kv;
		this.#limits = limits;
		this.#engine = engine;
		this.#preload = preload;
	}

	/**
	 * Calls the KV. A KV that throws synchronously is treated like one that
	 * rejects; either way `onError` hears of it and the error keeps it as cause.
	 */
	#call(method, arg, code) {
		let result;
		try {
			result = this.#kv[method](arg);
		} catch (error) {
			result = Promise.reject(error);
		}
		return Promise.resolve(result).then(undefined, (error) => {
			throw this.#failure(method, error, code);
		});
	}

	/** The error a failed KV call is reported as, once `onError` has heard of it. */
	#failure(method, error, code) {
		try {
			const heard = this.#kv.onError?.(error);
			// An async onError's rejection is its own, not an unhandled one.
			if (heard !== null && typeof heard === "object" && typeof heard.then === "function") heard.then(undefined, () => {});
		} catch {
			// A failing onError must not hide the KV's error.
		}
		return kvFailure(method, error, code);
	}

	async #getBatch(keys) {
		const values = await this.#call("getBatch", keys, "SQLITE_IOERR_READ");
		if (!Array.isArray(values) || values.length !== keys.length) {
			throw corrupt(`KV getBatch returned ${Array.isArray(values) ? `${values.length} values` : describe(values)} for ${keys.length} keys`);
		}
		return values;
	}

	/**
	 * The values of `keys` in one getBatch, or, for a KV whose limit takes
	 * fewer keys, in as many as it needs, one after another, each answer's
	 * bytes copied before the next call (a store may reuse them).
	 */
	async #getInCalls(keys) {
		const max = this.#limits.maxKeysPerCall;
		if (keys.length <= max) return this.#getBatch(keys);
		const values = [];
		for (let first = 0; first < keys.length; first += max) {
			for (const value of await this.#getBatch(keys.slice(first, first + max))) values.push(isBytes(value) ? new Uint8Array(value) : value);
		}
		return values;
	}

	#putBatch(entries) {
		return this.#call("putBatch", entries, "SQLITE_IOERR_WRITE");
	}

	/**
	 * Writes `batches`, one putBatch each, up to WRITE_CONCURRENCY in flight
	 * at once and in no set order: only for calls whose order does not
	 * matter, those between a journal's metadata and its removal (what they
	 * overwrite, the journal puts back) and a file's chunks before its
	 * metadata. Settles every call before it throws: none lands after what
	 * follows a failure. One call starts per turn of the JS thread's other
	 * work: a KV that answers at once (in memory) would otherwise hold the
	 * thread for the whole of a large commit (80 MB: 94 ms of copies),
	 * stalling every other database of the process.
	 */
	async #putBatches(batches) {
		await forEachInTurns(batches, WRITE_CONCURRENCY, (batch) => this.#putBatch(batch));
	}

	/**
	 * Opens the database the KV holds in the engine. A hot journal (a commit
	 * cut short by a crash) is rolled back by SQLite as the engine opens; that
	 * rollback is then made durable (see #recover).
	 *
	 * The first getBatch reads both files' metadata and the first chunks: a
	 * database of up to 64 KiB opens with that one call. A database of up to
	 * EAGER_SIZE is then read whole (a few getBatch calls at once: one round
	 * trip, and every later call runs inline with no page to wait for). A
	 * larger one is paged lazily by engines that can (see #readChunks): its
	 * other chunks are read when SQLite first needs them, so opening costs
	 * the same whatever the size, and the local file holds only what was read.
	 */
	async open(walDone = false) {
		const engine = this.#engine;
		const head = Math.max(1, Math.min(this.#limits.maxKeysPerCall - 3, FIRST_CHUNKS));
		const keys = [metaKey(TAG_MAIN), metaKey(TAG_JOURNAL), metaKey(TAG_WAL)];
		for (let i = 0; i < head; i++) keys.push(chunkKey(TAG_MAIN, i));
		const [mainMeta, journalMeta, walMeta, ...chunks] = await this.#getInCalls(keys);
		// Decoded before any other KV call, which may reuse the values' bytes.
		const mainSize = mainMeta == null ? 0 : decodeMeta(mainMeta, TAG_MAIN);
		const journalSize = journalMeta == null ? null : decodeMeta(journalMeta, TAG_JOURNAL);
		const walSize = walMeta == null ? null : decodeMeta(walMeta, TAG_WAL);
		if (walSize !== null) {
			// A log of 2.2.1's (see lib/wal.js): its transactions go into the
			// main file first, then the database opens as if it had none.
			if (walDone) throw corrupt("the WAL in the KV is still there after it was checkpointed");
			await this.#checkpointWal(walSize, mainSize);
			return this.open(true);
		}
		this.#kvSize = mainMeta == null ? null : mainSize;
		let loadSize = mainSize;
		let loaded = 0;
		let lazy = false;
		// SQLite's unix VFS reports a file of 1 byte as empty (an old OS X
		// workaround): the native engine would open it as a new database, and
		// its first write would replace what the KV holds. A size of 2 to 511
		// is refused by SQLite itself.
		if (mainSize === 1) throw new SqliteError("file is not a database", "SQLITE_NOTADB");
		if (mainSize > 0) {
			const first = checkChunk(chunks[0], 0);
			if (journalSize === null) {
				// What SQLite would find on reading page 1, found before reading
				// the rest: metadata claiming a huge file over a few pages
				// cannot make open read (or wait for) what is not there.
				if (!isDatabaseHeader(first)) throw new SqliteError("file is not a database", "SQLITE_NOTADB");
				loadSize = Math.min(mainSize, headerSize(first) ?? mainSize);
			}
			loaded = Math.min(chunks.length, chunkCount(loadSize));
			engine.loadChunks(TAG_MAIN, 0, checkChunks(chunks.slice(0, loaded), 0));
			lazy =
				engine.pagesLazily === true &&
				this.#preload !== true &&
				loaded < chunkCount(loadSize) &&
				(this.#preload === false || loadSize > EAGER_SIZE) &&
				hasChunkPages(first);
		}
		this.#lazy = lazy;
		if (!lazy) await this.#loadFile(TAG_MAIN, loadSize, loaded);
		const journal = journalSize === null ? null : await this.#loadJournal(journalSize, mainSize);
		if (engine.open(loadSize, journal, lazy ? loaded : null)) {
			const opened = await this.finish(engine.resume());
			if (opened instanceof Error) throw opened;
		}
		if (journal !== null) await this.#recover(journal);
	}

	/**
	 * Copies the transactions of a write-ahead log 2.2.1 left in the KV
	 * (`size` bytes, its metadata says) into the main file (`mainSize` bytes),
	 * as SQLite's checkpoint does, then removes the log. Its pages are
	 * written to the main chunks (reading first those a page smaller than a
	 * chunk only partly covers), then the main file's new size, then the
	 * log's metadata is deleted: the commit point. A crash before it leaves
	 * the log in the KV, and the next open copies the same pages again. A log
	 * with no committed transaction (or no valid header: SQLite ignores it)
	 * is only removed. The log is read as far as the KV holds it: metadata
	 * claiming more stops at the first call that finds none of its chunks.
	 */
	async #checkpointWal(size, mainSize) {
		const step = this.#limits.maxKeysPerCall;
		const count = chunkCount(size);
		const parts = [];
		let loaded = 0;
		for (let first = 0; first < count; first += step) {
			const chunks = await this.#getChunks(TAG_WAL, first, Math.min(first + step, count));
			const last = chunks.findLastIndex((chunk) => chunk !== null);
			if (last === -1) break;
			// Copied as they come: a store may reuse the bytes it returned.
			for (let i = 0; i <= last; i++) parts.push(chunks[i] === null ? null : chunks[i].slice());
			loaded = Math.min(size, (first + last) * CHUNK_SIZE + chunks[last].length);
			if (last < chunks.length - 1) break;
		}
		const log = new Uint8Array(loaded);
		for (let i = 0; i < parts.length; i++)
			if (parts[i] !== null) log.set(parts[i].subarray(0, Math.max(0, loaded - i * CHUNK_SIZE)), i * CHUNK_SIZE);
		const wal = readWal(log);
		let stale = [];
		if (wal !== null) {
			const { pageSize, pageCount, pages } = wal;
			const newSize = pageCount * pageSize;
			// The chunks each page lands in, and their bytes after the copy.
			const touched = new Map();
			for (const number of pages.keys()) {
				const start = (number - 1) * pageSize;
				for (let i = Math.floor(start / CHUNK_SIZE); i * CHUNK_SIZE < start + pageSize; i++) touched.set(i, null);
			}
			const indices = [...touched.keys()].sort((a, b) => a - b);
			if (pageSize < CHUNK_SIZE) {
				for (let k = 0; k < indices.length; k += step) {
					const slice = indices.slice(k, k + step);
					const values = await this.#getBatch(slice.map((i) => chunkKey(TAG_MAIN, i)));
					slice.forEach((i, j) => {
						const chunk = checkChunk(values[j], i);
						if (chunk !== null && i * CHUNK_SIZE < mainSize)
							touched.set(i, chunk.slice(0, Math.min(CHUNK_SIZE, mainSize - i * CHUNK_SIZE)));
					});
				}
			}
			for (const i of indices) {
				const chunk = new Uint8Array(Math.min(CHUNK_SIZE, newSize - i * CHUNK_SIZE));
				const before = touched.get(i);
				if (before !== null) chunk.set(before.subarray(0, chunk.length));
				touched.set(i, chunk);
			}
			for (const [number, image] of pages) {
				const start = (number - 1) * pageSize;
				for (let at = start; at < start + pageSize; ) {
					const i = Math.floor(at / CHUNK_SIZE);
					const into = at - i * CHUNK_SIZE;
					const n = Math.min(CHUNK_SIZE - into, start + pageSize - at);
					touched.get(i).set(image.subarray(at - start, at - start + n), into);
					at += n;
				}
			}
			const entries = indices.map((i) => [chunkKey(TAG_MAIN, i), touched.get(i)]);
			await this.#putBatches(planBatches(entries, this.#limits));
			await this.#putBatch([[metaKey(TAG_MAIN), encodeMeta(newSize)]]);
			stale = range(chunkCount(newSize), chunkCount(mainSize)).map((i) => chunkKey(TAG_MAIN, i));
		}
		await this.#call("deleteBatch", [metaKey(TAG_WAL)], "SQLITE_IOERR_DELETE");
		await this.#deleteQuietly([...stale, ...range(0, chunkCount(loaded)).map((i) => chunkKey(TAG_WAL, i))]);
	}

	/**
	 * Loads a rollback journal whose metadata claims `size` bytes into the
	 * engine, and returns its size as loaded: up to the end of its last chunk
	 * before the first getBatch that found none of its chunks. SQLite reads
	 * a journal in order and stops at the first record that is zeros (a
	 * missing chunk reads as zeros), so nothing past such a stretch is ever
	 * used: metadata claiming terabytes over a few chunks costs a few calls.
	 * A journal whose header says the database had more pages than the main
	 * file and the journal's records can hold is SQLITE_CORRUPT: its
	 * rollback would grow the file to that size (zeros), and SQLite journals
	 * every page a transaction truncates away (see checkJournalHeader).
	 */
	async #loadJournal(size, mainSize) {
		const step = this.#limits.maxKeysPerCall;
		const count = chunkCount(size);
		let loaded = 0;
		let header = null;
		// getBatch calls at once: one, then twice as many each round, up to
		// LOAD_CONCURRENCY (a journal's true size is known only as it is read).
		let width = 1;
		rounds: for (let group = 0; group < count; group += step * width, width = Math.min(2 * width, LOAD_CONCURRENCY)) {
			const firsts = range(group, Math.min(count, group + step * width), step);
			// Each call's chunks are copied as it answers: a store may reuse
			// the bytes it returned for its next answer.
			const batches = await Promise.all(
				firsts.map(async (first) =>
					(await this.#getChunks(TAG_JOURNAL, first, Math.min(first + step, count))).map((chunk) =>
						chunk === null ? null : chunk.slice(),
					),
				),
			);
			for (let b = 0; b < batches.length; b++) {
				const chunks = batches[b];
				const last = chunks.findLastIndex((chunk) => chunk !== null);
				if (last === -1) break rounds;
				if (firsts[b] === 0) header = chunks[0];
				this.#engine.loadChunks(TAG_JOURNAL, firsts[b], chunks);
				loaded = Math.min(size, (firsts[b] + last) * CHUNK_SIZE + chunks[last].length);
			}
		}
		checkJournalHeader(header, loaded, mainSize);
		return loaded;
	}

	/**
	 * Waits for work the engine finishes on an engine thread (a promise from
	 * `resume()`), reading the chunks it asks for on the way: the engine
	 * thread waits while this thread reads them from the KV (the work may end
	 * first: an interrupt or the deadline does not wait for the KV). Returns
	 * what the work returns, or its error (an Error value). When a KV read
	 * failed, the error is that failure (its code SQLITE_IOERR_READ, the KV's
	 * error as cause; or SQLITE_CORRUPT for a chunk that is not one).
	 */
	async finish(promise) {
		const engine = this.#engine;
		let event = await promise;
		let failure = null;
		// Page reads not answered yet.
		let reading = 0;
		while (!(event instanceof Error) && !Array.isArray(event)) {
			const next = engine.next();
			const { id, chunks } = event;
			const fail = (error) => {
				failure = error;
				engine.supply(id, null, null, error instanceof Error ? error.message : String(error));
			};
			reading++;
			this.#readPages(chunks)
				.then((values) => {
					try {
						engine.supply(id, ...pack(values), null);
					} catch (error) {
						fail(error);
					}
				}, fail)
				.finally(() => reading--);
			event = await next;
		}
		// The work ended (stopped) while a read was still out: it may wait
		// for a read-ahead that never comes (a request the KV lost). Later
		// calls read their chunks anew instead of waiting for it too.
		if (reading > 0) this.#ahead = [];
		if (failure !== null && event instanceof Error && event.code === "SQLITE_IOERR_READ") return failure;
		return event;
	}

	/**
	 * The chunks of a page request (see #readChunks). Those read ahead come
	 * from there. A large request comes from a scan: the same number of
	 * chunks after it are read at once too, so the next request of the scan
	 * finds them here (its KV round trip overlaps SQLite's work on this one).
	 */
	async #readPages(indices) {
		const last = indices[indices.length - 1];
		// Windows no request will come back for go (a scan moves forward).
		const ahead = this.#ahead.filter((w) => w.end > indices[0]);
		if (indices.length >= READ_AHEAD_MIN) {
			const first = Math.max(last + 1, ...ahead.map((w) => w.end));
			const end = Math.min(last + 1 + indices.length, chunkCount(this.#kvSize ?? 0));
			if (first < end) ahead.push({ first, end, chunks: this.#readChunks(range(first, end)).catch(() => null) });
		}
		this.#ahead = ahead.slice(-READ_AHEAD_WINDOWS);
		// Each window that holds some of the chunks is awaited once.
		const windowOf = (index) => ahead.findIndex((w) => index >= w.first && index < w.end);
		const used = new Set(indices.map(windowOf));
		const read = await Promise.all(ahead.map((w, k) => (used.has(k) ? w.chunks : null)));
		const out = new Array(indices.length).fill(null);
		const rest = [];
		indices.forEach((index, i) => {
			const k = windowOf(index);
			const chunks = k === -1 ? null : read[k];
			if (chunks === null) rest.push(i);
			else out[i] = chunks[index - ahead[k].first];
		});
		if (rest.length > 0) {
			const values = await this.#readChunks(rest.map((i) => indices[i]));
			rest.forEach((slot, k) => {
				out[slot] = values[k];
			});
		}
		return out;
	}

	/**
	 * Main-file chunks `indices`, as the durable state holds them (null: none):
	 * from the KV, in getBatch calls of at most maxKeysPerCall keys, several
	 * at once; pages a failed write may have changed in the KV come from the
	 * pending repair instead.
	 */
	async #readChunks(indices) {
		const out = new Array(indices.length).fill(null);
		const repair = this.#repair?.byIndex;
		const wanted = [];
		indices.forEach((index, i) => {
			const bytes = repair?.get(index);
			if (bytes !== undefined) out[i] = bytes;
			else wanted.push(i);
		});
		// Each chunk is copied to its place in one buffer as its getBatch
		// answers: chunks kept while other KV calls run (those of concurrent
		// and read-ahead calls) must not be the KV's own bytes, which a store
		// may reuse once the call that returned them is over (a pooled
		// receive buffer). Chunks read whole and in order end up end to end,
		// as pack passes them on.
		const bytes = new Uint8Array(wanted.length * CHUNK_SIZE);
		const step = this.#limits.maxKeysPerCall;
		await forEachConcurrent(range(0, wanted.length, step), LOAD_CONCURRENCY, async (first) => {
			const slots = wanted.slice(first, first + step);
			const values = await this.#getBatch(slots.map((i) => chunkKey(TAG_MAIN, indices[i])));
			slots.forEach((slot, k) => {
				const chunk = checkChunk(values[k], indices[slot]);
				if (chunk === null) return;
				const at = (first + k) * CHUNK_SIZE;
				const copy = bytes.subarray(at, at + chunk.length);
				copy.set(chunk);
				out[slot] = copy;
			});
		});
		return out;
	}

	/**
	 * The whole database file, as the KV holds it once pending changes are
	 * written: the engine's local file, with the chunks it never read taken
	 * from the KV.
	 */
	async export() {
		this.ready();
		const bytes = await this.#engine.export();
		const remote = this.#engine.remoteChunks?.() ?? [];
		if (remote.length === 0) return bytes;
		const chunks = await this.#readChunks(remote);
		remote.forEach((index, i) => {
			const start = index * CHUNK_SIZE;
			if (start >= bytes.length) return;
			const target = bytes.subarray(start, Math.min(start + CHUNK_SIZE, bytes.length));
			target.fill(0);
			if (chunks[i] !== null) target.set(chunks[i].subarray(0, target.length));
		});
		return bytes;
	}

	/**
	 * Hands the engine the durable bytes of pages it wrote without reading
	 * them (still remote then), which a journal or a repair may need. Read
	 * before anything of the commit is sent, so the KV holds them. Only a
	 * lazily opened database has such pages.
	 */
	async #loadImages() {
		const unknown = this.#engine.unknownImages();
		if (unknown.length === 0) return;
		this.#engine.provideImages(Array.from(unknown), await this.#readChunks(unknown));
	}

	/** Chunks `first` to `end` (excluded) of file `tag`, in one getBatch: each checked, null where the KV has none. */
	async #getChunks(tag, first, end) {
		const values = await this.#getBatch(range(first, end).map((i) => chunkKey(tag, i)));
		return checkChunks(values, first);
	}

	/** Loads chunks `from..` of file `tag`, `size` bytes long, into the engine. */
	async #loadFile(tag, size, from) {
		const step = this.#limits.maxKeysPerCall;
		const count = chunkCount(size);
		// Returns whether the KV held any of the chunks.
		const load = async (first) => {
			const values = await this.#getChunks(tag, first, Math.min(first + step, count));
			this.#engine.loadChunks(tag, first, values);
			return values.some((value) => value !== null);
		};
		// LOAD_CONCURRENCY calls at a time. Once a round finds none of its
		// chunks and the file's last chunk is not there either, the rest
		// reads as zeros, as missing chunks do: a size that page 1's header
		// or the metadata claims over a few pages (terabytes; SQLite writes
		// its header's page count from the file's size, whatever the pages
		// hold) costs a few calls, not millions. Neither engine nor 2.2.1
		// leaves such a stretch of missing chunks in a file it wrote.
		let tail;
		const round = step * LOAD_CONCURRENCY;
		for (let first = from; first < count; first += round) {
			let found = false;
			await forEachConcurrent(range(first, Math.min(first + round, count), step), LOAD_CONCURRENCY, async (at) => {
				if (await load(at)) found = true;
			});
			if (found || first + round >= count) continue;
			tail ??= (await this.#getChunks(tag, count - 1, count))[0] !== null;
			if (!tail) return;
		}
	}

	/**
	 * Makes the rollback of a hot journal durable. The journal in the KV stays
	 * the only journal, untouched, until the rolled-back pages are all in the
	 * main file: however many calls that takes, a crash or a failure leaves
	 * the same hot journal, and the next open rolls back again (the rollback
	 * writes the same bytes each time). Deleting the journal's metadata is the
	 * recovery's commit point.
	 */
	async #recover(journalSize) {
		const delta = takeDelta(this.#engine, this.#slab);
		if (delta !== null) await this.#putMain(delta);
		await this.#removeJournal(journalSize);
		this.#engine.ack();
		if (delta !== null) await this.#deleteStale(delta);
	}

	/**
	 * Makes the engine's pending delta durable, if it has one, then calls
	 * `done()`; on failure the engine is back at the durable state (every
	 * change since is gone) and `failed(error)` is called with the KV's
	 * error. Returns a promise of what they return. The caller makes one
	 * commit at a time.
	 *
	 * A delta that fits one putBatch is written in exactly one, which the KV
	 * applies atomically. A larger one is made atomic with a rollback journal
	 * of the durable bytes of the pages it replaces: the journal goes to the
	 * KV first (its metadata last), then the main chunks and metadata, then
	 * the journal's metadata is deleted: the commit point. A crash before it
	 * leaves a hot journal that the next open rolls back. As the first KV
	 * write starts, once the engine has given the delta and the before-images
	 * it needs, the engine may write its local file on an engine thread
	 * meanwhile (writeBackLater: what a large seal held back).
	 *
	 * The common case, one putBatch with no repair pending and no page image
	 * to read first (an autocommit write), takes one promise reaction and no
	 * closure (see #written): in a fresh process this code runs interpreted,
	 * where each await, closure and promise costs about as much as the rest
	 * of the commit's JS, and what it allocates brings the next collection
	 * nearer.
	 */
	commit(done, failed) {
		const delta = takeDelta(this.#engine, this.#slab);
		if (delta === null) return DONE.then(done);
		if (this.#ahead.length > 0) this.#ahead = [];
		let batch;
		try {
			batch = this.#oneBatch(delta);
		} catch (error) {
			this.#restore();
			return Promise.reject(error).then(undefined, failed);
		}
		if (batch === null) return this.#commitInSteps(delta).then(done, failed);
		this.#writing = delta;
		this.#done = done;
		this.#failed = failed;
		this.#engine.writeBackLater?.();
		let result;
		try {
			result = this.#kv.putBatch(batch);
		} catch (error) {
			result = Promise.reject(error);
		}
		return Promise.resolve(result).then(this.#written, this.#unwritten);
	}

	/** The delta whose one putBatch is in flight, and what follows it (see commit). */
	#writing = null;
	#done = null;
	#failed = null;

	/** That putBatch is in: the delta is durable. What throws goes to `failed`, as a rejection would. */
	#written = () => {
		const delta = this.#writing;
		const done = this.#done;
		const failed = this.#failed;
		this.#writing = null;
		let stale;
		try {
			stale = this.#committed(delta);
		} catch (error) {
			return failed(error);
		}
		return stale === undefined ? done() : stale.then(done, failed);
	};

	/** That putBatch failed (`error`): see #uncommitted. What throws meanwhile goes to `failed` instead. */
	#unwritten = (error) => {
		const delta = this.#writing;
		this.#writing = null;
		let failure;
		try {
			failure = this.#uncommitted(delta, null, this.#failure("putBatch", error, "SQLITE_IOERR_WRITE"));
		} catch (thrown) {
			failure = thrown;
		}
		return this.#failed(failure);
	};

	/** The one putBatch that commits `delta` when no repair is pending and no page image is to be read first, else null. */
	#oneBatch(delta) {
		if (this.#repair !== null || this.#needsImages()) return null;
		// Packed: large.
		if (delta.packed !== null) return null;
		return singleBatch(delta, this.#kvSize, this.#limits);
	}

	/** commit() of `delta` in as many steps as it takes (see commit). */
	async #commitInSteps(delta) {
		let sent = false;
		let journal = null;
		try {
			if (this.#repair !== null) await this.#finishRepair();
			if (this.#lazy) await this.#loadImages();
			const batches = planBatches(await this.#mainEntriesInSteps(delta), this.#limits);
			sent = true;
			if (batches.length > 1) {
				journal = await buildJournalInSteps(await this.#journalImages());
				this.#engine.writeBackLater?.();
				await this.#putFile(TAG_JOURNAL, journal);
				await this.#putBatches(batches);
				await this.#removeJournal(journal.length);
			} else if (batches.length === 1) {
				this.#engine.writeBackLater?.();
				await this.#putBatch(batches[0]);
			}
		} catch (error) {
			if (!sent) {
				this.#restore();
				throw error;
			}
			throw this.#uncommitted(delta, journal, error);
		}
		await this.#committed(delta);
	}

	/**
	 * `delta` is durable: the engine hears so, and stale chunks past its end
	 * go, and what earlier cleanups failed to delete.
	 */
	#committed(delta) {
		this.#kvSize = delta.size;
		this.#engine.ack();
		if (this.#leftovers !== null) return this.#deleteLeftovers(delta);
		if (delta.maxSize > delta.size && chunkCount(delta.maxSize) > chunkCount(delta.size)) return this.#deleteStale(delta);
		return undefined;
	}

	/**
	 * #deleteStale, and what earlier cleanups left over, once `delta` is
	 * committed. No journal is in the KV then: a commit removes its own
	 * before it counts as made, and finishes a repair's first; main chunks
	 * from the file's end on are past what any reader reads, whichever were
	 * written again meanwhile.
	 */
	async #deleteLeftovers(delta) {
		const { mainTo, journalTo } = this.#leftovers;
		this.#leftovers = null;
		await this.#deleteMain(chunkCount(delta.size), Math.max(mainTo, chunkCount(delta.maxSize)));
		if (journalTo > 0) await this.#deleteJournalChunks(0, journalTo);
	}

	/** Notes that a cleanup failed to delete main chunks up to `mainTo` or journal chunks up to `journalTo`. */
	#leaveOver(mainTo, journalTo) {
		const left = this.#leftovers ?? { mainTo: 0, journalTo: 0 };
		this.#leftovers = { mainTo: Math.max(left.mainTo, mainTo), journalTo: Math.max(left.journalTo, journalTo) };
	}

	/**
	 * A write of `delta` failed after it sent something (`journal`: the
	 * journal it wrote, or null): the KV may hold any part of it, so what
	 * puts the KV back is noted (see #repair), and the engine goes back to
	 * the durable state. Returns `error`, to throw.
	 */
	#uncommitted(delta, journal, error) {
		this.#repair = this.#repairFor(delta, journal);
		this.#restore();
		return error;
	}

	/**
	 * Puts the engine back to the durable state after a failed write. If
	 * that fails too (the local disk), the write's failure is still the one
	 * reported, and the engine is put back before it runs anything else (see
	 * ready), as SQLite's pager does after a failed rollback.
	 */
	#restore() {
		try {
			this.#engine.restore();
			this.#unrestored = false;
		} catch {
			this.#unrestored = true;
		}
	}

	/**
	 * Called before the engine runs a call. If putting it back to the durable
	 * state failed, tries again, and throws that error while it fails: until
	 * then the engine's file may hold changes the KV does not, which no call
	 * may see (nor a later commit write).
	 */
	ready() {
		if (!this.#unrestored) return;
		this.#engine.restore();
		this.#unrestored = false;
	}

	/**
	 * Before the database closes: a failed write may have been applied (see
	 * #repair), and no later write will put the KV back, so it is done now.
	 * Throws the KV's error if that fails too.
	 */
	async repairBeforeClose() {
		await this.#finishRepair();
	}

	/**
	 * The database is closed: nothing more is written, and its slab goes
	 * (64 KiB a closed database would keep for as long as something holds
	 * it).
	 */
	closed() {
		this.#slab = new Slab();
	}

	/** Whether pages written without being read need their durable bytes before a commit (see #loadImages). */
	#needsImages() {
		return this.#lazy && this.#engine.unknownImages().length > 0;
	}

	/**
	 * The main file's chunks and metadata for `delta`, packed or not, in
	 * index order, STEP_CHUNKS at a time, other work of the JS thread
	 * getting a turn between steps (see unpack).
	 */
	async #mainEntriesInSteps(delta) {
		if (delta.packed !== null) await unpack(delta);
		const entries = [];
		await inSteps(delta.chunks.length, (first, end) => addChunkEntries(delta, first, end, entries));
		addMetaEntry(delta, this.#kvSize, entries);
		return entries;
	}

	/** Writes `delta` to the main file in as many calls as it takes (not atomic). */
	async #putMain(delta) {
		this.#ahead = [];
		await this.#putBatches(planBatches(await this.#mainEntriesInSteps(delta), this.#limits));
		this.#kvSize = delta.size;
	}

	/**
	 * What puts the KV back to the durable state after a failed write of
	 * `delta` (`journal`: the journal it wrote, or null): the durable bytes of
	 * the pages it sent (all the journal's pages, if it wrote one) and the
	 * durable size. Read from the engine before it restores.
	 */
	#repairFor(delta, journal) {
		const images = this.#engine.journal();
		let pages = images.pages;
		if (journal === null) {
			const sent = new Set(delta.chunks.map(([index]) => index));
			pages = pages.filter(([index]) => sent.has(index));
		}
		return { size: images.size, pages, journal, byIndex: new Map(pages) };
	}

	/**
	 * Puts the KV back to the durable state after a failed write. In one
	 * putBatch when it fits and no journal was involved (the KV then holds
	 * either all or none of the failed write). Otherwise under a journal of
	 * the durable pages, written again byte for byte as the failed write did
	 * (or built once, and kept for every attempt): at any point a reader sees
	 * the durable state, or, if the failed write did commit, that write's
	 * state until the journal's metadata is in.
	 */
	async #finishRepair() {
		const repair = this.#repair;
		if (repair === null) return;
		const entries = repair.pages.map(([index, bytes]) => [chunkKey(TAG_MAIN, index), bytes]);
		entries.push([metaKey(TAG_MAIN), encodeMeta(repair.size)]);
		const batches = planBatches(entries, this.#limits);
		if (repair.journal === null && batches.length === 1) {
			await this.#putBatch(batches[0]);
		} else {
			repair.journal ??= buildJournal(repair.size, repair.pages);
			await this.#putFile(TAG_JOURNAL, repair.journal);
			await this.#putBatches(batches);
			await this.#removeJournal(repair.journal.length);
		}
		this.#repair = null;
		this.#kvSize = repair.size;
	}

	/**
	 * The engine's journal(): read off this thread where the engine can
	 * (packedJournal), its pages then made views in steps (see inSteps),
	 * unless it is small (see JOURNAL_INLINE_BYTES).
	 */
	async #journalImages() {
		if (this.#engine.packedJournal === undefined) return this.#engine.journal();
		const small = this.#engine.journal(JOURNAL_INLINE_BYTES);
		if (small !== null) return small;
		const { size, indices, lengths, bytes } = await this.#engine.packedJournal();
		const pages = new Array(indices.length);
		let at = 0;
		await inSteps(pages.length, (first, end) => {
			for (let i = first; i < end; i++) {
				pages[i] = [indices[i], bytes.subarray(at, at + lengths[i])];
				at += lengths[i];
			}
		});
		return { size, pages };
	}

	/** Writes a whole file under `tag`: chunks first, its metadata in the last call. */
	async #putFile(tag, bytes) {
		const entries = [];
		await inSteps(chunkCount(bytes.length), (first, end) => {
			for (let i = first; i < end; i++) {
				entries.push([chunkKey(tag, i), bytes.subarray(i * CHUNK_SIZE, (i + 1) * CHUNK_SIZE)]);
			}
		});
		entries.push([metaKey(tag), encodeMeta(bytes.length)]);
		const batches = planBatches(entries, this.#limits);
		// The metadata goes last, once the file's chunks are all in: a
		// journal is hot from its metadata on, so it must be whole by then.
		const last = batches.pop();
		if (batches.length > 0) {
			await this.#putBatches(batches);
			await nextTurn();
		}
		await this.#putBatch(last);
	}

	/**
	 * Removes the journal of `size` bytes, once its commit is done or rolled
	 * back. The first call removes its metadata (and its first chunks): after
	 * it the journal no longer exists (the commit point), so only that call's
	 * failure is thrown; the rest of its chunks go quietly.
	 */
	async #removeJournal(size) {
		const count = chunkCount(size);
		const first = Math.min(count, this.#limits.maxKeysPerCall - 1);
		const keys = [metaKey(TAG_JOURNAL), ...range(0, first).map((i) => chunkKey(TAG_JOURNAL, i))];
		await this.#call("deleteBatch", keys, "SQLITE_IOERR_DELETE");
		await this.#deleteJournalChunks(first, count);
	}

	/** Deletes journal chunks `from..end` (no journal metadata is in the KV), quietly: what fails is left over. */
	async #deleteJournalChunks(from, end) {
		if (!(await this.#deleteQuietly(range(from, end).map((i) => chunkKey(TAG_JOURNAL, i))))) this.#leaveOver(0, end);
	}

	/**
	 * Chunks past the new end are invisible (readers stop at the size in the
	 * metadata, and a file that grows again rewrites them): removing them
	 * only frees space, so a failure here is reported, not thrown, and they
	 * are deleted again after the next commit.
	 */
	async #deleteStale(delta) {
		await this.#deleteMain(chunkCount(delta.size), chunkCount(delta.maxSize));
	}

	/** Deletes main chunks `from..end`, all past the file's end, quietly: what fails is left over. */
	async #deleteMain(from, end) {
		if (!(await this.#deleteQuietly(range(from, end).map((i) => chunkKey(TAG_MAIN, i))))) this.#leaveOver(end, 0);
	}

	/**
	 * Deletes `keys` that no reader sees any longer (in no set order, as
	 * #putBatches writes), each deleteBatch reported through onError if it
	 * fails, none thrown: the data is durable either way. Awaited all the
	 * same: a delete still in flight must not land on what a later write puts
	 * under the same key. Returns whether every call succeeded.
	 */
	async #deleteQuietly(keys) {
		const max = this.#limits.maxKeysPerCall;
		try {
			await forEachInTurns(range(0, keys.length, max), WRITE_CONCURRENCY, (first) =>
				this.#call("deleteBatch", keys.slice(first, first + max), "SQLITE_IOERR_DELETE"),
			);
			return true;
		} catch {
			// Already reported through onError.
			return false;
		}
	}
}

module.exports = { Persistence, resolveLimits, planBatches };
