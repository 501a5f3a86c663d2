// Shared test helpers: open databases on the backend under test.

import { open as openDb } from "../../index.mjs";

/** The backend under test: RIVETKIT_SQLITE_BACKEND, or the default choice. */
export const BACKEND = process.env.RIVETKIT_SQLITE_BACKEND || undefined;

let counter = 0;
export function open(kv, options = {}, name = `actor-${++counter}`) {
	return openDb(name, kv, { backend: BACKEND, ...options });
}

/** All rows of a query, for comparisons. */
export async function rows(db, sql, params) {
	return (await db.query(sql, params)).rows;
}

/** Rows of every user table, in a stable order. */
export async function snapshot(db) {
	const tables = await rows(db, "SELECT name FROM sqlite_schema WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name");
	const out = {};
	const key = (row) => JSON.stringify(row, (_, v) => (typeof v === "bigint" ? `${v}n` : v instanceof Uint8Array ? [...v] : v));
	for (const [name] of tables) {
		// Sorted in JS: tables WITHOUT ROWID have no rowid to order by.
		const all = await rows(db, `SELECT * FROM "${name}"`);
		out[name] = all
			.map((row) => [key(row), row])
			.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0))
			.map(([, row]) => row);
	}
	return out;
}
