import { test, describe } from "node:test";
import assert from "node:assert/strict";

import { SqliteError, SqliteVfs, open as openPublic, createMemoryKv } from "../index.mjs";
import { createTestKv, kvDump } from "./helpers/kv.mjs";
import { open, rows } from "./helpers/db.mjs";

/**
 * A database of one row ('x' in table t) whose KV claims 1 TiB, with a
 * header whose page count SQLite does not trust (its change counter differs
 * from its version-valid-for number): SQLite takes the file's size, 2^28
 * pages. Returns a function that makes a new such KV.
 */
async function untrustedTebibyte() {
	const base = createTestKv();
	const db = await open(base);
	await db.exec("CREATE TABLE t(v); INSERT INTO t VALUES ('x')");
	await db.close();
	const size = new Uint8Array(10);
	new DataView(size.buffer).setUint16(0, 1, true);
	new DataView(size.buffer).setBigUint64(2, 2n ** 40n, true);
	const pageOne = new Uint8Array([8, 1, 1, 0, 0, 0, 0, 0]);
	const [first] = await base.inner.getBatch([pageOne]);
	const header = first.slice();
	header[27] ^= 1;
	return async () => {
		const lying = base.clone();
		await lying.inner.putBatch([
			[new Uint8Array([8, 1, 0, 0]), size],
			[pageOne, header],
		]);
		return lying;
	};
}

/** `opened`, on `kv` (see untrustedTebibyte), reads its row and takes another, which `kv` holds once it is closed. */
async function readsWritesAndReopens(opened, kv, options) {
	assert.deepEqual(await rows(opened, "SELECT v FROM t"), [["x"]]);
	await opened.run("INSERT INTO t VALUES ('y')");
	await opened.close();
	const again = await open(kv, options);
	assert.deepEqual(await rows(again, "SELECT v FROM t ORDER BY v"), [["x"], ["y"]]);
	await again.close();
}

