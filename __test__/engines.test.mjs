// The two engines, side by side: identical KV bytes for identical statements,
// databases written by one open in the other, and the selection rules.

import { test, describe } from "node:test";
import assert from "node:assert/strict";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { spawnSync } from "node:child_process";
import { fileURLToPath } from "node:url";

import { open } from "../index.mjs";
import { createTestKv, kvDump } from "./helpers/kv.mjs";
import { snapshot } from "./helpers/db.mjs";

const here = path.dirname(fileURLToPath(import.meta.url));
let n = 0;
const openWith = (backend, kv) => open(`engines-${++n}`, kv, { backend });

const WORKLOAD = [
	"CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT, b BLOB, r REAL)",
	"CREATE INDEX t_v ON t(v)",
	"INSERT INTO t(v, b, r) VALUES ('a', x'00ff', 1.5), ('b', x'', -2.25), ('c', NULL, 3)",
	"WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 300) INSERT INTO t(v, b) SELECT 'row ' || i, zeroblob(i * 7) FROM n",
	"UPDATE t SET r = id * 0.5 WHERE id % 3 = 0",
	"DELETE FROM t WHERE id > 200",
	"VACUUM",
	"CREATE TABLE u(k TEXT PRIMARY KEY, v) WITHOUT ROWID",
	"INSERT INTO u VALUES ('x', 1), ('y', 2)",
];

