// Runs server.mjs (a rivetkit 2.2.1 server on 127.0.0.1) as a child process
// of the runtime running the test, and connects rivetkit's client to it.

import { spawn } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";

const here = path.dirname(fileURLToPath(import.meta.url));
const SERVER = path.join(here, "server.mjs");
const STARTUP_MS = 30_000;

/** Why rivetkit cannot run here, or null. */
export async function skipReason() {
	if (process.versions.bun) {
		return `Bun ${process.versions.bun}: the end-to-end test drives rivetkit 2.2.1 under Node only (it redirects rivetkit's import of @rivetkit/sqlite-vfs with node:module registerHooks, which Bun lacks)`;
	}
	const [major, minor] = process.versions.node.split(".").map(Number);
	if (major < 22) {
		return `Node ${process.versions.node}: rivetkit 2.2.1 requires Node >= 22 (its engines field) and its file-system driver needs node:sqlite (Node >= 22.13)`;
	}
	const { default: module } = await import("node:module");
	if (typeof module.registerHooks !== "function") {
		return `Node ${process.versions.node}: module.registerHooks (Node >= 22.15 / 23.5) is needed to point rivetkit at this package`;
	}
	if (!module.isBuiltin("node:sqlite")) {
		return `Node ${process.versions.node} (${major}.${minor}): no node:sqlite, which rivetkit's file-system driver needs`;
	}
	return null;
}

/** A fresh temporary directory; `removeTempDir()` removes it. */
export function tempDir(prefix = "rivetkit-e2e-") {
	return fs.mkdtempSync(path.join(os.tmpdir(), prefix));
}

/** The TMPDIR of the processes working on `dir`: `<dir>.tmp`. */
export function privateTmp(dir) {
	const tmp = `${dir}.tmp`;
	fs.mkdirSync(tmp, { recursive: true });
	return tmp;
}

/** Removes a directory from `tempDir()` and its `privateTmp()`. */
export function removeTempDir(dir) {
	fs.rmSync(dir, { recursive: true, force: true });
	fs.rmSync(`${dir}.tmp`, { recursive: true, force: true });
}

const live = new Set();

/** Servers started before one gets a port (see startServer). */
const PORT_ATTEMPTS = 3;

/** A server that exited because another process took its port first. */
class PortTaken extends Error {}

/**
 * Starts a server on `storage` with rivetkit pointed at `vfs` ("this" or
 * "2.2.1"). Resolves to { port, info, client, kill, exited, output }.
 * rivetkit listens on the first port it finds free, but another process can
 * take that port before rivetkit listens on it: such a server exits
 * (EADDRINUSE), and another is started.
 */
export async function startServer(options) {
	for (let attempt = 1; ; attempt++) {
		try {
			return await startOnce(options);
		} catch (error) {
			if (!(error instanceof PortTaken) || attempt === PORT_ATTEMPTS) throw error;
		}
	}
}

async function startOnce({ storage, vfs = "this", env = {} }) {
	const child = spawn(process.execPath, [SERVER], {
		cwd: storage,
		env: {
			...process.env,
			NODE_NO_WARNINGS: "1",
			...env,
			// The package's local database files go here, not in the system's
			// temporary directory: a SIGKILLed server cannot remove them.
			TMPDIR: privateTmp(storage),
			RIVETKIT_E2E_STORAGE: storage,
			RIVETKIT_SQLITE_VFS: vfs,
		},
		stdio: ["ignore", "pipe", "pipe"],
	});
	live.add(child);
	let stdout = "";
	let stderr = "";
	child.stdout.setEncoding("utf8").on("data", (d) => (stdout += d));
	child.stderr.setEncoding("utf8").on("data", (d) => (stderr += d));
	const exited = new Promise((resolve) =>
		child.on("exit", (code, signal) => {
			live.delete(child);
			resolve({ code, signal });
		}),
	);
	const output = () => `--- server stdout\n${stdout}--- server stderr\n${stderr}`;

	const info = await new Promise((resolve, reject) => {
		const timer = setTimeout(() => {
			child.kill("SIGKILL");
			reject(new Error(`server did not start in ${STARTUP_MS} ms\n${output()}`));
		}, STARTUP_MS);
		const onData = () => {
			const line = stdout.split("\n").find((l) => l.startsWith("READY "));
			if (!line) return;
			clearTimeout(timer);
			child.stdout.off("data", onData);
			resolve(JSON.parse(line.slice("READY ".length)));
		};
		child.stdout.on("data", onData);
		exited.then(({ code, signal }) => {
			clearTimeout(timer);
			const message = `server exited (${code ?? signal}) before it was ready\n${output()}`;
			reject(stderr.includes("EADDRINUSE") ? new PortTaken(message) : new Error(message));
		});
	});

	const { createClient } = await import("rivetkit/client");
	const client = createClient(`http://127.0.0.1:${info.port}`);
	const kill = async () => {
		await client.dispose?.().catch(() => {});
		if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
		return exited;
	};
	return { ...info, child, client, kill, exited, output };
}

/** SIGKILLs every server still running (for `after` hooks). */
export async function killAll() {
	await Promise.all(
		[...live].map(
			(child) =>
				new Promise((resolve) => {
					child.once("exit", resolve);
					child.kill("SIGKILL");
				}),
		),
	);
}

/** Polls `fn` until it returns a truthy value, for at most `ms`. */
export async function eventually(fn, { ms = 10_000, every = 50, what = "condition" } = {}) {
	const deadline = Date.now() + ms;
	let last;
	for (;;) {
		last = await fn();
		if (last) return last;
		if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what} (last: ${JSON.stringify(last)})`);
		await new Promise((r) => setTimeout(r, every));
	}
}

/**
 * The KV of one actor, as rivetkit's file-system driver stores it (a SQLite
 * table kv(key, value) in <storage>/databases/<actorId>.db), read with
 * node:sqlite: the keys as hex strings.
 */
export async function actorKvKeys(storage, actorId) {
	const { DatabaseSync } = await import("node:sqlite");
	const db = new DatabaseSync(path.join(storage, "databases", `${actorId}.db`), { readOnly: true });
	try {
		return db
			.prepare("SELECT hex(key) AS key FROM kv ORDER BY key")
			.all()
			.map((r) => r.key.toLowerCase());
	} finally {
		db.close();
	}
}

/** The WAL file of an actor's KV database: its size and modification time, for spotting writes. */
export function actorKvWalStamp(storage, actorId) {
	try {
		const stat = fs.statSync(path.join(storage, "databases", `${actorId}.db-wal`));
		return `${stat.size}:${stat.mtimeMs}`;
	} catch {
		return "none";
	}
}
