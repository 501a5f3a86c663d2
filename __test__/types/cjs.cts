// Type checks of the published typings, as a CommonJS user requires them
// (see esm.mts).

import sqliteVfs = require("@rivetkit/sqlite-vfs");
import lmdb = require("@rivetkit/sqlite-vfs/kv/lmdb");
import postgres = require("@rivetkit/sqlite-vfs/kv/postgres");

export async function cjs(): Promise<void> {
	const db: sqliteVfs.Database = await sqliteVfs.open("actor.db", sqliteVfs.createMemoryKv());
	const result: sqliteVfs.QueryResult = await db.query("SELECT 1");
	void [result, lmdb.createLmdbKv, postgres.createPostgresKv];
	// @ts-expect-error: timeoutMs is a number of milliseconds.
	await sqliteVfs.open("x", sqliteVfs.createMemoryKv(), { timeoutMs: "1s" });
	// @ts-expect-error: maxResultValues is a number.
	await sqliteVfs.open("x", sqliteVfs.createMemoryKv(), { maxResultValues: "1e6" });
	// @ts-expect-error: maxResultBytes is a number.
	await sqliteVfs.open("x", sqliteVfs.createMemoryKv(), { maxResultBytes: "1e6" });
}
