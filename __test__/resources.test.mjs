import { test, describe } from "node:test";
import assert from "node:assert/strict";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { spawnSync } from "node:child_process";
import v8 from "node:v8";
import vm from "node:vm";
import { fileURLToPath } from "node:url";

import { createMemoryKv } from "../index.mjs";
import { open, BACKEND } from "./helpers/db.mjs";

const ours = () => fs.readdirSync(os.tmpdir()).filter((name) => name.startsWith("rivetkit-sqlite-")).length;
const openFds = () => (fs.existsSync("/proc/self/fd") ? fs.readdirSync("/proc/self/fd").length : null);
// A full collection: Bun.gc under Bun, V8's gc (exposed on demand) under Node.
const gc = globalThis.Bun
	? () => globalThis.Bun.gc(true)
	: (() => {
			v8.setFlagsFromString("--expose-gc");
			return vm.runInNewContext("gc");
		})();

describe("resource hygiene", () => {
	test("opening and closing 10,000 databases leaves no directories, descriptors or growing memory", async () => {
		const cycle = async (i) => {
			const db = await open(createMemoryKv());
			await db.exec("CREATE TABLE t(v)");
			await db.run("INSERT INTO t VALUES (?)", [i]);
			await db.close();
		};
		const dirs = ours();
		for (let i = 0; i < 2000; i++) await cycle(i); // warm-up
		gc();
		const fds = openFds();
		const { rss, heapUsed } = process.memoryUsage();
		for (let i = 2000; i < 10_000; i++) await cycle(i);
		gc();
		const growth = process.memoryUsage().rss - rss;
		const heapGrowth = process.memoryUsage().heapUsed - heapUsed;
		assert.equal(ours(), dirs, "temporary directories left behind");
		if (fds !== null) assert.ok(openFds() <= fds + 2, `file descriptors: ${fds} → ${openFds()}`);
		// A database that leaked its connection, page cache and file would cost
		// hundreds of KiB each (gigabytes here). What remains is the JS heap
		// growing to its working size and garbage not yet collected.
		const mib = (n) => `${(n / 1048576).toFixed(1)} MiB`;
		assert.ok(growth < 64 * 1024 * 1024, `RSS grew by ${mib(growth)} over 8,000 databases`);
		assert.ok(heapGrowth < 8 * 1024 * 1024, `JS heap grew by ${mib(heapGrowth)} over 8,000 databases`);
	});

	test("databases never closed are removed when the process exits normally", () => {
		const script = `
			const { open, createMemoryKv } = require(${JSON.stringify(path.join(path.dirname(fileURLToPath(import.meta.url)), "..", "index.js"))});
			(async () => {
				for (let i = 0; i < 5; i++) {
					const db = await open("leak-" + i, createMemoryKv(), { backend: ${JSON.stringify(BACKEND)} });
					await db.exec("CREATE TABLE t(v)");
				}
				const dirs = require("fs").readdirSync(require("os").tmpdir()).filter((n) => n.startsWith("rivetkit-sqlite-"));
				console.log(JSON.stringify(dirs));
			})();
		`;
		const before = new Set(fs.readdirSync(os.tmpdir()));
		const child = spawnSync(process.execPath, ["-e", script], { encoding: "utf8" });
		assert.equal(child.status, 0, child.stderr);
		const created = JSON.parse(child.stdout.trim().split("\n").at(-1)).filter((name) => !before.has(name));
		if (BACKEND !== "wasm") assert.ok(created.length >= 5, "the child created its directories");
		for (const name of created) assert.equal(fs.existsSync(path.join(os.tmpdir(), name)), false, `${name} left behind`);
	});
});
