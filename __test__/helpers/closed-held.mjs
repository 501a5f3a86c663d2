// Child of resources.test.mjs: what closed databases keep. (1) One pool
// handle through which an actor opens, writes to and closes its database
// 200 times: how many of those closed databases are still alive after the
// GC. (2) 100 closed databases, each of which wrote, still referenced: the
// growth of memory in ArrayBuffers (null where the runtime does not say).
// Run with --expose-gc under Node (Bun has Bun.gc).

import { SqliteVfsPool, open, createMemoryKv } from "../../index.mjs";

const collect = async () => {
	for (let i = 0; i < 5; i++) {
		if (globalThis.Bun) globalThis.Bun.gc(true);
		else globalThis.gc();
		await new Promise((resolve) => setTimeout(resolve, 10));
	}
};
const arrayBuffers = () => process.memoryUsage().arrayBuffers ?? null;

const pool = new SqliteVfsPool({ actorsPerInstance: 10 });
const handle = await pool.acquire("actor");
const kv = createMemoryKv();
const refs = [];
for (let i = 0; i < 200; i++) {
	const db = await handle.open("actor", kv);
	await db.run("CREATE TABLE IF NOT EXISTS t(x)");
	await db.run("INSERT INTO t VALUES (?)", [i]);
	await db.close();
	refs.push(new WeakRef(db));
}
await collect();
const alive = refs.filter((ref) => ref.deref() !== undefined).length;
await handle.destroy();
await pool.shutdown();

await collect();
const before = arrayBuffers();
const held = [];
for (let i = 0; i < 100; i++) {
	const db = await open(`held-${i}`, createMemoryKv());
	await db.run("CREATE TABLE t(x)");
	await db.run("INSERT INTO t VALUES (1)");
	await db.close();
	held.push(db);
}
await collect();
const after = arrayBuffers();
console.log(JSON.stringify({ alive, heldGrowth: before === null || after === null ? null : after - before, held: held.length }));
