// The PostgreSQL KV store (@rivetkit/sqlite-vfs/kv/postgres) on a real,
// throwaway PostgreSQL server (a Unix socket only; see helpers/postgres.mjs):
// the actor KV contract, one SQL statement per KV call, and the server
// SIGKILLed in the middle of commits, restarted, and the database recovering.
// Skipped, with the reason, where no PostgreSQL server binaries are installed.

import { describe, test, before, after } from "node:test";
import assert from "node:assert/strict";
import { createRequire } from "node:module";

import { open, SqliteError, createMemoryKv } from "../../index.mjs";
import { kvContract } from "../helpers/kv-contract.mjs";
import { storeUnavailable } from "../helpers/stores.mjs";
import { startPostgres } from "../helpers/postgres.mjs";
import { dryRun, state, BIG_STEP, SMALL_STEP, STEPS } from "../helpers/crash-workload.mjs";
import { BACKEND } from "../helpers/db.mjs";

const require = createRequire(import.meta.url);
const SKIP = storeUnavailable("postgres");
if (SKIP) console.log(`PostgreSQL KV tests skipped: ${SKIP}`);
// The crash workload's states and KV writes per step, from a run in memory.
const { states, writes } = SKIP ? { states: [], writes: [] } : await dryRun();

describe("PostgreSQL KV store", { skip: SKIP ?? false }, () => {
	const pg = SKIP ? null : require("pg");
	const { createPostgresKv, migrate } = SKIP ? {} : require("@rivetkit/sqlite-vfs/kv/postgres");
	let cluster;
	let pool;
	before(async () => {
		cluster = await startPostgres();
		pool = new pg.Pool({ ...cluster.connection(), max: 4 });
		// Idle connections die with the server; the pool reports it here.
		pool.on("error", () => {});
	});
	after(async () => {
		await pool?.end();
		await cluster?.stop();
	});

	describe("the actor KV contract", () => {
		kvContract({ make: (actor, options) => createPostgresKv(pool, actor, options) });
	});

	test("one SQL statement per KV call; the table is created on first use, or by migrate()", async () => {
		const queries = [];
		const counting = {
			query: (sql, params) => {
				queries.push(sql);
				return pool.query(sql, params);
			},
		};
		const kv = createPostgresKv(counting, "counted", { table: "public.counted_kv" });
		assert.equal(kv.actorId, "counted");
		assert.equal(kv.limits.maxKeysPerCall, 128);
		await kv.putBatch([
			[Uint8Array.of(1), Uint8Array.of(1)],
			[Uint8Array.of(2), Uint8Array.of(2)],
		]);
		// The first call creates the tables, then takes the actor over.
		assert.match(queries[0], /^CREATE TABLE IF NOT EXISTS "public"\."counted_kv"/);
		assert.match(queries[1], /^CREATE TABLE IF NOT EXISTS "public"\."sqlite_vfs_owners"/);
		assert.match(queries[2], /^INSERT INTO "public"\."sqlite_vfs_owners"/);
		assert.equal(queries.length, 4);
		queries.length = 0;
		await kv.putBatch([
			[Uint8Array.of(3), Uint8Array.of(3)],
			[Uint8Array.of(1), Uint8Array.of(9)],
		]);
		await kv.getBatch([Uint8Array.of(1), Uint8Array.of(2), Uint8Array.of(5)]);
		await kv.deleteBatch([Uint8Array.of(1), Uint8Array.of(2)]);
		assert.deepEqual(
			queries.map((sql) => sql.match(/changed AS \((INSERT|DELETE)/)?.[1] ?? sql.split(" ")[0]),
			["INSERT", "SELECT", "DELETE"],
		);

		await migrate(pool, { table: "migrated_kv" });
		await migrate(pool, { table: "migrated_kv" });
		const unmigrated = createPostgresKv(pool, "a", { table: "missing_kv", migrate: false });
		await assert.rejects(unmigrated.get(Uint8Array.of(1)), (error) => error.code === "42P01");
		assert.throws(() => createPostgresKv(pool, "a", { table: 'x"; DROP TABLE y; --' }), TypeError);
		assert.throws(() => createPostgresKv(pool, 5), TypeError);
		assert.throws(() => createPostgresKv(pool, "a\0b"), TypeError);
		assert.throws(() => createPostgresKv({}, "a"), TypeError);
		assert.throws(() => createPostgresKv(pool, "a", { limits: { maxKeysPerCall: 40000 } }), RangeError);
		assert.throws(() => createPostgresKv(pool, "a", { limits: null }), { name: "TypeError", message: /limits must be an object/ });
		await assert.rejects(migrate(pool, null), TypeError);
	});

	test("ids and table names PostgreSQL would merge or refuse are refused up front", async () => {
		// Lone surrogates all become U+FFFD in UTF-8: two actors would share keys.
		for (const actor of ["tenant\uD800", "tenant\uDBFF"]) {
			assert.throws(() => createPostgresKv(pool, actor), { name: "TypeError", message: /lone surrogate/ });
		}
		// An id past PostgreSQL's index row limit (with a 2 KiB key) failed every write.
		assert.throws(() => createPostgresKv(pool, "é".repeat(257)), RangeError);
		const longest = createPostgresKv(pool, "é".repeat(256), { table: "long_ids_kv" });
		const longKey = new Uint8Array(2048).fill(0xab);
		await longest.putBatch([[longKey, Uint8Array.of(1)]]);
		assert.deepEqual([...(await longest.get(longKey))], [1]);
		// PostgreSQL cuts names to 63 bytes: two long names would be one table.
		assert.throws(() => createPostgresKv(pool, "a", { table: `${"x".repeat(63)}_a` }), RangeError);
		assert.doesNotThrow(() => createPostgresKv(pool, "a", { table: `public.${"x".repeat(63)}` }));
	});

	test("a table dropped while in use is created again by the next call; concurrent writers do not deadlock", async () => {
		const kv = createPostgresKv(pool, "dropped", { table: "dropped_kv" });
		await kv.put(Uint8Array.of(1), Uint8Array.of(1));
		await pool.query('DROP TABLE "dropped_kv"');
		await assert.rejects(kv.get(Uint8Array.of(1)), (error) => error.code === "42P01");
		assert.equal(await kv.get(Uint8Array.of(1)), null);
		await kv.put(Uint8Array.of(2), Uint8Array.of(2));
		assert.deepEqual([...(await kv.get(Uint8Array.of(2)))], [2]);
		// Two actors' KVs writing keys in opposite orders at once.
		const a = createPostgresKv(pool, "racing-a");
		const b = createPostgresKv(pool, "racing-b");
		const keys = Array.from({ length: 64 }, (_, i) => Uint8Array.of(i));
		for (let round = 0; round < 20; round++) {
			await Promise.all([
				a.putBatch(keys.map((key) => [key, Uint8Array.of(round, 1)])),
				b.putBatch([...keys].reverse().map((key) => [key, Uint8Array.of(round, 2)])),
			]);
			for (const [kv, who] of [
				[a, 1],
				[b, 2],
			]) {
				assert.deepEqual(
					(await kv.getBatch(keys)).map((v) => [...v]),
					keys.map(() => [round, who]),
				);
			}
		}
	});

	test("a KV takes its actor over at its first call: the previous one's writes apply nothing, even one under way", async () => {
		const kv = createPostgresKv(pool, "moved", { table: "moved_kv" });
		const first = await open("moved", kv, { backend: BACKEND });
		await first.exec("CREATE TABLE t(v); INSERT INTO t VALUES ('first')");
		// A write of the first host held up (by a lock on the metadata row it
		// upserts) when the actor moves: PostgreSQL would carry it out even if
		// its client were gone. The new host's open waits for it, then sees it.
		const blocker = await pool.connect();
		await blocker.query("BEGIN");
		await blocker.query(`SELECT 1 FROM moved_kv WHERE actor = 'moved' FOR UPDATE`);
		const late = first.run("INSERT INTO t VALUES ('late')");
		await new Promise((resolve) => setTimeout(resolve, 100));
		const secondKv = createPostgresKv(pool, "moved", { table: "moved_kv" });
		const opening = open("moved", secondKv, { backend: BACKEND });
		await new Promise((resolve) => setTimeout(resolve, 100));
		await blocker.query("COMMIT");
		blocker.release();
		await late;
		const second = await opening;
		assert.deepEqual((await second.query("SELECT v FROM t ORDER BY rowid")).rows, [["first"], ["late"]]);
		// The first host's writes are refused from now on, and apply nothing.
		const refused = await first.run("INSERT INTO t VALUES ('stale')").then(
			() => null,
			(error) => error,
		);
		assert.ok(refused instanceof SqliteError, String(refused));
		assert.equal(refused.code, "SQLITE_IOERR_WRITE");
		assert.equal(refused.cause?.code, "ERR_SQLITE_KV_FENCED");
		await assert.rejects(kv.putBatch([[Uint8Array.of(1), Uint8Array.of(1)]]), { code: "ERR_SQLITE_KV_FENCED" });
		await assert.rejects(kv.deleteBatch([Uint8Array.of(1)]), { code: "ERR_SQLITE_KV_FENCED" });
		await second.run("INSERT INTO t VALUES ('second')");
		assert.deepEqual((await second.query("PRAGMA integrity_check")).rows, [["ok"]]);
		await second.close();
		await first.close().catch(() => {});
		const third = await open("moved", createPostgresKv(pool, "moved", { table: "moved_kv" }), { backend: BACKEND });
		assert.deepEqual((await third.query("SELECT v FROM t ORDER BY rowid")).rows, [["first"], ["late"], ["second"]]);
		await third.close();
	});

	test("open() with the server down rejects with SQLITE_IOERR_READ and the driver's error as cause", async () => {
		await cluster.kill();
		try {
			const error = await open("down", createPostgresKv(pool, "down"), { backend: BACKEND }).then(
				() => null,
				(e) => e,
			);
			assert.ok(error instanceof SqliteError, String(error));
			assert.equal(error.code, "SQLITE_IOERR_READ");
			assert.ok(error.cause instanceof Error);
		} finally {
			await cluster.start();
		}
	});

	describe("the server killed (SIGKILL) in the middle of a commit", () => {
		// Statements on this table take 300 ms on the server (a statement-level
		// trigger sleeps), so that a kill 100 ms into an upsert lands while its
		// transaction is open on the server.
		const SLOW = "slow_kv";
		before(async () => {
			await migrate(pool, { table: SLOW });
			await pool.query(
				"CREATE OR REPLACE FUNCTION slow_statement() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN PERFORM pg_sleep(0.3); RETURN NULL; END $$",
			);
			await pool.query(`CREATE TRIGGER slow BEFORE INSERT ON ${SLOW} FOR EACH STATEMENT EXECUTE FUNCTION slow_statement()`);
		});

		/**
		 * The state of `actor`'s database as the table holds it, opened on a
		 * copy of its rows (entries() takes no ownership: the live database
		 * goes on writing).
		 */
		async function reopened(actor, table) {
			const copy = createMemoryKv();
			for (const [key, value] of await createPostgresKv(pool, actor, { table }).entries()) await copy.put(key, value);
			const db = await open(actor, copy, { backend: BACKEND });
			try {
				return await state(db);
			} finally {
				await db.close();
			}
		}

		/**
		 * Runs the workload up to `step`, kills the server at the `killAt`-th KV
		 * write of that step (`when`: "sent", as the call starts, before it
		 * reaches the server; "statement", 100 ms into the statement, while its
		 * transaction is open on the server; "resolved", once the step
		 * resolved), restarts it, and checks that the KV holds `expect` ("before"
		 * or "after" the step), and that the live database, still open, writes
		 * again once the server is back.
		 */
		async function crashDuring(t, step, killAt, when, expect) {
			const table = when === "statement" ? SLOW : undefined;
			const actor = `crash-${step}-${killAt}-${when}`;
			const real = createPostgresKv(pool, actor, { table });
			let armed = false;
			let writes = 0;
			let killed = null;
			const kv = Object.create(real);
			for (const method of ["put", "putBatch", "deleteBatch"]) {
				kv[method] = (arg, value) => {
					const call = real[method](arg, value);
					if (armed && ++writes === killAt) {
						if (when === "sent") killed = cluster.kill();
						else if (when === "statement") killed = new Promise((resolve) => setTimeout(resolve, 100)).then(() => cluster.kill());
					}
					return call;
				};
			}
			const db = await open(actor, kv, { backend: BACKEND });
			for (let i = 0; i < step; i++) await db.exec(STEPS[i]);
			armed = when !== "resolved";
			const error = await db.exec(STEPS[step]).then(
				() => null,
				(e) => e,
			);
			armed = false;
			if (when === "resolved") killed = cluster.kill();
			assert.ok(killed, `the step made at least ${killAt} KV writes`);
			await killed;
			if (when === "resolved") {
				assert.equal(error, null);
			} else {
				assert.ok(error instanceof SqliteError, `the call rejects: ${error}`);
				assert.match(error.code, /^SQLITE_IOERR_/);
				assert.ok(error.cause instanceof Error, "the driver's error is the cause");
				t.diagnostic?.(`${error.code}: ${error.message}`);
			}
			await cluster.start();
			assert.equal(await reopened(actor, table), states[expect === "before" ? step : step + 1], `reopens ${expect} the commit`);
			// The live database recovers once the server is back.
			await db.run("INSERT INTO t(v) VALUES ('after the restart')");
			const live = await state(db);
			await db.close();
			assert.match(live, /after the restart/);
			assert.equal(await reopened(actor, table), live);
		}

		const big = writes[BIG_STEP];
		test("the journaled commit makes several KV writes, the last its commit point", () => assert.ok(big >= 4, String(big)));
		test("a journaled commit (> 976 KiB): the server gone as KV write 1 starts", (t) => crashDuring(t, BIG_STEP, 1, "sent", "before"));
		test("a journaled commit: killed inside the transaction of KV write 2", (t) => crashDuring(t, BIG_STEP, 2, "statement", "before"));
		test(`a journaled commit: killed inside the transaction of KV write ${big - 1}, the last before the commit point`, (t) =>
			crashDuring(t, BIG_STEP, big - 1, "statement", "before"));
		test(`a journaled commit: the server gone as KV write ${big}, the commit point, starts`, (t) =>
			crashDuring(t, BIG_STEP, big, "sent", "before"));
		test("a one-row commit: killed inside the transaction of its KV write", (t) => crashDuring(t, SMALL_STEP, 1, "statement", "before"));
		test("a one-row commit: killed right after it resolved, it is durable", (t) => crashDuring(t, SMALL_STEP, 1, "resolved", "after"));
	});
});
