// Runs a helper script in a child process whose file size limit a test sets
// and changes, as a full local disk: the child ignores SIGXFSZ (it stays
// ignored through exec), so a write past the limit fails with EFBIG.

import fs from "node:fs";
import { spawn, spawnSync } from "node:child_process";

/** util-linux's prlimit, which changes a running process's limits; null if not installed. */
export const PRLIMIT = ["/usr/bin/prlimit", "/bin/prlimit"].find((file) => fs.existsSync(file)) ?? null;

/**
 * Runs `script` under the running runtime (Node or Bun) with `env` added,
 * its file size limit `limit` (a `ulimit -f` value, KiB) if given.
 * `onLine(line, control)` hears each line the child prints;
 * `control.setLimit(value)` sets its limit with prlimit (`--fsize=value`),
 * `control.child` is the child. Resolves to `{ status, report, stderr }`,
 * `report` the last line parsed as JSON.
 */
export async function runUnderFileLimit(script, { limit = null, env = {}, onLine = () => {} } = {}) {
	const ulimit = limit === null ? "" : `ulimit -S -f ${limit}; `;
	const child = spawn("bash", ["-c", `trap "" XFSZ; ${ulimit}exec "$0" "$1"`, process.execPath, script], {
		env: { ...process.env, ...env },
		stdio: ["pipe", "pipe", "pipe"],
	});
	const control = {
		child,
		setLimit(value) {
			const set = spawnSync(PRLIMIT, ["--pid", String(child.pid), `--fsize=${value}`], { encoding: "utf8" });
			if (set.status !== 0) throw new Error(`prlimit failed: ${set.stderr}`);
		},
	};
	let stdout = "";
	let stderr = "";
	let pending = "";
	child.stderr.on("data", (chunk) => {
		stderr += chunk;
	});
	child.stdout.on("data", (chunk) => {
		stdout += chunk;
		pending += chunk;
		let end = pending.indexOf("\n");
		while (end !== -1) {
			onLine(pending.slice(0, end), control);
			pending = pending.slice(end + 1);
			end = pending.indexOf("\n");
		}
	});
	const status = await new Promise((resolve) => child.on("close", resolve));
	const last = stdout.trim().split("\n").at(-1);
	let report = null;
	try {
		report = JSON.parse(last);
	} catch {
		// The caller's status check reports stderr.
	}
	return { status, report, stderr };
}
