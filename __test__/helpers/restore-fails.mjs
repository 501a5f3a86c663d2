// A failed KV write whose undoing fails too: the parent shrinks this
// process's file size limit while a putBatch is in flight, so putting the
// local file back (a chunk the file's end cuts must be written) fails.
// Reports what a user sees, one JSON line: the failed call's error, a read
// while the file cannot be put back, and once the parent lifts the limit, a
// read and a write, then the KV's entries (hex) for the parent to open.
//
// Protocol: prints LOWER (the parent lowers the limit to 4 KiB, then writes
// a line), later LIFT (the parent lifts it, then writes a line).

import { createInterface } from "node:readline";

import { open, createMemoryKv } from "../../index.mjs";

const lines = createInterface({ input: process.stdin })[Symbol.asyncIterator]();
const backend = process.env.RIVETKIT_SQLITE_BACKEND || undefined;
const failure = (error) => ({ name: error.name, code: error.code, message: error.message, cause: error.cause?.message ?? null });

// A database of 1 KiB pages (as SQLite elsewhere may write them: this
// package leaves the page size alone), so that its file can end within a
// 4 KiB chunk. Written by hand: an empty database of one page (see SQLite's
// file format), and its metadata in the 2.2.1 KV format.
const page = new Uint8Array(1024);
const header = new DataView(page.buffer);
page.set(new TextEncoder().encode("SQLite format 3\0"));
header.setUint16(16, 1024); // page size
page.set([1, 1, 0, 64, 32, 32], 18); // file format versions, reserved bytes, payload fractions
header.setUint32(24, 1); // change counter
header.setUint32(28, 1); // pages
header.setUint32(44, 4); // schema format
header.setUint32(56, 1); // UTF-8
header.setUint32(92, 1); // version-valid-for (the change counter)
header.setUint32(96, 3045000);
page[100] = 0x0d; // page 1: an empty table leaf
header.setUint16(105, 1024); // its cell content area starts at the end
const meta = new Uint8Array(10);
new DataView(meta.buffer).setUint16(0, 1, true);
new DataView(meta.buffer).setBigUint64(2, 1024n, true);
const store = createMemoryKv();
await store.putBatch([
	[Uint8Array.of(8, 1, 0, 0), meta],
	[Uint8Array.of(8, 1, 1, 0, 0, 0, 0, 0), page],
]);

let failNext = false;
const kv = {
	get: (key) => store.get(key),
	getBatch: (keys) => store.getBatch(keys),
	put: (key, value) => store.put(key, value),
	deleteBatch: (keys) => store.deleteBatch(keys),
	async putBatch(entries) {
		if (!failNext) return store.putBatch(entries);
		failNext = false;
		console.log("LOWER");
		await lines.next();
		throw new Error("KV unreachable");
	},
};

const db = await open("restore-fails", kv, { backend });
const report = { backend: db.backend };
const count = async () => (await db.query("SELECT count(*) FROM t")).rows[0][0];
await db.exec("CREATE TABLE t (id INTEGER PRIMARY KEY, v BLOB NOT NULL)");
for (let i = 0; i < 10; i++) await db.run("INSERT INTO t (v) VALUES (randomblob(300))");
report.pageSize = (await db.query("PRAGMA page_size")).rows[0][0];
report.size = (await db.export()).length;
failNext = true;
try {
	await db.run("INSERT INTO t (v) VALUES (randomblob(900))");
	report.failedWrite = "resolved";
} catch (error) {
	report.failedWrite = failure(error);
}
try {
	report.readWhileLimited = await count();
} catch (error) {
	report.readWhileLimited = failure(error);
}
console.log("LIFT");
await lines.next();
report.readAfter = await count();
await db.run("INSERT INTO t (v) VALUES (randomblob(10))");
report.countAfterWrite = await count();
await db.close();
report.entries = [...store.entries()].map(([key, value]) => [Buffer.from(key).toString("hex"), Buffer.from(value).toString("hex")]);
console.log(JSON.stringify(report));
process.exit(0);
