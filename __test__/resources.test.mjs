import { test, describe, after } from "node:test";
import assert from "node:assert/strict";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { spawn, spawnSync } from "node:child_process";
import readline from "node:readline";
import { fileURLToPath, pathToFileURL } from "node:url";
import { Worker } from "node:worker_threads";

import { createMemoryKv } from "../index.mjs";
import { BACKEND, open, rows } from "./helpers/db.mjs";
import { PRLIMIT, runUnderFileLimit } from "./helpers/file-limit.mjs";
import { databaseFiles, processDirs } from "./helpers/local-files.mjs";

// A private temporary directory, so other processes' databases do not count.
const privateTmp = fs.mkdtempSync(path.join(os.tmpdir(), "sqlite-vfs-resources-"));
const here = path.dirname(fileURLToPath(import.meta.url));
// What the inline child scripts below start with: the package, and the
// helpers that find local files (loaded by import(): the scripts are CommonJS).
const CHILD_PRELUDE = `
	const { open, createMemoryKv } = require(${JSON.stringify(path.join(here, "..", "index.js"))});
	const fs = require("fs");
	const tmp = process.env.TMPDIR;
	const localFiles = import(${JSON.stringify(pathToFileURL(path.join(here, "helpers", "local-files.mjs")).href)});
`;
describe("resource hygiene", () => {
	after(() => fs.rmSync(privateTmp, { recursive: true, force: true }));

	test("opening and closing 10,000 databases leaves no local files, descriptors or growing memory", () => {
		const tmp = fs.mkdtempSync(path.join(privateTmp, "churn-"));
		const child = spawnSync(process.execPath, [path.join(here, "helpers", "churn.mjs"), "10000"], {
			encoding: "utf8",
			env: { ...process.env, TMPDIR: tmp },
		});
		assert.equal(child.status, 0, child.stderr);
		const report = JSON.parse(child.stdout.trim().split("\n").at(-1));
		if (BACKEND !== "wasm") assert.equal(report.whileOpen, 1, "an open database has its file in TMPDIR");
		assert.equal(report.leftDirs, 0, "local files left behind");
		const [fdsBefore, fdsAfter] = report.fds;
		if (fdsBefore !== null) assert.ok(fdsAfter <= fdsBefore + 2, `file descriptors: ${fdsBefore} → ${fdsAfter}`);
		// A database that leaked its connection, page cache and file would cost
		// hundreds of KiB each (gigabytes here). The RSS also moves with the
		// size V8 chooses for its heap, so the bound is on the RSS outside the
		// JS heap and on the JS heap's live objects.
		const mib = (n) => `${(n / 1048576).toFixed(1)} MiB`;
		assert.ok(
			report.nativeGrowth < 64 * 1024 * 1024,
			`RSS outside the JS heap grew by ${mib(report.nativeGrowth)} over ${report.measured} databases (RSS: ${mib(report.rssGrowth)})`,
		);
		assert.ok(report.heapGrowth < 8 * 1024 * 1024, `JS heap grew by ${mib(report.heapGrowth)} over ${report.measured} databases`);
	});

	test("an open native database holds two file descriptors (the process one more); one dropped without close() is freed by the GC", {
		skip: !fs.existsSync("/proc/self/fd") && "no /proc/self/fd to count descriptors",
	}, () => {
		const flags = process.versions.bun ? [] : ["--expose-gc"];
		const child = spawnSync(process.execPath, [...flags, path.join(here, "helpers", "dropped.mjs")], { encoding: "utf8" });
		assert.equal(child.status, 0, child.stderr);
		const { before, open: opened, after } = JSON.parse(child.stdout.trim().split("\n").at(-1));
		const each = BACKEND === "wasm" ? 0 : 2;
		assert.ok(opened - before >= 20 * each && opened - before <= 20 * each + 2, `20 open databases: ${before} → ${opened} descriptors`);
		// The lock of the process's directory stays (see "a process killed …"),
		// and the last database may not be collected yet (its two).
		assert.ok(after <= before + 3, `after the GC and an event-loop turn: ${before} → ${after} descriptors`);
	});

	test("a closed database keeps nothing for its next writes, and a pool handle keeps only the databases still open", () => {
		const flags = process.versions.bun ? [] : ["--expose-gc"];
		const child = spawnSync(process.execPath, [...flags, path.join(here, "helpers", "closed-held.mjs")], { encoding: "utf8" });
		assert.equal(child.status, 0, child.stderr);
		const { alive, heldGrowth } = JSON.parse(child.stdout.trim().split("\n").at(-1));
		// An actor that reopened its database 200 times through one handle
		// once kept all 200 (the last may still be held).
		assert.ok(alive <= 2, `${alive} of 200 closed databases still alive`);
		// 100 closed databases still referenced: each once kept its 64 KiB
		// slab; what stays is the KV's own copy of its 2 pages (8 KiB).
		// (Bun reports no ArrayBuffer memory.)
		if (!process.versions.bun && heldGrowth !== null) {
			assert.ok(heldGrowth < 100 * 24 * 1024, `100 closed databases: ${Math.round(heldGrowth / 1024)} KiB of ArrayBuffers`);
		}
	});

	test("a database dropped without close() frees its KV for another once the GC collects it, not while its write is in flight", () => {
		const flags = process.versions.bun ? [] : ["--expose-gc"];
		const child = spawnSync(process.execPath, [...flags, path.join(here, "helpers", "dropped-kv.mjs")], { encoding: "utf8" });
		assert.equal(child.status, 0, child.stderr);
		const { inFlight, afterGc } = JSON.parse(child.stdout.trim().split("\n").at(-1));
		assert.equal(inFlight, "SQLITE_BUSY");
		// The dropped database's last write resolved in the KV before it went.
		assert.deepEqual(afterGc, [1, 2]);
	});

	test("a temporary directory that does not exist fails the open clearly on the native engine; WASM needs none", () => {
		const script = `
			const { open, createMemoryKv } = require(${JSON.stringify(path.join(here, "..", "index.js"))});
			open("x", createMemoryKv(), { backend: ${JSON.stringify(BACKEND)} }).then(
				async (db) => {
					await db.exec("CREATE TABLE t(v); INSERT INTO t VALUES (1)");
					console.log(JSON.stringify({ opened: db.backend }));
					await db.close();
				},
				(error) => console.log(JSON.stringify({ name: error.name, code: error.code, message: error.message })),
			);
		`;
		const missing = path.join(privateTmp, "no-such-dir");
		const child = spawnSync(process.execPath, ["-e", script], { encoding: "utf8", env: { ...process.env, TMPDIR: missing } });
		assert.equal(child.status, 0, child.stderr);
		const outcome = JSON.parse(child.stdout.trim().split("\n").at(-1));
		if (BACKEND === "wasm") {
			assert.deepEqual(outcome, { opened: "wasm" });
		} else {
			assert.equal(outcome.name, "SqliteError", child.stdout);
			assert.equal(outcome.code, "SQLITE_IOERR");
			assert.ok(outcome.message.includes(missing), outcome.message);
		}
		assert.equal(fs.existsSync(missing), false);
	});

	test("1,000 idle open databases start no thread; 40 long queries at once run on at most 16 engine threads", {
		skip: !fs.existsSync("/proc/self/task") && "no /proc/self/task to count threads",
	}, () => {
		const script = `
			const { open, createMemoryKv } = require(${JSON.stringify(path.join(here, "..", "index.js"))});
			const fs = require("fs");
			const threads = () => fs.readdirSync("/proc/self/task").length;
			const backend = ${JSON.stringify(BACKEND ?? null)};
			const SLOW = "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 100000) SELECT count(*) FROM c";
			const life = async (name) => {
				const db = await open(name, createMemoryKv(), { backend });
				await db.exec("CREATE TABLE t(v); INSERT INTO t VALUES (1)");
				await db.query("SELECT v FROM t");
				return db;
			};
			(async () => {
				// The runtime's own threads that start on first use (a file
				// system thread pool, say) start here.
				await (await life("probe")).close();
				await new Promise((resolve) => setTimeout(resolve, 50));
				const before = threads();
				const dbs = [];
				for (let i = 0; i < 1000; i++) dbs.push(await life("idle-" + i));
				const idle = threads();
				let busy = idle;
				const sample = setInterval(() => { busy = Math.max(busy, threads()); }, 2);
				const counts = await Promise.all(dbs.slice(0, 40).map((db) => db.query(SLOW)));
				clearInterval(sample);
				for (const db of dbs) await db.close();
				console.log(JSON.stringify({ backend: dbs[0].backend, before, idle, busy, counts: new Set(counts.map((c) => c.rows[0][0])).size }));
			})();
		`;
		const child = spawnSync(process.execPath, ["-e", script], { encoding: "utf8" });
		assert.equal(child.status, 0, child.stderr);
		const { backend, before, idle, busy, counts } = JSON.parse(child.stdout.trim().split("\n").at(-1));
		assert.equal(counts, 1, "every query gave the same count");
		// A few threads of the runtime's own may start meanwhile; a thread per
		// database would be a thousand.
		assert.ok(idle - before <= 4, `1,000 idle databases: ${before} → ${idle} threads`);
		const engine = backend === "native" ? 16 : 0;
		assert.ok(busy - idle <= engine + 4, `40 long queries at once: ${idle} → ${busy} threads`);
		// (And the count saw them: the queries left the JS thread.)
		if (backend === "native") assert.ok(busy > idle, `40 long queries at once: ${idle} → ${busy} threads`);
	});

	test("close() removes a database's local files, small or large, and the next open works", () => {
		const script = `${CHILD_PRELUDE}
			(async () => {
				const { databaseFiles } = await localFiles;
				const files = () => databaseFiles(tmp);
				const report = [];
				// Small files are removed on the JS thread, large ones (over 1 MiB) on an engine thread.
				for (const mib of [0, 4]) {
					const kv = createMemoryKv();
					const db = await open("db", kv, { backend: ${JSON.stringify(BACKEND)} });
					await db.exec("CREATE TABLE t(v)");
					if (mib > 0) await db.run("WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?) INSERT INTO t SELECT randomblob(65536) FROM n", [mib * 16]);
					const whileOpen = files().length;
					await db.close();
					const again = await open("db", kv, { backend: ${JSON.stringify(BACKEND)} });
					const rows = (await again.query("SELECT count(*) FROM t")).rows[0][0];
					await again.close();
					report.push({ mib, whileOpen, afterClose: files().length, rows });
				}
				console.log(JSON.stringify(report));
			})();
		`;
		const tmp = fs.mkdtempSync(path.join(privateTmp, "close-"));
		const child = spawnSync(process.execPath, ["-e", script], { encoding: "utf8", env: { ...process.env, TMPDIR: tmp } });
		assert.equal(child.status, 0, child.stderr);
		const report = JSON.parse(child.stdout.trim().split("\n").at(-1));
		const native = BACKEND !== "wasm";
		assert.deepEqual(report, [
			{ mib: 0, whileOpen: native ? 1 : 0, afterClose: 0, rows: 0 },
			{ mib: 4, whileOpen: native ? 1 : 0, afterClose: 0, rows: 64 },
		]);
		assert.deepEqual(fs.readdirSync(tmp), [], "files left after exit");
	});

	test("the next open works after a cleaner of old temporary files removed the process's directory", () => {
		const script = `${CHILD_PRELUDE}
			(async () => {
				const { processDirs } = await localFiles;
				const first = await open("first", createMemoryKv(), { backend: ${JSON.stringify(BACKEND)} });
				await first.exec("CREATE TABLE t(v); INSERT INTO t VALUES (1)");
				const before = processDirs(tmp);
				for (const dir of before) fs.rmSync(dir, { recursive: true });
				const second = await open("second", createMemoryKv(), { backend: ${JSON.stringify(BACKEND)} });
				await second.exec("CREATE TABLE t(v); INSERT INTO t SELECT zeroblob(100000)");
				const rows = (await second.query("SELECT length(v) FROM t")).rows;
				const after = processDirs(tmp);
				await second.close();
				await first.close();
				console.log(JSON.stringify({ before: before.length, after: after.length, renewed: !before.includes(after[0]), rows }));
			})();
		`;
		const tmp = fs.mkdtempSync(path.join(privateTmp, "cleaned-"));
		const child = spawnSync(process.execPath, ["-e", script], { encoding: "utf8", env: { ...process.env, TMPDIR: tmp } });
		assert.equal(child.status, 0, child.stderr);
		const outcome = JSON.parse(child.stdout.trim().split("\n").at(-1));
		if (BACKEND === "wasm") assert.deepEqual(outcome, { before: 0, after: 0, renewed: true, rows: [[100000]] });
		else assert.deepEqual(outcome, { before: 1, after: 1, renewed: true, rows: [[100000]] });
		assert.deepEqual(fs.readdirSync(tmp), [], "files left after exit");
	});

	// process.exit() runs no native cleanup: lib/open.js removes the files.
	for (const ending of ["its end", "process.exit()", "process.exit() with every database closed"]) {
		test(`databases never closed are removed when the process exits normally (${ending})`, () => {
			const script = `${CHILD_PRELUDE}
				(async () => {
					const { databaseFiles } = await localFiles;
					const dbs = [];
					for (let i = 0; i < 5; i++) {
						const db = await open("leak-" + i, createMemoryKv(), { backend: ${JSON.stringify(BACKEND)} });
						await db.exec("CREATE TABLE t(v)");
						dbs.push(db);
					}
					console.log(JSON.stringify(databaseFiles(tmp)));
					if (${JSON.stringify(ending.includes("closed"))}) for (const db of dbs) await db.close();
					if (${JSON.stringify(ending.startsWith("process.exit"))}) process.exit(0);
				})();
			`;
			const tmp = fs.mkdtempSync(path.join(privateTmp, "exit-"));
			const child = spawnSync(process.execPath, ["-e", script], { encoding: "utf8", env: { ...process.env, TMPDIR: tmp } });
			assert.equal(child.status, 0, child.stderr);
			const created = JSON.parse(child.stdout.trim().split("\n").at(-1));
			if (BACKEND !== "wasm") assert.equal(created.length, 5, "the child created its databases' files");
			assert.deepEqual(fs.readdirSync(tmp), [], "files left behind");
		});
	}

	test("a process killed with databases open leaves private files, which the next process removes, sparing those of live processes", async () => {
		const tmp = fs.mkdtempSync(path.join(privateTmp, "killed-"));
		const helper = path.join(here, "helpers", "killed.mjs");
		const env = { ...process.env, TMPDIR: tmp };
		const lastLine = (text) => JSON.parse(text.trim().split("\n").at(-1));

		const killed = spawnSync(process.execPath, [helper, "killed"], { encoding: "utf8", env });
		assert.equal(killed.signal, "SIGKILL", killed.stderr);
		const dead = processDirs(tmp);
		if (BACKEND !== "wasm") {
			assert.equal(dead.length, 1, "the killed process's directory is left");
			assert.equal(databaseFiles(tmp).length, 3, "with its three databases' files");
			if (process.platform !== "win32") {
				// Only its user may reach the databases' pages.
				assert.equal(fs.statSync(dead[0]).mode & 0o777, 0o700);
			}
		}

		// A process that is alive keeps its files through the sweep.
		const live = spawn(process.execPath, [helper, "live"], { env, stdio: ["pipe", "pipe", "inherit"] });
		const liveExit = new Promise((resolve) => live.once("exit", (code) => resolve(code)));
		try {
			const lines = readline.createInterface({ input: live.stdout });
			const said = lines[Symbol.asyncIterator]();
			const { ready } = JSON.parse((await said.next()).value);
			const liveDirs = ready.filter((dir) => !dead.includes(dir));
			if (BACKEND !== "wasm") assert.equal(liveDirs.length, 1, "the live process has its directory");

			const sweeper = spawnSync(process.execPath, [helper, "sweeper", JSON.stringify(dead)], { encoding: "utf8", env, timeout: 60_000 });
			assert.equal(sweeper.status, 0, sweeper.stderr);
			const { left } = lastLine(sweeper.stdout);
			for (const dir of dead) assert.ok(!left.includes(dir), `the dead process's ${dir} is still there`);
			for (const dir of liveDirs) assert.ok(left.includes(dir), `the live process's ${dir} was removed`);

			live.stdin.end("go\n");
			const { rows } = JSON.parse((await said.next()).value);
			assert.deepEqual(rows, [1, 2], "the live process's database still works");
			assert.equal(await liveExit, 0);
		} finally {
			// A failed assertion must not leave it waiting for its line.
			live.kill("SIGKILL");
		}
		assert.deepEqual(fs.readdirSync(tmp), [], "directories left after every process ended");
	});

	test("a terminated worker's databases stop their calls and remove their local files", () => {
		const tmp = fs.mkdtempSync(path.join(privateTmp, "terminated-"));
		const child = spawnSync(process.execPath, [path.join(here, "helpers", "terminated.mjs")], {
			encoding: "utf8",
			env: { ...process.env, TMPDIR: tmp },
			timeout: 60_000,
		});
		assert.equal(child.status, 0, child.stderr);
		const { whileOpen, cpuMs, left } = JSON.parse(child.stdout.trim().split("\n").at(-1));
		if (BACKEND !== "wasm") assert.equal(whileOpen, 16, "four workers' databases had their files");
		// Four runaway queries left running would use the machine's every core.
		assert.ok(cpuMs < 500, `${cpuMs} ms of CPU in the second after the workers ended`);
		assert.equal(left, 0, "directories left behind");
		assert.deepEqual(fs.readdirSync(tmp), [], "directories left after exit");
	});

	// A worker whose database writes to a KV on this thread is terminated
	// while a KV call of a commit is under way: before the KV carried it out,
	// or after, before it answered. What the KV holds then opens whole, with
	// every write whose promise resolved, and of the one in flight either all
	// or nothing: all only when the KV carried out its commit point.
	for (const [mode, method, nth, applied] of [
		["rows", "putBatch", 25, false],
		["rows", "putBatch", 25, true],
		["bulk", "putBatch", 4, false],
		["bulk", "putBatch", 4, true],
		["bulk", "deleteBatch", 2, true],
	]) {
		test(`a worker terminated at its ${mode} commit's ${method} (${applied ? "carried out" : "not carried out"}) leaves the KV whole, with every resolved write`, async () => {
			const kv = createMemoryKv();
			const worker = new Worker(new URL("./helpers/remote-kv-worker.mjs", import.meta.url), {
				workerData: { mode, backend: BACKEND },
			});
			let resolved = 0;
			let seen = 0;
			// KV calls the worker made after the one it was stopped at are not
			// carried out; the writes it said resolved still count.
			let stopped = false;
			const ended = new Promise((resolve, reject) => {
				worker.on("error", reject);
				worker.on("exit", resolve);
			});
			worker.on("message", async (message) => {
				if (message.resolved !== undefined) resolved = message.resolved;
				if (message.method === undefined || stopped) return;
				// Counted from the first write that resolved: the commit cut short is a later one.
				const stop = resolved > 0 && message.method === method && ++seen === nth;
				stopped ||= stop;
				if (stop && !applied) {
					worker.terminate();
					return;
				}
				let reply;
				try {
					const arg = message.arg;
					const value = message.method === "put" ? await kv.put(arg[0], arg[1]) : await kv[message.method](arg);
					reply = { id: message.id, value };
				} catch (error) {
					reply = { id: message.id, error: String(error) };
				}
				if (stop) worker.terminate();
				else worker.postMessage(reply);
			});
			await ended;
			const db = await open(kv, {}, "remote");
			try {
				assert.deepEqual(await rows(db, "PRAGMA integrity_check"), [["ok"]]);
				const [[count]] = await rows(db, "SELECT count(*) FROM t");
				const perWrite = mode === "rows" ? 1 : 2000;
				// The large commit's last putBatch comes before its commit point (a deleteBatch).
				const inFlight = applied && method === "deleteBatch" ? 1 : mode === "rows" && applied ? 1 : 0;
				assert.ok(resolved >= (mode === "rows" ? nth : 1), `${resolved} writes resolved before the worker ended`);
				assert.equal(count, (resolved + inFlight) * perWrite);
			} finally {
				await db.close();
			}
		});
	}

	// A full disk under the temporary directory, as a file size limit (1 MiB)
	// on a child process: the native engine's local file cannot grow past it.
	// (The WASM engine keeps its pages in memory.) Once the child is full, the
	// limit is lifted (prlimit, from util-linux), as when space is freed.
	test("a full local disk fails writes with SQLITE_FULL and undoes them; reads go on, the KV stays whole, writes resume with space", {
		skip: process.platform !== "linux" || BACKEND === "wasm",
	}, async () => {
		const tmp = fs.mkdtempSync(path.join(privateTmp, "full-"));
		const { status, report, stderr } = await runUnderFileLimit(path.join(here, "helpers", "full-disk.mjs"), {
			limit: 1024,
			env: { TMPDIR: tmp, RECOVER: PRLIMIT ? "1" : "" },
			onLine(line, control) {
				if (line !== "FULL") return;
				control.setLimit("unlimited");
				control.child.stdin.end("go\n");
			},
		});
		assert.equal(status, 0, stderr);
		if (report.backend !== "native") return;
		assert.equal(report.error?.code, "SQLITE_FULL", JSON.stringify(report.error));
		assert.equal(report.error.name, "SqliteError");
		const full = report.resolvedWhenFull;
		assert.ok(full > 100 && full < 1000, `${full} inserts resolved before the disk was full`);
		// The failed insert has no effects; reads still work while the disk is full.
		assert.equal(report.countWhileFull, full);
		assert.equal(report.integrityWhileFull, "ok");
		// A write that needs the disk fails the same way, and leaves nothing behind.
		assert.equal(report.secondWrite?.code, "SQLITE_FULL", JSON.stringify(report.secondWrite));
		assert.equal(report.inTransaction, false);
		assert.equal(report.countAfterSecondWrite, full);
		// While it is full, a write that needs no new page fails too (pages held
		// back in memory must reach the file first), with no effects.
		assert.equal(report.script?.code, "SQLITE_FULL", JSON.stringify(report.script));
		assert.equal(report.firstRowAfterScript, 3000);
		assert.equal(report.countAfterScript, full);
		if (PRLIMIT) {
			// With space again, the next write goes through.
			assert.equal(report.afterSpace, "resolved", JSON.stringify(report.afterSpace));
			assert.equal(report.countAfterSpace, full + 1);
		}
		// The KV holds exactly the inserts that resolved.
		assert.equal(report.resolved, PRLIMIT ? full + 1 : full);
		const kv = createMemoryKv();
		const entries = report.entries.map(([key, value]) => [Buffer.from(key, "hex"), Buffer.from(value, "hex")]);
		for (let i = 0; i < entries.length; i += 100) await kv.putBatch(entries.slice(i, i + 100));
		const db = await open(kv);
		assert.deepEqual(await rows(db, "SELECT count(*) FROM t"), [[report.resolved]]);
		assert.deepEqual(await rows(db, "SELECT length(v) FROM t WHERE id = 1"), [[3000]]);
		assert.deepEqual(await rows(db, "PRAGMA integrity_check"), [["ok"]]);
		await db.close();
	});

	test("a failed write whose local undoing fails reports the KV's error; no call sees the write until the file is put back", {
		skip: process.platform !== "linux" || BACKEND === "wasm",
	}, async (t) => {
		if (!PRLIMIT) return t.skip("prlimit (util-linux) is not installed");
		const tmp = fs.mkdtempSync(path.join(privateTmp, "restore-"));
		const { status, report, stderr } = await runUnderFileLimit(path.join(here, "helpers", "restore-fails.mjs"), {
			env: { TMPDIR: tmp },
			onLine(line, control) {
				if (line === "LOWER") {
					control.setLimit("4096:unlimited");
					control.child.stdin.write("go\n");
				} else if (line === "LIFT") {
					control.setLimit("unlimited:unlimited");
					control.child.stdin.end("go\n");
				}
			},
		});
		assert.equal(status, 0, stderr);
		assert.equal(report.pageSize, 1024);
		assert.equal(report.size % 4096 !== 0, true, `the file (${report.size} bytes) ends within a chunk`);
		// The call fails with the KV's error, not the local one.
		assert.equal(report.failedWrite?.code, "SQLITE_IOERR_WRITE", JSON.stringify(report.failedWrite));
		assert.equal(report.failedWrite.cause, "KV unreachable");
		// While the file cannot be put back, calls fail with the local error
		// rather than see the failed write.
		assert.equal(report.readWhileLimited?.code, "SQLITE_FULL", JSON.stringify(report.readWhileLimited));
		// Then the database is at the state the KV holds, and goes on.
		assert.equal(report.readAfter, 10);
		assert.equal(report.countAfterWrite, 11);
		const kv = createMemoryKv();
		await kv.putBatch(report.entries.map(([key, value]) => [Buffer.from(key, "hex"), Buffer.from(value, "hex")]));
		const db = await open(kv);
		assert.deepEqual(await rows(db, "SELECT count(*) FROM t"), [[11]]);
		assert.deepEqual(await rows(db, "PRAGMA integrity_check"), [["ok"]]);
		await db.close();
	});
});
