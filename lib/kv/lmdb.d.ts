// Types of @rivetkit/sqlite-vfs/kv/lmdb (hand-written).

import type { KvLimits, KvVfsOptions } from "../../index";

export interface LmdbKvOptions {
	/** Whose keys these are: one LMDB environment holds any number of actors' KVs. Default "". At most 1024 UTF-8 bytes, no lone surrogate. */
	actor?: string;
	/** Override the actor KV limits the store enforces. */
	limits?: Partial<KvLimits>;
	/** LMDB's initial map size in bytes (it grows as needed): an integer from 4096 to 2 ** 44. */
	mapSize?: number;
}

/** A durable KV store for `open`, in an LMDB environment. */
export interface LmdbKv extends KvVfsOptions {
	readonly actor: string;
	readonly limits: Readonly<KvLimits>;
	/** The environment's directory (real path). */
	readonly path: string;
	/** Every [key, value] pair of this actor, in key order. */
	entries(): Promise<[Uint8Array, Uint8Array][]>;
	/** Deletes every key of this actor, in one transaction. */
	clear(): Promise<void>;
	/** Releases the environment (closed with the last KV on it). Idempotent; later calls reject. */
	close(): Promise<void>;
}

/**
 * A KV store for `open` holding `options.actor`'s keys in the LMDB environment
 * at `folder` (created if missing). Each putBatch and deleteBatch is one LMDB
 * write transaction, durable (flushed to disk) when its promise resolves.
 * Its first call takes the actor over: the writes of KVs of the actor created
 * before it, in any process, reject from then on with
 * `code: "ERR_SQLITE_KV_FENCED"` and apply nothing. Needs the optional peer
 * dependency `lmdb`.
 */
export declare function createLmdbKv(folder: string, options?: LmdbKvOptions): LmdbKv;

/** The longest key LMDB stores, the actor's prefix (2 bytes + its UTF-8 id) included. */
export declare const LMDB_MAX_KEY_SIZE: number;
