// Interrupts, deadlines, and calls that the native engine finishes on an
// engine thread: what each leaves behind, and that the database answers the
// next call.

import { test, describe } from "node:test";
import assert from "node:assert/strict";

import { SqliteError, SqliteVfs, SqliteVfsPool } from "../index.mjs";
import { createTestKv } from "./helpers/kv.mjs";
import { BACKEND, open, rows, snapshot } from "./helpers/db.mjs";

const RUNAWAY = "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT count(*) FROM c";
/** A finite query that runs long enough (tens of ms or more) to leave the JS thread. */
const SLOW = (n = 300_000) =>
	`WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < ${n}) SELECT count(*), sum(x) FROM c`;
const SLOW_INSERT = (n, tag) =>
	`WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < ${n}) INSERT INTO t(v) SELECT '${tag}' || x FROM c`;

const isInterrupt = (error) => error instanceof SqliteError && error.code === "SQLITE_INTERRUPT";

async function reopened(kv) {
	const db = await open(kv.clone());
	try {
		return await snapshot(db);
	} finally {
		await db.close();
	}
}

/**
 * A database on `kv` for a test of the native engine's engine threads, or
 * null, the test skipped, on the WASM engine: it runs a call on the JS
 * thread, so nothing can call interrupt() while one runs (timeoutMs still
 * stops it) and no call leaves the thread.
 */
async function openNative(t, kv, options) {
	const db = await open(kv, options);
	if (db.backend === "native") return db;
	t.skip("the WASM engine runs calls on the JS thread");
	await db.close();
	return null;
}

