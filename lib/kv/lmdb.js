"use strict";

// @rivetkit/sqlite-vfs/kv/lmdb: a durable embedded KV store for `open`, in an
// LMDB environment (a folder) through the `lmdb` package (an optional peer
// dependency, loaded here only). One environment holds any number of actors'
// KVs, each under its own key prefix. Every putBatch and deleteBatch is one
// LMDB write transaction, hence atomic, and its promise resolves once LMDB
// committed it and flushed it to disk (fsync).
//
// Ownership (as in postgres.js): a KV takes its actor over at its first
// call, raising an epoch kept under a key no actor's keys start with, and
// each of its writes first checks, in its transaction, that the epoch is
// still its own. Two KVs of one actor, in one process or two, would
// otherwise interleave two databases' writes in one file: the older one's
// writes fail instead (ERR_SQLITE_KV_FENCED) and apply nothing.

const path = require("node:path");
const fs = require("node:fs");

const { createChecks, createOwnership, fencedError } = require("./checks");

// LMDB's largest key as the lmdb package builds it (MDB_MAXKEYSIZE).
const LMDB_MAX_KEY_SIZE = 1978;
// The map sizes accepted: a page, up to 16 TiB (of address space, not memory).
const MIN_MAP_SIZE = 4096;
const MAX_MAP_SIZE = 2 ** 44;
// An environment's data file begins with two meta pages; the first holds
// LMDB's magic number after its page header (as the lmdb package's LMDB
// lays it out; __test__/stores/lmdb.test.mjs checks this on a new one).
const DATA_FILE = "data.mdb";
const MAGIC = 0xbeefc0de;
const MAGIC_OFFSET = 24;
const META_PAGES_BYTES = 2 * 4096;

function loadLmdb() {
	try {
		return require("lmdb");
	} catch (error) {
		const hint = new Error('@rivetkit/sqlite-vfs/kv/lmdb needs the "lmdb" package (an optional peer dependency): npm install lmdb', {
			cause: error,
		});
		hint.code = "ERR_SQLITE_KV_DEPENDENCY";
		throw hint;
	}
}

// The first bytes of the keys holding actors' ownership epochs: an actor's
// own keys start with its id's length, a u16 of at most 1024 (0x04 0x00).
const OWNER_PREFIX = Buffer.from([0xff, 0x6f]);

// Environments open in this process, by real path, shared by their KVs.
const environments = new Map();

/**
 * Throws unless the data file in `folder`, if any, starts as LMDB's do: LMDB
 * trusts the file and crashes the process (SIGSEGV, SIGBUS) on garbage, an
 * empty or a truncated one. (It has no checksums: damage further in is not
 * seen.) A file of 0 bytes is a new environment's.
 */
function checkDataFile(folder) {
	const file = path.join(folder, DATA_FILE);
	let fd;
	try {
		fd = fs.openSync(file, "r");
	} catch (error) {
		if (error.code === "ENOENT") return;
		throw error;
	}
	try {
		const { size } = fs.fstatSync(fd);
		if (size === 0) return;
		const head = Buffer.alloc(MAGIC_OFFSET + 4);
		const read = fs.readSync(fd, head, 0, head.length, 0);
		if (size < META_PAGES_BYTES || read < head.length || head.readUInt32LE(MAGIC_OFFSET) !== MAGIC) {
			const error = new Error(`${file} is not an LMDB data file (${size} bytes, no LMDB header): refusing to open it`);
			error.code = "ERR_SQLITE_KV_CORRUPT";
			throw error;
		}
	} finally {
		fs.closeSync(fd);
	}
}

function acquireEnvironment(folder, mapSize) {
	const { open } = loadLmdb();
	const stat = fs.statSync(folder, { throwIfNoEntry: false });
	if (stat !== undefined && !stat.isDirectory()) throw new TypeError(`folder ${folder} is not a directory`);
	fs.mkdirSync(folder, { recursive: true });
	const key = fs.realpathSync(folder);
	let env = environments.get(key);
	if (!env) {
		checkDataFile(key);
		const root = open({
			path: key,
			// A folder, whatever its name: lmdb takes a path with an extension
			// ("store.lmdb") for a file's, and puts its lock file beside it.
			noSubdir: false,
			keyEncoding: "binary",
			encoding: "binary",
			compression: false,
			cache: false,
			// Durable on resolve: each commit is flushed before its promise resolves.
			noSync: false,
			overlappingSync: false,
			...(mapSize === undefined ? {} : { mapSize }),
		});
		env = { key, root, refs: 0, closing: null };
		environments.set(key, env);
	}
	env.refs++;
	return env;
}

async function releaseEnvironment(env) {
	if (--env.refs > 0) return;
	if (environments.get(env.key) === env) environments.delete(env.key);
	await env.root.close();
}

/**
 * A durable KV store for `open`, holding actor `options.actor`'s keys in the
 * LMDB environment at `folder` (created if missing).
 * @param {string} folder the LMDB environment's directory
 * @param {{ actor?: string, limits?: object, mapSize?: number }} [options]
 *   `actor`: whose keys these are (default ""), any string of at most 1024
 *   UTF-8 bytes; `limits`: override the actor KV limits; `mapSize`: LMDB's
 *   initial map size in bytes, 4096 to 2 ** 44 (it grows as needed).
 */
