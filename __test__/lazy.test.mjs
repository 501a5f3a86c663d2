// Lazy paging (issue 11): a database larger than the preload size opens with
// one getBatch, and the native engine reads each other chunk from the KV the
// first time SQLite needs it, on an engine thread. The WASM engine reads
// every database whole: the tests of what a user sees run on both engines,
// the KV-traffic tests on the native one only.

import { test, describe } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import path from "node:path";
import { fileURLToPath } from "node:url";

import { SqliteError } from "../index.mjs";
import { createTestKv, kvDump } from "./helpers/kv.mjs";
import { BACKEND, open, rows, snapshot } from "./helpers/db.mjs";
import { createGenerator, SETUP } from "./helpers/differential.mjs";
import { prng } from "./helpers/random.mjs";

const ROWS = 20_000;

/** Skips a test of what only the native engine does (`t.skip` does not stop a test). */
async function skipWasm(t, db, why) {
	await db.close();
	t.skip(why);
}

/** A KV holding a database of about 7.5 MB (1,800 chunks): table t, an index on k. */
async function bigKv() {
	const kv = createTestKv();
	const db = await open(kv);
	await db.exec(`CREATE TABLE t(id INTEGER PRIMARY KEY, k INTEGER, v TEXT);
		WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ${ROWS})
		INSERT INTO t(k, v) SELECT i % 1000, printf('%0300d', i) FROM n;
		CREATE INDEX t_k ON t(k);`);
	await db.close();
	kv.resetCounts();
	return kv;
}

/** A table t of 250 rows of 4,000 random bytes: a database of about 1 MiB, under the preload size. */
const MIB_TABLE = `CREATE TABLE t(id INTEGER PRIMARY KEY, v BLOB);
	WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 250)
	INSERT INTO t(v) SELECT randomblob(4000) FROM n;`;

const AV_ROWS = 3000;

/** A KV holding a database of about 12 MB (a row a page) with auto_vacuum = FULL: its commits move pages. */
async function autoVacuumKv() {
	const kv = createTestKv();
	const db = await open(kv);
	await db.exec(`PRAGMA auto_vacuum = FULL;
		CREATE TABLE t(id INTEGER PRIMARY KEY, v BLOB);
		WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ${AV_ROWS})
		INSERT INTO t(v) SELECT randomblob(4000) FROM n;`);
	assert.deepEqual(await rows(db, "PRAGMA auto_vacuum"), [[1]]);
	await db.close();
	kv.resetCounts();
	return kv;
}

/**
 * `kv` behind a store that answers one call at a time and returns the values
 * it reads as views of one read buffer, which its next call overwrites (a
 * pooled receive buffer).
 */
function reusingReads(kv) {
	const read = new Uint8Array(256 * 4096);
	let queue = Promise.resolve();
	const serial = (call) => {
		const result = queue.then(() => new Promise((resolve) => setImmediate(resolve))).then(call);
		queue = result.catch(() => {});
		return result;
	};
	const intoRead = (values) => {
		let at = 0;
		return values.map((value) => {
			if (value == null) return value;
			read.set(value, at);
			at += value.length;
			return read.subarray(at - value.length, at);
		});
	};
	return {
		get: (key) => serial(async () => intoRead([await kv.get(key)])[0]),
		getBatch: (keys) => serial(async () => intoRead(await kv.getBatch(keys))),
		put: (key, value) => serial(() => kv.put(key, value)),
		putBatch: (entries) => serial(() => kv.putBatch(entries)),
		deleteBatch: (keys) => serial(() => kv.deleteBatch(keys)),
	};
}

/** Counts `kv`'s getBatch calls in flight at once: returns a function giving the most so far. */
function countInFlight(kv) {
	const getBatch = kv.getBatch;
	let inFlight = 0;
	let most = 0;
	kv.getBatch = async (keys) => {
		most = Math.max(most, ++inFlight);
		try {
			return await getBatch.call(kv, keys);
		} finally {
			inFlight--;
		}
	};
	return () => most;
}

const chunkCount = (kv) => Object.keys(kvDump(kv)).filter((key) => key.startsWith("08010100")).length;
const keysRead = (kv) => kv.calls.filter((c) => c.method === "getBatch").reduce((n, c) => n + c.keys.length, 0);

