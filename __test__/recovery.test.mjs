// Recovery and failure paths: a recovery that is itself cut short, KV writes
// that fail after they were applied, calls that end inside a transaction,
// failed group commits, and actors woken while their release still runs.

import { test, describe } from "node:test";
import assert from "node:assert/strict";

import { SqliteError, SqliteVfsPool, createMemoryKv } from "../index.mjs";
import { createTestKv, kvFromMutations } from "./helpers/kv.mjs";
import { BACKEND, open, rows, snapshot } from "./helpers/db.mjs";

// Small limits make every large commit span many putBatch calls.
const LIMITS = { maxKeysPerCall: 6, maxBatchBytes: 32 * 1024 };
const isJournalMeta = (k) => k[2] === 0 && k[3] === 1;
const hasJournal = (kv) => kv.entries().some(([k]) => isJournalMeta(k));

async function state(db) {
	const [[check]] = await rows(db, "PRAGMA integrity_check");
	assert.equal(check, "ok");
	return JSON.stringify(await snapshot(db), (_, v) => (v instanceof Uint8Array ? Buffer.from(v).toString("hex") : v));
}

/** The state a KV opens to (a healthy open of a copy), or the open's error. */
async function opened(kv) {
	const db = await open(createTestKv({ inner: kv.clone(), limits: LIMITS }), { limits: LIMITS });
	try {
		return await state(db);
	} finally {
		await db.close();
	}
}

/** A workload whose KV writes the tests below fail one at a time. */
const WORKLOAD = [
	(db) => db.exec("CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT, b BLOB); INSERT INTO t(v) VALUES ('first')"),
	(db) => db.run("INSERT INTO t(v, b) VALUES ('second', randomblob(3000))"),
	(db) =>
		db.exec(
			"BEGIN; WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 200) INSERT INTO t(v, b) SELECT 'bulk' || i, randomblob(600) FROM n; COMMIT",
		),
	(db) => db.run("UPDATE t SET v = 'small' WHERE id = 2"),
	(db) => db.run("UPDATE t SET b = randomblob(700) WHERE id % 3 = 0"),
	(db) => db.run("DELETE FROM t WHERE id > 20"),
	(db) => db.exec("VACUUM"),
	(db) => db.run("INSERT INTO t(v) VALUES ('last')"),
];

/** The numbers (1-based) of the KV calls of `methods` that `steps` make on a fresh database. */
async function writeCalls(steps, methods) {
	const probe = createTestKv({ limits: LIMITS });
	const db = await open(probe, { limits: LIMITS });
	for (const step of steps) await step(db);
	await db.close();
	return probe.calls.flatMap((c, i) => (methods.includes(c.method) ? [i + 1] : []));
}

/**
 * Runs `steps` on a fresh database whose KV call `k` applies and then
 * rejects, until a step fails (with that error as cause). Returns the KV, the
 * open database and the failed step's index (-1: none failed).
 */
async function failAppliedAt(k, steps) {
	const kv = createTestKv({ limits: LIMITS });
	const boom = new Error(`applied, then failed: call ${k}`);
	kv.failWhen((_, n) => n === k, { error: boom, applied: true });
	const db = await open(kv, { limits: LIMITS });
	let failedAt = -1;
	for (let i = 0; i < steps.length && failedAt === -1; i++) {
		try {
			await steps[i](db);
		} catch (error) {
			assert.ok(error instanceof SqliteError && error.cause === boom, `call ${k}, step ${i}: ${error}`);
			failedAt = i;
		}
	}
	return { kv, db, failedAt };
}

/** A database of ~25 pages (FILL), and a commit rewriting all of it (REWRITE), which needs a journal. */
const FILL =
	"CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT, b BLOB);" +
	"WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 120) INSERT INTO t(v, b) SELECT 'row' || i, randomblob(600) FROM n";
const REWRITE = "UPDATE t SET v = v || '+', b = randomblob(600)";

/**
 * Records each write of `kv` (`putBatch`, `deleteBatch`) as `{ method, keys,
 * start, end }`, its start and end on one clock of events (`tick()` takes
 * the next instant). `end` is Infinity until the write is done.
 */
