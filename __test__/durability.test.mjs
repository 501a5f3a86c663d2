// Crash and KV-failure safety of commits of every size.

import { test, describe } from "node:test";
import assert from "node:assert/strict";

import { SqliteError } from "../index.mjs";
import { createTestKv, kvFromMutations } from "./helpers/kv.mjs";
import { open, rows, snapshot } from "./helpers/db.mjs";

// Small limits make every large commit span many putBatch calls.
const LIMITS = { maxKeysPerCall: 8, maxBatchBytes: 64 * 1024 };

const BULK = (n, tag) =>
	`WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ${n}) INSERT INTO t(v, b) SELECT '${tag}' || i, randomblob(600) FROM n`;

/** The scripted workload: small writes, a multi-batch transaction, a shrinking DELETE + VACUUM. */
const STEPS = [
	(db) => db.exec("CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT, b BLOB); INSERT INTO t(v) VALUES ('first')"),
	(db) => db.run("INSERT INTO t(v) VALUES (?)", ["second"]),
	(db) => db.exec(`BEGIN; ${BULK(400, "bulk")}; UPDATE t SET v = 'edited' WHERE id = 1; COMMIT`),
	(db) => db.run("UPDATE t SET v = 'small' WHERE id = 2"),
	(db) => db.run("DELETE FROM t WHERE id > 20"),
	(db) => db.exec("VACUUM"),
	(db) => db.run("INSERT INTO t(v) VALUES ('last')"),
];

async function state(db) {
	const [[check]] = await rows(db, "PRAGMA integrity_check");
	assert.equal(check, "ok");
	return JSON.stringify(await snapshot(db), (_, v) => (v instanceof Uint8Array ? Buffer.from(v).toString("hex") : v));
}

