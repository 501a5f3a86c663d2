"use strict";

// The workloads. Each runs inside a fresh child process against one backend
// and returns its figures. `ctx` gives:
//   backend      the created backend ({ open, materialize, destroy })
//   latencyMs    the KV's per-call latency
//   timeMs       how long a time-boxed loop runs
//   warmUpMs     how long the untimed loop before it runs (lets JITs tier up)
//   reps         repetitions of the fixed-size workloads (their median is kept)
//   newKv()      an empty BenchKv with the latency
//   imageKv(id)  a BenchKv holding a prepared database image, with the latency
//                (a promise of one when the backend runs on a real store)
//   params       workload parameters (row counts, database counts)
//
// FIGURES describes every figure for the report: label, unit, and whether a
// higher or a lower value is better.

const fs = require("node:fs");
const os = require("node:os");
const path = require("node:path");

const { diffCounters } = require("./kv");

const SCHEMA = "CREATE TABLE t (id INTEGER PRIMARY KEY, k INTEGER NOT NULL, v TEXT NOT NULL)";
const INSERT = "INSERT INTO t (k, v) VALUES (?, ?)";
const SELECT = "SELECT id, k, v FROM t WHERE id = ?";
const UPDATE = "UPDATE t SET v = ? WHERE id = ?";
// `n` rows of ~100 random characters, in one statement.
const bulkInsert = (table, n) =>
	`INSERT INTO ${table} (k, v) WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < ${n}) ` +
	"SELECT x, hex(randomblob(50)) FROM c";

const now = () => performance.now();

/** A 100-character value that differs per call. */
function value(i) {
	return `${i}:`.padEnd(100, "abcdefghij");
}

/** A 1,024-character value that differs per call. */
function kibValue(i) {
	return `${i}:`.padEnd(1024, "abcdefghij");
}

/** Deterministic pseudo-random ids (xorshift), so every backend touches the same rows. */
function ids(max, seed = 0x9e3779b9) {
	let x = seed >>> 0 || 1;
	return () => {
		x ^= x << 13;
		x >>>= 0;
		x ^= x >>> 17;
		x ^= x << 5;
		x >>>= 0;
		return 1 + (x % max);
	};
}

/** RSS once garbage is collected (the child runs with --expose-gc). */
async function settledRss() {
	for (let i = 0; i < 2; i++) {
		globalThis.gc?.();
		await new Promise((resolve) => setImmediate(resolve));
	}
	return process.memoryUsage().rss;
}

// Where this package's native engine keeps a database's local files: a file
// `db-*` per open database (and its journal, `db-*-journal`, at times), in
// the process's directory `rivetkit-sqlite-*` in os.tmpdir(). (bench/run.js
// gives every task its own TMPDIR, so no other process adds any there.)
const TEMP_PREFIX = "rivetkit-sqlite-";

/** The database files in os.tmpdir() now (paths relative to it), journals included. */
function tempFiles() {
	const files = new Set();
	for (const root of fs.readdirSync(os.tmpdir()).filter((name) => name.startsWith(TEMP_PREFIX))) {
		let names;
		try {
			names = fs.readdirSync(path.join(os.tmpdir(), root));
		} catch (error) {
			if (error.code === "ENOENT") continue;
			throw error;
		}
		for (const name of names) if (name.startsWith("db-")) files.add(path.join(root, name));
	}
	return files;
}

/** Allocated bytes (st_blocks × 512) of `file` (0 if it is gone). */
function allocatedBytes(file) {
	try {
		return fs.lstatSync(file).blocks * 512;
	} catch (error) {
		if (error.code === "ENOENT") return 0;
		throw error;
	}
}

/**
 * Local disk used by the databases opened since `before` (a tempFiles()
 * snapshot): allocated bytes of the database files that appeared in
 * os.tmpdir() since. A backend that keeps no local files uses 0.
 */
function localDiskBytes(before) {
	let total = 0;
	for (const name of tempFiles()) if (!before.has(name)) total += allocatedBytes(path.join(os.tmpdir(), name));
	return total;
}

