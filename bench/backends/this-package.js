"use strict";

// This package (the work tree under test), with either engine: `native`
// (napi-rs addon) or `wasm`. Same KV for both; only `backend` differs.

const path = require("node:path");

const ROOT = path.join(__dirname, "..", "..");

function create(engine) {
	return async function createBackend() {
		const { open } = require(ROOT);
		return {
			// The WASM engine runs calls on the JS thread: only a deadline can
			// stop one there.
			supports: { timeout: true, interrupt: engine === "native" },
			async open(name, kv, options = {}) {
				const db = await open(name, kv, { backend: engine, ...options });
				if (db.backend !== engine) throw new Error(`asked for the ${engine} engine, got ${db.backend}`);
				return {
					exec: (sql) => db.exec(sql),
					run: (sql, params) => db.run(sql, params),
					query: async (sql, params) => (await db.query(sql, params)).rows,
					interrupt: () => db.interrupt(),
					close: () => db.close(),
				};
			},
			async materialize() {
				// Reads straight from the KV.
			},
			async destroy() {},
		};
	};
}

module.exports = {
	native: { id: "native", label: "native", usesKv: true, create: create("native") },
	wasm: { id: "wasm", label: "wasm", usesKv: true, create: create("wasm") },
};
