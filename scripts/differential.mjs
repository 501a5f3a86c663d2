// The differential test's long run (__test__/differential.test.mjs runs a few
// fixed seeds): many seeds, longer workloads, each engine.
//
//   node scripts/differential.mjs [--seeds 1..200] [--steps 300] [--engines native,wasm]
//                                 [--avoid 1,2,4,5] [--reference better-sqlite3|sql.js] [--lazy] [--auto-vacuum FULL|INCREMENTAL] [--trace] [--trace-kv]
//
// --trace prints each call as it settles; --trace-kv adds each KV call as it
// is made (its keys by file and kind, the file sizes it writes, its fault),
// to the trace and to a failure's last lines. A run with latency and engine
// threads is not exactly repeatable: a failure may need a few replays.
// --lazy: every database is paged lazily (`preload: false`); faults then hit
// KV writes only. --auto-vacuum: the database has that auto_vacuum mode (its
// commits move pages); with INCREMENTAL, the workload runs incremental_vacuum.
// --seeds: a range `a..b` or a list `1,5,9`. --avoid: defects of issue 12 to
// steer clear of (default: none, so every defect the workloads reach is
// reported). Builds better-sqlite3's addon for this Node first if needed
// (bench/setup.js), so the reference is better-sqlite3; under Bun, sql.js.
// Prints one line per seed and engine, the divergence in full for each
// failure, and exits 1 if any seed failed.

import { createRequire } from "node:module";
import { parseArgs } from "node:util";

const require = createRequire(import.meta.url);

const { values } = parseArgs({
	options: {
		seeds: { type: "string", default: "1..50" },
		steps: { type: "string", default: "300" },
		engines: { type: "string", default: "native,wasm" },
		avoid: { type: "string", default: "" },
		reference: { type: "string" },
		trace: { type: "boolean", default: false },
		"trace-kv": { type: "boolean", default: false },
		lazy: { type: "boolean", default: false },
		"auto-vacuum": { type: "string" },
	},
});

function parseSeeds(text) {
	const range = /^(\d+)\.\.(\d+)$/.exec(text);
	if (range) {
		const out = [];
		for (let s = Number(range[1]); s <= Number(range[2]); s++) out.push(s);
		return out;
	}
	return text.split(",").map(Number);
}

const seeds = parseSeeds(values.seeds);
const steps = Number(values.steps);
const engines = values.engines.split(",");
const avoid = new Set(values.avoid.split(",").filter(Boolean).map(Number));

require("./ensure-build.js");
const { runDifferential } = await import("../__test__/helpers/differential.mjs");
const { createReference } = await import("../__test__/helpers/reference.mjs");

if (!process.versions.bun && values.reference !== "sql.js") {
	const probe = await createReference();
	probe.close();
	if (probe.kind !== "better-sqlite3") {
		const result = require("../bench/setup.js").ensureBetterSqlite3();
		if (!result.available) console.log(`better-sqlite3: n/a (${result.reason}); the reference is sql.js`);
	}
}

const failures = [];
const started = Date.now();
for (const backend of engines) {
	for (const seed of seeds) {
		const t = Date.now();
		try {
			const stats = await runDifferential({
				seed,
				steps,
				backend,
				avoid,
				reference: values.reference,
				preload: values.lazy ? false : undefined,
				autoVacuum: values["auto-vacuum"]?.toUpperCase(),
				trace: values.trace ? (line) => console.log(`  ${line}`) : undefined,
				traceKv: values["trace-kv"],
			});
			const { reference, calls, resolved, kvFailures, faults, journaledWrites, copies, hotJournals, reopens, recoveryFaults } = stats;
			console.log(
				`ok    ${backend} seed ${seed} (${Date.now() - t} ms): ${calls} calls, ${resolved} resolved, ${kvFailures} lost to ${faults} KV faults, ${journaledWrites} journaled writes, ${copies} KV copies (${hotJournals} with a hot journal), ${reopens} reopens, ${recoveryFaults} interrupted recoveries, ${reference}`,
			);
		} catch (error) {
			failures.push({ backend, seed, error });
			console.log(`FAIL  ${backend} seed ${seed} (${Date.now() - t} ms): ${String(error.message).split("\n")[0]}`);
		}
	}
}
for (const { backend, seed, error } of failures) console.log(`\n=== ${backend} seed ${seed}\n${error.stack ?? error}`);
console.log(
	`\n${seeds.length * engines.length - failures.length} passed, ${failures.length} failed, ${((Date.now() - started) / 1000).toFixed(0)} s` +
		(failures.length
			? ` (replay one: node scripts/differential.mjs --seeds ${failures[0].seed} --steps ${steps} --engines ${failures[0].backend}${avoid.size ? ` --avoid ${[...avoid]}` : ""} --trace)`
			: ""),
);
process.exit(failures.length === 0 ? 0 : 1);
