// The LMDB KV store (@rivetkit/sqlite-vfs/kv/lmdb): the actor KV contract,
// data surviving the process, and processes SIGKILLed in the middle of a
// commit. Skipped, with the reason, where the lmdb package does not load.

import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { createRequire } from "node:module";

import { open, SqliteError } from "../../index.mjs";
import { kvContract } from "../helpers/kv-contract.mjs";
import { lmdbUnavailable, tempDir } from "../helpers/stores.mjs";
import { dryRun, state, BIG_STEP, SMALL_STEP } from "../helpers/crash-workload.mjs";

const here = path.dirname(fileURLToPath(import.meta.url));
const require = createRequire(import.meta.url);
const SKIP = lmdbUnavailable();
if (SKIP) console.log(`LMDB KV tests skipped: ${SKIP}`);

// The crash workload's states and KV writes per step, from a run in memory.
const { states, writes } = SKIP ? { states: [], writes: [] } : await dryRun();

const runtime = process.execPath;
const CHILD = path.join(here, "..", "helpers", "lmdb-child.mjs");

/**
 * Runs the crash workload in a child process on `folder`/`actor`, SIGKILLs it
 * when it says `killOn` (a line of its output), and returns its output lines.
 */
function runChild(folder, actor, killOn, env = {}) {
	return new Promise((resolve, reject) => {
		const child = spawn(runtime, [CHILD, folder, actor], {
			// The child's helpers use no test store of their own.
			env: { ...process.env, SQLITE_VFS_TEST_KV: "memory", ...env },
			stdio: ["ignore", "pipe", "inherit"],
		});
		const lines = [];
		let buffered = "";
		const timer = setTimeout(() => {
			child.kill("SIGKILL");
			reject(new Error(`the child did not say "${killOn}" within 60 s: ${lines.join(", ")}`));
		}, 60_000);
		child.stdout.setEncoding("utf8").on("data", (chunk) => {
			buffered += chunk;
			const parts = buffered.split("\n");
			buffered = parts.pop();
			for (const line of parts) {
				lines.push(line);
				if (line === killOn || line === "done") child.kill("SIGKILL");
			}
		});
		child.once("exit", (code, signal) => {
			clearTimeout(timer);
			if (signal !== "SIGKILL") reject(new Error(`the child exited with ${code ?? signal}: ${lines.join(", ")}`));
			else resolve(lines);
		});
	});
}

/** Opens `actor`'s database from `folder` in this process and returns its state. */
async function reopen(folder, actor) {
	const { createLmdbKv } = require("@rivetkit/sqlite-vfs/kv/lmdb");
	const kv = createLmdbKv(folder, { actor });
	try {
		const db = await open(actor, kv);
		try {
			return await state(db);
		} finally {
			await db.close();
		}
	} finally {
		await kv.close();
	}
}

