// The real KV stores (LMDB, PostgreSQL) for tests: whether each can run here,
// and a factory of fresh actor KVs on each, in one LMDB environment or one
// PostgreSQL cluster per test process.

import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { createRequire } from "node:module";

import { postgresUnavailable, startPostgres } from "./postgres.mjs";

const require = createRequire(import.meta.url);
const runtime = process.versions.bun ? `Bun ${process.versions.bun}` : `Node ${process.versions.node}`;

/** Why the LMDB store cannot run here, or null. */
export function lmdbUnavailable() {
	try {
		require("lmdb");
		return null;
	} catch (error) {
		return `the lmdb package does not load under ${runtime}: ${error.message.split("\n")[0]}`;
	}
}

/** Why `store` ("lmdb" or "postgres") cannot run here, or null. */
export function storeUnavailable(store) {
	if (store === "lmdb") return lmdbUnavailable();
	if (store === "postgres") return postgresUnavailable() ?? (hasPg() ? null : "the pg package is not installed");
	throw new Error(`unknown KV store "${store}"`);
}

function hasPg() {
	try {
		require("pg");
		return true;
	} catch {
		return false;
	}
}

let counter = 0;
const actorId = () => `test-${process.pid}-${++counter}`;

/** A temporary directory removed when the process exits. */
export function tempDir(prefix) {
	const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
	process.once("exit", () => fs.rmSync(dir, { recursive: true, force: true }));
	return dir;
}

/**
 * Resolves to `(options) => kv`: a fresh actor's KV on `store` for each call.
 * PostgreSQL: the cluster named by SQLITE_VFS_TEST_PG_HOST (a socket
 * directory, set by scripts/test.js), or one started for this process.
 */
export async function storeFactory(store) {
	if (store === "lmdb") {
		const { createLmdbKv } = require("../../lib/kv/lmdb.js");
		let folder = null; // made on first use
		return (options = {}) => {
			folder ??= tempDir("sqlite-vfs-lmdb-");
			return createLmdbKv(folder, { ...options, actor: actorId() });
		};
	}
	if (store === "postgres") {
		const pg = require("pg");
		const { createPostgresKv } = require("../../lib/kv/postgres.js");
		let connection;
		if (process.env.SQLITE_VFS_TEST_PG_HOST) {
			connection = {
				host: process.env.SQLITE_VFS_TEST_PG_HOST,
				port: Number(process.env.SQLITE_VFS_TEST_PG_PORT || 5432),
				user: "postgres",
				database: "postgres",
			};
		} else {
			const cluster = await startPostgres();
			// Killed (not stopped) at exit, since exit handlers cannot wait.
			cluster.unref();
			process.once("exit", () => {
				cluster.killNow();
				fs.rmSync(cluster.dir, { recursive: true, force: true });
			});
			connection = cluster.connection();
		}
		const pool = new pg.Pool({ ...connection, max: 8, allowExitOnIdle: true });
		return (options = {}) => createPostgresKv(pool, actorId(), options);
	}
	throw new Error(`unknown KV store "${store}"`);
}
