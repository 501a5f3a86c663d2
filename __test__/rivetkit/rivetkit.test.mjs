// rivetkit 2.2.1 end to end: real actors (rivetkit/db and rivetkit/db/drizzle)
// on rivetkit's file-system driver, served on 127.0.0.1 by a child process
// (server.mjs) in which rivetkit's import of "@rivetkit/sqlite-vfs" is
// redirected to this package (scripts/rivetkit-sqlite-vfs-hook.mjs). Each test
// checks which module rivetkit really got. Servers are SIGKILLed and restarted
// on the same storage; the published 2.2.1 reopens what this package wrote,
// and the reverse.
//
// Runs under Node >= 22.15 (rivetkit 2.2.1 needs Node >= 22 and node:sqlite);
// skipped, with the reason, under older Node and under Bun.

import { test, describe, after } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { createRequire } from "node:module";
import { fileURLToPath, pathToFileURL } from "node:url";

import {
	skipReason,
	startServer,
	killAll,
	tempDir,
	privateTmp,
	removeTempDir,
	eventually,
	actorKvKeys,
	actorKvWalStamp,
} from "./harness.mjs";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..", "..");
const THIS_PACKAGE_URL = pathToFileURL(path.join(root, "index.mjs")).href;
const V221_URL = pathToFileURL(path.join(root, "node_modules", "sqlite-vfs-2.2.1", "dist", "tsup", "index.js")).href;
/** The engine this package runs under (the suite runs once per engine). */
const BACKEND = process.env.RIVETKIT_SQLITE_BACKEND?.trim().toLowerCase() || "native";

const SKIP = await skipReason();
if (SKIP) console.log(`rivetkit end-to-end tests skipped: ${SKIP}`);

const TEST = { timeout: 60_000 };
const dirs = [];
function storage() {
	const dir = tempDir();
	dirs.push(dir);
	return dir;
}
after(async () => {
	await killAll();
	for (const dir of dirs) removeTempDir(dir);
});

/**
 * Asserts, from a server's probe, that rivetkit's every import of
 * @rivetkit/sqlite-vfs resolved to `url`, that the pool of the module loaded
 * from there handed out the handles of `actorIds`, and that each database
 * rivetkit opened is that package's.
 */