function timeWrites(kv) {
	const writes = [];
	let clock = 0;
	for (const method of ["putBatch", "deleteBatch"]) {
		const call = kv[method];
		kv[method] = async (arg) => {
			const keys = method === "putBatch" ? arg.map(([k]) => k) : arg;
			const write = { method, keys: keys.map((k) => k.slice()), start: clock++, end: Number.POSITIVE_INFINITY };
			writes.push(write);
			try {
				return await call(arg);
			} finally {
				write.end = clock++;
			}
		};
	}
	return { writes, tick: () => clock++ };
}

/** A database of FILL, and the KV mutations of the journaled commit of REWRITE. */
async function interruptedCommit() {
	const kv = createTestKv({ limits: LIMITS });
	const db = await open(kv, { limits: LIMITS });
	await db.exec(FILL);
	const before = await state(db);
	const base = kv.inner.clone();
	const mutations = [];
	kv.onMutation = (m) => mutations.push(m);
	await db.exec(REWRITE);
	const after = await state(db);
	await db.close();
	const journaled = mutations.filter((m) => m.method === "putBatch" && m.entries.some(([k]) => k[3] === 1));
	assert.ok(journaled.length >= 2, "the commit wrote a journal over several calls");
	return { base, mutations, before, after };
}

describe("recovery", () => {
	test("a recovery cut short at any KV call, even repeatedly, still ends at the state before the commit", async () => {
		const { base, mutations, before, after } = await interruptedCommit();
		let hotCases = 0;
		for (let cut = 1; cut < mutations.length; cut++) {
			const crashed = await kvFromMutations(mutations.slice(0, cut), base);
			const hot = crashed.entries().some(([k]) => k[2] === 0 && k[3] === 1);
			const expected = hot ? before : await opened(crashed);
			assert.ok([before, after].includes(expected), `crash after ${cut} commit calls`);
			if (!hot) continue;
			hotCases++;
			assert.equal(expected, before, `a hot journal rolls back (cut ${cut})`);

			// The recovery's own KV mutations, then a crash after each prefix of
			// them, and a crash of the next recovery after each prefix of its own.
			const recovery = [];
			const probe = createTestKv({ inner: crashed.clone(), limits: LIMITS });
			probe.onMutation = (m) => recovery.push(m);
			const db = await open(probe, { limits: LIMITS });
			assert.equal(await state(db), before);
			await db.close();
			assert.ok(recovery.length >= 2, `the recovery took ${recovery.length} KV writes`);
			for (let r = 0; r < recovery.length; r++) {
				const once = await kvFromMutations(recovery.slice(0, r), crashed);
				assert.equal(await opened(once), before, `commit cut at ${cut}, recovery cut at ${r}`);
				const again = [];
				const probe2 = createTestKv({ inner: once.clone(), limits: LIMITS });
				probe2.onMutation = (m) => again.push(m);
				await (await open(probe2, { limits: LIMITS })).close();
				for (let r2 = 0; r2 < again.length; r2 += 3) {
					const twice = await kvFromMutations(again.slice(0, r2), once);
					assert.equal(await opened(twice), before, `commit cut at ${cut}, recoveries cut at ${r} and ${r2}`);
				}
			}

			// A recovery whose KV fails at call k (before or after applying it),
			// then a second open.
			for (const applied of [false, true]) {
				for (let k = 1; ; k++) {
					const kv = createTestKv({ inner: crashed.clone(), limits: LIMITS });
					const boom = new Error(`recovery call ${k}`);
					kv.failWhen((_, n) => n === k, { error: boom, applied });
					let failed = false;
					try {
						const db2 = await open(kv, { limits: LIMITS });
						failed = kv.calls.some((c) => c.failed);
						assert.equal(await state(db2), before);
						await db2.close();
					} catch (error) {
						failed = true;
						assert.ok(error instanceof SqliteError && error.cause === boom, `recovery call ${k}: ${error}`);
					}
					if (!failed) break; // k is past the last KV call of the recovery
					kv.clearFaults();
					assert.equal(await opened(kv), before, `recovery failed at call ${k} (applied: ${applied})`);
				}
			}
		}
		assert.ok(hotCases >= 3, `only ${hotCases} crash points left a hot journal`);
	});

	test("a crash after any subset of a large commit's main writes, landed in any order, rolls back", async () => {
		const { base, mutations, before } = await interruptedCommit();
		const journalMeta = mutations.findIndex((m) => m.method === "putBatch" && m.entries.some(([k]) => isJournalMeta(k)));
		const commitPoint = mutations.findIndex((m) => m.method === "deleteBatch" && m.keys.some(isJournalMeta));
		assert.ok(journalMeta !== -1 && commitPoint > journalMeta, "the commit wrote a journal, then deleted its metadata");
		const main = mutations.slice(journalMeta + 1, commitPoint);
		assert.ok(main.length >= 3 && main.length <= 8, `the commit's main writes took ${main.length} calls`);
		// Every subset but the whole (which may be the commit without its
		// commit point: still hot), each applied in reverse order too.
		for (let mask = 0; mask < 2 ** main.length - 1; mask++) {
			const landed = main.filter((_, i) => (mask & (1 << i)) !== 0);
			for (const order of [landed, landed.toReversed()]) {
				const crashed = await kvFromMutations([...mutations.slice(0, journalMeta + 1), ...order], base);
				assert.equal(await opened(crashed), before, `main writes ${mask.toString(2)} landed`);
			}
		}
	});

	test("a large commit's writes go several at once, each step once the one before is all in", async () => {
		const kv = createTestKv({ limits: LIMITS, latencyMs: 2 });
		const db = await open(kv, { limits: LIMITS });
		await db.exec(FILL);
		const before = await state(db);
		const { writes } = timeWrites(kv);
		await db.exec(REWRITE);
		const after = await state(db);
		await db.close();
		assert.notEqual(after, before);
		assert.equal(await opened(kv.inner), after);

		const puts = writes.filter((w) => w.method === "putBatch");
		const journalChunks = puts.filter((w) => w.keys.every((k) => k[2] === 1 && k[3] === 1));
		const [journalMetaPut] = puts.filter((w) => w.keys.some(isJournalMeta));
		const main = puts.filter((w) => w.keys.every((k) => k[3] === 0));
		const commitPoint = writes.find((w) => w.method === "deleteBatch" && w.keys.some(isJournalMeta));
		assert.ok(journalChunks.length >= 2 && main.length >= 3 && journalMetaPut && commitPoint);
		const overlapping = (group) => group.some((a) => group.some((b) => a !== b && a.start < b.end && b.start < a.end));
		assert.ok(overlapping(journalChunks), "the journal's chunks went several at once");
		assert.ok(overlapping(main), "the main chunks went several at once");
		const allIn = (group, write) => group.every((w) => w.end < write.start);
		assert.ok(allIn(journalChunks, journalMetaPut), "the journal's metadata went once its chunks were all in");
		assert.ok(
			main.every((w) => journalMetaPut.end < w.start),
			"the main chunks went once the journal was whole",
		);
		assert.ok(allIn(main, commitPoint), "the commit point came once the main chunks were all in");
		// The journal's other chunks, which no reader sees once its metadata is gone.
		const leftovers = writes.filter((w) => w.method === "deleteBatch" && w !== commitPoint);
		assert.ok(leftovers.length >= 2 && leftovers.every((w) => w.keys.every((k) => k[2] === 1 && k[3] === 1)));
		assert.ok(overlapping(leftovers), "the journal's other chunks were deleted several at once");
		assert.ok(
			leftovers.every((w) => commitPoint.end < w.start),
			"… once the commit point was in",
		);
	});

	test("a large commit's write failing while others are in flight, applied or not: the call rejects once all are done, and the KV ends whole", async () => {
		const isWrite = (call) => call.method === "putBatch" || call.method === "deleteBatch";
		const dry = createTestKv({ limits: LIMITS });
		const dryDb = await open(dry, { limits: LIMITS });
		await dryDb.exec(FILL);
		const from = dry.calls.length;
		await dryDb.exec(REWRITE);
		const writes = dry.calls.slice(from).filter(isWrite).length;
		await dryDb.close();
		assert.ok(writes >= 10, `${writes} KV writes`);
		let rejected = 0;
		for (const applied of [false, true]) {
			for (let k = 1; k <= writes; k++) {
				const kv = createTestKv({ limits: LIMITS, latencyMs: 2 });
				const db = await open(kv, { limits: LIMITS });
				await db.exec(FILL);
				const before = await state(db);
				const { writes: timed, tick } = timeWrites(kv);
				const boom = new Error(`write ${k} failed (applied: ${applied})`);
				let seen = 0;
				kv.failWhen((call) => isWrite(call) && ++seen === k, { error: boom, applied });
				const error = await db.exec(REWRITE).then(
					() => null,
					(e) => e,
				);
				const settledAt = tick();
				if (error !== null) {
					rejected++;
					assert.ok(error instanceof SqliteError && error.cause === boom, String(error));
					assert.ok(
						timed.every((write) => write.end < settledAt),
						`write ${k}: the call rejected before every write of its commit was done`,
					);
					assert.equal(await state(db), before, `write ${k}: the live database is back at the durable state`);
				}
				kv.clearFaults();
				const live = await state(db);
				await db.close();
				assert.equal(await opened(kv.inner), live, `a failure at write ${k} (applied: ${applied})`);
				assert.ok(!hasJournal(kv), "no journal left behind");
			}
		}
		// Failures past the commit point (the journal's leftover chunks) are reported, not thrown.
		assert.ok(rejected >= writes, `${rejected} of ${2 * writes} failures rejected the call`);
	});

	test("a KV write that fails after it was applied is undone by the next write", async () => {
		const writes = await writeCalls(WORKLOAD, ["putBatch", "deleteBatch"]);
		assert.ok(writes.length > 20, `${writes.length} KV writes`);

		for (const k of writes) {
			const { kv, db, failedAt } = await failAppliedAt(k, WORKLOAD);
			kv.clearFaults();
			// What a reader of the KV sees now is whole: the state before the
			// failed call, or (it was applied) the state after it.
			await opened(kv);
			// A failed step may have left a transaction open (its BEGIN ran).
			if (db.inTransaction) await db.exec("ROLLBACK");
			// The next write, on other pages, first undoes what the failed write
			// left: the KV then holds exactly the live database.
			await db.exec("CREATE TABLE IF NOT EXISTS side(x); INSERT INTO side VALUES (1)");
			assert.equal(await opened(kv), await state(db), `after a failure at KV call ${k} (step ${failedAt})`);
			assert.ok(!hasJournal(kv), "no journal left behind");
			await db.close();
		}
	});

	test("a commit of MBs made off the JS thread, failing at any KV write, applied or not, leaves a whole KV", async () => {
		// Rewrites existing pages (a journal of them goes first) and adds
		// new ones: 2 MB, a statement that runs long enough to leave the JS
		// thread natively, where its delta and journal are packed.
		const setup = async (kv) => {
			const db = await open(kv);
			await db.exec("CREATE TABLE t(v BLOB)");
			await db.run(
				"WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 500) INSERT INTO t SELECT zeroblob(2000) FROM c",
			);
			return db;
		};
		const BIG =
			"WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 1000) INSERT INTO t SELECT randomblob(2000) FROM c; UPDATE t SET v = randomblob(2000) WHERE rowid <= 500";
		const dry = createTestKv();
		const dryDb = await setup(dry);
		const from = dry.calls.length;
		await dryDb.exec(BIG);
		const writes = dry.calls.slice(from).filter((c) => c.method === "putBatch" || c.method === "deleteBatch").length;
		await dryDb.close();
		assert.ok(writes >= 8, `${writes} KV writes`);
		for (const applied of [false, true]) {
			for (let k = 1; k <= writes; k++) {
				const kv = createTestKv();
				const db = await setup(kv);
				const before = await state(db);
				let seen = 0;
				kv.failWhen((call) => (call.method === "putBatch" || call.method === "deleteBatch") && ++seen === k, { applied });
				const committed = await db.exec(BIG).then(
					() => true,
					(error) => {
						assert.ok(error instanceof SqliteError, String(error));
						return false;
					},
				);
				kv.clearFaults();
				const now = await state(db);
				if (!committed) assert.equal(now, before, `write ${k} failed (applied: ${applied}): the database is back where it was`);
				// A reader of the KV sees a whole state (opened checks it): before
				// the commit, or, if the failed write was applied, maybe after it.
				const read = await opened(kv);
				if (!applied) assert.ok([before, now].includes(read), `KV after write ${k} failed`);
				// The next write puts the KV at exactly the live database.
				await db.exec("CREATE TABLE IF NOT EXISTS side(x); INSERT INTO side VALUES (1)");
				assert.equal(await opened(kv), await state(db), `after write ${k} failed (applied: ${applied})`);
				assert.ok(!hasJournal(kv), "no journal left behind");
				await db.close();
			}
		}
	});

	test("a KV write that fails after it was applied is undone at close, when no write follows", async () => {
		const writes = await writeCalls(WORKLOAD, ["putBatch"]);
		assert.ok(writes.length > 10, `${writes.length} KV writes`);
		for (const k of writes) {
			const { kv, db, failedAt } = await failAppliedAt(k, WORKLOAD);
			assert.ok(failedAt !== -1, `call ${k} failed a step`);
			const live = await state(db);
			await db.close();
			// The failed call has no effects, in the KV too.
			assert.equal(await opened(kv), live, `after a failure at KV call ${k}`);
			assert.ok(!hasJournal(kv), "no journal left behind");
		}
	});

	test("close() rejects with the KV's error when a failed write cannot be undone, and closes anyway", async () => {
		const kv = createTestKv();
		const db = await open(kv);
		await db.exec("CREATE TABLE t(v)");
		const boom = new Error("the KV is gone");
		kv.failWhen((call) => call.method === "putBatch", { error: boom, applied: true });
		await assert.rejects(db.run("INSERT INTO t VALUES ('lost?')"), (error) => error.cause === boom);
		await assert.rejects(
			db.close(),
			(error) => error instanceof SqliteError && error.code === "SQLITE_IOERR_WRITE" && error.cause === boom,
		);
		assert.equal(db.closed, true);
		await assert.rejects(db.query("SELECT 1"), /closed/);
		kv.clearFaults();
		// The KV holds either state, whole.
		const again = await open(kv);
		assert.ok([0, 1].includes((await rows(again, "SELECT count(*) FROM t"))[0][0]));
		await again.close();
	});
});