describe("errors", () => {
	test("SQLite failures reject with SqliteError and the extended code name", async () => {
		const kv = createTestKv();
		const db = await open(kv);
		await db.exec("CREATE TABLE u(id INTEGER PRIMARY KEY, email TEXT UNIQUE, n INTEGER NOT NULL CHECK (n >= 0))");
		await db.run("INSERT INTO u(email, n) VALUES ('a@x', 1)");
		const cases = [
			["INSERT INTO u(email, n) VALUES ('a@x', 2)", "SQLITE_CONSTRAINT_UNIQUE", /UNIQUE constraint failed: u.email/],
			["INSERT INTO u(id, email, n) VALUES (1, 'b@x', 2)", "SQLITE_CONSTRAINT_PRIMARYKEY", /UNIQUE constraint failed: u.id/],
			["INSERT INTO u(email, n) VALUES ('c@x', NULL)", "SQLITE_CONSTRAINT_NOTNULL", /NOT NULL/],
			["INSERT INTO u(email, n) VALUES ('d@x', -1)", "SQLITE_CONSTRAINT_CHECK", /CHECK constraint failed/],
			["SELEC 1", "SQLITE_ERROR", /near "SELEC": syntax error/],
			["SELECT * FROM nope", "SQLITE_ERROR", /no such table: nope/],
			["SELECT abs(-9223372036854775807 - 1)", "SQLITE_ERROR", /integer overflow/],
		];
		for (const [sql, code, message] of cases) {
			const before = kvDump(kv);
			await assert.rejects(db.run(sql), (error) => {
				assert.ok(error instanceof SqliteError, `${sql}: ${error}`);
				assert.ok(error instanceof Error);
				assert.equal(error.name, "SqliteError");
				assert.equal(error.code, code, sql);
				assert.match(error.message, message);
				return true;
			});
			// A failed statement leaves the KV untouched and the database usable.
			assert.deepEqual(kvDump(kv), before);
			assert.deepEqual(await rows(db, "SELECT count(*) FROM u"), [[1]]);
		}
		await db.close();
	});

	test("RAISE in a trigger and a failing statement mid-transaction", async () => {
		const db = await open(createTestKv());
		await db.exec(`CREATE TABLE t(v);
			CREATE TRIGGER no_bad BEFORE INSERT ON t WHEN NEW.v = 'bad' BEGIN SELECT RAISE(ABORT, 'bad value'); END;`);
		await assert.rejects(db.run("INSERT INTO t VALUES ('bad')"), { code: "SQLITE_CONSTRAINT_TRIGGER", message: "bad value" });
		await db.exec("BEGIN");
		await db.run("INSERT INTO t VALUES ('ok')");
		await assert.rejects(db.run("INSERT INTO t VALUES ('bad')"), SqliteError);
		await db.exec("COMMIT");
		assert.deepEqual(await rows(db, "SELECT v FROM t"), [["ok"]]);
		await db.close();
	});

	test("a multi-statement call that fails midway keeps what ran before, as sqlite3_exec does", async () => {
		const kv = createTestKv();
		const db = await open(kv);
		await assert.rejects(db.exec("CREATE TABLE a(x); INSERT INTO a VALUES (1); INSERT INTO nope VALUES (2)"), SqliteError);
		assert.deepEqual(await rows(db, "SELECT x FROM a"), [[1]]);
		// And the KV agrees with the live database.
		const copy = await open(kv.clone());
		assert.deepEqual(await rows(copy, "SELECT x FROM a"), [[1]]);
		await copy.close();
		await db.close();
	});

	test("bad SQL input: not a string, NUL bytes, empty SQL", async () => {
		// null and undefined as a database's very first SQL, on each method,
		// too (null once skipped the check there, and reached the engine).
		for (const method of ["exec", "run", "query"]) {
			for (const sql of [null, undefined]) {
				const first = await open(createTestKv());
				await assert.rejects(first[method](sql), { name: "TypeError", message: `SQL must be a string, got ${typeof sql}` });
				assert.deepEqual(await rows(first, "SELECT 1"), [[1]]);
				await first.close();
			}
		}
		const db = await open(createTestKv());
		await assert.rejects(db.exec(42), TypeError);
		await assert.rejects(db.run("SELECT 1\0; DROP TABLE x"), { name: "TypeError", message: /NUL/ });
		// Empty SQL and comments only: nothing to run.
		assert.deepEqual(await db.run(""), { changes: 0, lastInsertRowid: 0 });
		assert.deepEqual(await db.query("-- nothing"), { rows: [], columns: [] });
		await db.close();
	});

	test("too big: SQL over the length limit, a blob over SQLite's limit", async () => {
		const db = await open(createTestKv());
		const long = `SELECT '${"x".repeat(64 * 1024 * 1024)}'`;
		await assert.rejects(db.query(long), { name: "SqliteError", code: "SQLITE_TOOBIG" });
		await assert.rejects(db.query("SELECT zeroblob(1500000000)"), { name: "SqliteError", code: "SQLITE_TOOBIG" });
		assert.deepEqual(await rows(db, "SELECT length(zeroblob(1000000))"), [[1000000]]);
		await db.close();
	});

	test("use after close rejects clearly; close is idempotent", async () => {
		const db = await open(createTestKv());
		await db.exec("CREATE TABLE t(v)");
		await db.close();
		await db.close();
		assert.equal(db.closed, true);
		for (const call of [() => db.exec("SELECT 1"), () => db.run("SELECT 1"), () => db.query("SELECT 1"), () => db.export()]) {
			await assert.rejects(call(), { name: "SqliteError", code: "SQLITE_MISUSE", message: /is closed/ });
		}
	});

	test("export() rejects while a transaction is open, and works once it ends", async () => {
		const db = await open(createTestKv());
		await db.exec("CREATE TABLE t(v); BEGIN; INSERT INTO t VALUES (1)");
		await assert.rejects(db.export(), { name: "SqliteError", code: "SQLITE_MISUSE", message: /transaction is open/ });
		assert.equal(db.inTransaction, true, "the transaction goes on");
		await db.exec("COMMIT");
		const file = await db.export();
		assert.equal(Buffer.from(file.subarray(0, 16)).toString("latin1"), "SQLite format 3\0");
		await db.close();
	});

	test("calls queued before close still complete", async () => {
		const kv = createTestKv();
		const db = await open(kv);
		const pending = [db.exec("CREATE TABLE t(v)"), db.run("INSERT INTO t VALUES (1)")];
		const closing = db.close();
		// A call made while close() waits for them is refused, as after it.
		await assert.rejects(db.run("INSERT INTO t VALUES (2)"), { name: "SqliteError", code: "SQLITE_MISUSE", message: /is closed/ });
		await Promise.all(pending);
		await closing;
		const again = await open(kv);
		assert.deepEqual(await rows(again, "SELECT v FROM t"), [[1]]);
		await again.close();
	});

	test("bad open arguments", async () => {
		const kv = createMemoryKv();
		await assert.rejects(openPublic(123, kv), TypeError);
		await assert.rejects(openPublic("a\0b", kv), { name: "TypeError", message: /NUL/ });
		await assert.rejects(openPublic("x", null), TypeError);
		await assert.rejects(openPublic("x", { get() {} }), { name: "TypeError", message: /getBatch/ });
		await assert.rejects(openPublic("x", kv, { limits: { maxKeysPerCall: 0 } }), TypeError);
		await assert.rejects(openPublic("x", kv, { limits: { bogus: 1 } }), TypeError);
		await assert.rejects(openPublic("x", kv, { backend: "gpu" }), TypeError);
	});

	test("one KV store cannot have two open databases", async () => {
		const kv = createMemoryKv();
		const db = await openPublic("a", kv);
		await assert.rejects(openPublic("b", kv), { name: "SqliteError", code: "SQLITE_BUSY", message: /already has an open database/ });
		await db.close();
		const again = await openPublic("b", kv);
		await again.close();
		// Two opens made at once: the second rejects too (both once resolved,
		// and the writes of one overwrote the other's).
		const [first, second] = await Promise.allSettled([openPublic("c", kv), openPublic("d", kv)]);
		assert.equal(first.status, "fulfilled");
		assert.match(String(second.reason), /already has an open database/);
		await first.value.exec("CREATE TABLE t(v); INSERT INTO t VALUES (1)");
		await first.value.close();
		const check = await openPublic("e", kv);
		assert.deepEqual((await check.query("SELECT v FROM t")).rows, [[1]]);
		await check.close();
		// An open made while the database is closing (its last write still
		// under way) waits for the close, then sees that write.
		const slow = createTestKv({ latencyMs: 20 });
		const sleeping = await openPublic("f", slow);
		await sleeping.exec("CREATE TABLE t(v)");
		const write = sleeping.run("INSERT INTO t VALUES ('last')");
		const closing = sleeping.close();
		const woken = await openPublic("g", slow);
		await write;
		await closing;
		assert.deepEqual((await woken.query("SELECT v FROM t")).rows, [["last"]]);
		await woken.close();
	});

	test("KV failure on open rejects with the KV's error as cause and calls onError", async () => {
		const kv = createTestKv();
		const db = await open(kv);
		await db.exec("CREATE TABLE t(v)");
		await db.close();
		const boom = new Error("kv down");
		kv.failWhen((call) => call.method === "getBatch", { error: boom });
		await assert.rejects(open(kv), (error) => {
			assert.ok(error instanceof SqliteError);
			assert.equal(error.code, "SQLITE_IOERR_READ");
			assert.equal(error.cause, boom);
			return true;
		});
		assert.ok(kv.errors.includes(boom));
		// A KV that throws synchronously is handled the same way.
		kv.failWhen((call) => call.method === "getBatch", { error: boom, sync: true });
		await assert.rejects(open(kv), { code: "SQLITE_IOERR_READ", cause: boom });
		// An async onError that rejects: its rejection is not left unhandled
		// (which would end the process).
		kv.failWhen((call) => call.method === "getBatch", { error: boom });
		kv.onError = async () => {
			throw new Error("onError failed too");
		};
		const unhandled = [];
		const onUnhandled = (reason) => unhandled.push(reason);
		process.on("unhandledRejection", onUnhandled);
		try {
			await assert.rejects(open(kv), { code: "SQLITE_IOERR_READ", cause: boom });
			await new Promise((resolve) => setTimeout(resolve, 20));
		} finally {
			process.off("unhandledRejection", onUnhandled);
		}
		assert.deepEqual(unhandled, []);
		// One that throws: the same.
		kv.onError = () => {
			throw new Error("onError threw");
		};
		await assert.rejects(open(kv), { code: "SQLITE_IOERR_READ", cause: boom });
		kv.clearFaults();
		const again = await open(kv);
		await again.exec("CREATE TABLE u(v)");
		kv.failWhen((call) => call.method === "putBatch", { error: boom });
		await assert.rejects(again.run("INSERT INTO u VALUES (1)"), { code: "SQLITE_IOERR_WRITE", cause: boom });
		kv.clearFaults();
		await again.run("INSERT INTO u VALUES (2)");
		assert.deepEqual(await rows(again, "SELECT v FROM u"), [[2]]);
		await again.close();
	});

	test("KV failure on write rejects, keeps the cause, and leaves the database as the KV holds it", async () => {
		const kv = createTestKv();
		const db = await open(kv);
		await db.exec("CREATE TABLE t(v); INSERT INTO t VALUES (1)");
		const boom = new Error("write refused");
		kv.failWhen((call) => call.method === "putBatch", { error: boom });
		await assert.rejects(db.run("INSERT INTO t VALUES (2)"), (error) => {
			assert.ok(error instanceof SqliteError);
			assert.equal(error.code, "SQLITE_IOERR_WRITE");
			assert.equal(error.cause, boom);
			return true;
		});
		assert.ok(kv.errors.includes(boom));
		assert.deepEqual(await rows(db, "SELECT v FROM t"), [[1]]);
		// Whatever the KV rejects with or throws, however odd to show.
		const revoked = Proxy.revocable({}, {});
		revoked.revoke();
		const odd = [
			"a string",
			42,
			Object.create(null),
			{ toString: () => ({}) },
			new Proxy(new Error("a proxy"), {
				get: () => {
					throw new Error("no reads");
				},
			}),
			revoked.proxy,
		];
		for (const [i, cause] of odd.entries()) {
			kv.failWhen((call) => call.method === "putBatch", { error: cause, sync: i % 2 === 1 });
			await assert.rejects(db.run("INSERT INTO t VALUES (2)"), (error) => {
				assert.ok(error instanceof SqliteError, `cause ${i}: ${error}`);
				assert.equal(error.code, "SQLITE_IOERR_WRITE");
				assert.equal(error.cause, cause);
				assert.match(error.message, /^KV putBatch failed: ./);
				return true;
			});
			assert.deepEqual(await rows(db, "SELECT v FROM t"), [[1]]);
		}
		kv.clearFaults();
		await db.run("INSERT INTO t VALUES (3)");
		assert.deepEqual(await rows(db, "SELECT v FROM t"), [[1], [3]]);
		await db.close();
		const again = await open(kv);
		assert.deepEqual(await rows(again, "SELECT v FROM t"), [[1], [3]]);
		await again.close();
	});

	test("a failed deleteBatch of a large commit's journal (its commit point) rejects with SQLITE_IOERR_DELETE, the KV's error as cause", async () => {
		const kv = createTestKv();
		const db = await open(kv);
		await db.exec("CREATE TABLE t(b); INSERT INTO t VALUES (1)");
		const refused = new Error("delete refused");
		kv.failWhen((call) => call.method === "deleteBatch", { error: refused });
		// 1.2 MB: more than one putBatch takes, so it goes through a journal.
		const large =
			"INSERT INTO t SELECT randomblob(3000) FROM (WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 400) SELECT x FROM c)";
		await assert.rejects(db.run(large), (error) => {
			assert.ok(error instanceof SqliteError);
			assert.equal(error.code, "SQLITE_IOERR_DELETE");
			assert.equal(error.cause, refused);
			return true;
		});
		assert.ok(kv.errors.includes(refused));
		// The journal is still in the KV: the commit counts as not made.
		assert.deepEqual(await rows(db, "SELECT count(*) FROM t"), [[1]]);
		const copy = await open(kv.clone());
		assert.deepEqual(await rows(copy, "SELECT count(*) FROM t"), [[1]]);
		await copy.close();
		kv.clearFaults();
		await db.run(large);
		assert.deepEqual(await rows(db, "SELECT count(*) FROM t"), [[401]]);
		await db.close();
		const again = await open(kv);
		assert.deepEqual(await rows(again, "SELECT count(*) FROM t"), [[401]]);
		await again.close();
	});

	test("what a failed cleanup leaves in the KV (a removed journal's chunks, chunks past the end) is deleted once the next commit is made", async () => {
		// Small limits: a journal takes several deleteBatch calls to remove.
		const limits = { maxKeysPerCall: 8, maxBatchBytes: 64 * 1024 };
		const kv = createTestKv({ limits });
		const db = await open(kv, { limits });
		await db.exec(
			"CREATE TABLE t(v); INSERT INTO t SELECT randomblob(600) FROM (WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 400) SELECT x FROM c)",
		);
		const keys = () => Object.keys(kvDump(kv)).sort();
		const journalKeys = () => keys().filter((key) => key.startsWith("08010001") || key.startsWith("08010101"));
		// The file's keys: the metadata and a chunk per 4 KiB.
		const fileKeys = async () => {
			const chunks = Math.ceil((await db.export()).length / 4096);
			return ["08010000", ...Array.from({ length: chunks }, (_, i) => `08010100${i.toString(16).padStart(8, "0")}`)].sort();
		};
		// Every deleteBatch fails but the commit points (those with the
		// journal's metadata, 08010001): the calls resolve, onError hears.
		kv.failWhen((call) => call.method === "deleteBatch" && !call.keys.includes("08010001"));
		await db.run("UPDATE t SET v = randomblob(600)");
		assert.ok(journalKeys().length > 0, "a journal's chunks are left");
		await db.exec("DELETE FROM t WHERE rowid > 10; VACUUM");
		assert.ok(keys().length - journalKeys().length > (await fileKeys()).length, "chunks past the end are left");
		assert.ok(kv.errors.length >= 2);
		kv.clearFaults();
		await db.run("INSERT INTO t VALUES (1)");
		assert.deepEqual(keys(), await fileKeys());
		assert.deepEqual(await rows(db, "SELECT count(*) FROM t"), [[11]]);
		await db.close();
		const again = await open(kv, { limits });
		assert.deepEqual(await rows(again, "SELECT count(*) FROM t"), [[11]]);
		assert.deepEqual(await rows(again, "PRAGMA integrity_check"), [["ok"]]);
		await again.close();
	});

	test("corrupt KV contents make open reject with SQLITE_CORRUPT, never hang", async () => {
		const meta = new Uint8Array([8, 1, 0, 0]);
		const cases = [
			["garbage metadata", async (kv) => kv.inner.put(meta, new Uint8Array([1, 2, 3]))],
			["metadata of an unknown version", async (kv) => kv.inner.put(meta, new Uint8Array([9, 0, 0, 16, 0, 0, 0, 0, 0, 0]))],
			["a size beyond the format's maximum", async (kv) => kv.inner.put(meta, new Uint8Array([1, 0, 0, 0, 0, 0, 0, 0, 0, 1]))],
		];
		for (const [what, corrupt] of cases) {
			const kv = createTestKv();
			await corrupt(kv);
			await assert.rejects(open(kv), (error) => {
				assert.ok(error instanceof SqliteError, what);
				assert.equal(error.code, "SQLITE_CORRUPT", what);
				return true;
			});
		}
		// A getBatch that answers with the wrong number of values or wrong types.
		const base = createTestKv();
		const db = await open(base);
		await db.exec("CREATE TABLE t(v)");
		await db.close();
		const short = base.clone();
		short.getBatch = async (keys) => (await base.inner.getBatch(keys)).slice(1);
		await assert.rejects(open(short), { code: "SQLITE_CORRUPT" });
		const strings = base.clone();
		strings.getBatch = async (keys) => keys.map(() => "nope");
		await assert.rejects(open(strings), { code: "SQLITE_CORRUPT" });
		const notAnArray = base.clone();
		notAnArray.getBatch = async () => ({});
		await assert.rejects(open(notAnArray), { code: "SQLITE_CORRUPT" });
		// Values that only look like a Uint8Array (a Proxy of one).
		const proxies = base.clone();
		proxies.getBatch = async (keys) => (await base.inner.getBatch(keys)).map((v) => (v === null ? null : new Proxy(v, {})));
		await assert.rejects(open(proxies), { code: "SQLITE_CORRUPT", message: /no typed array/ });
		// Values whose buffer the store transferred away before they were read.
		const detached = base.clone();
		detached.getBatch = async (keys) =>
			(await base.inner.getBatch(keys)).map((v) => {
				if (v === null || v.length !== 4096) return v;
				const copy = v.slice();
				structuredClone(copy.buffer, { transfer: [copy.buffer] });
				return copy;
			});
		await assert.rejects(open(detached), { name: "SqliteError", code: "SQLITE_CORRUPT", message: /detached/ });
	});

	test("a size larger than the chunks present, or chunks of the wrong length", async () => {
		const base = createTestKv();
		const db = await open(base);
		await db.exec("CREATE TABLE t(v); INSERT INTO t VALUES ('x')");
		await db.close();
		// Missing chunks inside the size read as zeros (the format's rule): the
		// database still opens and reads, and SQLite's own checks stay clean.
		const bigger = base.clone();
		await bigger.inner.put(new Uint8Array([8, 1, 0, 0]), new Uint8Array([1, 0, 0, 0, 1, 0, 0, 0, 0, 0]));
		const grown = await open(bigger);
		assert.deepEqual(await rows(grown, "SELECT v FROM t"), [["x"]]);
		await grown.close();
		// A chunk longer than 4096 bytes is corrupt.
		const long = base.clone();
		await long.inner.put(new Uint8Array([8, 1, 1, 0, 0, 0, 0, 1]), new Uint8Array(5000));
		await assert.rejects(open(long), { name: "SqliteError", code: "SQLITE_CORRUPT" });
		// Page 1 missing entirely: zeros are not a database header.
		const headless = base.clone();
		await headless.inner.deleteBatch([new Uint8Array([8, 1, 1, 0, 0, 0, 0, 0])]);
		await assert.rejects(open(headless), SqliteError);
		// A size within the first page: not a database, and nothing is written.
		for (const size of [1, 2, 100, 511]) {
			const short = base.clone();
			await short.inner.put(new Uint8Array([8, 1, 0, 0]), new Uint8Array([1, 0, size, size >> 8, 0, 0, 0, 0, 0, 0]));
			const before = kvDump(short);
			await assert.rejects(
				open(short),
				(error) => error instanceof SqliteError && /SQLITE_(NOTADB|CORRUPT)/.test(error.code),
				`size ${size}`,
			);
			assert.deepEqual(kvDump(short), before, `size ${size}`);
		}
	});

	test("metadata claiming a huge file over a small database opens at once, with the real rows", async () => {
		const base = createTestKv();
		const db = await open(base);
		await db.exec("CREATE TABLE t(v); INSERT INTO t VALUES ('x')");
		await db.close();
		const lying = base.clone();
		// 1 TiB: 2^28 chunks, of which the KV holds two.
		const size = new Uint8Array(10);
		new DataView(size.buffer).setUint16(0, 1, true);
		new DataView(size.buffer).setBigUint64(2, 2n ** 40n, true);
		await lying.inner.put(new Uint8Array([8, 1, 0, 0]), size);
		const started = performance.now();
		const opened = await open(lying);
		assert.ok(performance.now() - started < 5_000, "open settled in seconds");
		assert.equal(lying.count(), 1, "one KV call");
		assert.deepEqual(await rows(opened, "SELECT v FROM t"), [["x"]]);
		const [[check]] = await rows(opened, "PRAGMA integrity_check");
		assert.equal(check, "ok");
		// The next write puts the true size back in the metadata.
		await opened.run("INSERT INTO t VALUES ('y')");
		await opened.close();
		const [, meta] = lying.entries().find(([k]) => k.length === 4 && k[3] === 0);
		assert.ok(new DataView(meta.buffer, meta.byteOffset).getBigUint64(2, true) < 2n ** 20n);
		const again = await open(lying);
		assert.deepEqual(await rows(again, "SELECT v FROM t ORDER BY v"), [["x"], ["y"]]);
		await again.close();
	});

	test("metadata claiming a huge file opens in seconds with the real rows when page 1 does not give the size either, read whole or not", async () => {
		const lyingKv = await untrustedTebibyte();
		for (const preload of [undefined, true]) {
			const lying = await lyingKv();
			const started = performance.now();
			const opened = await open(lying, { preload });
			assert.ok(performance.now() - started < 5_000, "open settled in seconds");
			assert.ok(lying.count() <= 64, `${lying.count()} KV calls`);
			await readsWritesAndReopens(opened, lying, { preload });
		}
	});

	test("a VACUUM that would cut a huge claimed size down to the real pages fails with SQLITE_IOERR_TRUNCATE, changes nothing, and the database goes on", async () => {
		// SQLite takes the file for 2^28 pages: VACUUM would cut 2^28 - 2 of
		// them away, each to be kept until the commit is durable. Past the
		// bound of lib/policy.txt (cut_chunks), the truncation fails.
		const lyingKv = await untrustedTebibyte();
		for (const preload of [undefined, true]) {
			const lying = await lyingKv();
			const opened = await open(lying, { preload });
			const before = kvDump(lying);
			await assert.rejects(opened.exec("VACUUM"), {
				name: "SqliteError",
				code: "SQLITE_IOERR_TRUNCATE",
				message:
					/^disk I\/O error: a truncation of 268435454 chunks of 4 KiB is past the bound of 1048576 \(bound cut_chunks of lib\/policy.txt\)$/,
			});
			// SQLite truncates after its commit point: the VACUUM's writes are
			// undone all the same, in the KV and in the live database.
			assert.deepEqual(kvDump(lying), before, `preload ${preload}`);
			await readsWritesAndReopens(opened, lying, { preload });
		}
	});

	test("a rollback journal claiming a huge size, or a huge database before its transaction, settles in seconds", async () => {
		const base = createTestKv();
		const db = await open(base);
		await db.exec("CREATE TABLE t(v); INSERT INTO t VALUES ('x')");
		await db.close();
		const meta = (bytes) => {
			const value = new Uint8Array(10);
			new DataView(value.buffer).setUint16(0, 1, true);
			new DataView(value.buffer).setBigUint64(2, BigInt(bytes), true);
			return value;
		};
		const journalMeta = new Uint8Array([8, 1, 0, 1]);
		const journalChunk0 = new Uint8Array([8, 1, 1, 1, 0, 0, 0, 0]);
		/** A journal header (no records) saying the database had `pages` pages. */
		const header = (pages) => {
			const bytes = new Uint8Array(4096);
			bytes.set([0xd9, 0xd5, 0x05, 0xf9, 0x20, 0xa1, 0x63, 0xd7]);
			const view = new DataView(bytes.buffer);
			view.setUint32(12, 0x1234);
			view.setUint32(16, pages);
			view.setUint32(20, 512);
			view.setUint32(24, 4096);
			return bytes;
		};
		// 1 TiB of journal (2^28 chunks) of which the KV holds none, then
		// one: open reads a few batches, rolls back what is there (nothing)
		// and removes the journal.
		for (const chunks of [[], [[journalChunk0, header(2)]]]) {
			const lying = base.clone();
			await lying.inner.putBatch([[journalMeta, meta(2 ** 40)], ...chunks]);
			const started = performance.now();
			const opened = await open(lying);
			assert.ok(performance.now() - started < 5_000, "open settled in seconds");
			assert.ok(lying.count() <= 8, `${lying.count()} KV calls`);
			assert.deepEqual(await rows(opened, "SELECT v FROM t"), [["x"]]);
			await opened.close();
			assert.equal(await lying.inner.get(journalMeta), null, "the journal is gone");
		}
		// A header saying the database had 2^31 pages before the transaction,
		// which neither the main file nor the journal's records hold: the
		// rollback would grow the file to 8 TiB. The KV stays as it was.
		const grown = base.clone();
		await grown.inner.putBatch([
			[journalMeta, meta(4096)],
			[journalChunk0, header(2 ** 31)],
		]);
		const before = kvDump(grown);
		await assert.rejects(open(grown), { name: "SqliteError", code: "SQLITE_CORRUPT", message: /rollback journal/ });
		assert.deepEqual(kvDump(grown), before);
	});

	test("a page that is not a database makes open reject with SQLITE_NOTADB", async () => {
		const kv = createTestKv();
		const meta = new Uint8Array([8, 1, 0, 0]);
		const chunk0 = new Uint8Array([8, 1, 1, 0, 0, 0, 0, 0]);
		await kv.inner.putBatch([
			[chunk0, new Uint8Array(4096).fill(0x41)],
			[meta, new Uint8Array([1, 0, 0, 16, 0, 0, 0, 0, 0, 0])],
		]);
		await assert.rejects(open(kv), { name: "SqliteError", code: "SQLITE_NOTADB" });
	});
});