function createLmdbKv(folder, options = {}) {
	if (typeof folder !== "string" || folder === "") throw new TypeError("folder must be a non-empty string");
	if (options === null || typeof options !== "object") throw new TypeError("options must be an object");
	const actor = options.actor ?? "";
	if (typeof actor !== "string") throw new TypeError(`options.actor must be a string, got ${typeof actor}`);
	// Two ids UTF-8 cannot tell apart (lone surrogates become U+FFFD) would share keys.
	if (!actor.isWellFormed()) throw new TypeError("options.actor must be well-formed UTF-16: it has a lone surrogate");
	const actorBytes = Buffer.from(actor, "utf8");
	if (actorBytes.length > 1024) throw new RangeError("options.actor must be at most 1024 UTF-8 bytes");
	const check = createChecks(options.limits);
	const { mapSize } = options;
	if (mapSize !== undefined) {
		if (typeof mapSize !== "number") throw new TypeError(`options.mapSize must be a number, got ${typeof mapSize}`);
		// lmdb takes a bad size without a word and crashes the process on it.
		if (!Number.isInteger(mapSize) || mapSize < MIN_MAP_SIZE || mapSize > MAX_MAP_SIZE) {
			throw new RangeError(`options.mapSize must be an integer from ${MIN_MAP_SIZE} to 2 ** 44 (16 TiB), got ${mapSize}`);
		}
	}

	// Key prefix: the actor id's length (u16 big-endian) and bytes, so that no
	// actor's prefix is a prefix of another's.
	const prefix = Buffer.alloc(2 + actorBytes.length);
	prefix.writeUInt16BE(actorBytes.length, 0);
	actorBytes.copy(prefix, 2);
	const storedKey = (key) => {
		if (prefix.length + key.length > LMDB_MAX_KEY_SIZE) {
			throw new Error(
				`KV key of ${key.length} bytes is too long for LMDB (${LMDB_MAX_KEY_SIZE - prefix.length} bytes with this actor's prefix)`,
			);
		}
		return Buffer.concat([prefix, key]);
	};
	// This actor's stored keys, in order: those from `prefix` on that start with it.
	const ownKeys = function* () {
		for (const key of root.getKeys({ start: prefix })) {
			if (key.length < prefix.length || !key.subarray(0, prefix.length).equals(prefix)) return;
			yield Buffer.from(key);
		}
	};

	const env = acquireEnvironment(path.resolve(folder), mapSize);
	const { root } = env;
	let closed = false;
	const live = () => {
		if (closed) throw new Error("This LMDB KV store is closed");
	};
	// A value by its stored key (see storedKey, made when the call starts:
	// the caller may change its keys while the call waits).
	const read = (stored) => {
		const value = root.getBinary(stored);
		return value === undefined ? null : new Uint8Array(value.buffer, value.byteOffset, value.byteLength);
	};

	// Ownership (see the top of this file).
	const ownerKey = Buffer.concat([OWNER_PREFIX, prefix]);
	const currentEpoch = () => root.getBinary(ownerKey)?.readDoubleBE(0) ?? 0;
	const ownership = createOwnership(() =>
		root.transaction(() => {
			const next = currentEpoch() + 1;
			const bytes = Buffer.alloc(8);
			bytes.writeDoubleBE(next, 0);
			root.put(ownerKey, bytes);
			return next;
		}),
	);
	// A write of this KV: `apply` runs in an LMDB write transaction, if the
	// actor's epoch is still this KV's (checked first: lmdb commits what a
	// callback put before it threw).
	const fenced = async (apply) => {
		if (ownership.epoch === null) await ownership.own();
		await root.transaction(() => {
			if (currentEpoch() !== ownership.epoch) throw fencedError(actor);
			apply();
		});
	};

	return {
		actor,
		limits: check.limits,
		/** The environment's directory. */
		path: env.key,
		async get(key) {
			live();
			const k = storedKey(check.key(key));
			if (ownership.epoch === null) await ownership.own();
			live();
			return read(k);
		},
		async getBatch(keys) {
			live();
			const checked = check.keys("getBatch", keys).map(storedKey);
			if (ownership.epoch === null) await ownership.own();
			live();
			// Read synchronously, within lmdb's current read transaction: the
			// values are all of one committed state.
			return checked.map(read);
		},
		async put(key, value) {
			live();
			const k = storedKey(check.key(key));
			const v = Buffer.from(check.value(value)); // a copy: written later, in lmdb's batch
			await fenced(() => root.put(k, v));
		},
		async putBatch(entries) {
			live();
			// Checked and encoded in full before the transaction: all or nothing.
			// (Applied in order: the last value of a repeated key wins.)
			const encoded = check.entries(entries).map(([key, value]) => [storedKey(key), Buffer.from(value)]);
			if (encoded.length === 0) return;
			await fenced(() => {
				for (const [key, value] of encoded) root.put(key, value);
			});
		},
		async deleteBatch(keys) {
			live();
			const encoded = check.keys("deleteBatch", keys).map(storedKey);
			if (encoded.length === 0) return;
			await fenced(() => {
				for (const key of encoded) root.remove(key);
			});
		},
		/** Every [key, value] pair of this actor, in key order. */
		async entries() {
			live();
			return [...ownKeys()].map((key) => [new Uint8Array(key.subarray(prefix.length)), new Uint8Array(root.getBinary(key))]);
		},
		/** Deletes every key of this actor, in one transaction. */
		async clear() {
			live();
			await root.transaction(() => {
				for (const key of [...ownKeys()]) root.remove(key);
			});
		},
		/** Releases the environment (closed with its last KV). Idempotent. */
		async close() {
			if (closed) return;
			closed = true;
			await releaseEnvironment(env);
		},
	};
}

module.exports = { createLmdbKv, LMDB_MAX_KEY_SIZE };