describe("resolved means durable", () => {
	test("a call that commits and then opens a transaction persists what it committed", async () => {
		const kv = createTestKv();
		const db = await open(kv);
		await db.exec("CREATE TABLE t(v); INSERT INTO t VALUES ('a'); BEGIN; INSERT INTO t VALUES ('in-tx')");
		assert.equal(db.inTransaction, true);
		assert.deepEqual(await rows(await open(kv.clone()), "SELECT v FROM t"), [["a"]]);
		await db.exec("COMMIT; BEGIN");
		assert.equal(db.inTransaction, true);
		assert.deepEqual(await rows(await open(kv.clone()), "SELECT v FROM t ORDER BY v"), [["a"], ["in-tx"]]);
		await db.exec("INSERT INTO t VALUES ('b'); COMMIT; SAVEPOINT s; INSERT INTO t VALUES ('lost')");
		assert.deepEqual(await rows(await open(kv.clone()), "SELECT v FROM t ORDER BY v"), [["a"], ["b"], ["in-tx"]]);
		// Closing with a transaction open rolls it back.
		await db.close();
		const reopened = await open(kv);
		assert.deepEqual(await rows(reopened, "SELECT v FROM t ORDER BY v"), [["a"], ["b"], ["in-tx"]]);
		await reopened.close();
	});

	test("a failing script keeps and persists the statements before the failure", async () => {
		const kv = createTestKv();
		const db = await open(kv);
		await db.exec("CREATE TABLE t(v UNIQUE); INSERT INTO t VALUES ('x')");
		await assert.rejects(db.exec("INSERT INTO t VALUES ('a'); INSERT INTO t VALUES ('x')"), { code: "SQLITE_CONSTRAINT_UNIQUE" });
		assert.deepEqual(await rows(await open(kv.clone()), "SELECT v FROM t ORDER BY v"), [["a"], ["x"]]);
		await db.close();
	});

	test("when a group's KV write fails, every call whose effects were lost says so", async () => {
		const kv = createTestKv({ latencyMs: 2 });
		const db = await open(kv);
		await db.exec("CREATE TABLE t(v UNIQUE); INSERT INTO t VALUES ('dup')");
		const boom = new Error("KV down");
		// The first write is in flight while the next calls queue: they run
		// back to back and share the next write, which fails.
		let puts = 0;
		kv.failWhen((call) => call.method === "putBatch" && ++puts === 2, { error: boom });
		const first = db.run("INSERT INTO t VALUES ('first')");
		await new Promise((resolve) => setImmediate(resolve)); // its write is in flight now
		const script = db.exec("INSERT INTO t VALUES ('a'); INSERT INTO t VALUES ('dup')");
		const failsAlone = db.run("INSERT INTO t VALUES ('dup')");
		const other = db.run("INSERT INTO t VALUES ('b')");
		await first;
		const scriptError = await script.then(
			() => assert.fail("the script resolved"),
			(error) => error,
		);
		assert.ok(scriptError instanceof SqliteError);
		assert.equal(scriptError.code, "SQLITE_CONSTRAINT_UNIQUE");
		assert.ok(scriptError.cause instanceof SqliteError, "the KV failure is the cause");
		assert.equal(scriptError.cause.code, "SQLITE_IOERR_WRITE");
		assert.equal(scriptError.cause.cause, boom);
		assert.match(scriptError.message, /undid/);
		// A call that failed on its own and changed nothing keeps its own error.
		const aloneError = await failsAlone.then(
			() => assert.fail("resolved"),
			(error) => error,
		);
		assert.equal(aloneError.code, "SQLITE_CONSTRAINT_UNIQUE");
		assert.equal(aloneError.cause, undefined);
		await assert.rejects(other, (error) => error.code === "SQLITE_IOERR_WRITE" && error.cause === boom);
		kv.clearFaults();
		assert.deepEqual(await rows(db, "SELECT v FROM t ORDER BY v"), [["dup"], ["first"]]);
		assert.deepEqual(await rows(await open(kv.clone()), "SELECT v FROM t ORDER BY v"), [["dup"], ["first"]]);
		await db.close();
	});
});

