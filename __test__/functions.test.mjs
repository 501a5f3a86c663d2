// The functions of SQLite's contrib extension-functions.c that 2.2.1 had
// (crates/engine/src/functions.rs, lib/wasm/functions.js): the same values,
// of the same types, and the same errors as 2.2.1, case by case.

import { test, describe, before, after } from "node:test";
import assert from "node:assert/strict";
import { SqliteVfs as OldVfs } from "sqlite-vfs-2.2.1";

import { createTestKv } from "./helpers/kv.mjs";
import { open, rows } from "./helpers/db.mjs";

// Scalar cases: each expression is selected with its typeof().
const SCALARS = {
	reverse: [
		"reverse(NULL)",
		"reverse('')",
		"reverse('abc')",
		"reverse('héllo')",
		"reverse('añ€😀b')",
		"reverse(123)",
		"reverse(-4.5)",
		"reverse(x'616263')",
		"reverse(x'610062')",
	],
	proper: [
		"proper(NULL)",
		"proper('')",
		"proper('hELLO wORLD')",
		"proper('élan vital\ttAB  x')",
		"proper('ñandú ÉCOLE')",
		"proper(12)",
		"proper(x'61006263')",
	],
	padl: [
		"padl(NULL, 3)",
		"padl('ab', 5)",
		"padl('ab', 2)",
		"padl('abc', 1)",
		"padl('ab', 0)",
		"padl('ab', -1)",
		"padl('ab', NULL)",
		"padl('ab', '4')",
		"padl('€😀', 4)",
		"padl('', 3)",
		"padl(12, 4)",
	],
	padr: ["padr(NULL, 3)", "padr('ab', 5)", "padr('abc', 2)", "padr('ab', -1)", "padr('€😀', 4)", "padr('abc', 4.7)", "padr(x'6162', 3)"],
	padc: ["padc(NULL, 3)", "padc('ab', 7)", "padc('ab', 6)", "padc('', 1)", "padc('ab', -1)", "padc('€😀', 5)", "padc('abc', 3)"],
	leftstr: [
		"leftstr(NULL, 1)",
		"leftstr('abc', NULL)",
		"leftstr('abc', 2)",
		"leftstr('abc', 0)",
		"leftstr('abc', -1)",
		"leftstr('abc', 10)",
		"leftstr('€😀ab', 3)",
		"leftstr('héllo', 2)",
		"leftstr('abc', 2.9)",
		"leftstr('abc', '2')",
		"leftstr('abc', 4294967297)",
		"leftstr(12345, 2)",
	],
	rightstr: [
		"rightstr(NULL, 1)",
		"rightstr('abc', NULL)",
		"rightstr('abc', 2)",
		"rightstr('abc', 0)",
		"rightstr('abc', 10)",
		"rightstr('€😀ab', 3)",
		"rightstr('héllo', 2)",
		"rightstr('abc', 4294967298)",
		"rightstr(12345, 2)",
	],
	replicate: [
		"replicate(NULL, 3)",
		"replicate('ab', 3)",
		"replicate('ab', 1)",
		"replicate('ab', -1)",
		"replicate('é', 3)",
		"replicate('ab', '2')",
		"replicate('ab', 2.9)",
		"replicate(12, 2)",
		"replicate(1.5, 2)",
		"replicate(x'610062', 3)",
	],
	charindex: [
		"charindex(NULL, 'a')",
		"charindex('b', NULL)",
		"charindex('b', 'abc')",
		"charindex('x', 'abc')",
		"charindex('', 'abc')",
		"charindex('abcd', 'abc')",
		"charindex('bc', 'abc', 2)",
		"charindex('b', 'abcb', 3)",
		"charindex('b', 'abc', -5)",
		"charindex('b', 'abc', 0)",
		"charindex('b', 'abc', NULL)",
		"charindex('b', 'abc', 10)",
		"charindex('b', 'abc', 4294967298)",
		"charindex('😀', 'a😀b😀', 3)",
		"charindex('é', 'é')",
		"charindex(1, 'x1')",
	],
	strfilter: [
		"strfilter(NULL, 'a')",
		"strfilter('a', NULL)",
		"strfilter('abcabc', 'bc')",
		"strfilter('abc', '')",
		"strfilter('', 'abc')",
		"strfilter('a€b😀c€', '€c')",
		"strfilter(123321, 2)",
	],
	difference: [
		"difference(NULL, 'a')",
		"difference('a', NULL)",
		"difference('Robert', 'Rupert')",
		"difference('Ashcraft', 'Ashcroft')",
		"difference('Lloyd', 'Pfister')",
		"difference('', '')",
		"difference('123', '456')",
		"difference('Élan', 'elan')",
		"difference('x', 'ñ')",
		"difference(12, 'a')",
	],
	square: [
		"square(NULL)",
		"square(3)",
		"square(-7)",
		"square(0)",
		"square(1.5)",
		"square(-0.0)",
		"square('3')",
		"square('abc')",
		"square(x'33')",
		"square(3037000500)",
		"square(9223372036854775807)",
		"square(1e200)",
	],
	atn2: [
		"atn2(NULL, 1)",
		"atn2(1, NULL)",
		"atn2(1, 2)",
		"atn2(0, -1)",
		"atn2(-0.0, -1)",
		"atn2(-3, 0)",
		"atn2('1', 'x')",
		"atn2(7, 1e300)",
	],
	cot: ["cot(NULL)", "cot(0)", "cot(-0.0)", "cot(1)", "cot(3.14159)", "cot(-2)", "cot('abc')", "cot(x'31')", "cot(1e300)", "cot(10)"],
	coth: ["coth(NULL)", "coth(0)", "coth(-0.5)", "coth(0.3)", "coth(0.6)", "coth(5)", "coth(25)", "coth(800)", "coth('2')"],
};

