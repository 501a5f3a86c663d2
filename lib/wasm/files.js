"use strict";

// In-memory files of the WASM engine, and the dirty-chunk tracker of a main
// database file: a line-by-line port of src/tracker.rs, over a MemFile
// instead of a local file.

const { NOTHING_PENDING, TOO_SMALL } = require("../engines");
const { boundValue } = require("../policy");

// The most chunks one truncation may cut away or add (see lib/policy.txt).
const MAX_CUT = boundValue("cut_chunks");

const CHUNK_SIZE = 4096;

/**
 * A sparse file in 4 KiB chunks. A missing chunk reads as zeros; bytes past
 * `size` inside the last chunk are always zero, so a file that grows again
 * reads zeros there, as a truncated and re-extended local file does.
 */
class MemFile {
	/** @type {(Uint8Array | undefined)[]} */
	chunks = [];
	size = 0;
	// Lock state shared by every handle on this file (see vfs.js).
	lockLevel = 0;
	sharedCount = 0;
	/** Open sqlite3_file handles on this file. */
	opens = 0;

	/**
	 * Copies up to `n` bytes at `offset` into `target[targetOffset..]`.
	 * Returns how many bytes the file had there (fewer at the end of file).
	 */
	read(target, targetOffset, n, offset) {
		const end = Math.min(offset + n, this.size);
		let pos = offset;
		while (pos < end) {
			const index = Math.floor(pos / CHUNK_SIZE);
			const within = pos - index * CHUNK_SIZE;
			const len = Math.min(CHUNK_SIZE - within, end - pos);
			const at = targetOffset + (pos - offset);
			const chunk = this.chunks[index];
			if (chunk === undefined) target.fill(0, at, at + len);
			else target.set(chunk.subarray(within, within + len), at);
			pos += len;
		}
		return Math.max(0, end - offset);
	}

	/** Writes `source[sourceOffset..sourceOffset+n]` at `offset`, growing the file. */
	write(source, sourceOffset, n, offset) {
		const end = offset + n;
		let pos = offset;
		while (pos < end) {
			const index = Math.floor(pos / CHUNK_SIZE);
			const within = pos - index * CHUNK_SIZE;
			const len = Math.min(CHUNK_SIZE - within, end - pos);
			let chunk = this.chunks[index];
			if (chunk === undefined) {
				chunk = new Uint8Array(CHUNK_SIZE);
				this.chunks[index] = chunk;
			}
			const from = sourceOffset + (pos - offset);
			chunk.set(source.subarray(from, from + len), within);
			pos += len;
		}
		if (end > this.size) this.size = end;
	}

	/** Sets the file's length (shrinking or extending with zeros), like ftruncate. */
	truncate(newSize) {
		if (newSize < this.size) {
			const keep = Math.ceil(newSize / CHUNK_SIZE);
			if (this.chunks.length > keep) this.chunks.length = keep;
			const tail = newSize % CHUNK_SIZE;
			if (tail !== 0 && this.chunks[keep - 1] !== undefined) this.chunks[keep - 1].fill(0, tail);
		}
		this.size = newSize;
	}

	/** The whole file as one array. */
	toBytes() {
		const out = new Uint8Array(this.size);
		this.read(out, 0, this.size, 0);
		return out;
	}
}

function chunkRange(start, end) {
	if (end <= start) return [0, 0];
	return [Math.floor(start / CHUNK_SIZE), Math.floor((end - 1) / CHUNK_SIZE) + 1];
}

function sameBytes(a, b) {
	if (a.length !== b.length) return false;
	return Buffer.from(a.buffer, a.byteOffset, a.length).equals(Buffer.from(b.buffer, b.byteOffset, b.length));
}

/**
 * Keeps the bytes each chunk held at two moments: `durable` (what the KV
 * holds; restore() puts them back) and `sealed` (the last seal; a seal adds
 * the chunks that differ from it to the pending delta, which take() hands
 * out). See src/tracker.rs.
 */
class Tracker {
	/** @param {MemFile} file whose current contents are what the KV holds */
	constructor(file) {
		this.file = file;
		this.size = file.size;
		this.durableSize = file.size;
		this.sealedSize = file.size;
		/** @type {Map<number, Uint8Array>} */
		this.durable = new Map();
		/** @type {Map<number, Uint8Array>} */
		this.sealed = new Map();
		/** Sealed changes not yet taken: chunk bytes at their last seal. */
		this.pending = new Map();
		/** `{ size, maxSize }` while a sealed delta waits to be taken. */
		this.pendingSize = null;
		/** Seals that added to the pending delta, ever. */
		this.seals = 0;
		/**
		 * A write or truncate of the file failed since the last seal: the next
		 * seal refuses, and the changes since the last seal are discarded
		 * (see discardUnsealed).
		 */
		this.damaged = false;
		/**
		 * Why the last truncation failed, for the error of the statement that
		 * made it (SQLite's own message for it is "disk I/O error"), or null.
		 */
		this.truncationFailure = null;
	}

	/** Whether anything changed since the last seal. */
	hasChanges() {
		return this.sealed.size > 0 || this.size !== this.sealedSize;
	}

	readChunk(index) {
		const start = index * CHUNK_SIZE;
		const len = Math.max(0, Math.min(CHUNK_SIZE, this.size - start));
		const bytes = new Uint8Array(len);
		// Past the file's physical end the rest stays zero.
		this.file.read(bytes, 0, len, start);
		return bytes;
	}