describe("timeoutMs", () => {
	test("a runaway query is stopped, and the next call works", async () => {
		const db = await open(createTestKv(), { timeoutMs: 200 });
		const started = performance.now();
		await assert.rejects(db.query(RUNAWAY), (error) => isInterrupt(error) && /timeout/.test(error.message));
		const elapsed = performance.now() - started;
		assert.ok(elapsed >= 150 && elapsed < 10_000, `stopped after ${elapsed} ms`);
		assert.deepEqual(await rows(db, "SELECT 42"), [[42]]);
		await db.close();
	});

	test("an instruction that reads many pages (counting a table's rows) is stopped too", async () => {
		const kv = createTestKv();
		const setup = await open(kv);
		await setup.exec("CREATE TABLE t(v)");
		await setup.run(
			"WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 40000) INSERT INTO t SELECT randomblob(1000) FROM c",
		);
		await setup.close();
		// Read whole at open; a small page cache makes SQLite read the file
		// for every page. Counting the rows is one instruction, which the
		// progress handler never sees: its page reads check the deadline.
		const db = await open(kv, { timeoutMs: 1, preload: true });
		await db.exec("PRAGMA cache_size = 10");
		await assert.rejects(db.query("SELECT count(*) FROM t"), (error) => isInterrupt(error) && /timeout/.test(error.message));
		assert.deepEqual(await rows(db, "SELECT 42"), [[42]]);
		await db.close();
	});

	test("each call has its own deadline", async () => {
		const db = await open(createTestKv(), { timeoutMs: 2_000 });
		for (let i = 0; i < 3; i++) assert.deepEqual(await rows(db, SLOW(20_000)), [[20_000, 200_010_000]]);
		await db.close();
	});

	test("outside a transaction, a stopped statement leaves nothing; earlier statements of its script stay, durably", async () => {
		const kv = createTestKv();
		const db = await open(kv, { timeoutMs: 200 });
		await db.exec("CREATE TABLE t(v)");
		await assert.rejects(db.exec(`INSERT INTO t VALUES ('before'); ${SLOW_INSERT(1e9, "x")}; INSERT INTO t VALUES ('after')`), isInterrupt);
		assert.equal(db.inTransaction, false);
		assert.deepEqual(await rows(db, "SELECT v FROM t"), [["before"]]);
		assert.deepEqual(await reopened(kv), { t: [["before"]] });
		await db.close();
	});

	test("a script of statements too short for the progress handler stops before its next statement; those before stay, durably", async () => {
		const kv = createTestKv();
		const db = await open(kv, { timeoutMs: 200 });
		await db.exec("CREATE TABLE t(v)");
		// SQLite asks the progress handler every 100 instructions of one
		// statement: each of these is a few, one of which makes an 8 MB blob
		// (milliseconds to tens of them). 2,000 of them run for half a minute
		// and more.
		const script = `INSERT INTO t VALUES ('before'); ${"SELECT length(randomblob(8000000)); ".repeat(2_000)}`;
		const started = performance.now();
		await assert.rejects(db.exec(script), (error) => isInterrupt(error) && /timeout/.test(error.message));
		const elapsed = performance.now() - started;
		assert.ok(elapsed < 10_000, `stopped after ${Math.round(elapsed)} ms`);
		assert.deepEqual(await rows(db, "SELECT v FROM t"), [["before"]]);
		assert.deepEqual(await reopened(kv), { t: [["before"]] });
		await db.close();
	});

	test("a script of 300,000 short statements runs whole well within its deadline (no statement copies the rest of the script)", async () => {
		const db = await open(createTestKv(), { timeoutMs: 10_000 });
		// 0.3 to 1 s here; copying the rest of the text for each statement
		// took 26 s on the WASM engine.
		const started = performance.now();
		const result = await db.query("SELECT 1; ".repeat(300_000));
		const elapsed = performance.now() - started;
		assert.equal(result.rows.length, 300_000);
		assert.ok(elapsed < 10_000, `ran ${Math.round(elapsed)} ms`);
		await db.close();
	});

	test("inside a transaction, a stopped read keeps the transaction; a stopped write rolls it back", async () => {
		const kv = createTestKv();
		const db = await open(kv, { timeoutMs: 200 });
		await db.exec("CREATE TABLE t(v); INSERT INTO t VALUES ('committed')");
		await db.exec("BEGIN; INSERT INTO t VALUES ('pending')");
		await assert.rejects(db.query(RUNAWAY), isInterrupt);
		assert.equal(db.inTransaction, true, "a read-only statement leaves the transaction open");
		assert.deepEqual(await rows(db, "SELECT v FROM t ORDER BY v"), [["committed"], ["pending"]]);
		await assert.rejects(db.run(SLOW_INSERT(1e9, "x")), isInterrupt);
		assert.equal(db.inTransaction, false, "SQLite rolls back the transaction of a stopped write");
		assert.deepEqual(await rows(db, "SELECT v FROM t"), [["committed"]]);
		assert.deepEqual(await reopened(kv), { t: [["committed"]] });
		// The database answers, and takes new transactions.
		await db.exec("BEGIN; INSERT INTO t VALUES ('again'); COMMIT");
		assert.deepEqual(await reopened(kv), { t: [["again"], ["committed"]] });
		await db.close();
	});

	test("inside a transaction, a write stopped after its last instruction rolls the transaction back too; the calls queued after it reject", async () => {
		// A statement of straight-line code (no jumps, where SQLite asks the
		// progress handler) over 100 instructions, ending with a slow one: the
		// only check is the one SQLite makes as the statement returns, after
		// its row was inserted. A stop there reports SQLITE_INTERRUPT with the
		// row kept and the transaction open; the COMMIT queued after it
		// committed the row on the WASM engine.
		const terms = Array.from({ length: 60 }, () => "length(randomblob(1))").join(" + ");
		const write = `INSERT INTO t VALUES (${terms} + length(randomblob(5000000)))`;
		const kv = createTestKv();
		const db = await open(kv, { timeoutMs: 1 });
		await db.exec("CREATE TABLE t(v)");
		for (let i = 0; i < 3; i++) {
			const calls = [db.exec("BEGIN"), db.run(write), db.exec("COMMIT")];
			const [begin, insert, commit] = await Promise.allSettled(calls);
			assert.equal(begin.status, "fulfilled", `iteration ${i}`);
			assert.ok(isInterrupt(insert.reason), `iteration ${i}: ${insert.reason ?? "resolved"}`);
			assert.equal(commit.reason?.code, "SQLITE_ABORT_ROLLBACK", `iteration ${i}`);
			assert.equal(db.inTransaction, false);
		}
		assert.deepEqual(await rows(db, "SELECT count(*) FROM t"), [[0]]);
		assert.deepEqual(await reopened(kv), { t: [] });
		await db.close();
	});

	test("a write that resolves took effect once; one stopped has no effect, even when stopped as it commits", async () => {
		// A write of one long instruction (randomblob) through one cached
		// statement: SQLite asks the progress handler every 100 instructions
		// counted across the statement's runs, and so, every few runs, once
		// more on its way out, after its commit. A stop there reported
		// SQLITE_INTERRUPT for a row that was written (and the native engine,
		// stopping it for its inline budget, inserted it again on an engine
		// thread). Without a timeout, every call succeeds, each once; with one
		// shorter than a call, each call either resolves and its row is
		// there, or rejects and it is not.
		for (const timeoutMs of [null, 1]) {
			const kv = createTestKv();
			const db = await open(kv, { timeoutMs });
			await db.exec("CREATE TABLE t(k, b)");
			const resolved = [];
			const rejected = [];
			for (let k = 1; k <= 60; k++) {
				try {
					const { changes, lastInsertRowid } = await db.run("INSERT INTO t(k, b) VALUES (?, randomblob(?))", [k, 1_200_000]);
					assert.deepEqual([changes, lastInsertRowid], [1, resolved.length + 1]);
					resolved.push(k);
				} catch (error) {
					assert.ok(isInterrupt(error), String(error));
					rejected.push(k);
				}
			}
			if (timeoutMs === null) assert.equal(resolved.length, 60);
			const expected = resolved.map((k, i) => [i + 1, k]);
			const written = "SELECT rowid, k FROM t ORDER BY rowid";
			// (A read on the database with the 1 ms timeout may time out too.)
			if (timeoutMs === null) assert.deepEqual(await rows(db, written), expected);
			await db.close();
			const again = await open(kv.clone());
			assert.deepEqual(await rows(again, written), expected, `timeoutMs ${timeoutMs}: rejected ${rejected}`);
			await again.close();
		}
	});

	test("timeoutMs is validated; 0 and Infinity mean no limit, and so does a timeout past any clock", async () => {
		for (const bad of [-1, "100", Number.NaN, {}]) {
			await assert.rejects(open(createTestKv(), { timeoutMs: bad }), TypeError);
		}
		// The message says what was given: a string is quoted.
		await assert.rejects(open(createTestKv(), { timeoutMs: "100" }), { name: "TypeError", message: /got "100"$/ });
		await assert.rejects(open(createTestKv(), { timeoutMs: {} }), { name: "TypeError", message: /got object$/ });
		// The largest numbers once aborted the process (native: no Duration
		// holds them) or wrapped to a short timeout (2 ** 64 ns and more).
		for (const none of [0, Number.POSITIVE_INFINITY, null, 2 ** 64, 18_446_744_073_810, 1e300, Number.MAX_VALUE]) {
			const db = await open(createTestKv(), { timeoutMs: none });
			assert.deepEqual(await rows(db, SLOW(20_000)), [[20_000, 200_010_000]]);
			await db.close();
		}
	});

	test("timeoutMs works through SqliteVfs#open and the pool's handles too", async () => {
		const vfs = new SqliteVfs();
		const viaVfs = await vfs.open("actor-vfs", createTestKv(), { backend: BACKEND, timeoutMs: 100 });
		// Stopped by this timeout, not the default (30 s).
		let started = performance.now();
		await assert.rejects(viaVfs.query(RUNAWAY), (error) => isInterrupt(error) && /timeout/.test(error.message));
		assert.ok(performance.now() - started < 10_000, `stopped after ${performance.now() - started} ms`);
		assert.deepEqual(await rows(viaVfs, "SELECT 1"), [[1]]);
		await vfs.destroy();
		const pool = new SqliteVfsPool({ actorsPerInstance: 2, idleDestroyMs: 10 });
		const handle = await pool.acquire("actor-pool");
		const viaPool = await handle.open("actor-pool", createTestKv(), { backend: BACKEND, timeoutMs: 100 });
		started = performance.now();
		await assert.rejects(viaPool.query(RUNAWAY), (error) => isInterrupt(error) && /timeout/.test(error.message));
		assert.ok(performance.now() - started < 10_000, `stopped after ${performance.now() - started} ms`);
		assert.deepEqual(await rows(viaPool, "SELECT 1"), [[1]]);
		await pool.release("actor-pool");
		assert.equal(viaPool.closed, true);
		await pool.shutdown();
	});

	test("a KV write that has not settled holds its call and those behind it: neither timeoutMs nor interrupt() gives up on it", async () => {
		const kv = createTestKv();
		const db = await open(kv, { timeoutMs: 50 });
		await db.exec("CREATE TABLE t(v)");
		// The next putBatch settles when the test says so.
		let release;
		const held = new Promise((resolve) => {
			release = resolve;
		});
		const putBatch = kv.putBatch;
		kv.putBatch = async (entries) => {
			await held;
			return putBatch.call(kv, entries);
		};
		const settled = [];
		const write = db.run("INSERT INTO t VALUES (1)").then(() => settled.push("write"));
		const read = db.query("SELECT count(*) FROM t").then(({ rows }) => settled.push(`read ${rows[0][0]}`));
		const closing = db.close().then(() => settled.push("close"));
		await new Promise((resolve) => setTimeout(resolve, 100));
		db.interrupt();
		await new Promise((resolve) => setTimeout(resolve, 100));
		assert.deepEqual(settled, [], "nothing settled while the write was in flight, 200 ms past the timeout");
		release();
		await Promise.all([write, read, closing]);
		assert.deepEqual(settled, ["write", "read 1", "close"]);
		kv.putBatch = putBatch;
		const again = await open(kv);
		assert.deepEqual(await rows(again, "SELECT v FROM t"), [[1]]);
		await again.close();
	});

	test("RIVETKIT_SQLITE_TIMEOUT_MS sets the default (rivetkit opens without options); the option wins", async () => {
		const saved = process.env.RIVETKIT_SQLITE_TIMEOUT_MS;
		try {
			process.env.RIVETKIT_SQLITE_TIMEOUT_MS = "200";
			const db = await open(createTestKv());
			await assert.rejects(db.query(RUNAWAY), (error) => isInterrupt(error) && /timeout/.test(error.message));
			await db.close();
			process.env.RIVETKIT_SQLITE_TIMEOUT_MS = "1";
			const unlimited = await open(createTestKv(), { timeoutMs: 0 });
			assert.deepEqual(await rows(unlimited, SLOW(20_000)), [[20_000, 200_010_000]]);
			await unlimited.close();
			process.env.RIVETKIT_SQLITE_TIMEOUT_MS = "Infinity";
			const none = await open(createTestKv());
			assert.deepEqual(await rows(none, SLOW(20_000)), [[20_000, 200_010_000]]);
			await none.close();
			process.env.RIVETKIT_SQLITE_TIMEOUT_MS = "null";
			const unset = await open(createTestKv());
			assert.deepEqual(await rows(unset, SLOW(20_000)), [[20_000, 200_010_000]]);
			await unset.close();
			process.env.RIVETKIT_SQLITE_TIMEOUT_MS = "30s";
			await assert.rejects(open(createTestKv()), { name: "TypeError", message: /RIVETKIT_SQLITE_TIMEOUT_MS .*"30s"/ });
		} finally {
			if (saved === undefined) delete process.env.RIVETKIT_SQLITE_TIMEOUT_MS;
			else process.env.RIVETKIT_SQLITE_TIMEOUT_MS = saved;
		}
	});
});

