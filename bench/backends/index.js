"use strict";

// Every backend the benchmark knows, in the order the report shows them.
// A backend: { id, label, usesKv, create() -> { open(name, kv) -> db,
// materialize(name, kv), destroy() } }, where db has exec(sql),
// run(sql, params), query(sql, params) -> rows (arrays), close(), and
// export() where the backend has one (2.2.1 has none). Optional:
// `store` (runs on a real KV store, at no added latency) and `workloads`
// (runs only those).

const { native, wasm, nativeLmdb, nativePg } = require("./this-package");
const v221 = require("./v221");
const seed = require("./seed");
const { bs3File, bs3Mem } = require("./better-sqlite3");

const BACKENDS = [native, wasm, nativeLmdb, nativePg, v221, seed, bs3File, bs3Mem];

function backendById(id) {
	const backend = BACKENDS.find((b) => b.id === id);
	if (!backend) throw new Error(`unknown backend "${id}" (known: ${BACKENDS.map((b) => b.id).join(", ")})`);
	return backend;
}

module.exports = { BACKENDS, backendById };
