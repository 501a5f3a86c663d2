// Child of resources.test.mjs ("a process killed with databases open …"), run
// with TMPDIR set to a private directory. Prints JSON lines.
//
//   killed.mjs killed   opens three databases, writes, and kills itself (SIGKILL)
//   killed.mjs live     opens a database, says "ready", and on a line of stdin
//                       writes to it and reads it back, closes it and says so
//   killed.mjs sweeper  opens a database and waits (10 s at most) for the
//                       directories of dead processes to go; says which were left

import fs from "node:fs";
import readline from "node:readline";
import { open, createMemoryKv } from "../../index.mjs";
import { processDirs } from "./local-files.mjs";

const tmp = process.env.TMPDIR;
const say = (value) => console.log(JSON.stringify(value));
const mode = process.argv[2];

if (mode === "killed") {
	const dbs = [];
	for (let i = 0; i < 3; i++) {
		const db = await open(`killed-${i}`, createMemoryKv());
		await db.exec("CREATE TABLE t(v); INSERT INTO t VALUES ('secret')");
		dbs.push(db);
	}
	process.kill(process.pid, "SIGKILL");
} else if (mode === "live") {
	const db = await open("live", createMemoryKv());
	await db.exec("CREATE TABLE t(v); INSERT INTO t VALUES (1)");
	say({ ready: processDirs(tmp) });
	const lines = readline.createInterface({ input: process.stdin });
	await new Promise((resolve) => lines.once("line", resolve));
	lines.close();
	// Its files must still be there: a page written after the sweep, and
	// every row read back through SQLite.
	await db.exec("INSERT INTO t SELECT 2; CREATE TABLE u(x); INSERT INTO u SELECT zeroblob(100000)");
	const rows = (await db.query("SELECT v FROM t ORDER BY v")).rows.map((row) => row[0]);
	await db.close();
	say({ rows });
} else if (mode === "sweeper") {
	const dead = JSON.parse(process.argv[3]);
	const db = await open("sweeper", createMemoryKv());
	await db.exec("CREATE TABLE t(v)");
	const start = Date.now();
	while (dead.some((dir) => fs.existsSync(dir)) && Date.now() - start < 10_000) {
		await new Promise((resolve) => setTimeout(resolve, 20));
	}
	say({ left: processDirs(tmp) });
	await db.close();
}