describe("SqliteVfs (2.2.1 surface)", () => {
	test("open, same-name rejection, destroy", async () => {
		const vfs = new SqliteVfs();
		const db = await vfs.open("actor-a", createMemoryKv());
		await assert.rejects(vfs.open("actor-a", createMemoryKv()), { code: "SQLITE_BUSY", message: /already open on this instance/ });
		// Two opens of one name made at once: the second rejects too.
		const [one, two] = await Promise.allSettled([vfs.open("actor-z", createMemoryKv()), vfs.open("actor-z", createMemoryKv())]);
		assert.equal(one.status, "fulfilled");
		assert.match(String(two.reason), /already open on this instance/);
		await one.value.close();
		const other = await vfs.open("actor-b", createMemoryKv());
		await db.exec("CREATE TABLE t(v)");
		await db.close();
		// Closed names can be opened again.
		const again = await vfs.open("actor-a", createMemoryKv());
		await vfs.destroy();
		assert.equal(again.closed, true);
		assert.equal(other.closed, true);
		await assert.rejects(vfs.open("actor-c", createMemoryKv()), {
			name: "SqliteError",
			code: "SQLITE_MISUSE",
			message: "SqliteVfs is closed",
		});
		await vfs.destroy();
		// close() is destroy() by 2.2.1's other name.
		const closing = new SqliteVfs();
		const open1 = await closing.open("actor-d", createMemoryKv());
		await closing.close();
		assert.equal(open1.closed, true);
		await assert.rejects(closing.open("actor-e", createMemoryKv()), { code: "SQLITE_MISUSE", message: "SqliteVfs is closed" });
	});

	test("forceCloseByFileName and forceCloseAll (2.2.1's names) close, and later opens work", async () => {
		const vfs = new SqliteVfs({ "a WASM module": "2.2.1 took one; ignored" });
		const a = await vfs.open("a", createMemoryKv());
		const b = await vfs.open("b", createMemoryKv());
		assert.deepEqual(await vfs.forceCloseByFileName("a"), { allSucceeded: true });
		assert.deepEqual([a.closed, b.closed], [true, false]);
		assert.deepEqual(await vfs.forceCloseByFileName("none"), { allSucceeded: true });
		await vfs.forceCloseAll();
		assert.equal(b.closed, true);
		const c = await vfs.open("a", createMemoryKv());
		assert.equal(c.closed, false);
		// A close that rejects (a failed write the KV may hold, not undone) is reported.
		const kv = createMemoryKv();
		const failing = {
			get: (key) => kv.get(key),
			getBatch: (keys) => kv.getBatch(keys),
			put: (key, value) => kv.put(key, value),
			putBatch: () => Promise.reject(new Error("KV down")),
			deleteBatch: (keys) => kv.deleteBatch(keys),
			onError: () => {},
		};
		const d = await vfs.open("d", failing);
		await assert.rejects(d.exec("CREATE TABLE t(v)"), { code: "SQLITE_IOERR_WRITE" });
		assert.deepEqual(await vfs.forceCloseByFileName("d"), { allSucceeded: false });
		assert.equal(d.closed, true);
		await vfs.destroy();
	});
});
