"use strict";

// This package (the work tree under test), with either engine: `native`
// (napi-rs addon) or `wasm`. Same KV for both; only `backend` differs. The
// native engine also runs on the real KV stores (`store`: LMDB, PostgreSQL;
// see ../stores.js), at no added latency, for the workloads in `workloads`.

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
					export: () => db.export(),
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

const STORE_WORKLOADS = ["W1", "W3", "W4", "W6"];

module.exports = {
	native: { id: "native", label: "native", usesKv: true, create: create("native") },
	wasm: { id: "wasm", label: "wasm", usesKv: true, create: create("wasm") },
	nativeLmdb: {
		id: "native-lmdb",
		label: "native+LMDB",
		usesKv: true,
		store: "lmdb",
		workloads: STORE_WORKLOADS,
		create: create("native"),
	},
	nativePg: { id: "native-pg", label: "native+PG", usesKv: true, store: "postgres", workloads: STORE_WORKLOADS, create: create("native") },
};
