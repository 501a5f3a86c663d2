"use strict";

// lib/policy.txt, the rules both engines apply, as words: read once here for
// the WASM engine (lib/wasm/sqlite.js) and for the checks every engine's
// calls pass (lib/params.js). The native engine compiles the same file in
// (crates/engine/src/policy.rs).

const fs = require("node:fs");
const path = require("node:path");

/** Each rule as its words: `[kind, name, ...values]`. */
const RULES = fs
	.readFileSync(path.join(__dirname, "policy.txt"), "utf8")
	.split("\n")
	.filter((line) => !line.startsWith("#"))
	.map((line) => line.split(/\s+/).filter((word) => word !== ""))
	.filter((words) => words.length >= 2);

/** The value of limit `name` (SQLITE_LIMIT_'s suffix in lower case), or undefined if no rule sets it. */
function limitValue(name) {
	const rule = RULES.find(([kind, ruleName]) => kind === "limit" && ruleName === name);
	return rule === undefined ? undefined : Number(rule[2]);
}

/** The value of this package's bound `name` (a `bound` rule); throws if no rule sets it. */
function boundValue(name) {
	const rule = RULES.find(([kind, ruleName]) => kind === "bound" && ruleName === name);
	const value = rule === undefined ? Number.NaN : Number(rule[2]);
	if (!Number.isSafeInteger(value) || value < 0) throw new Error(`lib/policy.txt: no bound "${name}"`);
	return value;
}

module.exports = { RULES, limitValue, boundValue };
