"use strict";

// Turns the raw task results into medians, ratios and target checks, and
// formats them as a text table.
//
// Ratios read "× better": for a figure where higher is better it is
// ours / reference, where lower is better reference / ours; above 1 means
// this package does better than the reference.

const { FIGURES, median } = require("./workloads");

const REFERENCE = "v2.2.1";
const RATIOS = [
	{ id: "native/2.2.1", ours: "native", ref: "v2.2.1" },
	{ id: "wasm/2.2.1", ours: "wasm", ref: "v2.2.1" },
	{ id: "native/bs3-file", ours: "native", ref: "bs3-file" },
	{ id: "native/bs3-mem", ours: "native", ref: "bs3-mem" },
];

// The targets of issue 6. `latency`: only at that latency; otherwise checked
// at every latency measured.
const TARGETS = [
	{ ours: "native", row: "W1", key: "opsPerSec", min: 10, text: "native W1 ops/s ≥ 10× 2.2.1" },
	{ ours: "native", row: "W3", key: "opsPerSec", min: 20, text: "native W3 ops/s ≥ 20× 2.2.1" },
	{ ours: "native", row: "W2a", key: "ms", min: 3, text: "native W2 10k-row statement ≥ 3× faster" },
	{ ours: "native", row: "W2a", key: "kvCalls", min: 20, text: "native W2 10k-row statement ≤ 1/20 KV calls" },
	{ ours: "native", row: "W2b", key: "ms", min: 3, text: "native W2 1k runs in a transaction ≥ 3× faster" },
	{ ours: "native", row: "W2b", key: "kvCalls", min: 20, text: "native W2 1k runs in a transaction ≤ 1/20 KV calls" },
	{ ours: "native", row: "W5", key: "kvBytesWrittenPerOp", min: 1, text: "native W5 KV bytes per update ≤ 2.2.1's" },
	{ ours: "native", row: "W4 10mb", key: "ms", min: 1, latency: 1, text: "native W4 10 MB cold open no slower than 2.2.1" },
	{ ours: "wasm", row: "W1", key: "opsPerSec", min: 3, text: "wasm W1 ops/s ≥ 3× 2.2.1" },
	{ ours: "wasm", row: "W3", key: "opsPerSec", min: 3, text: "wasm W3 ops/s ≥ 3× 2.2.1" },
	// Issue 11: against better-sqlite3 in memory, and absolute bounds (`max`).
	{ ours: "native", row: "W3", key: "opsPerSec", min: 0.5, ref: "bs3-mem", text: "native W3 point select ≥ 0.5× bs3-mem" },
	// (Writes against better-sqlite3 at no KV latency only: at 1 ms, a
	// write's KV round trip alone takes longer than better-sqlite3's.)
	{ ours: "native", row: "W1", key: "opsPerSec", min: 0.2, ref: "bs3-mem", latency: 0, text: "native W1 autocommit insert ≥ 0.2× bs3-mem" },
	{
		ours: "native",
		row: "W2c",
		key: "ms",
		min: 0.5,
		ref: "bs3-mem",
		latency: 0,
		text: "native W2 1 MiB in a transaction (1,024 runs) ≥ 0.5× bs3-mem",
	},
	{ ours: "native", row: "W3", key: "firstOpsPerSec", min: 0.5, ref: "bs3-mem", text: "native W3 first 1,000 selects ≥ 0.5× bs3-mem" },
	{
		ours: "native",
		row: "W1",
		key: "firstOpsPerSec",
		min: 0.2,
		ref: "bs3-mem",
		latency: 0,
		text: "native W1 first 1,000 inserts ≥ 0.2× bs3-mem",
	},
	{ ours: "native", row: "R", key: "eventLoopDelayMaxMs", max: 20, text: "native R event-loop delay ≤ 20 ms" },
	{ ours: "native", row: "R", key: "busyRatio", atLeast: 0.5, text: "native R other db keeps ≥ 50% of its selects" },
	{ ours: "native", row: "R", key: "timeoutMs", max: 400, text: "native R timeoutMs 200 rejects within 400 ms" },
	{ ours: "native", row: "R", key: "interruptMs", max: 50, text: "native R interrupt() stops within 50 ms" },
	{ ours: "wasm", row: "R", key: "timeoutMs", max: 400, text: "wasm R timeoutMs 200 rejects within 400 ms" },
	{ ours: "native", row: "M", key: "rssPerDbKiB", max: 256, text: "native M ≤ 256 KiB RSS per open database" },
	// Issue 11, lazy paging (L, at 1 ms). `vsRow`: against our own figure on
	// another row, at most `factor` times it.
	{ ours: "native", row: "M", key: "localDiskPerDbKiB", max: 64, text: "native M ≤ 64 KiB local disk per idle database" },
	{ ours: "native", row: "L point 100mb", key: "ms", min: 1, latency: 1, text: "native L 100 MB open + query ≤ 2.2.1's time" },
	{
		ours: "native",
		row: "L point 1gb",
		key: "ms",
		vsRow: "L point 100mb",
		factor: 2,
		latency: 1,
		text: "native L 1 GB open + query ≤ 2× its 100 MB",
	},
	{ ours: "native", row: "L point 1gb", key: "kvCalls", max: 32, latency: 1, text: "native L 1 GB open + query ≤ 32 KV calls" },
	{ ours: "native", row: "L point 1gb", key: "localDiskPct", max: 2, latency: 1, text: "native L 1 GB local disk ≤ 2% of its size" },
	{ ours: "native", row: "L scan 100mb", key: "ms", max: 500, latency: 1, text: "native L 100 MB cold full scan ≤ 500 ms" },
];

