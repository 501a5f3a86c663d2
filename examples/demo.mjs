// An example actor on the embedded default KV: creates a table, writes,
// closes, reopens, reads back, and shows what each call wrote to the KV.
//
//   npm run demo

import { open, createMemoryKv } from "../index.mjs";

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

const store = createMemoryKv();
const kv = loggingKv(store);

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

let db = await step('open("demo-actor") on an empty KV', () => open("demo-actor", kv));
console.log(`  engine: ${db.backend}`);
await step("CREATE TABLE visits", () =>
	db.exec("CREATE TABLE visits(id INTEGER PRIMARY KEY, who TEXT NOT NULL, at INTEGER NOT NULL)"),
);
await step("INSERT one row", () => db.run("INSERT INTO visits(who, at) VALUES (?, ?)", ["ada", 1700000000]));
await step("INSERT 500 rows in one transaction", async () => {
	await db.exec("BEGIN");
	for (let i = 0; i < 500; i++) await db.run("INSERT INTO visits(who, at) VALUES (:who, :at)", { who: `guest-${i}`, at: i });
	await db.exec("COMMIT");
});
await step("UPDATE one row", () => db.run("UPDATE visits SET who = 'grace' WHERE id = 1"));
await step("SELECT (reads are served locally)", async () => (await db.query("SELECT count(*) AS n FROM visits")).rows[0][0]);
await step("close()", () => db.close());

db = await step('open("demo-actor") again: the whole file is read back', () => open("demo-actor", kv));
await step("read back", async () => (await db.query("SELECT id, who, at FROM visits WHERE id <= ? ORDER BY id", [3])).rows);
await db.close();
console.log(`\nThe KV holds ${store.size} keys: one per 4 KiB page plus the metadata.`);
