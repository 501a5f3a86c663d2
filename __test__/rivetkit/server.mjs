// A rivetkit 2.2.1 server (file-system driver) for the end-to-end test, run
// as a child process so the test can SIGKILL it. Serves on 127.0.0.1 only.
//
// Environment:
//   RIVETKIT_E2E_STORAGE  the file-system driver's storage directory (required)
//   RIVETKIT_E2E_PORT     the port (default: a free one); rivetkit takes the next free one if it is taken
//   RIVETKIT_SQLITE_VFS   which @rivetkit/sqlite-vfs rivetkit gets: "this" or "2.2.1"
//                         (see scripts/rivetkit-sqlite-vfs-hook.mjs)
//
// Prints one line `READY {"port":…,…}` on stdout once it accepts requests.

import http from "node:http";
import net from "node:net";

// The hook goes first, before anything can load rivetkit.
await import("../../scripts/rivetkit-sqlite-vfs-hook.mjs");
const hook = globalThis[Symbol.for("rivetkit-sqlite-vfs-hook")];

// The module rivetkit should get, loaded here by its own path: it is the same
// module instance rivetkit gets if, and only if, the resolution went there.
const expected = hook.requested === "2.2.1" ? await import("sqlite-vfs-2.2.1") : await import("../../index.mjs");

// Record every pool acquire and database open that goes through the expected
// module's classes; a pool from any other copy would leave no trace here.
const acquired = [];
const opened = [];
const acquire = expected.SqliteVfsPool.prototype.acquire;
expected.SqliteVfsPool.prototype.acquire = async function (actorId) {
	acquired.push(actorId);
	return acquire.call(this, actorId);
};
const open = expected.PooledSqliteHandle.prototype.open;
expected.PooledSqliteHandle.prototype.open = async function (...args) {
	const db = await open.apply(this, args);
	opened.push({
		fileName: args[0],
		class: db.constructor.name,
		backend: db.backend ?? null,
	});
	return db;
};
globalThis[Symbol.for("rivetkit-e2e-probe")] = () => ({
	pid: process.pid,
	node: process.version,
	requested: hook.requested,
	label: hook.label,
	resolutions: hook.resolutions,
	acquired: [...acquired],
	opened: [...opened],
});

const storage = process.env.RIVETKIT_E2E_STORAGE;
if (!storage) throw new Error("RIVETKIT_E2E_STORAGE is required");

async function freePort() {
	const server = net.createServer();
	await new Promise((resolve, reject) => server.once("error", reject).listen(0, "127.0.0.1", resolve));
	const { port } = server.address();
	await new Promise((resolve) => server.close(resolve));
	return port;
}
const wanted = Number(process.env.RIVETKIT_E2E_PORT) || (await freePort());

// The port rivetkit's manager listens on: that of the first HTTP server this
// process starts. It is `wanted` unless another process took that port
// since freePort() saw it free: rivetkit then takes the next free one (its
// findFreePort, whose probes are plain net servers).
const listening = new Promise((resolve) => {
	const listen = http.Server.prototype.listen;
	http.Server.prototype.listen = function (...args) {
		http.Server.prototype.listen = listen;
		this.once("listening", () => resolve(this.address().port));
		return listen.apply(this, args);
	};
});

const { setup, createFileSystemDriver } = await import("rivetkit");
const { notebook, planner } = await import("./actors.mjs");

const registry = setup({
	use: { notebook, planner },
	driver: createFileSystemDriver({ path: storage }),
	managerHost: "127.0.0.1",
	managerPort: wanted,
	noWelcome: true,
	logging: { level: process.env.RIVETKIT_E2E_LOG_LEVEL || "warn" },
});
registry.start();

const deadline = Date.now() + 30_000;
const port = await Promise.race([
	listening,
	new Promise((_, reject) => setTimeout(() => reject(new Error("rivetkit's manager did not listen in 30 s")), 30_000).unref()),
]);
// Ready once rivetkit's manager answers on that port.
for (;;) {
	try {
		const response = await fetch(`http://127.0.0.1:${port}/`, { signal: AbortSignal.timeout(1000) });
		const body = await response.text();
		if (!body.startsWith("This is a RivetKit server.")) throw new Error(`not rivetkit's manager: ${JSON.stringify(body.slice(0, 80))}`);
		break;
	} catch (error) {
		if (Date.now() > deadline) throw new Error(`rivetkit did not answer on 127.0.0.1:${port}: ${error.message}`);
		await new Promise((r) => setTimeout(r, 50));
	}
}
process.stdout.write(`READY ${JSON.stringify({ port, pid: process.pid, node: process.version, vfs: hook.label })}\n`);