/** The row a task's figures belong to: the workload, plus its variant (W4's image; L's mode and image). */
function rowId(task) {
	return task.variant ? `${task.workload} ${task.variant}` : task.workload;
}

/** "× better" of `ours` against `ref` (see the top of this file); null if either is missing. */
function ratio(ours, ref, better) {
	if (ours == null || ref == null) return null;
	if (better === "higher") return ref === 0 ? null : ours / ref;
	return ours === 0 ? (ref === 0 ? 1 : Infinity) : ref / ours;
}

/** How a row's label names its variant: its database size, as "100 MB". */
function variantText(variant) {
	const size = variant
		.split(" ")
		.at(-1)
		.match(/^(\d+)(mb|gb)$/);
	return size ? `${size[1]} ${size[2].toUpperCase()}` : variant;
}

/**
 * results: [{ task: { backend, workload, variant, latencyMs }, figures?, error?, skipped? }]
 * backends: [{ id, label, usesKv, available, reason }]
 * latencies: the KV latencies measured. Backends without a KV ran at the
 * first latency only; their medians stand for every latency (marked).
 */
function summarize(results, backends, latencies) {
	const rows = [];
	const rowIds = [];
	for (const r of results) if (!rowIds.includes(rowId(r.task))) rowIds.push(rowId(r.task));
	for (const id of rowIds) {
		const [workload, ...variant] = id.split(" ");
		const taskLatencies = [...new Set(results.filter((r) => rowId(r.task) === id).map((r) => r.task.latencyMs))];
		for (const [key, label, unit, better, mode] of FIGURES[workload]) {
			if (mode !== undefined && variant[0] !== mode) continue;
			for (const latencyMs of latencies.filter((l) => taskLatencies.includes(l))) {
				const values = {};
				const samplesBy = {};
				const borrowed = {};
				const skipped = {};
				for (const backend of backends) {
					const lat = backend.usesKv ? latencyMs : latencies[0];
					const mine = results.filter((r) => rowId(r.task) === id && r.task.backend === backend.id && r.task.latencyMs === lat);
					const samples = mine
						.filter((r) => r.figures)
						.map((r) => r.figures[key])
						.filter((v) => v !== null && v !== undefined);
					values[backend.id] = samples.length > 0 ? median(samples) : null;
					samplesBy[backend.id] = samples;
					borrowed[backend.id] = !backend.usesKv && lat !== latencyMs;
					skipped[backend.id] = samples.length === 0 ? (mine.find((r) => r.skipped)?.skipped ?? null) : null;
				}
				const ratios = {};
				for (const r of RATIOS) ratios[r.id] = ratio(values[r.ours], values[r.ref], better);
				const variantLabel = variant.length > 0 ? `${label} (${variantText(variant.join(" "))})` : label;
				rows.push({ row: id, key, label: variantLabel, unit, better, latencyMs, values, samples: samplesBy, borrowed, skipped, ratios });
			}
		}
	}
	return rows;
}

