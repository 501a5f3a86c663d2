// Child of resources.test.mjs: opens 20 databases and drops them without
// close(), then lets the garbage collector and the event loop run. Prints
// the process's open file descriptors before, with the databases open, and
// after. Run with --expose-gc under Node (Bun has Bun.gc).

import fs from "node:fs";
import { open, createMemoryKv } from "../../index.mjs";

const fds = () => fs.readdirSync("/proc/self/fd").length;
const collect = () => (globalThis.Bun ? globalThis.Bun.gc(true) : globalThis.gc());

const before = fds();
for (let i = 0; i < 20; i++) {
	const db = await open(`dropped-${i}`, createMemoryKv());
	await db.run("CREATE TABLE t(v)");
}
const open20 = fds();
for (let i = 0; i < 5; i++) {
	collect();
	await new Promise((resolve) => setImmediate(resolve));
	await new Promise((resolve) => setTimeout(resolve, 10));
}
console.log(JSON.stringify({ before, open: open20, after: fds() }));
