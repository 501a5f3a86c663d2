// Installs the package as a user would: `npm pack` the main package and the
// linux-x64-gnu platform package, install both into one fresh project
// (expects the native engine) and only the main package into another
// (expects the WASM fallback), then runs a small open/write/reopen script in
// each under Node and under Bun (and checks that the KV store subpaths load
// without their optional peer dependencies, lmdb and pg). Only the local
// tarballs and the npm registry are used.
//
//   node scripts/install-test.mjs

import { execFileSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";

const root = path.join(path.dirname(fileURLToPath(import.meta.url)), "..");
const bun = path.join(root, "node_modules", ".bin", "bun");
const run = (cmd, args, cwd) => execFileSync(cmd, args, { cwd, encoding: "utf8", stdio: ["ignore", "pipe", "inherit"] });

execFileSync(process.execPath, [path.join(root, "scripts", "ensure-build.js")], { stdio: "inherit" });
const work = fs.mkdtempSync(path.join(os.tmpdir(), "sqlite-vfs-install-"));
try {
	const pack = (dir) => path.join(work, JSON.parse(run("npm", ["pack", "--json", "--pack-destination", work], dir))[0].filename);
	const platformDir = path.join(root, "npm", "linux-x64-gnu");
	const binary = "sqlite-vfs.linux-x64-gnu.node";
	fs.copyFileSync(path.join(root, binary), path.join(platformDir, binary));
	const mainTgz = pack(root);
	const platformTgz = pack(platformDir);
	fs.rmSync(path.join(platformDir, binary));

	const smoke = `
		import { open, createMemoryKv } from "@rivetkit/sqlite-vfs";
		import { createRequire } from "node:module";
		const cjs = createRequire(import.meta.url)("@rivetkit/sqlite-vfs");
		if (cjs.open !== open) throw new Error("ESM and CJS entries differ");
		// The KV store subpaths load without their optional peer dependencies,
		// and say what to install when used without them.
		const { createLmdbKv } = await import("@rivetkit/sqlite-vfs/kv/lmdb");
		await import("@rivetkit/sqlite-vfs/kv/postgres");
		try {
			createLmdbKv("lmdb-data");
			throw new Error("createLmdbKv worked without lmdb installed");
		} catch (error) {
			if (error.code !== "ERR_SQLITE_KV_DEPENDENCY") throw error;
		}
		const kv = createMemoryKv();
		const db = await open("actor", kv);
		await db.exec("CREATE TABLE t(v)");
		await db.run("INSERT INTO t VALUES (?)", ["hello"]);
		await db.close();
		const again = await open("actor", kv);
		const { rows } = await again.query("SELECT v FROM t");
		await again.close();
		if (rows[0][0] !== "hello") throw new Error("row lost: " + JSON.stringify(rows));
		console.log(again.backend);
	`;
	const cases = [
		{ name: "main + linux-x64-gnu", tarballs: [mainTgz, platformTgz], expected: "native" },
		{ name: "main only", tarballs: [mainTgz], expected: "wasm" },
	];
	let failures = 0;
	for (const { name, tarballs, expected } of cases) {
		const project = path.join(work, name.replace(/\W+/g, "-"));
		fs.mkdirSync(project);
		fs.writeFileSync(path.join(project, "package.json"), JSON.stringify({ name: "install-test", private: true, type: "module" }));
		fs.writeFileSync(path.join(project, "smoke.mjs"), smoke);
		run("npm", ["install", "--no-audit", "--no-fund", "--loglevel=error", ...tarballs], project);
		for (const [runtime, cmd] of [
			["node", process.execPath],
			["bun", bun],
		]) {
			const backend = run(cmd, ["smoke.mjs"], project).trim().split("\n").at(-1);
			const ok = backend === expected;
			failures += ok ? 0 : 1;
			console.log(`${ok ? "ok" : "FAIL"}: ${name} under ${runtime}: backend ${backend} (expected ${expected})`);
		}
	}
	// The typings of the root and the KV subpaths, as TypeScript finds them
	// in an installed package under each module resolution: node10 (still
	// what "moduleResolution": "node" means) has no package exports and
	// finds the subpaths through typesVersions.
	const project = path.join(work, "main-only");
	fs.writeFileSync(
		path.join(project, "types.ts"),
		`import { open, createMemoryKv, type Database } from "@rivetkit/sqlite-vfs";
import { createLmdbKv } from "@rivetkit/sqlite-vfs/kv/lmdb";
import { createPostgresKv } from "@rivetkit/sqlite-vfs/kv/postgres";
export async function check(): Promise<void> {
	const db: Database = await open("x", createMemoryKv(), { backend: null });
	void [createLmdbKv, createPostgresKv, db];
}
`,
	);
	const tsc = path.join(root, "node_modules", "typescript", "bin", "tsc");
	for (const [resolution, module, extra] of [
		["node10", "commonjs", { ignoreDeprecations: "6.0" }],
		["node16", "node16", {}],
		["bundler", "esnext", {}],
	]) {
		const compilerOptions = { strict: true, noEmit: true, module, moduleResolution: resolution, target: "es2022", types: [], ...extra };
		fs.writeFileSync(path.join(project, "tsconfig.json"), JSON.stringify({ compilerOptions, files: ["types.ts"] }));
		try {
			execFileSync(process.execPath, [tsc, "-p", "."], { cwd: project, encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });
			console.log(`ok: typings under moduleResolution ${resolution}`);
		} catch (error) {
			failures++;
			console.log(`FAIL: typings under moduleResolution ${resolution}:\n${error.stdout}${error.stderr}`);
		}
	}
	if (failures > 0) process.exitCode = 1;
} finally {
	fs.rmSync(work, { recursive: true, force: true });
}
