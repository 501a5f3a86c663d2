import { test, describe } from "node:test";
import assert from "node:assert/strict";

import { createTestKv, hex, kvDump } from "./helpers/kv.mjs";
import { open, rows, snapshot } from "./helpers/db.mjs";

const META = "08010000";
const chunkKey = (i) => `08010100${i.toString(16).padStart(8, "0")}`;
const metaValue = (size) => {
	const b = Buffer.alloc(10);
	b.writeUInt16LE(1, 0);
	b.writeBigUInt64LE(BigInt(size), 2);
	return b.toString("hex");
};

/** Closes `db`, then checks that `kv` opens to the same rows and the same file. */
async function reopensWhole(db, kv) {
	const file = await db.export();
	const expected = await snapshot(db);
	await db.close();
	const again = await open(kv);
	assert.deepEqual(await snapshot(again), expected);
	assert.deepEqual(Buffer.from(await again.export()), Buffer.from(file));
	await again.close();
}

/** Fills `t` with about `mb` MiB of rows. */
async function fill(db, mb) {
	await db.exec("CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT)");
	await db.run(
		"WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?) INSERT INTO t(v) SELECT printf('%.1000c', 'x') || i FROM n",
		[mb * 1000],
	);
}

describe("persistence", () => {
	test("data survives close and reopen with a fresh open", async () => {
		const kv = createTestKv();
		const db = await open(kv);
		await db.exec("CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT); INSERT INTO t(v) VALUES ('a'), ('b')");
		await db.close();
		const again = await open(kv);
		assert.deepEqual(await rows(again, "SELECT id, v FROM t"), [
			[1, "a"],
			[2, "b"],
		]);
		await again.close();
	});

	test("a resolved write is durable without close (copy the KV, open the copy)", async () => {
		const kv = createTestKv();
		const db = await open(kv);
		await db.exec("CREATE TABLE t(v)");
		for (let i = 0; i < 5; i++) {
			await db.run("INSERT INTO t VALUES (?)", [i]);
			const copy = await open(kv.clone());
			assert.equal((await rows(copy, "SELECT count(*) FROM t"))[0][0], i + 1);
			await copy.close();
		}
		await db.close();
	});

	test("keys and metadata are byte-exact (2.2.1 format)", async () => {
		const kv = createTestKv();
		const db = await open(kv);
		await db.exec("CREATE TABLE t(v)");
		const dump = kvDump(kv);
		// Two pages (the schema and the table's root): two chunks and the metadata.
		assert.deepEqual(Object.keys(dump).sort(), [META, chunkKey(0), chunkKey(1)]);
		assert.equal(dump[META], metaValue(8192));
		assert.equal(dump[META].length, 20);
		const file = await db.export();
		assert.equal(dump[chunkKey(0)], hex(file.subarray(0, 4096)));
		assert.equal(Buffer.from(file.subarray(0, 16)).toString("latin1"), "SQLite format 3\0");
		// Page size 4096 in the header (big-endian u16 at offset 16).
		assert.equal((file[16] << 8) | file[17], 4096);
		await db.close();
	});

	test("a new database writes nothing until its first change", async () => {
		const kv = createTestKv();
		const db = await open(kv);
		await db.query("SELECT 1");
		await db.query("PRAGMA user_version");
		assert.equal(kv.mutations().length, 0);
		await db.close();
		assert.equal(kv.inner.size, 0);
	});

	test("a one-row UPDATE on a multi-MB database writes at most 4 keys in one call", async () => {
		const kv = createTestKv();
		const db = await open(kv);
		await fill(db, 4);
		assert.ok((await db.export()).length > 4_000_000);
		kv.resetCounts();
		const { changes } = await db.run("UPDATE t SET v = 'changed' WHERE id = 1234");
		assert.equal(changes, 1);
		const writes = kv.mutations();
		assert.equal(writes.length, 1);
		assert.equal(writes[0].method, "putBatch");
		assert.ok(writes[0].keys.length <= 4, `wrote ${writes[0].keys.length} keys`);
		// And no reads: the local file serves every page.
		assert.equal(kv.calls.length, 1);
		await db.close();
	});

	test("rewriting a row with identical bytes writes nothing", async () => {
		const kv = createTestKv();
		const db = await open(kv);
		await db.exec("CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT); INSERT INTO t VALUES (1, 'same')");
		kv.resetCounts();
		await db.run("UPDATE t SET v = 'same' WHERE id = 1");
		// SQLite still bumps the change counter on page 1: at most that page.
		const writes = kv.mutations();
		assert.ok(writes.length <= 1);
		assert.ok((writes[0]?.keys.length ?? 0) <= 1);
		await db.close();
	});

	test("nothing is written while a transaction is open; one batch at COMMIT", async () => {
		const kv = createTestKv();
		const db = await open(kv);
		await db.exec("CREATE TABLE t(v)");
		kv.resetCounts();
		await db.exec("BEGIN");
		for (let i = 0; i < 50; i++) await db.run("INSERT INTO t VALUES (?)", [`row ${i}`]);
		assert.equal(kv.mutations().length, 0);
		// Another reader of the KV sees the state before the transaction.
		const copy = await open(kv.clone());
		assert.equal((await rows(copy, "SELECT count(*) FROM t"))[0][0], 0);
		await copy.close();
		kv.resetCounts();
		await db.exec("COMMIT");
		assert.equal(kv.mutations().length, 1);
		assert.equal(kv.mutations()[0].method, "putBatch");
		await db.close();
		const again = await open(kv);
		assert.equal((await rows(again, "SELECT count(*) FROM t"))[0][0], 50);
		await again.close();
	});

	test("ROLLBACK writes nothing", async () => {
		const kv = createTestKv();
		const db = await open(kv);
		await db.exec("CREATE TABLE t(v); INSERT INTO t VALUES (1)");
		const before = kvDump(kv);
		kv.resetCounts();
		await db.exec("BEGIN; INSERT INTO t VALUES (2); UPDATE t SET v = 5");
		await db.exec("ROLLBACK");
		assert.equal(kv.mutations().length, 0);
		assert.deepEqual(kvDump(kv), before);
		assert.deepEqual(await rows(db, "SELECT v FROM t"), [[1]]);
		await db.close();
	});

	test("close() with a transaction open rolls it back: nothing of it is written", async () => {
		const kv = createTestKv();
		const db = await open(kv);
		await db.exec("CREATE TABLE t(v); INSERT INTO t VALUES (1)");
		const before = kvDump(kv);
		await db.exec("BEGIN");
		await db.run("INSERT INTO t VALUES (2)");
		assert.equal(db.inTransaction, true);
		await db.close();
		assert.deepEqual(kvDump(kv), before);
		const again = await open(kv);
		assert.deepEqual(await rows(again, "SELECT v FROM t"), [[1]]);
		await again.close();
	});

	test("a large transaction is written within the KV limits and reopens intact", async () => {
		const kv = createTestKv();
		const db = await open(kv);
		await fill(db, 3); // ~750 pages: several putBatch calls
		const puts = kv.calls.filter((c) => c.method === "putBatch");
		assert.ok(puts.length > 1);
		for (const call of puts) {
			assert.ok(call.keys.length <= 128);
			assert.ok(call.bytes <= 976 * 1024);
		}
		const expected = await snapshot(db);
		await db.close();
		const again = await open(kv);
		assert.deepEqual(await snapshot(again), expected);
		assert.deepEqual(await rows(again, "PRAGMA integrity_check"), [["ok"]]);
		await again.close();
	});

	test("pages of a large commit read back at once, while the local file is still being written", async () => {
		const kv = createTestKv();
		const db = await open(kv);
		await db.exec("CREATE TABLE t(id INTEGER PRIMARY KEY, v BLOB)");
		const value = (id, round) => new Uint8Array(3000).fill((id * 7 + round) % 251);
		const model = new Map();
		for (let round = 0; round < 6; round++) {
			// About 200 pages, in one transaction: their local writes may
			// still be under way as the next calls run.
			await db.exec("BEGIN");
			for (let i = 0; i < 200; i++) {
				const id = round * 100 + i;
				await db.run("INSERT OR REPLACE INTO t VALUES (?, ?)", [id, value(id, round)]);
				model.set(id, value(id, round));
			}
			await db.exec("COMMIT");
			// At once, not awaited one by one: a write to pages that commit
			// wrote, and reads of all of it.
			const id = round * 100 + 50;
			const update = db.run("UPDATE t SET v = ? WHERE id = ?", [value(id, 99), id]);
			model.set(id, value(id, 99));
			const [all, check] = await Promise.all([rows(db, "SELECT id, v FROM t ORDER BY id"), rows(db, "PRAGMA integrity_check"), update]);
			assert.deepEqual(check, [["ok"]]);
			assert.deepEqual(
				all.map(([k, v]) => [Number(k), Buffer.from(v).toString("hex")]),
				[...model].sort((a, b) => a[0] - b[0]).map(([k, v]) => [k, Buffer.from(v).toString("hex")]),
			);
		}
		await reopensWhole(db, kv);
	});

	test("a commit of many putBatch calls lets other work run between them", async () => {
		const kv = createTestKv();
		const db = await open(kv);
		await db.exec("CREATE TABLE t(v BLOB); BEGIN");
		const blob = new Uint8Array(64 * 1024).fill(7);
		for (let i = 0; i < 160; i++) await db.run("INSERT INTO t VALUES (?)", [blob]);
		// A KV that answers at once (this one, in memory) must not hold the
		// JS thread for the whole commit: a timer set before it fires first.
		let fired = false;
		const timer = setTimeout(() => {
			fired = true;
		}, 0);
		kv.resetCounts();
		await db.exec("COMMIT");
		clearTimeout(timer);
		assert.ok(kv.count("putBatch") > 10);
		assert.equal(fired, true);
		await db.close();
		const again = await open(kv);
		assert.deepEqual(await rows(again, "SELECT count(*), sum(length(v)) FROM t"), [[160, 160 * 64 * 1024]]);
		assert.deepEqual(await rows(again, "PRAGMA integrity_check"), [["ok"]]);
		await again.close();
	});

	test("configured KV limits are honoured", async () => {
		const limits = { maxKeysPerCall: 10, maxBatchBytes: 20_000 };
		const kv = createTestKv({ limits });
		const db = await open(kv, { limits });
		await fill(db, 1);
		for (const call of kv.calls) {
			assert.ok(call.keys.length <= 10);
			assert.ok(call.bytes <= 20_000);
		}
		await db.close();
		const again = await open(kv, { limits });
		assert.equal((await rows(again, "SELECT count(*) FROM t"))[0][0], 1000);
		await again.close();
	});

	test("commits of every size, one after another, each leave the KV holding the file", async () => {
		// Deltas of one chunk and of more than a small one's description or
		// a slab holds (64 chunks, 16 chunks), in turn: each is described and
		// copied right whatever the one before was.
		const kv = createTestKv();
		const db = await open(kv);
		await db.exec("CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT)");
		let id = 0;
		for (const pages of [1, 100, 1, 3, 70, 2, 20, 1, 200, 1]) {
			await db.exec("BEGIN");
			// A row of 3,000 bytes takes a page of its own.
			for (let i = 0; i < pages; i++) await db.run("INSERT INTO t(v) VALUES (?)", [`${++id}:`.padEnd(3000, "x")]);
			await db.exec("COMMIT");
			await db.run("UPDATE t SET v = ? WHERE id = ?", [`updated ${id}`, 1 + (id % 7)]);
			const copy = await open(kv.clone());
			assert.deepEqual(Buffer.from(await copy.export()), Buffer.from(await db.export()));
			await copy.close();
		}
		await reopensWhole(db, kv);
	});

	test("a delta that fits one putBatch is written in exactly one", async () => {
		const kv = createTestKv();
		const db = await open(kv);
		await db.exec("CREATE TABLE t(v)");
		kv.resetCounts();
		// ~100 pages of new data in one statement.
		await db.run(
			"WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 100) INSERT INTO t SELECT randomblob(3500) FROM n",
		);
		const writes = kv.mutations();
		assert.equal(writes.length, 1);
		assert.ok(writes[0].keys.length > 90);
		await db.close();
	});

	test("a file that shrinks (VACUUM) drops its stale chunks and reopens intact", async () => {
		const kv = createTestKv();
		const db = await open(kv);
		await fill(db, 2);
		const bigSize = (await db.export()).length;
		await db.run("DELETE FROM t WHERE id > 10");
		await db.exec("VACUUM");
		const file = await db.export();
		assert.ok(file.length < bigSize / 10);
		const dump = kvDump(kv);
		assert.equal(dump[META], metaValue(file.length));
		const chunkKeys = Object.keys(dump).filter((k) => k !== META);
		assert.equal(chunkKeys.length, file.length / 4096);
		const expected = await snapshot(db);
		await db.close();
		const again = await open(kv);
		assert.deepEqual(await snapshot(again), expected);
		assert.deepEqual(await rows(again, "PRAGMA integrity_check"), [["ok"]]);
		await again.close();
	});

	test("export() returns a valid SQLite file equal to what the KV holds", async () => {
		const kv = createTestKv();
		const db = await open(kv);
		await db.exec("CREATE TABLE t(v); INSERT INTO t VALUES ('hello')");
		const file = await db.export();
		assert.ok(file instanceof Uint8Array);
		assert.equal(file.length % 4096, 0);
		const dump = kvDump(kv);
		for (let i = 0; i < file.length / 4096; i++) {
			assert.equal(dump[chunkKey(i)], hex(file.subarray(i * 4096, (i + 1) * 4096)));
		}
		// Load the exported bytes into another KV as a database and read it.
		const other = createTestKv();
		const entries = [];
		for (let i = 0; i < file.length / 4096; i++) {
			entries.push([Buffer.from(chunkKey(i), "hex"), file.subarray(i * 4096, (i + 1) * 4096)]);
		}
		entries.push([Buffer.from(META, "hex"), Buffer.from(metaValue(file.length), "hex")]);
		await other.inner.putBatch(entries.map(([k, v]) => [new Uint8Array(k), new Uint8Array(v)]));
		const copy = await open(other);
		assert.deepEqual(await rows(copy, "SELECT v FROM t"), [["hello"]]);
		await copy.close();
		await db.close();
	});
	test("a KV that keeps the values it is given, without copying, keeps every write", async () => {
		// Values may be views of a buffer shared with other values: their
		// bytes must never change once handed over.
		const store = new Map();
		const keyOf = (key) => Buffer.from(key).toString("hex");
		const kv = {
			async get(key) {
				return store.get(keyOf(key)) ?? null;
			},
			async getBatch(keys) {
				return keys.map((key) => store.get(keyOf(key)) ?? null);
			},
			async put(key, value) {
				store.set(keyOf(key), value);
			},
			async putBatch(entries) {
				for (const [key, value] of entries) store.set(keyOf(key), value);
			},
			async deleteBatch(keys) {
				for (const key of keys) store.delete(keyOf(key));
			},
		};
		const db = await open(kv);
		await db.exec("CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT)");
		// Many small commits (one chunk or two each), then a large one.
		for (let i = 0; i < 300; i++) await db.run("INSERT INTO t(v) VALUES (?)", [`row ${i} `.repeat(20)]);
		await db.run("UPDATE t SET v = v || '!' WHERE id % 3 = 0");
		await reopensWhole(db, kv);
	});
	test("a KV that transfers away the buffers of the keys and values it is given keeps every write", async () => {
		// As a store that posts each call to a worker, its buffers in the
		// transfer list, does: what it was given reads as empty afterwards.
		const base = createTestKv();
		const detach = (bytes) => {
			if (bytes.byteLength > 0) structuredClone(bytes.buffer, { transfer: [bytes.buffer] });
		};
		const kv = {
			...base,
			async putBatch(entries) {
				const copies = entries.map(([key, value]) => [new Uint8Array(key), new Uint8Array(value)]);
				for (const [key, value] of entries) {
					detach(key);
					detach(value);
				}
				await base.putBatch(copies);
			},
		};
		const db = await open(kv);
		await db.exec("CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT)");
		// Many small commits, most rewriting the chunk the one before wrote.
		for (let i = 0; i < 200; i++) await db.run("INSERT INTO t(v) VALUES (?)", [`row ${i} `.repeat(20)]);
		await db.run("UPDATE t SET v = v || '!' WHERE id % 3 = 0");
		await reopensWhole(db, base);
	});
});