function assertLoaded(probe, { url, vfs, actorIds }) {
	assert.equal(probe.requested, vfs);
	assert.ok(probe.resolutions.length >= 1, "rivetkit never resolved @rivetkit/sqlite-vfs");
	for (const r of probe.resolutions) {
		assert.match(r.from, /\/node_modules\/rivetkit\/dist\//, "the import came from rivetkit's build");
		assert.equal(r.url, url, "rivetkit's @rivetkit/sqlite-vfs");
	}
	for (const id of actorIds) assert.ok(probe.acquired.includes(id), `actor ${id} got its handle from the expected SqliteVfsPool`);
	if (vfs === "this") {
		assert.ok(
			probe.opened.length > 0 && probe.opened.every((o) => o.class === "Database" && o.backend === BACKEND),
			JSON.stringify(probe.opened),
		);
	} else {
		// 2.2.1's pool hands out TrackedDatabase wrappers, with no `backend`.
		assert.ok(
			probe.opened.length > 0 && probe.opened.every((o) => o.class === "TrackedDatabase" && o.backend === null),
			JSON.stringify(probe.opened),
		);
	}
}

describe("rivetkit 2.2.1 end to end", { skip: SKIP ?? false }, () => {
	test("rivetkit imports this package for @rivetkit/sqlite-vfs (and would get 2.2.1 without the hook)", TEST, async (t) => {
		// Without the hook, rivetkit resolves its own dependency: the published 2.2.1.
		const fromRivetkit = createRequire(path.join(root, "node_modules", "rivetkit", "package.json"));
		const plainEntry = fromRivetkit.resolve("@rivetkit/sqlite-vfs");
		const plainVersion = JSON.parse(fs.readFileSync(path.join(plainEntry.split("/dist/")[0], "package.json"), "utf8")).version;
		t.diagnostic(`without the hook rivetkit resolves @rivetkit/sqlite-vfs to ${path.relative(root, plainEntry)} (${plainVersion})`);
		assert.equal(plainVersion, "2.2.1");

		// rivetkit's CommonJS build (its require() path) does not load in 2.2.1;
		// recorded, not asserted: rivetkit is used as ESM, through import().
		const cjs = spawnSync(process.execPath, ["-e", "require('rivetkit/driver-helpers')"], { cwd: root, encoding: "utf8", timeout: 30_000 });
		const cjsError = cjs.stderr.split("\n").find((l) => /Error:/.test(l));
		t.diagnostic(
			cjs.status === 0 ? "rivetkit/driver-helpers loads with require()" : `rivetkit 2.2.1's CommonJS build does not load: ${cjsError}`,
		);

		const server = await startServer({ storage: storage(), vfs: "this" });
		const notebook = server.client.notebook.getOrCreate(["which-module"]);
		const stats = await notebook.stats();
		const probe = await notebook.probe();
		t.diagnostic(
			`server ${server.node}: rivetkit loaded ${probe.resolutions.map((r) => r.url).join(", ")}; databases: ${JSON.stringify(probe.opened)}; sqlite ${stats.sqliteVersion}`,
		);
		assertLoaded(probe, { url: THIS_PACKAGE_URL, vfs: "this", actorIds: [await notebook.actorId()] });
		assert.equal(stats.integrity, "ok");
		await server.kill();
	});

	test("raw SQL actor (rivetkit/db): migrations, parameters, errors, transactions, bulk, VACUUM, sleep and wake", TEST, async () => {
		const server = await startServer({ storage: storage(), vfs: "this" });
		const nb = server.client.notebook.getOrCreate(["raw"]);

		// Migrations ran once, in onMigrate.
		let stats = await nb.stats();
		assert.deepEqual(stats.migrations, [{ version: 1 }, { version: 2 }]);
		assert.equal(stats.userVersion, 2);
		assert.equal(stats.boots, 1);

		// Parameters of every kind rivetkit passes: positional, named, BLOB, REAL, NULL.
		const blob = new Uint8Array([0, 1, 2, 253, 254, 255]);
		const { id } = await nb.add("apple", 10, 1.25, blob);
		assert.equal(id, 1);
		assert.equal(await nb.addPlain("pear", 0), true);
		assert.equal((await nb.add("fig", 4)).id, 3);
		const apple = await nb.byName("apple"); // { name } binds :name
		assert.deepEqual({ ...apple, data: [...apple.data] }, { id: 1, name: "apple", qty: 10, price: 1.25, data: [...blob] });
		assert.deepEqual(await nb.names(), ["apple", "pear", "fig"]);

		// A failing statement rejects with SQLite's message; the database keeps working.
		const dup = await nb.tryAdd("apple", 1);
		assert.equal(dup.ok, false);
		assert.match(dup.error.message, /UNIQUE constraint failed: items\.name/);
		assert.equal(dup.error.code, "SQLITE_CONSTRAINT_UNIQUE");
		const syntax = await nb.sql("SELEC 1");
		assert.equal(syntax.ok, false);
		assert.match(syntax.error.message, /near "SELEC": syntax error/);
		const missing = await nb.sql("SELECT ? AS a, ? AS b", 1); // 2.2.1 binds NULL; this package rejects
		assert.equal(missing.ok, false);
		assert.match(missing.error.message, /Missing value for parameter \?2/);
		assert.equal(await nb.addPlain("plum", 2), true);
		assert.deepEqual(await nb.names(), ["apple", "pear", "fig", "plum"]);

		// Transactions over several execute() calls: commit, explicit rollback.
		assert.deepEqual(await nb.transfer("apple", "pear", 3), { committed: true });
		assert.deepEqual(await nb.transfer("apple", "pear", 100), { committed: false });
		assert.deepEqual(await nb.transfer("apple", "pear", 1, true), { committed: false });
		const qty = Object.fromEntries((await nb.items()).map((r) => [r.name, r.qty]));
		assert.deepEqual(qty, { apple: 7, pear: 3, fig: 4, plum: 2 });
		// A statement failing inside a transaction aborts only itself.
		const partial = await nb.partialTransaction("kiwi", "fig");
		assert.match(partial.error.message, /UNIQUE constraint failed/);
		assert.deepEqual(await nb.names(), ["apple", "pear", "fig", "plum", "kiwi"]);

		// Bulk transactions of several hundred KB: 400 bound inserts, and one script.
		assert.deepEqual(await nb.bulk("bound", 400, 1500), { n: 400, bytes: 600_000 });
		assert.deepEqual(await nb.bulkScript("script", 300, 2000), { n: 300, bytes: 600_000 });
		stats = await nb.stats();
		assert.equal(stats.bulkRows, 700);
		assert.equal(stats.integrity, "ok");

		// VACUUM after deleting most of it shrinks the file.
		await nb.dropBulk("bound");
		await nb.dropBulk("script");
		const { before, after: pages } = await nb.vacuum();
		assert.ok(pages < before / 4, `VACUUM: ${before} -> ${pages} pages`);
		assert.equal((await nb.stats()).integrity, "ok");

		// Sleep, then wake on the next call: the database is reopened from the
		// KV, onMigrate runs again but the migrations do not.
		const actorId = await nb.actorId();
		assert.equal(await nb.goToSleep(), true);
		stats = await eventually(
			async () => {
				const s = await nb.stats();
				return s.boots === 2 && s;
			},
			{ what: "the actor to sleep and wake" },
		);
		assert.deepEqual(stats.migrations, [{ version: 1 }, { version: 2 }]);
		assert.equal(stats.integrity, "ok");
		assert.deepEqual(await nb.names(), ["apple", "pear", "fig", "plum", "kiwi"]);
		const probe = await nb.probe();
		assert.equal(probe.acquired.filter((x) => x === actorId).length, 2, "one acquire per wake");
		assertLoaded(probe, { url: THIS_PACKAGE_URL, vfs: "this", actorIds: [actorId] });
		await server.kill();
	});

	test("drizzle actor (rivetkit/db/drizzle): migrations, CRUD, transaction commit and rollback, sleep and wake", TEST, async () => {
		const server = await startServer({ storage: storage(), vfs: "this" });
		const pl = server.client.planner.getOrCreate(["drizzle"]);

		assert.deepEqual(
			(await pl.migrationsApplied()).map((m) => m.hash),
			["0000_init", "0001_priority"],
		);
		const a = await pl.add("write tests", 2);
		const b = await pl.add("ship", 1);
		assert.deepEqual(a, { id: 1, title: "write tests", done: false, priority: 2 });
		assert.deepEqual(await pl.complete(a.id), { ...a, done: true });
		assert.deepEqual(await pl.get(b.id), b);
		assert.equal(await pl.remove(b.id), true);
		assert.equal(await pl.get(b.id), null);

		const dup = await pl.tryAdd("write tests");
		assert.equal(dup.ok, false);
		assert.match(`${dup.error.message} ${dup.cause?.message}`, /UNIQUE constraint failed: tasks\.title/);

		const ids = await pl.addMany(["t1", "t2", "t3"]);
		assert.equal(ids.length, 3);
		const failed = await pl.addManyThenFail(["r1", "r2"], "throw");
		assert.deepEqual(failed, { rolledBack: true, error: { name: "Error", code: null, message: "boom" } });
		const rolled = await pl.addManyThenFail(["r3"], "rollback");
		assert.equal(rolled.rolledBack, true);
		const titles = (await pl.list()).map((r) => r.title);
		assert.deepEqual(titles, ["write tests", "t1", "t2", "t3"]);

		assert.equal(await pl.goToSleep(), true);
		await eventually(async () => (await pl.probe()).acquired.length === 2, { what: "the actor to sleep and wake" });
		assert.deepEqual(
			(await pl.list()).map((r) => r.title),
			titles,
		);
		assert.equal((await pl.migrationsApplied()).length, 2);
		assert.equal(await pl.integrity(), "ok");
		assertLoaded(await pl.probe(), { url: THIS_PACKAGE_URL, vfs: "this", actorIds: [await pl.actorId()] });
		await server.kill();
	});

	test("SIGKILL: a fresh process on the same storage has every acknowledged write, and no migration re-runs", TEST, async (t) => {
		const dir = storage();
		let server = await startServer({ storage: dir, vfs: "this" });
		let nb = server.client.notebook.getOrCreate(["durable"]);
		let pl = server.client.planner.getOrCreate(["durable"]);
		const acked = [];
		for (let i = 0; i < 20; i++) {
			await nb.addPlain(`seq-${i}`, i);
			acked.push(`seq-${i}`);
		}
		const burst = await Promise.allSettled(Array.from({ length: 30 }, (_, i) => nb.add(`burst-${i}`, i)));
		burst.forEach((r, i) => r.status === "fulfilled" && acked.push(`burst-${i}`));
		assert.equal(acked.length, 50);
		assert.deepEqual(await nb.bulkScript("acked", 250, 2000), { n: 250, bytes: 500_000 });
		const tasksAcked = [];
		for (const title of ["a", "b", "c"]) tasksAcked.push((await pl.add(title)).title);
		assert.equal((await pl.addMany(["d", "e"])).length, 2);
		tasksAcked.push("d", "e");

		// Writes in flight when the process dies: small inserts, and between
		// them a ~600 KB commit, which needs several KV batches and so goes
		// through the journal protocol. Once the inserts queued before it are
		// acknowledged, the test watches the actor's KV file and kills the
		// server at its second write: usually with the commit's journal
		// written and its pages not yet all (a hot journal in the KV).
		const actorId = await nb.actorId();
		const late = [];
		const inflight = [];
		const addLate = (i) =>
			inflight.push(
				nb.addPlain(`late-${i}`, i).then(
					() => late.push(`late-${i}`),
					() => null,
				),
			);
		for (let i = 0; i < 10; i++) addLate(i);
		let bulkDone = false;
		inflight.push(
			nb.bulkScript("inflight", 300, 2000).then(
				() => (bulkDone = true),
				() => null,
			),
		);
		for (let i = 10; i < 40; i++) addLate(i);
		await eventually(() => late.length >= 10, { every: 1, what: "the inserts queued before the large commit" });
		let stamp = actorKvWalStamp(dir, actorId);
		let writes = 0;
		await eventually(
			() => {
				const now = actorKvWalStamp(dir, actorId);
				if (now !== stamp) writes++;
				stamp = now;
				return writes >= 2 || bulkDone || late.length > 10;
			},
			{ every: 0, ms: 10_000, what: "the large commit to start writing" },
		);
		server.child.kill("SIGKILL");
		const exit = await server.exited;
		assert.equal(exit.signal, "SIGKILL");
		// The calls cut off by the kill fail (bounded: the client does not hang on them).
		await Promise.race([Promise.allSettled(inflight), new Promise((r) => setTimeout(r, 10_000))]);
		acked.push(...late);
		await server.kill();
		const JOURNAL_META = "08010001";
		const keysAtKill = await actorKvKeys(dir, actorId);
		const hotJournal = keysAtKill.includes(JOURNAL_META);
		t.diagnostic(
			`killed with ${late.length} of 40 late inserts acknowledged, the large commit ${bulkDone ? "acknowledged" : "unacknowledged"}, ` +
				`${hotJournal ? "a hot journal" : "no journal"} in the KV (${keysAtKill.filter((k) => k.startsWith("08010101")).length} journal chunks)`,
		);

		server = await startServer({ storage: dir, vfs: "this" });
		nb = server.client.notebook.getOrCreate(["durable"]);
		pl = server.client.planner.getOrCreate(["durable"]);
		const names = new Set(await nb.names());
		const lost = acked.filter((n) => !names.has(n));
		assert.deepEqual(lost, [], "acknowledged rows lost");
		const stats = await nb.stats();
		assert.equal(stats.integrity, "ok");
		assert.deepEqual(stats.migrations, [{ version: 1 }, { version: 2 }], "migrations ran once");
		assert.equal(stats.boots, 2);
		const inflightRows = (await nb.sql("SELECT count(*) AS n FROM bulk WHERE batch = 'inflight'")).rows[0].n;
		assert.ok(inflightRows === 0 || inflightRows === 300, `the in-flight commit is all or nothing: ${inflightRows} rows`);
		assert.equal((await nb.sql("SELECT count(*) AS n FROM bulk WHERE batch = 'acked'")).rows[0].n, 250);
		if (bulkDone) assert.equal(inflightRows, 300);
		t.diagnostic(`in-flight 600 KB commit after the restart: ${inflightRows ? "committed" : "absent (rolled back)"}`);
		// Reopening rolled back any hot journal and removed it from the KV.
		// (Journal chunks without their metadata, from a kill while a journal
		// was being written or removed, are invisible; they are only counted.)
		const keysAfter = await actorKvKeys(dir, actorId);
		assert.ok(!keysAfter.includes(JOURNAL_META), "a hot journal is left in the KV after reopening");
		if (hotJournal) assert.ok(!keysAfter.some((k) => k.startsWith("08010101")), "the rolled-back journal's chunks are left in the KV");
		t.diagnostic(`journal chunks in the KV after the restart: ${keysAfter.filter((k) => k.startsWith("08010101")).length}`);
		const titles = (await pl.list()).map((r) => r.title);
		for (const title of tasksAcked) assert.ok(titles.includes(title), `task ${title}`);
		assert.equal((await pl.migrationsApplied()).length, 2, "drizzle migrations ran once");
		assert.equal(await pl.integrity(), "ok");
		assertLoaded(await nb.probe(), { url: THIS_PACKAGE_URL, vfs: "this", actorIds: [actorId, await pl.actorId()] });
		await server.kill();
	});

	/** Writes with `vfs`, SIGKILLs, reopens with `other`, checks and writes, then reopens with `vfs` again. */
	async function crossVersion(t, first, second) {
		const urlOf = { this: THIS_PACKAGE_URL, "2.2.1": V221_URL };
		const dir = storage();
		const expectedNames = [];
		const expectedTasks = [];

		let server = await startServer({ storage: dir, vfs: first });
		let nb = server.client.notebook.getOrCreate(["cross"]);
		let pl = server.client.planner.getOrCreate(["cross"]);
		for (let i = 0; i < 10; i++) {
			await nb.add(`${first}-${i}`, i, i / 2, new Uint8Array([i, 255 - i]));
			expectedNames.push(`${first}-${i}`);
		}
		assert.deepEqual(await nb.bulkScript(first, 300, 2000), { n: 300, bytes: 600_000 }); // a journaled commit
		await nb.bulk(`${first}-deleted`, 200, 1000);
		await nb.dropBulk(`${first}-deleted`);
		await nb.vacuum();
		for (const title of [`${first} task`, `${first} other`]) expectedTasks.push((await pl.add(title, 1)).title);
		await pl.complete(1);
		assertLoaded(await nb.probe(), { url: urlOf[first], vfs: first, actorIds: [await nb.actorId(), await pl.actorId()] });
		await server.kill();

		for (const [vfs, writes] of [
			[second, true],
			[first, false],
		]) {
			server = await startServer({ storage: dir, vfs });
			nb = server.client.notebook.getOrCreate(["cross"]);
			pl = server.client.planner.getOrCreate(["cross"]);
			const stats = await nb.stats();
			t.diagnostic(`${vfs}: sqlite ${stats.sqliteVersion}, ${stats.items} items, ${stats.bulkRows} bulk rows`);
			assert.equal(stats.integrity, "ok", `${vfs} reopens with integrity ok`);
			assert.deepEqual(stats.migrations, [{ version: 1 }, { version: 2 }], `${vfs}: migrations not re-run`);
			assert.deepEqual(await nb.names(), expectedNames);
			const [row] = (await nb.sql(`SELECT name, qty, price, data FROM items WHERE name = '${first}-7'`)).rows;
			assert.deepEqual({ ...row, data: [...row.data] }, { name: `${first}-7`, qty: 7, price: 3.5, data: [7, 248] });
			assert.equal(stats.bulkRows, 300);
			const tasks = await pl.list();
			assert.deepEqual(
				tasks.map((r) => r.title),
				expectedTasks,
			);
			assert.equal(tasks[0].done, true);
			assert.equal((await pl.migrationsApplied()).length, 2, `${vfs}: drizzle migrations not re-run`);
			assert.equal(await pl.integrity(), "ok");
			if (writes) {
				for (let i = 0; i < 5; i++) {
					await nb.addPlain(`${vfs}-${i}`, i);
					expectedNames.push(`${vfs}-${i}`);
				}
				expectedTasks.push((await pl.add(`${vfs} task`)).title);
				await nb.bulkScript(vfs, 100, 3000);
				await nb.dropBulk(vfs);
			}
			assertLoaded(await nb.probe(), { url: urlOf[vfs], vfs, actorIds: [await nb.actorId(), await pl.actorId()] });
			await server.kill();
		}
	}

	test("actors written through this package restart on the published 2.2.1, and back", TEST, (t) => crossVersion(t, "this", "2.2.1"));
	test("actors written through the published 2.2.1 restart on this package, and back", TEST, (t) => crossVersion(t, "2.2.1", "this"));

	test("examples/rivetkit/app.mjs runs, on this package", TEST, () => {
		const dir = storage();
		const run = spawnSync(
			process.execPath,
			["--import", path.join(root, "scripts", "rivetkit-sqlite-vfs-hook.mjs"), path.join(root, "examples", "rivetkit", "app.mjs")],
			{
				cwd: root,
				encoding: "utf8",
				timeout: 45_000,
				env: { ...process.env, NODE_NO_WARNINGS: "1", RIVETKIT_SQLITE_VFS: "this", EXAMPLE_STORAGE: dir, TMPDIR: privateTmp(dir) },
			},
		);
		assert.equal(run.status, 0, `${run.stdout}\n${run.stderr}`);
		assert.match(run.stdout, /added note 1; the notebook holds:\n {2}1: hello from node /);
		assert.ok(run.stdout.includes(`rivetkit loaded @rivetkit/sqlite-vfs from ${THIS_PACKAGE_URL}\n`), run.stdout);
	});

	// rivetkit's bindings (toSqliteBindings in rivetkit/src/db/shared.ts)
	// accept an array of numbers as a value, and 2.2.1 binds it as a BLOB.
	test("a number array bound through rivetkit is a BLOB, as in 2.2.1", TEST, async () => {
		const sql = "SELECT typeof(?) AS type, hex(?) AS hex";
		const got = {};
		for (const vfs of ["2.2.1", "this"]) {
			const server = await startServer({ storage: storage(), vfs });
			got[vfs] = await server.client.notebook.getOrCreate(["bytes"]).sql(sql, [1, 2, 255], [1, 2, 255]);
			await server.kill();
		}
		assert.deepEqual(got["2.2.1"], { ok: true, rows: [{ type: "blob", hex: "0102FF" }] });
		assert.deepEqual(got.this, got["2.2.1"]);
	});
});
