import { test, describe } from "node:test";
import assert from "node:assert/strict";
import { createRequire } from "node:module";

import * as esm from "../index.mjs";
import { SqliteVfs, SqliteVfsPool, PooledSqliteHandle, createMemoryKv, open } from "../index.mjs";
import { BACKEND } from "./helpers/db.mjs";

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** A KV over `store` whose reads answer after 30 ms. */
function slowReads(store) {
	const later = async (read) => {
		await sleep(30);
		return read();
	};
	return {
		get: (key) => later(() => store.get(key)),
		getBatch: (keys) => later(() => store.getBatch(keys)),
		put: (key, value) => store.put(key, value),
		putBatch: (entries) => store.putBatch(entries),
		deleteBatch: (keys) => store.deleteBatch(keys),
	};
}

/** A KV over `store` whose putBatch calls answer `ms` later while `slow()` says so. */
function slowWrites(store, ms, slow) {
	return {
		get: (key) => store.get(key),
		getBatch: (keys) => store.getBatch(keys),
		put: (key, value) => store.put(key, value),
		putBatch: async (entries) => {
			if (slow()) await sleep(ms);
			return store.putBatch(entries);
		},
		deleteBatch: (keys) => store.deleteBatch(keys),
	};
}

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

	test("an actor's handle that opened nothing, released meanwhile, does not let the next open skip the old close", async () => {
		const store = createMemoryKv();
		let slow = false;
		const kvOf = () => slowWrites(store, 200, () => slow);
		const pool = new SqliteVfsPool({ actorsPerInstance: 1, idleDestroyMs: 0 });
		const first = await pool.acquire("x");
		const db = await first.open("x", kvOf(), { backend: BACKEND });
		await db.exec("CREATE TABLE t(v)");
		slow = true;
		const write = db.run("INSERT INTO t VALUES ('old')");
		const released = pool.release("x"); // closes db after its write (200 ms)
		await pool.acquire("y"); // takes x's place: x comes back on a new instance
		await pool.acquire("x");
		await pool.release("x"); // a handle that opened nothing
		slow = false;
		const third = await pool.acquire("x");
		const db3 = await third.open("x", kvOf(), { backend: BACKEND });
		// The old database closed first: its write, which resolves, is seen and kept.
		assert.equal(db.closed, true);
		assert.deepEqual(await write, { changes: 1, lastInsertRowid: 1 });
		await released;
		assert.deepEqual((await db3.query("SELECT v FROM t")).rows, [["old"]]);
		await db3.run("INSERT INTO t VALUES ('new')");
		await pool.shutdown();
		const check = await open("check", store, { backend: BACKEND });
		assert.deepEqual((await check.query("SELECT v FROM t ORDER BY rowid")).rows, [["old"], ["new"]]);
		await check.close();
	});

	test("an actor released while its database is still opening opens again at once", async () => {
		const store = createMemoryKv();
		const pool = new SqliteVfsPool({ actorsPerInstance: 2 });
		const first = (await pool.acquire("a")).open("a", slowReads(store), { backend: BACKEND }).then(
			() => "opened",
			(error) => error.message,
		);
		await sleep(5);
		await pool.release("a");
		// Woken at once: its open waits for the first one, which gives up.
		const db = await (await pool.acquire("a")).open("a", slowReads(store), { backend: BACKEND });
		assert.match(await first, /released/);
		await db.exec("CREATE TABLE t(v); INSERT INTO t VALUES (1)");
		await pool.shutdown();
		assert.equal(db.closed, true);
	});

	test("SqliteVfs: closeFile() and destroy() close a database that is still opening", async () => {
		const vfs = new SqliteVfs();
		const opening = vfs.open("a", slowReads(createMemoryKv()), { backend: BACKEND });
		await sleep(5);
		await vfs.closeFile("a");
		assert.equal((await opening).closed, true);
		const other = vfs.open("b", slowReads(createMemoryKv()), { backend: BACKEND });
		const settled = other.then(
			(db) => db.closed,
			() => "rejected",
		);
		await sleep(5);
		await vfs.destroy();
		// By the time destroy() resolves, that database is closed (or its open rejected).
		assert.ok([true, "rejected"].includes(await Promise.race([settled, "pending"])));
	});

	test("SqliteVfs: closeFile(), forceCloseByFileName() and forceCloseAll() close an open that waits for the name's last database to close", async () => {
		for (const how of ["closeFile", "forceCloseByFileName", "forceCloseAll"]) {
			const vfs = new SqliteVfs();
			const inner = createMemoryKv();
			// Writes answer 50 ms late once the table is made.
			let slow = false;
			const kv = slowWrites(inner, 50, () => slow);
			const first = await vfs.open("a", kv, { backend: BACKEND });
			await first.exec("CREATE TABLE t(v)");
			slow = true;
			const write = first.run("INSERT INTO t VALUES (1)");
			const closing = first.close();
			// The name's database is closing: this open waits for it.
			const second = vfs.open("a", kv, { backend: BACKEND });
			await sleep(10);
			if (how === "forceCloseByFileName") assert.deepEqual(await vfs.forceCloseByFileName("a"), { allSucceeded: true });
			else await vfs[how]("a");
			assert.equal((await second).closed, true, how);
			await Promise.all([write, closing]);
			// The name is free again, and the write is there.
			const again = await vfs.open("a", kv, { backend: BACKEND });
			assert.deepEqual((await again.query("SELECT v FROM t")).rows, [[1]], how);
			await vfs.destroy();
		}
	});

	test("SqliteVfs: closeFile() and forceCloseAll() made in the same turn as the open close it", async () => {
		const vfs = new SqliteVfs();
		const a = vfs.open("a", createMemoryKv(), { backend: BACKEND });
		await vfs.closeFile("a");
		assert.equal((await a).closed, true);
		const b = vfs.open("b", createMemoryKv(), { backend: BACKEND });
		// A second open of the name, refused, does not hide the first from closeFile().
		await assert.rejects(vfs.open("b", createMemoryKv(), { backend: BACKEND }), { code: "SQLITE_BUSY" });
		await vfs.forceCloseAll();
		assert.equal((await b).closed, true);
		// The names are free again.
		const again = await vfs.open("a", createMemoryKv(), { backend: BACKEND });
		assert.equal(again.closed, false);
		await vfs.destroy();
		assert.equal(again.closed, true);
	});

	test("bad config is rejected; idleDestroyMs takes what 2.2.1 took", async () => {
		assert.throws(() => new SqliteVfsPool({ actorsPerInstance: 0 }), /positive integer/);
		assert.throws(() => new SqliteVfsPool({ actorsPerInstance: 1, idleDestroyMs: "10" }), /idleDestroyMs/);
		assert.throws(() => new SqliteVfsPool({ actorsPerInstance: 1, idleDestroyMs: Number.NaN }), /idleDestroyMs/);
		// null: the default; a negative delay: none; Infinity, or longer than a
		// timer can wait: idle instances stay.
		for (const [idleDestroyMs, left] of [
			[null, 1],
			[-1, 0],
			[Number.POSITIVE_INFINITY, 1],
			[2 ** 31, 1],
			[40 * 24 * 3600 * 1000, 1],
		]) {
			const pool = new SqliteVfsPool({ actorsPerInstance: 1, idleDestroyMs });
			await pool.acquire("a");
			await pool.release("a");
			await sleep(20);
			assert.equal(pool.instanceCount, left, `idleDestroyMs ${idleDestroyMs}`);
			await pool.shutdown();
		}
	});
});
