import { test, describe } from "node:test";
import assert from "node:assert/strict";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";

import { SqliteError } from "../index.mjs";
import { createTestKv, kvDump } from "./helpers/kv.mjs";
import { open, rows } from "./helpers/db.mjs";

describe("statements cannot reach host files", () => {
	test("ATTACH of a host path, VACUUM INTO and a relative file are refused; the database stays usable", async () => {
		const dir = fs.mkdtempSync(path.join(os.tmpdir(), "sqlite-vfs-security-"));
		const target = path.join(dir, "escape.db");
		const kv = createTestKv();
		const db = await open(kv);
		await db.exec("CREATE TABLE t(v); INSERT INTO t VALUES (1)");
		const before = kvDump(kv);
		const attempts = [
			"ATTACH '/etc/passwd' AS p",
			`ATTACH '${target}' AS x`,
			`ATTACH 'file:${target}?mode=rwc' AS y`,
			"ATTACH 'relative.db' AS r",
			`VACUUM INTO '${target}'`,
		];
		for (const sql of attempts) {
			await assert.rejects(db.exec(sql), (error) => {
				assert.ok(error instanceof SqliteError, `${sql}: ${error}`);
				assert.match(error.code, /^SQLITE_CANTOPEN|^SQLITE_ERROR|^SQLITE_AUTH/);
				return true;
			});
		}
		assert.equal(fs.existsSync(target), false);
		assert.equal(fs.existsSync(path.join(process.cwd(), "relative.db")), false);
		assert.deepEqual(fs.readdirSync(dir), []);
		assert.deepEqual(kvDump(kv), before);
		assert.deepEqual(await rows(db, "SELECT v FROM t"), [[1]]);
		// An in-memory attachment touches no file and is allowed.
		await db.exec("ATTACH ':memory:' AS scratch; CREATE TABLE scratch.s(x); DETACH scratch");
		await db.close();
		fs.rmSync(dir, { recursive: true });
	});

	test("extension loading is unavailable", async () => {
		const db = await open(createTestKv());
		await assert.rejects(db.query("SELECT load_extension('/usr/lib/x86_64-linux-gnu/libm.so.6')"), SqliteError);
		await db.close();
	});
});