function checkTargets(rows) {
	// A target without a figure: "skip" when our task was skipped (see the note under the table), else n/a.
	const missing = (r, target) => (r.skipped[target.ours] ? "skip" : "n/a");
	const out = [];
	for (const target of TARGETS) {
		const matching = rows.filter(
			(r) => r.row === target.row && r.key === target.key && (target.latency === undefined || r.latencyMs === target.latency),
		);
		if (matching.length === 0) {
			out.push({ ...target, latencyMs: target.latency ?? null, ratio: null, status: "n/a" });
			continue;
		}
		for (const r of matching) {
			if (target.vsRow !== undefined) {
				// Our figure against our own on another row (lower is better): at most `factor` times it.
				const other = rows.find((o) => o.row === target.vsRow && o.key === target.key && o.latencyMs === r.latencyMs);
				const ours = r.values[target.ours];
				const base = other?.values[target.ours];
				const value = ours == null || base == null || base === 0 ? null : ours / base;
				const status = value === null ? missing(r, target) : value <= target.factor ? "pass" : "MISS";
				out.push({ ...target, latencyMs: r.latencyMs, value, status });
				continue;
			}
			if (target.max !== undefined || target.atLeast !== undefined) {
				// An absolute bound on our own figure.
				const value = r.values[target.ours];
				const ok = target.max !== undefined ? value <= target.max : value >= target.atLeast;
				out.push({ ...target, latencyMs: r.latencyMs, value, status: value == null ? missing(r, target) : ok ? "pass" : "MISS" });
				continue;
			}
			const value = ratio(r.values[target.ours], r.values[target.ref ?? REFERENCE], r.better);
			const status = value === null ? missing(r, target) : value >= target.min ? "pass" : "MISS";
			out.push({ ...target, latencyMs: r.latencyMs, ratio: value, status });
		}
	}
	return out;
}

function fmt(n) {
	if (n === null || n === undefined) return "–";
	if (!Number.isFinite(n)) return "∞";
	const a = Math.abs(n);
	if (a >= 1e6) return `${(n / 1e6).toFixed(2)}M`;
	if (a >= 1e4) return `${(n / 1e3).toFixed(1)}k`;
	if (a >= 100) return n.toFixed(0);
	if (a >= 10) return n.toFixed(1);
	if (a >= 0.01 || a === 0) return n.toFixed(2);
	return n.toExponential(1);
}

function fmtRatio(r) {
	if (r === null) return "–";
	if (!Number.isFinite(r)) return "∞";
	return `${r >= 100 ? r.toFixed(0) : r >= 10 ? r.toFixed(1) : r.toFixed(2)}×`;
}

function table(header, lines) {
	const widths = header.map((h, i) => Math.max(h.length, ...lines.map((l) => l[i].length)));
	const render = (cells) => cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join("  ");
	return [render(header), widths.map((w) => "-".repeat(w)).join("  "), ...lines.map(render)].join("\n");
}

/** The whole text report. */
function render(rows, targets, backends) {
	const shown = backends;
	const header = ["figure", "unit", "KV ms", ...shown.map((b) => b.label), ...RATIOS.map((r) => r.id)];
	const lines = rows.map((r) => [
		r.label,
		`${r.unit} ${r.better === "higher" ? "↑" : "↓"}`,
		String(r.latencyMs),
		...shown.map((b) => {
			if (!b.available) return "n/a";
			if (r.skipped[b.id]) return "skip";
			return `${fmt(r.values[b.id])}${r.borrowed[b.id] && r.values[b.id] !== null ? "*" : ""}`;
		}),
		...RATIOS.map((x) => fmtRatio(r.ratios[x.id])),
	]);
	const out = [];
	out.push(table(header, lines));
	out.push("");
	out.push('Medians over rounds. ↑ higher is better, ↓ lower is better. Ratios are "× better" for the first');
	out.push("backend named (ours/ref for ↑, ref/ours for ↓): above 1 means this package does better.");
	out.push("* better-sqlite3 uses no KV: its figure measured once stands for every KV latency.");
	const unavailable = backends.filter((b) => !b.available);
	for (const b of unavailable) out.push(`n/a ${b.label}: ${b.reason}`);
	// Why a task was skipped, once per row of tasks (not per figure).
	const noted = new Set();
	for (const r of rows) {
		for (const b of backends) {
			const reason = r.skipped[b.id];
			const what = `${r.row} @${r.latencyMs} ${b.id}`;
			if (!reason || noted.has(what)) continue;
			noted.add(what);
			out.push(`skip ${b.label}, ${r.row} at ${r.latencyMs} ms: ${reason}`);
		}
	}
	out.push("");
	out.push(
		table(
			["target", "KV ms", "ratio / value", "result"],
			targets.map((t) => [
				t.text,
				t.latencyMs === null ? "–" : String(t.latencyMs),
				t.ratio !== undefined ? fmtRatio(t.ratio) : fmt(t.value),
				t.status,
			]),
		),
	);
	return out.join("\n");
}

module.exports = { summarize, checkTargets, render, ratio, RATIOS, TARGETS };
