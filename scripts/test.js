"use strict";

// `npm test`: builds the addon if needed, then runs the whole __test__ suite
// once per runtime and engine: Node (node --test) and Bun (bun test), each
// against the native engine and against the WASM engine. Fails if any run
// fails. Pass runtime or engine names to run a subset:
//   node scripts/test.js            # everything
//   node scripts/test.js bun wasm   # Bun with the WASM engine only

const { spawnSync } = require("node:child_process");
const path = require("node:path");

const root = path.join(__dirname, "..");
const bun = path.join(root, "node_modules", ".bin", "bun");

const RUNTIMES = {
	node: [process.execPath, ["--test", "--test-concurrency=1", "__test__/"]],
	bun: [bun, ["test", "--timeout", "600000", "__test__/"]],
};
const ENGINES = ["native", "wasm"];

const filters = process.argv.slice(2);
const pick = (names) => (filters.some((f) => names.includes(f)) ? names.filter((n) => filters.includes(n)) : names);

const build = spawnSync(process.execPath, [path.join(__dirname, "ensure-build.js")], { cwd: root, stdio: "inherit" });
if (build.status !== 0) process.exit(build.status ?? 1);

const results = [];
for (const runtime of pick(Object.keys(RUNTIMES))) {
	for (const engine of pick(ENGINES)) {
		const [cmd, args] = RUNTIMES[runtime];
		console.log(`\n=== ${runtime} · ${engine} engine: ${path.basename(cmd)} ${args.join(" ")}\n`);
		const started = Date.now();
		const run = spawnSync(cmd, args, {
			cwd: root,
			stdio: "inherit",
			env: { ...process.env, RIVETKIT_SQLITE_BACKEND: engine },
		});
		results.push({ runtime, engine, ok: run.status === 0, seconds: ((Date.now() - started) / 1000).toFixed(1) });
	}
}
console.log("\n=== summary");
for (const r of results) console.log(`${r.ok ? "pass" : "FAIL"}  ${r.runtime} · ${r.engine} (${r.seconds} s)`);
const failed = results.filter((r) => !r.ok).length;
console.log(`${results.length - failed} passed, ${failed} failed`);
process.exit(failed === 0 ? 0 : 1);
