// Child of resources.test.mjs: a database dropped without close() while its
// KV object lives on (a host that keeps an actor's KV adapter after the
// actor crashed). Prints, as JSON: whether the KV could be opened again
// while a write of the dropped database was still in flight, and after the
// GC collected it, with what the reopened database holds. Run with
// --expose-gc under Node (Bun has Bun.gc).

import { open, createMemoryKv } from "../../index.mjs";

const collect = async () => {
	for (let i = 0; i < 5; i++) {
		if (globalThis.Bun) globalThis.Bun.gc(true);
		else globalThis.gc();
		await new Promise((resolve) => setTimeout(resolve, 10));
	}
};
const outcome = (promise) =>
	promise.then(
		async (db) => {
			const { rows } = await db.query("SELECT v FROM t ORDER BY v");
			await db.close();
			return rows.map((row) => row[0]);
		},
		(error) => error.code,
	);

const kv = createMemoryKv();
// The KV's writes take 300 ms while `slow` is set.
let slow = false;
const putBatch = kv.putBatch.bind(kv);
kv.putBatch = async (entries) => {
	if (slow) await new Promise((resolve) => setTimeout(resolve, 300));
	return putBatch(entries);
};

await (async () => {
	const db = await open("dropped", kv);
	await db.exec("CREATE TABLE t(v); INSERT INTO t VALUES (1)");
	slow = true;
	// Neither awaited nor kept: the database and its call are dropped.
	db.run("INSERT INTO t VALUES (2)");
})();
await collect();
const inFlight = await outcome(open("dropped", kv));
slow = false;
await new Promise((resolve) => setTimeout(resolve, 400));
await collect();
const afterGc = await outcome(open("dropped", kv));
console.log(JSON.stringify({ inFlight, afterGc }));