describe("calls finished on an engine thread", () => {
	test("give what an inline run gives, each statement of a script run once", async () => {
		const kv = createTestKv();
		const db = await open(kv);
		await db.exec("CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT)");
		const n = 300_000;
		assert.deepEqual(await rows(db, SLOW(n)), [[n, (n * (n + 1)) / 2]]);
		// A script that leaves the JS thread midway: the statements before the
		// slow one are not run again, those after run once.
		await db.exec(`INSERT INTO t(v) VALUES ('first'); ${SLOW(n)}; ${SLOW_INSERT(50_000, "bulk")}; INSERT INTO t(v) VALUES ('last')`);
		assert.deepEqual(await rows(db, "SELECT count(*), min(v), max(id) FROM t"), [[50_002, "bulk1", 50_002]]);
		assert.deepEqual(await rows(db, "SELECT v FROM t WHERE id IN (1, 50002) ORDER BY id"), [["first"], ["last"]]);
		// Rows collected across the hand-over, from several statements.
		const { rows: got, columns } = await db.query(`SELECT 'a'; ${SLOW(n)}; SELECT 'b'`);
		assert.deepEqual(columns, ["'a'"]);
		assert.deepEqual(got, [["a"], [n, (n * (n + 1)) / 2], ["b"]]);
		// A long write inside a transaction runs to its end, and the
		// transaction stays open.
		await db.exec("BEGIN");
		const { changes } = await db.run(`UPDATE t SET v = v || '+' WHERE id > 1`);
		assert.equal(changes, 50_001);
		assert.equal(db.inTransaction, true);
		await db.exec("COMMIT");
		assert.deepEqual(await reopened(kv), await snapshot(db));
		await db.close();
	});

	test("queued calls run in order behind a long one, and group their writes", async () => {
		const kv = createTestKv();
		const db = await open(kv);
		await db.exec("CREATE TABLE t(v)");
		const order = [];
		const slow = db.query(SLOW()).then(() => order.push("slow"));
		const writes = Array.from({ length: 20 }, (_, i) => db.run("INSERT INTO t VALUES (?)", [i]).then(() => order.push(i)));
		await Promise.all([slow, ...writes]);
		assert.deepEqual(order, ["slow", ...Array.from({ length: 20 }, (_, i) => i)]);
		assert.deepEqual(await reopened(kv), await snapshot(db));
		assert.deepEqual(
			await rows(db, "SELECT v FROM t"),
			Array.from({ length: 20 }, (_, i) => [i]),
		);
		await db.close();
	});
});

