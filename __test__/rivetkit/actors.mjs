// The actors of the rivetkit end-to-end test: one on rivetkit/db (raw SQL),
// one on rivetkit/db/drizzle. Loaded by server.mjs, in the server process.

import { actor } from "rivetkit";
import { db as rawDb } from "rivetkit/db";
import { db as drizzleDb, sqliteTable, integer, text } from "rivetkit/db/drizzle";
import { eq, asc } from "drizzle-orm";

/** What the server process knows about the sqlite-vfs module rivetkit loaded (see server.mjs). */
const probe = () => globalThis[Symbol.for("rivetkit-e2e-probe")]?.() ?? null;

/** An error as plain data, so an action can return it instead of throwing. */
const errorInfo = (error) => ({ name: error?.name, code: error?.code ?? null, message: String(error?.message ?? error) });

const one = async (c, sql, ...args) => (await c.db.execute(sql, ...args))[0];

// MARK: raw SQL (rivetkit/db)

export const notebook = actor({
	db: rawDb({
		onMigrate: async (db) => {
			// Runs every time the actor starts; the schema migration itself is
			// gated on user_version, and each run of it is logged.
			await db.execute("CREATE TABLE IF NOT EXISTS boots (id INTEGER PRIMARY KEY, at INTEGER NOT NULL)");
			await db.execute("INSERT INTO boots (at) VALUES (?)", Date.now());
			const [{ user_version: version }] = await db.execute("PRAGMA user_version");
			if (version < 1) {
				await db.execute(`
					CREATE TABLE migrations (version INTEGER NOT NULL, at INTEGER NOT NULL);
					CREATE TABLE items (
						id INTEGER PRIMARY KEY,
						name TEXT NOT NULL UNIQUE,
						qty INTEGER NOT NULL DEFAULT 0,
						price REAL,
						data BLOB
					);
					CREATE INDEX items_qty ON items (qty);
					INSERT INTO migrations VALUES (1, unixepoch());
					PRAGMA user_version = 1;
				`);
			}
			if (version < 2) {
				await db.execute(`
					BEGIN;
					CREATE TABLE bulk (id INTEGER PRIMARY KEY, batch TEXT NOT NULL, body TEXT NOT NULL);
					INSERT INTO migrations VALUES (2, unixepoch());
					PRAGMA user_version = 2;
					COMMIT;
				`);
			}
		},
	}),
	actions: {
		probe: () => probe(),
		actorId: (c) => c.actorId,
		/** Insert with positional parameters; RETURNING goes through db.query. */
		add: async (c, name, qty, price = null, data = null) =>
			one(c, "INSERT INTO items (name, qty, price, data) VALUES (?, ?, ?, ?) RETURNING id", name, qty, price, data),
		/** Insert without RETURNING: goes through db.run. */
		addPlain: async (c, name, qty) => {
			await c.db.execute("INSERT INTO items (name, qty) VALUES (?, ?)", name, qty);
			return true;
		},
		/** Named parameters (an object). */
		byName: async (c, name) => one(c, "SELECT id, name, qty, price, data FROM items WHERE name = :name", { name }),
		items: async (c) => c.db.execute("SELECT id, name, qty FROM items ORDER BY id"),
		names: async (c) => (await c.db.execute("SELECT name FROM items ORDER BY id")).map((r) => r.name),
		/** A statement that fails; returns the error instead of throwing. */
		tryAdd: async (c, name, qty) => {
			try {
				await c.db.execute("INSERT INTO items (name, qty) VALUES (?, ?)", name, qty);
				return { ok: true };
			} catch (error) {
				return { ok: false, error: errorInfo(error) };
			}
		},
		/** Any SQL with any arguments, as the actor's code would run it; returns rows or the error. */
		sql: async (c, sql, ...args) => {
			try {
				return { ok: true, rows: await c.db.execute(sql, ...args) };
			} catch (error) {
				return { ok: false, error: errorInfo(error) };
			}
		},
		/** A transaction over several execute() calls: commits, or rolls back when asked to. */
		transfer: async (c, from, to, amount, rollback = false) => {
			await c.db.execute("BEGIN");
			try {
				await c.db.execute("UPDATE items SET qty = qty - ? WHERE name = ?", amount, from);
				await c.db.execute("UPDATE items SET qty = qty + ? WHERE name = ?", amount, to);
				const [{ qty }] = await c.db.execute("SELECT qty FROM items WHERE name = ?", from);
				if (rollback || qty < 0) {
					await c.db.execute("ROLLBACK");
					return { committed: false };
				}
				await c.db.execute("COMMIT");
				return { committed: true };
			} catch (error) {
				await c.db.execute("ROLLBACK");
				throw error;
			}
		},
		/** A transaction in which one statement fails, then is committed anyway (SQLite keeps the rest). */
		partialTransaction: async (c, good, duplicate) => {
			await c.db.execute("BEGIN");
			await c.db.execute("INSERT INTO items (name, qty) VALUES (?, 1)", good);
			let error = null;
			try {
				await c.db.execute("INSERT INTO items (name, qty) VALUES (?, 1)", duplicate);
			} catch (e) {
				error = errorInfo(e);
			}
			await c.db.execute("COMMIT");
			return { error };
		},
		/** One transaction of `rows` rows of `size` bytes each, through bound parameters. */
		bulk: async (c, batch, rows, size) => {
			await c.db.execute("BEGIN");
			for (let i = 0; i < rows; i++) {
				await c.db.execute("INSERT INTO bulk (batch, body) VALUES (?, ?)", batch, `${batch}:${i}:`.padEnd(size, "x"));
			}
			await c.db.execute("COMMIT");
			return one(c, "SELECT count(*) AS n, sum(length(body)) AS bytes FROM bulk WHERE batch = ?", batch);
		},
		/** A multi-statement exec (no parameters): a script with its own transaction. */
		bulkScript: async (c, batch, rows, size) => {
			await c.db.execute(`
				BEGIN;
				WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ${Number(rows)})
				INSERT INTO bulk (batch, body) SELECT '${batch}', printf('%.${Number(size)}c', 'y') FROM n;
				COMMIT;
			`);
			return one(c, "SELECT count(*) AS n, sum(length(body)) AS bytes FROM bulk WHERE batch = ?", batch);
		},
		dropBulk: async (c, batch) => {
			await c.db.execute("DELETE FROM bulk WHERE batch = ?", batch);
			return true;
		},
		vacuum: async (c) => {
			const before = await one(c, "PRAGMA page_count");
			await c.db.execute("VACUUM");
			const after = await one(c, "PRAGMA page_count");
			return { before: before.page_count, after: after.page_count };
		},
		stats: async (c) => ({
			integrity: (await one(c, "PRAGMA integrity_check")).integrity_check,
			userVersion: (await one(c, "PRAGMA user_version")).user_version,
			migrations: await c.db.execute("SELECT version FROM migrations ORDER BY rowid"),
			boots: (await one(c, "SELECT count(*) AS n FROM boots")).n,
			items: (await one(c, "SELECT count(*) AS n FROM items")).n,
			bulkRows: (await one(c, "SELECT count(*) AS n FROM bulk")).n,
			sqliteVersion: (await one(c, "SELECT sqlite_version() AS v")).v,
		}),
		goToSleep: (c) => {
			c.sleep();
			return true;
		},
	},
});

