// The same SQL text run again and again (the engines keep its prepared
// statement, and what they learnt of it): results stay those of a fresh run
// across schema changes, many distinct texts, calls finished on an engine
// thread, failed KV writes and errors.

import { test, describe } from "node:test";
import assert from "node:assert/strict";

import { SqliteError } from "../index.mjs";
import { createTestKv } from "./helpers/kv.mjs";
import { open, rows } from "./helpers/db.mjs";

/** A finite query that runs long enough (tens of ms or more) to leave the JS thread. */
const SLOW = (n = 300_000) =>
	`WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < ${n}) SELECT count(*), sum(x) FROM c`;

const isCode = (code) => (error) => error instanceof SqliteError && error.code === code;

describe("the same SQL text across calls", () => {
	// A cached statement is prepared again by SQLite at its first step after
	// a schema change: its columns were once read before that step, and came
	// out stale (both engines).
	test("follows schema changes between calls", async () => {
		const db = await open(createTestKv());
		await db.exec("CREATE TABLE t(id INTEGER PRIMARY KEY, a)");
		await db.run("INSERT INTO t VALUES (1, 'one')");
		const select = "SELECT * FROM t WHERE id = ?";
		const insert = "INSERT INTO t(id, a) VALUES (?, ?)";
		for (let i = 0; i < 3; i++) {
			assert.deepEqual(await db.query(select, [1]), { rows: [[1, "one"]], columns: ["id", "a"] });
		}
		await db.exec("ALTER TABLE t ADD COLUMN b DEFAULT 'bee'");
		assert.deepEqual(await db.query(select, [1]), { rows: [[1, "one", "bee"]], columns: ["id", "a", "b"] });
		await db.run(insert, [2, "two"]);
		await db.exec("DROP TABLE t; CREATE TABLE t(id INTEGER PRIMARY KEY, x, y, a)");
		assert.deepEqual(await db.query(select, [1]), { rows: [], columns: ["id", "x", "y", "a"] });
		await db.run(insert, [1, "uno"]);
		assert.deepEqual(await db.query(select, [1]), { rows: [[1, null, null, "uno"]], columns: ["id", "x", "y", "a"] });
		await db.exec("DROP TABLE t");
		await assert.rejects(db.query(select, [1]), (e) => isCode("SQLITE_ERROR")(e) && /no such table/.test(e.message));
		await assert.rejects(db.run(insert, [1, "x"]), isCode("SQLITE_ERROR"));
		await db.exec("CREATE TABLE t(a, id INTEGER PRIMARY KEY)");
		await db.run(insert, [7, "seven"]);
		assert.deepEqual(await rows(db, select, [7]), [["seven", 7]]);
		await db.close();
	});

	test("many distinct texts, beyond what is kept, interleaved with hot ones", async () => {
		const db = await open(createTestKv());
		await db.exec("CREATE TABLE t(id INTEGER PRIMARY KEY, v)");
		const hot = "SELECT count(*), coalesce(sum(v), 0) FROM t";
		let count = 0;
		let sum = 0;
		for (let round = 0; round < 3; round++) {
			for (let i = 0; i < 400; i++) {
				// Each text distinct; every text runs once per round.
				await db.run(`INSERT INTO t(v) VALUES (? + ${i})`, [round]);
				count++;
				sum += round + i;
				if (i % 50 === 0) assert.deepEqual(await rows(db, hot), [[count, sum]]);
				const [[v]] = await rows(db, `SELECT v FROM t WHERE id = ? AND ${i} = ${i}`, [count]);
				assert.equal(v, round + i);
			}
		}
		// Scripts of several statements, run again and again, run whole.
		const script = "INSERT INTO t(v) VALUES (1); INSERT INTO t(v) VALUES (2)";
		for (let i = 0; i < 4; i++) await db.exec(script);
		assert.deepEqual(await rows(db, hot), [[count + 8, sum + 12]]);
		const two = "SELECT 1 AS a; SELECT 2 AS b";
		for (let i = 0; i < 3; i++) assert.deepEqual(await db.query(two), { rows: [[1], [2]], columns: ["a"] });
		await db.close();
	});

	test("a statement finished on an engine thread gives what an inline run gives", async () => {
		const kv = createTestKv();
		const db = await open(kv);
		await db.exec("CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT)");
		const n = 300_000;
		for (let i = 0; i < 3; i++) assert.deepEqual(await rows(db, SLOW(n)), [[n, (n * (n + 1)) / 2]]);
		const fill = "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < ?) INSERT INTO t(v) SELECT 'r' || x FROM c";
		const update = "UPDATE t SET v = v || '+' WHERE id > ?";
		const light = "INSERT INTO t(v) VALUES (?)";
		for (let i = 0; i < 3; i++) {
			// A long write inside a transaction runs to its end on an engine
			// thread, the transaction still open; a quick one runs inline.
			await db.exec("BEGIN");
			assert.equal((await db.run(fill, [20_000])).changes, 20_000);
			assert.equal((await db.run(update, [0])).changes, 20_000 * (i + 1) + i);
			assert.equal((await db.run(light, ["light"])).changes, 1);
			assert.equal(db.inTransaction, true);
			await db.exec("COMMIT");
		}
		assert.deepEqual(await rows(db, "SELECT count(*), sum(v LIKE 'light%') FROM t"), [[60_003, 3]]);
		const copy = await open(kv.clone());
		assert.deepEqual(await rows(copy, "SELECT count(*), sum(length(v)) FROM t"), await rows(db, "SELECT count(*), sum(length(v)) FROM t"));
		await copy.close();
		await db.close();
	});

	test("errors, and a failed KV write that undoes a call", async () => {
		const kv = createTestKv();
		const db = await open(kv);
		await db.exec("CREATE TABLE t(id INTEGER PRIMARY KEY, v UNIQUE)");
		const insert = "INSERT INTO t(v) VALUES (?)";
		await db.run(insert, ["a"]);
		for (let i = 0; i < 3; i++) {
			await assert.rejects(db.run(insert, ["a"]), isCode("SQLITE_CONSTRAINT_UNIQUE"));
			await assert.rejects(db.run(insert, []), RangeError);
			await assert.rejects(db.run(insert, ["b", "c"]), RangeError);
		}
		kv.failWhen((call) => call.method === "putBatch" || call.method === "put");
		await assert.rejects(db.run(insert, ["lost"]), isCode("SQLITE_IOERR_WRITE"));
		kv.clearFaults();
		for (let i = 0; i < 3; i++) await db.run(insert, [`kept${i}`]);
		assert.deepEqual(await rows(db, "SELECT v FROM t ORDER BY id"), [["a"], ["kept0"], ["kept1"], ["kept2"]]);
		const copy = await open(kv.clone());
		assert.deepEqual(await rows(copy, "SELECT v FROM t ORDER BY id"), [["a"], ["kept0"], ["kept1"], ["kept2"]]);
		await copy.close();
		await db.close();
	});

	// The native engine is handed a text only when it differs from the last
	// call's: every way a call can end must leave the next one running its
	// own text.
	test("each call runs its own text, whatever the call before it did", async () => {
		const db = await open(createTestKv());
		await db.exec("CREATE TABLE t(id INTEGER PRIMARY KEY, v)");
		const a = "SELECT 'a', ?";
		const b = "SELECT 'b', ?";
		const endings = [
			() => db.query(b, [1]),
			() => db.query("SELECT 'b' FROM nowhere"),
			() => db.query(b, [1, 2]),
			() => db.query(b, [undefined]),
			() => db.query(b, [2n ** 70n]),
			() => db.query(b, { x: 1 }),
			() => db.query(b),
			() => db.query(SLOW(), []),
			() => db.exec("SELECT 'b'; SELECT nope"),
			() => db.query(""),
			() => db.run("INSERT INTO t(v) VALUES (?)", ["b"]),
		];
		for (const [i, ending] of endings.entries()) {
			assert.deepEqual(await rows(db, a, [i]), [["a", i]], `before ending ${i}`);
			await ending().catch(() => {});
			assert.deepEqual(await rows(db, a, [i]), [["a", i]], `after ending ${i}`);
			// The same text, in another string with the same characters.
			assert.deepEqual(await rows(db, ["SELECT 'a',", "?"].join(" "), [i]), [["a", i]]);
			await ending().catch(() => {});
			assert.deepEqual(await rows(db, `SELECT 'a', ?`, [i]), [["a", i]], `after ending ${i} twice`);
			// And the text of the ending, right after it.
			await ending().catch(() => {});
			assert.deepEqual(await rows(db, b, [i]), [["b", i]], `b after ending ${i}`);
		}
		// An empty text, twice, is still nothing to run.
		assert.deepEqual(await db.query(""), { rows: [], columns: [] });
		assert.deepEqual(await db.query(""), { rows: [], columns: [] });
		assert.deepEqual(await rows(db, b, [9]), [["b", 9]]);
		await db.close();
	});

	test("SQLite sees the whole text: whitespace it does not know is part of a name, or an error, at either end", async () => {
		// The statement cache once trimmed any Unicode whitespace from both
		// ends (as Rust's trim does), so "t\u3000" named table t.
		const db = await open(createTestKv());
		await db.exec(`CREATE TABLE t(v); INSERT INTO t VALUES ('t'); CREATE TABLE "t\u3000"(v); INSERT INTO "t\u3000" VALUES ('t+U+3000')`);
		for (let i = 0; i < 2; i++) {
			assert.deepEqual(await rows(db, "SELECT v FROM t\u3000"), [["t+U+3000"]]);
			assert.deepEqual(await rows(db, "SELECT v FROM t\u3000;"), [["t+U+3000"]]);
			assert.deepEqual(await rows(db, "SELECT v FROM t"), [["t"]]);
			assert.deepEqual((await db.query("SELECT 1 AS x\u00a0")).columns, ["x\u00a0"]);
			await assert.rejects(db.query("SELECT 1\u000b"), (e) => isCode("SQLITE_ERROR")(e) && /unrecognized token/.test(e.message));
			await assert.rejects(db.query("\u3000SELECT 1"), (e) => isCode("SQLITE_ERROR")(e) && /syntax error/.test(e.message));
			await assert.rejects(db.query("SELECT 1;\u2028"), (e) => isCode("SQLITE_ERROR")(e) && /syntax error/.test(e.message));
			// SQLite's own whitespace, at both ends, is nothing.
			assert.deepEqual(await rows(db, " \t\r\n\f SELECT v FROM t \t\r\n\f"), [["t"]]);
			assert.deepEqual(await rows(db, "\nSELECT v FROM t; \f\n"), [["t"]]);
		}
		await db.close();
	});
});

