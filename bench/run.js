"use strict";

// `npm run bench [-- options]`: runs every workload over every backend, each
// task in its own fresh child process, backends alternating, for several
// rounds; prints the medians, the ratios against 2.2.1 and better-sqlite3,
// and the targets of issue 6; writes everything to bench/results/latest.json.
//
// Options:
//   --quick              one short round (checks that everything works; < 1 min)
//   --rounds N           rounds (full: 3)
//   --time MS            length of each time-boxed loop (full: 1000)
//   --latencies 0,1      KV latencies in ms (default 0,1)
//   --backends a,b       only these backends (native,wasm,native-lmdb,native-pg,v2.2.1,seed,bs3-file,bs3-mem)
//   --workloads W1,W4    only these workloads (W1,W2a,W2b,W2c,W3,W4,W5,W6,R,M,L)
//   --json FILE          where to write the JSON (default bench/results/latest.json)

const { fork } = require("node:child_process");
const fs = require("node:fs");
const os = require("node:os");
const path = require("node:path");

const { BACKENDS } = require("./backends");
const { ensureBetterSqlite3 } = require("./setup");
const { LAZY_PAYLOAD_BYTES, prepareImages } = require("./images");
const { summarize, checkTargets, render } = require("./report");

const RESULTS = path.join(__dirname, "results");
const TASK_TIMEOUT_MS = 5 * 60_000;

// L (lazy paging, issue 11) runs on these backends only: the KV-backed ones
// whose open it is about (better-sqlite3 has no KV; the seed design reads
// the whole file by design).
const L_BACKENDS = ["native", "wasm", "v2.2.1"];
// An L task not done after this long is abandoned and shown as skipped (and
// not run again in later rounds).
const L_BUDGET_MS = 30_000;
// L tasks not run at all, with the reason shown in the report.
const L_SKIP = {
	"v2.2.1 scan 100mb":
		"2.2.1 reads one page per KV call, one call after another: ~25,600 calls for 100 MB, over half a minute at 1 ms; its scan is measured on the 10 MB database",
};

function parseArgs(argv) {
	const options = { quick: false };
	for (let i = 0; i < argv.length; i++) {
		const arg = argv[i];
		const value = () => {
			if (i + 1 >= argv.length) throw new Error(`${arg} needs a value`);
			return argv[++i];
		};
		if (arg === "--quick") options.quick = true;
		else if (arg === "--rounds") options.rounds = Number(value());
		else if (arg === "--time") options.timeMs = Number(value());
		else if (arg === "--latencies") options.latencies = value().split(",").map(Number);
		else if (arg === "--backends") options.backends = value().split(",");
		else if (arg === "--workloads") options.workloads = value().split(",");
		else if (arg === "--json") options.json = path.resolve(value());
		else throw new Error(`unknown option ${arg}`);
	}
	return options;
}

function config(options) {
	const quick = options.quick;
	return {
		quick,
		rounds: options.rounds ?? (quick ? 1 : 3),
		timeMs: options.timeMs ?? (quick ? 150 : 1000),
		reps: quick ? 1 : 3,
		latencies: options.latencies ?? [0, 1],
		w4Images: quick ? ["10mb"] : ["10mb", "100mb"],
		// L's rows: [mode, database size].
		lVariants: quick
			? [
					["point", "100mb"],
					["scan", "10mb"],
					["scan", "100mb"],
				]
			: [
					["point", "100mb"],
					["point", "1gb"],
					["scan", "10mb"],
					["scan", "100mb"],
				],
		params: {
			bulkRows: 10_000,
			txRows: 1_000,
			selectRows: 1_000,
			writers: 100,
			databases: quick ? 100 : 1_000,
			longQueryRows: 1_000_000,
			resultRows: 1_000_000,
			commitMiB: 64,
		},
		backends: options.backends,
		workloads: options.workloads ?? ["W1", "W2a", "W2b", "W2c", "W3", "W4", "W5", "W6", "R", "M", "L"],
		json: options.json ?? path.join(RESULTS, "latest.json"),
	};
}

