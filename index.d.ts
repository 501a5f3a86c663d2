// Types of @rivetkit/sqlite-vfs (hand-written; binding.d.ts is generated).

/** The actor's KV store: the interface of @rivetkit/sqlite-vfs 2.2.1. */
export interface KvVfsOptions {
	/** Get a single value by key. Resolves to null if missing. */
	get: (key: Uint8Array) => Promise<Uint8Array | null>;
	/** Get several values; null for missing keys, in the order of `keys`. */
	getBatch: (keys: Uint8Array[]) => Promise<(Uint8Array | null)[]>;
	/** Put a single key-value pair. */
	put: (key: Uint8Array, value: Uint8Array) => Promise<void>;
	/**
	 * Put several key-value pairs, atomically. Values may be views into a
	 * larger shared buffer (their bytes never change): a store that keeps
	 * them in memory should copy them.
	 */
	putBatch: (entries: [Uint8Array, Uint8Array][]) => Promise<void>;
	/** Delete several keys. */
	deleteBatch: (keys: Uint8Array[]) => Promise<void>;
	/** Called with the KV's own error whenever a KV call fails. */
	onError?: (error: unknown) => void;
}

/** Limits of the actor KV that every write respects. */
export interface KvLimits {
	/** Keys per getBatch / putBatch / deleteBatch call. Default 128. */
	maxKeysPerCall: number;
	/** Bytes per value. Default 131072 (128 KiB). */
	maxValueSize: number;
	/** Key + value bytes per putBatch call. Default 999424 (976 KiB). */
	maxBatchBytes: number;
	/** Bytes per key. Default 2048. */
	maxKeySize: number;
}

export declare const DEFAULT_KV_LIMITS: Readonly<KvLimits>;

export interface OpenOptions {
	/** Override the actor KV limits. */
	limits?: Partial<KvLimits>;
	/** Force an engine (undefined or null: native, else WASM; or RIVETKIT_SQLITE_BACKEND). */
	backend?: "native" | "wasm" | null;
	/**
	 * The longest one call may run before it is stopped with SQLITE_INTERRUPT,
	 * in milliseconds (default 30000; 0, Infinity or null: no limit).
	 */
	timeoutMs?: number | null;
	/**
	 * The most values (rows × columns, its statements together) the results of
	 * one call may hold: a statement that would return more fails with
	 * SQLITE_TOOBIG and has no effect. From 1 to 33554432 (2^25, the default).
	 */
	maxResultValues?: number;
	/**
	 * The most bytes of TEXT and BLOB values (UTF-8, as SQLite holds them) the
	 * results of one call may hold: a statement that would return more fails
	 * with SQLITE_TOOBIG and has no effect. From 1 to 1073741824 (2^30, the default).
	 */
	maxResultBytes?: number;
	/**
	 * true: read the whole database at open; false: page it lazily, reading
	 * each page from the KV when SQLite first needs it (native engine).
	 * Default: databases of up to 4 MiB are read whole, larger ones paged lazily.
	 */
	preload?: boolean;
}

/** A value SQLite returns: INTEGER beyond ±(2^53 − 1) comes back as bigint. */
export type SqliteValue = number | bigint | string | Uint8Array | null;

/** A value that can be bound: booleans bind as 1 and 0, an array of bytes (0-255) as a BLOB (as in 2.2.1). */
export type SqliteBindValue = number | bigint | string | Uint8Array | readonly number[] | boolean | null;

/** Positional parameters, or named ones keyed with or without their sigil (`:x`, `@x`, `$x`, `x`). */
export type SqliteBindings = readonly SqliteBindValue[] | Record<string, SqliteBindValue>;

export interface RunResult {
	/** Rows inserted, updated or deleted by the statement(s). */
	changes: number;
	/** The rowid of the last inserted row. */
	lastInsertRowid: number | bigint;
}

export interface QueryResult {
	rows: SqliteValue[][];
	columns: string[];
}

/**
 * Common interface of database handles, as loose as 2.2.1's, so that a
 * handle written against 2.2.1 (a wrapper, a custom ISqliteVfs for rivetkit)
 * still implements it; Database gives the precise types.
 */
export interface IDatabase {
	exec(sql: string, callback?: (row: unknown[], columns: string[]) => void): Promise<void>;
	run(sql: string, params?: SqliteBindings): Promise<RunResult | void>;
	query(sql: string, params?: SqliteBindings): Promise<{ rows: unknown[][]; columns: string[] }>;
	close(): Promise<void>;
	readonly fileName: string;
}