// Aggregate cases: whole statements, run for each aggregate as {f}.
const AGGREGATES = [
	"SELECT {f}(x), typeof({f}(x)) FROM (SELECT 1 AS x WHERE 0)",
	"SELECT {f}(column1), typeof({f}(column1)) FROM (VALUES (NULL), (NULL))",
	"SELECT {f}(column1), typeof({f}(column1)) FROM (VALUES (7))",
	"SELECT {f}(column1), typeof({f}(column1)) FROM (VALUES (2.5))",
	"SELECT {f}(column1), typeof({f}(column1)) FROM (VALUES (1), (2), (2), (3), (7))",
	"SELECT {f}(column1), typeof({f}(column1)) FROM (VALUES (1), (2), (3), (4))",
	"SELECT {f}(column1), typeof({f}(column1)) FROM (VALUES (1), (1), (2), (2))",
	"SELECT {f}(column1), typeof({f}(column1)) FROM (VALUES (1.5), (2), (2), (3))",
	"SELECT {f}(column1), typeof({f}(column1)) FROM (VALUES (2), (1.5), (2.0), (3))",
	"SELECT {f}(column1), typeof({f}(column1)) FROM (VALUES (0.0), (-0.0), (-0.0), (1))",
	"SELECT {f}(column1), typeof({f}(column1)) FROM (VALUES ('3'), ('abc'), (x'34'), (3), (NULL))",
	"SELECT {f}(column1), typeof({f}(column1)) FROM (VALUES ('abc'), ('abc'), (1))",
	"SELECT {f}(column1), typeof({f}(column1)) FROM (VALUES (x'00'), ('2.5'), (' 7 '))",
	"SELECT {f}(column1), typeof({f}(column1)) FROM (VALUES (5000000001), (5000000001), (1))",
	"SELECT {f}(column1), typeof({f}(column1)) FROM (VALUES (3000000000), (3000000000), (3000000000), (1))",
	"SELECT {f}(column1), typeof({f}(column1)) FROM (VALUES (1), (2), (3), (4), (5), (6), (7), (8), (9))",
	"SELECT column1, {f}(column2) FROM (VALUES (1, 1), (1, 2), (2, 5), (2, 5), (3, NULL), (4, 'x')) GROUP BY column1 ORDER BY column1",
	"WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 1000) SELECT {f}((i * 7919) % 101) FROM n",
	"WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 1000) SELECT {f}((i * 7919) % 101 + i * 0.001) FROM n",
];
const AGGREGATE_NAMES = ["stdev", "variance", "mode", "lower_quartile", "upper_quartile"];