function machine() {
	const cpuinfo = fs.existsSync("/proc/cpuinfo") ? fs.readFileSync("/proc/cpuinfo", "utf8") : "";
	return {
		nproc: os.availableParallelism?.() ?? os.cpus().length,
		cpu: cpuinfo.match(/^model name\s*:\s*(.*)$/m)?.[1] ?? os.cpus()[0]?.model ?? "unknown",
		memoryGiB: Math.round(os.totalmem() / 2 ** 30),
		node: process.version,
		// Bun reports a Node version of its own (its compatibility level).
		runtime: process.versions.bun ? `Bun ${process.versions.bun}` : `Node ${process.version}`,
		platform: `${os.type()} ${os.release()} ${process.arch}`,
		loadAverageAtStart: os.loadavg().map((l) => Number(l.toFixed(2))),
	};
}

/**
 * Runs `node bench/child.js ...args` in a fresh process; resolves to its
 * message. The child gets a TMPDIR of its own (removed when it ends): the
 * local files of its databases are all it holds, whatever else runs on the
 * machine, and none are left behind by a child that was killed.
 */
async function runChild(args) {
	const tmpdir = fs.mkdtempSync(path.join(os.tmpdir(), "sqlite-vfs-bench-"));
	try {
		return await runChildIn(args, tmpdir);
	} finally {
		fs.rmSync(tmpdir, { recursive: true, force: true });
	}
}

function runChildIn(args, tmpdir) {
	return new Promise((resolve) => {
		const child = fork(path.join(__dirname, "child.js"), args, {
			execArgv: ["--expose-gc"],
			env: { ...process.env, TMPDIR: tmpdir },
			stdio: ["ignore", "ignore", "pipe", "ipc"],
		});
		let message = null;
		let stderr = "";
		child.stderr.on("data", (d) => {
			stderr += d;
		});
		let exitTimer = null;
		child.on("message", (m) => {
			message = m;
			// The result is in: a child that then fails to exit is ended.
			exitTimer = setTimeout(() => child.kill("SIGKILL"), 5_000);
		});
		const timer = setTimeout(() => child.kill("SIGKILL"), TASK_TIMEOUT_MS);
		child.on("exit", (code, signal) => {
			clearTimeout(timer);
			clearTimeout(exitTimer);
			if (message) resolve(message);
			else
				resolve({
					ok: false,
					error: `child exited (${signal ?? code}) without a result${stderr ? `: ${stderr.trim().slice(-2000)}` : ""}`,
				});
		});
	});
}

/** Which backends can run here, and why not when they cannot. */
async function detectBackends(cfg, log) {
	const out = [];
	let bs3 = null;
	for (const backend of BACKENDS) {
		const entry = { id: backend.id, label: backend.label, usesKv: backend.usesKv, available: false, reason: null };
		out.push(entry);
		if (cfg.backends && !cfg.backends.includes(backend.id)) {
			entry.reason = "not selected";
			continue;
		}
		if (backend.store === "postgres" && !process.env.SQLITE_VFS_BENCH_PG_HOST) {
			entry.reason = cfg.postgresUnavailable ?? "no PostgreSQL cluster";
			continue;
		}
		if (backend.id.startsWith("bs3")) {
			bs3 ??= ensureBetterSqlite3({ log });
			if (!bs3.available) {
				entry.reason = bs3.reason;
				continue;
			}
		}
		const probe = await runChild(["probe", backend.id]);
		entry.available = probe.ok;
		if (!probe.ok) entry.reason = probe.error.split("\n")[0];
	}
	return out;
}

