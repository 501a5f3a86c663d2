// Fuzzing: random SQL fragments, random parameters and random KV faults.
// Every call must settle (no hang, no crash), errors must be the documented
// kinds, and after each step the database reopened from the KV must equal the
// live one. Fixed seed by default; FUZZ_SEED and FUZZ_STEPS for longer runs.

import { test, describe } from "node:test";
import assert from "node:assert/strict";

import { SqliteError } from "../index.mjs";
import { createTestKv } from "./helpers/kv.mjs";
import { open, rows, snapshot } from "./helpers/db.mjs";
import { prng } from "./helpers/random.mjs";

const SEED = Number(process.env.FUZZ_SEED ?? 20261125);
const STEPS = Number(process.env.FUZZ_STEPS ?? 10_000);
const LIMITS = { maxKeysPerCall: 16, maxBatchBytes: 128 * 1024 };

const random = prng(SEED);
const int = (n) => Math.floor(random() * n);
const pick = (list) => list[int(list.length)];

const TABLES = ["a", "b", "c"];

function randomValue() {
	if (random() < 0.1) return pick([undefined, { not: "bindable" }, 2n ** 64n, Symbol("s")]);
	return pick([
		() => int(1000) - 500,
		() => random() * 1e6,
		() => BigInt(int(1e9)) * 10_000_000_000n,
		() => pick(["", "x", "héllo", "a\0b", "'; DROP TABLE a; --"]),
		() => new Uint8Array(int(3) === 0 ? 0 : int(9000)).fill(int(256)),
		() => null,
		() => random() < 0.5,
	])();
}

function randomCall() {
	const t = pick(TABLES);
	// [weight, fragment]
	const fragments = [
		() => ["exec", `CREATE TABLE IF NOT EXISTS ${t}(id INTEGER PRIMARY KEY, k TEXT UNIQUE, v)`],
		() => ["run", `INSERT INTO ${t}(k, v) VALUES (?, ?)`, [String(int(50)), randomValue()]],
		() => ["run", `INSERT INTO ${t}(k, v) VALUES (?, ?)`, [String(int(5000)), randomValue()]],
		() => ["run", `INSERT INTO ${t}(k, v) VALUES (?, ?)`, [String(int(5000)), randomValue()]],
		() => ["run", `INSERT OR REPLACE INTO ${t}(k, v) VALUES (:k, :v)`, { k: String(int(50)), ":v": randomValue() }],
		() => ["run", `UPDATE ${t} SET v = ? WHERE id % ? = 0`, [randomValue(), 1 + int(5)]],
		() => ["run", `DELETE FROM ${t} WHERE id > ?`, [int(60)]],
		() => ["query", `SELECT * FROM ${t} WHERE k = @k`, { k: String(int(50)) }],
		() => ["query", `SELECT count(*), sum(length(v)) FROM ${t}`],
		() => ["run", `INSERT INTO ${t}(v) SELECT randomblob(${int(4) * 3000}) FROM ${pick(TABLES)} LIMIT ${int(40)}`],
		() => ["exec", "BEGIN"],
		() => ["exec", "COMMIT"],
		() => ["exec", "ROLLBACK"],
		() => ["exec", `SAVEPOINT s${int(2)}`],
		() => ["exec", `ROLLBACK TO s${int(2)}`],
		() => ["exec", "VACUUM"],
		() => ["exec", `CREATE INDEX IF NOT EXISTS ${t}_v ON ${t}(v)`],
		() =>
			random() < 0.2
				? ["exec", `DROP TABLE IF EXISTS ${t}`]
				: ["exec", `CREATE TABLE IF NOT EXISTS ${t}(id INTEGER PRIMARY KEY, k TEXT UNIQUE, v)`],
		() => ["exec", pick(["SELEC 1", "INSERT INTO", "CREATE TABLE", "SELECT * FROM nowhere", ")(", ""])],
		() => ["exec", pick(["PRAGMA journal_mode = WAL", "PRAGMA page_size = 1024", "ATTACH '/tmp/x.db' AS x", "VACUUM INTO '/tmp/y.db'"])],
		() => ["query", "SELECT ?, ?", [randomValue(), randomValue()]],
		() => ["query", "SELECT ?", pick([[], [1, 2], { a: 1 }])],
	];
	return pick(fragments)();
}

/** Settles `promise` or fails the test after `ms`: a call must never hang. */
function settleWithin(promise, ms, what) {
	let timer;
	const timeout = new Promise((_, reject) => {
		timer = setTimeout(() => reject(new Error(`hang: ${what} did not settle in ${ms} ms`)), ms);
	});
	return Promise.race([
		promise.then(
			(v) => ({ ok: true, v }),
			(e) => ({ ok: false, e }),
		),
		timeout,
	]).finally(() => clearTimeout(timer));
}

describe("fuzz", () => {
	test(`random SQL, parameters and KV faults (seed ${SEED}, ${STEPS} steps)`, { timeout: 600_000 }, async () => {
		const kv = createTestKv({ limits: LIMITS });
		let db = await open(kv, { limits: LIMITS });
		for (const t of TABLES) await db.exec(`CREATE TABLE ${t}(id INTEGER PRIMARY KEY, k TEXT UNIQUE, v)`);
		let faults = 0;
		const tally = { ok: 0, failed: 0 };
		for (let step = 0; step < STEPS; step++) {
			const failing = random() < 0.04;
			if (failing) {
				const after = random() < 0.7 ? 0 : int(4);
				let seen = 0;
				const sync = random() < 0.5;
				kv.failWhen(() => seen++ === after, { sync });
			} else {
				kv.clearFaults();
			}
			const [method, sql, params] = randomCall();
			const outcome = await settleWithin(db[method](sql, params), 30_000, `${method}(${sql})`);
			tally[outcome.ok ? "ok" : "failed"]++;
			if (!outcome.ok) {
				const e = outcome.e;
				assert.ok(
					e instanceof SqliteError || e instanceof TypeError || e instanceof RangeError,
					`step ${step}: ${method}(${sql}) failed with ${e?.name}: ${e?.message}`,
				);
				if (e instanceof SqliteError && e.cause !== undefined) faults++;
			}
			kv.clearFaults();
			if (!db.inTransaction && (failing || step % 25 === 0)) {
				const live = await snapshot(db);
				const reopened = await open(kv.clone(), { limits: LIMITS });
				assert.deepEqual(await snapshot(reopened), live, `step ${step}: the KV differs from the live database`);
				assert.deepEqual(await rows(reopened, "PRAGMA integrity_check"), [["ok"]]);
				await reopened.close();
			}
			if (step % 500 === 499) {
				// Close and reopen from the KV now and then.
				if (db.inTransaction) await db.exec("ROLLBACK");
				await db.close();
				db = await open(kv, { limits: LIMITS });
			}
		}
		await db.close();
		assert.ok(faults > 0, "no KV fault reached a call");
		assert.ok(tally.ok > STEPS / 3, `only ${tally.ok} of ${STEPS} calls succeeded`);
		if (process.env.FUZZ_VERBOSE) console.log({ ...tally, faults, size: await kv.inner.size });
	});
});
