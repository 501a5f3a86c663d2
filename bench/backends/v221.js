"use strict";

// The published competitor, @rivetkit/sqlite-vfs 2.2.1 (installed as the
// devDependency alias `sqlite-vfs-2.2.1`): SQLite in WASM, a VFS that reads
// and writes KV chunks page by page. One SqliteVfs instance (one WASM module)
// serves every database a process opens, as its README suggests.

async function create() {
	const { SqliteVfs } = require("sqlite-vfs-2.2.1");
	const vfs = new SqliteVfs();
	return {
		async open(name, kv) {
			const db = await vfs.open(name, kv);
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
		async destroy() {
			await vfs.destroy();
		},
	};
}

module.exports = { id: "v2.2.1", label: "2.2.1", usesKv: true, create };
