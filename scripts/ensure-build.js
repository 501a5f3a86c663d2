"use strict";

// Builds the release addon when it is missing or older than its sources, so
// `npm test`, `npm run demo` and `npm run bench` work on a fresh clone.

const { execSync } = require("node:child_process");
const fs = require("node:fs");
const path = require("node:path");

const root = path.join(__dirname, "..");
// The platforms package.json declares, as `napi build --platform` names their
// addon file.
const DECLARED = ["linux-x64-gnu", "linux-x64-musl", "linux-arm64-gnu", "darwin-x64", "darwin-arm64", "win32-x64-msvc"];

function platformKey() {
	const { platform, arch } = process;
	if (platform === "linux") return `linux-${arch}-${process.report?.getReport().header.glibcVersionRuntime ? "gnu" : "musl"}`;
	if (platform === "win32") return `win32-${arch}-msvc`;
	return `${platform}-${arch}`;
}
const platform = platformKey();
const outputs = ["binding.js", "binding.d.ts", `sqlite-vfs.${platform}.node`].map((f) => path.join(root, f));

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

if (!DECLARED.includes(platform)) {
	console.log(`ensure-build: ${platform} is not a platform of the native engine; skipping the native build`);
} else if (oldestOutput() < newestSource()) {
	console.log("ensure-build: building the release addon (cargo)...");
	execSync("npm run build", { cwd: root, stdio: "inherit" });
}
