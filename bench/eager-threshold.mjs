// Where lazy paging starts paying: cold open plus 10 and 100 random point
// queries at 1 ms of KV latency, for databases of 0.25 to 8 MiB read whole
// at open (`preload: true`) or paged lazily (`preload: false`). Lib's
// EAGER_SIZE (lib/persist.js) comes from this.
//
//   node bench/eager-threshold.mjs
//
// Prints the median of 5 runs per size and mode, in ms: open / +10 queries / +100 queries.

import { open } from "../index.js";
import { createRequire } from "node:module";
const require = createRequire(import.meta.url);
const { BenchKv } = require("./kv.js");
async function build(bytes) {
	const kv = new BenchKv();
	const db = await open("x", kv, { backend: "native" });
	await db.exec("CREATE TABLE t(id INTEGER PRIMARY KEY, k INTEGER, v BLOB); CREATE INDEX t_k ON t(k)");
	const rows = Math.floor(bytes / 360);
	await db.exec(
		`WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i+1 FROM n WHERE i < ${rows}) INSERT INTO t(k, v) SELECT abs(random() % 100000), randomblob(300) FROM n`,
	);
	await db.close();
	return kv;
}
for (const mb of [0.25, 0.5, 1, 2, 4, 8]) {
	const base = await build(mb * 1024 * 1024);
	const res = {};
	for (const preload of [true, false]) {
		const times = [];
		for (let r = 0; r < 5; r++) {
			const kv = new BenchKv({ latencyMs: 1, store: new Map(base.entries().map(([k, v]) => [Buffer.from(k).toString("latin1"), v])) });
			const t = performance.now();
			const db = await open("x", kv, { backend: "native", preload });
			const o = performance.now() - t;
			for (let q = 0; q < 10; q++) await db.query("SELECT * FROM t WHERE id = ?", [1 + Math.floor(Math.random() * 1000)]);
			const ten = performance.now() - t;
			for (let q = 0; q < 90; q++) await db.query("SELECT * FROM t WHERE id = ?", [1 + Math.floor(Math.random() * 1000 * mb)]);
			const hundred = performance.now() - t;
			times.push([o, ten, hundred]);
			await db.close();
		}
		times.sort((a, b) => a[2] - b[2]);
		res[preload ? "eager" : "lazy"] = times[2].map((x) => x.toFixed(1)).join(" / ");
	}
	console.log(`${mb} MB  eager open/10q/100q: ${res.eager}   lazy: ${res.lazy}`);
}
