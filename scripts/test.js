"use strict";

// `npm test`: builds the addon if needed, then runs the whole __test__ suite
// once per runtime and engine: the machine's Node, Node 22 and Node 24 (the
// official binaries from the npm registry, fetched on first use by
// scripts/runtimes.js), each with `node --test`, and Bun (the `bun`
// devDependency) with `bun test`; each against the native engine and against
// the WASM engine. Before each run, the runtime opens a database with that
// engine, so a runtime that cannot load the native addon fails. A runtime that
// is not available on this platform is skipped and listed as such; with
// --require-all (CI) a skipped runtime fails the run.
//
// Then the real KV stores (lib/kv/), with the native engine: their own tests
// (__test__/stores/<store>.test.mjs: the KV contract, crashes, a killed
// server) and the persistence, durability and interop suites over the store
// (SQLITE_VFS_TEST_KV=<store>, see __test__/helpers/kv.mjs): LMDB under the
// machine's Node and Bun, PostgreSQL under the machine's Node, on a throwaway
// cluster started here (Unix socket only) when PostgreSQL's server binaries
// are installed (Debian's postgresql package), else skipped with the reason.
//
// Fails if any run fails. Pass runtime, engine or store names ("memory",
// "lmdb", "postgres") to run a subset:
//   node scripts/test.js                # everything
//   node scripts/test.js node native    # npm run test:quick: the inner loop
//   node scripts/test.js bun wasm       # Bun with the WASM engine only
//   node scripts/test.js node22 node24  # Node 22 and 24, both engines
//   node scripts/test.js postgres       # the PostgreSQL store only

const { spawnSync } = require("node:child_process");
const fs = require("node:fs");
const path = require("node:path");

const { NODE_VERSIONS, fetchNode } = require("./runtimes.js");

const root = path.join(__dirname, "..");

// The machine's Node is the one running npm.
const machineNode = process.env.npm_node_execpath || process.execPath;

// `node --test DIR` finds the tests in DIR on Node 20 only (Node 22 and later
// take the argument as a file or a glob), so the files are listed here.
function testFiles(dir) {
	return fs
		.readdirSync(path.join(root, dir), { withFileTypes: true })
		.sort((a, b) => a.name.localeCompare(b.name))
		.flatMap((entry) => {
			const rel = path.join(dir, entry.name);
			if (entry.isDirectory()) return testFiles(rel);
			return /\.test\.[cm]?js$/.test(entry.name) ? [rel] : [];
		});
}
// The real stores' own tests run only in the store runs.
const files = testFiles("__test__").filter((file) => !file.startsWith(path.join("__test__", "stores") + path.sep));
const SUITES_OVER_STORES = ["persistence", "durability", "interop"].map((name) => path.join("__test__", `${name}.test.mjs`));
const storeFiles = (store) => [path.join("__test__", "stores", `${store}.test.mjs`), ...SUITES_OVER_STORES];

// Each runtime: a function returning { cmd } or { skipped: why }.
const fetched = (version) => () => {
	const runtime = fetchNode(version);
	return runtime.skipped ? runtime : { cmd: runtime.bin };
};
const RUNTIMES = {
	node: () => ({ cmd: machineNode }),
	node22: fetched(NODE_VERSIONS.node22),
	node24: fetched(NODE_VERSIONS.node24),
	bun: () => {
		const cmd = path.join(root, "node_modules", ".bin", process.platform === "win32" ? "bun.cmd" : "bun");
		const probe = spawnSync(cmd, ["--version"], { encoding: "utf8" });
		if (probe.status !== 0) return { skipped: `${cmd} does not run (${probe.error?.code ?? `exit ${probe.status}`})` };
		return { cmd };
	},
};
const args = (runtime, list) =>
	runtime === "bun" ? ["test", "--timeout", "600000", ...list.map((file) => `./${file}`)] : ["--test", "--test-concurrency=1", ...list];
const ENGINES = ["native", "wasm"];
// Which runtimes run each real store's tests (with the native engine).
const STORES = { memory: Object.keys(RUNTIMES), lmdb: ["node", "bun"], postgres: ["node"] };

const requireAll = process.argv.includes("--require-all");
const filters = process.argv.slice(2).filter((arg) => arg !== "--require-all");
const pick = (names) => (filters.some((f) => names.includes(f)) ? names.filter((n) => filters.includes(n)) : names);
const unknown = filters.filter((f) => ![...Object.keys(RUNTIMES), ...ENGINES, ...Object.keys(STORES)].includes(f));
if (unknown.length > 0) {
	console.error(`unknown runtime, engine or store: ${unknown.join(", ")}`);
	process.exit(2);
}