describe("lazy paging", () => {
	test("a large database opens with one getBatch; a point query reads a few chunks", async (t) => {
		const kv = await bigKv();
		const db = await open(kv);
		if (db.backend === "wasm") return skipWasm(t, db, "the WASM engine reads the whole database at open");
		assert.equal(kv.count(), 1, "open: one KV call");
		assert.deepEqual(await rows(db, "SELECT id, length(v) FROM t WHERE id = ?", [7777]), [[7777, 300]]);
		assert.deepEqual(await rows(db, "SELECT count(*) FROM t WHERE k = ?", [5]), [[ROWS / 1000]]);
		assert.ok(kv.count("getBatch") <= 10, `${kv.count("getBatch")} getBatch calls`);
		assert.ok(keysRead(kv) < chunkCount(kv) / 10, `${keysRead(kv)} of ${chunkCount(kv)} chunks read`);
		// What was read stays local: the same queries read nothing more.
		kv.resetCounts();
		await rows(db, "SELECT id, length(v) FROM t WHERE id = ?", [7777]);
		assert.equal(kv.count(), 0);
		await db.close();
	});

	test("a full scan reads each chunk once, many per getBatch", async (t) => {
		const kv = await bigKv();
		const db = await open(kv);
		if (db.backend === "wasm") return skipWasm(t, db, "the WASM engine reads the whole database at open");
		assert.deepEqual(await rows(db, "SELECT count(*), sum(length(v)) FROM t"), [[ROWS, ROWS * 300]]);
		const read = kv.calls.filter((c) => c.method === "getBatch").flatMap((c) => c.keys);
		assert.equal(new Set(read).size, read.length, "no chunk read twice");
		assert.ok(kv.count("getBatch") < chunkCount(kv) / 20, `${kv.count("getBatch")} getBatch calls for ${chunkCount(kv)} chunks`);
		await db.close();
	});

	test("read-ahead: a cold table scan doubles its reads up to calls of 128 keys, sends 8 at once, and has at most 16 in flight (1,024 chunks and as many read ahead)", async (t) => {
		// About 18 MB (4,600 chunks): a scan long enough to reach requests of 1,024 chunks and read ahead of them.
		const written = createTestKv();
		const setup = await open(written);
		await setup.exec(`CREATE TABLE t(id INTEGER PRIMARY KEY, v BLOB);
			WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ${3 * ROWS})
			INSERT INTO t(v) SELECT randomblob(300) FROM n;`);
		await setup.close();
		// Each getBatch answers 2 ms later, so the calls the engine sends at once overlap.
		const kv = createTestKv({ inner: written.inner, latencyMs: 2 });
		const mostInFlight = countInFlight(kv);
		const db = await open(kv);
		if (db.backend === "wasm") return skipWasm(t, db, "the WASM engine reads the whole database at open");
		kv.resetCounts();
		assert.deepEqual(await rows(db, "SELECT count(*), sum(length(v)) FROM t"), [[3 * ROWS, 3 * ROWS * 300]]);
		const batches = kv.calls.filter((c) => c.method === "getBatch");
		const sizes = batches.map((c) => c.keys.length);
		const read = batches.flatMap((c) => c.keys);
		assert.equal(new Set(read).size, read.length, "no chunk read twice");
		assert.ok(Math.max(...sizes) <= 128, `getBatch sizes ${sizes}`);
		// Misses near the previous one: 1, 2, 4, … 128 chunks, then several calls of 128 at once.
		assert.match(sizes.join(","), /(^|,)1,2,4,8,16,32,64,128,128,/, `getBatch sizes ${sizes}`);
		// A request of up to 1,024 chunks goes as calls sent at once (8 at
		// most), and one of 512 or more also reads as many after it. (A
		// request also takes the chunks the scan skipped since the last one:
		// a few here.)
		assert.ok(mostInFlight() >= 8 && mostInFlight() <= 16, `${mostInFlight()} getBatch calls at once`);
		await db.close();
	});

	test("a scan going backwards (a descending scan, integrity_check) reads many chunks per getBatch too", async (t) => {
		for (const sql of ["SELECT sum(length(v)) FROM (SELECT v FROM t ORDER BY id DESC)", "PRAGMA integrity_check"]) {
			const kv = await bigKv();
			const db = await open(kv);
			if (db.backend === "wasm") return skipWasm(t, db, "the WASM engine reads the whole database at open");
			assert.deepEqual(await rows(db, sql), [[sql.startsWith("PRAGMA") ? "ok" : ROWS * 300]]);
			const read = kv.calls.filter((c) => c.method === "getBatch").flatMap((c) => c.keys);
			assert.equal(new Set(read).size, read.length, "no chunk read twice");
			assert.ok(kv.count("getBatch") < chunkCount(kv) / 10, `${sql}: ${kv.count("getBatch")} getBatch calls for ${chunkCount(kv)} chunks`);
			await db.close();
		}
	});

	test("a database of up to 4 MiB is read whole at open, in getBatch calls of at most 128 keys at once; a larger one is paged lazily", async (t) => {
		for (const [rowCount, lazy] of [
			[900, false],
			[1100, true],
		]) {
			// About a page per row: 900 rows make some 3.6 MB, 1,100 some 4.5 MB.
			const written = createTestKv();
			const db = await open(written);
			await db.exec(`CREATE TABLE t(v);
				WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ${rowCount}) INSERT INTO t SELECT randomblob(3000) FROM n`);
			const size = (await rows(db, "PRAGMA page_count"))[0][0] * 4096;
			await db.close();
			assert.equal(size > 4 * 2 ** 20, lazy, `${size} bytes`);
			// getBatch calls in flight at once, each taking 5 ms.
			const kv = createTestKv({ inner: written.inner.clone(), latencyMs: 5 });
			const mostInFlight = countInFlight(kv);
			const reopened = await open(kv);
			if (reopened.backend === "wasm") return skipWasm(t, reopened, "the WASM engine reads the whole database at open");
			const chunks = Math.ceil(size / 4096);
			const batches = kv.calls.filter((c) => c.method === "getBatch");
			if (lazy) {
				assert.equal(batches.length, 1, `${size} bytes: one getBatch at open`);
			} else {
				assert.ok(batches.every((c) => c.keys.length <= 128));
				assert.ok(keysRead(kv) >= chunks, `${keysRead(kv)} keys read for ${chunks} chunks`);
				// The first call (metadata and first chunks), then the rest at once.
				assert.ok(batches.length >= 1 + Math.ceil((chunks - 16) / 128));
				assert.ok(mostInFlight() > 1, `${mostInFlight()} getBatch calls at once`);
			}
			kv.resetCounts();
			assert.deepEqual(await rows(reopened, "SELECT count(*), sum(length(v)) FROM t"), [[rowCount, rowCount * 3000]]);
			assert.equal(kv.count("getBatch") > 0, lazy, `${kv.count("getBatch")} getBatch calls for a scan after open`);
			await reopened.close();
		}
	});

	test("preload: true reads the whole database at open; preload must be a boolean", async () => {
		const kv = await bigKv();
		const db = await open(kv, { preload: true });
		assert.ok(keysRead(kv) >= chunkCount(kv));
		kv.resetCounts();
		assert.deepEqual(await rows(db, "SELECT count(*) FROM t"), [[ROWS]]);
		assert.equal(kv.count(), 0);
		await db.close();
		await assert.rejects(open(kv, { preload: "yes" }), TypeError);
	});

	test("with the smallest KV limits (2 keys per call), every call keeps to them", async () => {
		const kv = await bigKv();
		for (const preload of [false, true]) {
			kv.resetCounts();
			const db = await open(kv, { preload, limits: { maxKeysPerCall: 2 } });
			assert.deepEqual(await rows(db, "SELECT length(v) FROM t WHERE id = ?", [4321]), [[300]]);
			assert.deepEqual(await rows(db, "SELECT count(*) FROM t"), [[ROWS]]);
			await db.close();
			const widest = Math.max(...kv.calls.map((c) => c.keys.length));
			assert.ok(widest <= 2, `a call with ${widest} keys`);
		}
	});

	test("a KV may reuse the bytes of the values it returned once its next call runs", async () => {
		const kv = await bigKv();
		// Each residue of i % 1000 comes 20 times.
		const expected = [[ROWS, 20 * 499_500, ROWS * 300]];
		for (const options of [{}, { preload: false }, { preload: true }, { limits: { maxKeysPerCall: 2 } }]) {
			const db = await open(reusingReads(kv), options);
			assert.deepEqual(await rows(db, "SELECT count(*), sum(k), sum(length(v)) FROM t"), expected, JSON.stringify(options));
			assert.deepEqual(await rows(db, "PRAGMA quick_check"), [["ok"]]);
			await db.run("UPDATE t SET v = printf('%0300d', id + 1) WHERE id % 100 = 0");
			await db.run("UPDATE t SET v = printf('%0300d', id) WHERE id % 100 = 0");
			await db.close();
		}
		// What they wrote is whole.
		const db = await open(kv);
		assert.deepEqual(await rows(db, "PRAGMA quick_check"), [["ok"]]);
		assert.deepEqual(await rows(db, "SELECT count(*), sum(k), sum(length(v)) FROM t"), expected);
		await db.close();
	});

	test("a database of up to 64 KiB opens with one KV call; preload: false pages even a small one lazily", async (t) => {
		const small = createTestKv();
		let db = await open(small);
		await db.exec("CREATE TABLE s(v); INSERT INTO s VALUES ('x')");
		await db.close();
		small.resetCounts();
		db = await open(small);
		assert.equal(small.count(), 1, "open: one KV call");
		assert.deepEqual(await rows(db, "SELECT v FROM s"), [["x"]]);
		await db.close();
		// About 1 MiB: read whole by default, paged lazily with preload: false.
		const kv = createTestKv();
		db = await open(kv);
		await db.exec(MIB_TABLE);
		await db.close();
		kv.resetCounts();
		db = await open(kv, { preload: false });
		if (db.backend === "wasm") return skipWasm(t, db, "the WASM engine reads the whole database at open");
		assert.equal(kv.count(), 1, "open: one KV call");
		assert.ok(keysRead(kv) < chunkCount(kv) / 4, `${keysRead(kv)} of ${chunkCount(kv)} chunks read at open`);
		assert.deepEqual(await rows(db, "SELECT count(*), sum(length(v)) FROM t"), [[250, 1_000_000]]);
		assert.ok(kv.count("getBatch") > 1, "the scan read the rest from the KV");
		await db.close();
	});

	test("export() reads the chunks not yet local for itself: they do not stay local", async (t) => {
		const kv = await bigKv();
		const db = await open(kv);
		if (db.backend === "wasm") return skipWasm(t, db, "the WASM engine reads the whole database at open");
		await db.export();
		assert.ok(keysRead(kv) >= chunkCount(kv), "export() read every chunk");
		kv.resetCounts();
		assert.deepEqual(await rows(db, "SELECT count(*) FROM t"), [[ROWS]]);
		assert.ok(kv.count("getBatch") > 1, `a scan after export() made ${kv.count("getBatch")} getBatch calls`);
		await db.close();
	});

	test("export() is stopped neither by timeoutMs nor by interrupt(): it takes as long as its KV reads", async () => {
		const kv = await bigKv();
		const eager = await open(kv.clone(), { preload: true });
		const expected = await eager.export();
		await eager.close();
		const db = await open(kv, { timeoutMs: 50 });
		// From now on every read takes 150 ms, three times the timeout.
		const getBatch = kv.getBatch;
		kv.getBatch = async (keys) => {
			await new Promise((resolve) => setTimeout(resolve, 150));
			return getBatch.call(kv, keys);
		};
		const started = performance.now();
		const exporting = db.export();
		db.interrupt();
		setTimeout(() => db.interrupt(), 20);
		assert.deepEqual(await exporting, expected);
		// (The WASM engine holds the whole file: its export reads nothing.)
		const took = performance.now() - started;
		if (db.backend === "native") assert.ok(took > 100, `export() took ${took} ms: longer than timeoutMs, as it should here`);
		kv.getBatch = getBatch;
		assert.deepEqual(await rows(db, "SELECT count(*) FROM t"), [[ROWS]]);
		await db.close();
	});

	test("export() of a database paged lazily is the whole file", async () => {
		const kv = await bigKv();
		const eager = await open(kv.clone(), { preload: true });
		await eager.run("UPDATE t SET v = 'changed' WHERE id = 5");
		const expected = await eager.export();
		await eager.close();
		const db = await open(kv);
		await db.run("UPDATE t SET v = 'changed' WHERE id = 5");
		assert.deepEqual(await db.export(), expected);
		await db.close();
	});
});

