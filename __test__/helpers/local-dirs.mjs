// Where the native engine keeps local files: in the OS temporary directory, a
// directory `rivetkit-sqlite-*` per process, holding a directory per open
// database.

import fs from "node:fs";
import path from "node:path";

/** The processes' directories in `tmp` (paths). */
export function processDirs(tmp) {
	return fs
		.readdirSync(tmp)
		.filter((name) => name.startsWith("rivetkit-sqlite-"))
		.map((name) => path.join(tmp, name));
}

/** The open databases' directories in `tmp` (paths), of every process. */
export function databaseDirs(tmp) {
	return processDirs(tmp).flatMap((dir) =>
		fs
			.readdirSync(dir, { withFileTypes: true })
			.filter((entry) => entry.isDirectory())
			.map((entry) => path.join(dir, entry.name)),
	);
}
