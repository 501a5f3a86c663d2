"use strict";

// Builds the release addon when it is missing or older than its sources, so
// `npm test`, `npm run demo` and `npm run bench` work on a fresh clone.

const { execSync } = require("node:child_process");
const fs = require("node:fs");
const path = require("node:path");

const root = path.join(__dirname, "..");
const outputs = ["binding.js", "binding.d.ts", "sqlite-vfs.linux-x64-gnu.node"].map((f) => path.join(root, f));

function newestSource() {
	let newest = 0;
	const visit = (p) => {
		const stat = fs.statSync(p);
		if (stat.isDirectory()) for (const entry of fs.readdirSync(p)) visit(path.join(p, entry));
		else newest = Math.max(newest, stat.mtimeMs);
	};
	for (const p of ["src", "crates", "Cargo.toml", "Cargo.lock", "build.rs", "lib/policy.txt"]) {
		const full = path.join(root, p);
		if (fs.existsSync(full)) visit(full);
	}
	return newest;
}

function oldestOutput() {
	let oldest = Infinity;
	for (const file of outputs) {
		if (!fs.existsSync(file)) return 0;
		oldest = Math.min(oldest, fs.statSync(file).mtimeMs);
	}
	return oldest;
}

if (process.platform !== "linux" || process.arch !== "x64") {
	console.log("ensure-build: only linux-x64 builds here; skipping the native build");
} else if (oldestOutput() < newestSource()) {
	console.log("ensure-build: building the release addon (cargo)...");
	execSync("npm run build", { cwd: root, stdio: "inherit" });
}
