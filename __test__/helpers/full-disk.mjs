// Fills a database until its local file cannot grow (the parent runs this
// under a file size limit, as a full disk), then reports what a user sees:
// the failed call's error, reads and writes while full, and the KV's entries
// (hex) for the parent to open, and, if the parent frees space, a write
// after. Prints one JSON line.

import { open, createMemoryKv } from "../../index.mjs";

const backend = process.env.RIVETKIT_SQLITE_BACKEND || undefined;
const kv = createMemoryKv();
const db = await open("full-disk", kv, { backend });
const report = { backend: db.backend, resolved: 0, error: null };
const failure = (error) => ({ name: error.name, code: error.code, message: error.message });

await db.exec("CREATE TABLE t (id INTEGER PRIMARY KEY, v BLOB NOT NULL)");
for (let i = 0; i < 1000; i++) {
	try {
		await db.run("INSERT INTO t (v) VALUES (randomblob(3000))");
		report.resolved++;
	} catch (error) {
		report.error = failure(error);
		break;
	}
}
report.resolvedWhenFull = report.resolved;
const count = async () => (await db.query("SELECT count(*) FROM t")).rows[0][0];
report.countWhileFull = await count();
report.integrityWhileFull = (await db.query("PRAGMA integrity_check")).rows[0][0];
try {
	await db.exec("BEGIN; INSERT INTO t (v) VALUES (randomblob(3000)); INSERT INTO t (v) VALUES (randomblob(3000)); COMMIT");
	report.secondWrite = "resolved";
} catch (error) {
	report.secondWrite = failure(error);
}
report.inTransaction = db.inTransaction;
report.countAfterSecondWrite = await count();
// A script whose first statement needs no new page (it shrinks a row) and
// whose second does. While the disk is full, the engine cannot write out
// pages it held back in memory, so the first statement fails already.
try {
	await db.exec("UPDATE t SET v = zeroblob(10) WHERE id = 1; INSERT INTO t (v) VALUES (randomblob(3000))");
	report.script = "resolved";
} catch (error) {
	report.script = failure(error);
}
report.firstRowAfterScript = (await db.query("SELECT length(v) FROM t WHERE id = 1")).rows[0][0];
report.countAfterScript = await count();
// With RECOVER set, the parent lifts the limit (space is freed) once it
// reads this line, and says so on stdin.
if (process.env.RECOVER) {
	console.log("FULL");
	await new Promise((resolve) => process.stdin.once("data", resolve));
	process.stdin.pause();
	try {
		await db.run("INSERT INTO t (v) VALUES (randomblob(3000))");
		report.resolved++;
		report.afterSpace = "resolved";
	} catch (error) {
		report.afterSpace = failure(error);
	}
	report.countAfterSpace = await count();
}
await db.close();
report.entries = [...kv.entries()].map(([key, value]) => [Buffer.from(key).toString("hex"), Buffer.from(value).toString("hex")]);
console.log(JSON.stringify(report));
