"use strict";

// @rivetkit/sqlite-vfs/kv/postgres: a KV store for `open` in a PostgreSQL
// table, through node-postgres (`pg`, an optional peer dependency that the
// caller's pool comes from; this file does not load it). Every actor's keys
// live in one table, `(actor, key, value)`. Each call is one SQL statement,
// hence one transaction: a putBatch is a single multi-row upsert, applied
// entirely or not at all, and durable once PostgreSQL acknowledged its commit.
//
// Ownership: a KV takes its actor over at its first call (an epoch in a
// second table, sqlite_vfs_owners, raised by one), and each of its writes
// holds that row (FOR SHARE) and applies only while the epoch is still its
// own. PostgreSQL carries out a statement whose client is gone (a process
// killed, a connection cut) to its end: without this, the last write of an
// actor's previous host could land after the next host had opened the
// database, and tear it. The takeover waits for such a statement, and a
// later one applies nothing; the previous KV's writes fail from then on
// (ERR_SQLITE_KV_FENCED), as do those of a second KV of the actor opened
// meanwhile in any process.
//
// The SQL is kept to what PostgreSQL wire-compatible distributed databases
// (CockroachDB, YugabyteDB) also accept: CREATE TABLE IF NOT EXISTS, bytea,
// a composite primary key, INSERT ... ON CONFLICT DO UPDATE, DELETE/SELECT
// with IN lists of parameters.

const { createChecks, lastPerKey, createOwnership, fencedError } = require("./checks");

const DEFAULT_TABLE = "sqlite_vfs_kv";
// PostgreSQL cuts identifiers to 63 bytes (NAMEDATALEN - 1), which would make
// two long names one table.
const MAX_IDENTIFIER_BYTES = 63;
// The most UTF-8 bytes of an actor id: a row of the primary key index (actor,
// key) must fit PostgreSQL's B-tree limit (2,704 bytes) with a key of up to
// 2 KiB, the actor KV's largest.
const MAX_ACTOR_ID_BYTES = 512;
// PostgreSQL's protocol carries at most 65535 parameters per statement.
const MAX_PARAMETERS = 65535;

/** `name` or `schema.name`, each part a plain identifier, quoted. */
function quoteTable(table) {
	if (typeof table !== "string" || !/^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)?$/.test(table)) {
		throw new TypeError(`table must be a plain identifier (letters, digits, _), optionally schema-qualified; got ${JSON.stringify(table)}`);
	}
	if (table.split(".").some((part) => part.length > MAX_IDENTIFIER_BYTES)) {
		throw new RangeError(
			`table: each name must be at most ${MAX_IDENTIFIER_BYTES} characters (PostgreSQL cuts longer ones); got ${JSON.stringify(table)}`,
		);
	}
	return table
		.split(".")
		.map((part) => `"${part}"`)
		.join(".");
}

// The ownership table (see the top of this file), in the schema of the KV
// tables whose actors it lists.
const OWNERS_TABLE = "sqlite_vfs_owners";

/** The quoted name of the ownership table of KV table `table` (checked). */
function quoteOwners(table) {
	const dot = table.indexOf(".");
	return quoteTable(dot === -1 ? OWNERS_TABLE : `${table.slice(0, dot)}.${OWNERS_TABLE}`);
}

function checkQueryable(pool) {
	if (pool === null || typeof pool !== "object" || typeof pool.query !== "function") {
		throw new TypeError("pool must be a pg Pool (or Client): an object with query()");
	}
}

/**
 * Creates the table if it does not exist. Idempotent and safe to run from
 * several processes at once.
 * @param {import("pg").Pool} pool
 * @param {{ table?: string }} [options]
 */
