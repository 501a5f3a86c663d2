// The KV store subpaths (@rivetkit/sqlite-vfs/kv/lmdb, /kv/postgres): the
// core entry loads neither client library, and each subpath gives the same
// functions to require() and import, and the LMDB store loads under every
// runtime the suite runs on.

import { test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { createRequire } from "node:module";
import path from "node:path";
import { fileURLToPath } from "node:url";

import fs from "node:fs";

import { DEFAULT_KV_LIMITS } from "../index.mjs";
import { tempDir } from "./helpers/stores.mjs";

const root = path.join(path.dirname(fileURLToPath(import.meta.url)), "..");
const require = createRequire(import.meta.url);

test("the core entry loads neither lmdb nor pg", () => {
	const script = `
		const { open, createMemoryKv } = require("@rivetkit/sqlite-vfs");
		open("x", createMemoryKv()).then(async (db) => {
			await db.exec("CREATE TABLE t(x)");
			await db.close();
			const loaded = Object.keys(require.cache).filter((file) => /node_modules[\\\\/](lmdb|pg|@lmdb)[\\\\/]/.test(file));
			console.log(JSON.stringify(loaded));
		});
	`;
	const out = execFileSync(process.execPath, ["-e", script], { cwd: root, encoding: "utf8" });
	assert.deepEqual(JSON.parse(out.trim().split("\n").at(-1)), []);
});

test("each subpath gives require() and import the same functions", async () => {
	for (const [subpath, names] of [
		["@rivetkit/sqlite-vfs/kv/lmdb", ["createLmdbKv", "LMDB_MAX_KEY_SIZE"]],
		["@rivetkit/sqlite-vfs/kv/postgres", ["createPostgresKv", "migrate", "DEFAULT_TABLE"]],
	]) {
		const cjs = require(subpath);
		const esm = await import(subpath);
		for (const name of names) {
			assert.notEqual(cjs[name], undefined, `${subpath} ${name}`);
			assert.equal(esm[name], cjs[name], `${subpath} ${name}`);
		}
	}
	assert.equal(require("@rivetkit/sqlite-vfs/kv/lmdb").LMDB_MAX_KEY_SIZE, 1978);
	assert.equal(require("@rivetkit/sqlite-vfs/kv/postgres").DEFAULT_TABLE, "sqlite_vfs_kv");
});

test("DEFAULT_KV_LIMITS are the actor KV's, frozen", () => {
	assert.deepEqual({ ...DEFAULT_KV_LIMITS }, { maxKeysPerCall: 128, maxValueSize: 131072, maxBatchBytes: 999424, maxKeySize: 2048 });
	assert.ok(Object.isFrozen(DEFAULT_KV_LIMITS));
});

test("the LMDB store loads and works under this runtime (lmdb's prebuilt binary, no install script)", async () => {
	const { createLmdbKv } = require("@rivetkit/sqlite-vfs/kv/lmdb");
	const folder = tempDir("sqlite-vfs-lmdb-load-");
	const kv = createLmdbKv(folder, { actor: "load", limits: { maxKeysPerCall: 64 } });
	assert.equal(kv.actor, "load");
	assert.equal(kv.path, fs.realpathSync(folder));
	assert.deepEqual(kv.limits, { ...DEFAULT_KV_LIMITS, maxKeysPerCall: 64 });
	await kv.putBatch([[Uint8Array.of(1), Uint8Array.of(2, 3)]]);
	assert.deepEqual(
		(await kv.getBatch([Uint8Array.of(1), Uint8Array.of(2)])).map((v) => v && [...v]),
		[[2, 3], null],
	);
	await kv.close();
});