// MARK: drizzle (rivetkit/db/drizzle)

export const tasks = sqliteTable("tasks", {
	id: integer("id").primaryKey({ autoIncrement: true }),
	title: text("title").notNull().unique(),
	done: integer("done", { mode: "boolean" }).notNull().default(false),
	priority: integer("priority").notNull().default(0),
});

/** Migrations in the format drizzle-kit generates for the durable-sqlite driver. */
export const migrations = {
	journal: {
		version: "7",
		dialect: "sqlite",
		entries: [
			{ idx: 0, version: "6", when: 1735689600000, tag: "0000_init", breakpoints: true },
			{ idx: 1, version: "6", when: 1735776000000, tag: "0001_priority", breakpoints: true },
		],
	},
	migrations: {
		m0000: [
			"CREATE TABLE `tasks` (",
			"\t`id` integer PRIMARY KEY AUTOINCREMENT NOT NULL,",
			"\t`title` text NOT NULL,",
			"\t`done` integer DEFAULT false NOT NULL",
			");",
			"--> statement-breakpoint",
			"CREATE UNIQUE INDEX `tasks_title_unique` ON `tasks` (`title`);",
		].join("\n"),
		m0001: "ALTER TABLE `tasks` ADD `priority` integer DEFAULT 0 NOT NULL;",
	},
};

export const planner = actor({
	db: drizzleDb({ schema: { tasks }, migrations }),
	actions: {
		probe: () => probe(),
		actorId: (c) => c.actorId,
		add: async (c, title, priority = 0) => (await c.db.insert(tasks).values({ title, priority }).returning())[0],
		list: async (c) => c.db.select().from(tasks).orderBy(asc(tasks.id)),
		get: async (c, id) => (await c.db.select().from(tasks).where(eq(tasks.id, id)))[0] ?? null,
		complete: async (c, id) => (await c.db.update(tasks).set({ done: true }).where(eq(tasks.id, id)).returning())[0],
		remove: async (c, id) => {
			await c.db.delete(tasks).where(eq(tasks.id, id));
			return true;
		},
		tryAdd: async (c, title) => {
			try {
				await c.db.insert(tasks).values({ title });
				return { ok: true };
			} catch (error) {
				return { ok: false, error: errorInfo(error), cause: error?.cause ? errorInfo(error.cause) : null };
			}
		},
		/** drizzle's transaction(): commits when the callback returns. */
		addMany: async (c, titles) =>
			c.db.transaction(async (tx) => {
				const ids = [];
				for (const title of titles) ids.push((await tx.insert(tasks).values({ title }).returning({ id: tasks.id }))[0].id);
				return ids;
			}),
		/** drizzle's transaction(): rolls back when the callback throws, or calls tx.rollback(). */
		addManyThenFail: async (c, titles, how) => {
			try {
				await c.db.transaction(async (tx) => {
					for (const title of titles) await tx.insert(tasks).values({ title });
					if (how === "rollback") tx.rollback();
					throw new Error("boom");
				});
				return { rolledBack: false };
			} catch (error) {
				return { rolledBack: true, error: errorInfo(error) };
			}
		},
		migrationsApplied: async (c) => c.db.execute("SELECT hash, created_at FROM __drizzle_migrations ORDER BY id"),
		integrity: async (c) => (await c.db.execute("PRAGMA integrity_check"))[0].integrity_check,
		goToSleep: (c) => {
			c.sleep();
			return true;
		},
	},
});
