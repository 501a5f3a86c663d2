import { test, describe } from "node:test";
import assert from "node:assert/strict";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";

import { SqliteError } from "../index.mjs";
import { createTestKv, kvDump } from "./helpers/kv.mjs";
import { open, rows } from "./helpers/db.mjs";

describe("statements cannot reach host files", () => {
	test("ATTACH of a host path, VACUUM INTO and a relative file are refused; the database stays usable", async () => {
		const dir = fs.mkdtempSync(path.join(os.tmpdir(), "sqlite-vfs-security-"));
		const target = path.join(dir, "escape.db");
		const kv = createTestKv();
		const db = await open(kv);
		await db.exec("CREATE TABLE t(v); INSERT INTO t VALUES (1)");
		const before = kvDump(kv);
		const attempts = [
			"ATTACH '/etc/passwd' AS p",
			`ATTACH '${target}' AS x`,
			`ATTACH 'file:${target}?mode=rwc' AS y`,
			"ATTACH 'relative.db' AS r",
			`VACUUM INTO '${target}'`,
			`ATTACH 'file:${target}?vfs=' || 'unix' AS e`,
			`ATTACH 'file:${target}' || '?vfs=unix-none' AS e2`,
			`VACUUM INTO 'file:${target}?vfs=unix'`,
		];
		for (const sql of attempts) {
			await assert.rejects(db.exec(sql), (error) => {
				assert.ok(error instanceof SqliteError, `${sql}: ${error}`);
				assert.match(error.code, /^SQLITE_(CANTOPEN|AUTH)/);
				return true;
			});
		}
		// A file name bound as a parameter is not known when the statement is
		// prepared: refused too.
		await assert.rejects(db.run("ATTACH ? AS f", [target]), { name: "SqliteError", code: "SQLITE_AUTH" });
		await assert.rejects(db.run("ATTACH ? AS f", [":memory:"]), { name: "SqliteError", code: "SQLITE_AUTH" });
		// A name that starts with U+FEFF is checked as it is (not as ":memory:").
		await assert.rejects(db.exec("ATTACH '\uFEFF:memory:' AS b"), { name: "SqliteError", code: "SQLITE_AUTH" });
		assert.equal(fs.existsSync(target), false);
		assert.equal(fs.existsSync(path.join(process.cwd(), "relative.db")), false);
		assert.deepEqual(fs.readdirSync(dir), []);
		assert.deepEqual(kvDump(kv), before);
		assert.deepEqual(await rows(db, "SELECT v FROM t"), [[1]]);
		// An in-memory attachment touches no file and is allowed.
		await db.exec("ATTACH ':memory:' AS scratch; CREATE TABLE scratch.s(x); DETACH scratch");
		// At most two attachments.
		await db.exec("ATTACH ':memory:' AS m1; ATTACH ':memory:' AS m2");
		await assert.rejects(db.exec("ATTACH ':memory:' AS m3"), { name: "SqliteError", message: /too many attached/ });
		await db.exec("DETACH m1; DETACH m2");
		await db.close();
		fs.rmSync(dir, { recursive: true });
	});

	test("pragmas that would break persistence are refused, but for a journal mode (ignored) and a setting to the value in force (a no-op); reading them works", async () => {
		const kv = createTestKv();
		const db = await open(kv);
		await db.exec("CREATE TABLE t(v); INSERT INTO t VALUES (1)");
		const before = kvDump(kv);
		const refused = [
			"PRAGMA locking_mode = NORMAL",
			"PRAGMA page_size = 8192",
			"PRAGMA mmap_size = 268435456",
			"PRAGMA temp_store = FILE",
			"PRAGMA temp_store_directory = '/tmp'",
			"PRAGMA temp_store_directory",
			"PRAGMA data_store_directory = '/tmp'",
			// Deprecated: a cache size in the file's header, for every open.
			"PRAGMA default_cache_size = 123456",
			"PRAGMA default_cache_size",
			"PRAGMA writable_schema = ON",
			"PRAGMA trusted_schema = ON",
			"PRAGMA schema_version = 12345",
			// Process-wide: they would limit every database's heap.
			"PRAGMA hard_heap_limit = 100000",
			"PRAGMA soft_heap_limit = 100000",
			// Only UTF-8: the WASM engine's SQLite has no UTF-16.
			"PRAGMA encoding = 'UTF-16le'",
			"PRAGMA encoding = 'UTF-16'",
		];
		for (const sql of refused) {
			await assert.rejects(db.exec(sql), { name: "SqliteError", code: "SQLITE_AUTH" }, sql);
		}
		// A journal mode other than the one in force does nothing, and
		// answers nothing, as SQLite does where the mode cannot change (code
		// written for other SQLite libraries sets WAL); 2.2.1's scripts may
		// set the values this package keeps: those run, as no-ops.
		for (const sql of ["PRAGMA journal_mode = WAL", "PRAGMA main.journal_mode = DELETE", "PRAGMA journal_mode = 'off'"]) {
			assert.deepEqual(await db.query(sql), { rows: [], columns: [] }, sql);
		}
		const kept = {
			"PRAGMA journal_mode = MEMORY": [["memory"]],
			"PRAGMA locking_mode = EXCLUSIVE": [["exclusive"]],
			"PRAGMA mmap_size = 0": [[0]],
			"PRAGMA temp_store = MEMORY": [],
			"PRAGMA temp_store = 2": [],
			"PRAGMA trusted_schema = OFF": [],
			"PRAGMA writable_schema = false": [],
		};
		for (const [sql, answer] of Object.entries(kept)) assert.deepEqual(await rows(db, sql), answer, sql);
		await db.exec("PRAGMA journal_mode = WAL; PRAGMA temp_store = MEMORY; PRAGMA locking_mode = exclusive");
		assert.deepEqual(kvDump(kv), before);
		assert.deepEqual(await rows(db, "PRAGMA temp_store"), [[2]]);
		assert.deepEqual(await rows(db, "PRAGMA journal_mode"), [["memory"]]);
		assert.deepEqual(await rows(db, "PRAGMA page_size"), [[4096]]);
		assert.deepEqual(await rows(db, "PRAGMA locking_mode"), [["exclusive"]]);
		assert.deepEqual(await rows(db, "PRAGMA trusted_schema"), [[0]]);
		// Harmless pragmas still work.
		await db.exec("PRAGMA foreign_keys = ON; PRAGMA cache_size = -4000; PRAGMA user_version = 7");
		await db.exec("PRAGMA encoding = 'UTF-8'; PRAGMA encoding = utf8");
		assert.deepEqual(await rows(db, "PRAGMA user_version"), [[7]]);
		await db.close();
		const again = await open(kv);
		assert.deepEqual(await rows(again, "PRAGMA user_version"), [[7]]);
		assert.deepEqual(await rows(again, "PRAGMA integrity_check"), [["ok"]]);
		await again.close();
	});

	test("a cache size the file's header suggests is not used: every open starts at cache_size -2000", async () => {
		const kv = createTestKv();
		const db = await open(kv);
		await db.exec("CREATE TABLE t(v); INSERT INTO t VALUES (1)");
		await db.close();
		// Header bytes 48-51: the suggested cache size (the deprecated
		// default_cache_size writes it), here 123,456 pages (482 MiB).
		const key = new Uint8Array([0x08, 0x01, 0x01, 0x00, 0, 0, 0, 0]);
		const page1 = new Uint8Array(await kv.get(key));
		new DataView(page1.buffer).setUint32(48, 123_456);
		await kv.put(key, page1);
		const again = await open(kv);
		assert.deepEqual(await rows(again, "PRAGMA cache_size"), [[-2000]]);
		assert.deepEqual(await rows(again, "SELECT v FROM t"), [[1]]);
		await again.close();
	});

	test("writing the schema table directly is refused (defensive mode)", async () => {
		const db = await open(createTestKv());
		await db.exec("CREATE TABLE t(v)");
		await assert.rejects(db.exec("UPDATE sqlite_schema SET sql = 'garbage' WHERE name = 't'"), SqliteError);
		assert.deepEqual(await rows(db, "PRAGMA integrity_check"), [["ok"]]);
		await db.close();
	});

	test("LIKE and GLOB patterns are bounded, so matching one cannot exhaust the stack", async () => {
		// SQLite matches a pattern by recursion, a level per wildcard; the
		// WASM engine's SQLite runs on the JS thread's stack, shared by every
		// database of the process.
		const db = await open(createTestKv());
		const other = await open(createTestKv());
		await other.exec("CREATE TABLE t(v)");
		const subject = "a".repeat(4000);
		const within = `${"%a".repeat(999)}b`; // 1,999 bytes
		assert.deepEqual(await rows(db, "SELECT ? LIKE ?, ? GLOB ?", [subject, within, subject, within.replaceAll("%", "*")]), [[0, 0]]);
		for (const pattern of [`${"%a".repeat(1000)}b`, `${"%a".repeat(20_000)}b`]) {
			for (const sql of ["SELECT ? LIKE ?", "SELECT ? GLOB ?"]) {
				await assert.rejects(db.query(sql, [subject, pattern]), (error) => {
					return error instanceof SqliteError && error.code === "SQLITE_ERROR" && /pattern too complex/.test(error.message);
				});
			}
			await other.run("INSERT INTO t VALUES (?)", [pattern.length]);
		}
		assert.deepEqual(await rows(db, "SELECT 'abc' LIKE 'a%'"), [[1]]);
		assert.deepEqual(await rows(other, "SELECT count(*) FROM t"), [[2]]);
		await db.close();
		await other.close();
	});

	test("SQL text is bounded at 64 MiB of UTF-8 a call, whatever its statements (both engines alike)", async () => {
		const db = await open(createTestKv());
		const limit = 64 * 1024 * 1024;
		const tooBig = (error) =>
			error instanceof SqliteError && error.code === "SQLITE_TOOBIG" && /longer than the limit of 67108864/.test(error.message);
		const head = "SELECT 1 --";
		assert.deepEqual(await rows(db, head + "x".repeat(limit - head.length)), [[1]]);
		await assert.rejects(db.query(head + "x".repeat(limit - head.length + 1)), tooBig);
		// Trailing white space counts; so does every statement of a script.
		await assert.rejects(db.query(`SELECT 1${" ".repeat(limit - 7)}`), tooBig);
		const half = `SELECT length('${"x".repeat(limit / 2)}');`;
		await assert.rejects(db.exec(half + half), tooBig);
		// Bytes, not characters: "é" is two of them.
		await assert.rejects(db.query(`SELECT 1 --${"é".repeat(limit / 2)}`), tooBig);
		assert.deepEqual(await rows(db, `SELECT length('${"é".repeat(limit / 4)}')`), [[limit / 4]]);
		assert.deepEqual(await rows(db, "SELECT 2"), [[2]]);
		await db.close();
	});

	test("statements nested as deep as SQLite allows compile, or fail clearly, and never break other databases", async () => {
		// SQLite compiles by recursion, a level or more per nested CTE. On an
		// engine thread (over 16 KiB of SQL text) the native engine once ran
		// out of stack and crashed the process; the WASM engine once overran
		// its stack into the module's static data (silently, from 820 levels:
		// the next database opened failed), or past its memory.
		const chain = (depth, body) =>
			`WITH ${Array.from({ length: depth }, (_, i) => `c${i} AS (${i === 0 ? "SELECT 0 AS x" : body(`c${i - 1}`)})`).join(",")} SELECT count(*) FROM c${depth - 1}`;
		const union = (from) => `SELECT x + 1 AS x FROM ${from} UNION SELECT 7`;
		const union3 = (from) => `SELECT x + 1 AS x FROM ${from} UNION SELECT 7 UNION SELECT 8`;
		// Another database's writes are under way meanwhile (a KV call takes 20 ms).
		const kv = createTestKv({ latencyMs: 20 });
		const other = await open(kv);
		await other.exec("CREATE TABLE t(v); INSERT INTO t VALUES ('kept')");
		const db = await open(createTestKv());
		let written = 1;
		for (const [sql, count] of [
			[chain(850, union), 849],
			[chain(999, union), 998],
			[chain(999, union3), 999],
		]) {
			const write = other.run("INSERT INTO t VALUES (?)", [count]);
			let result;
			try {
				result = await rows(db, sql);
			} catch (error) {
				// The WASM engine's calls also run on the JS thread's stack,
				// which may run out first: its module is then given up, with a
				// clear error for every database on it.
				assert.equal(db.backend, "wasm", String(error));
				assert.ok(error instanceof SqliteError && error.code === "SQLITE_INTERNAL", String(error));
				assert.match(error.message, /open them again/);
				// What the other database's call did before is still written.
				await write;
				written++;
				await assert.rejects(other.query("SELECT v FROM t"), { name: "SqliteError", code: "SQLITE_INTERNAL" });
				break;
			}
			assert.deepEqual(result, [[count]]);
			await write;
			written++;
			assert.deepEqual(await rows(other, "SELECT count(*) FROM t"), [[written]]);
		}
		await db.close();
		await other.close();
		// What was durable is still there, and a database opened now works.
		const again = await open(kv);
		assert.deepEqual(await rows(again, "SELECT count(*) FROM t"), [[written]]);
		await again.run("INSERT INTO t VALUES (?)", ["more"]);
		assert.deepEqual(await rows(again, "SELECT count(*) FROM t"), [[written + 1]]);
		await again.close();
	});

	test("statements nested past SQLite's limits fail with SQLITE_ERROR, and the database goes on", async () => {
		const chain = (depth) =>
			`WITH ${Array.from({ length: depth }, (_, i) => `c${i} AS (${i === 0 ? "SELECT 0 AS x" : `SELECT x + 1 AS x FROM c${i - 1}`})`).join(",")} SELECT x FROM c${depth - 1}`;
		const nest = (depth) => `SELECT ${"(SELECT ".repeat(depth)}1${")".repeat(depth)}`;
		const db = await open(createTestKv());
		assert.deepEqual(await rows(db, chain(999)), [[998]]);
		await assert.rejects(db.query(chain(1000)), { name: "SqliteError", code: "SQLITE_ERROR", message: /nested too deep/ });
		assert.deepEqual(await rows(db, nest(43)), [[1]]);
		await assert.rejects(db.query(nest(44)), { name: "SqliteError", code: "SQLITE_ERROR", message: /Expression tree is too large/ });
		await assert.rejects(db.query(nest(5000)), { name: "SqliteError", code: "SQLITE_ERROR" });
		assert.deepEqual(await rows(db, "SELECT 1"), [[1]]);
		await db.close();
	});

	test("triggers nest at most 500 deep, so a chain of them cannot exhaust the stack while it compiles", async () => {
		// Tables t0…t(n−1), each with a trigger that inserts into the next: an
		// insert into t0 fires n − 1 triggers, one inside the other.
		const chain = (n) =>
			Array.from({ length: n }, (_, i) => `CREATE TABLE t${i}(v);`).join("") +
			Array.from(
				{ length: n - 1 },
				(_, i) => `CREATE TRIGGER g${i} AFTER INSERT ON t${i} BEGIN INSERT INTO t${i + 1} VALUES (new.v); END;`,
			).join("");
		const db = await open(createTestKv());
		await db.exec(chain(1200));
		await assert.rejects(db.run("INSERT INTO t0 VALUES (1)"), {
			name: "SqliteError",
			code: "SQLITE_ERROR",
			message: /triggers nested too deep/,
		});
		await db.exec("DROP TRIGGER g500");
		await db.run("INSERT INTO t0 VALUES (1)");
		assert.deepEqual(await rows(db, "SELECT count(*) FROM t500"), [[1]]);
		assert.deepEqual(await rows(db, "SELECT count(*) FROM t501"), [[0]]);
		// Recursion at run time stops there too (the statement's own level counts).
		await db.exec(
			"PRAGMA recursive_triggers = ON; CREATE TABLE r(n); CREATE TRIGGER down AFTER INSERT ON r WHEN new.n > 0 BEGIN INSERT INTO r VALUES (new.n - 1); END",
		);
		await db.run("INSERT INTO r VALUES (499)");
		await assert.rejects(db.run("INSERT INTO r VALUES (500)"), { name: "SqliteError", message: /too deep/ });
		assert.deepEqual(await rows(db, "SELECT count(*), min(n), max(n) FROM r"), [[500, 0, 499]]);
		await db.close();
	});

	test("extension loading is unavailable", async () => {
		const db = await open(createTestKv());
		await assert.rejects(db.query("SELECT load_extension('/usr/lib/x86_64-linux-gnu/libm.so.6')"), SqliteError);
		await db.close();
	});
});

