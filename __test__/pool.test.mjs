import { test, describe } from "node:test";
import assert from "node:assert/strict";
import { createRequire } from "node:module";

import * as esm from "../index.mjs";
import { SqliteVfsPool, PooledSqliteHandle, createMemoryKv } from "../index.mjs";
import { BACKEND } from "./helpers/db.mjs";

describe("SqliteVfsPool (the surface rivetkit uses)", () => {
	test("ESM and CommonJS expose the full 2.2.1 surface", () => {
		const cjs = createRequire(import.meta.url)("../index.js");
		for (const name of ["Database", "SqliteVfs", "SqliteVfsPool", "PooledSqliteHandle", "SqliteError", "open", "createMemoryKv"]) {
			assert.equal(typeof esm[name], "function", `ESM ${name}`);
			assert.equal(cjs[name], esm[name], `CJS ${name}`);
		}
	});

	test("acquire is sticky, release closes, bin-packing fills instances", async () => {
		const pool = new SqliteVfsPool({ actorsPerInstance: 2, idleDestroyMs: 10 });
		const a = await pool.acquire("a");
		assert.ok(a instanceof PooledSqliteHandle);
		assert.equal(await pool.acquire("a"), a);
		await pool.acquire("b");
		await pool.acquire("c");
		assert.equal(pool.actorCount, 3);
		assert.equal(pool.instanceCount, 2);
		const kv = createMemoryKv();
		const db = await a.open("a", kv, { backend: BACKEND });
		await db.exec("CREATE TABLE t(v); INSERT INTO t VALUES (1)");
		// The same actor cannot have its database open twice.
		await assert.rejects(a.open("a", createMemoryKv(), { backend: BACKEND }), /already open/);
		await pool.release("a");
		assert.equal(db.closed, true);
		assert.equal(pool.actorCount, 2);
		await assert.rejects(a.open("a", kv), /released/);
		// Waking up: a new handle, the data is still in the KV.
		const again = await pool.acquire("a");
		assert.notEqual(again, a);
		const db2 = await again.open("a", kv, { backend: BACKEND });
		assert.deepEqual((await db2.query("SELECT v FROM t")).rows, [[1]]);
		// rivetkit's sleep: close, then destroy (idempotent).
		await db2.close();
		await again.destroy();
		await again.destroy();
		await pool.release("b");
		await pool.release("c");
		await new Promise((r) => setTimeout(r, 30));
		assert.equal(pool.instanceCount, 0);
		await pool.shutdown();
		await assert.rejects(pool.acquire("d"), /shutting down/);
	});

	test("shutdown closes every database", async () => {
		const pool = new SqliteVfsPool({ actorsPerInstance: 10 });
		const dbs = [];
		for (const id of ["x", "y"]) dbs.push(await (await pool.acquire(id)).open(id, createMemoryKv(), { backend: BACKEND }));
		await pool.shutdown();
		assert.ok(dbs.every((db) => db.closed));
		assert.equal(pool.actorCount, 0);
	});

	test("bad config is rejected", () => {
		assert.throws(() => new SqliteVfsPool({ actorsPerInstance: 0 }), /positive integer/);
		assert.throws(() => new SqliteVfsPool({ actorsPerInstance: 1, idleDestroyMs: -1 }), /idleDestroyMs/);
	});
});
