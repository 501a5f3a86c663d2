"use strict";

// One task in a fresh process: creates one backend, warms it up on a scratch
// database (so that loading an engine or compiling WASM is not timed), runs
// one workload and sends its figures to the parent over IPC.
// Task (JSON in argv[2]): { backend, workload, latencyMs, timeMs, reps, params, images }.
// `node bench/child.js probe <backend>` only checks that the backend works.

const fs = require("node:fs");

const { backendById } = require("./backends");
const { WORKLOADS } = require("./workloads");
const { BenchKv } = require("./kv");
const { openStore } = require("./stores");

async function warmUp(backend) {
	const db = await backend.open("warm-up", new BenchKv());
	await db.exec("CREATE TABLE w (x)");
	await db.run("INSERT INTO w VALUES (?)", [1]);
	const rows = await db.query("SELECT x FROM w");
	if (rows.length !== 1 || Number(rows[0][0]) !== 1) throw new Error(`warm-up query returned ${JSON.stringify(rows)}`);
	await db.close();
	// 2.2.1 leaves the event loop idle for ~170 ms after the first database
	// of a process (timers and I/O wait; it is not CPU work): wait it out so
	// that it does not land in the first timed operation.
	for (let i = 0; i < 3; i++) await new Promise((resolve) => setTimeout(resolve, 1));
}

async function runTask(task) {
	const spec = backendById(task.backend);
	const backend = await spec.create();
	// A real KV store under this package's engine (LMDB, PostgreSQL), or null.
	const store = spec.store ? await openStore(spec.store) : null;
	try {
		await warmUp(backend);
		const loaded = new Map();
		const ctx = {
			backend,
			usesKv: spec.usesKv,
			latencyMs: task.latencyMs,
			timeMs: task.timeMs,
			warmUpMs: task.timeMs / 4,
			reps: task.reps,
			params: task.params,
			newKv: () => new BenchKv({ latencyMs: task.latencyMs, backing: store?.newKv() }),
			imageKv(id) {
				const file = task.images[id]?.file;
				if (!file) throw new Error(`image "${id}" was not prepared`);
				// The file is read once; every KV made from it shares its bytes (see BenchKv.fromImage).
				if (!loaded.has(id)) loaded.set(id, fs.readFileSync(file));
				const kv = BenchKv.fromImage(loaded.get(id), { latencyMs: task.latencyMs });
				// On a real store: the image is copied into a fresh actor first (not timed).
				if (store) return kv.copyTo(store.newKv(), { latencyMs: task.latencyMs });
				return kv;
			},
		};
		const figures = await WORKLOADS[task.workload](ctx);
		return figures;
	} finally {
		await backend.destroy();
		await store?.close();
	}
}

function send(message) {
	return new Promise((resolve) => {
		// Exit even if the send callback never comes.
		setTimeout(resolve, 2_000).unref();
		if (process.send) process.send(message, () => resolve());
		else {
			console.log(JSON.stringify(message));
			resolve();
		}
	});
}

async function main() {
	if (process.argv[2] === "probe") {
		const spec = backendById(process.argv[3]);
		const backend = await spec.create();
		const store = spec.store ? await openStore(spec.store) : null;
		try {
			await warmUp(backend);
			if (store) await warmUp({ open: (name) => backend.open(name, store.newKv()) });
		} finally {
			await backend.destroy();
			await store?.close();
		}
		await send({ ok: true });
		return;
	}
	const task = JSON.parse(process.argv[2]);
	const figures = await runTask(task);
	await send({ ok: true, figures });
}

main().then(
	() => process.exit(0),
	async (error) => {
		await send({ ok: false, error: String(error?.stack ?? error) });
		process.exit(1);
	},
);