/** The KV key of the main file's first chunk (see lib/format.js). */
const FIRST_CHUNK = "0801010000000000";

/**
 * A copy of `file` (the database's first bytes at least) without the file
 * change counter of its header (bytes 24–27, and 92–95, which repeat it).
 * With locking_mode EXCLUSIVE, SQLite bumps it at the first commit after a
 * rollback, and a statement stopped on the JS thread (a page not local, its
 * time budget spent) is rolled back and run again on an engine thread: the
 * counter depends on where calls were stopped, nothing else does.
 */
function withoutChangeCounter(file) {
	const copy = Uint8Array.from(file);
	copy.fill(0, 24, 28);
	copy.fill(0, 92, 96);
	return copy;
}

describe("lazy and eager give the same results and the same KV bytes", () => {
	for (const seed of [11, 12]) {
		test(`random workload, seed ${seed}`, async () => {
			const base = await bigKv();
			const lazyKv = base.clone();
			const eagerKv = base.clone();
			const lazy = await open(lazyKv, { preload: false });
			const eager = await open(eagerKv, { preload: true });
			await lazy.exec(SETUP.join("; "));
			await eager.exec(SETUP.join("; "));
			const generator = createGenerator(prng(seed));
			const ref = { all: () => [[0]] };
			const outcome = async (db, c) => {
				try {
					const out = c.method === "exec" ? await db.exec(c.sql) : await db[c.method](c.sql, c.params);
					return { ok: out ?? null };
				} catch (error) {
					return { code: error.code, message: error.message };
				}
			};
			for (let step = 0; step < 60; step++) {
				const { calls } = generator.next(ref);
				for (const c of calls) {
					const a = await outcome(lazy, c);
					const b = await outcome(eager, c);
					assert.deepEqual(a, b, `step ${step}: ${c.method} ${c.sql.slice(0, 80)}`);
					assert.equal(lazy.inTransaction, eager.inTransaction);
				}
				if (step % 20 === 19) assert.deepEqual(await snapshot(lazy), await snapshot(eager));
			}
			for (const db of [lazy, eager]) if (db.inTransaction) await db.exec("COMMIT");
			assert.deepEqual(withoutChangeCounter(await lazy.export()), withoutChangeCounter(await eager.export()));
			await lazy.close();
			await eager.close();
			const dump = (kv) => {
				const out = kvDump(kv);
				out[FIRST_CHUNK] = Buffer.from(withoutChangeCounter(Buffer.from(out[FIRST_CHUNK], "hex"))).toString("hex");
				return out;
			};
			assert.deepEqual(dump(lazyKv), dump(eagerKv));
		});
	}
});

