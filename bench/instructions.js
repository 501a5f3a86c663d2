"use strict";

// Instructions per call (valgrind's callgrind), for changes too small to see
// in wall time on a machine whose speed drifts: an autocommit insert (W1)
// or a point select (W3) through the public API on the benchmark's KV.
//
//   node bench/instructions.js [--cases insert,select] [--root DIR]
//
// Each case runs twice in a fresh process under callgrind, making FEW and
// then MANY calls; the difference of the two totals over MANY − FEW is what
// one call costs once the process has started and warmed up. V8 compiles
// on this thread and collects garbage on this thread (flags below), so the
// JIT and the GC do the same work in every run. What is left is a little
// noise from start-up (a random hash seed). `rep`-prefixed string
// instructions count once per byte or word moved: memset and memcpy weigh
// more here than in time, and are shown apart. `--root` measures another
// checkout of this package (an older commit's, say) with the same script.
// Needs valgrind; the child script is this file itself.

const { spawnSync } = require("node:child_process");
const fs = require("node:fs");
const os = require("node:os");
const path = require("node:path");

const FEW = 3_000;
const MANY = 23_000;
const NODE_FLAGS = ["--no-concurrent-recompilation", "--single-threaded-gc"];
const SCHEMA = "CREATE TABLE t (id INTEGER PRIMARY KEY, k INTEGER NOT NULL, v TEXT NOT NULL)";

function arg(name, fallback) {
	const i = process.argv.indexOf(`--${name}`);
	return i === -1 ? fallback : process.argv[i + 1];
}

/** The child: `calls` calls of `name` on a fresh database of the package at `root`. */
async function child(root, name, calls) {
	const { open } = require(root);
	const { BenchKv } = require(path.join(root, "bench", "kv.js"));
	const db = await open("instructions", new BenchKv());
	await db.exec(SCHEMA);
	if (name === "insert") {
		for (let i = 0; i < calls; i++) await db.run("INSERT INTO t (k, v) VALUES (?, ?)", [i, `${i}:`.padEnd(100, "abcdefghij")]);
	} else {
		await db.run(
			"INSERT INTO t (k, v) WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 1000) SELECT x, hex(randomblob(50)) FROM c",
		);
		for (let i = 0; i < calls; i++) await db.query("SELECT id, k, v FROM t WHERE id = ?", [1 + ((i * 7919) % 1000)]);
	}
	await db.close();
}

/** Instructions by function of one run under callgrind. */
function profile(root, name, calls) {
	const out = path.join(fs.mkdtempSync(path.join(os.tmpdir(), "instructions-")), "callgrind.out");
	const run = spawnSync(
		"valgrind",
		[
			"--tool=callgrind",
			"--smc-check=all-non-file",
			`--callgrind-out-file=${out}`,
			process.execPath,
			...NODE_FLAGS,
			__filename,
			"--child",
			root,
			name,
			String(calls),
		],
		{ encoding: "utf8" },
	);
	if (run.error || run.status !== 0) throw new Error(`callgrind failed: ${run.error?.message ?? run.stderr}`);
	const annotated = spawnSync("callgrind_annotate", ["--threshold=100", "--auto=no", out], {
		encoding: "utf8",
		maxBuffer: 256 * 1024 * 1024,
	});
	fs.rmSync(path.dirname(out), { recursive: true, force: true });
	const byFunction = new Map();
	let started = false;
	for (const line of annotated.stdout.split("\n")) {
		if (line.includes("file:function")) started = true;
		const match = started && /^\s*([\d,]+) \([^)]*\)\s+(\S.*)$/.exec(line);
		if (match) byFunction.set(match[2], (byFunction.get(match[2]) ?? 0) + Number(match[1].replaceAll(",", "")));
	}
	return byFunction;
}

function main() {
	const root = path.resolve(arg("root", path.join(__dirname, "..")));
	for (const name of arg("cases", "insert,select").split(",")) {
		const few = profile(root, name, FEW);
		const many = profile(root, name, MANY);
		let total = 0;
		let moves = 0;
		for (const [fn, count] of many) {
			// The hash seed's primality tests run at start-up, a random number of times.
			if (fn.includes("sprp")) continue;
			const perCall = (count - (few.get(fn) ?? 0)) / (MANY - FEW);
			total += perCall;
			if (/mem(set|cpy|move)/.test(fn)) moves += perCall;
		}
		console.log(`${name.padEnd(7)} ${Math.round(total)} instructions per call (${Math.round(total - moves)} without memset/memcpy)`);
	}
}

if (process.argv[2] === "--child") {
	child(process.argv[3], process.argv[4], Number(process.argv[5])).catch((error) => {
		console.error(error);
		process.exit(1);
	});
} else {
	main();
}
