"use strict";

// The native engine (see lib/engines.js for the interface): the addon's
// NativeDatabase, with its most frequent calls, execute(), takeDelta() and
// ack(), made through plain functions bound to it (`NativeDatabase#calls()`,
// see src/calls.rs): napi-rs's glue for a method or a function of its own
// costs more than a takeDelta's or an ack's own work.
// An ack is held back (#acked): it goes with the next execute() (the first
// thing that call does), or on its own before any other call on the
// database's state. The calls of a call under way (resume, next, supply,
// interrupt, setTimeout) and those of an open (loadChunks, open) come after
// an execute that sent it, or before any write.

// The longest string this runtime holds (UTF-16 code units): a longer TEXT
// result is SQLITE_TOOBIG (Node: 2^29 − 24; Bun: 2^31 − 1).
const { MAX_STRING_LENGTH } = require("node:buffer").constants;

// Bits of the addon's execute() flags.
const COLLECT = 1;
const ACK_FIRST = 2;

// Local files of at most this many bytes on disk are removed on the JS
// thread when the database closes: removing them takes less than a round
// trip to an engine thread (about 45 µs a MiB on ext4, against 90 µs or
// more); a larger file (64 MB took 40 ms) is removed on an engine thread.
const CLOSE_INLINE_BYTES = 1024 * 1024;

/** The addon interface this file drives: the addon's ENGINE_INTERFACE (see src/lib.rs). */
const ENGINE_INTERFACE = 10;

/**
 * Throws unless `binding` is an addon this file can drive: what loaded may
 * be a platform package of another release, or, through the loader's
 * NAPI_RS_NATIVE_LIBRARY_PATH (which every napi-rs package's loader
 * reads), another package's addon.
 */
function checkBinding(binding) {
	const found = binding?.ENGINE_INTERFACE;
	if (found === ENGINE_INTERFACE && typeof binding.NativeDatabase === "function") return;
	throw new Error(
		found === undefined
			? "the addon that loaded is not this package's engine (it has no ENGINE_INTERFACE): another napi-rs package's addon, or a build of an older release"
			: `the addon that loaded has engine interface ${String(found)}, this release of @rivetkit/sqlite-vfs drives ${ENGINE_INTERFACE}: its platform package is of another version`,
	);
}

/**
 * What the addon makes a result of more than a few values with: the array
 * of a rest parameter has room for its values only (see src/values.rs).
 */
const pack = (...values) => values;

class NativeEngine {
	#db;
	#calls;
	/** The SQL the addon keeps from the last call that returned, or null. */
	#lastSql = null;
	/** The status array the addon keeps, once given. */
	#status = null;
	/**
	 * The `meta` array the addon keeps (setMeta), once given: the first
	 * one takeDelta() gets, the one persistence shares between databases.
	 * A larger one, which a large delta needs, goes as an argument.
	 */
	#meta = null;
	/** Whether the delta taken last is durable and the addon has not heard yet (see ack). */
	#acked = false;
	/** Whether the delta taken last was large enough for writeBackLater() to have work. */
	#large = false;
	/**
	 * The addon's WRITE_BACK_CHUNKS: a delta of at least this many chunks
	 * may have left chunks of the local file held back for
	 * writeBackLater(); after a smaller one, writeBackLater() makes no call
	 * to the addon, whose cost a small commit would feel. (A delta whose
	 * seal left that many but which has fewer is not handed over: the next
	 * seal writes them.)
	 */
	#writeBackChunks;

	constructor(binding) {
		this.#db = new binding.NativeDatabase(MAX_STRING_LENGTH);
		this.#calls = this.#db.calls(pack);
		this.#writeBackChunks = binding.WRITE_BACK_CHUNKS;
	}

	get backend() {
		return "native";
	}

	get pagesLazily() {
		return true;
	}

	/** The local file's path (null once closed); SQLite's journal, if any, is beside it with `-journal`. */
	get localPath() {
		return this.#db.localPath;
	}

	/**
	 * The SQL goes across only when it differs from the last call's (null
	 * stands for that, which the addon keeps): copying it costs more than
	 * comparing it. The status array goes across only when it changes
	 * (setStatus: the addon keeps it; reading a typed array across N-API
	 * costs more than the call's other arguments together). Up to 4
	 * positional parameters go as arguments of their own: reading an
	 * element of an array costs an N-API call, an argument nothing. An
	 * ack held back goes with it.
	 */
	execute(sql, positional, named, collect, status = null) {
		if (status !== this.#status) {
			this.#calls.setStatus(status);
			this.#status = status;
		}
		const text = sql === this.#lastSql ? null : sql;
		// Until the call returns, the addon's last SQL is not known here.
		this.#lastSql = null;
		let flags = collect ? COLLECT : 0;
		if (this.#acked) {
			flags |= ACK_FIRST;
			this.#acked = false;
		}
		const calls = this.#calls;
		let out;
		if (positional === null) out = calls.execute(text, named, flags, -1);
		else if (positional.length > 4) {
			out = calls.execute(text, null, flags, positional.length, undefined, undefined, undefined, undefined, positional);
		} else {
			const n = positional.length;
			out = calls.execute(text, null, flags, n, positional[0], positional[1], positional[2], positional[3], null);
		}
		this.#lastSql = sql;
		return out;
	}

