// A rivetkit 2.2.1 app whose actors keep their notes in SQLite through
// rivetkit/db, served on 127.0.0.1 with rivetkit's file-system driver, and a
// client that calls it. In an application, rivetkit gets this package through
// a package-manager override (see README.md next to this file); inside this
// repository, run it with the resolution hook instead (Node >= 22.15):
//
//   "$(node scripts/runtimes.js 22.23.3)" --import ./scripts/rivetkit-sqlite-vfs-hook.mjs examples/rivetkit/app.mjs
//
// EXAMPLE_STORAGE=dir keeps the actors' data in `dir` (run it twice: the
// notes are still there); by default a temporary directory is used and removed.

import fs from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";

import { actor, setup, createFileSystemDriver } from "rivetkit";
import { db } from "rivetkit/db";
import { createClient } from "rivetkit/client";

// MARK: an actor with a SQLite database

const notebook = actor({
	db: db({
		// Runs each time the actor starts (also after it wakes from sleep):
		// make migrations idempotent, e.g. gated on PRAGMA user_version.
		onMigrate: async (db) => {
			const [{ user_version: version }] = await db.execute("PRAGMA user_version");
			if (version < 1) {
				await db.execute(`
					CREATE TABLE notes (id INTEGER PRIMARY KEY, text TEXT NOT NULL, created INTEGER NOT NULL);
					PRAGMA user_version = 1;
				`);
			}
		},
	}),
	actions: {
		add: async (c, text) =>
			(await c.db.execute("INSERT INTO notes (text, created) VALUES (?, ?) RETURNING id", text, Date.now()))[0].id,
		list: async (c) => c.db.execute("SELECT id, text FROM notes ORDER BY id"),
		// Several statements in one transaction: one execute() without parameters.
		clear: async (c) => {
			await c.db.execute("BEGIN; DELETE FROM notes; COMMIT;");
			return true;
		},
		sqliteVersion: async (c) => (await c.db.execute("SELECT sqlite_version() AS v"))[0].v,
	},
});

// MARK: the server (127.0.0.1 only) and a client

const storage = process.env.EXAMPLE_STORAGE
	? path.resolve(process.env.EXAMPLE_STORAGE)
	: fs.mkdtempSync(path.join(os.tmpdir(), "rivetkit-example-"));

async function freePort() {
	const server = net.createServer();
	await new Promise((resolve, reject) => server.once("error", reject).listen(0, "127.0.0.1", resolve));
	const { port } = server.address();
	await new Promise((resolve) => server.close(resolve));
	return port;
}
const port = await freePort();

const registry = setup({
	use: { notebook },
	driver: createFileSystemDriver({ path: storage }),
	managerHost: "127.0.0.1",
	managerPort: port,
	noWelcome: true,
	logging: { level: "warn" },
});
registry.start();

const endpoint = `http://127.0.0.1:${port}`;
for (let tries = 0; ; tries++) {
	try {
		await fetch(endpoint, { signal: AbortSignal.timeout(1000) });
		break;
	} catch (error) {
		if (tries > 200) throw error;
		await new Promise((r) => setTimeout(r, 50));
	}
}

const client = createClient(endpoint);
const notes = client.notebook.getOrCreate(["my-notebook"]);
const runtime = process.versions.bun ? `bun ${process.versions.bun}` : `node ${process.versions.node}`;
const id = await notes.add(`hello from ${runtime}`);
console.log(`added note ${id}; the notebook holds:`);
for (const note of await notes.list()) console.log(`  ${note.id}: ${note.text}`);
console.log(`SQLite ${await notes.sqliteVersion()} (the published 2.2.1 runs 3.50.1)`);

const hook = globalThis[Symbol.for("rivetkit-sqlite-vfs-hook")];
if (hook) console.log(`rivetkit loaded @rivetkit/sqlite-vfs from ${hook.resolutions.map((r) => r.url).join(", ") || "(not yet)"}`);

await client.dispose();
if (!process.env.EXAMPLE_STORAGE) fs.rmSync(storage, { recursive: true, force: true });
// rivetkit's server has no stop() in 2.2.1: exit once done.
process.exit(0);
