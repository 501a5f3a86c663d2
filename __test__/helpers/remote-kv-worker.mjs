// Worker of resources.test.mjs: a database on a KV that lives on the main
// thread (each call a message, answered by a message), so the KV outlives
// the worker when it is terminated. `workerData.mode`: "rows" inserts rows
// one by one, awaited, and says which resolved; "bulk" runs large inserts
// (each goes on on an engine thread natively, and commits in several KV
// calls) and says which resolved.

import { parentPort, workerData } from "node:worker_threads";
import { open } from "../../index.mjs";

let next = 0;
const waiting = new Map();
parentPort.on("message", ({ id, value, error }) => {
	const call = waiting.get(id);
	waiting.delete(id);
	if (error !== undefined) call.reject(new Error(error));
	else call.resolve(value);
});
const call = (method) => (arg) =>
	new Promise((resolve, reject) => {
		const id = next++;
		waiting.set(id, { resolve, reject });
		parentPort.postMessage({ id, method, arg });
	});
const kv = {
	get: call("get"),
	getBatch: call("getBatch"),
	put: (key, value) => call("put")([key, value]),
	putBatch: call("putBatch"),
	deleteBatch: call("deleteBatch"),
};

const db = await open("remote", kv, { backend: workerData.backend });
await db.exec("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT NOT NULL)");
for (let i = 1; ; i++) {
	if (workerData.mode === "rows") {
		await db.run("INSERT INTO t (id, v) VALUES (?, ?)", [i, `row ${i}`]);
	} else {
		// 2,000 rows of 1 KiB: about 2 MB, more than one putBatch can take.
		await db.run(
			"INSERT INTO t (v) WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 2000) SELECT printf('%.1000c', 'a') FROM c",
		);
	}
	parentPort.postMessage({ resolved: i });
}