function median(values) {
	const sorted = [...values].sort((a, b) => a - b);
	const mid = sorted.length >> 1;
	return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

/**
 * Calls `op(i)` one after another for `ms` (at least `minOps` times); returns
 * ops, seconds and the KV counters spent (when there is a KV).
 */
async function timeBox(ms, kv, op, minOps = 3) {
	const before = kv?.counters();
	const start = now();
	let ops = 0;
	while (ops < minOps || now() - start < ms) {
		await op(ops);
		ops++;
	}
	const seconds = (now() - start) / 1000;
	return { ops, seconds, kv: kv ? diffCounters(kv.counters(), before) : null };
}

// Calls timed from a database's first call in a fresh process (see firstCalls).
const FIRST_CALLS = 1_000;

/**
 * Ops per second of the first FIRST_CALLS calls of `op`, timed as a fresh
 * process makes them: before any warm-up, while the JIT has not yet
 * compiled the code they run and the GC's young generation is still small.
 */
async function firstCalls(op) {
	const start = now();
	for (let i = 0; i < FIRST_CALLS; i++) await op(i);
	return FIRST_CALLS / ((now() - start) / 1000);
}

/** Opens `name` on `kv` through the backend, after letting it copy the image out if it has no KV. */
async function openDb(ctx, name, kv) {
	await ctx.backend.materialize(name, kv);
	return ctx.backend.open(name, kv);
}

function perOp(run, kvBacked) {
	return {
		opsPerSec: run.ops / run.seconds,
		kvCallsPerOp: kvBacked ? run.kv.totalCalls / run.ops : null,
		kvBytesWrittenPerOp: kvBacked ? run.kv.bytesWritten / run.ops : null,
		kvBytesReadPerOp: kvBacked ? run.kv.bytesRead / run.ops : null,
		violations: kvBacked ? run.kv.violations : 0,
	};
}

/**
 * `rows` awaited `run` calls (one row each, `rowValue(i)` its value) between
 * BEGIN and COMMIT, repeated: the median time and KV calls of a repetition.
 * Untimed repetitions go first: one, or (`steady`) as many as the warm-up
 * time takes, so that the JITs have tiered up (steady state).
 */
async function runsInTransaction(ctx, name, rows, rowValue, steady) {
	const kv = ctx.newKv();
	const db = await openDb(ctx, name, kv);
	await db.exec(SCHEMA);
	const times = [];
	const calls = [];
	let violations = 0;
	let i = 0;
	const transaction = async () => {
		await db.exec("BEGIN");
		for (let n = 0; n < rows; n++, i++) await db.run(INSERT, [i, rowValue(i)]);
		await db.exec("COMMIT");
	};
	await timeBox(steady ? ctx.warmUpMs : 0, null, transaction, 1);
	for (let rep = 0; rep < ctx.reps; rep++) {
		const before = kv.counters();
		const start = now();
		await transaction();
		const ms = now() - start;
		const spent = diffCounters(kv.counters(), before);
		violations += spent.violations;
		times.push(ms);
		calls.push(spent.totalCalls);
	}
	await db.close();
	return {
		ms: median(times),
		kvCalls: ctx.usesKv ? median(calls) : null,
		violations: ctx.usesKv ? violations : 0,
	};
}

const WORKLOADS = {
	/** W1: autocommit single-row inserts, one after another. */
	async W1(ctx) {
		const kv = ctx.newKv();
		const db = await openDb(ctx, "w1", kv);
		await db.exec(SCHEMA);
		const firstOpsPerSec = await firstCalls((i) => db.run(INSERT, [i, value(i)]));
		await timeBox(ctx.warmUpMs, null, (i) => db.run(INSERT, [i, value(i)]));
		const run = await timeBox(ctx.timeMs, kv, (i) => db.run(INSERT, [i, value(i)]));
		await db.close();
		const f = perOp(run, ctx.usesKv);
		return {
			opsPerSec: f.opsPerSec,
			firstOpsPerSec,
			kvCallsPerOp: f.kvCallsPerOp,
			kvBytesWrittenPerOp: f.kvBytesWrittenPerOp,
			violations: f.violations,
		};
	},

	/** W2a: 10,000 rows in one INSERT ... SELECT over a recursive CTE. */
	async W2a(ctx) {
		const kv = ctx.newKv();
		const db = await openDb(ctx, "w2a", kv);
		const times = [];
		const calls = [];
		const bytes = [];
		let violations = 0;
		// Repetition 0 warms up and is not kept.
		for (let rep = 0; rep <= ctx.reps; rep++) {
			await db.exec(SCHEMA.replace("TABLE t", `TABLE t${rep}`));
			const before = kv.counters();
			const start = now();
			await db.run(bulkInsert(`t${rep}`, ctx.params.bulkRows));
			const ms = now() - start;
			const spent = diffCounters(kv.counters(), before);
			violations += spent.violations;
			if (rep === 0) continue;
			times.push(ms);
			calls.push(spent.totalCalls);
			bytes.push(spent.bytesWritten);
		}
		const [check] = await db.query(`SELECT count(*) FROM t${ctx.reps}`);
		if (Number(check[0]) !== ctx.params.bulkRows) throw new Error(`W2a inserted ${check[0]} rows`);
		await db.close();
		return {
			ms: median(times),
			kvCalls: ctx.usesKv ? median(calls) : null,
			kvBytesWritten: ctx.usesKv ? median(bytes) : null,
			violations: ctx.usesKv ? violations : 0,
		};
	},

	/** W2b: 1,000 `run` calls (one row each) inside BEGIN ... COMMIT. */
	W2b(ctx) {
		return runsInTransaction(ctx, "w2b", ctx.params.txRows, value, false);
	},

	/** W2c: 1 MiB in one transaction, 1,024 `run` calls of 1 KiB each, in steady state (issue 11). */
	W2c(ctx) {
		return runsInTransaction(ctx, "w2c", 1_024, kibValue, true);
	},

	/** W3: point selects by primary key over a 1,000-row table. */
	async W3(ctx) {
		const kv = ctx.newKv();
		const db = await openDb(ctx, "w3", kv);
		await db.exec(SCHEMA);
		await db.run(bulkInsert("t", ctx.params.selectRows));
		const next = ids(ctx.params.selectRows);
		const select = async () => {
			const rows = await db.query(SELECT, [next()]);
			if (rows.length !== 1) throw new Error(`W3: expected one row, got ${rows.length}`);
		};
		const firstOpsPerSec = await firstCalls(select);
		await timeBox(ctx.warmUpMs, null, select);
		const run = await timeBox(ctx.timeMs, kv, select);
		await db.close();
		const f = perOp(run, ctx.usesKv);
		return { opsPerSec: f.opsPerSec, firstOpsPerSec, kvCallsPerOp: f.kvCallsPerOp, violations: f.violations };
	},

	/** W4: cold open of a prepared database plus one point query. */
	async W4(ctx) {
		const kv = await ctx.imageKv(ctx.params.image);
		await ctx.backend.materialize("w4", kv);
		const rowCount = ctx.params.imageRows;
		const rssBefore = await settledRss();
		const before = kv.counters();
		const start = now();
		const db = await ctx.backend.open("w4", kv);
		const rows = await db.query(SELECT, [Math.ceil(rowCount / 2)]);
		const ms = now() - start;
		const spent = diffCounters(kv.counters(), before);
		const rssAfter = await settledRss();
		if (rows.length !== 1) throw new Error(`W4: expected one row, got ${rows.length}`);
		await db.close();
		return {
			ms,
			kvKeysRead: ctx.usesKv ? spent.keysRead : null,
			kvCalls: ctx.usesKv ? spent.totalCalls : null,
			rssDeltaMiB: (rssAfter - rssBefore) / 2 ** 20,
			violations: ctx.usesKv ? spent.violations : 0,
		};
	},

	/** W5: one-row updates at random ids of a prepared 10 MB database. */
	async W5(ctx) {
		const kv = await ctx.imageKv(ctx.params.image);
		const db = await openDb(ctx, "w5", kv);
		const next = ids(ctx.params.imageRows);
		const update = (i) => db.run(UPDATE, [value(i), next()]);
		await timeBox(ctx.warmUpMs, null, update);
		const run = await timeBox(ctx.timeMs, kv, update);
		await db.close();
		const f = perOp(run, ctx.usesKv);
		return {
			opsPerSec: f.opsPerSec,
			kvCallsPerOp: f.kvCallsPerOp,
			kvBytesWrittenPerOp: f.kvBytesWrittenPerOp,
			violations: f.violations,
		};
	},

	/** W6: rounds of 100 inserts issued at once (Promise.all), not awaiting each other. */
	async W6(ctx) {
		const kv = ctx.newKv();
		const db = await openDb(ctx, "w6", kv);
		await db.exec(SCHEMA);
		const writers = ctx.params.writers;
		let i = 0;
		const round = () => Promise.all(Array.from({ length: writers }, () => db.run(INSERT, [i, value(i++)])));
		await timeBox(ctx.warmUpMs, null, round, 1);
		const run = await timeBox(ctx.timeMs, kv, round, 1);
		const [count] = await db.query("SELECT count(*) FROM t");
		if (Number(count[0]) !== i) throw new Error(`W6: ${count[0]} rows stored, ${i} inserted`);
		await db.close();
		const inserts = run.ops * writers;
		return {
			opsPerSec: inserts / run.seconds,
			kvCallsPerOp: ctx.usesKv ? run.kv.totalCalls / inserts : null,
			violations: ctx.usesKv ? run.kv.violations : 0,
		};
	},

	/** M: many small databases open at once; RSS per open database. */
	async M(ctx) {
		const count = ctx.params.databases;
		const kvs = Array.from({ length: count }, () => ctx.imageKv(ctx.params.image));
		for (let n = 0; n < count; n++) await ctx.backend.materialize(`m${n}`, kvs[n]);
		const filesBefore = tempFiles();
		const rssBefore = await settledRss();
		const start = now();
		const dbs = [];
		for (let n = 0; n < count; n++) {
			const db = await ctx.backend.open(`m${n}`, kvs[n]);
			const rows = await db.query(SELECT, [1]);
			if (rows.length !== 1) throw new Error(`M: expected one row, got ${rows.length}`);
			dbs.push(db);
		}
		const ms = now() - start;
		const rssAfter = await settledRss();
		const disk = localDiskBytes(filesBefore);
		for (const db of dbs) await db.close();
		// Then one at a time, as a process that opens a database per task
		// does: open, query, close.
		const alone = now();
		for (let n = 0; n < count; n++) {
			const db = await ctx.backend.open(`m${n}`, kvs[n]);
			await db.query(SELECT, [1]);
			await db.close();
		}
		const aloneMs = now() - alone;
		let violations = 0;
		for (const kv of kvs) violations += kv.counters().violations;
		return {
			rssPerDbKiB: (rssAfter - rssBefore) / count / 1024,
			openMsPerDb: ms / count,
			openCloseMsPerDb: aloneMs / count,
			localDiskPerDbKiB: ctx.usesKv ? disk / count / 1024 : null,
			violations: ctx.usesKv ? violations : 0,
		};
	},
};

// L: a cold open of a large database, then one point query (a B-tree lookup
// by INTEGER PRIMARY KEY) or one full scan (reads every page of the table).
const L_POINT = "SELECT id, k, payload FROM t WHERE id = ?";
const L_SCAN = "SELECT count(*), sum(length(payload)) FROM t";

/**
 * Resolves to what `promise` resolves to, or to `null` once `ms` have passed
 * (the promise is left running: the child process exits after the task).
 */
function withinBudget(promise, ms) {
	let timer;
	const expired = new Promise((resolve) => {
		timer = setTimeout(() => resolve(null), ms);
	});
	return Promise.race([promise, expired]).finally(() => clearTimeout(timer));
}

/**
 * L: lazy paging (issue 11). A prepared database (rows of ~300 bytes), its KV
 * image already in memory; timed from `open` to the result of one point query
 * (params.mode "point") or of one full scan ("scan"). KV calls and keys read
 * over the same span, and the local disk the open database uses, measured
 * after the query, before close. A task that has not finished within
 * params.budgetMs is abandoned and reported as skipped.
 */
WORKLOADS.L = async function L(ctx) {
	const { mode, imageRows, imageBytes, payloadBytes, budgetMs } = ctx.params;
	const kv = await ctx.imageKv(ctx.params.image);
	await ctx.backend.materialize("l", kv);
	const filesBefore = tempFiles();
	await settledRss(); // leave no garbage from loading the image to collect while timed
	const id = Math.ceil(imageRows / 2);
	const before = kv.counters();
	const start = now();
	const run = async () => {
		const db = await ctx.backend.open("l", kv);
		const rows = mode === "point" ? await db.query(L_POINT, [id]) : await db.query(L_SCAN);
		return { db, rows };
	};
	const done = await withinBudget(run(), budgetMs);
	if (done === null) return { skipped: `not done within ${budgetMs / 1000} s, abandoned` };
	const ms = now() - start;
	const spent = diffCounters(kv.counters(), before);
	const disk = localDiskBytes(filesBefore);
	const { db, rows } = done;
	if (mode === "point") {
		const row = rows[0];
		if (rows.length !== 1 || Number(row[0]) !== id || row[2].length !== payloadBytes)
			throw new Error(`L: the point query returned ${rows.length} row(s), id ${row?.[0]}, a payload of ${row?.[2]?.length} bytes`);
	} else {
		const [count, sum] = rows[0].map(Number);
		if (count !== imageRows || sum !== imageRows * payloadBytes) throw new Error(`L: the scan counted ${count} rows, ${sum} payload bytes`);
	}
	await db.close();
	return {
		ms,
		kvCalls: ctx.usesKv ? spent.totalCalls : null,
		kvKeysRead: ctx.usesKv ? spent.keysRead : null,
		localDiskMiB: ctx.usesKv ? disk / 2 ** 20 : null,
		localDiskPct: ctx.usesKv ? (100 * disk) / imageBytes : null,
		violations: ctx.usesKv ? spent.violations : 0,
	};
};

const LONG_QUERY = (n) => `WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < ${n}) SELECT count(*), sum(x) FROM c`;
const BIG_RESULT = (n) =>
	`WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < ${n}) SELECT x, x * 0.5, 'r' || x FROM c`;
const RUNAWAY = "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT count(*) FROM c";

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * The event loop's delay while `work()` runs: the longest gap between the
 * ticks of a 1 ms timer, less the 1 ms (a tick after the end counts, for
 * work that held the thread until it ended).
 */
async function eventLoopDelay(work) {
	let last = now();
	let maxGap = 0;
	const ticker = setInterval(() => {
		const t = now();
		maxGap = Math.max(maxGap, t - last);
		last = t;
	}, 1);
	try {
		await sleep(20);
		maxGap = 0;
		last = now();
		await work();
		await sleep(5);
	} finally {
		clearInterval(ticker);
	}
	return Math.max(0, maxGap - 1);
}

WORKLOADS.R = async function R(ctx) {
	// Responsiveness: database A runs one long CPU-bound query (~0.5 s on the
	// native engine) while database B runs point selects on the same
	// process's JS thread; the event loop's delay is sampled meanwhile.
	const a = await openDb(ctx, "ra", ctx.newKv());
	const b = await openDb(ctx, "rb", ctx.newKv());
	await b.exec(SCHEMA);
	await b.exec(bulkInsert("t", ctx.params.selectRows));
	const next = ids(ctx.params.selectRows);
	// Each select is its own event-loop turn, as requests to an actor are:
	// a loop of selects that resolve at once would never let timers (or a
	// result coming back from an engine thread) run.
	const select = async () => {
		await b.query(SELECT, [next()]);
		await new Promise((resolve) => setImmediate(resolve));
	};
	await timeBox(ctx.warmUpMs, null, select);
	const idle = await timeBox(ctx.timeMs / 2, null, select);
	let busyOps = 0;
	let count;
	let longMs;
	const eventLoopDelayMaxMs = await eventLoopDelay(async () => {
		const started = now();
		let done = false;
		const long = a.query(LONG_QUERY(ctx.params.longQueryRows)).finally(() => {
			done = true;
		});
		while (!done) {
			await select();
			busyOps++;
		}
		[[count]] = await long;
		longMs = now() - started;
	});
	if (Number(count) !== ctx.params.longQueryRows) throw new Error(`R: the long query counted ${count}`);
	await a.close();

	// The same while 16 databases (as many as engine threads run at once)
	// each run a long query, on a machine that may have fewer cores: only
	// where calls leave the JS thread (elsewhere it is the case above, 16
	// times over).
	let crowdDelayMs = null;
	let crowdRatio = null;
	if (ctx.backend.supports?.interrupt) {
		const crowd = [];
		for (let i = 0; i < 16; i++) crowd.push(await openDb(ctx, `rcrowd${i}`, ctx.newKv()));
		let crowdOps = 0;
		let crowdMs;
		crowdDelayMs = await eventLoopDelay(async () => {
			const started = now();
			let running = crowd.length;
			const longs = crowd.map((db) =>
				db.query(LONG_QUERY(ctx.params.longQueryRows / 4)).finally(() => {
					running--;
				}),
			);
			while (running > 0) {
				await select();
				crowdOps++;
			}
			for (const [[rows]] of await Promise.all(longs)) {
				if (Number(rows) !== ctx.params.longQueryRows / 4) throw new Error(`R: a crowd's query counted ${rows}`);
			}
			crowdMs = now() - started;
		});
		crowdRatio = crowdOps / (crowdMs / 1000) / (idle.ops / idle.seconds);
		for (const db of crowd) await db.close();
	}
	await b.close();

	// The end of a large transaction (of many quick inserts), and an export
	// of the file it made: how long each holds the JS thread at a stretch.
	const e = await openDb(ctx, "re", ctx.newKv());
	await e.exec("CREATE TABLE big(v BLOB)");
	await e.exec("BEGIN");
	const blob = new Uint8Array(64 * 1024).fill(7);
	for (let i = 0; i < ctx.params.commitMiB * 16; i++) await e.run("INSERT INTO big VALUES (?)", [blob]);
	const commitDelayMs = await eventLoopDelay(() => e.exec("COMMIT"));
	const [[rows]] = await e.query("SELECT count(*) FROM big");
	if (Number(rows) !== ctx.params.commitMiB * 16) throw new Error(`R: the large commit kept ${rows} rows`);
	const exportDelayMs = typeof e.export === "function" ? await eventLoopDelay(() => e.export()) : null;
	// A transaction that rewrites those pages: its commit replaces them (a
	// rollback journal of what it replaces goes first, where the KV needs one).
	await e.exec("BEGIN");
	await e.run("UPDATE big SET v = zeroblob(length(v))");
	const rewriteDelayMs = await eventLoopDelay(() => e.exec("COMMIT"));
	await e.close();

	// A query whose result is large (resultRows rows of 3 columns): how long
	// making it holds the JS thread at a stretch.
	const q = await openDb(ctx, "rq", ctx.newKv());
	let resultRows;
	const resultDelayMs = await eventLoopDelay(async () => {
		resultRows = await q.query(BIG_RESULT(ctx.params.resultRows));
	});
	if (resultRows.length !== ctx.params.resultRows || resultRows.at(-1)[2] !== `r${ctx.params.resultRows}`) {
		throw new Error(`R: the large result came with ${resultRows.length} rows`);
	}
	resultRows = null;
	await q.close();

	// A runaway query under timeoutMs: 200, and one stopped by interrupt().
	let timeoutMs = null;
	let interruptMs = null;
	if (ctx.backend.supports?.timeout) {
		const c = await ctx.backend.open("rc", ctx.newKv(), { timeoutMs: 200 });
		const t0 = now();
		await c.query(RUNAWAY).then(
			() => {
				throw new Error("R: the runaway query returned");
			},
			(error) => {
				if (error.code !== "SQLITE_INTERRUPT") throw error;
			},
		);
		timeoutMs = now() - t0;
		await c.query("SELECT 1"); // the next call works
		await c.close();
	}
	if (ctx.backend.supports?.interrupt) {
		const d = await ctx.backend.open("rd", ctx.newKv(), { timeoutMs: 0 });
		const running = d.query(RUNAWAY).catch((error) => error);
		await sleep(100);
		const t0 = now();
		d.interrupt();
		const error = await running;
		if (error?.code !== "SQLITE_INTERRUPT") throw new Error(`R: interrupt() gave ${error}`);
		interruptMs = now() - t0;
		await d.query("SELECT 1");
		await d.close();
	}
	const idleRate = idle.ops / idle.seconds;
	const busyRate = busyOps / (longMs / 1000);
	return {
		eventLoopDelayMaxMs,
		commitDelayMs,
		exportDelayMs,
		rewriteDelayMs,
		resultDelayMs,
		busyRatio: busyRate / idleRate,
		crowdDelayMs,
		crowdRatio,
		idleSelectsPerSec: idleRate,
		longQueryMs: longMs,
		timeoutMs,
		interruptMs,
	};
};

// Figures shown in the report, per workload: [key, label, unit, better].
const FIGURES = {
	W1: [
		["opsPerSec", "W1 autocommit insert", "ops/s", "higher"],
		["firstOpsPerSec", "W1 first 1,000, fresh process", "ops/s", "higher"],
		["kvCallsPerOp", "W1 KV calls per insert", "calls", "lower"],
		["kvBytesWrittenPerOp", "W1 KV bytes written per insert", "B", "lower"],
	],
	W2a: [
		["ms", "W2 10k rows, one statement", "ms", "lower"],
		["kvCalls", "W2 10k rows: KV calls", "calls", "lower"],
		["kvBytesWritten", "W2 10k rows: KV bytes written", "B", "lower"],
	],
	W2b: [
		["ms", "W2 1k runs in BEGIN/COMMIT", "ms", "lower"],
		["kvCalls", "W2 1k runs: KV calls", "calls", "lower"],
	],
	W2c: [
		["ms", "W2 1 MiB, 1,024 runs in BEGIN/COMMIT, steady", "ms", "lower"],
		["kvCalls", "W2 1 MiB in a transaction: KV calls", "calls", "lower"],
	],
	W3: [
		["opsPerSec", "W3 point select", "ops/s", "higher"],
		["firstOpsPerSec", "W3 first 1,000, fresh process", "ops/s", "higher"],
		["kvCallsPerOp", "W3 KV calls per select", "calls", "lower"],
	],
	W4: [
		["ms", "W4 cold open + 1 query", "ms", "lower"],
		["kvKeysRead", "W4 KV keys read", "keys", "lower"],
		["kvCalls", "W4 KV calls", "calls", "lower"],
		["rssDeltaMiB", "W4 RSS delta", "MiB", "lower"],
	],
	W5: [
		["opsPerSec", "W5 update on 10 MB db", "ops/s", "higher"],
		["kvCallsPerOp", "W5 KV calls per update", "calls", "lower"],
		["kvBytesWrittenPerOp", "W5 KV bytes written per update", "B", "lower"],
	],
	W6: [
		["opsPerSec", "W6 100 concurrent inserts", "ops/s", "higher"],
		["kvCallsPerOp", "W6 KV calls per insert", "calls", "lower"],
	],
	R: [
		["eventLoopDelayMaxMs", "R event-loop delay, other db's 0.5 s query", "ms", "lower"],
		["commitDelayMs", "R event-loop delay, COMMIT of 64 MB", "ms", "lower"],
		["exportDelayMs", "R event-loop delay, export() of it", "ms", "lower"],
		["rewriteDelayMs", "R event-loop delay, COMMIT rewriting it", "ms", "lower"],
		["resultDelayMs", "R event-loop delay, a 1M-row × 3 result", "ms", "lower"],
		["busyRatio", "R point selects during it / idle", "×", "higher"],
		["crowdDelayMs", "R event-loop delay, 16 other dbs' queries", "ms", "lower"],
		["crowdRatio", "R point selects during those / idle", "×", "higher"],
		["longQueryMs", "R the 0.5 s query itself", "ms", "lower"],
		["timeoutMs", "R runaway, timeoutMs 200: rejected after", "ms", "lower"],
		["interruptMs", "R interrupt(): rejected after", "ms", "lower"],
	],
	M: [
		["rssPerDbKiB", "M RSS per open database", "KiB", "lower"],
		["openMsPerDb", "M open + query per database", "ms", "lower"],
		["openCloseMsPerDb", "M open + query + close, one at a time", "ms", "lower"],
		["localDiskPerDbKiB", "M local disk per open database", "KiB", "lower"],
	],
	// L's rows are "L point <image>" and "L scan <image>": the figures with a
	// mode apply to that mode's rows only.
	L: [
		["ms", "L cold open + point query", "ms", "lower", "point"],
		["kvCalls", "L open + point query: KV calls", "calls", "lower", "point"],
		["kvKeysRead", "L open + point query: KV keys read", "keys", "lower", "point"],
		["localDiskMiB", "L open + point query: local disk", "MiB", "lower", "point"],
		["localDiskPct", "L local disk / database size", "%", "lower", "point"],
		["ms", "L cold open + full scan", "ms", "lower", "scan"],
		["kvCalls", "L open + full scan: KV calls", "calls", "lower", "scan"],
		["kvKeysRead", "L open + full scan: KV keys read", "keys", "lower", "scan"],
	],
};

module.exports = { WORKLOADS, FIGURES, SCHEMA, bulkInsert, median };
