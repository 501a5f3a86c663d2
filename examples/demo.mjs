// An example actor on a durable embedded KV (LMDB, in the folder
// examples/.demo-data): creates a table if it is not there yet, writes,
// closes, reopens, reads back, and shows what each call wrote to the KV. Run
// it twice: the second run finds the first run's visits, since the data
// outlived the process.
//
//   npm run demo                 # LMDB in examples/.demo-data (delete it to start over)
//   npm run demo -- --memory     # the in-memory KV instead (also SQLITE_VFS_DEMO_KV=memory)

import path from "node:path";
import { fileURLToPath } from "node:url";

import { open, createMemoryKv } from "@rivetkit/sqlite-vfs";
import { createLmdbKv } from "@rivetkit/sqlite-vfs/kv/lmdb";

const inMemory = process.argv.includes("--memory") || process.env.SQLITE_VFS_DEMO_KV === "memory";
const folder = path.join(path.dirname(fileURLToPath(import.meta.url)), ".demo-data");

const hex = (bytes) => Buffer.from(bytes).toString("hex");

/** Wraps a KV so every write is logged under the call that caused it. */
function loggingKv(kv) {
	const log = [];
	const wrap = (method, describe) => async (...args) => {
		log.push(describe(...args));
		return kv[method](...args);
	};
	return {
		log,
		get: kv.get,
		getBatch: wrap("getBatch", (keys) => ({ method: "getBatch", keys: keys.length, bytes: 0 })),
		put: wrap("put", (k, v) => ({ method: "put", keys: 1, bytes: k.length + v.length, list: [hex(k)] })),
		putBatch: wrap("putBatch", (entries) => ({
			method: "putBatch",
			keys: entries.length,
			bytes: entries.reduce((n, [k, v]) => n + k.length + v.length, 0),
			list: entries.map(([k, v]) => `${hex(k)} (${v.length} B)`),
		})),
		deleteBatch: wrap("deleteBatch", (keys) => ({ method: "deleteBatch", keys: keys.length, bytes: 0, list: keys.map(hex) })),
	};
}

const store = inMemory ? createMemoryKv() : createLmdbKv(folder, { actor: "demo-actor" });
const kv = loggingKv(store);
console.log(inMemory ? "KV: in memory (gone when the process exits)" : `KV: LMDB in ${path.relative(process.cwd(), folder) || folder} (kept across runs)`);

async function step(label, fn) {
	kv.log.length = 0;
	const result = await fn();
	const writes = kv.log.filter((c) => c.method !== "getBatch");
	const reads = kv.log.filter((c) => c.method === "getBatch");
	console.log(`\n> ${label}`);
	if (result !== undefined && typeof result?.close !== "function") console.log("  result:", JSON.stringify(result, (_, v) => (typeof v === "bigint" ? `${v}n` : v)));
	if (reads.length) console.log(`  KV reads: ${reads.length} getBatch call(s), ${reads.reduce((n, c) => n + c.keys, 0)} keys`);
	if (writes.length === 0) console.log("  KV writes: none");
	for (const w of writes) {
		console.log(`  KV ${w.method}: ${w.keys} key(s), ${w.bytes} bytes`);
		for (const item of w.list ?? []) console.log(`    ${item}`);
	}
	return result;
}

let db = await step('open("demo-actor")', () => open("demo-actor", kv));
console.log(`  engine: ${db.backend}`);
await step("CREATE TABLE IF NOT EXISTS visits", () =>
	db.exec("CREATE TABLE IF NOT EXISTS visits(id INTEGER PRIMARY KEY, who TEXT NOT NULL, at INTEGER NOT NULL)"),
);
const earlier = await step("rows from earlier runs", async () => (await db.query("SELECT count(*) FROM visits")).rows[0][0]);
if (earlier > 0) console.log(`  ${earlier} rows were already there: written by an earlier run of the demo`);
await step("INSERT one row", () => db.run("INSERT INTO visits(who, at) VALUES (?, ?)", ["ada", Math.floor(Date.now() / 1000)]));
await step("INSERT 500 rows in one transaction", async () => {
	await db.exec("BEGIN");
	for (let i = 0; i < 500; i++) await db.run("INSERT INTO visits(who, at) VALUES (:who, :at)", { who: `guest-${i}`, at: i });
	await db.exec("COMMIT");
});
await step("UPDATE one row", () => db.run("UPDATE visits SET who = 'grace' WHERE id = (SELECT max(id) FROM visits WHERE who = 'ada')"));
await step("SELECT (reads are served locally)", async () => (await db.query("SELECT count(*) AS n FROM visits")).rows[0][0]);
await step("close()", () => db.close());

db = await step('open("demo-actor") again: the whole file is read back', () => open("demo-actor", kv));
await step("read back", async () => (await db.query("SELECT id, who, at FROM visits WHERE id <= ? ORDER BY id", [3])).rows);
await step("how many runs so far", async () => (await db.query("SELECT count(*) FROM visits WHERE who = 'grace'")).rows[0][0]);
await db.close();
const keys = inMemory ? store.size : (await store.entries()).length;
console.log(`\nThe KV holds ${keys} keys: one per 4 KiB page plus the metadata.`);
if (!inMemory) {
	await store.close();
	console.log("Run `npm run demo` again: the rows are still there.");
}