/** The tasks of one round; backends alternate within each workload, their order rotating by round. */
function roundTasks(cfg, backends, round, images) {
	const available = backends.filter((b) => b.available);
	const order = available.map((_, i) => available[(i + round) % available.length]);
	const variants = [];
	for (const workload of cfg.workloads) {
		if (workload === "W4") {
			for (const image of cfg.w4Images) {
				for (const latencyMs of cfg.latencies)
					variants.push({ workload, variant: image, latencyMs, params: { image, imageRows: images[image].rows } });
			}
		} else if (workload === "W5") {
			for (const latencyMs of cfg.latencies)
				variants.push({ workload, latencyMs, params: { image: "10mb", imageRows: images["10mb"].rows } });
		} else if (workload === "R") {
			variants.push({ workload, latencyMs: cfg.latencies[0], params: cfg.params });
		} else if (workload === "M") {
			variants.push({ workload, latencyMs: cfg.latencies[0], params: { ...cfg.params, image: "small" } });
		} else if (workload === "L") {
			// The figures of issue 11 are at 1 ms.
			const latencyMs = cfg.latencies.includes(1) ? 1 : cfg.latencies[0];
			for (const [mode, size] of cfg.lVariants) {
				const image = images[`lazy-${size}`];
				variants.push({
					workload,
					variant: `${mode} ${size}`,
					latencyMs,
					backends: L_BACKENDS,
					params: {
						mode,
						image: image.id,
						imageRows: image.rows,
						imageBytes: image.bytes,
						payloadBytes: LAZY_PAYLOAD_BYTES,
						budgetMs: L_BUDGET_MS,
					},
				});
			}
		} else {
			for (const latencyMs of cfg.latencies) variants.push({ workload, latencyMs, params: cfg.params });
		}
	}
	const tasks = [];
	for (const v of variants) {
		for (const b of order) {
			// Backends without a KV run once, at the first latency; those on a
			// real store only at 0 ms added latency, and only their workloads.
			if (!b.usesKv && v.latencyMs !== cfg.latencies[0]) continue;
			const spec = BACKENDS.find((x) => x.id === b.id);
			if (spec.store && (v.latencyMs !== 0 || !spec.workloads.includes(v.workload))) continue;
			if (v.backends && !v.backends.includes(b.id)) continue;
			tasks.push({
				backend: b.id,
				workload: v.workload,
				variant: v.variant ?? null,
				latencyMs: v.latencyMs,
				timeMs: cfg.timeMs,
				reps: cfg.reps,
				params: v.params,
				images,
				skip: v.workload === "L" ? (L_SKIP[`${b.id} ${v.variant}`] ?? null) : null,
			});
		}
	}
	return tasks;
}

async function main() {
	const cfg = config(parseArgs(process.argv.slice(2)));
	const log = (...a) => console.error(...a);
	const started = Date.now();
	const info = machine();
	log(
		`bench: ${cfg.quick ? "quick" : "full"} run, ${cfg.rounds} round(s), ${cfg.timeMs} ms loops, KV latencies ${cfg.latencies.join(", ")} ms`,
	);
	log(`machine: ${info.nproc} cores, ${info.cpu}, ${info.runtime}`);

	// A throwaway PostgreSQL cluster (Unix socket only, fsync on as deployed)
	// for the native-pg backend.
	let cluster = null;
	const wantsPg = cfg.backends ? cfg.backends.includes("native-pg") : true;
	if (wantsPg) {
		const { postgresUnavailable, startPostgres } = await import("../__test__/helpers/postgres.mjs");
		cfg.postgresUnavailable = postgresUnavailable();
		if (!cfg.postgresUnavailable) {
			cluster = await startPostgres({ fsync: true });
			process.env.SQLITE_VFS_BENCH_PG_HOST = cluster.host;
			process.env.SQLITE_VFS_BENCH_PG_PORT = String(cluster.port);
		}
	}
	try {
		await runRounds(cfg, log, started, info);
	} finally {
		await cluster?.stop();
	}
}