describe("databases of one process stay apart", () => {
	test("the values a database hands its KV hold none of another database's bytes, not even in their buffers", async () => {
		// Stores that keep or structured-clone a value's whole `buffer` (a
		// Durable Object's storage does) must not get another actor's data.
		const marker = (name) => Buffer.from(`only-in-${name}.`.repeat(64));
		const spied = () => {
			const kv = createTestKv();
			const values = [];
			const { put, putBatch } = kv;
			kv.put = (key, value) => {
				values.push(value);
				return put(key, value);
			};
			kv.putBatch = (entries) => {
				for (const [, value] of entries) values.push(value);
				return putBatch(entries);
			};
			return { kv, values };
		};
		const a = spied();
		const b = spied();
		const dbA = await open(a.kv);
		const dbB = await open(b.kv);
		await Promise.all([dbA.exec("CREATE TABLE t(v)"), dbB.exec("CREATE TABLE t(v)")]);
		for (let i = 0; i < 20; i++) {
			await dbA.run("INSERT INTO t VALUES (?)", [marker("a")]);
			await dbB.run("INSERT INTO t VALUES (?)", [marker("b")]);
			await Promise.all([dbA.run("INSERT INTO t VALUES (?)", [marker("a")]), dbB.run("INSERT INTO t VALUES (?)", [marker("b")])]);
		}
		const holds = (values, name) => values.filter((value) => Buffer.from(value.buffer).includes(`only-in-${name}.`)).length;
		// Each database's own rows reached its KV; the other's never did.
		assert.ok(holds(a.values, "a") > 0 && holds(b.values, "b") > 0);
		assert.equal(holds(a.values, "b"), 0);
		assert.equal(holds(b.values, "a"), 0);
		assert.deepEqual(await rows(dbA, "SELECT count(*), min(v = ?) FROM t", [marker("a")]), [[40, 1]]);
		await Promise.all([dbA.close(), dbB.close()]);
	});
});
