"use strict";

// Provides better-sqlite3 for the running Node. On Node 22 and later that is
// better-sqlite3 13 (devDependency alias `better-sqlite3-13`), whose package
// holds prebuilt Node-API addons: nothing to build. Version 12, an addon on
// V8's and Node's C++ APIs, aborts the process on Node 24 when V8 collects
// one of its statements (its node::ObjectWrap destructors: nodejs/node#65446),
// and 13 needs Node 22, so Node 20 keeps 12, built here.
//
// Version 12's addon is built on demand: npm here runs no install scripts,
// so `npm install` leaves it unbuilt; node-gyp
// compiles it from source against the headers of the running Node (found
// locally: no download). The build goes to the benchmark's own folder,
// bench/results/better-sqlite3/node-abi<N>/ (gitignored), one per Node ABI,
// and the backend loads it through better-sqlite3's `nativeBinding` option:
// node_modules/better-sqlite3/build is left alone, whatever other tools do
// with it. Skips when the addon for this ABI already loads. When it cannot be
// built the bench marks better-sqlite3 "n/a" instead of failing.
// Usage: node bench/setup.js   (also called by run.js)

const { spawnSync } = require("node:child_process");
const fs = require("node:fs");
const os = require("node:os");
const path = require("node:path");

const RESULTS = path.join(__dirname, "results");

/** Whether this Node runs better-sqlite3 13 (prebuilt) rather than 12 (built here). */
const PREBUILT = Number(process.versions.node.split(".")[0]) >= 22;

/** The package the benchmark loads as better-sqlite3 on this Node. */
const PACKAGE = PREBUILT ? "better-sqlite3-13" : "better-sqlite3";

/** Where this Node's build of the addon lives. */
function buildDir() {
	return path.join(RESULTS, "better-sqlite3", `node-abi${process.versions.modules}`);
}

/** The addon built for the running Node (it may not exist yet), or null where the package's own is used. */
function nativeBindingPath() {
	if (PREBUILT) return null;
	return path.join(buildDir(), "build", "Release", "better_sqlite3.node");
}

/** Whether better-sqlite3 runs with `binding` (null: its own) in a fresh process; the error text if not. */
function loads(binding) {
	const check = spawnSync(
		process.execPath,
		[
			"-e",
			"const D = require(process.argv[1]); const b = process.argv[2]; new D(':memory:', b ? { nativeBinding: b } : {}).prepare('select 1').get();",
			PACKAGE,
			binding ?? "",
		],
		{ cwd: __dirname, encoding: "utf8", timeout: 60_000 },
	);
	if (check.status === 0) return null;
	const text = (check.stderr || check.error?.message || `exit ${check.status}`).trim();
	return (text.split("\n").find((line) => /Error/.test(line)) ?? text.split("\n")[0]).trim();
}

/** A --nodedir holding include/node/{common.gypi,node_api.h,v8.h,node_version.h} for the running Node's ABI. */
function findNodeDir() {
	const candidates = [
		process.env.npm_config_nodedir,
		path.resolve(path.dirname(process.execPath), ".."),
		process.config.variables?.node_prefix,
		"/usr/local",
		"/usr",
	].filter(Boolean);
	for (const dir of candidates) {
		const include = path.join(dir, "include", "node");
		const version = path.join(include, "node_version.h");
		if (!["common.gypi", "node_api.h", "v8.h"].every((f) => fs.existsSync(path.join(include, f)))) continue;
		if (!fs.existsSync(version)) continue;
		const text = fs.readFileSync(version, "utf8");
		const part = (name) => text.match(new RegExp(`#define NODE_${name}_VERSION (\\d+)`))?.[1];
		const headers = `${part("MAJOR")}.${part("MINOR")}.${part("PATCH")}`;
		// The addon must be built for this Node's ABI.
		const abi = text.match(/#define NODE_MODULE_VERSION (\d+)/)?.[1];
		if (abi !== process.versions.modules) continue;
		return { dir, headers };
	}
	return null;
}

function findNodeGyp() {
	try {
		return require.resolve("node-gyp/bin/node-gyp.js");
	} catch {
		const bundled = path.resolve(
			path.dirname(process.execPath),
			"..",
			"lib",
			"node_modules",
			"npm",
			"node_modules",
			"node-gyp",
			"bin",
			"node-gyp.js",
		);
		return fs.existsSync(bundled) ? bundled : null;
	}
}

/** Resolves to { available: true, binding } or { available: false, reason }. */
function ensureBetterSqlite3({ log = console.log } = {}) {
	let packageDir;
	try {
		packageDir = path.dirname(require.resolve(`${PACKAGE}/package.json`));
	} catch {
		return { available: false, reason: `${PACKAGE} is not installed (npm install)` };
	}
	if (PREBUILT) {
		const error = loads(null);
		if (error !== null) return { available: false, reason: `its prebuilt addon does not load: ${error}` };
		return { available: true, built: false, binding: null };
	}
	const binding = nativeBindingPath();
	if (fs.existsSync(binding) && loads(binding) === null) return { available: true, built: false, binding };

	const nodeDir = findNodeDir();
	if (!nodeDir) return { available: false, reason: `no local headers of Node ${process.versions.node} found` };
	const nodeGyp = findNodeGyp();
	if (!nodeGyp) return { available: false, reason: "node-gyp not found" };

	const dir = buildDir();
	const logFile = path.join(dir, "build.log");
	fs.rmSync(dir, { recursive: true, force: true });
	fs.mkdirSync(dir, { recursive: true });
	for (const entry of ["binding.gyp", "package.json", "src", "deps"]) {
		fs.cpSync(path.join(packageDir, entry), path.join(dir, entry), { recursive: true });
	}
	log(
		`setup: building better-sqlite3 for Node ${process.versions.node} from source (node-gyp, headers ${nodeDir.headers} in ${nodeDir.dir}); log in ${path.relative(process.cwd(), logFile)}`,
	);
	const start = Date.now();
	const build = spawnSync(
		process.execPath,
		[nodeGyp, "rebuild", "--release", `--nodedir=${nodeDir.dir}`, "-j", String(os.availableParallelism?.() ?? os.cpus().length)],
		{
			cwd: dir,
			encoding: "utf8",
			timeout: 15 * 60_000,
			maxBuffer: 64 * 2 ** 20,
			// node-gyp also reads npm_config_nodedir (npm sets it from its
			// config under `npm run`), which may name another Node's headers.
			env: { ...process.env, npm_config_nodedir: nodeDir.dir },
		},
	);
	fs.writeFileSync(logFile, `${build.stdout ?? ""}\n${build.stderr ?? ""}\n${build.error ?? ""}`);
	if (build.status !== 0) {
		return { available: false, reason: `node-gyp build failed (exit ${build.status ?? build.signal}); see ${logFile}` };
	}
	const after = loads(binding);
	if (after !== null) return { available: false, reason: `built, but does not load: ${after}` };
	log(`setup: better-sqlite3 built in ${((Date.now() - start) / 1000).toFixed(0)} s`);
	return { available: true, built: true, binding };
}

if (require.main === module) {
	const result = ensureBetterSqlite3();
	console.log(result.available ? "better-sqlite3: available" : `better-sqlite3: n/a (${result.reason})`);
}

module.exports = { ensureBetterSqlite3, nativeBindingPath, PACKAGE };
