"use strict";

// Engine selection. An engine is one SQLite database on a local file (or in
// memory) that reports which 4 KiB chunks changed; see lib/database.js for
// how it is driven and lib/persist.js for the commit sequence. Methods:
// loadChunks(tag, firstIndex, chunks), open(mainSize, journalSize,
// remoteFrom) (true: finish it with resume()), execute(sql, positional,
// named, collect, status) (seals at every point with no transaction open;
// may return null for a call that returns no columns, with its changes,
// lastInsertRowid and state in the Float64Array `status`), resume()
// (native: finishes on an engine thread what open() or execute() handed
// over; resolves with the result, or with a page request `{ id, chunks }`
// that next() and supply() answer; a large result comes in parts: its state
// has bit 8 set, and moreResults() returns each next part, then null: see
// lib/database.js #partedResult), setTimeout(ms), setResultBounds(values,
// bytes) (the most values, and bytes of TEXT and BLOB values, one call's
// results may hold: see lib/policy.txt's result_values and result_bytes),
// interrupt(),
// isAutocommit(), lastCallChanged(), lastCallRolledBack() (a statement of the
// last call failed and SQLite rolled back the transaction it ran in; read
// once),
// takeDelta(slab, at, meta) (the sealed
// delta into the caller's arrays: see persist.js; returns the number of
// chunks, NOTHING_PENDING or TOO_SMALL; an engine may keep a reference to
// `meta`, and write it in later takeDelta calls only: persistence never
// hands it out), journal(), ack(), restore(),
// export() (the file's bytes, or a promise of them: native reads the file on
// an engine thread), close() (or a promise of it: native closes at once when
// its local files are small, else on an engine thread), and the `backend`
// property; engines with local files (native) also have `localPath`, the
// main file's path (see the exit cleanup in open.js). Engines that
// page lazily (native: `pagesLazily`) also have unknownImages(),
// provideImages(indices, chunks) and remoteChunks(). Engines that seal large
// deltas off the JS thread (native) also have takePackedDelta(meta): the
// pending delta, if it was packed there, its bytes end to end in a buffer of
// the engine's own (no copy on this thread), `meta` filled as by takeDelta;
// or null (then takeDelta); packedJournal(), a promise of what journal()
// returns, read off the JS thread, as `{ size, indices, lengths, bytes }`:
// each chunk's index and length, and their bytes end to end; and
// journal(maxBytes), null (nothing read) if the journal's page images are
// more than `maxBytes`. Engines that may hold back a large seal's writes of
// their local file (native) also have writeBackLater(): writes them on an
// engine thread; called once a delta's bytes and before-images are taken,
// as its write to the KV starts.
//
// The native engine (napi-rs addon, see lib/native.js) comes first; when its binding is not
// installed or fails to load, the WASM engine (lib/wasm/) takes over. The
// `backend` option of open() ("native" or "wasm") or else the environment
// variable RIVETKIT_SQLITE_BACKEND forces one.

/** What takeDelta returns when no delta is pending. */
const NOTHING_PENDING = -1;
/** What takeDelta returns when `slab` or `meta` is too small: `meta[0]` bytes and `meta[1]` entries are needed. */
const TOO_SMALL = -2;

const { NativeEngine, checkBinding } = require("./native");

const BACKENDS = ["native", "wasm"];
const ENV_VAR = "RIVETKIT_SQLITE_BACKEND";

let native = null;

/** Loads the native addon once; remembers why it failed, if it did. */
function loadNative() {
	if (native === null) {
		try {
			const binding = require("../binding.js");
			checkBinding(binding);
			native = { binding, error: null };
		} catch (error) {
			native = { binding: null, error };
		}
	}
	return native;
}

/** The backend asked for: `{ backend, source }`, backend undefined when none was. */
function requestedBackend(option) {
	// null, as for open()'s other options, is "not given".
	if (option !== undefined && option !== null) {
		if (!BACKENDS.includes(option)) {
			throw new TypeError(`Unknown backend "${option}": expected "native" or "wasm"`);
		}
		return { backend: option, source: 'the "backend" option' };
	}
	const env = process.env[ENV_VAR]?.trim().toLowerCase();
	if (env) {
		if (!BACKENDS.includes(env)) {
			throw new TypeError(`Unknown backend "${process.env[ENV_VAR]}" in ${ENV_VAR}: expected "native" or "wasm"`);
		}
		return { backend: env, source: ENV_VAR };
	}
	return { backend: undefined, source: null };
}

// The general advice binding.js (the napi-rs loader) throws when no addon
// loaded; its causes are the attempts, the last one first.
const LOADER_ADVICE = "Cannot find native binding.";
// The loader's last attempts are napi-rs's WASI builds, which this package
// does not ship: their absence says nothing about why the addon failed.
const WASI_ATTEMPT = /^Cannot find module '(\.\/sqlite-vfs\.wasi\.cjs|@rivetkit\/sqlite-vfs-wasm32-wasi)'/;

/**
 * Why an engine did not load, for people: the error's message and its
 * causes', each cut to its first line (Node adds a require stack). For the
 * native loader's error, its attempts in the order they were made, without
 * its advice (which is about npm, not about why) nor the WASI attempts.
 */
function describeFailure(error) {
	const messages = [];
	let current = error;
	for (let depth = 0; current !== undefined && current !== null && depth < 16; depth++) {
		let message;
		try {
			message = current instanceof Error ? current.message : String(current);
		} catch {
			message = "(an error that cannot be shown)";
		}
		messages.push(String(message).split("\n", 1)[0]);
		current = current instanceof Error ? current.cause : undefined;
	}
	if (messages.length > 1 && messages[0].startsWith(LOADER_ADVICE)) {
		const attempts = messages.slice(1).filter((message) => !WASI_ATTEMPT.test(message));
		if (attempts.length > 0) return attempts.reverse().join("; then: ");
	}
	return messages.join(" <- caused by: ");
}

function loadFailure(summary, attempts) {
	const lines = attempts.map(([name, error]) => `  - ${name}: ${describeFailure(error)}`);
	const error = new Error(`${summary}. Tried:\n${lines.join("\n")}`, { cause: attempts[0][1] });
	error.code = "ERR_SQLITE_ENGINE_UNAVAILABLE";
	error.attempts = attempts.map(([backend, cause]) => ({ backend, error: cause }));
	return error;
}

async function createWasm() {
	const { createWasmEngine } = require("./wasm");
	return createWasmEngine();
}

/** Creates an engine for one database. Async: the WASM engine loads lazily. */
async function createEngine(backend) {
	const request = requestedBackend(backend);
	if (request.backend === "wasm") {
		try {
			return await createWasm();
		} catch (error) {
			throw loadFailure(`The WASM SQLite engine could not be loaded (forced by ${request.source})`, [["wasm", error]]);
		}
	}
	const { binding, error: nativeError } = loadNative();
	if (binding) return new NativeEngine(binding);
	if (request.backend === "native") {
		throw loadFailure(`The native SQLite engine could not be loaded (forced by ${request.source})`, [["native", nativeError]]);
	}
	try {
		return await createWasm();
	} catch (wasmError) {
		throw loadFailure("No SQLite engine could be loaded", [
			["native", nativeError],
			["wasm", wasmError],
		]);
	}
}

module.exports = { createEngine, NOTHING_PENDING, TOO_SMALL };
