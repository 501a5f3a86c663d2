"use strict";

// The WebAssembly engine: the fallback when the native addon cannot load, or
// when asked for (`backend: "wasm"`, RIVETKIT_SQLITE_BACKEND=wasm). All its
// databases share one sqlite3 WASM module, loaded on the first open.

const { loadSqlite } = require("./sqlite");
const { WasmDatabase } = require("./engine");

/** Creates a WASM engine for one database (loads the shared module first). */
async function createWasmEngine() {
	const api = await loadSqlite();
	return new WasmDatabase(api);
}

module.exports = { createWasmEngine };