describe("scripts", () => {
	test("a script of 60,000 statements runs, in exec, query and run alike", async () => {
		// The native engine once prepared a script whole to learn that it was
		// not one statement, a stack frame per statement: 40,000 crashed the
		// process.
		const db = await open(createTestKv());
		await db.exec("CREATE TABLE t(v)");
		const n = 60_000;
		await db.exec(`BEGIN; ${"INSERT INTO t VALUES (1);".repeat(n)} COMMIT`);
		assert.deepEqual(await rows(db, "SELECT count(*), sum(v) FROM t"), [[n, n]]);
		const selects = "SELECT 2;".repeat(n);
		const all = await rows(db, selects);
		assert.equal(all.length, n);
		assert.deepEqual(all[n - 1], [2]);
		assert.deepEqual(await db.run(`${"SELECT 1;".repeat(n)} INSERT INTO t VALUES (5)`), { changes: 1, lastInsertRowid: n + 1 });
		// A statement with a ";" inside a literal is one statement all the same.
		assert.deepEqual(await rows(db, "SELECT 'a;b', ?", [3]), [["a;b", 3]]);
		assert.deepEqual(await rows(db, "SELECT 'a;b', ?;", [4]), [["a;b", 4]]);
		await db.close();
	});

	test("a pragma in a script takes effect when its turn comes, not before the statements ahead of it", async () => {
		// SQLite applies some pragmas as it compiles them: a script is
		// compiled a statement at a time, each once the one before has run.
		const db = await open(createTestKv());
		await db.exec("CREATE TABLE t(v)");
		await db.exec("INSERT INTO t VALUES (1); PRAGMA query_only = 1");
		await assert.rejects(db.run("INSERT INTO t VALUES (2)"), { code: "SQLITE_READONLY" });
		await db.exec("PRAGMA query_only = 0");
		assert.deepEqual(await rows(db, "SELECT v FROM t"), [[1]]);
		await db.close();
	});
});
