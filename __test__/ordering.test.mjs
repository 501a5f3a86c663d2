import { test, describe } from "node:test";
import assert from "node:assert/strict";

import { SqliteError } from "../index.mjs";
import { createTestKv, kvFromMutations } from "./helpers/kv.mjs";
import { open, rows } from "./helpers/db.mjs";

describe("call order and group commit", () => {
	test("calls issued without await run one at a time, in call order", async () => {
		const db = await open(createTestKv({ latencyMs: 1 }));
		const results = [];
		const calls = [
			db.exec("CREATE TABLE t(i INTEGER PRIMARY KEY, v)"),
			...Array.from({ length: 20 }, (_, i) => db.run("INSERT INTO t(v) VALUES (?)", [i])),
			db.query("SELECT count(*) FROM t"),
			db.run("DELETE FROM t WHERE v < 10"),
			db.query("SELECT v FROM t ORDER BY i"),
		];
		calls.forEach((p, i) => p.then(() => results.push(i)));
		const settled = await Promise.all(calls);
		assert.deepEqual(
			results,
			calls.map((_, i) => i),
		);
		assert.deepEqual(settled[21].rows, [[20]]);
		assert.deepEqual(
			settled[23].rows.map((r) => r[0]),
			[10, 11, 12, 13, 14, 15, 16, 17, 18, 19],
		);
		await db.close();
	});

	test("100 concurrent inserts are coalesced into few KV writes, each durable when it resolves", async () => {
		const kv = createTestKv({ latencyMs: 1 });
		const db = await open(kv);
		await db.exec("CREATE TABLE t(v)");
		kv.resetCounts();
		// The KV now, and every mutation applied after, to rebuild any later state.
		const baseKv = kv.inner.clone();
		const applied = [];
		kv.onMutation = (m) => applied.push(m);
		const durableAtResolve = [];
		const writes = Array.from({ length: 100 }, (_, i) =>
			db.run("INSERT INTO t VALUES (?)", [i]).then(async () => {
				durableAtResolve.push({ i, mutations: applied.length });
			}),
		);
		await Promise.all(writes);
		const puts = kv.count("putBatch");
		assert.ok(puts <= 5, `${puts} putBatch calls for 100 concurrent inserts`);
		// When insert i resolved, the KV already held row i: every insert,
		// checked on the KV as it was at that moment (one state per write).
		assert.equal(durableAtResolve.length, 100);
		const byState = new Map();
		for (const entry of durableAtResolve) byState.set(entry.mutations, [...(byState.get(entry.mutations) ?? []), entry]);
		assert.ok(byState.size <= puts);
		for (const [mutations, resolved] of byState) {
			const state = await kvFromMutations(applied.slice(0, mutations), baseKv);
			const copy = await open(createTestKv({ inner: state }));
			const held = new Set((await rows(copy, "SELECT v FROM t")).map(([v]) => v));
			for (const { i } of resolved) assert.ok(held.has(i), `insert ${i} resolved before the KV held it`);
			await copy.close();
		}
		assert.deepEqual(await rows(db, "SELECT count(*) FROM t"), [[100]]);
		await db.close();
	});

	test("a read issued after a write is not answered before the write is durable", async () => {
		const kv = createTestKv({ latencyMs: 5 });
		const db = await open(kv);
		await db.exec("CREATE TABLE t(v)");
		let writeDone = false;
		const write = db.run("INSERT INTO t VALUES (1)").then(() => {
			writeDone = true;
		});
		const read = db.query("SELECT count(*) FROM t").then((r) => {
			assert.equal(writeDone, true);
			return r.rows;
		});
		assert.deepEqual(await read, [[1]]);
		await write;
		await db.close();
	});

	test("a transaction opened among concurrent calls does not hold back earlier writes", async () => {
		const kv = createTestKv({ latencyMs: 1 });
		const db = await open(kv);
		await db.exec("CREATE TABLE t(v)");
		const first = db.run("INSERT INTO t VALUES ('before')");
		const begin = db.exec("BEGIN");
		// Awaiting the first write while the transaction is open must not deadlock.
		await first;
		await begin;
		await db.run("INSERT INTO t VALUES ('inside')");
		const copy = await open(kv.clone());
		assert.deepEqual(await rows(copy, "SELECT v FROM t"), [["before"]]);
		await copy.close();
		await db.exec("COMMIT");
		assert.deepEqual(await rows(db, "SELECT v FROM t ORDER BY rowid"), [["before"], ["inside"]]);
		await db.close();
	});

	test("a failed coalesced persist rejects every call in it and restores the durable state", async () => {
		const kv = createTestKv({ latencyMs: 20 });
		const db = await open(kv);
		await db.exec("CREATE TABLE t(v); INSERT INTO t VALUES ('kept')");
		// Hold the KV busy with one write, queue several behind it, fail the next putBatch.
		const first = db.run("INSERT INTO t VALUES ('first')");
		await new Promise((resolve) => setImmediate(resolve));
		assert.equal(kv.calls.at(-1).method, "putBatch"); // first's write is under way
		const queued = Array.from({ length: 5 }, (_, i) => db.run("INSERT INTO t VALUES (?)", [`q${i}`]));
		kv.failWhen((call) => call.method === "putBatch");
		await first;
		const outcomes = await Promise.allSettled(queued);
		assert.ok(outcomes.every((o) => o.status === "rejected"));
		assert.ok(outcomes.every((o) => o.reason.code === "SQLITE_IOERR_WRITE" && o.reason.cause instanceof Error));
		kv.clearFaults();
		assert.deepEqual(await rows(db, "SELECT v FROM t ORDER BY rowid"), [["kept"], ["first"]]);
		await db.run("INSERT INTO t VALUES ('after')");
		await db.close();
		const again = await open(kv);
		assert.deepEqual(await rows(again, "SELECT v FROM t ORDER BY rowid"), [["kept"], ["first"], ["after"]]);
		await again.close();
	});

	test("150,000 calls queued behind a call that goes on on an engine thread all settle, in order", async () => {
		const kv = createTestKv();
		const db = await open(kv);
		await db.exec("CREATE TABLE t(v)");
		// A write, then a call with over 16 KiB of parameters (the native
		// engine starts it on an engine thread), then the queue.
		const calls = [db.run("INSERT INTO t VALUES (0)"), db.query("SELECT length(?)", [new Uint8Array(20_000)])];
		for (let i = 1; i <= 150_000; i++) calls.push(db.query("SELECT ?", [i]));
		calls.push(db.run("INSERT INTO t VALUES (1)"));
		let settled = 0;
		const order = await Promise.all(calls.map((call) => call.then(() => settled++)));
		assert.ok(order.every((n, i) => n === i));
		const results = await Promise.all(calls);
		assert.deepEqual(results[1].rows, [[20_000]]);
		assert.deepEqual(results[150_001].rows, [[150_000]]);
		await db.close();
		const again = await open(kv);
		assert.deepEqual(await rows(again, "SELECT v FROM t ORDER BY rowid"), [[0], [1]]);
		await again.close();
	});

	test("when a failed write undoes a transaction, the calls queued for it reject; calls made after run", async () => {
		const kv = createTestKv({ latencyMs: 5 });
		const db = await open(kv);
		await db.exec("CREATE TABLE t(v)");
		const nextTick = () => new Promise((resolve) => setImmediate(resolve));
		let failures = 1;
		// (Applied, then failing: after the KV's latency, and maybe applied.)
		kv.failWhen((call) => call.method === "putBatch" && failures-- > 0, { applied: true });
		// A write and a transaction in one group; its KV write fails while
		// the rest of the transaction is made.
		const group = [db.run("INSERT INTO t VALUES ('a')"), db.exec("BEGIN"), db.run("INSERT INTO t VALUES ('b')")];
		await nextTick();
		const queued = [db.run("INSERT INTO t VALUES ('c')"), db.exec("COMMIT")];
		const outcomes = await Promise.allSettled([...group, ...queued]);
		assert.deepEqual(
			outcomes.map((o) => o.reason?.code),
			["SQLITE_IOERR_WRITE", "SQLITE_IOERR_WRITE", "SQLITE_IOERR_WRITE", "SQLITE_ABORT_ROLLBACK", "SQLITE_ABORT_ROLLBACK"],
		);
		assert.ok(outcomes[3].reason instanceof SqliteError);
		assert.equal(outcomes[3].reason.cause, outcomes[0].reason);
		assert.equal(db.inTransaction, false);
		await db.run("INSERT INTO t VALUES ('d')");
		// A group that ends outside a transaction: the calls queued behind its failed write run.
		failures = 1;
		const failed = db.run("INSERT INTO t VALUES ('e')");
		await nextTick();
		const after = db.run("INSERT INTO t VALUES ('f')");
		await assert.rejects(failed, { code: "SQLITE_IOERR_WRITE" });
		await after;
		await db.close();
		const again = await open(kv);
		assert.deepEqual(await rows(again, "SELECT v FROM t ORDER BY rowid"), [["d"], ["f"]]);
		await again.close();
	});

	test("a call that failed with the caller's own error in a group whose write failed settles, whatever that error's class does", async () => {
		// A class whose constructor takes details, not a message, and one whose
		// message getter throws: the failed write's report must not make them again blindly.
		class DetailsError extends Error {
			constructor(details) {
				super(details.message);
				this.code = details.code.toUpperCase();
			}
		}
		class Unreadable extends Error {
			get message() {
				throw new Error("no message");
			}
			get code() {
				throw new Error("no code");
			}
		}
		for (const thrown of [
			() => new DetailsError({ message: "bad value", code: "e_bad" }),
			() => new Unreadable(),
			() => new TypeError("bad value"),
		]) {
			const kv = createTestKv();
			const db = await open(kv);
			await db.exec("CREATE TABLE t(v)");
			kv.failWhen((call) => call.method === "putBatch");
			const params = {};
			Object.defineProperty(params, "v", {
				enumerable: true,
				get() {
					throw thrown();
				},
			});
			// The first call runs at once; the others wait in its group, the
			// third failing on its own (its parameter's getter) inside the transaction.
			const outcomes = await Promise.allSettled([
				db.run("INSERT INTO t VALUES (1)"),
				db.exec("BEGIN"),
				db.run("INSERT INTO t VALUES (:v)", params),
				db.exec("COMMIT"),
			]);
			assert.deepEqual(
				outcomes.map((o) => o.status),
				["rejected", "rejected", "rejected", "rejected"],
			);
			const own = outcomes[2].reason;
			assert.ok(own instanceof Error && /undid what it did/.test(own.message), String(own));
			assert.equal(own.cause, outcomes[0].reason);
			if (thrown().constructor === TypeError) assert.ok(own instanceof TypeError);
			kv.clearFaults();
			assert.equal(db.inTransaction, false);
			assert.deepEqual(await rows(db, "SELECT count(*) FROM t"), [[0]]);
			await db.run("INSERT INTO t VALUES (2)");
			await db.close();
			const again = await open(kv);
			assert.deepEqual(await rows(again, "SELECT v FROM t"), [[2]]);
			await again.close();
		}
	});

	test("when a failing call makes SQLite roll back its transaction, the calls made for it reject; calls made after run", async () => {
		const kv = createTestKv();
		const db = await open(kv);
		await db.exec(`CREATE TABLE t(v); CREATE TABLE u(id INTEGER PRIMARY KEY); CREATE TABLE w(v);
			CREATE TRIGGER w_refused BEFORE INSERT ON w BEGIN SELECT RAISE(ROLLBACK, 'refused'); END`);
		const isRefused = (outcome, failed) =>
			outcome.reason instanceof SqliteError && outcome.reason.code === "SQLITE_ABORT_ROLLBACK" && outcome.reason.cause === failed.reason;
		// OR ROLLBACK: a constraint failure rolls the whole transaction back;
		// so does RAISE(ROLLBACK) in a trigger.
		const cases = [
			["INSERT OR ROLLBACK INTO u VALUES (1), (1)", "SQLITE_CONSTRAINT_PRIMARYKEY"],
			["INSERT INTO w VALUES (1)", "SQLITE_CONSTRAINT_TRIGGER"],
		];
		for (const [[failing, code], queued] of cases.flatMap((c) => [false, true].map((queued) => [c, queued]))) {
			// Made while the database is idle, the calls run at once, one by
			// one; behind a write in autocommit, they wait in its group.
			const before = queued ? [db.run("INSERT INTO t VALUES ('before')")] : [];
			if (!queued) await db.exec("BEGIN");
			const transaction = [
				...(queued ? [db.exec("BEGIN")] : []),
				db.run("INSERT INTO t VALUES ('part 1')"),
				db.run(failing),
				db.run("INSERT INTO t VALUES ('part 3')"),
				db.query("SELECT count(*) FROM t"),
				db.exec("COMMIT"),
			];
			const outcomes = await Promise.allSettled([...before, ...transaction]);
			const at = queued ? 3 : 1;
			assert.equal(outcomes[at].reason?.code, code, `queued: ${queued}`);
			assert.ok(
				outcomes.slice(0, at).every((o) => o.status === "fulfilled"),
				`queued: ${queued}: ${outcomes.map((o) => o.reason?.code ?? o.status)}`,
			);
			for (const outcome of outcomes.slice(at + 1)) assert.ok(isRefused(outcome, outcomes[at]), `queued: ${queued}: ${outcome.reason}`);
			assert.match(outcomes[at + 1].reason.message, /the transaction this call was made in was rolled back/);
			assert.equal(db.inTransaction, false);
			// Calls made once the failure is seen run.
			await db.run("INSERT INTO t VALUES (?)", [`after ${code} ${queued}`]);
		}
		// A COMMIT or ROLLBACK that fails does not refuse what follows it.
		const ended = await Promise.allSettled([db.exec("COMMIT"), db.run("INSERT INTO t VALUES ('after COMMIT')")]);
		assert.match(String(ended[0].reason), /no transaction is active/);
		assert.equal(ended[1].status, "fulfilled");
		await db.close();
		const again = await open(kv);
		const kept = cases.flatMap(([, code]) => [[`after ${code} false`], ["before"], [`after ${code} true`]]);
		assert.deepEqual(await rows(again, "SELECT v FROM t ORDER BY rowid"), [...kept, ["after COMMIT"]]);
		await again.close();
	});

	test("calls made while a call reads its parameters run after it", async () => {
		const db = await open(createTestKv());
		await db.exec("CREATE TABLE t(v)");
		// A getter of the parameters makes calls while the outer call is
		// under way: they wait for it, then run, whether it writes or not.
		const inner = [];
		const params = (value, sql) => ({
			get $v() {
				inner.push(sql.startsWith("INSERT") ? db.run(sql, [value + 1]) : db.query(sql));
				return value;
			},
		});
		assert.deepEqual(await db.query("SELECT $v", params(1, "SELECT count(*) FROM t")), { rows: [[1]], columns: ["$v"] });
		assert.deepEqual(await inner.pop(), { rows: [[0]], columns: ["count(*)"] });
		await db.run("INSERT INTO t VALUES ($v)", params(10, "INSERT INTO t VALUES (?)"));
		assert.deepEqual(await inner.pop(), { changes: 1, lastInsertRowid: 2 });
		await db.exec("BEGIN");
		await db.run("INSERT INTO t VALUES ($v)", params(20, "SELECT count(*) FROM t"));
		assert.deepEqual(await inner.pop(), { rows: [[3]], columns: ["count(*)"] });
		await db.exec("COMMIT");
		// A call that waits its turn reads them when it is made: the calls
		// its getter makes still run after it.
		const first = db.run("INSERT INTO t VALUES (30)");
		const queued = db.run("INSERT INTO t VALUES ($v)", params(31, "INSERT INTO t VALUES (?)"));
		assert.equal(inner.length, 1);
		assert.deepEqual(await Promise.all([first, queued, inner.pop()]), [
			{ changes: 1, lastInsertRowid: 4 },
			{ changes: 1, lastInsertRowid: 5 },
			{ changes: 1, lastInsertRowid: 6 },
		]);
		assert.deepEqual(await rows(db, "SELECT v FROM t ORDER BY rowid"), [[10], [11], [20], [30], [31], [32]]);
		await db.close();
	});
	test("calls made from recursion as deep as the JS stack goes settle, and the database goes on", async () => {
		const kv = createTestKv();
		const db = await open(kv);
		await db.exec("CREATE TABLE t(v); INSERT INTO t VALUES (1)");
		// At some depth the stack runs out inside a call: that call fails
		// (its promise, or, with no stack left for one, the call itself).
		// Near the limit, every level tries again, a frame deeper.
		const calls = [];
		const thrown = [];
		const recurse = (depth) => {
			try {
				calls.push(db.query("SELECT count(*) FROM t"));
			} catch (error) {
				thrown.push(error);
			}
			recurse(depth + 1);
		};
		assert.throws(() => recurse(0), RangeError);
		for (const error of thrown) assert.ok(error instanceof RangeError, String(error));
		let ok = 0;
		for (const outcome of await Promise.allSettled(calls)) {
			if (outcome.status === "fulfilled") ok++;
			else assert.ok(outcome.reason instanceof RangeError || outcome.reason?.name === "SqliteError", String(outcome.reason));
		}
		assert.ok(ok > 100, `${ok} calls succeeded, ${thrown.length} threw`);
		// The database answers, writes, and closes; what it holds is durable.
		let live = db;
		try {
			assert.deepEqual(await rows(db, "SELECT count(*) FROM t"), [[1]]);
		} catch (error) {
			// Unless the stack ran out inside the WASM engine's module, which
			// is then given up (see README, "Engines and platforms").
			assert.ok(db.backend === "wasm" && error.code === "SQLITE_INTERNAL", String(error));
			await db.close();
			live = await open(kv);
		}
		await live.run("INSERT INTO t VALUES (?)", [2]);
		await live.close();
		const again = await open(kv);
		assert.deepEqual(await rows(again, "SELECT v FROM t ORDER BY v"), [[1], [2]]);
		await again.close();
	});

	test("after calls made near the end of the JS stack, on the way back from it, new databases open and work", async () => {
		const db = await open(createTestKv());
		await db.exec("CREATE TABLE t(x); INSERT INTO t VALUES (1)");
		// The 400 levels above the deepest make a call each: in the WASM
		// engine, one of them may run out of stack inside the module, which
		// is then given up, with so little stack left that nothing more can
		// be called there.
		const calls = [];
		let budget = 0;
		const recurse = () => {
			try {
				const depth = recurse();
				if (budget-- > 0) {
					try {
						calls.push(db.query("SELECT json_group_array(x) FROM t"));
					} catch (error) {
						calls.push(Promise.reject(error));
					}
				}
				return depth + 1;
			} catch {
				budget = 400;
				return 0;
			}
		};
		recurse();
		for (const outcome of await Promise.allSettled(calls)) {
			if (outcome.status === "rejected") {
				assert.ok(outcome.reason instanceof RangeError || outcome.reason?.name === "SqliteError", String(outcome.reason));
			}
		}
		await db.close();
		const fresh = await open(createTestKv());
		await fresh.exec("CREATE TABLE t(x); INSERT INTO t VALUES (2)");
		assert.deepEqual(await rows(fresh, "SELECT x FROM t"), [[2]]);
		await fresh.close();
	});
});
