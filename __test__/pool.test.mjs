import { test, describe } from "node:test";
import assert from "node:assert/strict";
import { createRequire } from "node:module";

import * as esm from "../index.mjs";
import { SqliteVfsPool, PooledSqliteHandle, createMemoryKv, open } from "../index.mjs";
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

	test("an actor acquired again while its release runs, on another instance, opens after the old database closed", async () => {
		// rivetkit makes a new KV object per open, over the actor's store.
		const store = createMemoryKv();
		const kvOf = () => ({
			get: (key) => store.get(key),
			getBatch: (keys) => store.getBatch(keys),
			put: (key, value) => store.put(key, value),
			putBatch: (entries) => store.putBatch(entries),
			deleteBatch: (keys) => store.deleteBatch(keys),
		});
		// Instance X holds a, b, c; Y holds d, e. With b and c gone, a comes
		// back on Y, the fullest with room.
		const pool = new SqliteVfsPool({ actorsPerInstance: 3, idleDestroyMs: 10 });
		const handles = {};
		for (const id of ["a", "b", "c", "d", "e"]) handles[id] = await pool.acquire(id);
		await pool.release("b");
		await pool.release("c");
		const db = await handles.a.open("a", kvOf(), { backend: BACKEND });
		await db.exec("CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT)");
		const write = db.exec(
			"INSERT INTO t(v) WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 50000) SELECT 'old-' || x FROM c",
		);
		const released = pool.release("a");
		const again = await pool.acquire("a");
		assert.notEqual(again, handles.a);
		const db2 = await again.open("a", kvOf(), { backend: BACKEND });
		// The old database closed first: its write is durable and seen.
		assert.equal(db.closed, true);
		await write;
		await released;
		assert.deepEqual((await db2.query("SELECT count(*) FROM t")).rows, [[50000]]);
		await db2.run("INSERT INTO t(v) VALUES ('new')");
		await pool.shutdown();
		const check = await open("check", store, { backend: BACKEND });
		assert.deepEqual((await check.query("SELECT count(*) FROM t")).rows, [[50001]]);
		assert.deepEqual((await check.query("PRAGMA integrity_check")).rows, [["ok"]]);
		await check.close();
	});

	test("bad config is rejected", () => {
		assert.throws(() => new SqliteVfsPool({ actorsPerInstance: 0 }), /positive integer/);
		assert.throws(() => new SqliteVfsPool({ actorsPerInstance: 1, idleDestroyMs: -1 }), /idleDestroyMs/);
	});
});