describe("large transactions and files", () => {
	/** Whether a timer set as `call()` starts fires before it settles: the JS thread was let go meanwhile. */
	async function letsGo(call) {
		let fired = false;
		const timer = setTimeout(() => {
			fired = true;
		}, 0);
		await call();
		clearTimeout(timer);
		return fired;
	}

	test("a COMMIT, a ROLLBACK, export(), DROP, VACUUM and close() of tens of MB leave the JS thread", async (t) => {
		const kv = createTestKv();
		const db = await openNative(t, kv);
		if (db === null) return;
		await db.exec("CREATE TABLE t(v BLOB)");
		const blob = new Uint8Array(64 * 1024).fill(7);
		// Many short writes, each inline: the transaction grows large, and
		// the statement that ends it has it all to write.
		const grow = async () => {
			await db.exec("BEGIN");
			for (let i = 0; i < 320; i++) await db.run("INSERT INTO t VALUES (?)", [blob]);
		};
		await grow();
		assert.equal(await letsGo(() => db.exec("COMMIT")), true, "COMMIT");
		let exported;
		assert.equal(await letsGo(async () => (exported = await db.export())), true, "export()");
		assert.ok(exported.length > 20 * 1024 * 1024);
		// A ROLLBACK that puts back 20 MB of old pages. (One that only drops
		// pages appended past the old end is too short to tell apart.)
		await db.exec("BEGIN");
		const other = new Uint8Array(64 * 1024).fill(9);
		for (let i = 1; i <= 320; i++) await db.run("UPDATE t SET v = ? WHERE rowid = ?", [other, i]);
		assert.equal(await letsGo(() => db.exec("ROLLBACK")), true, "ROLLBACK");
		assert.deepEqual(await rows(db, "SELECT count(*), sum(v = ?) FROM t", [blob]), [[320, 320]]);
		assert.deepEqual(await db.export(), exported);
		// What was written is what an inline commit writes: the KV holds it.
		const copy = await open(kv.clone());
		assert.deepEqual(await copy.export(), exported);
		assert.deepEqual(await rows(copy, "PRAGMA integrity_check"), [["ok"]]);
		await copy.close();
		// DROP frees every page of the table in one step SQLite cannot stop,
		// and VACUUM then truncates the file (here by 20 MB): each starts on
		// an engine thread, and the call returns at once. Each is a few ms of
		// work, which a busy host descheduling the JS thread can blur: a fresh
		// copy gets up to three tries.
		let slow;
		for (let attempt = 0; attempt < 3 && slow?.length !== 0; attempt++) {
			const copy = await open(kv.clone());
			slow = [];
			for (const sql of ["DROP TABLE t", "VACUUM"]) {
				const started = performance.now();
				const call = copy.exec(sql);
				const held = performance.now() - started;
				await call;
				const total = performance.now() - started;
				if (!(held < total / 2)) slow.push(`${sql} held the JS thread ${held.toFixed(1)} ms of ${total.toFixed(1)} ms`);
			}
			assert.ok((await copy.export()).length < 1024 * 1024);
			await copy.close();
		}
		assert.deepEqual(slow, []);
		// Closing removes tens of MB of local file.
		assert.equal(await letsGo(() => db.close()), true, "close()");
	});
});