describe("engines", () => {
	test("the suite's engine is the one asked for", async () => {
		const db = await open("which", createTestKv());
		const expected = process.env.RIVETKIT_SQLITE_BACKEND || "native";
		assert.equal(db.backend, expected);
		await db.close();
	});

	test("both engines write identical KV bytes for the same statements", async () => {
		// One difference is allowed, in page 1 only: when the native engine
		// moves a statement that ran over its inline budget to an engine
		// thread (on a loaded machine), SQLite counts the stopped attempt as
		// a rollback, and its next commit bumps the file change counter
		// (bytes 24–27 and 92–95 of page 1), writing page 1 where the other
		// engine may not. Page 1's other bytes, and every other key, match.
		const PAGE_1 = "0801010000000000";
		// What a putBatch sends for page 1: its key and a whole page.
		const PAGE_1_BYTES = 8 + 4096;
		const counterless = (page) => `${page.slice(0, 48)}${page.slice(56, 184)}${page.slice(192)}`;
		const dumps = {};
		for (const backend of ["native", "wasm"]) {
			const kv = createTestKv();
			const db = await openWith(backend, kv);
			assert.equal(db.backend, backend);
			const calls = [];
			for (const sql of WORKLOAD) {
				kv.resetCounts();
				await db.exec(sql);
				calls.push(
					kv.calls.map((c) => {
						const page1 = c.method === "putBatch" && c.keys.includes(PAGE_1);
						return [c.method, c.keys.filter((key) => key !== PAGE_1), c.bytes - (page1 ? PAGE_1_BYTES : 0)];
					}),
				);
			}
			await db.close();
			const contents = kvDump(kv);
			contents[PAGE_1] = counterless(contents[PAGE_1]);
			dumps[backend] = { kv: contents, calls };
		}
		assert.deepEqual(dumps.wasm.calls, dumps.native.calls, "the same KV calls per statement");
		assert.deepEqual(dumps.wasm.kv, dumps.native.kv, "the same KV contents");
	});

	test("a database written by one engine opens in the other with identical rows", async () => {
		for (const [writer, reader] of [
			["native", "wasm"],
			["wasm", "native"],
		]) {
			const kv = createTestKv();
			const db = await openWith(writer, kv);
			for (const sql of WORKLOAD) await db.exec(sql);
			const expected = await snapshot(db);
			await db.close();
			const other = await openWith(reader, kv);
			assert.deepEqual(await snapshot(other), expected, `${writer} → ${reader}`);
			assert.deepEqual((await other.query("PRAGMA integrity_check")).rows, [["ok"]]);
			await other.run("INSERT INTO u VALUES (?, ?)", [reader, 3]);
			await other.close();
			const back = await openWith(writer, kv);
			assert.deepEqual((await back.query("SELECT v FROM u WHERE k = ?", [reader])).rows, [[3]]);
			await back.close();
		}
	});

	test("both engines have the same SQL functions and modules, those of 2.2.1 included", async () => {
		// The native build once lacked the math functions and median() of the
		// WASM build, and of 2.2.1's: a 2.2.1 schema using them failed there.
		const names = async (backend) => {
			const db = await openWith(backend, createTestKv());
			const functions = (await db.query("SELECT name, narg, flags FROM pragma_function_list ORDER BY 1, 2, 3")).rows;
			const modules = (await db.query("SELECT name FROM pragma_module_list ORDER BY 1")).rows;
			const threads = (await db.query("PRAGMA threads = 4")).rows;
			const values = (await db.query("SELECT sqrt(16), floor(2.5), median(x), percentile(x, 50) FROM (SELECT 1 AS x UNION ALL SELECT 3)"))
				.rows;
			await db.close();
			return { functions, modules, threads, values };
		};
		const native = await names("native");
		const wasm = await names("wasm");
		assert.deepEqual(native, wasm);
		assert.deepEqual(native.values, [[4, 2, 2, 2]]);
		// No helper threads for sorts: a process's threads are the engine's.
		assert.deepEqual(native.threads, [[0]]);
		const modules = native.modules.flat();
		for (const name of ["fts5", "fts5vocab", "rtree", "dbstat"]) assert.ok(modules.includes(name), name);
		for (const name of ["fts3", "fts4"]) assert.ok(!modules.includes(name), name);
		// 2.2.1's extension-functions.c ones that SQLite lacks (README):
		// there on both, with the same arities and flags (deterministic,
		// innocuous; pragma_function_list leaves out the text encoding), and
		// the same results.
		const EXTENSION = {
			reverse: [1],
			proper: [1],
			padl: [2],
			padr: [2],
			padc: [2],
			leftstr: [2],
			rightstr: [2],
			replicate: [2],
			charindex: [2, 3],
			strfilter: [2],
			difference: [2],
			square: [1],
			atn2: [2],
			cot: [1],
			coth: [1],
			stdev: [1],
			variance: [1],
			mode: [1],
			lower_quartile: [1],
			upper_quartile: [1],
		};
		const FLAGS = 0x800 | 0x200000;
		for (const [name, arities] of Object.entries(EXTENSION)) {
			const listed = native.functions.filter(([fn]) => fn === name);
			assert.deepEqual(
				listed,
				arities.map((narg) => [name, narg, FLAGS]),
				name,
			);
		}
		const SQL =
			"SELECT reverse('añ€😀'), proper('hELLO wORLD'), padc('ab', 7), leftstr('héllo', 2), rightstr('héllo', 2), replicate('é', 3), " +
			"charindex('😀', 'a😀b😀', 3), strfilter('a€b😀c€', '€c'), difference('Robert', 'Rupert'), square(3037000500), typeof(square(2.0)), " +
			"atn2(1, 2), cot(1), coth(0.3), stdev(x), variance(x), mode(x), lower_quartile(x), upper_quartile(x) " +
			"FROM (SELECT 1 AS x UNION ALL SELECT 2 UNION ALL SELECT 2 UNION ALL SELECT 3.5 UNION ALL SELECT 7)";
		const results = {};
		for (const backend of ["native", "wasm"]) {
			const db = await openWith(backend, createTestKv());
			results[backend] = (await db.query(SQL)).rows;
			await assert.rejects(
				db.query("SELECT padl('x', -1)"),
				{ name: "SqliteError", code: "SQLITE_ERROR", message: "domain error" },
				backend,
			);
			await db.close();
		}
		assert.deepEqual(results.wasm, results.native);
		assert.equal(results.native[0][0], "😀€ña");
		assert.equal(results.native[0][9], -9223372036709301616n);
	});

	test("the local file's settings are those the README gives; ANALYZE keeps the same statistics on both engines", async () => {
		const settings = {
			page_size: 4096,
			locking_mode: "exclusive",
			synchronous: 0,
			journal_mode: "memory",
			cache_size: -2000,
			temp_store: 2,
		};
		for (const backend of ["native", "wasm"]) {
			const db = await openWith(backend, createTestKv());
			for (const [pragma, value] of Object.entries(settings)) {
				assert.deepEqual((await db.query(`PRAGMA ${pragma}`)).rows, [[value]], `${backend}: ${pragma}`);
			}
			await db.exec("CREATE TABLE t(a, b); CREATE INDEX t_a ON t(a); INSERT INTO t VALUES (1, 2), (1, 3), (2, 4); ANALYZE");
			const stats = (await db.query("SELECT name FROM sqlite_schema WHERE name LIKE 'sqlite_stat%' ORDER BY name")).rows.flat();
			assert.deepEqual(stats, ["sqlite_stat1"], backend);
			await db.close();
		}
	});

	test("PRAGMA encoding may be set to UTF-8 only, on either engine, so both open every database made here", async () => {
		for (const backend of ["native", "wasm"]) {
			const db = await openWith(backend, createTestKv());
			await assert.rejects(db.exec("PRAGMA encoding = 'UTF-16le'"), { name: "SqliteError", code: "SQLITE_AUTH" }, backend);
			await db.exec("PRAGMA encoding = 'UTF-8'");
			// The WASM build has no UTF-16, nor this pragma: it reads as nothing.
			assert.deepEqual((await db.query("PRAGMA encoding")).rows, backend === "native" ? [["UTF-8"]] : [], backend);
			await db.close();
		}
	});

	test("a schema whose names are not UTF-8: a statement touching one fails with SQLITE_AUTH natively and reads U+FFFD in WASM; nothing is printed, and the rest of the database works", () => {
		// Such a schema comes from another program or a damaged KV (SQL from
		// JS is UTF-8): the names "zqzq" are patched to "zq\xffq" in the KV.
		// In a child process, whose stderr shows whatever was printed.
		const index = path.join(here, "..", "index.js");
		const name = "zq\uFFFDq";
		for (const backend of ["native", "wasm"]) {
			const script = `
				const { open, createMemoryKv } = require(${JSON.stringify(index)});
				const backend = ${JSON.stringify(backend)};
				(async () => {
					const kv = createMemoryKv();
					let db = await open("a", kv, { backend });
					await db.exec('CREATE TABLE t("zqzq" INT, b); INSERT INTO t VALUES (1, 2); CREATE VIEW v AS SELECT 3 AS "zqzq"');
					await db.close();
					let patched = 0;
					for (const [key, value] of [...kv.entries()]) {
						const bytes = Buffer.from(value);
						for (let at; (at = bytes.indexOf("zqzq")) >= 0; patched++) bytes[at + 2] = 0xff;
						await kv.put(key, new Uint8Array(bytes));
					}
					db = await open("a", kv, { backend });
					const outcomes = { backend: db.backend, patched };
					for (const sql of ["SELECT * FROM t", "SELECT * FROM v", "SELECT b FROM t", "SELECT name FROM pragma_table_info('t')", "VACUUM INTO CAST(x'2f746d702f7aff' AS TEXT)"]) {
						try {
							outcomes[sql] = await db.query(sql);
						} catch (error) {
							outcomes[sql] = { code: error.code };
						}
					}
					await db.run("INSERT INTO t(b) VALUES (5)");
					outcomes.after = (await db.query("SELECT count(*) FROM t")).rows;
					await db.close();
					console.log(JSON.stringify(outcomes));
				})();
			`;
			const child = spawnSync(process.execPath, ["-e", script], { encoding: "utf8", timeout: 60_000 });
			assert.equal(child.status, 0, child.stderr);
			assert.equal(child.stderr, "", `${backend}: nothing printed`);
			const outcomes = JSON.parse(child.stdout);
			assert.equal(outcomes.backend, backend);
			assert.equal(outcomes.patched, 2, "each name in the schema's SQL");
			assert.deepEqual(outcomes["SELECT b FROM t"], { rows: [[2]], columns: ["b"] });
			assert.deepEqual(outcomes["SELECT name FROM pragma_table_info('t')"], { rows: [[name], ["b"]], columns: ["name"] });
			assert.deepEqual(outcomes["VACUUM INTO CAST(x'2f746d702f7aff' AS TEXT)"], { code: "SQLITE_AUTH" });
			if (backend === "native") {
				assert.deepEqual(outcomes["SELECT * FROM t"], { code: "SQLITE_AUTH" });
				assert.deepEqual(outcomes["SELECT * FROM v"], { code: "SQLITE_AUTH" });
			} else {
				assert.deepEqual(outcomes["SELECT * FROM t"], { rows: [[1, 2]], columns: [name, "b"] });
				assert.deepEqual(outcomes["SELECT * FROM v"], { rows: [[3]], columns: [name] });
			}
			assert.deepEqual(outcomes.after, [[2]]);
		}
	});

	test("without a loadable native binding: WASM by default, and forcing native fails clearly", () => {
		const script = `
			const { open, createMemoryKv } = require(${JSON.stringify(path.join(here, "..", "index.js"))});
			(async () => {
				const db = await open("x", createMemoryKv(), { backend: null });
				await db.exec("CREATE TABLE t(v)");
				console.log("backend=" + db.backend);
				await db.close();
				try {
					await open("y", createMemoryKv(), { backend: "native" });
					console.log("forced native opened");
				} catch (error) {
					console.log("forced=" + JSON.stringify({ code: error.code, message: error.message }));
				}
			})();
		`;
		// What the loader may find (NAPI_RS_NATIVE_LIBRARY_PATH, which every
		// napi-rs package's loader reads, makes it load that file): nothing,
		// another napi-rs package's addon, or this package's addon of another
		// release. None of them is called.
		const dir = fs.mkdtempSync(path.join(os.tmpdir(), "sqlite-vfs-bindings-"));
		const other = path.join(dir, "other.js");
		fs.writeFileSync(other, "module.exports = { Tar: class {}, NativeDatabase: class {} };\n");
		const older = path.join(dir, "older.js");
		const built = fs.readdirSync(path.join(here, "..")).find((name) => /^sqlite-vfs\..+\.node$/.test(name));
		const addon = built && path.join(here, "..", built);
		fs.writeFileSync(older, `module.exports = { ...require(${JSON.stringify(addon)}), ENGINE_INTERFACE: 0 };\n`);
		try {
			for (const [binding, reason] of [
				[path.join(here, "no-such-binding.node"), /no-such-binding/],
				[other, /not this package's engine/],
				...(addon ? [[older, /engine interface 0, this release .* drives \d+: its platform package is of another version/]] : []),
			]) {
				const env = { ...process.env, NAPI_RS_NATIVE_LIBRARY_PATH: binding };
				delete env.RIVETKIT_SQLITE_BACKEND;
				const child = spawnSync(process.execPath, ["-e", script], { encoding: "utf8", env });
				assert.equal(child.status, 0, child.stderr);
				assert.match(child.stdout, /backend=wasm/, binding);
				const forced = JSON.parse(child.stdout.match(/forced=(.*)/)[1]);
				assert.equal(forced.code, "ERR_SQLITE_ENGINE_UNAVAILABLE");
				assert.match(forced.message, /^The native SQLite engine could not be loaded/);
				assert.match(forced.message, reason);
				// One line per engine tried, without Node's require stacks.
				assert.doesNotMatch(forced.message, /Require stack|npm has a bug/);
				// Nor the loader's tries of WASI builds, which this package does not ship.
				assert.doesNotMatch(forced.message, /wasi/);
				assert.equal(forced.message.split("\n").length, 2, forced.message);
			}
		} finally {
			fs.rmSync(dir, { recursive: true, force: true });
		}
	});

	test("by default a call returns at most 2^25 values: a larger result is a SqliteError, not a call that never settles or a crashed process", async () => {
		// A JS array holds about 2^27 elements: a result past that left the
		// native engine's call unsettled and crashed the process on WASM.
		// One value past the default bound, 2^25 (lib/policy.txt result_values).
		const rows = 2 ** 23 + 1;
		for (const backend of ["native", "wasm"]) {
			const db = await openWith(backend, createTestKv());
			await assert.rejects(
				db.query(`WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c LIMIT ${rows}) SELECT x, x, x, x FROM c`),
				(error) => error.code === "SQLITE_TOOBIG" && error.message.startsWith(`the call's results would hold more than ${2 ** 25} values`),
				backend,
			);
			assert.deepEqual((await db.query("SELECT 1")).rows, [[1]], backend);
			await db.close();
		}
	});

	test("by default a call returns at most 2^30 bytes of TEXT and BLOB values: more is a SqliteError, refused before it is copied", async () => {
		// Four rows of 300,000,000 bytes each: the fourth is one too many.
		for (const backend of ["native", "wasm"]) {
			const db = await openWith(backend, createTestKv());
			await assert.rejects(
				db.query("WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c LIMIT 4) SELECT zeroblob(300000000) FROM c"),
				(error) => error.code === "SQLITE_TOOBIG" && error.message.startsWith(`the call's results would hold more than ${2 ** 30} bytes`),
				backend,
			);
			assert.deepEqual((await db.query("SELECT length(zeroblob(300000000))")).rows, [[300000000]], backend);
			await db.close();
		}
	});

	test("RIVETKIT_SQLITE_BACKEND forces an engine; the option wins over it", () => {
		const script = `
			const { open, createMemoryKv } = require(${JSON.stringify(path.join(here, "..", "index.js"))});
			(async () => {
				const a = await open("a", createMemoryKv());
				const b = await open("b", createMemoryKv(), { backend: "native" });
				console.log(a.backend + "," + b.backend);
				await a.close();
				await b.close();
				await open("c", createMemoryKv()).catch(() => {});
			})();
		`;
		const child = spawnSync(process.execPath, ["-e", script], {
			encoding: "utf8",
			env: { ...process.env, RIVETKIT_SQLITE_BACKEND: "wasm" },
		});
		assert.equal(child.status, 0, child.stderr);
		assert.equal(child.stdout.trim(), "wasm,native");
		const bad = spawnSync(process.execPath, ["-e", script], {
			encoding: "utf8",
			env: { ...process.env, RIVETKIT_SQLITE_BACKEND: "gpu" },
		});
		assert.notEqual(bad.status, 0);
		assert.match(bad.stderr, /RIVETKIT_SQLITE_BACKEND/);
	});
});
