// A throwaway PostgreSQL cluster for the tests: initdb in a fresh directory
// under the OS temp dir, a server listening on a Unix socket in that
// directory only (no TCP port), killed and removed at the end. Uses the
// server binaries of Debian's `postgresql` package (/usr/lib/postgresql/N/bin)
// or the directory in PG_BIN. As root, the server runs as the `postgres` user
// (initdb and postgres refuse to run as root).
//
// The server runs with fsync=off unless asked for fsync (the benchmark does,
// to measure PostgreSQL as deployed): the tests kill the server's processes, never
// the machine, and a killed process loses nothing the OS already has, so
// PostgreSQL's crash recovery is tested the same; commits are still
// synchronous (synchronous_commit=on), so an acknowledged commit is in the
// WAL the OS holds. fsync only matters to a power loss, which no test makes.

import { spawn, spawnSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";

const PORT = 5432;

/** The directory holding initdb and postgres, or null. */
export function findPostgresBin() {
	const candidates = [];
	if (process.env.PG_BIN) candidates.push(process.env.PG_BIN);
	const debian = "/usr/lib/postgresql";
	if (fs.existsSync(debian)) {
		const versions = fs
			.readdirSync(debian)
			.filter((v) => /^\d+$/.test(v))
			.sort((a, b) => Number(b) - Number(a));
		candidates.push(...versions.map((v) => path.join(debian, v, "bin")));
	}
	return candidates.find((dir) => ["initdb", "postgres"].every((exe) => fs.existsSync(path.join(dir, exe)))) ?? null;
}

/** The uid/gid to run the server as: the `postgres` user when root, else ourselves. */
function serverUser() {
	if (process.getuid?.() !== 0) return {};
	const line = fs
		.readFileSync("/etc/passwd", "utf8")
		.split("\n")
		.find((l) => l.startsWith("postgres:"));
	if (!line) return null;
	const [, , uid, gid] = line.split(":");
	return { uid: Number(uid), gid: Number(gid) };
}

/** Why PostgreSQL tests cannot run here, or null if they can. */
export function postgresUnavailable() {
	if (process.platform !== "linux") return "the PostgreSQL tests run on Linux only";
	if (!findPostgresBin()) {
		return "no PostgreSQL server binaries (initdb, postgres) found in /usr/lib/postgresql/*/bin or PG_BIN: apt-get install postgresql";
	}
	if (serverUser() === null) return "running as root and there is no `postgres` user to run the server as";
	return null;
}

/** The processes whose parent is `pid` (Linux /proc). */
function childrenOf(pid) {
	const out = [];
	for (const entry of fs.readdirSync("/proc")) {
		if (!/^\d+$/.test(entry)) continue;
		try {
			const stat = fs.readFileSync(`/proc/${entry}/stat`, "utf8");
			// Fields after the command name, which is in parentheses: state, ppid, ...
			const ppid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
			if (ppid === pid) out.push(Number(entry));
		} catch {
			// The process is gone.
		}
	}
	return out;
}

const alive = (pid) => {
	try {
		process.kill(pid, 0);
		return true;
	} catch {
		return false;
	}
};

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Creates and starts a cluster. Returns `{ host, port, user, database, dir,
 * pool(options), kill(), start(), stop() }`: `host` is the socket directory,
 * for pg's `host` option; `kill()` SIGKILLs the server and all its processes
 * at once (a crash), `start()` starts it again on the same data (crash
 * recovery), `stop()` stops it and removes everything.
 */
export async function startPostgres({ log = false, fsync = false } = {}) {
	const bin = findPostgresBin();
	const user = serverUser();
	const dir = fs.mkdtempSync(path.join(os.tmpdir(), "sqlite-vfs-pg-"));
	const data = path.join(dir, "data");
	if (user.uid !== undefined) fs.chownSync(dir, user.uid, user.gid);
	const asServer = { ...user, cwd: dir, env: { PATH: process.env.PATH, LANG: "C", LC_ALL: "C" } };

	const init = spawnSync(path.join(bin, "initdb"), ["-D", data, "-A", "trust", "-U", "postgres", "-E", "UTF8", "--no-sync"], {
		...asServer,
		encoding: "utf8",
	});
	if (init.status !== 0) {
		fs.rmSync(dir, { recursive: true, force: true });
		throw new Error(`initdb failed (${init.status}): ${init.stderr || init.error}`);
	}

	let server = null;
	let output = "";
	const cluster = {
		host: dir,
		port: PORT,
		user: "postgres",
		database: "postgres",
		dir,
		get pid() {
			return server?.pid ?? null;
		},
		get log() {
			return output;
		},
		/** pg Pool/Client options for this cluster. */
		connection(extra = {}) {
			return { host: dir, port: PORT, user: "postgres", database: "postgres", ...extra };
		},
		async start() {
			if (server) throw new Error("the server is already running");
			const child = spawn(
				path.join(bin, "postgres"),
				[
					"-D",
					data,
					"-k",
					dir,
					"-p",
					String(PORT),
					"-c",
					"listen_addresses=",
					"-c",
					"max_connections=50",
					"-c",
					`fsync=${fsync ? "on" : "off"}`,
				],
				{ ...asServer, stdio: ["ignore", "pipe", "pipe"] },
			);
			server = child;
			const exited = new Promise((resolve) => child.once("exit", resolve));
			child.exited = exited;
			const collect = (chunk) => {
				output += chunk;
				if (log) process.stderr.write(chunk);
			};
			child.stdout.setEncoding("utf8").on("data", collect);
			child.stderr.setEncoding("utf8").on("data", collect);
			// Ready once it accepts connections on the socket (after crash recovery, if any).
			const deadline = Date.now() + 60_000;
			for (;;) {
				if (child.exitCode !== null || child.signalCode !== null) {
					server = null;
					throw new Error(`postgres exited while starting:\n${output}`);
				}
				const ready = spawnSync(path.join(bin, "pg_isready"), ["-h", dir, "-p", String(PORT), "-U", "postgres", "-q"]);
				if (ready.status === 0) return;
				if (Date.now() > deadline) throw new Error(`postgres did not start within 60 s:\n${output}`);
				await sleep(100);
			}
		},
		/** Lets this process exit while the server runs (whoever calls this kills it at exit). */
		unref() {
			server?.unref();
			server?.stdout.unref();
			server?.stderr.unref();
		},
		/** SIGKILLs the postmaster and every process it started, at once; returns their pids. */
		killNow() {
			if (!server) return [];
			const pids = [server.pid, ...childrenOf(server.pid)];
			for (const pid of pids) {
				try {
					process.kill(pid, "SIGKILL");
				} catch {
					// Already gone.
				}
			}
			return pids;
		},
		/** A crash: killNow(), then waits until every process is gone. */
		async kill() {
			if (!server) return;
			const child = server;
			const pids = cluster.killNow();
			server = null;
			await child.exited;
			const deadline = Date.now() + 10_000;
			while (pids.some(alive) && Date.now() < deadline) await sleep(20);
		},
		async stop() {
			if (server) {
				const child = server;
				server = null;
				child.kill("SIGINT"); // fast shutdown
				const timer = setTimeout(() => child.kill("SIGKILL"), 10_000);
				await child.exited;
				clearTimeout(timer);
			}
			fs.rmSync(dir, { recursive: true, force: true });
		},
	};
	await cluster.start();
	return cluster;
}
