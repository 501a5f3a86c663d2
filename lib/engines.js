"use strict";

// Engine selection. An engine is one SQLite database on a local file (or in
// memory) that reports which 4 KiB chunks changed; see lib/database.js for
// how it is driven. Methods: loadChunks(tag, firstIndex, chunks),
// open(mainSize, journalSize), execute(sql, positional, named, collect),
// isAutocommit(), seal(), ack(), restore(), export(), close(), and the
// `backend` property.

let native = null;

/** Loads the native addon once; remembers why it failed, if it did. */
function loadNative() {
	if (native === null) {
		try {
			const binding = require("../binding.js");
			if (!Object.hasOwn(binding.NativeDatabase.prototype, "backend")) {
				Object.defineProperty(binding.NativeDatabase.prototype, "backend", { value: "native" });
			}
			native = { binding, error: null };
		} catch (error) {
			native = { binding: null, error };
		}
	}
	return native;
}

/** Creates an engine for one database. Async: the WASM engine loads lazily. */
async function createEngine(backend) {
	if (backend !== undefined && backend !== "native") {
		throw new TypeError(`Unknown backend "${backend}"`);
	}
	const { binding, error } = loadNative();
	if (!binding) {
		throw new Error(`The native SQLite engine could not be loaded: ${error?.message ?? error}`, { cause: error });
	}
	return new binding.NativeDatabase();
}

module.exports = { createEngine, loadNative };