	capture(index) {
		const needDurable = !this.durable.has(index);
		const needSealed = !this.sealed.has(index);
		if (!needDurable && !needSealed) return;
		// Images are never mutated, so both maps may share one array.
		const bytes = this.readChunk(index);
		if (needDurable) this.durable.set(index, bytes);
		if (needSealed) this.sealed.set(index, bytes);
	}

	/** Before SQLite writes `len` bytes at `offset`. */
	beforeWrite(offset, len) {
		// A write past the end also changes the gap between the old end and the
		// write (it reads as zeros now, the KV may hold stale chunks).
		const [from, to] = chunkRange(Math.min(offset, this.size), offset + len);
		for (let index = from; index < to; index++) this.capture(index);
	}

	afterWrite(offset, len) {
		this.size = Math.max(this.size, offset + len);
	}

	/** Before SQLite truncates (or extends) the file to `newSize`. */
	beforeTruncate(newSize) {
		const [low, high] = newSize < this.size ? [newSize, this.size] : [this.size, newSize];
		const [from, to] = chunkRange(low, high);
		if (to - from > MAX_CUT) {
			throw new Error(`a truncation of ${to - from} chunks of 4 KiB is past the bound of ${MAX_CUT} (bound cut_chunks of lib/policy.txt)`);
		}
		for (let index = from; index < to; index++) this.capture(index);
	}

	afterTruncate(newSize) {
		this.size = newSize;
	}

	/** Adds what changed since the last seal to the pending delta (no transaction open). */
	seal() {
		if (this.damaged) throw new Error("a write to the file failed: the changes since the last seal are discarded");
		if (!this.hasChanges()) return;
		const sealed = this.sealed;
		this.sealed = new Map();
		let changed = false;
		for (const [index, before] of sealed) {
			if (index * CHUNK_SIZE >= this.size) continue;
			const now = this.readChunk(index);
			if (!sameBytes(now, before)) {
				this.pending.set(index, now);
				changed = true;
			}
		}
		if (!changed && this.size === this.sealedSize) return;
		// Chunks past the new end are not part of the file any more.
		for (const index of this.pending.keys()) if (index * CHUNK_SIZE >= this.size) this.pending.delete(index);
		// The size before the first of these seals counts too: the KV may hold
		// chunks up to it, which a shrunken file no longer has.
		const maxSize = Math.max(this.pendingSize === null ? this.sealedSize : this.pendingSize.maxSize, this.size);
		this.pendingSize = { size: this.size, maxSize };
		this.sealedSize = this.size;
		this.seals++;
	}

	/**
	 * Takes the pending delta into arrays the caller owns (see the native
	 * engine's takeDelta): its bytes end to end into `slab` from `at`, and
	 * `[size, maxSize, index₀, length₀, …]` (chunks sorted) into `meta`.
	 * Returns the number of chunks, NOTHING_PENDING, or TOO_SMALL: then
	 * `meta[0]` holds the bytes and `meta[1]` the `meta` length it needs,
	 * and it stays pending.
	 */
	take(slab, at, meta) {
		if (this.pendingSize === null) return NOTHING_PENDING;
		const chunks = [...this.pending].sort((a, b) => a[0] - b[0]);
		let total = 0;
		for (const [, bytes] of chunks) total += bytes.length;
		const entries = 2 + 2 * chunks.length;
		if (at + total > slab.length || entries > meta.length) {
			meta[0] = total;
			meta[1] = entries;
			return TOO_SMALL;
		}
		meta[0] = this.pendingSize.size;
		meta[1] = this.pendingSize.maxSize;
		let offset = at;
		chunks.forEach(([index, bytes], i) => {
			slab.set(bytes, offset);
			offset += bytes.length;
			meta[2 + 2 * i] = index;
			meta[3 + 2 * i] = bytes.length;
		});
		this.pending = new Map();
		this.pendingSize = null;
		return chunks.length;
	}

	/** The delta taken last (and everything before it) is durable in the KV. */
	ack() {
		// The before-images still needed are those of chunks changed since the
		// seal, taken at the seal.
		this.durable = new Map(this.sealed);
		this.durableSize = this.sealedSize;
	}

	/** Puts the file back to the last durable state (SQLite must not hold it open). */
	restore() {
		this.#putBack(this.durable, this.durableSize);
		this.durable.clear();
		this.pending.clear();
		this.pendingSize = null;
		this.sealedSize = this.durableSize;
	}

	/**
	 * Puts the file back to its state at the last seal, dropping every change
	 * since (a call whose changes cannot be sealed has no effects). SQLite
	 * must not hold the file open.
	 */
	discardUnsealed() {
		this.#putBack(this.sealed, this.sealedSize);
	}

	/** Puts the file back to `size`, from `images`, the images of the chunks changed since. */
	#putBack(images, size) {
		for (const [index, bytes] of images) {
			const start = index * CHUNK_SIZE;
			if (start < size) this.file.write(bytes, 0, bytes.length, start);
		}
		this.file.truncate(size);
		this.sealed.clear();
		this.size = size;
		this.damaged = false;
	}

	/**
	 * The durable size, and the durable bytes of every chunk changed since the
	 * durable state that lies within it, by index: what a rollback journal
	 * for the pending commit must hold.
	 */
	durableImages() {
		const pages = [];
		for (const [index, bytes] of this.durable) {
			if (index * CHUNK_SIZE < this.durableSize) pages.push([index, bytes.slice()]);
		}
		pages.sort((a, b) => a[0] - b[0]);
		return { size: this.durableSize, pages };
	}
}

module.exports = { CHUNK_SIZE, MemFile, Tracker };
