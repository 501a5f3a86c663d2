// Makes rivetkit load THIS package (or the published 2.2.1) wherever it asks
// for "@rivetkit/sqlite-vfs", through a synchronous Node module-resolution
// hook (module.registerHooks, Node >= 22.15 / 23.5), which covers both the
// dynamic import() of rivetkit's ESM build and the require() of its CJS build.
//
//   node --import ./scripts/rivetkit-sqlite-vfs-hook.mjs app.mjs
//   RIVETKIT_SQLITE_VFS=2.2.1 node --import ./scripts/rivetkit-sqlite-vfs-hook.mjs app.mjs
//
// RIVETKIT_SQLITE_VFS: "this" (default: this repository's package), "2.2.1"
// (the published package, installed as the devDependency alias
// "sqlite-vfs-2.2.1"), or a path to a package directory.
//
// This is for working inside this repository, where the package is not
// installed under its own name. An application installs the package from the
// registry and uses its package manager's override instead (see
// examples/rivetkit/README.md).
//
// Every resolution it redirects is recorded in
// globalThis[Symbol.for("rivetkit-sqlite-vfs-hook")].resolutions, so a test can
// show which file rivetkit actually loaded.

import module from "node:module";
import path from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

const SPECIFIER = "@rivetkit/sqlite-vfs";
const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const rootAnchor = pathToFileURL(path.join(root, "package.json")).href;

const requested = process.env.RIVETKIT_SQLITE_VFS?.trim() || "this";

/** How to resolve the specifier: a specifier and the parent to resolve it from. */
function targetFor(choice) {
	if (choice === "this") {
		// Self-reference: resolved from inside this package, the bare name is
		// this package, through its "exports" (index.mjs for import, index.js
		// for require).
		return { specifier: SPECIFIER, parentURL: rootAnchor, label: "this package" };
	}
	if (choice === "2.2.1") {
		return { specifier: "sqlite-vfs-2.2.1", parentURL: rootAnchor, label: "@rivetkit/sqlite-vfs 2.2.1 (published)" };
	}
	const dir = path.resolve(choice);
	return { specifier: SPECIFIER, parentURL: pathToFileURL(path.join(dir, "package.json")).href, label: dir };
}

if (typeof module.registerHooks !== "function") {
	throw new Error(`rivetkit-sqlite-vfs-hook needs module.registerHooks (Node >= 22.15 or >= 23.5); this is Node ${process.versions.node}`);
}

const target = targetFor(requested);
const state = { requested, label: target.label, resolutions: [] };
globalThis[Symbol.for("rivetkit-sqlite-vfs-hook")] = state;

module.registerHooks({
	resolve(specifier, context, nextResolve) {
		if (specifier !== SPECIFIER) return nextResolve(specifier, context);
		// Read the context first: Node may merge what is passed to nextResolve into it.
		const from = context.parentURL ?? null;
		const kind = context.conditions?.includes("require") ? "require" : "import";
		const result = nextResolve(target.specifier, { ...context, parentURL: target.parentURL });
		state.resolutions.push({ from, kind, url: result.url });
		return result;
	},
});