async function migrate(pool, options = {}) {
	checkQueryable(pool);
	if (options === null || typeof options !== "object") throw new TypeError("options must be an object");
	const name = options.table ?? DEFAULT_TABLE;
	const table = quoteTable(name);
	for (const sql of [
		`CREATE TABLE IF NOT EXISTS ${table} (actor TEXT NOT NULL, key BYTEA NOT NULL, value BYTEA NOT NULL, PRIMARY KEY (actor, key))`,
		`CREATE TABLE IF NOT EXISTS ${quoteOwners(name)} (kv_table TEXT NOT NULL, actor TEXT NOT NULL, epoch BIGINT NOT NULL, PRIMARY KEY (kv_table, actor))`,
	]) {
		try {
			await pool.query(sql);
		} catch (error) {
			// Two sessions creating the table at once: PostgreSQL can report the
			// loser's CREATE as a unique violation on its catalog. The table exists.
			if (error?.code !== "23505" && error?.code !== "42P07") throw error;
			await pool.query(sql);
		}
	}
}

// One migration per pool and table, shared by the KVs created on it.
const migrations = new WeakMap();

function ensureTable(pool, table) {
	let byTable = migrations.get(pool);
	if (!byTable) {
		byTable = new Map();
		migrations.set(pool, byTable);
	}
	let pending = byTable.get(table);
	if (!pending) {
		pending = migrate(pool, { table });
		byTable.set(table, pending);
		// A failed migration (server down) is retried by the next call.
		pending.catch(() => byTable.delete(table));
	}
	return pending;
}

/** Forgets the migration of `table` on `pool`: the table was dropped since; the next call creates it again. */
function forgetTable(pool, table) {
	migrations.get(pool)?.delete(table);
}

// PostgreSQL's error code for a table that does not exist.
const UNDEFINED_TABLE = "42P01";

// Keys and values are copied when a call starts: pg sends them later.
const asBuffer = (bytes) => Buffer.from(bytes);
const placeholders = (count, first) => Array.from({ length: count }, (_, i) => `$${first + i}`).join(", ");

/**
 * A KV store for `open`, holding actor `actorId`'s keys in a PostgreSQL table.
 * @param {import("pg").Pool} pool a pg Pool (or a connected Client)
 * @param {string} actorId whose keys these are: at most 512 UTF-8 bytes, no NUL, no lone surrogate
 * @param {{ limits?: object, table?: string, migrate?: boolean }} [options]
 */
