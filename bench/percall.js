"use strict";

// Per-call overhead micro-benchmark (issue 11): the cost of one awaited call
// on one database in steady state, this package's native (or WASM) engine on
// the benchmark's in-memory KV at no latency, against better-sqlite3 in
// memory behind the same async wrapper as in backends/better-sqlite3.js.
//
//   node bench/percall.js [--calls N] [--rounds R] [--backends native,wasm,bs3-mem] [--cases select,insert,tx] [--cpu]
//
// Cases: `select` (point select by primary key over 1,000 rows, W3),
// `insert` (autocommit insert, W1), `tx` (1,024 inserts of 1 KiB in one
// transaction, W2b-like), `engine` (the native engine's execute() alone,
// no Database, no persistence: what the N-API crossing and SQLite cost),
// `engine-insert` (the native engine's side of an autocommit insert alone:
// execute(), takeDelta() into a slab, ack(), one await), `kv-put` (this
// KV's putBatch of one 4 KiB chunk alone, awaited), `layer-insert` and
// `layer-tx` (the JS layer alone, lib/database.js and lib/persist.js over a
// stub engine that returns at once, on this KV: an autocommit write of one
// 4 KiB page, and a run inside a transaction; run them under `node
// --no-opt` for the tier a fresh process's first calls run in).
// Prints µs per call (the best round; rounds alternate between backends)
// and the ratio to bs3-mem. Run it
// under `--cpu-prof` to see where a call's time goes.

const { BenchKv } = require("./kv");
const { backendById } = require("./backends");
const { SCHEMA, bulkInsert } = require("./workloads");

const INSERT = "INSERT INTO t (k, v) VALUES (?, ?)";
const SELECT = "SELECT id, k, v FROM t WHERE id = ?";

function arg(name, fallback) {
	const i = process.argv.indexOf(`--${name}`);
	return i === -1 ? fallback : process.argv[i + 1];
}

const calls = Number(arg("calls", 200_000));
// --cpu: CPU time (all threads) instead of wall time, steadier on a busy machine.
const cpuTime = process.argv.includes("--cpu");
const rounds = Number(arg("rounds", 3));
const backendIds = arg("backends", "native,bs3-mem").split(",");
const cases = arg("cases", "select,insert,tx").split(",");

const value = (i) => `${i}:`.padEnd(100, "abcdefghij");
const kib = (i) => `${i}:`.padEnd(1024, "abcdefghij");

const CASES = {
	async select(db, timer) {
		await db.exec(SCHEMA);
		await db.run(bulkInsert("t", 1000));
		let x = 0x9e3779b9;
		timer.start();
		for (let i = 0; i < calls; i++) {
			x ^= x << 13;
			x >>>= 0;
			x ^= x >>> 17;
			x ^= x << 5;
			x >>>= 0;
			const rows = await db.query(SELECT, [1 + (x % 1000)]);
			if (rows.length !== 1) throw new Error("expected one row");
		}
		return calls;
	},
	async insert(db, timer) {
		await db.exec(SCHEMA);
		timer.start();
		for (let i = 0; i < calls; i++) await db.run(INSERT, [i, value(i)]);
		return calls;
	},
	async tx(db, timer) {
		await db.exec(SCHEMA);
		const reps = Math.max(1, Math.round(calls / 1024));
		timer.start();
		for (let rep = 0; rep < reps; rep++) {
			await db.exec("BEGIN");
			for (let n = 0; n < 1024; n++) await db.run(INSERT, [n, kib(n)]);
			await db.exec("COMMIT");
		}
		return reps * 1026;
	},
	"layer-insert": (_db, timer, backend) => layer(timer, backend, true),
	"layer-tx": (_db, timer, backend) => layer(timer, backend, false),
	async engine(_db, timer, backend) {
		if (backend.id !== "native") return 0;
		const { NativeEngine } = require("../lib/native.js");
		const engine = new NativeEngine(require("../binding.js"));
		engine.open(0, null);
		engine.execute(SCHEMA, null, null, false);
		engine.execute(bulkInsert("t", 1000), null, null, false);
		timer.start();
		for (let i = 0; i < calls; i++) engine.execute(SELECT, [1 + (i % 1000)], null, true);
		engine.close();
		return calls;
	},
	async "engine-insert"(_db, timer, backend) {
		if (backend.id !== "native") return 0;
		const { NativeEngine } = require("../lib/native.js");
		const { NOTHING_PENDING } = require("../lib/engines.js");
		const engine = new NativeEngine(require("../binding.js"));
		engine.open(0, null);
		engine.execute(SCHEMA, null, null, false);
		// As lib/persist.js takes a delta: into a 64 KiB slab, a new one when
		// it is full (the deltas here are one chunk).
		const meta = new Float64Array(130);
		const status = new Float64Array(3);
		let slab = new Uint8Array(64 * 1024);
		let at = 0;
		timer.start();
		for (let i = 0; i < calls; i++) {
			engine.execute(INSERT, [i, value(i)], null, false, status);
			if (slab.length - at < 4096) {
				slab = new Uint8Array(64 * 1024);
				at = 0;
			}
			if (engine.takeDelta(slab, at, meta) === NOTHING_PENDING) throw new Error("expected a delta");
			at += meta[3];
			engine.ack();
			await null;
		}
		engine.close();
		return calls;
	},
	async "kv-put"(_db, timer, backend) {
		if (backend.id !== "native") return 0;
		const kv = new BenchKv();
		const page = new Uint8Array(4096).fill(7);
		const key = (i) => Uint8Array.of(8, 1, 1, 0, 0, 0, (i >>> 8) & 3, i & 0xff);
		timer.start();
		for (let i = 0; i < calls; i++) await kv.putBatch([[key(i), page.subarray(0)]]);
		return calls;
	},
};

