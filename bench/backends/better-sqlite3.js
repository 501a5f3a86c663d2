"use strict";

// The native ceiling: better-sqlite3 (synchronous, no KV at all), on a local
// file (journal_mode=WAL, synchronous=NORMAL: the usual production setting)
// and in memory. Calls are wrapped in async functions so that workloads
// await them like every other backend's. Statements are prepared once per
// SQL text. A database image that a workload placed in the KV is copied to
// the file (or deserialized into memory) by materialize(), before timing.
// The addon is the one bench/setup.js built for the running Node.

const fs = require("node:fs");
const os = require("node:os");
const path = require("node:path");
const { readFile } = require("../kv-file");
const { nativeBindingPath, PACKAGE } = require("../setup");

function wrap(db) {
	const statements = new Map();
	const prepare = (sql) => {
		let statement = statements.get(sql);
		if (statement === undefined) {
			statement = db.prepare(sql);
			statements.set(sql, statement);
		}
		return statement;
	};
	const bind = (params) => (params === undefined ? [] : [params]);
	return {
		async exec(sql) {
			db.exec(sql);
		},
		async run(sql, params) {
			prepare(sql).run(...bind(params));
		},
		async query(sql, params) {
			return prepare(sql)
				.raw(true)
				.all(...bind(params));
		},
		async export() {
			return db.serialize();
		},
		async close() {
			db.close();
		},
	};
}

function create(mode) {
	return async function createBackend() {
		const Database = require(PACKAGE);
		// The addon bench/setup.js built for this Node, or null: the package's own (see there).
		const nativeBinding = nativeBindingPath();
		if (nativeBinding !== null && !fs.existsSync(nativeBinding)) {
			throw new Error(`better-sqlite3 is not built for Node ${process.version}: run node bench/setup.js`);
		}
		const options = nativeBinding === null ? {} : { nativeBinding };
		const dir = mode === "file" ? fs.mkdtempSync(path.join(os.tmpdir(), "bench-bs3-")) : null;
		const images = new Map();
		const fileOf = (name) => path.join(dir, `${encodeURIComponent(name)}.db`);
		return {
			async open(name) {
				let db;
				if (mode === "file") {
					db = new Database(fileOf(name), options);
					db.pragma("journal_mode = WAL");
					db.pragma("synchronous = NORMAL");
				} else {
					const image = images.get(name);
					db = new Database(image ?? ":memory:", options);
				}
				return wrap(db);
			},
			async materialize(name, kv) {
				const bytes = await readFile(kv);
				if (bytes === null) return;
				if (mode === "file") fs.writeFileSync(fileOf(name), bytes);
				else images.set(name, Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength));
			},
			async destroy() {
				if (dir !== null) fs.rmSync(dir, { recursive: true, force: true });
			},
		};
	};
}

module.exports = {
	bs3File: { id: "bs3-file", label: "bs3 file", usesKv: false, create: create("file") },
	bs3Mem: { id: "bs3-mem", label: "bs3 mem", usesKv: false, create: create("memory") },
};