describe("interrupt()", () => {
	test("stops the running call; calls queued behind it run", async (t) => {
		const db = await openNative(t, createTestKv(), { timeoutMs: 0 });
		if (db === null) return;
		const running = db.query(RUNAWAY);
		const next = db.query("SELECT 'next'");
		const started = performance.now();
		setTimeout(() => db.interrupt(), 50);
		await assert.rejects(running, (error) => isInterrupt(error) && error.message === "interrupted");
		const elapsed = performance.now() - started;
		assert.ok(elapsed < 5_000, `stopped after ${elapsed} ms`);
		assert.deepEqual((await next).rows, [["next"]]);
		// An interrupt with nothing running stops nothing later.
		db.interrupt();
		assert.deepEqual(await rows(db, SLOW(20_000)), [[20_000, 200_010_000]]);
		await db.close();
	});

	test("stops a script of statements too short for the progress handler, before its next statement", async (t) => {
		const kv = createTestKv();
		const db = await openNative(t, kv, { timeoutMs: 0 });
		if (db === null) return;
		await db.exec("CREATE TABLE t(v)");
		const script = `INSERT INTO t VALUES ('before'); ${"SELECT length(randomblob(8000000)); ".repeat(2_000)}`;
		const running = db.exec(script);
		const started = performance.now();
		setTimeout(() => db.interrupt(), 100);
		await assert.rejects(running, (error) => isInterrupt(error) && error.message === "interrupted");
		const elapsed = performance.now() - started;
		assert.ok(elapsed < 10_000, `stopped after ${Math.round(elapsed)} ms`);
		assert.deepEqual(await rows(db, "SELECT v FROM t"), [["before"]]);
		assert.deepEqual(await reopened(kv), { t: [["before"]] });
		await db.close();
	});

	test("a write inside a transaction that rejects with SQLITE_INTERRUPT had no effect, and took its transaction with it, even when stopped as it ended", async (t) => {
		const base = createTestKv();
		const setup = await open(base);
		await setup.exec(
			`CREATE TABLE t(id INTEGER PRIMARY KEY, v INTEGER, pad BLOB); CREATE INDEX tv ON t(v); CREATE TABLE log(i);
			 WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 6000) INSERT INTO t SELECT x, x * 7, zeroblob(1000) FROM c`,
		);
		await setup.close();
		// Paged lazily over a KV that answers after 2 ms: a write waits for
		// pages on an engine thread, where an interrupt finds it anywhere,
		// its very end included (SQLite asks the progress handler once more
		// after a statement's last instruction).
		const kv = createTestKv({ inner: base.inner.clone(), latencyMs: 2 });
		const db = await openNative(t, kv, { preload: false, timeoutMs: 0 });
		if (db === null) return;
		let stopped = 0;
		for (let i = 0; i < 200; i++) {
			const id = 1 + ((i * 397) % 6000);
			const v = 1_000_000 + i;
			const calls = [
				db.exec("BEGIN"),
				db.run("UPDATE t SET v = ? WHERE id = ?", [v, id]),
				db.run("INSERT INTO log VALUES (?)", [i]),
				db.exec("COMMIT"),
			];
			const timer = setTimeout(() => db.interrupt(), i % 8);
			const [, update, insert, commit] = await Promise.allSettled(calls);
			clearTimeout(timer);
			if (db.inTransaction) await db.exec("ROLLBACK");
			if (update.status === "fulfilled") continue;
			stopped++;
			assert.equal(update.reason.code, "SQLITE_INTERRUPT");
			assert.equal(insert.reason?.code, "SQLITE_ABORT_ROLLBACK", `iteration ${i}`);
			assert.equal(commit.reason?.code, "SQLITE_ABORT_ROLLBACK", `iteration ${i}`);
			assert.deepEqual(await rows(db, "SELECT v = ? FROM t WHERE id = ?", [v, id]), [[0]], `iteration ${i}`);
			assert.deepEqual(await rows(db, "SELECT count(*) FROM log WHERE i = ?", [i]), [[0]], `iteration ${i}`);
		}
		assert.ok(stopped > 0, "no write was stopped");
		await db.close();
		const again = await open(kv.clone());
		assert.deepEqual(await rows(again, "PRAGMA integrity_check"), [["ok"]]);
		assert.deepEqual(await rows(again, "SELECT count(*) FROM t WHERE v >= 1000000"), await rows(again, "SELECT count(*) FROM log"));
		await again.close();
	});

	test("made in an exec() callback, it cannot stop that exec, whose statements have all run (both engines)", async () => {
		const db = await open(createTestKv());
		await db.exec("CREATE TABLE t(x); INSERT INTO t VALUES (1), (2), (3)");
		const seen = [];
		await db.exec("SELECT x FROM t ORDER BY x; INSERT INTO t VALUES (4)", (row) => {
			seen.push(row[0]);
			db.interrupt();
		});
		assert.deepEqual(seen, [1, 2, 3]);
		// Nothing was running to stop: the next call is not affected.
		assert.deepEqual(await rows(db, "SELECT count(*) FROM t"), [[4]]);
		await db.close();
	});

	test("a call finished on an engine thread settles before the calls queued behind it run", async (t) => {
		const kv = createTestKv();
		const db = await openNative(t, kv, { timeoutMs: 0 });
		if (db === null) return;
		await db.exec("CREATE TABLE t(v)");
		const order = [];
		// A long read, then a write of its own, then a longer read, queued together.
		const first = db.query(SLOW(300_000)).then(() => order.push("first"));
		const write = db.run("INSERT INTO t VALUES ('w')").then(() => order.push("write"));
		const second = db.query(SLOW(3_000_000)).then(() => order.push("second"));
		await Promise.all([first, write, second]);
		assert.deepEqual(order, ["first", "write", "second"]);
		// An interrupted call rejects at once, not when the call behind it is done.
		const runaway = db.query(RUNAWAY);
		const behind = db.query(SLOW(3_000_000));
		let interrupted = 0;
		setTimeout(() => {
			interrupted = performance.now();
			db.interrupt();
		}, 50);
		await assert.rejects(runaway, isInterrupt);
		const stopped = performance.now();
		await behind;
		const done = performance.now();
		assert.ok(
			stopped - interrupted < (done - interrupted) / 2,
			`rejected after ${Math.round(stopped - interrupted)} ms; the call behind it was done after ${Math.round(done - interrupted)} ms`,
		);
		assert.deepEqual((await reopened(kv)).t, [["w"]]);
		await db.close();
	});

	test("after close(), stops the call close() waits for; close() then resolves", async (t) => {
		const kv = createTestKv();
		// A deadline well past the bound below: without the interrupt, the
		// call fails late and with another message, instead of hanging.
		const db = await openNative(t, kv, { timeoutMs: 10_000 });
		if (db === null) return;
		await db.exec("CREATE TABLE t (v); INSERT INTO t VALUES ('kept')");
		const running = db.query(RUNAWAY);
		const closing = db.close();
		assert.equal(db.closed, true);
		const started = performance.now();
		setTimeout(() => db.interrupt(), 50);
		await assert.rejects(running, (error) => isInterrupt(error) && error.message === "interrupted");
		await closing;
		const elapsed = performance.now() - started;
		assert.ok(elapsed < 5_000, `stopped after ${elapsed} ms`);
		// Once closed, interrupt() does nothing, and the data is intact.
		db.interrupt();
		assert.deepEqual((await reopened(kv)).t, [["kept"]]);
	});

	test("the JS thread keeps running while a long call runs", async (t) => {
		const db = await openNative(t, createTestKv());
		if (db === null) return;
		let ticks = 0;
		const timer = setInterval(() => ticks++, 10);
		const other = await open(createTestKv());
		const started = performance.now();
		const long = db.query(SLOW(2_000_000));
		// Another database answers meanwhile.
		let answered = 0;
		while (performance.now() - started < 100) {
			await other.query("SELECT 1");
			answered++;
		}
		await long;
		clearInterval(timer);
		const elapsed = performance.now() - started;
		assert.ok(answered > 10, `the other database answered ${answered} queries`);
		assert.ok(ticks >= Math.min(5, elapsed / 40), `${ticks} timer ticks in ${Math.round(elapsed)} ms`);
		await db.close();
		await other.close();
	});

	test("a script of many short statements, a statement of several MiB and a long parameter leave the JS thread", async (t) => {
		const db = await openNative(t, createTestKv());
		if (db === null) return;
		// How long the JS thread is held by a call's synchronous part: a
		// call handed to an engine thread returns at once.
		const held = (sql) => {
			const started = performance.now();
			const call = db.query(sql);
			return { ms: performance.now() - started, call };
		};
		// Each statement well within the inline budget, the script far past
		// it: the statements share the call's budget.
		const statement =
			"SELECT count(*) FROM (WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 3000) SELECT x FROM c);";
		const script = held(statement.repeat(400));
		const total = performance.now();
		assert.equal((await script.call).rows.length, 400);
		const scriptMs = performance.now() - total + script.ms;
		assert.ok(script.ms < scriptMs / 2, `held ${script.ms.toFixed(1)} ms of ${scriptMs.toFixed(1)} ms`);
		// Compiling is not cut short: a long text is compiled on an engine thread.
		const list = Array.from({ length: 700_000 }, (_, i) => i).join(",");
		const big = held(`SELECT 5 IN (${list}), 'big'`);
		const started = performance.now();
		assert.deepEqual((await big.call).rows, [[1, "big"]]);
		const bigMs = performance.now() - started + big.ms;
		assert.ok(big.ms < bigMs / 2, `held ${big.ms.toFixed(1)} ms of ${bigMs.toFixed(1)} ms`);
		// Nor is one virtual table call reading a long value: FTS5 parses a
		// query of 60 KiB in one call, in time that grows faster than its length.
		await db.exec("CREATE VIRTUAL TABLE f USING fts5(x); INSERT INTO f VALUES ('a b'), ('a'), ('b')");
		const fts = (() => {
			const at = performance.now();
			const call = db.query("SELECT count(*) FROM f WHERE f MATCH ?", [`a${" AND b".repeat(10_000)}`]);
			return { ms: performance.now() - at, call };
		})();
		const ftsStarted = performance.now();
		assert.deepEqual((await fts.call).rows, [[1]]);
		const ftsMs = performance.now() - ftsStarted + fts.ms;
		assert.ok(fts.ms < ftsMs / 4, `held ${fts.ms.toFixed(1)} ms of ${ftsMs.toFixed(1)} ms`);
		await db.close();
	});

	test("a write made long by a trigger created since it last ran leaves the JS thread", async (t) => {
		const db = await openNative(t, createTestKv());
		if (db === null) return;
		await db.exec("CREATE TABLE t(v); CREATE TABLE log(n)");
		const insert = "INSERT INTO t(v) VALUES (?)";
		await db.exec("BEGIN");
		// A quick write inside a transaction runs inline: the engine learns it is quick.
		await db.run(insert, [1]);
		await db.exec(
			"CREATE TRIGGER slow AFTER INSERT ON t BEGIN INSERT INTO log SELECT count(*) FROM (WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 3000000) SELECT x FROM c); END",
		);
		let ticks = 0;
		const timer = setInterval(() => ticks++, 10);
		const started = performance.now();
		await db.run(insert, [2]);
		const elapsed = performance.now() - started;
		clearInterval(timer);
		assert.ok(ticks >= Math.min(5, elapsed / 40), `${ticks} timer ticks in ${Math.round(elapsed)} ms`);
		assert.equal(db.inTransaction, true);
		await db.exec("COMMIT");
		assert.deepEqual(await rows(db, "SELECT n FROM log"), [[3_000_000]]);
		await db.close();
	});
	/**
	 * Runs `call` while a 10 ms timer ticks: whether the JS thread stayed
	 * free (ticks in proportion to the time the call took).
	 */
	async function leavesTheThread(call) {
		let ticks = 0;
		const timer = setInterval(() => ticks++, 10);
		const started = performance.now();
		try {
			await call();
		} finally {
			clearInterval(timer);
		}
		const elapsed = performance.now() - started;
		assert.ok(ticks >= Math.min(5, elapsed / 40), `${ticks} timer ticks in ${Math.round(elapsed)} ms`);
	}

	const SLOW_TRIGGER =
		"CREATE TRIGGER slow AFTER INSERT ON t BEGIN INSERT INTO log SELECT count(*) FROM (WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 3000000) SELECT x FROM c); END";

	test("a write made long by a trigger that a rollback brought back leaves the JS thread", async (t) => {
		const db = await openNative(t, createTestKv());
		if (db === null) return;
		await db.exec(`CREATE TABLE t(v); CREATE TABLE log(n); ${SLOW_TRIGGER}`);
		const insert = "INSERT INTO t(v) VALUES (?)";
		// Without the trigger the insert is quick, and the engine learns so;
		// ROLLBACK brings the trigger back.
		await db.exec("BEGIN; DROP TRIGGER slow");
		await db.run(insert, [1]);
		await db.exec("ROLLBACK");
		await db.exec("BEGIN; SAVEPOINT a; DROP TRIGGER slow");
		await db.run(insert, [2]);
		await db.exec("ROLLBACK TO a");
		await leavesTheThread(() => db.run(insert, [3]));
		await db.exec("COMMIT");
		await leavesTheThread(async () => {
			await db.exec("BEGIN");
			await db.run(insert, [4]);
			await db.exec("COMMIT");
		});
		assert.deepEqual(await rows(db, "SELECT v FROM t ORDER BY v"), [[3], [4]]);
		assert.deepEqual(await rows(db, "SELECT n FROM log"), [[3_000_000], [3_000_000]]);
		await db.close();
	});

	test("a write made long by foreign keys turned on since it last ran leaves the JS thread", async (t) => {
		const db = await openNative(t, createTestKv());
		if (db === null) return;
		await db.exec(
			"CREATE TABLE p(id INTEGER PRIMARY KEY); CREATE TABLE c(p REFERENCES p(id) ON DELETE CASCADE); WITH RECURSIVE n(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM n WHERE x < 400000) INSERT INTO c SELECT 1 FROM n; INSERT INTO p VALUES (1), (2)",
		);
		const remove = "DELETE FROM p WHERE id = ?";
		// Foreign keys off: a delete by primary key is quick.
		await db.exec("BEGIN");
		await db.run(remove, [2]);
		await db.exec("COMMIT; PRAGMA foreign_keys = ON; BEGIN");
		// On: it deletes every row of c that refers to p 1.
		await leavesTheThread(() => db.run(remove, [1]));
		await db.exec("COMMIT");
		assert.deepEqual(await rows(db, "SELECT count(*) FROM c"), [[0]]);
		await db.close();
	});

	test("a write made long by a DETACH that unmasked another table of its name leaves the JS thread", async (t) => {
		const db = await openNative(t, createTestKv());
		if (db === null) return;
		await db.exec(
			"ATTACH ':memory:' AS a1; ATTACH ':memory:' AS a2; CREATE TABLE a1.x(v); CREATE TABLE a2.x(v); CREATE TABLE a2.log(n); CREATE TRIGGER a2.slow AFTER INSERT ON x BEGIN INSERT INTO log SELECT count(*) FROM (WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM c WHERE i < 3000000) SELECT i FROM c); END",
		);
		const insert = "INSERT INTO x VALUES (?)";
		// x is a1.x, which has no trigger: the insert is quick.
		await db.exec("BEGIN");
		await db.run(insert, [1]);
		await db.exec("COMMIT; DETACH a1; BEGIN");
		// x is a2.x now.
		await leavesTheThread(() => db.run(insert, [2]));
		await db.exec("COMMIT");
		assert.deepEqual(await rows(db, "SELECT n FROM a2.log"), [[3_000_000]]);
		await db.close();
	});

	test("a command to a virtual table inside a transaction leaves the JS thread; its transaction commits whole", async (t) => {
		const kv = createTestKv();
		const db = await openNative(t, kv);
		if (db === null) return;
		await db.exec(
			"CREATE VIRTUAL TABLE f USING fts5(body); WITH RECURSIVE n(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM n WHERE x < 60000) INSERT INTO f SELECT printf('word%d other%d text', x, x % 97) FROM n",
		);
		await db.exec("BEGIN; INSERT INTO f VALUES ('added')");
		// FTS5's 'rebuild' reads the whole table in one call into the module.
		await leavesTheThread(() => db.run("INSERT INTO f(f) VALUES ('rebuild')"));
		// FTS5 writes the index entries it held back at a savepoint and at
		// the commit, running statements of its own: neither is cut short.
		await db.exec("SAVEPOINT s; RELEASE s");
		assert.equal(db.inTransaction, true);
		await db.exec("COMMIT");
		assert.deepEqual(await rows(db, "SELECT count(*) FROM f WHERE f MATCH 'word777 OR added'"), [[2]]);
		await db.close();
		const reopened = await open(kv);
		assert.deepEqual(await rows(reopened, "SELECT count(*) FROM f WHERE f MATCH 'added'"), [[1]]);
		assert.deepEqual(await rows(reopened, "PRAGMA integrity_check"), [["ok"]]);
		await reopened.close();
	});
});

