// The defaults of a caller that passes no options, as rivetkit opens its
// actors' databases through the pool: a call runs at most 30 s (README,
// "Timeouts"), and a pool's instance is destroyed 30 s after its last actor
// left (README, "class SqliteVfsPool"). Both waits run at once: the test
// takes about 30 s.

import { test } from "node:test";
import assert from "node:assert/strict";

import { SqliteError, SqliteVfsPool } from "../index.mjs";
import { createTestKv } from "./helpers/kv.mjs";
import { BACKEND } from "./helpers/db.mjs";

const RUNAWAY = "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT count(*) FROM c";
const DEFAULT_MS = 30_000;

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

test("without options a call is stopped after 30 s, and an idle pool instance is destroyed 30 s after its last actor left", async () => {
	const saved = process.env.RIVETKIT_SQLITE_TIMEOUT_MS;
	delete process.env.RIVETKIT_SQLITE_TIMEOUT_MS;
	const pool = new SqliteVfsPool({ actorsPerInstance: 1 });
	try {
		const options = BACKEND ? { backend: BACKEND } : undefined;
		const runner = await (await pool.acquire("runner")).open("runner", createTestKv(), options);
		const leaverKv = createTestKv();
		const leaver = await (await pool.acquire("leaver")).open("leaver", leaverKv, options);
		await leaver.exec("CREATE TABLE t(v); INSERT INTO t VALUES (1)");
		assert.equal(pool.instanceCount, 2);

		const started = performance.now();
		await pool.release("leaver");
		let stoppedAfter = null;
		const running = runner.query(RUNAWAY).then(
			() => assert.fail("the runaway query returned"),
			(error) => {
				stoppedAfter = performance.now() - started;
				return error;
			},
		);
		// (On the WASM engine the query holds the JS thread until it is stopped,
		// and this timer fires after that.)
		const atAlmost = sleep(DEFAULT_MS - 1_000).then(() => ({
			at: performance.now() - started,
			instances: pool.instanceCount,
		}));
		const almost = await atAlmost;
		if (almost.at < DEFAULT_MS - 50) {
			assert.equal(stoppedAfter, null, `the query was stopped after ${stoppedAfter} ms`);
			assert.equal(almost.instances, 2, "the idle instance is still there 29 s after its actor left");
		}
		const error = await running;
		assert.ok(error instanceof SqliteError && error.code === "SQLITE_INTERRUPT", String(error));
		assert.match(error.message, /longer than its timeout/);
		assert.ok(stoppedAfter >= DEFAULT_MS - 50 && stoppedAfter < DEFAULT_MS + 5_000, `stopped after ${stoppedAfter} ms`);
		// The database answers the next call.
		assert.deepEqual((await runner.query("SELECT 1")).rows, [[1]]);

		await sleep(Math.max(0, DEFAULT_MS + 2_000 - (performance.now() - started)));
		assert.equal(pool.instanceCount, 1, "the idle instance is gone 32 s after its actor left");
		// The actor that left opens again, in a new instance, with its data.
		const back = await (await pool.acquire("leaver")).open("leaver", leaverKv, options);
		assert.equal(pool.instanceCount, 2);
		assert.deepEqual((await back.query("SELECT v FROM t")).rows, [[1]]);
		await back.close();
	} finally {
		await pool.shutdown();
		if (saved !== undefined) process.env.RIVETKIT_SQLITE_TIMEOUT_MS = saved;
	}
});
