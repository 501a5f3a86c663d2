// Opens, writes and closes many databases, then reports what was left behind.
// Run as a child process with TMPDIR set to a private directory (see
// resources.test.mjs); prints one JSON line.

import fs from "node:fs";
import v8 from "node:v8";
import vm from "node:vm";

import { open, createMemoryKv } from "../../index.mjs";
import { databaseFiles } from "./local-files.mjs";

const total = Number(process.argv[2] ?? 10_000);
const warmup = Math.min(2000, total / 5);
const backend = process.env.RIVETKIT_SQLITE_BACKEND || undefined;
const tmp = process.env.TMPDIR;
const files = () => databaseFiles(tmp).length;
const fds = () => (fs.existsSync("/proc/self/fd") ? fs.readdirSync("/proc/self/fd").length : null);
const gc = globalThis.Bun
	? () => globalThis.Bun.gc(true)
	: (() => {
			v8.setFlagsFromString("--expose-gc");
			return vm.runInNewContext("gc");
		})();

async function cycle(i) {
	const db = await open(`churn-${i}`, createMemoryKv(), { backend });
	await db.exec("CREATE TABLE t(v)");
	await db.run("INSERT INTO t VALUES (?)", [i]);
	await db.close();
}

const probe = await open("probe", createMemoryKv(), { backend });
const whileOpen = files();
await probe.close();
for (let i = 0; i < warmup; i++) await cycle(i);
gc();
const before = { fds: fds(), ...process.memoryUsage() };
for (let i = warmup; i < total; i++) await cycle(i);
gc();
const after = { fds: fds(), ...process.memoryUsage() };
console.log(
	JSON.stringify({
		whileOpen,
		leftDirs: files(),
		measured: total - warmup,
		fds: [before.fds, after.fds],
		rssGrowth: after.rss - before.rss,
		// Memory outside the JS heap: the RSS less what V8 has reserved for its
		// heap (V8 may keep a larger heap after a burst of garbage).
		nativeGrowth: after.rss - after.heapTotal - (before.rss - before.heapTotal),
		heapGrowth: after.heapUsed - before.heapUsed,
	}),
);
