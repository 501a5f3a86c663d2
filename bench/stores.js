"use strict";

// The real KV stores the benchmark can put under this package: LMDB (a fresh
// environment in a temporary folder per task) and PostgreSQL (the throwaway
// cluster bench/run.js starts, named by SQLITE_VFS_BENCH_PG_HOST; one table,
// a fresh actor per database). Each `newKv()` is a fresh, empty actor KV.

const fs = require("node:fs");
const os = require("node:os");
const path = require("node:path");

async function openStore(store) {
	if (store === "lmdb") {
		const { createLmdbKv } = require("../lib/kv/lmdb");
		const folder = fs.mkdtempSync(path.join(os.tmpdir(), "sqlite-vfs-bench-lmdb-"));
		const kvs = [];
		let n = 0;
		return {
			newKv() {
				const kv = createLmdbKv(folder, { actor: `bench-${++n}` });
				kvs.push(kv);
				return kv;
			},
			async close() {
				for (const kv of kvs) await kv.close();
				fs.rmSync(folder, { recursive: true, force: true });
			},
		};
	}
	if (store === "postgres") {
		const host = process.env.SQLITE_VFS_BENCH_PG_HOST;
		if (!host) throw new Error("no PostgreSQL cluster (SQLITE_VFS_BENCH_PG_HOST is not set)");
		const pg = require("pg");
		const { createPostgresKv, migrate } = require("../lib/kv/postgres");
		const pool = new pg.Pool({
			host,
			port: Number(process.env.SQLITE_VFS_BENCH_PG_PORT || 5432),
			user: "postgres",
			database: "postgres",
			max: 4,
		});
		pool.on("error", () => {});
		await migrate(pool);
		let n = 0;
		return {
			newKv: () => createPostgresKv(pool, `bench-${process.pid}-${++n}`, { migrate: false }),
			close: () => pool.end(),
		};
	}
	throw new Error(`unknown store "${store}"`);
}

module.exports = { openStore };