	/**
	 * The `meta` array goes across only when it is not the one the addon
	 * keeps: reading a typed array argument costs N-API about 900
	 * instructions, two fifths of what the take of a small delta cost.
	 */
	takeDelta(slab, at, meta) {
		this.#sendAck();
		if (this.#meta === null) {
			this.#calls.setMeta(meta);
			this.#meta = meta;
		}
		const count = this.#calls.takeDelta(slab, at, meta === this.#meta ? null : meta);
		this.#large = count >= this.#writeBackChunks;
		return count;
	}

	/** Writes on an engine thread what a large seal held back of the local file (see lib/engines.js). */
	writeBackLater() {
		if (!this.#large) return;
		this.#large = false;
		this.#db.writeBackLater();
	}

	/** The pending delta packed on an engine thread, in a buffer of its own, or null (see lib/engines.js). */
	takePackedDelta(meta) {
		this.#sendAck();
		const packed = this.#calls.takePackedDelta(meta);
		this.#large = packed !== null;
		return packed;
	}

	/**
	 * Held back until the next call: the next execute() says so first
	 * thing, which spares an N-API call after each write; any other call
	 * on the database's state sends it first (see the top of this file).
	 */
	ack() {
		this.#acked = true;
	}

	/** Sends an ack held back (see ack). */
	#sendAck() {
		if (!this.#acked) return;
		this.#acked = false;
		this.#calls.ack();
	}

	loadChunks(tag, firstIndex, chunks) {
		this.#db.loadChunks(tag, firstIndex, chunks);
	}

	open(mainSize, journalSize, remoteFrom) {
		return this.#db.open(mainSize, journalSize, remoteFrom);
	}

	resume() {
		return this.#db.resume();
	}

	next() {
		return this.#db.next();
	}

	moreResults() {
		return this.#db.moreResults();
	}

	supply(id, bytes, lengths, error) {
		this.#db.supply(id, bytes, lengths, error);
	}

	setResultBounds(values, bytes) {
		this.#db.setResultBounds(values, bytes);
	}

	setTimeout(ms) {
		this.#db.setTimeout(ms);
	}

	interrupt() {
		this.#db.interrupt();
	}

	isAutocommit() {
		this.#sendAck();
		return this.#db.isAutocommit();
	}

	lastCallChanged() {
		this.#sendAck();
		return this.#db.lastCallChanged();
	}

	lastCallRolledBack() {
		return this.#db.lastCallRolledBack();
	}

	/** The journal's page images (see lib/engines.js); null if `maxBytes` is given and they are more. */
	journal(maxBytes) {
		this.#sendAck();
		return this.#db.journal(maxBytes);
	}

	/** journal(), read on an engine thread and packed (see lib/engines.js). */
	async packedJournal() {
		this.#sendAck();
		const images = await this.#db.packedJournal();
		if (images instanceof Error) throw images;
		return images;
	}

	unknownImages() {
		this.#sendAck();
		return this.#db.unknownImages();
	}

	provideImages(indices, chunks) {
		this.#sendAck();
		this.#db.provideImages(indices, chunks);
	}

	remoteChunks() {
		this.#sendAck();
		return this.#db.remoteChunks();
	}

	restore() {
		this.#sendAck();
		this.#db.restore();
	}

	/** A promise of the file's bytes: the addon reads the file on an engine thread. */
	async export() {
		this.#sendAck();
		const bytes = await this.#db.export();
		if (bytes instanceof Error) throw bytes;
		return bytes;
	}

	/**
	 * A promise: the addon closes SQLite and removes its files, at once if
	 * they are small (CLOSE_INLINE_BYTES), else on an engine thread.
	 */
	async close() {
		// An ack held back no longer matters: nothing is put back after this.
		this.#acked = false;
		if (this.#db.closeNow(CLOSE_INLINE_BYTES)) return;
		const closed = await this.#db.close();
		if (closed instanceof Error) throw closed;
	}
}

module.exports = { NativeEngine, checkBinding };