/** Rows, or the error's message. */
async function outcome(db, sql, params) {
	try {
		return { rows: (await db.query(sql, params)).rows };
	} catch (error) {
		return { error: error.message };
	}
}

describe("extension-functions.c's functions, as 2.2.1 had them", () => {
	let vfs;
	let old;
	let db;
	before(async () => {
		vfs = new OldVfs();
		old = await vfs.open("functions", createTestKv());
		db = await open(createTestKv());
	});
	after(async () => {
		await db.close();
		await old.close();
		await vfs.destroy();
	});

	/** Asserts identical outcomes (values, JS types, errors) here and in 2.2.1. */
	async function same(sql, params) {
		const expected = await outcome(old, sql, params);
		assert.deepEqual(await outcome(db, sql, params), expected, sql);
	}

	for (const [name, cases] of Object.entries(SCALARS)) {
		test(`${name}(): the values, types and errors of 2.2.1`, async () => {
			for (const expression of cases) await same(`SELECT ${expression}, typeof(${expression})`);
		});
	}

	for (const name of AGGREGATE_NAMES) {
		test(`${name}(): the values and types of 2.2.1, also over no rows and NULLs`, async () => {
			for (const sql of AGGREGATES) await same(sql.replaceAll("{f}", name));
		});
	}

	test("the math functions give 2.2.1's very doubles (musl's), for bound values too", async () => {
		const values = [1e-300, -3e-300, 5e-324, 1e-10, 0.25, 0.3, 0.6, 1, 2.5, -13.6863, 20.5, 1e22, 1e300, -0, 0];
		for (let i = 1; i <= 200; i++) values.push((i % 2 ? -1 : 1) * i * 0.0731 * (1 + i / 50));
		for (const v of values) {
			await same("SELECT cot(?1), coth(?1), atn2(?1, 1.7), atn2(-2.3, ?1), square(?1), stdev(?1), variance(?1)", [v]);
		}
	});

	test("where 2.2.1 read stray memory, hung or ran out of memory: an empty string, a domain error, SQLITE_TOOBIG", async () => {
		// 2.2.1: the bytes that happened to be in a fresh allocation.
		assert.deepEqual(await rows(db, "SELECT replicate('ab', 0), replicate('ab', NULL), replicate('', 5)"), [["", "", ""]]);
		// 2.2.1: looped 2^40 times.
		assert.deepEqual(await rows(db, "SELECT replicate('', 1099511627776)"), [[""]]);
		// 2.2.1: read before the string, then (here) "out of memory".
		await assert.rejects(db.query("SELECT rightstr('abc', -1)"), { name: "SqliteError", code: "SQLITE_ERROR", message: "domain error" });
		// Results over SQLite's length limit (2.2.1: an allocation of that size, or "out of memory").
		for (const sql of [
			"SELECT replicate('ab', 600000000)",
			"SELECT replicate('ab', 9223372036854775807)",
			"SELECT padl('a', 2000000000)",
			"SELECT padc('a', 9223372036854775807)",
		]) {
			await assert.rejects(db.query(sql), { name: "SqliteError", code: "SQLITE_TOOBIG" }, sql);
		}
		// The connection goes on.
		assert.deepEqual(await rows(db, "SELECT padr('ab', 3) || '|'"), [["ab |"]]);
	});

	test("an aggregate stopped by an error, or by LIMIT, leaves nothing behind that the next one sees", async () => {
		const setup = "CREATE TABLE agg(g, v); INSERT INTO agg VALUES (1, 1), (1, 2), (2, 2), (2, 2), (2, 3)";
		await old.exec(setup);
		await db.exec(setup);
		const sql = "SELECT g, mode(v), lower_quartile(v), upper_quartile(v), stdev(v), variance(v) FROM agg GROUP BY g ORDER BY g";
		await same(sql);
		// Stopped after a step, by an error in the next row.
		const failing = "SELECT mode(v), upper_quartile(v), stdev(v) FROM agg WHERE padl('x', 2 - v) IS NOT NULL";
		await same(failing);
		await assert.rejects(db.query(failing), { message: "domain error" });
		await same("SELECT mode(v), upper_quartile(v), stdev(v) FROM agg GROUP BY g ORDER BY g LIMIT 1");
		await same(sql);
	});

	test("a 2.2.1 schema using them in a view, a CHECK and a trigger works here", async () => {
		const kv = createTestKv();
		const SCHEMA = `
			CREATE TABLE people(
				id INTEGER PRIMARY KEY,
				name TEXT CHECK (charindex(' ', name) = 0 AND leftstr(name, 1) <> '_'),
				score REAL
			);
			CREATE TABLE log(id INTEGER PRIMARY KEY, entry TEXT);
			CREATE VIEW cards AS
				SELECT padr(proper(name), 10) || '|' || padl(replicate('*', CAST(score AS INTEGER)), 5) AS card,
					reverse(name) AS backwards, square(score) AS sq
				FROM people;
			CREATE VIEW stats AS
				SELECT stdev(score) AS sd, variance(score) AS var, mode(CAST(score AS INTEGER)) AS m,
					lower_quartile(score) AS lq, upper_quartile(score) AS uq, count(*) AS n
				FROM people;
			CREATE TRIGGER people_log AFTER INSERT ON people BEGIN
				INSERT INTO log(entry) VALUES (padc(strfilter(upper(NEW.name), 'AEIOU'), 6) || difference(NEW.name, 'Ann'));
			END;
		`;
		const INSERTS = "INSERT INTO people(name, score) VALUES ('ann', 3), ('bob', 4.5), ('émilie', 2), ('zoë', 4)";
		const QUERY = ["SELECT * FROM cards ORDER BY card", "SELECT * FROM stats", "SELECT entry FROM log ORDER BY id"];
		const vfs2 = new OldVfs();
		const before = await vfs2.open("schema", kv);
		await before.exec(SCHEMA);
		await before.exec(INSERTS);
		const expected = [];
		for (const sql of QUERY) expected.push((await before.query(sql)).rows);
		await assert.rejects(before.exec("INSERT INTO people(name) VALUES ('has space')"));
		await before.close();
		await vfs2.destroy();

		const here = await open(kv);
		for (const [i, sql] of QUERY.entries()) assert.deepEqual(await rows(here, sql), expected[i], sql);
		// The CHECK and the trigger run here too.
		await assert.rejects(here.exec("INSERT INTO people(name) VALUES ('has space')"), { code: "SQLITE_CONSTRAINT_CHECK" });
		await assert.rejects(here.exec("INSERT INTO people(name) VALUES ('_x')"), { code: "SQLITE_CONSTRAINT_CHECK" });
		await here.exec("INSERT INTO people(name, score) VALUES ('eve', 5)");
		assert.deepEqual(await rows(here, "SELECT entry FROM log ORDER BY id DESC LIMIT 1"), [["  EE  1"]]);
		assert.deepEqual(await rows(here, "SELECT backwards, card FROM cards WHERE backwards = 'eve'"), [["eve", "Eve       |*****"]]);
		assert.deepEqual(await rows(here, "PRAGMA integrity_check"), [["ok"]]);
		await here.close();
	});
});