// Opens a database with the engine and prints what ran it, from the runtime itself.
const PREFLIGHT = `
	const { open, createMemoryKv } = require("./index.js");
	const engine = process.env.RIVETKIT_SQLITE_BACKEND;
	(async () => {
		const db = await open("preflight", createMemoryKv(), { backend: engine });
		const [[version]] = (await db.query("SELECT sqlite_version()")).rows;
		await db.close();
		const runtime = process.versions.bun ? "Bun " + process.versions.bun : "Node " + process.versions.node;
		console.log(runtime + " (" + process.execPath + "): " + db.backend + " engine, SQLite " + version);
		if (db.backend !== engine) throw new Error("expected the " + engine + " engine, got " + db.backend);
	})().catch((error) => { console.error(error); process.exit(1); });
`;

const build = spawnSync(process.execPath, [path.join(__dirname, "ensure-build.js")], { cwd: root, stdio: "inherit" });
if (build.status !== 0) process.exit(build.status ?? 1);

// Each runtime resolved once: { cmd } or { skipped: why }.
const resolved = new Map();
function resolve(runtime) {
	if (!resolved.has(runtime)) resolved.set(runtime, RUNTIMES[runtime]());
	return resolved.get(runtime);
}

/** Runs `list` under `runtime` with `engine`; `env` adds variables. */
function run(runtime, engine, list, env = {}) {
	const { cmd } = resolve(runtime);
	const runEnv = { ...process.env, RIVETKIT_SQLITE_BACKEND: engine, ...env };
	const runArgs = args(runtime, list);
	const shown = list.length > 4 ? [...runArgs.slice(0, 2), `(${list.length} test files)`] : runArgs;
	const where = cmd.startsWith(root + path.sep) ? path.relative(root, cmd) : cmd;
	console.log(`${where} ${shown.join(" ")}\n`);
	const preflight = spawnSync(cmd, ["-e", PREFLIGHT], { cwd: root, stdio: "inherit", env: runEnv });
	if (preflight.status !== 0) {
		console.log(`${runtime} could not open a database with the ${engine} engine`);
		return false;
	}
	return spawnSync(cmd, runArgs, { cwd: root, stdio: "inherit", env: runEnv }).status === 0;
}

const results = [];
function record(name, started, ok, skipped = false) {
	results.push({ name, ok, skipped, seconds: ((Date.now() - started) / 1000).toFixed(1) });
}

(async () => {
	const stores = pick(Object.keys(STORES));
	const runtimes = pick(Object.keys(RUNTIMES));
	const engines = pick(ENGINES);
	for (const runtime of runtimes) {
		const found = resolve(runtime);
		if (found.skipped) {
			console.log(`\n=== ${runtime}: skipped: ${found.skipped}`);
			record(`${runtime}: ${found.skipped}`, Date.now(), !requireAll, !requireAll);
		}
	}
	const available = runtimes.filter((runtime) => !resolve(runtime).skipped);
	if (stores.includes("memory")) {
		for (const runtime of available) {
			for (const engine of engines) {
				const started = Date.now();
				console.log(`\n=== ${runtime} · ${engine} engine`);
				record(`${runtime} · ${engine}`, started, run(runtime, engine, files));
			}
		}
	}
	if (!engines.includes("native")) return;
	for (const store of stores.filter((s) => s !== "memory")) {
		for (const runtime of available.filter((r) => STORES[store].includes(r))) {
			const started = Date.now();
			const name = `${runtime} · native · ${store} KV`;
			console.log(`\n=== ${name}`);
			const env = { SQLITE_VFS_TEST_KV: store };
			let cluster = null;
			if (store === "postgres") {
				const { postgresUnavailable, startPostgres } = await import("../__test__/helpers/postgres.mjs");
				const why = postgresUnavailable();
				if (why) {
					console.log(`skipped: ${why}`);
					record(name, started, true, true);
					continue;
				}
				cluster = await startPostgres();
				env.SQLITE_VFS_TEST_PG_HOST = cluster.host;
				env.SQLITE_VFS_TEST_PG_PORT = String(cluster.port);
			}
			try {
				record(name, started, run(runtime, "native", storeFiles(store), env));
			} finally {
				await cluster?.stop();
			}
		}
	}
})()
	.catch((error) => {
		console.error(error);
		results.push({ name: "test runner", ok: false, seconds: "0" });
	})
	.finally(summary);

function summary() {
	console.log("\n=== summary");
	for (const r of results) console.log(`${r.skipped ? "skip" : r.ok ? "pass" : "FAIL"}  ${r.name} (${r.seconds} s)`);
	const failed = results.filter((r) => !r.ok).length;
	const skipped = results.filter((r) => r.skipped).length;
	if (requireAll && skipped > 0) console.log("--require-all: a skipped runtime fails the run");
	console.log(`${results.length - failed - skipped} passed, ${failed} failed${skipped ? `, ${skipped} skipped` : ""}`);
	process.exit(failed === 0 ? 0 : 1);
}