function createPostgresKv(pool, actorId, options = {}) {
	checkQueryable(pool);
	if (typeof actorId !== "string") throw new TypeError(`actorId must be a string, got ${typeof actorId}`);
	if (actorId.includes("\0")) throw new TypeError("actorId must not contain NUL characters (PostgreSQL TEXT cannot hold them)");
	// Two ids UTF-8 cannot tell apart (lone surrogates become U+FFFD) would share keys.
	if (!actorId.isWellFormed()) throw new TypeError("actorId must be well-formed UTF-16: it has a lone surrogate");
	if (Buffer.byteLength(actorId, "utf8") > MAX_ACTOR_ID_BYTES) {
		throw new RangeError(`actorId must be at most ${MAX_ACTOR_ID_BYTES} UTF-8 bytes (PostgreSQL's index row limit)`);
	}
	if (options === null || typeof options !== "object") throw new TypeError("options must be an object");
	const check = createChecks(options.limits);
	// A putBatch's statement: the actor, the table, the epoch, and a key and a value per entry.
	if (2 * check.limits.maxKeysPerCall + 3 > MAX_PARAMETERS) {
		throw new RangeError(`maxKeysPerCall must be at most ${(MAX_PARAMETERS - 3) / 2} for PostgreSQL (parameters per statement)`);
	}
	const tableName = options.table ?? DEFAULT_TABLE;
	const table = quoteTable(tableName);
	const owners = quoteOwners(tableName);
	// Read once: what the caller's options say later does not change this KV.
	const migrates = options.migrate !== false;
	const ready = migrates ? () => ensureTable(pool, tableName) : () => undefined;

	const query = async (sql, params) => {
		await ready();
		try {
			return await pool.query(sql, params);
		} catch (error) {
			if (error?.code === UNDEFINED_TABLE && migrates) forgetTable(pool, tableName);
			throw error;
		}
	};

	// Ownership (see the top of this file); the epoch is a string, as pg
	// returns a BIGINT.
	const ownership = createOwnership(async () => {
		const { rows } = await query(
			`INSERT INTO ${owners} AS o (kv_table, actor, epoch) VALUES ($2, $1, 1) ON CONFLICT (kv_table, actor) DO UPDATE SET epoch = o.epoch + 1 RETURNING epoch`,
			[actorId, tableName],
		);
		return String(rows[0].epoch);
	});
	// A write of this KV: the statement `modify(owned)` makes ($1 the actor,
	// `params` from $4 on), whose rows are to be changed only where `owned`
	// holds: while the actor's epoch is this KV's, which it holds meanwhile.
	const fenced = async (modify, params) => {
		await ownership.own();
		const owned = "EXISTS (SELECT 1 FROM owner)";
		const { rows } = await query(
			`WITH owner AS (SELECT 1 FROM ${owners} WHERE kv_table = $2 AND actor = $1 AND epoch = $3::bigint FOR SHARE), changed AS (${modify(owned)} RETURNING 1) SELECT count(*)::int AS owned FROM owner`,
			[actorId, tableName, ownership.epoch, ...params],
		);
		if (rows[0].owned !== 1) throw fencedError(actorId);
	};

	const select = async (keys) => {
		// Copied before the first await, as writes are (see asBuffer).
		const params = [actorId, ...keys.map(asBuffer)];
		const count = keys.length;
		await ownership.own();
		if (count === 0) return [];
		const { rows } = await query(`SELECT key, value FROM ${table} WHERE actor = $1 AND key IN (${placeholders(count, 2)})`, params);
		const found = new Map(rows.map((row) => [row.key.toString("hex"), row.value]));
		// From the copies: the caller may have changed its keys since.
		return params.slice(1).map((key) => found.get(key.toString("hex")) ?? null);
	};

	const upsert = async (entries) => {
		if (entries.length === 0) return;
		// In key order: two writers whose rows overlap then lock them in the
		// same order, and cannot deadlock.
		const unique = [...lastPerKey(entries)].sort(([a], [b]) => Buffer.compare(a, b));
		const params = [];
		const rows = unique.map(([key, value]) => {
			params.push(asBuffer(key), asBuffer(value));
			return `($${params.length + 2}::bytea, $${params.length + 3}::bytea)`;
		});
		await fenced(
			(owned) =>
				`INSERT INTO ${table} (actor, key, value) SELECT $1, v.key, v.value FROM (VALUES ${rows.join(", ")}) AS v(key, value) WHERE ${owned} ON CONFLICT (actor, key) DO UPDATE SET value = excluded.value`,
			params,
		);
	};

	return {
		actorId,
		limits: check.limits,
		async get(key) {
			return (await select([check.key(key)]))[0];
		},
		async getBatch(keys) {
			return select(check.keys("getBatch", keys));
		},
		async put(key, value) {
			await upsert([[check.key(key), check.value(value)]]);
		},
		async putBatch(entries) {
			await upsert(check.entries(entries));
		},
		async deleteBatch(keys) {
			check.keys("deleteBatch", keys);
			if (keys.length === 0) return;
			const list = placeholders(keys.length, 4);
			await fenced((owned) => `DELETE FROM ${table} WHERE actor = $1 AND key IN (${list}) AND ${owned}`, keys.map(asBuffer));
		},
		/** Every [key, value] pair of this actor, in key order. */
		async entries() {
			const { rows } = await query(`SELECT key, value FROM ${table} WHERE actor = $1 ORDER BY key`, [actorId]);
			return rows.map((row) => [row.key, row.value]);
		},
		/** Deletes every key of this actor (its database is gone). */
		async clear() {
			await query(`DELETE FROM ${table} WHERE actor = $1`, [actorId]);
		},
	};
}

module.exports = { createPostgresKv, migrate, DEFAULT_TABLE };
