"use strict";

// Checks that `npm install` of this repository can succeed on every platform a
// contributor may work on: no package that npm must install (any that is not
// optional) in package-lock.json is restricted, by its `os` or `cpu` field, to
// exclude one of them. (npm refuses such a package with EBADPLATFORM.)
// Run by .ci/run.

const lock = require("../package-lock.json");

const PLATFORMS = [
	["linux", "x64"],
	["linux", "arm64"],
	["darwin", "x64"],
	["darwin", "arm64"],
	["win32", "x64"],
];

// npm's rule: a list allows a value it names, or any value but one it names negated.
function allows(field, value) {
	if (!field) return true;
	const list = [].concat(field);
	return list.some((v) => !v.startsWith("!")) ? list.includes(value) : !list.includes(`!${value}`);
}

const problems = [];
for (const [where, pkg] of Object.entries(lock.packages)) {
	if (where === "" || pkg.optional) continue;
	for (const [os, cpu] of PLATFORMS) {
		if (!allows(pkg.os, os) || !allows(pkg.cpu, cpu)) problems.push(`${where} (os ${pkg.os}, cpu ${pkg.cpu}) refuses ${os}-${cpu}`);
	}
}
if (problems.length > 0) {
	console.error(`npm install would fail on some platforms:\n  ${problems.join("\n  ")}`);
	process.exit(1);
}
console.log(`no required package in package-lock.json is limited to some platforms (${PLATFORMS.map((p) => p.join("-")).join(", ")})`);
