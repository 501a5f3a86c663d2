// The reference database of the differential test: SQLite in memory, with no
// KV and no persistence layer, driven one statement at a time.
//
// better-sqlite3 (a devDependency) when its native addon loads in this
// runtime: npm here runs no install scripts, so it is the build that
// `node bench/setup.js` makes on Node 20 (the differential script runs it
// first; from Node 22 the benchmark runs better-sqlite3 13 instead, whose
// SQLite is another version), or one in node_modules/better-sqlite3/build.
// Otherwise, and always under Bun (better-sqlite3 is a V8 addon that Bun
// cannot load), sql.js (also a devDependency): the same SQLite 3.54.1
// compiled to WebAssembly, pure JS, in memory. Both give SQLite's own error
// messages.

import { createHash } from "node:crypto";
import { createRequire } from "node:module";

const require = createRequire(import.meta.url);

function loadBetterSqlite3() {
	if (process.versions.bun) return { reason: "Bun cannot load better-sqlite3's V8 addon" };
	let Database;
	try {
		Database = require("better-sqlite3");
	} catch (error) {
		return { reason: `better-sqlite3 is not installed (${error.message})` };
	}
	const { nativeBindingPath } = require("../../bench/setup.js");
	const reasons = [];
	for (const nativeBinding of [nativeBindingPath(), undefined]) {
		try {
			const probe = new Database(":memory:", nativeBinding ? { nativeBinding } : {});
			probe.close();
			return { create: (file = ":memory:") => new Database(file, nativeBinding ? { nativeBinding } : {}) };
		} catch (error) {
			reasons.push(error.message.split("\n")[0]);
		}
	}
	return { reason: `better-sqlite3's addon does not load (${reasons.join("; ")}); \`node bench/setup.js\` builds it` };
}

/**
 * better-sqlite3 on a file: `{ open(path) }` → its Database, or `{ reason }`
 * it cannot load in this runtime (see loadBetterSqlite3).
 */
export function betterSqlite3Files() {
	const better = loadBetterSqlite3();
	return better.create ? { open: (file) => better.create(file) } : { reason: better.reason };
}

let sqlJs = null;

/**
 * A reference database. `kind`: "better-sqlite3", "sql.js", or undefined for
 * better-sqlite3 when it loads, else sql.js. Resolves to an object with
 * `kind`, `run(sql, params)` → changes, `all(sql, params)` → rows as arrays,
 * `inTransaction`, `close()`; errors are thrown with SQLite's message.
 */
export async function createReference(kind) {
	if (kind !== "sql.js") {
		const better = loadBetterSqlite3();
		if (better.create) return betterReference(better.create());
		if (kind === "better-sqlite3") throw new Error(better.reason);
	}
	if (!sqlJs) {
		const initSqlJs = require("sql.js");
		sqlJs = await initSqlJs();
	}
	return sqlJsReference(new sqlJs.Database());
}

/** better-sqlite3 binds Buffers, not plain Uint8Arrays. */
const toBetter = (params) =>
	(params ?? []).map((v) => (v instanceof Uint8Array && !Buffer.isBuffer(v) ? Buffer.from(v.buffer, v.byteOffset, v.byteLength) : v));

function betterReference(db) {
	return {
		kind: "better-sqlite3",
		run(sql, params) {
			const stmt = db.prepare(sql);
			if (stmt.reader) {
				stmt.raw(true).all(...toBetter(params));
				return 0;
			}
			return stmt.run(...toBetter(params)).changes;
		},
		all(sql, params) {
			return db
				.prepare(sql)
				.raw(true)
				.all(...toBetter(params));
		},
		get inTransaction() {
			return db.inTransaction;
		},
		close() {
			db.close();
		},
	};
}

function sqlJsReference(db) {
	const ref = {
		kind: "sql.js",
		run(sql, params) {
			db.run(sql, params ?? []);
			return db.getRowsModified();
		},
		all(sql, params) {
			const stmt = db.prepare(sql, params ?? []);
			try {
				const rows = [];
				while (stmt.step()) rows.push(stmt.get());
				return rows;
			} finally {
				stmt.free();
			}
		},
		/** sql.js has no sqlite3_get_autocommit: BEGIN fails inside a transaction, and is undone otherwise. */
		get inTransaction() {
			try {
				db.run("BEGIN");
			} catch {
				return true;
			}
			db.run("ROLLBACK");
			return false;
		},
		close() {
			db.close();
		},
	};
	return ref;
}

/** A value as the dumps show it: BLOBs by length and digest. */
export function canonicalValue(value) {
	if (value instanceof Uint8Array) {
		return `x${value.length}:${createHash("sha1").update(value).digest("hex").slice(0, 16)}`;
	}
	if (typeof value === "bigint") return `${value}n`;
	return value;
}

export const canonicalRows = (rows) => JSON.stringify(rows.map((row) => row.map(canonicalValue)));

const SCHEMA_SQL = "SELECT type, name, tbl_name, sql FROM sqlite_schema ORDER BY type, name";
const TABLES_SQL = "SELECT name FROM sqlite_schema WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name";

/**
 * The whole content of a database as one canonical string: its schema, then
 * every table's rows by rowid. `all(sql)` returns rows as arrays (sync or
 * async), so the same dump serves the reference and this package.
 */
export async function dumpWith(all) {
	const parts = [`schema ${canonicalRows(await all(SCHEMA_SQL))}`];
	for (const [name] of await all(TABLES_SQL)) {
		parts.push(`${name} ${canonicalRows(await all(`SELECT * FROM "${name}" ORDER BY rowid`))}`);
	}
	return parts.join("\n");
}
