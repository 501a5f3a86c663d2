"use strict";

// The "seed design": SQLite in memory (sql.js), and after every write call
// that leaves no transaction open, a snapshot of the whole file
// (db.export()) written to the KV as 4 KiB chunks plus metadata, in the
// 2.2.1 storage format. Calls run one at a time, in call order; a call
// settles once its snapshot is stored. Opening reads the whole file.

const { readFile, writeFile } = require("../kv-file");

let sqlPromise = null;

class SeedDatabase {
	#db;
	#kv;
	#size;
	#tail = Promise.resolve();

	constructor(db, kv, size) {
		this.#db = db;
		this.#kv = kv;
		this.#size = size;
	}

	/** Runs `fn` after every call made before it. */
	#serial(fn) {
		const result = this.#tail.then(fn);
		this.#tail = result.catch(() => {});
		return result;
	}

	/** sql.js has no sqlite3_get_autocommit: BEGIN fails inside a transaction. */
	#inTransaction() {
		try {
			this.#db.exec("BEGIN");
		} catch {
			return true;
		}
		this.#db.exec("ROLLBACK");
		return false;
	}

	async #persist() {
		if (this.#inTransaction()) return;
		const bytes = this.#db.export();
		await writeFile(this.#kv, bytes, this.#size);
		this.#size = bytes.length;
	}

	/** A write call: runs, then stores the snapshot (even if the SQL failed midway). */
	#write(fn) {
		return this.#serial(async () => {
			try {
				return fn();
			} finally {
				await this.#persist();
			}
		});
	}

	exec(sql) {
		return this.#write(() => {
			this.#db.exec(sql);
		});
	}

	run(sql, params) {
		return this.#write(() => {
			this.#db.run(sql, params);
		});
	}

	query(sql, params) {
		return this.#serial(async () => {
			const sets = this.#db.exec(sql, params);
			return sets.flatMap((set) => set.values);
		});
	}

	close() {
		return this.#serial(async () => {
			this.#db.close();
		});
	}
}

async function create() {
	sqlPromise ??= require("sql.js")();
	const SQL = await sqlPromise;
	return {
		async open(_name, kv) {
			const bytes = await readFile(kv);
			const db = bytes === null ? new SQL.Database() : new SQL.Database(bytes);
			const seed = new SeedDatabase(db, kv, bytes === null ? 0 : bytes.length);
			return seed;
		},
		async materialize() {
			// Reads straight from the KV.
		},
		async destroy() {},
	};
}

module.exports = { id: "seed", label: "seed", usesKv: true, create };
