"use strict";

// `npm test`: builds the addon if needed, then runs the whole __test__ suite
// once per runtime and engine: the machine's Node, Node 22 and Node 24 (the
// official binaries from the npm registry, fetched on first use by
// scripts/runtimes.js), each with `node --test`, and Bun (the `bun`
// devDependency) with `bun test`; each against the native engine and against
// the WASM engine. Before each run, the runtime opens a database with that
// engine, so a runtime that cannot load the native addon fails. A runtime that
// is not available on this platform is skipped and listed as such; with
// --require-all (CI) a skipped runtime fails the run. Fails if any run fails.
// Pass runtime or engine names to run a subset:
//   node scripts/test.js                # everything
//   node scripts/test.js node native    # npm run test:quick: the inner loop
//   node scripts/test.js bun wasm       # Bun with the WASM engine only
//   node scripts/test.js node22 node24  # Node 22 and 24, both engines

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
const files = testFiles("__test__");

// Each runtime: a function returning { cmd, args } or { skipped: why }.
const nodeRun = (cmd) => ({ cmd, args: ["--test", "--test-concurrency=1", ...files] });
const fetched = (version) => () => {
	const runtime = fetchNode(version);
	return runtime.skipped ? runtime : nodeRun(runtime.bin);
};
const RUNTIMES = {
	node: () => nodeRun(machineNode),
	node22: fetched(NODE_VERSIONS.node22),
	node24: fetched(NODE_VERSIONS.node24),
	bun: () => {
		const cmd = path.join(root, "node_modules", ".bin", process.platform === "win32" ? "bun.cmd" : "bun");
		const probe = spawnSync(cmd, ["--version"], { encoding: "utf8" });
		if (probe.status !== 0) return { skipped: `${cmd} does not run (${probe.error?.code ?? `exit ${probe.status}`})` };
		return { cmd, args: ["test", "--timeout", "600000", "__test__/"] };
	},
};
const ENGINES = ["native", "wasm"];

const argv = process.argv.slice(2);
const requireAll = argv.includes("--require-all");
const filters = argv.filter((a) => a !== "--require-all");
const pick = (names) => (filters.some((f) => names.includes(f)) ? names.filter((n) => filters.includes(n)) : names);

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

const results = [];
const skipped = [];
for (const runtime of pick(Object.keys(RUNTIMES))) {
	const found = RUNTIMES[runtime]();
	if (found.skipped) {
		console.log(`\n=== ${runtime}: skipped: ${found.skipped}`);
		skipped.push({ runtime, why: found.skipped });
		continue;
	}
	const { cmd, args } = found;
	for (const engine of pick(ENGINES)) {
		const env = { ...process.env, RIVETKIT_SQLITE_BACKEND: engine };
		const started = Date.now();
		const shown = args.length > 6 ? [...args.slice(0, 2), `(${files.length} test files)`] : args;
		const where = cmd.startsWith(root + path.sep) ? path.relative(root, cmd) : cmd;
		console.log(`\n=== ${runtime} · ${engine} engine: ${where} ${shown.join(" ")}\n`);
		let ok = false;
		const preflight = spawnSync(cmd, ["-e", PREFLIGHT], { cwd: root, stdio: "inherit", env });
		if (preflight.status !== 0) console.log(`${runtime} could not open a database with the ${engine} engine`);
		else ok = spawnSync(cmd, args, { cwd: root, stdio: "inherit", env }).status === 0;
		results.push({ runtime, engine, ok, seconds: ((Date.now() - started) / 1000).toFixed(1) });
	}
}
console.log("\n=== summary");
for (const r of results) console.log(`${r.ok ? "pass" : "FAIL"}  ${r.runtime} · ${r.engine} (${r.seconds} s)`);
for (const s of skipped) console.log(`skip  ${s.runtime}: ${s.why}`);
const failed = results.filter((r) => !r.ok).length + (requireAll ? skipped.length : 0);
const ran = [...new Set(results.map((r) => r.runtime))];
console.log(`runtimes run: ${ran.join(", ") || "none"}; skipped: ${skipped.map((s) => s.runtime).join(", ") || "none"}`);
if (requireAll && skipped.length > 0) console.log("--require-all: a skipped runtime fails the run");
console.log(`${results.length - results.filter((r) => !r.ok).length} passed, ${failed} failed`);
process.exit(failed === 0 && results.length > 0 ? 0 : 1);
