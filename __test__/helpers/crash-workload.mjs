// The workload of the crash tests on real stores: a small committed state,
// then a journaled commit (more than one putBatch: > 976 KiB with the actor
// KV's limits), then a one-row commit. Deterministic, so a run on the
// in-memory store gives the states a crashed run must be in.

import { createMemoryKv } from "../../index.mjs";
import { createTestKv } from "./kv.mjs";
import { open, snapshot } from "./db.mjs";

/** One SQL script per commit. */
export const STEPS = [
	"CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT, b BLOB); INSERT INTO t(v, b) VALUES ('first', x'01')",
	// 400 rows of ~4 KB: ~1.6 MB of new pages, over the 976 KiB one putBatch holds.
	`BEGIN;
	 WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 400)
	 INSERT INTO t(v, b) SELECT 'bulk ' || i, CAST(printf('%.4000c', char(65 + i % 26)) AS BLOB) FROM n;
	 UPDATE t SET v = 'edited' WHERE id = 1;
	 COMMIT`,
	"UPDATE t SET v = 'small' WHERE id = 2",
];
export const BIG_STEP = 1;
export const SMALL_STEP = 2;

/** A database's state: integrity_check and every row, as a string to compare. */
export async function state(db) {
	const [[check]] = (await db.query("PRAGMA integrity_check")).rows;
	if (check !== "ok") throw new Error(`integrity_check: ${check}`);
	return JSON.stringify(await snapshot(db), (_, v) => (v instanceof Uint8Array ? Buffer.from(v).toString("hex") : v));
}

/**
 * The workload run on the in-memory store: `states[i]` is the state after the
 * first i steps, `writes[i]` the number of KV writes step i made.
 */
export async function dryRun() {
	const kv = createTestKv({ inner: createMemoryKv() });
	const db = await open(kv);
	const states = [await state(db)];
	const writes = [];
	for (const step of STEPS) {
		kv.resetCounts();
		await db.exec(step);
		writes.push(kv.mutations().length);
		states.push(await state(db));
	}
	await db.close();
	return { states, writes };
}
