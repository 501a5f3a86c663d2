// Types of @rivetkit/sqlite-vfs/kv/postgres (hand-written).

import type { KvLimits, KvVfsOptions } from "../../index";

/** What the store needs of a pg Pool (or Client): `query(text, values)`. */
export interface Queryable {
	query(text: string, values?: unknown[]): Promise<{ rows: any[] }>;
}

export interface PostgresKvOptions {
	/** Override the actor KV limits the store enforces (maxKeysPerCall at most 32766). */
	limits?: Partial<KvLimits>;
	/** The table, `name` or `schema.name` (plain identifiers of at most 63 characters). Default "sqlite_vfs_kv". */
	table?: string;
	/** Create the table on first use if missing (default true); false if `migrate()` already ran. */
	migrate?: boolean;
}

/** A KV store for `open`, in a PostgreSQL table. */
export interface PostgresKv extends KvVfsOptions {
	readonly actorId: string;
	readonly limits: Readonly<KvLimits>;
	/** Every [key, value] pair of this actor, in key order. */
	entries(): Promise<[Uint8Array, Uint8Array][]>;
	/** Deletes every key of this actor. */
	clear(): Promise<void>;
}

/**
 * A KV store for `open` holding actor `actorId`'s keys (an id of at most 512
 * UTF-8 bytes, no NUL, no lone surrogate) in one table
 * `(actor TEXT, key BYTEA, value BYTEA, PRIMARY KEY (actor, key))`. Each call
 * is one SQL statement: putBatch one multi-row upsert, atomic and durable
 * once PostgreSQL committed it. Give it a `pg.Pool` (the optional peer
 * dependency `pg`), with an `error` listener on the pool. Its first call
 * takes the actor over (table `sqlite_vfs_owners`): the writes of KVs of the
 * actor created before it, in any process, reject from then on with
 * `code: "ERR_SQLITE_KV_FENCED"` and apply nothing.
 */
export declare function createPostgresKv(pool: Queryable, actorId: string, options?: PostgresKvOptions): PostgresKv;

/** Creates the table, and the ownership table `sqlite_vfs_owners` in its schema, if missing (idempotent). */
export declare function migrate(pool: Queryable, options?: { table?: string }): Promise<void>;

/** "sqlite_vfs_kv" */
export declare const DEFAULT_TABLE: string;
