// Type checks of the published typings, as an ES module user imports them
// (`npm run lint` runs tsc over this folder; nothing here runs). Lines after
// `@ts-expect-error` must fail to type-check: tsc fails if one passes.

import sqliteVfs, {
	createMemoryKv,
	type Database,
	DEFAULT_KV_LIMITS,
	type IDatabase,
	type ISqliteVfs,
	type KvVfsOptions,
	open,
	type QueryResult,
	type RunResult,
	type SqliteBindings,
	SqliteError,
	SqliteVfs,
	SqliteVfsPool,
	type SqliteValue,
} from "@rivetkit/sqlite-vfs";
import { createLmdbKv, LMDB_MAX_KEY_SIZE, type LmdbKv } from "@rivetkit/sqlite-vfs/kv/lmdb";
import { createPostgresKv, migrate, type PostgresKv } from "@rivetkit/sqlite-vfs/kv/postgres";

export async function esm(): Promise<void> {
	const kv = createMemoryKv({ limits: { maxKeysPerCall: 64 } });
	const db: Database = await open("actor.db", kv, { backend: "native", timeoutMs: 1_000, preload: false, maxResultValues: 1_000_000, maxResultBytes: 1_000_000 });
	const chosen: Database = await open("chosen.db", createMemoryKv(), { backend: null });
	void chosen;
	await db.exec("CREATE TABLE t (a, b)", (row: SqliteValue[], columns: string[]) => {
		void row;
		void columns;
	});
	const run: RunResult = await db.run("INSERT INTO t VALUES (?, ?)", [1, new Uint8Array([1])]);
	const id: number | bigint = run.lastInsertRowid;
	const changes: number = run.changes;
	await db.run("INSERT INTO t VALUES (:a, $b)", { a: 1n, $b: true });
	await db.run("INSERT INTO t VALUES (?, ?)", [[0, 255], null]);
	await db.run("INSERT INTO t VALUES (?, ?)", [1, "a"] as const);
	await db.query("SELECT 1", null);
	const result: QueryResult = await db.query("SELECT a, b FROM t WHERE a = ?", ["x"]);
	const first: SqliteValue | undefined = result.rows[0]?.[0];
	const file: Uint8Array = await db.export();
	const backend: "native" | "wasm" = db.backend;
	const flags: boolean[] = [db.closed, db.inTransaction];
	db.interrupt();
	await db.close();
	void [id, changes, first, file, backend, flags, DEFAULT_KV_LIMITS.maxValueSize];

	const custom: KvVfsOptions = {
		get: async () => null,
		getBatch: async (keys) => keys.map(() => null),
		put: async () => {},
		putBatch: async () => {},
		deleteBatch: async () => {},
		onError: (error) => void error,
	};
	const vfs = new SqliteVfs({ wasm: "2.2.1 took a module" });
	await vfs.open("a.db", custom, { timeoutMs: null });
	await vfs.closeFile("a.db");
	const { allSucceeded }: { allSucceeded: boolean } = await vfs.forceCloseByFileName("a.db");
	await vfs.forceCloseAll();
	await vfs.destroy();
	void allSucceeded;

	// A handle and a VFS written against 2.2.1's interfaces still implement them.
	class Tracked implements IDatabase {
		readonly fileName = "tracked";
		constructor(private inner: Database) {}
		exec(sql: string, callback?: (row: unknown[], columns: string[]) => void): Promise<void> {
			return this.inner.exec(sql, callback);
		}
		async run(sql: string, params?: SqliteBindings): Promise<void> {
			await this.inner.run(sql, params);
		}
		async query(sql: string, params?: SqliteBindings): Promise<{ rows: unknown[][]; columns: string[] }> {
			return this.inner.query(sql, params);
		}
		close(): Promise<void> {
			return this.inner.close();
		}
	}
	const customVfs: ISqliteVfs = {
		open: async (fileName, options) => new Tracked(await vfs.open(fileName, options)),
		destroy: () => vfs.destroy(),
	};
	const asInterface: IDatabase = db;
	void [customVfs, asInterface];
	const pool = new SqliteVfsPool({ actorsPerInstance: 50, idleDestroyMs: 1_000 });
	void new SqliteVfsPool({ actorsPerInstance: 1, idleDestroyMs: null });
	const handle = await pool.acquire("actor");
	const pooled: Database = await handle.open("actor", kv);
	void pooled;
	await pool.release("actor");
	await pool.shutdown();
	void [pool.instanceCount, pool.actorCount];

	try {
		await db.query("SELECT nope");
	} catch (error) {
		if (error instanceof SqliteError) {
			const code: string = error.code;
			const name: "SqliteError" = error.name;
			void [code, name, error.cause];
		}
	}

	const lmdb: LmdbKv = createLmdbKv("/tmp/x", { actor: "a", mapSize: 1 << 20 });
	const pg: PostgresKv = createPostgresKv({ query: async () => ({ rows: [] }) }, "actor", { table: "kv" });
	await migrate({ query: async () => ({ rows: [] }) });
	void [lmdb.path, pg.actorId, LMDB_MAX_KEY_SIZE, sqliteVfs.open === open];

	// @ts-expect-error: the KV store is required.
	await open("x");
	// @ts-expect-error: no such engine.
	await open("x", kv, { backend: "sqljs" });
	// @ts-expect-error: an object does not bind.
	await db.run("SELECT ?", [{}]);
	// @ts-expect-error: a value may be of any of SQLite's types.
	const n: number = (await db.query("SELECT 1")).rows[0][0];
	void n;
	// @ts-expect-error: Database has no public constructor.
	new (await import("@rivetkit/sqlite-vfs")).Database();
	// @ts-expect-error: a pool needs its config.
	new SqliteVfsPool();
}
