"use strict";

// This package (the work tree under test), with either engine: `native`
// (napi-rs addon) or `wasm`. Same KV for both; only `backend` differs.

const path = require("node:path");

const ROOT = path.join(__dirname, "..", "..");

function create(engine) {
	return async function createBackend() {
		const { open } = require(ROOT);
		return {
			async open(name, kv) {
				const db = await open(name, kv, { backend: engine });
				if (db.backend !== engine) throw new Error(`asked for the ${engine} engine, got ${db.backend}`);
				return {
					exec: (sql) => db.exec(sql),
					run: (sql, params) => db.run(sql, params),
					query: async (sql, params) => (await db.query(sql, params)).rows,
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
