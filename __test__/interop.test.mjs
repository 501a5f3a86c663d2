// Interop with the published @rivetkit/sqlite-vfs 2.2.1 (devDependency alias
// "sqlite-vfs-2.2.1"): the same KV format, both ways.

import { test, describe } from "node:test";
import assert from "node:assert/strict";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { SqliteVfs as OldVfs } from "sqlite-vfs-2.2.1";

import { createTestKv, kvFromMutations, hex } from "./helpers/kv.mjs";
import { SqliteError } from "../index.mjs";
import { BACKEND, open, rows } from "./helpers/db.mjs";
import { betterSqlite3Files } from "./helpers/reference.mjs";

const JOURNAL_META = "08010001";

async function withOld(kv, fn) {
	const vfs = new OldVfs();
	const db = await vfs.open("actor", kv);
	try {
		return await fn(db);
	} finally {
		await db.close();
		await vfs.destroy();
	}
}

async function oldRows(db, sql) {
	return (await db.query(sql)).rows;
}

const BULK = (n) =>
	`WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ${n}) INSERT INTO t(v, b) SELECT printf('%.900c', 'r') || i, randomblob(100) FROM n`;

describe("interop with @rivetkit/sqlite-vfs 2.2.1", () => {
	test("a database written by 2.2.1 (several batches) opens here with the same rows", async () => {
		const kv = createTestKv();
		const expected = await withOld(kv, async (db) => {
			await db.exec("CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT, b BLOB)");
			await db.run("INSERT INTO t(v, b) VALUES (?, ?)", ["small", new Uint8Array([1, 2, 3])]);
			await db.exec(BULK(1500)); // ~400 pages: more than one batch
			await db.exec("CREATE INDEX t_v ON t(v)");
			return oldRows(db, "SELECT id, v, hex(b) FROM t ORDER BY id");
		});
		assert.ok(kv.inner.size > 300);
		const db = await open(kv);
		assert.deepEqual(await rows(db, "SELECT id, v, hex(b) FROM t ORDER BY id"), expected);
		assert.deepEqual(await rows(db, "PRAGMA integrity_check"), [["ok"]]);
		// And it keeps working here.
		await db.run("INSERT INTO t(v) VALUES ('here')");
		assert.equal((await rows(db, "SELECT count(*) FROM t"))[0][0], expected.length + 1);
		await db.close();
	});

	test("a 2.2.1 schema that calls sqrt(), floor() and exp() works here, and median() does, on either engine", async () => {
		const kv = createTestKv();
		// (2.2.1's functions are not marked deterministic: no index or
		// generated column may call them there.)
		const schema = `CREATE TABLE p(x REAL CHECK (coalesce(sqrt(x), -1) >= 0));
			CREATE VIEW m AS SELECT floor(avg(x)) + 0 AS f, group_concat(round(exp(x / 10), 6)) AS r FROM p;
			INSERT INTO p(x) VALUES (1), (4), (9)`;
		const read = "SELECT (SELECT median(x) FROM p), f, r FROM m";
		const expected = await withOld(kv, async (db) => {
			await db.exec(schema);
			return oldRows(db, read);
		});
		assert.deepEqual(expected, [[4, 4, "1.105171,1.491825,2.459603"]]);
		const db = await open(kv);
		assert.deepEqual(await rows(db, read), expected);
		await db.run("INSERT INTO p(x) VALUES (16)");
		await assert.rejects(db.run("INSERT INTO p(x) VALUES (-1)"), { name: "SqliteError", code: "SQLITE_CONSTRAINT_CHECK" });
		assert.deepEqual(await rows(db, "PRAGMA integrity_check"), [["ok"]]);
		await db.close();
	});

	test("the write-ahead log 2.2.1 kept in WAL mode is checkpointed at open: its committed transactions stay, even if the checkpoint is cut short", async () => {
		// 2.2.1 let PRAGMA journal_mode=WAL through and kept the log in the
		// KV (tag 2): its transactions since the last checkpoint were there
		// only, and opening here once dropped them (2.2.1 itself could not
		// open such a database again).
		const isWal = (key) => hex(key).startsWith("08010102") || hex(key) === "08010002";
		const kv = createTestKv();
		// (A 2.2.1 database in WAL mode is never closed: its close fails.)
		const old = await new OldVfs().open("actor", kv);
		await old.exec("CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT); INSERT INTO t(v) VALUES ('before the log')");
		await old.query("PRAGMA journal_mode=WAL");
		for (let i = 1; i <= 3; i++) await old.exec(`INSERT INTO t(v) VALUES ('tx ${i}')`);
		await old.exec(BULK(5).replace("t(v, b)", "t(v)").replace(", randomblob(100)", ""));
		await old.exec("DELETE FROM t WHERE v = 'tx 2'; CREATE TABLE u(x); INSERT INTO u VALUES (1)");
		const expected = await oldRows(old, "SELECT id, v FROM t ORDER BY id");
		assert.equal(expected.length, 8);
		const base = kv.inner.clone();
		assert.ok(
			base.entries().some(([key]) => isWal(key)),
			"2.2.1 wrote no WAL",
		);

		// The log's last frame (the INSERT INTO u) damaged: the transaction
		// it ends is not committed (SQLite's recovery stops there); those
		// before are.
		const damaged = base.clone();
		const lastChunk = damaged
			.entries()
			.filter(([key]) => hex(key).startsWith("08010102"))
			.sort(([a], [b]) => (hex(a) < hex(b) ? -1 : 1))
			.at(-1);
		const broken = lastChunk[1].slice();
		broken[broken.length - 10] ^= 0xff;
		await damaged.putBatch([[lastChunk[0], broken]]);
		const partial = await open(createTestKv({ inner: damaged }));
		assert.deepEqual(await rows(partial, "SELECT id, v FROM t ORDER BY id"), expected);
		assert.deepEqual(await rows(partial, "SELECT count(*) FROM u"), [[0]], "the last transaction (its one frame damaged) is not there");
		assert.deepEqual(await rows(partial, "PRAGMA integrity_check"), [["ok"]]);
		await partial.close();

		// Every KV call of the checkpoint: a crash after any of them opens all of it.
		const recorder = createTestKv({ inner: base.clone() });
		const applied = [];
		recorder.onMutation = (m) => applied.push(m);
		const first = await open(recorder);
		recorder.onMutation = null;
		assert.deepEqual(await rows(first, "SELECT id, v FROM t ORDER BY id"), expected);
		await first.close();
		assert.ok(!recorder.inner.entries().some(([key]) => isWal(key)), "the log is still in the KV");
		assert.ok(applied.length >= 3);
		for (let k = 0; k <= applied.length; k++) {
			const state = await kvFromMutations(applied.slice(0, k), base);
			const db = await open(createTestKv({ inner: state }));
			assert.deepEqual(await rows(db, "SELECT id, v FROM t ORDER BY id"), expected, `after ${k} of ${applied.length} KV calls`);
			assert.deepEqual(await rows(db, "SELECT x FROM u"), [[1]]);
			assert.deepEqual(await rows(db, "PRAGMA integrity_check"), [["ok"]]);
			await db.run("INSERT INTO t(v) VALUES ('here')");
			await db.close();
			// And 2.2.1 opens what is left, with the rows and the one added here.
			const again = await withOld(state, (old) => oldRows(old, "SELECT count(*) FROM t"));
			assert.deepEqual(again, [[expected.length + 1]]);
		}
	});

	test("a write-ahead log of any page size is checkpointed as SQLite does (better-sqlite3's, on files)", async (t) => {
		// 2.2.1 breaks its own databases of pages under 4 KiB: a log whose
		// pages share a chunk comes from SQLite itself here.
		const better = betterSqlite3Files();
		if (!better.open) return t.skip(better.reason);
		const dir = fs.mkdtempSync(path.join(os.tmpdir(), "wal-"));
		try {
			for (const pageSize of [1024, 4096, 16384]) {
				const file = path.join(dir, `db-${pageSize}`);
				const db = better.open(file);
				db.pragma(`page_size = ${pageSize}`);
				db.pragma("journal_mode = WAL");
				db.pragma("wal_autocheckpoint = 0");
				db.exec("CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT); CREATE INDEX tv ON t(v)");
				db.exec("PRAGMA wal_checkpoint(TRUNCATE)");
				const insert = db.prepare("INSERT INTO t(v) VALUES (?)");
				for (let i = 0; i < 300; i++) insert.run(`${i}`.padEnd(200, "x"));
				db.exec("DELETE FROM t WHERE id % 4 = 0; UPDATE t SET v = 'changed' WHERE id % 7 = 0");
				const expected = db.prepare("SELECT id, v FROM t ORDER BY id").raw().all();
				// The files as a crash would leave them: the log not checkpointed.
				const main = fs.readFileSync(file);
				const wal = fs.readFileSync(`${file}-wal`);
				db.close();
				assert.ok(wal.length > 100 * pageSize, `a log of ${wal.length} bytes`);
				const kv = createTestKv();
				const entries = [];
				for (const [tag, bytes] of [
					[0, main],
					[2, wal],
				]) {
					const meta = new Uint8Array(10);
					new DataView(meta.buffer).setUint16(0, 1, true);
					new DataView(meta.buffer).setBigUint64(2, BigInt(bytes.length), true);
					entries.push([Uint8Array.of(8, 1, 0, tag), meta]);
					for (let i = 0; i * 4096 < bytes.length; i++) {
						const key = Uint8Array.of(8, 1, 1, tag, 0, 0, 0, 0);
						new DataView(key.buffer).setUint32(4, i);
						entries.push([key, new Uint8Array(bytes.subarray(i * 4096, (i + 1) * 4096))]);
					}
				}
				for (let i = 0; i < entries.length; i += 100) await kv.inner.putBatch(entries.slice(i, i + 100));
				const here = await open(kv);
				assert.deepEqual(await rows(here, "SELECT id, v FROM t ORDER BY id"), expected, `page size ${pageSize}`);
				assert.deepEqual(await rows(here, "PRAGMA page_size"), [[pageSize]]);
				assert.deepEqual(await rows(here, "PRAGMA integrity_check"), [["ok"]]);
				await here.close();
				assert.ok(!kv.inner.entries().some(([key]) => key[3] === 2), "the log is still in the KV");
			}
		} finally {
			fs.rmSync(dir, { recursive: true, force: true });
		}
	});

	test("a UTF-16 database written by 2.2.1 opens on the native engine; the WASM engine refuses it", async () => {
		// Databases made here are UTF-8 (lib/policy.txt); 2.2.1 could make
		// UTF-16 ones, which the WASM engine's SQLite cannot read.
		const kv = createTestKv();
		await withOld(kv, (db) =>
			db.exec("PRAGMA encoding = 'UTF-16le'; CREATE TABLE t(v TEXT); INSERT INTO t VALUES ('h\u00e9llo \u{1F600}')"),
		);
		if (BACKEND === "wasm") {
			await assert.rejects(
				open(kv),
				(error) => error instanceof SqliteError && error.code === "SQLITE_CANTOPEN" && /UTF-16le.*native engine/.test(error.message),
			);
			return;
		}
		const db = await open(kv);
		assert.deepEqual(await rows(db, "PRAGMA encoding"), [["UTF-16le"]]);
		assert.deepEqual(await rows(db, "SELECT v FROM t"), [["h\u00e9llo \u{1F600}"]]);
		await db.run("INSERT INTO t VALUES (?)", ["here"]);
		assert.deepEqual(await rows(db, "PRAGMA integrity_check"), [["ok"]]);
		await db.close();
	});

	test("a database written here opens in 2.2.1 with the same rows and integrity ok", async () => {
		const kv = createTestKv();
		const db = await open(kv);
		await db.exec("CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT, b BLOB)");
		await db.run("INSERT INTO t(v, b) VALUES (?, ?)", ["small", new Uint8Array([1, 2, 3])]);
		await db.exec(BULK(1500));
		await db.run("DELETE FROM t WHERE id % 3 = 0");
		await db.exec("VACUUM");
		const expected = await rows(db, "SELECT id, v, hex(b) FROM t ORDER BY id");
		await db.close();
		await withOld(kv, async (old) => {
			assert.deepEqual(await oldRows(old, "SELECT id, v, hex(b) FROM t ORDER BY id"), expected);
			assert.deepEqual(await oldRows(old, "PRAGMA integrity_check"), [["ok"]]);
			// 2.2.1 writes on top of it, and we read that back.
			await old.run("INSERT INTO t(v) VALUES (?)", ["from 2.2.1"]);
		});
		const again = await open(kv);
		assert.deepEqual(await rows(again, "SELECT v FROM t ORDER BY id DESC LIMIT 1"), [["from 2.2.1"]]);
		assert.deepEqual(await rows(again, "PRAGMA integrity_check"), [["ok"]]);
		await again.close();
	});

	test("the differences from 2.2.1 that examples/rivetkit/README.md lists hold, side by side", async () => {
		const SCHEMA = "CREATE TABLE t(id INTEGER PRIMARY KEY, name TEXT UNIQUE, b BLOB); INSERT INTO t(name) VALUES ('x')";
		const duplicate = "INSERT INTO t(name) VALUES ('x')";
		const byName = "SELECT id FROM t WHERE name = :name";
		const blobType = "SELECT typeof(?)";
		const empty = new Uint8Array(0);
		const functions = "SELECT log(100), typeof(floor(2.5)), ceil(2.5), reverse('abc')";
		await withOld(createTestKv(), async (old) => {
			await old.exec(SCHEMA);
			// Errors: an Error whose code is the primary result code, a number.
			await assert.rejects(old.run(duplicate), (error) => !(error instanceof SqliteError) && error.code === 19);
			// Parameter counts: a missing value binds NULL, a surplus one is ignored, a `?` without parameters is NULL.
			await old.run("INSERT INTO t(name, b) VALUES (?, ?)", ["missing"]);
			await old.run("INSERT INTO t(name) VALUES (?)", ["surplus", "extra"]);
			await old.run("INSERT INTO t(name) VALUES (?)");
			assert.deepEqual(await oldRows(old, "SELECT name, b FROM t WHERE id > 1 ORDER BY id"), [
				["missing", null],
				["surplus", null],
				[null, null],
			]);
			// Named parameters need their sigil.
			assert.deepEqual((await old.query(byName, { name: "x" })).rows, []);
			assert.deepEqual((await old.query(byName, { ":name": "x" })).rows, [[1]]);
			// An empty Uint8Array binds as NULL.
			assert.deepEqual((await old.query(blobType, [empty])).rows, [["null"]]);
			// extension-functions.c: log() is natural, floor() an integer, reverse() there.
			assert.deepEqual(await oldRows(old, functions), [[Math.log(100), "integer", 3, "cba"]]);
		});
		const db = await open(createTestKv());
		await db.exec(SCHEMA);
		await assert.rejects(db.run(duplicate), { name: "SqliteError", code: "SQLITE_CONSTRAINT_UNIQUE" });
		await assert.rejects(db.run("INSERT INTO t(name, b) VALUES (?, ?)", ["missing"]), RangeError);
		await assert.rejects(db.run("INSERT INTO t(name) VALUES (?)", ["surplus", "extra"]), RangeError);
		await assert.rejects(db.run("INSERT INTO t(name) VALUES (?)"), RangeError);
		assert.deepEqual(await rows(db, "SELECT count(*) FROM t"), [[1]]);
		assert.deepEqual((await db.query(byName, { name: "x" })).rows, [[1]]);
		assert.deepEqual((await db.query(byName, { ":name": "x" })).rows, [[1]]);
		assert.deepEqual((await db.query(blobType, [empty])).rows, [["blob"]]);
		// log() is base 10 and floor() a REAL here; reverse() is here, as in 2.2.1
		// (__test__/functions.test.mjs compares all of extension-functions.c's).
		assert.deepEqual(await rows(db, functions), [[2, "real", 3, "cba"]]);
		assert.deepEqual(await rows(db, "SELECT log(100), ln(100), typeof(floor(2.5)), ceil(2.5)"), [[2, Math.log(100), "real", 3]]);
		await db.close();
	});

	test("a commit of 2.2.1 cut short at any KV call opens here as before or after it (hot journal)", async () => {
		const kv = createTestKv();
		await withOld(kv, async (db) => {
			await db.exec("CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT, b BLOB)");
			await db.exec(BULK(200));
		});
		const base = kv.inner.clone();
		const applied = [];
		kv.onMutation = (m) => applied.push(m);
		await withOld(kv, (db) => db.exec(BULK(1000))); // a large commit: 2.2.1 journals it in the KV
		kv.onMutation = null;
		assert.ok(applied.length > 5);
		let sawJournal = false;
		const step = Math.max(1, Math.floor(applied.length / 12));
		const cuts = [];
		for (let k = 0; k < applied.length; k += step) cuts.push(k);
		cuts.push(applied.length);
		for (const k of cuts) {
			const state = await kvFromMutations(applied.slice(0, k), base);
			const hadJournal = state.entries().some(([key]) => hex(key) === JOURNAL_META);
			sawJournal ||= hadJournal;
			const db = await open(createTestKv({ inner: state }));
			const [[count]] = await rows(db, "SELECT count(*) FROM t");
			assert.ok(count === 200 || count === 1200, `after ${k} of ${applied.length} KV writes: ${count} rows`);
			assert.deepEqual(await rows(db, "PRAGMA integrity_check"), [["ok"]]);
			await db.close();
			if (hadJournal) {
				// The journal was rolled back and removed from the KV.
				assert.ok(!state.entries().some(([key]) => hex(key).startsWith("0801010001") || hex(key) === JOURNAL_META));
			}
		}
		assert.ok(sawJournal, "no intermediate state held a journal");
	});
});