describe("LMDB KV store", { skip: SKIP ?? false }, () => {
	const folder = SKIP ? "" : tempDir("sqlite-vfs-lmdb-test-");
	const { createLmdbKv, LMDB_MAX_KEY_SIZE } = SKIP ? {} : require("@rivetkit/sqlite-vfs/kv/lmdb");

	describe("the actor KV contract", () => {
		kvContract({
			make: (actor, options) => createLmdbKv(folder, { ...options, actor }),
			release: (kv) => kv.close(),
		});
	});

	test("KVs on one folder share its environment; a closed KV rejects calls", async () => {
		const a = createLmdbKv(folder, { actor: "shared" });
		const b = createLmdbKv(path.join(folder, "."), { actor: "shared" });
		await a.putBatch([[Uint8Array.of(1), Uint8Array.of(7)]]);
		assert.deepEqual([...(await b.get(Uint8Array.of(1)))], [7]);
		await a.close();
		await a.close();
		await assert.rejects(a.get(Uint8Array.of(1)), /closed/);
		assert.deepEqual([...(await b.get(Uint8Array.of(1)))], [7], "the other KV still works");
		await b.close();
	});

	test("keys longer than LMDB holds are rejected with a clear error, before anything is written", async () => {
		const kv = createLmdbKv(folder, { actor: "long-keys" });
		await kv.clear();
		const long = new Uint8Array(LMDB_MAX_KEY_SIZE);
		await assert.rejects(
			kv.putBatch([
				[Uint8Array.of(1), Uint8Array.of(1)],
				[long, Uint8Array.of(1)],
			]),
			/too long for LMDB/,
		);
		assert.equal(await kv.get(Uint8Array.of(1)), null);
		await kv.close();
		assert.throws(() => createLmdbKv(folder, { actor: 5 }), TypeError);
		assert.throws(() => createLmdbKv("", {}), TypeError);
		// lmdb itself takes these and crashes the process on them.
		assert.throws(() => createLmdbKv(folder, { mapSize: "big" }), TypeError);
		for (const mapSize of [-1, 0, 1.5, 1e30, Number.NaN, 2 ** 44 + 1]) {
			assert.throws(() => createLmdbKv(folder, { mapSize }), RangeError, String(mapSize));
		}
		const sized = createLmdbKv(folder, { actor: "sized", mapSize: 1 << 20 });
		await sized.put(Uint8Array.of(1), Uint8Array.of(2));
		assert.deepEqual(await sized.get(Uint8Array.of(1)), Uint8Array.of(2));
		await sized.close();
	});

	test("a KV takes its actor over at its first call: the previous one's writes apply nothing", async () => {
		const first = createLmdbKv(folder, { actor: "moved" });
		const db = await open("moved", first);
		await db.exec("CREATE TABLE t(v); INSERT INTO t VALUES ('first')");
		// The actor opened again (another host, or the same process by mistake).
		const second = createLmdbKv(folder, { actor: "moved" });
		const again = await open("moved", second);
		const refused = await db.run("INSERT INTO t VALUES ('stale')").then(
			() => null,
			(error) => error,
		);
		assert.ok(refused instanceof SqliteError, String(refused));
		assert.equal(refused.code, "SQLITE_IOERR_WRITE");
		assert.equal(refused.cause?.code, "ERR_SQLITE_KV_FENCED");
		await assert.rejects(first.putBatch([[Uint8Array.of(1), Uint8Array.of(1)]]), { code: "ERR_SQLITE_KV_FENCED" });
		await assert.rejects(first.deleteBatch([Uint8Array.of(1)]), { code: "ERR_SQLITE_KV_FENCED" });
		await again.run("INSERT INTO t VALUES ('second')");
		assert.deepEqual((await again.query("SELECT v FROM t ORDER BY rowid")).rows, [["first"], ["second"]]);
		assert.deepEqual((await again.query("PRAGMA integrity_check")).rows, [["ok"]]);
		await again.close();
		await db.close().catch(() => {});
		// Other actors' keys are untouched, and entries() lists this actor's own.
		assert.ok(
			(await second.entries()).every(([key]) => key[0] === 8),
			"only the database's keys",
		);
		await first.close();
		await second.close();
	});

	test("any folder name works, and nothing is made outside the folder", async () => {
		// lmdb takes a path with an extension for a data file's and puts a
		// lock file beside it.
		const parent = tempDir("sqlite-vfs-lmdb-dotted-");
		const dotted = path.join(parent, "store.lmdb");
		const kv = createLmdbKv(dotted, { actor: "a" });
		await kv.put(Uint8Array.of(1), Uint8Array.of(2));
		await kv.close();
		assert.deepEqual(fs.readdirSync(parent), ["store.lmdb"]);
		const again = createLmdbKv(dotted, { actor: "a" });
		assert.deepEqual(await again.get(Uint8Array.of(1)), Uint8Array.of(2));
		await again.close();
		// A file is no folder.
		const file = path.join(parent, "file");
		fs.writeFileSync(file, "x");
		assert.throws(() => createLmdbKv(file), { name: "TypeError", message: /not a directory/ });
		fs.rmSync(parent, { recursive: true, force: true });
	});

	test("a data file that is not LMDB's is refused, not opened (which crashes the process)", async () => {
		// Our check reads LMDB's header where the lmdb package puts it: a
		// new environment passes it.
		const parent = tempDir("sqlite-vfs-lmdb-garbage-");
		const fresh = createLmdbKv(path.join(parent, "fresh"), { actor: "a" });
		await fresh.put(Uint8Array.of(1), Uint8Array.of(2));
		await fresh.close();
		const reopened = createLmdbKv(path.join(parent, "fresh"), { actor: "a" });
		assert.deepEqual(await reopened.get(Uint8Array.of(1)), Uint8Array.of(2));
		await reopened.close();
		const cases = [
			["garbage", Buffer.from(Array.from({ length: 16384 }, (_, i) => (i * 7919) & 0xff))],
			["zeros", Buffer.alloc(16384)],
			["truncated", fs.readFileSync(path.join(parent, "fresh", "data.mdb")).subarray(0, 4096)],
		];
		for (const [name, bytes] of cases) {
			const folder = path.join(parent, name);
			fs.mkdirSync(folder);
			fs.writeFileSync(path.join(folder, "data.mdb"), bytes);
			assert.throws(() => createLmdbKv(folder), { code: "ERR_SQLITE_KV_CORRUPT", message: /not an LMDB data file/ }, name);
		}
		fs.rmSync(parent, { recursive: true, force: true });
	});

	test("actor ids that UTF-8 cannot tell apart are refused", async () => {
		// "\uD800", "\uDBFF" and "\uFFFD" all become EF BF BD.
		for (const actor of ["tenant\uD800", "tenant\uDBFF", "\uDC00x"]) {
			assert.throws(() => createLmdbKv(folder, { actor }), { name: "TypeError", message: /lone surrogate/ }, JSON.stringify(actor));
		}
		const kv = createLmdbKv(folder, { actor: "tenant\uFFFD\u{1F600}" });
		await kv.close();
		assert.throws(() => createLmdbKv(folder, { limits: null }), { name: "TypeError", message: /limits must be an object/ });
	});

	describe("crashes", () => {
		test("a write is durable once its promise resolved: the process killed right after", async () => {
			const actor = "resolved";
			const lines = await runChild(folder, actor, "done");
			assert.deepEqual(lines, ["step 1", "step 2", "step 3", "done"]);
			assert.equal(await reopen(folder, actor), states.at(-1));
		});

		// Every KV write of the journaled commit: the journal, the main file's
		// batches, and the commit point (deleting the journal).
		test("the journaled commit makes several KV writes", () => assert.ok(writes[BIG_STEP] >= 4, String(writes[BIG_STEP])));
		for (let pauseAt = 1; pauseAt <= writes[BIG_STEP]; pauseAt++) {
			const last = pauseAt === writes[BIG_STEP];
			test(`killed during KV write ${pauseAt} of ${writes[BIG_STEP]} of the journaled commit: reopens before or after it`, async (t) => {
				const actor = `big-during-${pauseAt}`;
				const lines = await runChild(folder, actor, "paused", { PAUSE_STEP: String(BIG_STEP), PAUSE_AT: String(pauseAt) });
				assert.ok(lines.includes("paused"), lines.join(", "));
				const got = await reopen(folder, actor);
				assert.ok([states[BIG_STEP], states[BIG_STEP + 1]].includes(got), `killed at write ${pauseAt}`);
				t.diagnostic?.(`reopened ${got === states[BIG_STEP] ? "before" : "after"} the commit`);
			});
			test(`killed once KV write ${pauseAt} of ${writes[BIG_STEP]} of the journaled commit is done: reopens ${last ? "after" : "before"} it`, async () => {
				const actor = `big-after-${pauseAt}`;
				const lines = await runChild(folder, actor, "paused", {
					PAUSE_STEP: String(BIG_STEP),
					PAUSE_AT: String(pauseAt),
					PAUSE_WHEN: "after",
				});
				assert.ok(lines.includes("paused"), lines.join(", "));
				// The last write deletes the journal: the commit point.
				assert.equal(await reopen(folder, actor), states[last ? BIG_STEP + 1 : BIG_STEP]);
			});
		}

		test("killed during the one KV write of a small commit: reopens before or after it", async () => {
			const actor = "small";
			const lines = await runChild(folder, actor, "paused", { PAUSE_STEP: String(SMALL_STEP), PAUSE_AT: "1" });
			assert.ok(lines.includes("paused"));
			assert.ok([states[SMALL_STEP], states[SMALL_STEP + 1]].includes(await reopen(folder, actor)));
		});

		test("the folder is reused after the kills: a new write and reopen", async () => {
			const kv = createLmdbKv(folder, { actor: "small" });
			const db = await open("small", kv);
			await db.run("INSERT INTO t(v) VALUES ('after the crash')");
			await db.close();
			await kv.close();
			assert.match(await reopen(folder, "small"), /after the crash/);
			assert.ok(fs.existsSync(path.join(folder, "data.mdb")));
		});
	});
});