/**
 * `calls` runs on a Database over a stub engine (see the `layer-` cases):
 * each leaves a delta of one 4 KiB page to write (`writes`), or none, as
 * inside a transaction.
 */
async function layer(timer, backend, writes) {
	if (backend.id !== "native") return 0;
	const { Database } = require("../lib/database.js");
	const { Persistence, resolveLimits } = require("../lib/persist.js");
	const { NOTHING_PENDING, TOO_SMALL } = require("../lib/engines.js");
	const page = new Uint8Array(4096).fill(7);
	let pending = false;
	// [changes, lastInsertRowid, state]: state 3 is no transaction open and a delta to write.
	const engine = {
		backend: "stub",
		execute(_sql, _positional, _named, _collect, status) {
			status[0] = 1;
			status[1] = 1;
			status[2] = writes ? 3 : 0;
			pending = writes;
			return null;
		},
		takeDelta(slab, at, meta) {
			if (!pending) return NOTHING_PENDING;
			if (slab.length - at < page.length) {
				meta[0] = page.length;
				meta[1] = 4;
				return TOO_SMALL;
			}
			slab.set(page, at);
			meta.set([2 * page.length, 2 * page.length, 1, page.length]);
			return 1;
		},
		ack() {
			pending = false;
		},
		isAutocommit: () => writes,
		lastCallChanged: () => false,
		restore() {},
		close() {},
	};
	const db = new Database(engine, new Persistence(new BenchKv(), resolveLimits(), engine), "layer", null);
	timer.start();
	for (let i = 0; i < calls; i++) await db.run(INSERT, [i, value(i)]);
	return calls;
}

/** µs per call from start() to stop(calls), wall or CPU time. */
class Timer {
	#wall = 0;
	#cpu = null;
	start() {
		this.#wall = performance.now();
		this.#cpu = process.cpuUsage();
	}
	stop(calls) {
		if (calls === 0) return Number.NaN;
		if (cpuTime) {
			const used = process.cpuUsage(this.#cpu);
			return (used.user + used.system) / calls;
		}
		return ((performance.now() - this.#wall) * 1000) / calls;
	}
}

async function main() {
	// Rounds alternate between the backends, and the best round counts: on a
	// busy machine, that is the one least disturbed.
	const created = [];
	for (const id of backendIds) {
		const entry = backendById(id);
		created.push({ id, entry, backend: await entry.create() });
	}
	const table = {};
	for (const name of cases) {
		table[name] = {};
		for (let r = 0; r < rounds; r++) {
			for (const { id, entry, backend } of created) {
				const kv = new BenchKv();
				const db = await backend.open(`percall-${name}-${r}`, kv);
				const timer = new Timer();
				const n = await CASES[name](db, timer, entry);
				const us = timer.stop(n);
				await db.close();
				table[name][id] = Math.min(table[name][id] ?? Number.POSITIVE_INFINITY, us);
			}
		}
	}
	for (const { backend } of created) await backend.destroy?.();
	for (const name of cases) {
		const row = table[name];
		const parts = backendIds.map((id) => `${id} ${row[id].toFixed(2)} µs`);
		const ratio = row["bs3-mem"] ? `  ratio ${(row["bs3-mem"] / row[backendIds[0]]).toFixed(2)}×` : "";
		console.log(`${name.padEnd(7)} ${parts.join("  ")}${ratio}`);
	}
}

main().catch((error) => {
	console.error(error);
	process.exit(1);
});