export declare class Database implements IDatabase {
	private constructor();
	/** The name given to open(). */
	readonly fileName: string;
	/** The engine running this database. */
	readonly backend: "native" | "wasm";
	/** Whether close() was called. */
	readonly closed: boolean;
	/** Whether a transaction is open, as of the calls that have run so far. */
	readonly inTransaction: boolean;
	/** Runs every statement of `sql`; the callback sees each result row. */
	exec(sql: string, callback?: (row: SqliteValue[], columns: string[]) => void): Promise<void>;
	/** Runs `sql` with `params` bound to each of its statements (null: none). */
	run(sql: string, params?: SqliteBindings | null): Promise<RunResult>;
	/** Runs `sql` and returns its rows. */
	query(sql: string, params?: SqliteBindings | null): Promise<QueryResult>;
	/** The whole SQLite database file. */
	export(): Promise<Uint8Array>;
	/** Stops the call that is running, if any (after close() too, until the calls made before it have run): it rejects with SQLITE_INTERRUPT. */
	interrupt(): void;
	/**
	 * Waits for pending calls, then closes. Idempotent. Rejects (closing all
	 * the same) when a failed write the KV may have applied cannot be undone.
	 */
	close(): Promise<void>;
}

/** Common interface of SQLite VFS backends (2.2.1). */
export interface ISqliteVfs {
	open(fileName: string, options: KvVfsOptions): Promise<IDatabase>;
	destroy(): Promise<void>;
}

/** The 2.2.1 entry point: one instance per group of databases. */
export declare class SqliteVfs implements ISqliteVfs {
	/** 2.2.1 took a WASM module to share; accepted and ignored (the engines share theirs). */
	constructor(wasmModule?: unknown);
	/** Opens `fileName` in `kv`; rejects (SQLITE_BUSY) if that name is already open on this instance. */
	open(fileName: string, kv: KvVfsOptions, options?: OpenOptions): Promise<Database>;
	/** Closes the database named `fileName`, if this instance has it open or opening. */
	closeFile(fileName: string): Promise<void>;
	/** 2.2.1's closeFile(): whether every close succeeded. */
	forceCloseByFileName(fileName: string): Promise<{ allSucceeded: boolean }>;
	/** Closes every database of this instance, ignoring errors; later opens still work. */
	forceCloseAll(): Promise<void>;
	/** Closes every database of this instance; later opens reject. */
	destroy(): Promise<void>;
	/** Alias of destroy(). */
	close(): Promise<void>;
}

export interface SqliteVfsPoolConfig {
	/** Actors per pool instance (a group of actors; see README). */
	actorsPerInstance: number;
	/** How long an instance with no actors lives on. Default (and null): 30000; negative: not at all; Infinity, or over 2^31 - 1 ms: for good. */
	idleDestroyMs?: number | null;
}

/** The pool rivetkit uses: one sticky handle per actor. */
export declare class SqliteVfsPool {
	constructor(config: SqliteVfsPoolConfig);
	/** Live pool instances. */
	readonly instanceCount: number;
	/** Actors holding a handle. */
	readonly actorCount: number;
	/** The actor's handle: the same one until released. */
	acquire(actorId: string): Promise<PooledSqliteHandle>;
	/** Closes the actor's databases and frees its place. */
	release(actorId: string): Promise<void>;
	/** Closes everything; later acquire() calls reject. */
	shutdown(): Promise<void>;
}

/** One actor's handle from a SqliteVfsPool. */
export declare class PooledSqliteHandle implements ISqliteVfs {
	private constructor();
	/** Opens the actor's database (named after the actor). */
	open(fileName: string, kv: KvVfsOptions, options?: OpenOptions): Promise<Database>;
	/** Releases the actor's place in the pool. Idempotent. */
	destroy(): Promise<void>;
}

/** A SQLite failure, or a KV failure while persisting (then `cause` is the KV's error). */
export declare class SqliteError extends Error {
	constructor(message: string, code: string, options?: { cause?: unknown });
	readonly name: "SqliteError";
	/** SQLite's extended result code name, e.g. "SQLITE_CONSTRAINT_UNIQUE". */
	readonly code: string;
	/** The KV's own error, when a KV call failed; what failed first, for an error that wraps another. */
	readonly cause?: unknown;
}

/** Opens the database stored in `kv` (an empty one if the KV holds none). */
export declare function open(fileName: string, kv: KvVfsOptions, options?: OpenOptions): Promise<Database>;

/** The embedded default KV: in memory, with the actor KV's limits. */
export interface MemoryKv extends KvVfsOptions {
	readonly size: number;
	entries(): [Uint8Array, Uint8Array][];
	clone(): MemoryKv;
}

export declare function createMemoryKv(options?: { limits?: Partial<KvLimits> }): MemoryKv;
