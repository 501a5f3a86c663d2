// Child of resources.test.mjs: starts WORKERS worker threads, each with three
// idle open databases and one running a runaway query with no timeout, and
// terminates them. Prints the CPU time the process used over the next second
// (an orphaned query would keep an engine thread busy), and the local
// directories left in TMPDIR by then.

import { Worker, isMainThread, parentPort } from "node:worker_threads";
import { open, createMemoryKv } from "../../index.mjs";
import { databaseFiles, processDirs } from "./local-files.mjs";

const WORKERS = 4;
const RUNAWAY = "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT count(*) FROM c";

if (isMainThread) {
	const workers = [];
	for (let i = 0; i < WORKERS; i++) {
		const worker = new Worker(new URL(import.meta.url));
		await new Promise((resolve, reject) => {
			worker.once("message", resolve);
			worker.once("error", reject);
		});
		workers.push(worker);
	}
	const whileOpen = databaseFiles(process.env.TMPDIR).length;
	// The queries are under way (on engine threads, natively).
	await new Promise((resolve) => setTimeout(resolve, 300));
	await Promise.all(workers.map((worker) => worker.terminate()));
	// What is left once teardown had a moment.
	await new Promise((resolve) => setTimeout(resolve, 500));
	const cpu = process.cpuUsage();
	await new Promise((resolve) => setTimeout(resolve, 1000));
	const used = process.cpuUsage(cpu);
	console.log(JSON.stringify({ whileOpen, cpuMs: (used.user + used.system) / 1000, left: processDirs(process.env.TMPDIR).length }));
} else {
	// Kept referenced: open until the worker ends.
	globalThis.idle = [];
	for (let i = 0; i < 3; i++) {
		const db = await open(`idle-${i}`, createMemoryKv());
		await db.exec("CREATE TABLE t(v); INSERT INTO t VALUES (1)");
		globalThis.idle.push(db);
	}
	const db = await open("runaway", createMemoryKv(), { timeoutMs: 0 });
	// Said first: the WASM engine runs the query on this thread, which then
	// runs nothing else.
	parentPort.postMessage("ready");
	db.query(RUNAWAY).catch(() => {});
}