describe("failed groups inside a transaction", () => {
	test("a failing script whose statements a later call of the group commits says they were undone", async () => {
		const kv = createTestKv({ latencyMs: 2 });
		const db = await open(kv);
		await db.exec("CREATE TABLE t(v)");
		await db.exec("BEGIN");
		const boom = new Error("KV down");
		kv.failWhen((call) => call.method === "putBatch", { error: boom });
		// Queued together: the script's INSERT stays in the transaction when its
		// SELECT fails; the COMMIT then sends it, and that write fails. (Both
		// run at once: a call that goes on on an engine thread ends its group.)
		const script = db.exec("INSERT INTO t VALUES ('in-tx'); SELECT nope FROM t");
		const commit = db.exec("COMMIT");
		const scriptError = await script.then(
			() => assert.fail("resolved"),
			(error) => error,
		);
		assert.equal(scriptError.code, "SQLITE_ERROR");
		assert.equal(scriptError.cause?.cause, boom, "the KV failure is the cause");
		await assert.rejects(commit, (error) => error.code === "SQLITE_IOERR_WRITE");
		kv.clearFaults();
		assert.deepEqual(await rows(db, "SELECT v FROM t"), []);
		await db.close();
	});
});

describe("pool", () => {
	test("an actor acquired again while its release still runs is untouched by that release", async () => {
		const pool = new SqliteVfsPool({ actorsPerInstance: 4, idleDestroyMs: 0 });
		const kv = createMemoryKv();
		const handle = await pool.acquire("actor");
		const db = await handle.open("actor", kv, { backend: BACKEND });
		await db.exec("CREATE TABLE t(v); INSERT INTO t VALUES (1)");
		const released = handle.destroy(); // not awaited, as when rivetkit puts an actor to sleep
		const handle2 = await pool.acquire("actor");
		assert.notEqual(handle2, handle);
		const db2 = await handle2.open("actor", kv, { backend: BACKEND });
		await released;
		assert.equal(db.closed, true);
		await new Promise((resolve) => setTimeout(resolve, 20)); // past idleDestroyMs
		assert.equal(db2.closed, false);
		await db2.run("INSERT INTO t VALUES (2)");
		assert.deepEqual(await rows(db2, "SELECT v FROM t ORDER BY v"), [[1], [2]]);
		assert.equal(pool.actorCount, 1);
		assert.equal(pool.instanceCount, 1);
		// Destroying the old handle again does not release the new one.
		await handle.destroy();
		assert.equal(db2.closed, false);
		await handle2.destroy();
		assert.equal(db2.closed, true);
		assert.equal(pool.actorCount, 0);
		await pool.shutdown();
	});
});