describe("KV failures and interrupts while reading pages", () => {
	test("with no timeout, a call waiting for a page read keeps the process alive until the KV answers", () => {
		// In a child process whose KV answers reads on an unref'd timer: the
		// call waiting for the read is all that keeps the process alive.
		const index = path.join(path.dirname(fileURLToPath(import.meta.url)), "..", "index.js");
		const script = `
			const { open, createMemoryKv } = require(${JSON.stringify(index)});
			const backend = ${JSON.stringify(BACKEND ?? null)};
			(async () => {
				const store = createMemoryKv();
				let db = await open("a", store, { backend });
				await db.exec(${JSON.stringify(MIB_TABLE)});
				await db.close();
				let slow = false;
				const kv = {
					get: (key) => store.get(key),
					getBatch: (keys) =>
						slow ? new Promise((resolve) => setTimeout(() => resolve(store.getBatch(keys)), 300).unref()) : store.getBatch(keys),
					put: (key, value) => store.put(key, value),
					putBatch: (entries) => store.putBatch(entries),
					deleteBatch: (keys) => store.deleteBatch(keys),
				};
				db = await open("a", kv, { backend, preload: false, timeoutMs: 0 });
				if (db.backend !== "native") {
					console.log(JSON.stringify({ backend: db.backend }));
					return db.close();
				}
				slow = true;
				db.query("SELECT count(*) FROM t").then(async ({ rows }) => {
					console.log(JSON.stringify({ backend: db.backend, answered: rows[0][0] }));
					await db.close();
				});
			})();
		`;
		const child = spawnSync(process.execPath, ["-e", script], { encoding: "utf8", timeout: 60_000 });
		assert.equal(child.status, 0, child.stderr);
		const outcome = JSON.parse(child.stdout.trim().split("\n").at(-1) || "{}");
		if (outcome.backend === "wasm") return;
		assert.deepEqual(outcome, { backend: "native", answered: 250 }, child.stdout);
	});

	const isReadFailure = (error) =>
		error instanceof SqliteError && error.code === "SQLITE_IOERR_READ" && /injected getBatch failure/.test(error.cause?.message);

	test("a failed page read rejects the call with SQLITE_IOERR_READ, the KV's error as cause; the next call works", async (t) => {
		const kv = await bigKv();
		const db = await open(kv);
		if (db.backend === "wasm") return skipWasm(t, db, "the WASM engine reads no page after open");
		kv.failWhen((call) => call.method === "getBatch");
		await assert.rejects(db.query("SELECT v FROM t WHERE id = ?", [9000]), isReadFailure);
		assert.ok(kv.errors.length > 0, "onError heard of it");
		// integrity_check goes on past a page it cannot read, reporting it as
		// a row: the query rejects instead of returning that row.
		await assert.rejects(db.query("PRAGMA integrity_check"), isReadFailure);
		kv.clearFaults();
		assert.deepEqual(await rows(db, "SELECT length(v) FROM t WHERE id = ?", [9000]), [[300]]);
		assert.deepEqual(await rows(db, "PRAGMA integrity_check"), [["ok"]]);
		await db.close();
	});

	test("a page whose bytes the store transferred away rejects the call with SQLITE_CORRUPT; the next call works", async (t) => {
		const kv = await bigKv();
		const db = await open(kv);
		if (db.backend === "wasm") return skipWasm(t, db, "the WASM engine reads no page after open");
		const getBatch = kv.getBatch;
		kv.getBatch = async (keys) =>
			(await getBatch.call(kv, keys)).map((value) => {
				if (value === null) return value;
				const copy = value.slice();
				structuredClone(copy.buffer, { transfer: [copy.buffer] });
				return copy;
			});
		await assert.rejects(db.query("SELECT v FROM t WHERE id = ?", [9000]), {
			name: "SqliteError",
			code: "SQLITE_CORRUPT",
			message: /detached/,
		});
		kv.getBatch = getBatch;
		assert.deepEqual(await rows(db, "SELECT length(v) FROM t WHERE id = ?", [9000]), [[300]]);
		await db.close();
	});

	test("inside a transaction, a failed read keeps the transaction; a failed write rolls it back", async (t) => {
		const kv = await bigKv();
		const db = await open(kv);
		if (db.backend === "wasm") return skipWasm(t, db, "the WASM engine reads no page after open");
		await db.exec("BEGIN");
		await db.run("INSERT INTO t(id, k, v) VALUES (100000, 1, 'in transaction')");
		kv.failWhen((call) => call.method === "getBatch");
		await assert.rejects(db.query("SELECT v FROM t WHERE id = ?", [3000]), isReadFailure);
		assert.equal(db.inTransaction, true);
		await assert.rejects(db.run("UPDATE t SET v = 'x' WHERE id = ?", [6000]), isReadFailure);
		assert.equal(db.inTransaction, false);
		kv.clearFaults();
		assert.deepEqual(await rows(db, "SELECT count(*) FROM t WHERE id = 100000"), [[0]]);
		await db.exec("BEGIN; UPDATE t SET v = 'y' WHERE id = 6000; COMMIT");
		await db.close();
		const reopened = await open(kv);
		assert.deepEqual(await rows(reopened, "SELECT v FROM t WHERE id = 6000"), [["y"]]);
		await reopened.close();
	});

	test("when a write's failed page read rolls its transaction back, the calls queued for the transaction reject", async (t) => {
		const kv = await bigKv();
		const db = await open(kv);
		if (db.backend === "wasm") return skipWasm(t, db, "the WASM engine reads no page after open");
		await db.exec("CREATE TABLE small(v)");
		await db.exec("BEGIN");
		kv.failWhen((call) => call.method === "getBatch");
		const outcomes = await Promise.allSettled([
			db.run("INSERT INTO small VALUES ('part 1')"),
			// A cold page: on an engine thread, whose read fails.
			db.run("UPDATE t SET v = 'part 2' WHERE id = 17000"),
			db.run("INSERT INTO small VALUES ('part 3')"),
			db.exec("COMMIT"),
		]);
		kv.clearFaults();
		assert.deepEqual(
			outcomes.map((o) => o.reason?.code ?? o.status),
			["fulfilled", "SQLITE_IOERR_READ", "SQLITE_ABORT_ROLLBACK", "SQLITE_ABORT_ROLLBACK"],
		);
		assert.equal(outcomes[2].reason.cause, outcomes[1].reason);
		assert.equal(db.inTransaction, false);
		await db.run("INSERT INTO small VALUES ('after')");
		await db.close();
		const reopened = await open(kv, { preload: true });
		assert.deepEqual(await rows(reopened, "SELECT v FROM small"), [["after"]]);
		assert.deepEqual(await rows(reopened, "SELECT v FROM t WHERE id = 17000"), [["17000".padStart(300, "0")]]);
		await reopened.close();
	});

	test("interrupt() and timeoutMs stop a call that waits for a slow KV read", async (t) => {
		const base = await bigKv();
		const kv = createTestKv({ inner: base.inner, latencyMs: 3_000 });
		// Opening reads one getBatch: 3 s here.
		const db = await open(kv, { timeoutMs: 500 });
		if (db.backend === "wasm") return skipWasm(t, db, "the WASM engine reads no page after open");
		let started = performance.now();
		await assert.rejects(
			db.query("SELECT v FROM t WHERE id = ?", [4000]),
			(e) => e.code === "SQLITE_INTERRUPT" && /timeout/.test(e.message),
		);
		assert.ok(performance.now() - started < 2_500, `timeout after ${performance.now() - started} ms`);
		started = performance.now();
		const pending = db.query("SELECT v FROM t WHERE id = ?", [8000]);
		setTimeout(() => db.interrupt(), 50);
		await assert.rejects(pending, (e) => e.code === "SQLITE_INTERRUPT");
		assert.ok(performance.now() - started < 2_500, `interrupted after ${performance.now() - started} ms`);
		assert.deepEqual(await rows(db, "SELECT 1"), [[1]]);
		await db.close();
	});

	test("a read-ahead the KV never answers stops only the call that waited for it: the next calls read those chunks again", async (t) => {
		const kv = await bigKv();
		const getBatch = kv.getBatch.bind(kv);
		let armed = false;
		let lost = false;
		kv.getBatch = (keys) => {
			// The first read of a chunk past 1,000, during a scan: one read
			// ahead of what the scan asks for.
			if (armed && !lost && keys.length > 1 && keys[0].length === 8 && Buffer.from(keys[0]).readUInt32BE(4) >= 1000) {
				lost = true;
				return new Promise(() => {});
			}
			return getBatch(keys);
		};
		const db = await open(kv, { timeoutMs: 1_000 });
		if (db.backend === "wasm") return skipWasm(t, db, "the WASM engine reads no page after open");
		armed = true;
		const scan = "SELECT count(*), sum(length(v)) FROM t";
		await assert.rejects(db.query(scan), (e) => e.code === "SQLITE_INTERRUPT" && /timeout/.test(e.message));
		assert.ok(lost);
		assert.deepEqual(await rows(db, scan), [[ROWS, ROWS * 300]]);
		assert.deepEqual(await rows(db, "SELECT length(v) FROM t WHERE id = ?", [ROWS]), [[300]]);
		await db.close();
	});

	test("the pages a stopped call waited for are not kept when they come: with a timeoutMs under the KV's latency, it is stopped each time", async (t) => {
		const base = await bigKv();
		const kv = createTestKv({ inner: base.inner, latencyMs: 300 });
		const db = await open(kv, { timeoutMs: 100 });
		if (db.backend === "wasm") return skipWasm(t, db, "the WASM engine reads no page after open");
		const query = () => db.query("SELECT v FROM t WHERE id = ?", [4000]);
		for (let attempt = 0; attempt < 3; attempt++) {
			await assert.rejects(query(), (e) => e.code === "SQLITE_INTERRUPT" && /timeout/.test(e.message), `attempt ${attempt}`);
			// The late reply of the stopped call arrives meanwhile.
			await new Promise((resolve) => setTimeout(resolve, 400));
		}
		await db.close();
		const patient = await open(createTestKv({ inner: base.inner, latencyMs: 300 }));
		assert.deepEqual(await rows(patient, "SELECT v FROM t WHERE id = ?", [4000]), [["4000".padStart(300, "0")]]);
		await patient.close();
	});

	test("timeoutMs stops an open that waits for a slow KV (a schema spread over pages not yet read)", async (t) => {
		const kv = createTestKv();
		const db = await open(kv);
		// A large table first, then a schema of some 100 KiB: its pages lie past the first chunks.
		await db.exec(`CREATE TABLE big(v);
			WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 1200) INSERT INTO big SELECT randomblob(3000) FROM n`);
		const columns = Array.from({ length: 40 }, (_, j) => `column_with_a_long_name_${j} TEXT`).join(", ");
		await db.exec(Array.from({ length: 100 }, (_, i) => `CREATE TABLE t${i}(${columns});`).join("\n"));
		await db.close();
		const getBatch = kv.getBatch;
		let calls = 0;
		kv.getBatch = async (keys) => {
			if (calls++ > 0) await new Promise((resolve) => setTimeout(resolve, 300));
			return getBatch.call(kv, keys);
		};
		const started = performance.now();
		const opening = open(kv, { timeoutMs: 100 });
		const first = await opening.catch((error) => error);
		if (first?.backend === "wasm") return skipWasm(t, first, "the WASM engine reads the whole database at open");
		assert.ok(first instanceof SqliteError && first.code === "SQLITE_INTERRUPT", String(first));
		assert.match(first.message, /timeout/);
		assert.ok(performance.now() - started < 2_000, `rejected after ${performance.now() - started} ms`);
		assert.ok(calls >= 2, "the open read pages past the first getBatch");
		// Nothing was written: the database opens as it was.
		kv.getBatch = getBatch;
		const again = await open(kv);
		assert.deepEqual(await rows(again, "SELECT count(*) FROM sqlite_schema"), [[101]]);
		assert.deepEqual(await rows(again, "SELECT count(*) FROM big"), [[1200]]);
		await again.close();
	});

	test("a COMMIT or RELEASE that reads pages not yet local (auto_vacuum moves pages at commit) commits, on every path", async (t) => {
		const kv = await autoVacuumKv();
		let before = AV_ROWS;
		for (const [begin, end] of [
			["BEGIN", "COMMIT"],
			["SAVEPOINT s", "RELEASE s"],
		]) {
			const db = await open(kv);
			if (db.backend === "wasm") return skipWasm(t, db, "the WASM engine reads the whole database at open");
			// Nothing is read before: the pages the commit moves are not local.
			await db.exec(begin);
			await db.run("DELETE FROM t WHERE id IN (SELECT id FROM t ORDER BY id LIMIT 50)");
			await db.exec(end);
			assert.equal(db.inTransaction, false);
			assert.deepEqual(await rows(db, "SELECT count(*) FROM t"), [[before - 50]], end);
			await db.close();
			const reopened = await open(kv, { preload: true });
			assert.deepEqual(await rows(reopened, "SELECT count(*) FROM t"), [[before - 50]], `${end}, reopened`);
			assert.deepEqual(await rows(reopened, "PRAGMA integrity_check"), [["ok"]]);
			await reopened.close();
			before -= 50;
		}
	});

	test("interrupt() and timeoutMs stop a COMMIT that waits for a KV that never answers; the transaction is rolled back", async (t) => {
		const kv = await autoVacuumKv();
		for (const stop of ["timeoutMs", "interrupt"]) {
			const db = await open(kv, stop === "timeoutMs" ? { timeoutMs: 500 } : {});
			if (db.backend === "wasm") return skipWasm(t, db, "the WASM engine reads the whole database at open");
			// Nothing is read before: the pages the commit moves are not local.
			const before = AV_ROWS;
			await db.exec("BEGIN");
			await db.run("DELETE FROM t WHERE id IN (SELECT id FROM t ORDER BY id LIMIT 50)");
			const getBatch = kv.getBatch;
			kv.getBatch = () => new Promise(() => {});
			const started = performance.now();
			const committing = db.exec("COMMIT");
			if (stop === "interrupt") setTimeout(() => db.interrupt(), 200);
			await assert.rejects(committing, (e) => e instanceof SqliteError && e.code === "SQLITE_INTERRUPT", stop);
			assert.ok(performance.now() - started < 5_000, `${stop}: rejected after ${performance.now() - started} ms`);
			assert.equal(db.inTransaction, false, stop);
			kv.getBatch = getBatch;
			assert.deepEqual(await rows(db, "SELECT count(*) FROM t"), [[before]], stop);
			await db.close();
			const reopened = await open(kv, { preload: true });
			assert.deepEqual(await rows(reopened, "SELECT count(*) FROM t"), [[before]], `${stop}, reopened`);
			assert.deepEqual(await rows(reopened, "PRAGMA integrity_check"), [["ok"]]);
			await reopened.close();
		}
	});

	test("a write whose page read was stopped and that went on (integrity_check reports what it cannot read as rows) does not keep the bogus rows", async (t) => {
		const kv = await bigKv();
		let db = await open(kv);
		await db.exec("CREATE TABLE log(line TEXT)");
		await db.close();
		// Autocommit: the inline run misses pages; the write runs again where
		// they can be read, and keeps the true report.
		db = await open(kv);
		if (db.backend === "wasm") return skipWasm(t, db, "the WASM engine reads no page after open");
		// The log's pages are made local first: the write then starts inline.
		assert.deepEqual(await rows(db, "SELECT count(*) FROM log"), [[0]]);
		await db.run("INSERT INTO log SELECT * FROM pragma_integrity_check");
		assert.deepEqual(await rows(db, "SELECT line FROM log"), [["ok"]]);
		await db.run("DELETE FROM log");
		await db.close();
		// A KV failure: the write fails with nothing kept, in and out of a transaction.
		for (const begin of [null, "BEGIN"]) {
			db = await open(kv);
			assert.deepEqual(await rows(db, "SELECT count(*) FROM log"), [[0]]);
			if (begin) await db.exec(begin);
			kv.failWhen((call) => call.method === "getBatch");
			await assert.rejects(db.run("INSERT INTO log SELECT * FROM pragma_integrity_check"), isReadFailure, String(begin));
			kv.clearFaults();
			assert.equal(db.inTransaction, false, "the failed write rolled the transaction back");
			assert.deepEqual(await rows(db, "SELECT count(*) FROM log"), [[0]], String(begin));
			if (begin) await assert.rejects(db.exec("COMMIT"), /no transaction is active/);
			await db.close();
			const reopened = await open(kv, { preload: true });
			assert.deepEqual(await rows(reopened, "SELECT count(*) FROM log"), [[0]], `${begin}, reopened`);
			await reopened.close();
		}
	});

	test("a write that fails after writing pages it never read leaves the durable state", async (t) => {
		// Deleting rows puts pages on the freelist; SQLite reuses them without
		// reading them, so their durable bytes must be read before the commit
		// may need them (for its journal, or to undo it).
		const kv = await bigKv();
		let db = await open(kv, { limits: { maxKeysPerCall: 16 } });
		if (db.backend === "wasm") return skipWasm(t, db, "the WASM engine reads the whole database at open");
		await db.run("DELETE FROM t WHERE id > 2000");
		const before = await snapshot(db);
		await db.close();
		db = await open(kv, { limits: { maxKeysPerCall: 16 } });
		kv.failWhen((call) => call.method === "putBatch", { applied: true });
		await assert.rejects(
			db.exec(
				"WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 3000) INSERT INTO t(k, v) SELECT i, printf('%0200d', i) FROM n",
			),
			(e) => e.code === "SQLITE_IOERR_WRITE",
		);
		kv.clearFaults();
		assert.deepEqual(await snapshot(db), before);
		await db.run("INSERT INTO t(k, v) VALUES (1, 'after')");
		await db.close();
		const reopened = await open(kv, { preload: true });
		assert.deepEqual(await rows(reopened, "PRAGMA integrity_check"), [["ok"]]);
		assert.deepEqual(await rows(reopened, "SELECT count(*) FROM t"), [[before.t.length + 1]]);
		await reopened.close();
	});
	test("a VACUUM whose commit fails before it sends anything leaves the pages it cut away to be read from the KV", async (t) => {
		// Table a, then b, dropped: b's pages are free, at the end of the file,
		// and VACUUM, which cuts them away, never reads them. The commit reads
		// their durable bytes first (for its journal): when that read fails,
		// the commit is undone before anything is sent, and the pages cut away
		// must be remote again, read from the KV when next needed.
		const kv = createTestKv();
		let db = await open(kv);
		if (db.backend === "wasm") return skipWasm(t, db, "the WASM engine reads the whole database at open");
		await db.exec(`CREATE TABLE a(id INTEGER PRIMARY KEY, v BLOB);
			WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 200)
			INSERT INTO a(v) SELECT randomblob(4000) FROM n;`);
		const [[pages]] = await rows(db, "PRAGMA page_count");
		await db.exec(`CREATE TABLE b(id INTEGER PRIMARY KEY, v BLOB);
			WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 4000)
			INSERT INTO b(v) SELECT randomblob(4000) FROM n;
			DROP TABLE b;`);
		const before = await db.export();
		await db.close();
		db = await open(kv);
		// Past what VACUUM reads, with read-ahead: only the commit reads there.
		const cut = pages + 2000;
		const index = (key) => Number.parseInt(key.slice(8), 16);
		kv.failWhen((call) => call.method === "getBatch" && call.keys.some((key) => key.length === 16 && index(key) >= cut));
		await assert.rejects(db.exec("VACUUM"), (e) => e instanceof SqliteError && e.code === "SQLITE_IOERR_READ");
		kv.clearFaults();
		assert.deepEqual(await rows(db, "PRAGMA integrity_check"), [["ok"]]);
		assert.deepEqual(await db.export(), before);
		await db.exec("VACUUM");
		assert.deepEqual(await rows(db, "PRAGMA integrity_check"), [["ok"]]);
		assert.deepEqual(await rows(db, "SELECT count(*) FROM a"), [[200]]);
		await db.close();
		const reopened = await open(kv, { preload: true });
		assert.deepEqual(await rows(reopened, "PRAGMA integrity_check"), [["ok"]]);
		assert.deepEqual(await rows(reopened, "SELECT count(*) FROM a"), [[200]]);
		await reopened.close();
	});
});