async function runRounds(cfg, log, started, info) {
	const backends = await detectBackends(cfg, log);
	for (const b of backends) log(`backend ${b.label}: ${b.available ? "available" : `n/a (${b.reason})`}`);

	const imageIds = [
		"small",
		"10mb",
		...(cfg.workloads.includes("W4") ? cfg.w4Images : []),
		...(cfg.workloads.includes("L") ? cfg.lVariants.map(([, size]) => `lazy-${size}`) : []),
	];
	const imageStart = Date.now();
	const images = await prepareImages(path.join(RESULTS, "images"), [...new Set(imageIds)], log);
	log(
		`images: ${Object.values(images)
			.map((i) => `${i.id} ${(i.bytes / 2 ** 20).toFixed(1)} MiB/${i.rows} rows${i.cached ? " (cached)" : ""}`)
			.join(", ")} (${((Date.now() - imageStart) / 1000).toFixed(1)} s)`,
	);

	const results = [];
	// Tasks a workload abandoned (over its budget): not run again in later rounds.
	const abandoned = new Map();
	for (let round = 0; round < cfg.rounds; round++) {
		const tasks = roundTasks(cfg, backends, round, images);
		for (const [n, task] of tasks.entries()) {
			const what = `${task.workload}${task.variant ? ` ${task.variant}` : ""} ${task.backend} @${task.latencyMs}ms`;
			const progress = `[round ${round + 1}/${cfg.rounds} ${n + 1}/${tasks.length}] ${what}`;
			const { images: _images, skip, ...kept } = task;
			const skipped = skip ?? abandoned.get(what);
			if (skipped) {
				results.push({ round, task: kept, wallMs: 0, figures: null, error: null, skipped });
				log(`${progress}: skipped (${skipped})`);
				continue;
			}
			const start = Date.now();
			const message = await runChild([JSON.stringify(task)]);
			const wallMs = Date.now() - start;
			const figures = message.ok && !message.figures.skipped ? message.figures : null;
			const abandonedNow = message.ok ? (message.figures.skipped ?? null) : null;
			if (abandonedNow) abandoned.set(what, `${abandonedNow} in round ${round + 1}, not run again`);
			results.push({ round, task: kept, wallMs, figures, error: message.ok ? null : message.error, skipped: abandonedNow });
			log(`${progress}: ${message.ok ? (abandonedNow ? `skipped (${abandonedNow})` : "ok") : "ERROR"} (${(wallMs / 1000).toFixed(1)} s)`);
			if (!message.ok) log(`  ${message.error.split("\n").slice(0, 4).join("\n  ")}`);
		}
	}

	const rows = summarize(results, backends, cfg.latencies);
	const targets = checkTargets(rows);
	const violations = {};
	for (const r of results) {
		if (r.figures) violations[r.task.backend] = (violations[r.task.backend] ?? 0) + (r.figures.violations ?? 0);
	}
	const errors = results.filter((r) => r.error);
	const elapsed = (Date.now() - started) / 1000;
	info.loadAverageAtEnd = os.loadavg().map((l) => Number(l.toFixed(2)));

	const text = render(rows, targets, backends);
	console.log(
		`\n${cfg.quick ? "Quick" : "Full"} run: ${cfg.rounds} round(s), ${cfg.timeMs} ms loops; ${info.nproc} cores, ${info.cpu}, ${info.runtime}\n`,
	);
	console.log(text);
	console.log(
		`\nKV limit violations: ${backends
			.filter((b) => b.available && b.usesKv)
			.map((b) => `${b.label} ${violations[b.id] ?? 0}`)
			.join(", ")}`,
	);
	if (errors.length > 0) console.log(`Failed tasks: ${errors.length} (see the JSON)`);
	console.log(
		`Total time: ${elapsed.toFixed(0)} s; load average (1, 5, 15 min) at start ${info.loadAverageAtStart.join(", ")}, at end ${info.loadAverageAtEnd.join(", ")}`,
	);

	fs.mkdirSync(path.dirname(cfg.json), { recursive: true });
	const json = {
		date: new Date().toISOString(),
		machine: info,
		config: { ...cfg, json: undefined },
		backends,
		images,
		rows,
		targets,
		violations,
		errors: errors.map((r) => ({ round: r.round, task: r.task, error: r.error })),
		results,
		elapsedSeconds: elapsed,
	};
	fs.writeFileSync(cfg.json, `${JSON.stringify(json, null, 2)}\n`);
	console.log(`JSON: ${path.relative(process.cwd(), cfg.json)}`);
	if (errors.length > 0) process.exitCode = 1;
}

main().catch((error) => {
	console.error(error);
	process.exit(1);
});
