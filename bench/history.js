"use strict";

// The figures of issue 11 that move the most from run to run, one line per
// kept run (bench/runs/): what the main README's "Run to run" table shows.
// Each ratio is taken within its own run, as the report takes it.
//
//   node bench/history.js [FILE.json[.gz] ...]   # default: bench/runs/*.json.gz, oldest first

const fs = require("node:fs");
const path = require("node:path");
const zlib = require("node:zlib");

const { ratio } = require("./report");

function load(file) {
	const raw = fs.readFileSync(file);
	return JSON.parse((file.endsWith(".gz") ? zlib.gunzipSync(raw) : raw).toString("utf8"));
}

/** The row of `run` for figure `key` of `row` at `latencyMs`, or undefined. */
function find(run, row, key, latencyMs = 0) {
	return run.rows.find((r) => r.row === row && r.key === key && r.latencyMs === latencyMs);
}

/** "× better" of backend `ours` against `ref` on a figure of `run`, as the report reads it. */
function ratioIn(run, row, key, ours, ref, latencyMs = 0) {
	const r = find(run, row, key, latencyMs);
	return r ? ratio(r.values[ours], r.values[ref], r.better) : null;
}

function value(run, row, key, backend, latencyMs = 0) {
	return find(run, row, key, latencyMs)?.values[backend] ?? null;
}

const x = (v) => (v == null ? "—" : `${v.toFixed(2)}×`);
const num = (v, digits = 1) => (v == null ? "—" : v.toFixed(digits));
const kps = (v) => (v == null ? "—" : `${(v / 1000).toFixed(1)}k`);

const COLUMNS = [
	["run (ended)", (run, file) => `${path.basename(file).replace(/\.json(\.gz)?$/, "")} (${run.date.slice(11, 16)} UTC)`],
	[
		"runtime, CPU",
		(run) => `${run.machine.runtime.replace("Node v", "Node ")}, ${run.machine.cpu.replace(/\(R\)/g, "").replace(" Processor", "")}`,
	],
	["bs3 mem W1", (run) => kps(value(run, "W1", "opsPerSec", "bs3-mem"))],
	["W1 / 2.2.1", (run) => x(ratioIn(run, "W1", "opsPerSec", "native", "v2.2.1"))],
	["W1 / bs3 mem", (run) => x(ratioIn(run, "W1", "opsPerSec", "native", "bs3-mem"))],
	["W1 first 1,000", (run) => x(ratioIn(run, "W1", "firstOpsPerSec", "native", "bs3-mem"))],
	["W2c (1 MiB tx)", (run) => x(ratioIn(run, "W2c", "ms", "native", "bs3-mem"))],
	["W3 / 2.2.1", (run) => x(ratioIn(run, "W3", "opsPerSec", "native", "v2.2.1"))],
	["W3 / bs3 mem", (run) => x(ratioIn(run, "W3", "opsPerSec", "native", "bs3-mem"))],
	[
		"W3 first 1,000 (0 / 1 ms)",
		(run) =>
			`${x(ratioIn(run, "W3", "firstOpsPerSec", "native", "bs3-mem"))} / ${x(ratioIn(run, "W3", "firstOpsPerSec", "native", "bs3-mem", 1))}`,
	],
	["R gap (ms)", (run) => num(value(run, "R", "eventLoopDelayMaxMs", "native"))],
];

function main() {
	let files = process.argv.slice(2);
	if (files.length === 0) {
		const dir = path.join(__dirname, "runs");
		files = fs
			.readdirSync(dir)
			.filter((f) => /\.json(\.gz)?$/.test(f))
			.map((f) => path.join(dir, f));
	}
	const runs = files.map((file) => ({ file, run: load(file) })).sort((a, b) => a.run.date.localeCompare(b.run.date));
	const lines = [`| ${COLUMNS.map(([name]) => name).join(" | ")} |`, `|${COLUMNS.map(() => " --- ").join("|")}|`];
	for (const { file, run } of runs) lines.push(`| ${COLUMNS.map(([, cell]) => cell(run, file)).join(" | ")} |`);
	console.log(lines.join("\n"));
}

main();