describe("durability", () => {
	test("a crash between any two KV calls leaves the state before or after the call in flight", async () => {
		const kv = createTestKv({ limits: LIMITS });
		const applied = [];
		kv.onMutation = (m) => applied.push(m);
		const db = await open(kv, { limits: LIMITS });
		const states = [await state(db)]; // states[i]: after i steps
		const resolvedAt = [0]; // mutations applied when step i resolved
		for (const step of STEPS) {
			await step(db);
			resolvedAt.push(applied.length);
			states.push(await state(db));
		}
		await db.close();
		// The workload did exercise multi-call commits with a journal.
		assert.ok(applied.some((m) => m.method === "putBatch" && m.entries.some(([k]) => k[2] === 0 && k[3] === 1)));

		let checked = 0;
		for (let cut = 0; cut <= applied.length; cut++) {
			const crashed = await kvFromMutations(applied.slice(0, cut));
			let done = 0;
			while (done + 1 < resolvedAt.length && resolvedAt[done + 1] <= cut) done++;
			const allowed = [states[done], states[done + 1]].filter((s) => s !== undefined);
			const reopened = await open(createTestKv({ inner: crashed, limits: LIMITS }), { limits: LIMITS });
			const got = await state(reopened);
			assert.ok(allowed.includes(got), `crash after ${cut} of ${applied.length} KV writes (step ${done + 1} in flight)`);
			await reopened.close();
			checked++;
		}
		assert.ok(checked > 20, `only ${checked} crash points`);
	});

	test("a KV failure at any call leaves the live database equal to the KV, and the next call works", async () => {
		// The fault-free run, to know how many KV calls the workload makes.
		const probe = createTestKv({ limits: LIMITS });
		const probeDb = await open(probe, { limits: LIMITS });
		for (const step of STEPS) await step(probeDb);
		await probeDb.close();
		const total = probe.calls.length;
		assert.ok(total > 20, `${total} KV calls`);

		for (let k = 1; k <= total; k++) {
			const kv = createTestKv({ limits: LIMITS });
			const boom = new Error(`fail call ${k}`);
			kv.failWhen((_, n) => n === k, { error: boom, sync: k % 2 === 0 });
			let db;
			try {
				db = await open(kv, { limits: LIMITS });
			} catch (error) {
				assert.ok(error instanceof SqliteError && error.cause === boom, `open, call ${k}: ${error}`);
				continue;
			}
			for (const step of STEPS) {
				const failedBefore = kv.calls.some((c) => c.failed);
				try {
					await step(db);
				} catch (error) {
					if (failedBefore) continue; // a later step after the failure, depending on what failed
					assert.ok(error instanceof SqliteError, `call ${k}: ${error}`);
					assert.equal(error.cause, boom, `call ${k}: ${error.message}`);
				}
				if (!failedBefore && kv.calls.some((c) => c.failed)) {
					assert.ok(kv.errors.includes(boom), "onError saw the KV's error");
					kv.clearFaults();
					const live = await state(db);
					const fresh = await open(kv.clone(), { limits: LIMITS });
					assert.equal(await state(fresh), live, `after a failure at KV call ${k}`);
					await fresh.close();
					// The next call works and is durable.
					await db.exec("CREATE TABLE IF NOT EXISTS after_failure(x); INSERT INTO after_failure VALUES (1)");
					const again = await open(kv.clone(), { limits: LIMITS });
					assert.equal(await state(again), await state(db));
					await again.close();
					break;
				}
			}
			await db.close();
		}
	});

	test("a commit larger than one putBatch is never visible in part", async () => {
		const kv = createTestKv({ limits: LIMITS });
		const db = await open(kv, { limits: LIMITS });
		await db.exec("CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT, b BLOB)");
		const before = await state(db);
		// Fail the commit's last main-file write (the one with the main metadata):
		// the journal and most of the new chunks are in the KV by then.
		kv.failWhen((call) => call.method === "putBatch" && call.keys.includes("08010000"));
		await assert.rejects(db.exec(BULK(300, "x")), SqliteError);
		assert.ok(
			kv.entries().some(([k]) => k[2] === 0 && k[3] === 1),
			"a hot journal is in the KV",
		);
		kv.clearFaults();
		// Another process opening the KV now sees the state before the commit.
		const other = await open(kv.clone(), { limits: LIMITS });
		assert.equal(await state(other), before);
		await other.close();
		assert.equal(await state(db), before);
		// The next write first undoes the partial commit in the KV, then applies.
		await db.run("INSERT INTO t(v) VALUES ('next')");
		const after = await open(kv.clone(), { limits: LIMITS });
		assert.equal(await state(after), await state(db));
		assert.ok(!kv.entries().some(([k]) => k[2] === 0 && k[3] === 1), "journal removed");
		await after.close();
		await db.close();
	});

	test("after a failed write, the connection's settings stay as they were (foreign keys stay on)", async () => {
		const kv = createTestKv();
		const db = await open(kv);
		await db.exec(
			"CREATE TABLE p(id INTEGER PRIMARY KEY); CREATE TABLE c(p REFERENCES p(id)); INSERT INTO p VALUES (1); PRAGMA foreign_keys = ON; PRAGMA recursive_triggers = ON; PRAGMA cache_size = -4000; PRAGMA secure_delete = FAST; PRAGMA max_page_count = 100000",
		);
		const settings =
			"SELECT * FROM pragma_foreign_keys, pragma_recursive_triggers, pragma_cache_size, pragma_secure_delete, pragma_max_page_count";
		const before = await rows(db, settings);
		assert.deepEqual(before, [[1, 1, -4000, 2, 100000]]);
		kv.failWhen((call) => call.method === "putBatch");
		await assert.rejects(
			db.run("INSERT INTO c VALUES (1)"),
			(error) => error instanceof SqliteError && error.code === "SQLITE_IOERR_WRITE",
		);
		kv.clearFaults();
		assert.deepEqual(await rows(db, settings), before);
		await assert.rejects(db.run("INSERT INTO c VALUES (2)"), (error) => error.code === "SQLITE_CONSTRAINT_FOREIGNKEY");
		await db.run("INSERT INTO c VALUES (1)");
		assert.deepEqual(await rows(db, "SELECT p FROM c"), [[1]]);
		await db.close();
	});
});