describe("the engine-thread pool", () => {
	// At most 16 engine threads run at once (see README, Threads).
	const RUNNING = 16;
	const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
	/** `promise`, or a rejection after `ms` (a test that would hang fails instead). */
	const within = (promise, ms, what) =>
		Promise.race([promise, sleep(ms).then(() => Promise.reject(new Error(`${what}: not settled after ${ms} ms`)))]);

	test("databases waiting for their KV's page reads do not hold up other databases' calls", async (t) => {
		const base = createTestKv();
		const setup = await openNative(t, base);
		if (setup === null) return;
		await setup.exec(
			"CREATE TABLE t(v); WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 3000) INSERT INTO t SELECT printf('%0300d', x) FROM c",
		);
		await setup.close();
		// More databases than running threads, each paging lazily on a KV
		// whose page reads wait (after open) until released.
		const gate = { open: false, waiting: [] };
		const stuck = [];
		for (let i = 0; i < RUNNING + 2; i++) {
			const kv = base.clone();
			const getBatch = kv.getBatch;
			let opened = false;
			kv.getBatch = (keys) =>
				!opened || gate.open ? getBatch(keys) : new Promise((resolve) => gate.waiting.push(() => resolve(getBatch(keys))));
			stuck.push(await open(kv, { preload: false, timeoutMs: 0 }));
			opened = true;
		}
		const scans = stuck.map((db) => db.query("SELECT count(*) FROM t"));
		try {
			for (let i = 0; i < 2000 && gate.waiting.length < stuck.length; i++) await sleep(10);
			assert.equal(gate.waiting.length, stuck.length, "every database waits for its pages at once");
			// Another database's call that needs a thread runs, and its
			// timeout stops it; its close() (on a thread too) goes through.
			const other = await open(createTestKv(), { timeoutMs: 200 });
			await within(
				assert.rejects(other.query(RUNAWAY), (error) => isInterrupt(error) && /timeout/.test(error.message)),
				20_000,
				"the other database's runaway query",
			);
			await within(other.close(), 20_000, "the other database's close()");
		} finally {
			gate.open = true;
			for (const release of gate.waiting.splice(0)) release();
		}
		for (const scan of scans) assert.deepEqual((await scan).rows, [[3000]]);
		for (const db of stuck) await db.close();
	});

	test("a call waiting for a thread behind other databases' long calls: its timeout counts from when it runs; interrupt() stops it at once", async (t) => {
		const probe = await openNative(t, createTestKv());
		if (probe === null) return;
		await probe.close();
		// Every running thread busy with a runaway query until its timeout.
		const hogs = [];
		for (let i = 0; i < RUNNING; i++) hogs.push(await open(createTestKv(), { timeoutMs: 3000 }));
		let hogsDone = false;
		const hogged = Promise.allSettled(hogs.map((db) => db.query(RUNAWAY))).then((outcomes) => {
			hogsDone = true;
			return outcomes;
		});
		await sleep(100);
		// A query too long to run inline waits for a thread; its 1.5 s are
		// counted once it has one, so it completes. (It takes about 15 ms
		// alone: a 100-fold margin, as engine threads run at a lower priority
		// than any other busy program on the machine.)
		const patient = await open(createTestKv(), { timeoutMs: 1500 });
		const waited = patient.query(SLOW(100_000));
		// One interrupted while it waits stops without waiting for a thread.
		const interrupted = await open(createTestKv(), { timeoutMs: 0 });
		const stopped = interrupted.query(RUNAWAY);
		setTimeout(() => interrupted.interrupt(), 50);
		await assert.rejects(stopped, (error) => isInterrupt(error) && error.message === "interrupted");
		assert.equal(hogsDone, false, "the interrupted call waited for the other databases' calls");
		assert.deepEqual(await rows(interrupted, "SELECT 'next'"), [["next"]]);
		assert.deepEqual((await waited).rows, [[100_000, 5_000_050_000]]);
		for (const outcome of await hogged) assert.ok(isInterrupt(outcome.reason), String(outcome.reason));
		for (const db of [...hogs, patient, interrupted]) await db.close();
	});
});
